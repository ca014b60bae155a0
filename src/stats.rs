//! Traffic and drop counters, for operators: per chardev, bytes in and out
//! and every byte dropped, by cause; for QMP, sessions and what was refused
//! or cut off. Read with `__org.chardevd_query-stats` or
//! [`crate::Handle::query_stats`]; RELIABILITY.md says when each is counted.
//!
//! The counters are atomics bumped on the data path (relaxed: a reader sees
//! each one exact, not all at one instant) and only ever grow; a chardev's
//! survive `chardev-change` and go with `chardev-remove`.
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// Add `n` to a counter.
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// One chardev's counters, shared by its actor (which bumps them) and the
/// directory (which reads them).
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    /// Bytes the backend read (handed to the frontends).
    pub read: AtomicU64,
    /// Bytes of frontend output the backend took.
    pub written: AtomicU64,
    /// Output dropped because nothing was connected (a socket with no
    /// client; QEMU's write fails the same way).
    pub unconnected: AtomicU64,
    /// Output dropped because a write failed.
    pub write_failed: AtomicU64,
    /// Writes that failed.
    pub write_errors: AtomicU64,
    /// Output still queued when the chardev went (removed, replaced, the
    /// system stopping) after its flush time ran out.
    pub at_close: AtomicU64,
    /// Input a frontend that drops (rather than stalls) had no room for.
    pub lost: AtomicU64,
    /// Output the backend took that its log file could not take.
    pub log_lost: AtomicU64,
}

/// One chardev's counters at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChardevStats {
    /// The chardev's id.
    pub label: String,
    /// Bytes read from the backend for the frontends.
    pub bytes_in: u64,
    /// Bytes of the frontends' output the backend took.
    pub bytes_out: u64,
    /// Output dropped: nothing connected, a failed write, or still queued
    /// when the chardev went (the sum of the three below).
    pub dropped_out: u64,
    /// Output dropped because nothing was connected.
    pub dropped_unconnected: u64,
    /// Output dropped because a write failed.
    pub dropped_write_error: u64,
    /// Output still queued when the chardev went and its flush time ran out.
    pub dropped_at_close: u64,
    /// Writes that failed.
    pub write_errors: u64,
    /// Input dropped for a frontend that drops what it has no room for.
    pub dropped_in: u64,
    /// Output the backend took that the log file could not take (a failed
    /// write, a full disk, a fifo nobody reads).
    pub log_dropped: u64,
    /// Ring kinds (`ringbuf`, `memory`): bytes overwritten before anyone
    /// read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overwritten: Option<u64>,
}

impl ChardevStats {
    /// The counters of `label` now.
    pub(crate) fn read(label: String, t: &Traffic, overwritten: Option<u64>) -> ChardevStats {
        let (unconnected, failed, at_close) = (get(&t.unconnected), get(&t.write_failed), get(&t.at_close));
        ChardevStats {
            label,
            bytes_in: get(&t.read),
            bytes_out: get(&t.written),
            dropped_out: unconnected + failed + at_close,
            dropped_unconnected: unconnected,
            dropped_write_error: failed,
            dropped_at_close: at_close,
            write_errors: get(&t.write_errors),
            dropped_in: get(&t.lost),
            log_dropped: get(&t.log_lost),
            overwritten,
        }
    }
}

/// The QMP side's counters, one set per system.
#[derive(Debug, Default)]
pub(crate) struct QmpCounters {
    /// Sessions now (clients and monitors).
    pub open: AtomicU64,
    /// Sessions ever started.
    pub served: AtomicU64,
    /// Connections refused over `--max-sessions`.
    pub refused: AtomicU64,
    /// Clients cut off for not reading (events piling up, or no progress
    /// for the stall timeout).
    pub cut_off: AtomicU64,
    /// Clients let go while a command waited, after they hung up.
    pub hung_up: AtomicU64,
    /// Events a monitor dropped because nobody reads its chardev.
    pub events_dropped: AtomicU64,
    /// Messages dropped for their size or the shared input budget.
    pub messages_refused: AtomicU64,
}

/// The QMP side at one time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct QmpStats {
    /// Sessions now (clients of every listener, and monitors).
    pub sessions: u64,
    /// Sessions ever started.
    pub sessions_served: u64,
    /// Connections refused over the session limit.
    pub sessions_refused: u64,
    /// Clients cut off for not reading.
    pub sessions_cut_off: u64,
    /// Clients let go after they hung up while a command waited.
    pub sessions_hung_up: u64,
    /// Events monitors dropped because nobody reads their chardev.
    pub events_dropped: u64,
    /// Messages dropped for their size or the shared input budget.
    pub messages_refused: u64,
}

impl QmpCounters {
    /// The counters now.
    pub(crate) fn read(&self) -> QmpStats {
        QmpStats {
            sessions: get(&self.open),
            sessions_served: get(&self.served),
            sessions_refused: get(&self.refused),
            sessions_cut_off: get(&self.cut_off),
            sessions_hung_up: get(&self.hung_up),
            events_dropped: get(&self.events_dropped),
            messages_refused: get(&self.messages_refused),
        }
    }
}

/// What `__org.chardevd_query-stats` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Every chardev, in creation order.
    pub chardevs: Vec<ChardevStats>,
    /// The QMP side.
    pub qmp: QmpStats,
}
