//! Non-blocking I/O on file descriptors for the fd-based backends (file,
//! pipe, serial, parallel, stdio), and the generic actor that serves them.
//!
//! Pollable descriptors (fifos, ttys, ptys) are driven through tokio's
//! `AsyncFd`; regular files and devices that cannot be polled (`/dev/null`,
//! `/dev/full`) go through the blocking pool. Input is read only when the
//! attached frontend has room for it (QEMU's `can_read` contract): the reader
//! reserves a slot in the frontend's bounded queue before each read, so a slow
//! frontend makes the backend stop reading and nothing is lost. Output goes
//! through a bounded queue ([`OUTPUT_QUEUE`]) to one writer task per backend.
use super::logfile::LogFile;
use super::{BackendReply, CharIoctl, FrontendEvent, FrontendSink, ToBackend};
use crate::actors::ChardevError;
use actix::prelude::*;
use bytes::Bytes;
use rustix::fd::{AsFd, OwnedFd};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Bytes read from a descriptor at a time (QEMU reads 4 KiB; larger chunks
/// cost nothing here and cut per-message overhead).
pub const READ_CHUNK: usize = 64 * 1024;

/// Writes queued for one backend's writer task before frontends wait.
pub const OUTPUT_QUEUE: usize = 64;

/// How long a removed backend may take to flush its queued output.
pub const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// A descriptor: pollable, or served by the blocking pool.
#[derive(Debug, Clone)]
pub enum Io {
    /// Pollable (fifo, tty, pty, socket), non-blocking.
    Poll(Arc<AsyncFd<OwnedFd>>),
    /// A regular file or an unpollable device.
    Blocking(Arc<std::fs::File>),
}

impl Io {
    /// Wrap `fd`: pollable descriptors are set non-blocking and registered
    /// with the reactor; regular files and unpollable devices use the
    /// blocking pool.
    pub fn new(fd: OwnedFd) -> io::Result<Io> {
        let stat = rustix::fs::fstat(&fd)?;
        let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
        if matches!(
            kind,
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::BlockDevice
        ) {
            return Ok(Io::Blocking(Arc::new(std::fs::File::from(fd))));
        }
        let flags = rustix::fs::fcntl_getfl(&fd)?;
        rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK)?;
        // SAFETY: `fd` is an OwnedFd moved into the AsyncFd: it stays open and
        // refers to the same file description until the AsyncFd is dropped.
        match unsafe { AsyncFd::register(fd) } {
            Ok(afd) => Ok(Io::Poll(Arc::new(afd))),
            Err(e) => {
                let (fd, err) = e.into_parts();
                // Some character devices (/dev/null, /dev/full) cannot be polled.
                if err.raw_os_error() != Some(rustix::io::Errno::PERM.raw_os_error()) {
                    return Err(err);
                }
                rustix::fs::fcntl_setfl(&fd, flags)?;
                Ok(Io::Blocking(Arc::new(std::fs::File::from(fd))))
            }
        }
    }

    /// Read some bytes (0 = end of file).
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Poll(afd) => loop {
                let mut guard = afd.readable().await?;
                match guard.try_io(|fd| rustix::io::read(fd.as_fd(), &mut *buf).map_err(io::Error::from)) {
                    Ok(r) => return r,
                    Err(_would_block) => continue,
                }
            },
            Io::Blocking(f) => {
                let f = f.clone();
                let len = buf.len();
                let (r, data) = tokio::task::spawn_blocking(move || {
                    let mut tmp = vec![0u8; len];
                    let r = std::io::Read::read(&mut &*f, &mut tmp);
                    (r, tmp)
                })
                .await
                .map_err(io::Error::other)?;
                let n = r?;
                buf[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
        }
    }

    /// Write all of `data`.
    pub async fn write_all(&self, data: &[u8]) -> io::Result<()> {
        match self {
            Io::Poll(afd) => {
                let mut off = 0;
                while off < data.len() {
                    let mut guard = afd.writable().await?;
                    match guard.try_io(|fd| rustix::io::write(fd.as_fd(), &data[off..]).map_err(io::Error::from)) {
                        Ok(Ok(n)) => off += n,
                        Ok(Err(e)) => return Err(e),
                        Err(_would_block) => continue,
                    }
                }
                Ok(())
            }
            Io::Blocking(f) => {
                let f = f.clone();
                let data = data.to_vec();
                tokio::task::spawn_blocking(move || std::io::Write::write_all(&mut &*f, &data))
                    .await
                    .map_err(io::Error::other)?
            }
        }
    }

    /// The underlying descriptor (for ioctls).
    pub fn as_fd(&self) -> rustix::fd::BorrowedFd<'_> {
        match self {
            Io::Poll(afd) => afd.get_ref().as_fd(),
            Io::Blocking(f) => f.as_fd(),
        }
    }
}

/// How a reader treats what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// A byte stream: end of file (or a read error) ends the input, with a
    /// `Closed` event when `closed_event` (QEMU's fd chardevs).
    Stream {
        /// Send `Closed` at the end.
        closed_event: bool,
    },
    /// Datagrams: each read is one datagram; an empty one is just empty, and
    /// errors (an ICMP "port unreachable" from an earlier send) are skipped.
    Datagram,
}

/// Feed a frontend from `src`: wait for a frontend, reserve room in its queue,
/// then read (QEMU's `can_read` contract: nothing is read that the frontend
/// cannot take). Returns when the input ends.
pub async fn pump_input(id: String, src: Io, mut frontend: watch::Receiver<Option<FrontendSink>>, mode: InputMode) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let sink = loop {
            if let Some(s) = frontend.borrow_and_update().clone() {
                break s;
            }
            if frontend.changed().await.is_err() {
                return;
            }
        };
        let permit = tokio::select! {
            p = sink.reserve() => match p {
                Ok(p) => p,
                Err(_) => {
                    // That frontend is gone; wait for the next one.
                    if frontend.changed().await.is_err() { return; }
                    continue;
                }
            },
            changed = frontend.changed() => {
                if changed.is_err() { return; }
                continue;
            }
        };
        let result = src.read(&mut buf).await;
        match (result, mode) {
            (Ok(0), InputMode::Datagram) => drop(permit),
            (Ok(n), _) if n > 0 => {
                let data = FrontendEvent::Data(Bytes::copy_from_slice(&buf[..n]));
                if !sink.is_closed() {
                    permit.send(data);
                } else {
                    // The frontend went while we were reading: hand the bytes
                    // to the next one instead of dropping them.
                    drop(permit);
                    let next = loop {
                        if let Some(s) = frontend.borrow_and_update().clone().filter(|s| !s.is_closed()) {
                            break s;
                        }
                        if frontend.changed().await.is_err() {
                            return;
                        }
                    };
                    let _ = next.send(data).await;
                }
            }
            (Err(e), _) if e.kind() == io::ErrorKind::Interrupted => drop(permit),
            (Err(e), InputMode::Datagram) => {
                tracing::debug!(chardev = %id, cause = %e, "datagram receive error skipped");
                drop(permit);
            }
            (end, InputMode::Stream { closed_event }) => {
                match end {
                    Err(e) => {
                        tracing::debug!(chardev = %id, cause = %e, "input read failed; input closed")
                    }
                    Ok(_) => tracing::debug!(chardev = %id, "input reached end of file"),
                }
                if closed_event {
                    permit.send(FrontendEvent::Closed);
                }
                return;
            }
            (Ok(_), InputMode::Datagram) => drop(permit),
        }
    }
}

/// Drain `rx` into `dst`. Write errors are logged (once per error kind in a
/// row) and the data is dropped, as QEMU drops what a failing backend cannot
/// take; the daemon and other chardevs are unaffected. Once `closing` is
/// cancelled (the backend was removed or replaced), what is queued is flushed
/// for at most [`CLOSE_FLUSH`], even if a write is stuck, and the descriptor
/// is closed.
pub async fn pump_output(id: String, dst: Io, mut rx: mpsc::Receiver<Bytes>, closing: CancellationToken) {
    let flush_end = async {
        closing.cancelled().await;
        tokio::time::sleep(CLOSE_FLUSH).await;
    };
    tokio::pin!(flush_end);
    let mut last_error: Option<io::ErrorKind> = None;
    loop {
        let data = tokio::select! {
            d = rx.recv() => match d {
                Some(d) => d,
                None => return,
            },
            _ = &mut flush_end => return,
        };
        let result = tokio::select! {
            r = dst.write_all(&data) => r,
            _ = &mut flush_end => {
                tracing::warn!(chardev = %id, "output still blocked after the chardev went; the rest is dropped");
                return;
            }
        };
        match result {
            Ok(()) => last_error = None,
            Err(e) => {
                if last_error != Some(e.kind()) {
                    tracing::warn!(chardev = %id, cause = %e, bytes = data.len(), "write failed; data dropped");
                    last_error = Some(e.kind());
                }
            }
        }
    }
}

/// Backend-specific side of an fd backend.
pub trait FdKind: std::fmt::Debug + 'static {
    /// Handle a frontend ioctl (serial line settings, parallel port, ...).
    fn ioctl(&mut self, _req: CharIoctl) -> Result<BackendReply, ChardevError> {
        Err(ChardevError::NotSupported)
    }

    /// Give up exclusive named resources for a replacement (`chardev-change`).
    fn release(&mut self) {}

    /// Take them back after a failed replacement.
    fn reacquire(&mut self) {}
}

/// No ioctls (file, pipe, stdio).
#[derive(Debug)]
pub struct Plain;
impl FdKind for Plain {}

/// The generic fd backend actor.
#[derive(Debug)]
pub struct FdBackend<K: FdKind> {
    id: String,
    input: Option<Io>,
    output: Option<mpsc::Sender<Bytes>>,
    frontend: watch::Sender<Option<FrontendSink>>,
    log: Option<LogFile>,
    /// Open now (QEMU's `be_open`): true at creation unless `not_opened`,
    /// false once the input ends with a `Closed` event.
    open: std::rc::Rc<std::cell::Cell<bool>>,
    input_mode: InputMode,
    /// Cancelled when the backend goes: bounds the writer's final flush.
    closing: CancellationToken,
    /// The writer task (awaited when the output is lent out).
    writer: Option<actix_rt::task::JoinHandle<()>>,
    /// See [`FdBackend::lends_output`].
    out_path: Option<String>,
    kind: K,
}

impl<K: FdKind + Unpin> FdBackend<K> {
    /// A backend reading `input` (if any) and writing to `output` (if any).
    /// The writer task starts at once; the reader starts with the actor.
    pub fn new(id: &str, input: Option<Io>, output: Option<Io>, log: Option<LogFile>, kind: K) -> Self {
        let closing = CancellationToken::new();
        let (output, writer) = match output {
            Some(dst) => {
                let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
                let writer = actix_rt::spawn(pump_output(id.to_owned(), dst, rx, closing.clone()));
                (Some(tx), Some(writer))
            }
            None => (None, None),
        };
        let (frontend, _) = watch::channel(None);
        FdBackend {
            id: id.to_owned(),
            input,
            output,
            frontend,
            log,
            open: std::rc::Rc::new(std::cell::Cell::new(true)),
            input_mode: InputMode::Stream { closed_event: true },
            closing,
            writer,
            out_path: None,
            kind,
        }
    }

    /// The output is the file at `path`, which a same-path replacement may
    /// need to truncate: on `Release` the output is flushed and closed, and on
    /// `Reacquire` it is opened again for appending.
    pub fn lends_output(mut self, path: &str) -> Self {
        self.out_path = Some(path.to_owned());
        self
    }

    /// A backend that is not open at creation (QEMU's `be_opened = false`):
    /// its frontend gets no `OPENED` on attach.
    pub fn not_opened(self) -> Self {
        self.open.set(false);
        self
    }

    /// Read datagrams instead of a stream.
    pub fn datagrams(mut self) -> Self {
        self.input_mode = InputMode::Datagram;
        self
    }

    fn notify(&self, ev: FrontendEvent) {
        if let Some(fe) = self.frontend.borrow().as_ref() {
            super::deliver(fe, ev);
        }
    }
}

impl<K: FdKind + Unpin> Actor for FdBackend<K> {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.closing.cancel();
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(src) = self.input.take() {
            let mode = self.input_mode;
            let open = self.open.clone();
            let input = pump_input(self.id.clone(), src, self.frontend.subscribe(), mode);
            ctx.spawn(actix::fut::wrap_future(async move {
                input.await;
                if mode == (InputMode::Stream { closed_event: true }) {
                    open.set(false);
                }
            }));
        }
    }
}

impl<K: FdKind + Unpin> Handler<ToBackend> for FdBackend<K> {
    type Result = ResponseFuture<Result<BackendReply, ChardevError>>;

    fn handle(&mut self, msg: ToBackend, ctx: &mut Context<Self>) -> Self::Result {
        let done = |r| -> Self::Result { Box::pin(std::future::ready(r)) };
        match msg {
            ToBackend::Write(b) => {
                if let Some(log) = &mut self.log {
                    log.log(&b);
                }
                let Some(tx) = self.output.clone() else {
                    return done(Ok(BackendReply::Written(b.len())));
                };
                let len = b.len();
                Box::pin(async move {
                    // Waits while the writer is behind: this is the backpressure.
                    let _ = tx.send(b).await;
                    Ok(BackendReply::Written(len))
                })
            }
            ToBackend::Attach(sink) => {
                self.frontend.send_replace(Some(sink));
                // Open now, not at creation: a file whose input ended is closed.
                if self.open.get() {
                    self.notify(FrontendEvent::Opened);
                }
                done(Ok(BackendReply::Done))
            }
            ToBackend::Detach => {
                self.frontend.send_replace(None);
                done(Ok(BackendReply::Done))
            }
            ToBackend::Break => {
                self.notify(FrontendEvent::Break);
                done(Ok(BackendReply::Done))
            }
            ToBackend::Ioctl(req) => done(self.kind.ioctl(req)),
            ToBackend::IsOpen => done(Ok(BackendReply::Value(self.open.get() as u32))),
            ToBackend::Release => {
                self.kind.release();
                if self.out_path.is_none() {
                    return done(Ok(BackendReply::Done));
                }
                // Flush and close the output file before the replacement opens
                // (and truncates) it.
                self.output = None;
                let writer = self.writer.take();
                Box::pin(async move {
                    if let Some(w) = writer {
                        let _ = tokio::time::timeout(CLOSE_FLUSH, w).await;
                    }
                    Ok(BackendReply::Done)
                })
            }
            ToBackend::Reacquire => {
                self.kind.reacquire();
                if let (Some(path), None) = (&self.out_path, &self.output) {
                    let flags = rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::APPEND | rustix::fs::OFlags::NONBLOCK;
                    let reopened = rustix::fs::open(
                        path.as_str(),
                        flags | rustix::fs::OFlags::CLOEXEC,
                        rustix::fs::Mode::empty(),
                    )
                    .map_err(io::Error::from)
                    .and_then(Io::new);
                    match reopened {
                        Ok(dst) => {
                            let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
                            self.writer = Some(actix_rt::spawn(pump_output(
                                self.id.clone(),
                                dst,
                                rx,
                                self.closing.clone(),
                            )));
                            self.output = Some(tx);
                        }
                        Err(e) => tracing::warn!(chardev = %self.id, cause = %e, "cannot reopen the output file"),
                    }
                }
                done(Ok(BackendReply::Done))
            }
            ToBackend::RingWrite(_) | ToBackend::RingRead { .. } => {
                done(Err(ChardevError::NotRingbuf(self.id.clone())))
            }
            ToBackend::Stop => {
                self.output = None;
                ctx.stop();
                done(Ok(BackendReply::Done))
            }
        }
    }
}
