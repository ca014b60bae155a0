//! Descriptors passed to a QMP session with `SCM_RIGHTS` (unix sockets), and
//! the names `getfd` gives them: a socket chardev's `fd` address takes one by
//! name. Each session has its own table, as each QEMU monitor has.
//!
//! QEMU reads its input one byte at a time and keeps only the last
//! descriptor it received; chardevd reads ahead, so received descriptors wait
//! in order and each `getfd` takes the oldest.
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
}

/// One session's descriptors.
#[derive(Debug, Default)]
pub struct FdTable {
    inner: Mutex<Table>,
}

impl FdTable {
    /// An empty table.
    pub fn new() -> Arc<FdTable> {
        Arc::new(FdTable::default())
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
            if t.received.len() < MAX_PENDING_FDS {
                t.received.push_back(fd);
            } else {
                dropped += 1;
            }
        }
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "a QMP client passed more than {MAX_PENDING_FDS} descriptors without getfd; closed the rest"
            );
        }
    }

    /// `getfd`: name the oldest descriptor received (a name in use is
    /// replaced, its old descriptor closed).
    pub fn getfd(&self, name: &str) -> Result<(), Error> {
        let mut t = self.lock();
        let Some(fd) = t.received.pop_front() else {
            return Err(Error::NoFdSupplied);
        };
        if name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(Error::FdNameDigit);
        }
        t.named.insert(name.to_owned(), fd);
        Ok(())
    }

    /// `closefd`.
    pub fn closefd(&self, name: &str) -> Result<(), Error> {
        self.lock()
            .named
            .remove(name)
            .map(drop)
            .ok_or_else(|| Error::FdNameNotFound(name.to_owned()))
    }
}

impl FdSource for FdTable {
    fn take(&self, name: &str) -> Result<OwnedFd, BackendError> {
        self.lock()
            .named
            .remove(name)
            .ok_or_else(|| BackendError::FdNotFound(name.to_owned()))
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
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
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
        let t = FdTable::new();
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
