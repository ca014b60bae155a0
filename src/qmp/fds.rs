//! Descriptors passed to a QMP session with `SCM_RIGHTS` (unix sockets), and
//! the names `getfd` gives them: a socket chardev's `fd` address takes one by
//! name. Each session has its own table, as each QEMU monitor has.
//!
//! QEMU reads its input one byte at a time and keeps only the last
//! descriptor it received; chardevd reads ahead, so received descriptors wait
//! in order and each `getfd` takes the oldest.
//!
//! Descriptors are bounded: a session may hold `Limits::session_fds` named
//! ones, and all sessions together `Limits::total_fds` (received or named);
//! beyond that received descriptors are closed and the next `getfd` says
//! why. One message may carry up to the kernel's 253 descriptors.
use crate::error::{BackendError, Error};
use crate::net::FdSource;
use rustix::fd::{AsFd, OwnedFd};
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Descriptors received and not yet named, before new ones are dropped
/// (closed) rather than kept.
pub const MAX_PENDING_FDS: usize = 64;

#[derive(Debug, Default)]
struct Table {
    received: VecDeque<OwnedFd>,
    named: HashMap<String, OwnedFd>,
    /// Descriptors closed on arrival since the last `getfd` (beyond a limit).
    closed: usize,
}

/// What all sessions of a system may hold.
#[derive(Debug)]
pub struct FdBudget {
    held: std::sync::atomic::AtomicUsize,
    total: usize,
    per_session: usize,
}

impl FdBudget {
    /// A budget of `total` descriptors, `per_session` named per session.
    pub fn new(total: usize, per_session: usize) -> Arc<FdBudget> {
        Arc::new(FdBudget {
            held: std::sync::atomic::AtomicUsize::new(0),
            total,
            per_session,
        })
    }

    fn take(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
                (h < self.total).then_some(h + 1)
            })
            .is_ok()
    }

    fn give(&self, n: usize) {
        self.held.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }
}

/// One session's descriptors.
#[derive(Debug)]
pub struct FdTable {
    inner: Mutex<Table>,
    budget: Arc<FdBudget>,
}

impl Drop for FdTable {
    fn drop(&mut self) {
        let t = self.lock();
        let n = t.received.len() + t.named.len();
        drop(t);
        self.budget.give(n);
    }
}

impl FdTable {
    /// An empty table, held against `budget`.
    pub fn new(budget: Arc<FdBudget>) -> Arc<FdTable> {
        Arc::new(FdTable {
            inner: Mutex::new(Table::default()),
            budget,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn received(&self, fds: impl IntoIterator<Item = OwnedFd>) {
        let mut t = self.lock();
        let mut dropped = 0usize;
        for fd in fds {
            if t.received.len() < MAX_PENDING_FDS && self.budget.take() {
                t.received.push_back(fd);
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            t.closed += dropped;
            tracing::warn!(
                dropped,
                "a QMP client passed descriptors beyond the limits ({MAX_PENDING_FDS} waiting, {} named per session, {} in all); closed them",
                self.budget.per_session,
                self.budget.total
            );
        }
    }

    /// `getfd`: name the oldest descriptor received (a name in use is
    /// replaced, its old descriptor closed).
    pub fn getfd(&self, name: &str) -> Result<(), Error> {
        let mut t = self.lock();
        let Some(fd) = t.received.pop_front() else {
            if std::mem::take(&mut t.closed) > 0 {
                // Beyond what QEMU could hold: say why it is not there.
                let max = self.budget.per_session.min(self.budget.total);
                return Err(Error::TooMany {
                    what: "descriptors passed (they were closed)",
                    max,
                });
            }
            return Err(Error::NoFdSupplied);
        };
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            self.budget.give(1);
            return Err(Error::FdNameDigit);
        }
        if !t.named.contains_key(name) && t.named.len() >= self.budget.per_session {
            self.budget.give(1);
            let max = self.budget.per_session;
            return Err(Error::TooMany {
                what: "named descriptors (closefd some)",
                max,
            });
        }
        if t.named.insert(name.to_owned(), fd).is_some() {
            // The old descriptor of that name is closed.
            self.budget.give(1);
        }
        Ok(())
    }

    /// `closefd`.
    pub fn closefd(&self, name: &str) -> Result<(), Error> {
        let fd = self.lock().named.remove(name);
        match fd {
            Some(fd) => {
                drop(fd);
                self.budget.give(1);
                Ok(())
            }
            None => Err(Error::FdNameNotFound(name.to_owned())),
        }
    }
}

impl FdSource for FdTable {
    fn take(&self, name: &str) -> Result<OwnedFd, BackendError> {
        let fd = self.lock().named.remove(name);
        match fd {
            Some(fd) => {
                self.budget.give(1);
                Ok(fd)
            }
            None => Err(BackendError::FdNotFound(name.to_owned())),
        }
    }
}

/// A unix QMP connection that collects the descriptors sent along with its
/// bytes into an [`FdTable`].
#[derive(Debug)]
pub struct FdStream {
    stream: tokio::net::UnixStream,
    table: Arc<FdTable>,
    /// How much of the caller's buffer the next read offers. `recvmsg`
    /// needs initialised memory, so what is offered is zeroed first: the
    /// window starts small (an idle session touches one page, not the whole
    /// read buffer) and doubles while reads fill it.
    window: usize,
}

/// The smallest and largest read window of an [`FdStream`].
const MIN_WINDOW: usize = 4096;
const MAX_WINDOW: usize = 1 << 20;

impl FdStream {
    /// Read `stream`, keeping descriptors in `table`.
    pub fn new(stream: tokio::net::UnixStream, table: Arc<FdTable>) -> FdStream {
        FdStream {
            stream,
            table,
            window: MIN_WINDOW,
        }
    }
}

impl AsyncRead for FdStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            std::task::ready!(me.stream.poll_read_ready(cx))?;
            let offered = me.window.min(buf.remaining());
            let unfilled = buf.initialize_unfilled_to(offered);
            let result = me.stream.try_io(tokio::io::Interest::READABLE, || {
                // Room for the most one message can carry (the kernel's
                // SCM_MAX_FD), so none is cut off unseen.
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(253))];
                let mut ancillary = RecvAncillaryBuffer::new(&mut space);
                let mut iov = [IoSliceMut::new(unfilled)];
                let msg = rustix::net::recvmsg(
                    me.stream.as_fd(),
                    &mut iov,
                    &mut ancillary,
                    RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
                )
                .map_err(io::Error::from)?;
                let mut fds = Vec::new();
                for m in ancillary.drain() {
                    if let RecvAncillaryMessage::ScmRights(rights) = m {
                        fds.extend(rights);
                    }
                }
                Ok((msg.bytes, fds))
            });
            match result {
                Ok((n, fds)) => {
                    me.table.received(fds);
                    buf.advance(n);
                    if n == offered {
                        me.window = (me.window * 2).min(MAX_WINDOW);
                    } else if n < me.window / 4 {
                        me.window = (me.window / 2).max(MIN_WINDOW);
                    }
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for FdStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getfd_names_the_oldest_and_closefd_forgets() {
        let t = FdTable::new(FdBudget::new(16, 4));
        assert_eq!(
            t.getfd("a").unwrap_err().to_string(),
            "No file descriptor supplied via SCM_RIGHTS"
        );
        let (x, y) = std::os::unix::net::UnixStream::pair().unwrap();
        let (x, y): (OwnedFd, OwnedFd) = (x.into(), y.into());
        t.received([x, y]);
        assert_eq!(
            t.getfd("1a").unwrap_err().to_string(),
            "Parameter 'fdname' expects a name not starting with a digit"
        );
        t.getfd("a").unwrap();
        assert!(t.take("a").is_ok());
        assert_eq!(
            t.take("a").unwrap_err().to_string(),
            "File descriptor named 'a' has not been found",
            "a descriptor is used up by what takes it"
        );
        assert_eq!(
            t.closefd("a").unwrap_err().to_string(),
            "File descriptor named 'a' not found"
        );
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    fn fds(n: usize) -> Vec<OwnedFd> {
        (0..n)
            .map(|_| OwnedFd::from(std::fs::File::open("/dev/null").unwrap()))
            .collect()
    }

    #[test]
    fn descriptors_are_held_within_the_session_and_the_total_budget() {
        let budget = FdBudget::new(6, 2);
        let a = FdTable::new(budget.clone());
        a.received(fds(3));
        a.getfd("x").unwrap();
        a.getfd("y").unwrap();
        assert_eq!(
            a.getfd("z").unwrap_err().to_string(),
            "too many named descriptors (closefd some): at most 2 (a chardevd limit)"
        );
        a.getfd("x").unwrap_err(); // nothing left waiting
        let b = FdTable::new(budget.clone());
        b.received(fds(8));
        assert_eq!(budget.held.load(std::sync::atomic::Ordering::SeqCst), 6);
        for _ in 0..4 {
            b.getfd("w").unwrap();
        }
        assert!(b
            .getfd("w")
            .unwrap_err()
            .to_string()
            .starts_with("too many descriptors passed"));
        assert_eq!(
            b.getfd("w").unwrap_err().to_string(),
            "No file descriptor supplied via SCM_RIGHTS"
        );
        a.closefd("x").unwrap();
        drop(b);
        assert_eq!(
            budget.held.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "only a's y is held"
        );
    }
}
