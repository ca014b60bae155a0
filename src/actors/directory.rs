//! The directory: a read-only view of the live chardevs that the supervisor
//! publishes for the executors, so the commands that only read
//! (`query-chardev`, and finding the ring of `ringbuf-write`/`ringbuf-read`)
//! run on the session's own arbiter instead of a round trip to the
//! supervisor's. The supervisor stays the only writer: it updates an entry
//! in the same handler that changes the registry, before it replies, so a
//! session that saw `chardev-add` succeed finds the chardev in its next
//! command.
use crate::chardev::{ChardevInfo, SharedRing, Status};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One live chardev as the directory shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Creation order (the registry's), which `query-chardev` follows.
    pub seq: u64,
    /// The ring, if its kind has the ring operations.
    pub ring: Option<SharedRing>,
    /// Its `filename` and frontend state, shared with the actor.
    pub status: Arc<Status>,
    /// Its kind (`socket`, `pty`, ...).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub kind: &'static str,
}

/// The shared view. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Directory(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    map: RwLock<HashMap<String, Entry>>,
    /// The system stopped: nothing may be read any more.
    closed: AtomicBool,
    /// Bumped whenever a chardev comes, goes or is changed.
    changes: tokio::sync::watch::Sender<u64>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            map: RwLock::default(),
            closed: AtomicBool::default(),
            changes: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Directory {
        Directory::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.0.map.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.0.map.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The system is stopping: readers are told so from now on.
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
    }

    /// Whether the system stopped (see [`Directory::close`]).
    pub fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }

    /// Show `id` as `entry` (added, or its backend changed).
    pub fn set(&self, id: &str, entry: Entry) {
        self.write().insert(id.to_owned(), entry);
        self.0.changes.send_modify(|g| *g += 1);
    }

    /// `id` is gone.
    pub fn unset(&self, id: &str) {
        if self.write().remove(id).is_some() {
            self.0.changes.send_modify(|g| *g += 1);
        }
    }

    /// Told whenever a chardev comes, goes or is changed.
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.changes.subscribe()
    }

    /// The live chardevs in creation order: id, kind, status.
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub fn list(&self) -> Vec<(String, &'static str, Arc<Status>)> {
        let mut rows: Vec<(u64, String, &'static str, Arc<Status>)> = self
            .read()
            .iter()
            .map(|(id, e)| (e.seq, id.clone(), e.kind, e.status.clone()))
            .collect();
        rows.sort_unstable_by_key(|r| r.0);
        rows.into_iter()
            .map(|(_, id, kind, status)| (id, kind, status))
            .collect()
    }

    /// A live chardev's ring: `Ok(None)` if `id` exists and has no ring,
    /// `Err(())` if there is no such chardev.
    pub fn ring(&self, id: &str) -> Result<Option<SharedRing>, ()> {
        self.read().get(id).map(|e| e.ring.clone()).ok_or(())
    }

    /// The number of live chardevs.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Every chardev's counters, in creation order.
    pub fn stats(&self) -> Vec<crate::stats::ChardevStats> {
        let mut rows: Vec<(u64, String, Arc<Status>, Option<SharedRing>)> = self
            .read()
            .iter()
            .map(|(id, e)| (e.seq, id.clone(), e.status.clone(), e.ring.clone()))
            .collect();
        rows.sort_unstable_by_key(|r| r.0);
        rows.into_iter()
            .map(|(_, label, status, ring)| {
                let overwritten = ring.map(|r| crate::chardev::lock_ring(&r).overwritten());
                crate::stats::ChardevStats::read(label, status.traffic(), overwritten)
            })
            .collect()
    }

    /// The rows of `query-chardev`, in creation order. The lock is held only
    /// while the entries are copied out; filenames are read after.
    pub fn query(&self) -> Vec<ChardevInfo> {
        let mut rows: Vec<(u64, String, Arc<Status>)> = self
            .read()
            .iter()
            .map(|(id, e)| (e.seq, id.clone(), e.status.clone()))
            .collect();
        rows.sort_unstable_by_key(|r| r.0);
        rows.into_iter()
            .map(|(_, label, status)| ChardevInfo {
                label,
                filename: status.filename(),
                frontend_open: status.frontend_open(),
            })
            .collect()
    }
}
