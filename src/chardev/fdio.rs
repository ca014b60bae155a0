//! Non-blocking I/O on file descriptors, for the host-file kinds (file,
//! pipe, serial, parallel, stdio, pty, udp).
//!
//! Pollable descriptors (fifos, ttys, ptys, sockets) are driven through
//! tokio's `AsyncFd`; regular files and devices that cannot be polled
//! (`/dev/null`, `/dev/full`) go through the blocking pool (`tokio::fs::File`).
//! Opens never block the thread: a fifo opened for writing with no reader yet
//! is retried until one comes, and only the command that asked waits.
use super::transport::Link;
use crate::error::BackendError;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How often an open of a fifo for writing retries while it has no reader.
pub const FIFO_WAIT_POLL: Duration = Duration::from_millis(50);

/// A path as QEMU passes it to the OS: QEMU keeps U+0000 inside a string
/// as the two bytes `C0 80` (modified UTF-8), so `"a\u0000b"` names the file
/// `a\xC0\x80b` there, and here too (a NUL byte cannot be in a path).
pub fn c_path(path: &str) -> std::borrow::Cow<'_, std::ffi::OsStr> {
    use std::os::unix::ffi::OsStringExt;
    if !path.contains('\0') {
        return std::borrow::Cow::Borrowed(std::ffi::OsStr::new(path));
    }
    let mut bytes = Vec::with_capacity(path.len() + 4);
    for &b in path.as_bytes() {
        if b == 0 {
            bytes.extend_from_slice(&[0xc0, 0x80]);
        } else {
            bytes.push(b);
        }
    }
    std::borrow::Cow::Owned(std::ffi::OsString::from_vec(bytes))
}

/// Open without ever blocking the thread: `O_NONBLOCK | O_CLOEXEC | O_NOCTTY`
/// are added, and a fifo opened for writing with no reader yet (`ENXIO`) is
/// retried every [`FIFO_WAIT_POLL`] until one comes. QEMU blocks there (and
/// freezes); here only the command that asked waits, and it stays cancellable.
pub async fn open_nonblocking(path: &str, flags: OFlags, mode: u32) -> Result<OwnedFd, rustix::io::Errno> {
    let flags = flags | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let path = c_path(path);
    loop {
        match rustix::fs::open(&*path, flags, Mode::from_raw_mode(mode)) {
            Err(rustix::io::Errno::NXIO)
                if rustix::fs::stat(&*path).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo) =>
            {
                tokio::time::sleep(FIFO_WAIT_POLL).await;
            }
            other => return other,
        }
    }
}

/// Open a path as QEMU's `qmp_chardev_open_file_source` does (mode 0666),
/// with QEMU's error. See [`open_nonblocking`].
pub async fn open_path(path: &str, flags: OFlags) -> Result<OwnedFd, BackendError> {
    open_nonblocking(path, flags, 0o666)
        .await
        .map_err(|e| BackendError::Open {
            path: path.to_owned(),
            source: e.into(),
        })
}

/// One descriptor, pollable or served by the blocking pool.
#[derive(Debug)]
pub enum FdIo {
    /// Pollable (fifo, tty, pty, socket), non-blocking; shared when one
    /// descriptor serves both directions; whether it is a byte stream.
    Poll(Rc<AsyncFd<OwnedFd>>, bool),
    /// A regular file or an unpollable device; a write is reported once
    /// the blocking pool did it (so its error is its own, not the next
    /// write's).
    File(tokio::fs::File, Option<usize>),
}

impl FdIo {
    /// Wrap `fd`: pollable descriptors are set non-blocking and registered
    /// with this thread's reactor; regular files and devices the reactor
    /// refuses (`/dev/null`, `/dev/full`) use the blocking pool.
    pub fn new(fd: OwnedFd) -> io::Result<FdIo> {
        let stat = rustix::fs::fstat(&fd)?;
        let kind = FileType::from_raw_mode(stat.st_mode);
        if matches!(kind, FileType::RegularFile | FileType::BlockDevice) {
            return Ok(FdIo::File(tokio::fs::File::from_std(std::fs::File::from(fd)), None));
        }
        // A byte stream (a stream socket, a fifo, a tty): a short read
        // means it is drained (a datagram socket reads one datagram).
        let stream = match kind {
            FileType::Socket => {
                rustix::net::sockopt::socket_type(&fd).is_ok_and(|t| t == rustix::net::SocketType::STREAM)
            }
            _ => true,
        };
        let flags = rustix::fs::fcntl_getfl(&fd)?;
        rustix::fs::fcntl_setfl(&fd, flags | OFlags::NONBLOCK)?;
        // SAFETY: `fd` is an OwnedFd moved into the AsyncFd: it stays open and
        // refers to the same file description until the AsyncFd is dropped.
        match unsafe { AsyncFd::register(fd) } {
            Ok(afd) => Ok(FdIo::Poll(Rc::new(afd), stream)),
            Err(e) => {
                let (fd, err) = e.into_parts();
                if err.raw_os_error() != Some(rustix::io::Errno::PERM.raw_os_error()) {
                    return Err(err);
                }
                rustix::fs::fcntl_setfl(&fd, flags)?;
                Ok(FdIo::File(tokio::fs::File::from_std(std::fs::File::from(fd)), None))
            }
        }
    }

    /// A second handle on the same pollable descriptor (serial: one fd both
    /// ways).
    pub fn share(&self) -> Option<FdIo> {
        match self {
            FdIo::Poll(a, s) => Some(FdIo::Poll(a.clone(), *s)),
            FdIo::File(..) => None,
        }
    }

    /// True when served by the reactor (not the blocking pool).
    pub fn is_pollable(&self) -> bool {
        matches!(self, FdIo::Poll(..))
    }

    /// The descriptor (for ioctls).
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            FdIo::Poll(a, _) => a.get_ref().as_fd(),
            FdIo::File(f, _) => f.as_fd(),
        }
    }

    /// Read some bytes (none filled = end of file).
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self {
            FdIo::Poll(afd, stream) => loop {
                let mut guard = ready!(afd.poll_read_ready(cx))?;
                let asked = buf.remaining();
                // Read into the unfilled part as it is: zeroing 64 KiB
                // before every read cost more than the read's own copy.
                // SAFETY: `read` only writes bytes into the slice (it never
                // de-initializes any), and only the `n` bytes it wrote are
                // then marked initialized.
                let unfilled = unsafe { buf.unfilled_mut() };
                let read = guard.try_io(|fd| {
                    rustix::io::read(fd.get_ref(), &mut *unfilled)
                        .map(|(done, _)| done.len())
                        .map_err(io::Error::from)
                });
                match read {
                    Ok(Ok(n)) => {
                        // SAFETY: `read` wrote these `n` bytes.
                        unsafe { buf.assume_init(n) };
                        buf.advance(n);
                        if *stream && n > 0 && n < asked {
                            // A short read of a byte stream drained it: wait
                            // for the next edge instead of reading again for
                            // an EAGAIN (as tokio's own TcpStream does). Data
                            // that came meanwhile keeps the readiness.
                            guard.clear_ready();
                        }
                        return Poll::Ready(Ok(()));
                    }
                    Ok(Err(e)) => return Poll::Ready(Err(e)),
                    Err(_would_block) => continue,
                }
            },
            FdIo::File(f, _) => Pin::new(f).poll_read(cx, buf),
        }
    }

    /// Write some of `data`.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            FdIo::Poll(afd, _) => loop {
                let mut guard = ready!(afd.poll_write_ready(cx))?;
                match guard.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(io::Error::from)) {
                    Ok(r) => return Poll::Ready(r),
                    Err(_would_block) => continue,
                }
            },
            FdIo::File(f, taken) => {
                // Called again with the same data until it returns Ready.
                if taken.is_none() {
                    *taken = Some(ready!(Pin::new(&mut *f).poll_write(cx, data))?);
                }
                let done = ready!(Pin::new(f).poll_flush(cx));
                let n = taken.take().unwrap_or(0);
                Poll::Ready(done.map(|()| n))
            }
        }
    }

    /// Finish writes still in the blocking pool.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            FdIo::Poll(..) => Poll::Ready(Ok(())),
            // A write in flight is finished (and its result taken) by the
            // `poll_write` it belongs to.
            FdIo::File(_, Some(_)) => Poll::Ready(Ok(())),
            FdIo::File(f, None) => Pin::new(f).poll_flush(cx),
        }
    }
}

/// A link over descriptors: an input to read (if any) and an output to write
/// (if any). Output with no descriptor is taken and dropped (a parallel port
/// has no data stream).
#[derive(Debug)]
pub struct FdLink {
    /// Read side.
    pub input: Option<FdIo>,
    /// Write side.
    pub output: Option<FdIo>,
    /// The output is this file, which a same-path replacement may truncate:
    /// on release it is flushed and closed, on reacquire opened again for
    /// appending.
    pub lends: Option<String>,
}

impl FdLink {
    /// A link reading `input` and writing `output`.
    pub fn new(input: Option<FdIo>, output: Option<FdIo>) -> FdLink {
        FdLink {
            input,
            output,
            lends: None,
        }
    }
}

impl Link for FdLink {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.input {
            Some(i) => i.poll_read(cx, buf),
            None => Poll::Pending,
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.output {
            Some(o) => o.poll_write(cx, data),
            None => Poll::Ready(Ok(data.len())),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.output {
            Some(o) => o.poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn has_input(&self) -> bool {
        self.input.is_some()
    }

    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.lends.is_none() {
            return Poll::Ready(());
        }
        if let Some(o) = &mut self.output {
            if o.poll_flush(cx).is_pending() {
                return Poll::Pending;
            }
        }
        self.output = None;
        Poll::Ready(())
    }

    fn reacquire(&mut self) {
        let (Some(path), None) = (&self.lends, &self.output) else {
            return;
        };
        let flags = OFlags::WRONLY | OFlags::APPEND | OFlags::NONBLOCK | OFlags::CLOEXEC;
        match rustix::fs::open(&*c_path(path), flags, Mode::empty())
            .map_err(io::Error::from)
            .and_then(FdIo::new)
        {
            Ok(o) => self.output = Some(o),
            Err(e) => tracing::warn!(path = %path, cause = %e, "cannot reopen the output file"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::c_path;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn u0000_in_a_path_is_c0_80_as_qemu_passes_it() {
        // QEMU 10.0.2 creates `/tmp/nul\xC0\x80x` for "out": "/tmp/nul\u0000x".
        assert_eq!(c_path("/tmp/nul\0x").as_bytes(), b"/tmp/nul\xc0\x80x");
        assert_eq!(c_path("plain").as_bytes(), b"plain");
    }
}

#[cfg(test)]
mod file_writes {
    use super::*;

    #[tokio::test]
    async fn a_failed_write_to_a_file_is_reported_with_its_own_data() {
        let fd = open_path("/dev/full", OFlags::WRONLY).await.unwrap();
        let mut io = FdIo::new(fd).unwrap();
        assert!(!io.is_pollable());
        let mut first = true;
        let r = std::future::poll_fn(|cx| {
            let r = io.poll_write(cx, b"x");
            if first {
                // A flush between the polls of a write (the transport's
                // read side flushes layers) does not take its result.
                first = false;
                assert!(io.poll_flush(cx).is_ready());
            }
            r
        })
        .await;
        assert_eq!(r.unwrap_err().raw_os_error(), Some(28));
    }
}
