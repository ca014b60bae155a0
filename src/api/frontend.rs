//! Frontends: what sits on a chardev as QEMU's guest devices do (an
//! embedder's device model, the built-in `echo`, `bridge` and `port`
//! devices, a QMP monitor).
//!
//! A [`Frontend`] is a byte stream with events beside it:
//! - its **input** (what the chardev's outside world sends) is read as
//!   bytes: [`FrontendReader`] is a `Stream` of [`Bytes`] and an
//!   [`AsyncRead`]; the unsplit [`Frontend`] is an `AsyncRead` too, and a
//!   `Stream` of [`FrontendEvent`]s (data and events in their order);
//! - its **output** (what it writes to the chardev) is a `Sink<Bytes>` and an
//!   [`AsyncWrite`] ([`FrontendWriter`], or the unsplit [`Frontend`]); a
//!   flush returns once the chardev has finished with every byte (handed it
//!   to its backend and its log, or dropped it as its kind does with no
//!   client: QEMU's `qemu_chr_fe_write_all`);
//! - the chardev's **events** (OPENED, CLOSED, BREAK, MUX_IN, MUX_OUT) come
//!   on their own `Stream` ([`FrontendEvents`]), or in order with the data;
//! - **control**: `frontend-open` ([`Frontend::set_open`]) and device
//!   ioctls ([`Frontend::ioctl`]).
//!
//! It works with `tokio::io::copy`, `tokio::io::split` and
//! `tokio_util::codec::Framed`. Backpressure reaches the backend: while
//! input is not read, the chardev stops reading its outside world (QEMU's
//! `can_read`); writes wait while the chardev has not taken what was
//! written. A frontend starts with `frontend-open` false; it is told OPENED
//! at once if its backend is open (a ring, a connected socket) — the two
//! are different things, as in QEMU. Dropping every part of a frontend
//! detaches it (what it wrote is still written); a `chardev-change` moves it
//! to the new backend, and nothing changes on its side.
//!
//! ```
//! use chardevd::backends::{ChardevBackend, Ringbuf};
//! use tokio::io::AsyncWriteExt;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let handle = chardevd::spawn(chardevd::Config::default())?;
//! handle.chardev_add("log", ChardevBackend::new(Ringbuf::default())).await?;
//! let fe = handle.attach("log").await?;
//! let (_reader, mut writer, _events) = fe.split();
//! writer.write_all(b"boot ok\n").await?; // AsyncWrite: into the ring
//! writer.flush().await?; // the ring has it now
//! assert_eq!(&handle.ringbuf_read("log", 64).await?[..], b"boot ok\n");
//! handle.shutdown();
//! # Ok::<_, Box<dyn std::error::Error>>(()) })
//! # }
//! ```
use super::execute::Executor;
use crate::actors::chardev::Control;
use crate::actors::supervisor::{later, ready};
use crate::chardev::port::{ChardevEvent, PortHandle};
use crate::chardev::{CharIoctl, FrontendEvent, Port};
use crate::error::Error;
use crate::registry::Holder;
use bytes::Bytes;
use futures_util::{Sink, Stream};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// One frontend's hold on its chardev, shared by its parts; the last part
/// dropped detaches it.
#[derive(Debug)]
struct Attachment {
    chardev: String,
    holder: Holder,
    port: Port,
    exec: Executor,
    /// The registry detaches it (a device's or a monitor's): dropping it
    /// only lets the port go.
    managed: bool,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if !self.managed {
            // A rare control message: a fire-and-forget send is fine here.
            let (chardev, holder) = (self.chardev.clone(), self.holder.clone());
            self.exec.tell(move |sup, _ctx| sup.detach(&chardev, &holder));
        }
    }
}

impl Attachment {
    fn detached(&self) -> Error {
        Error::Detached(self.chardev.clone())
    }

    fn broken(&self) -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, self.detached())
    }

    async fn set_open(&self, open: bool) -> Result<(), Error> {
        let (chardev, holder) = (self.chardev.clone(), self.holder.clone());
        self.exec
            .call(move |sup, _ctx| {
                let Some(port) = sup.registry.port_of(&chardev, &holder) else {
                    return ready(Err(Error::Detached(chardev)));
                };
                let (done, rx) = oneshot::channel();
                if let Err(e) = sup.port_op(&chardev, Control::SetOpen { port, open, done }) {
                    return ready(Err(e));
                }
                later(async move {
                    match rx.await {
                        Ok(true) => Ok(()),
                        _ => Err(Error::Detached(chardev)),
                    }
                })
            })
            .await?
    }

    async fn ioctl(&self, req: CharIoctl) -> Result<u32, Error> {
        let (chardev, holder) = (self.chardev.clone(), self.holder.clone());
        self.exec
            .call(move |sup, _ctx| {
                if sup.registry.port_of(&chardev, &holder).is_none() {
                    return ready(Err(Error::Detached(chardev)));
                }
                let (done, rx) = oneshot::channel();
                if let Err(e) = sup.port_op(&chardev, Control::Ioctl { req, done }) {
                    return ready(Err(e));
                }
                later(async move { rx.await.unwrap_or(Err(Error::Detached(chardev))) })
            })
            .await?
    }
}

/// The input side's state: what an `AsyncRead` left of the last chunk.
#[derive(Debug, Default)]
struct ReadState {
    leftover: Bytes,
}

impl ReadState {
    fn poll_read(&mut self, port: &PortHandle, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.leftover.is_empty() {
            match port.poll_data(cx) {
                Poll::Pending => return Poll::Pending,
                // Detached: end of file.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(b)) => self.leftover = b,
            }
        }
        let n = self.leftover.len().min(buf.remaining());
        buf.put_slice(&self.leftover.split_to(n));
        Poll::Ready(Ok(()))
    }

    fn poll_chunk(&mut self, port: &PortHandle, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if !self.leftover.is_empty() {
            return Poll::Ready(Some(std::mem::take(&mut self.leftover)));
        }
        port.poll_data(cx)
    }

    fn poll_ordered(&mut self, port: &PortHandle, cx: &mut Context<'_>) -> Poll<Option<FrontendEvent>> {
        if !self.leftover.is_empty() {
            return Poll::Ready(Some(FrontendEvent::Data(std::mem::take(&mut self.leftover))));
        }
        port.poll_recv(cx)
    }
}

/// The output side's state: a `Sink` item not yet queued whole.
#[derive(Debug, Default)]
struct WriteState {
    pending: Bytes,
}

impl WriteState {
    /// Queue what is pending, as room allows.
    fn poll_push(&mut self, att: &Attachment, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        while !self.pending.is_empty() {
            match att.port.poll_write(cx, &mut self.pending) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => return Poll::Ready(Err(att.detached())),
                Poll::Ready(Ok(_)) => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_flush(&mut self, att: &Attachment, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match self.poll_push(att, cx) {
            Poll::Ready(Ok(())) => att.port.poll_flush(cx).map_err(|_| att.detached()),
            other => other,
        }
    }
}

fn io_write(att: &Attachment, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    match att.port.poll_room(cx) {
        Poll::Pending => Poll::Pending,
        Poll::Ready(Err(_)) => Poll::Ready(Err(att.broken())),
        Poll::Ready(Ok(room)) => Poll::Ready(
            att.port
                .try_write(&buf[..room.min(buf.len())])
                .map_err(|_| att.broken()),
        ),
    }
}

fn io_flush(att: &Attachment, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    att.port.poll_flush(cx).map_err(|_| att.broken())
}

/// A frontend attached to one chardev (see the module docs). Unsplit, it
/// reads data and events in their order ([`Frontend::recv`], `Stream`),
/// reads bytes (`AsyncRead`) and writes (`AsyncWrite`, `Sink<Bytes>`).
#[derive(Debug)]
pub struct Frontend {
    att: Arc<Attachment>,
    read: ReadState,
    write: WriteState,
}

impl Frontend {
    pub(crate) fn new(chardev: String, holder: Holder, port: Port, exec: Executor) -> Frontend {
        Self::make(chardev, holder, port, exec, false)
    }

    /// A frontend whose hold the registry manages (a device's, a monitor's).
    pub(crate) fn managed(chardev: String, holder: Holder, port: Port, exec: Executor) -> Frontend {
        Self::make(chardev, holder, port, exec, true)
    }

    fn make(chardev: String, holder: Holder, port: Port, exec: Executor, managed: bool) -> Frontend {
        Frontend {
            att: Arc::new(Attachment {
                chardev,
                holder,
                port,
                exec,
                managed,
            }),
            read: ReadState::default(),
            write: WriteState::default(),
        }
    }

    /// The chardev's id.
    pub fn chardev(&self) -> &str {
        &self.att.chardev
    }

    /// The next data item or event, in their order; `None` once the
    /// frontend is detached (its chardev was removed, the system stopped).
    pub async fn recv(&mut self) -> Option<FrontendEvent> {
        std::future::poll_fn(|cx| self.read.poll_ordered(&self.att.port, cx)).await
    }

    /// The next data item or event if one is queued.
    pub fn try_recv(&mut self) -> Option<FrontendEvent> {
        if !self.read.leftover.is_empty() {
            return Some(FrontendEvent::Data(std::mem::take(&mut self.read.leftover)));
        }
        self.att.port.try_recv()
    }

    /// Write all of `data` and wait until the chardev has finished with it
    /// (QEMU's `qemu_chr_fe_write_all`); returns its length.
    pub async fn write(&self, data: Bytes) -> Result<usize, Error> {
        let n = self.feed(data).await?;
        self.flush().await?;
        Ok(n)
    }

    /// Queue all of `data`, waiting only while the port's queue is full;
    /// returns its length. [`Frontend::flush`] waits for the chardev.
    pub async fn feed(&self, data: Bytes) -> Result<usize, Error> {
        self.att.port.write(data).await.map_err(|_| self.att.detached())
    }

    /// Wait until the chardev has finished with everything written so far.
    pub async fn flush(&self) -> Result<(), Error> {
        self.att.port.flush().await.map_err(|_| self.att.detached())
    }

    /// Queue as much of `data` as fits now (partial accept, vm-superio
    /// style); returns how many bytes were taken.
    pub fn try_write(&self, data: &[u8]) -> Result<usize, Error> {
        self.att.port.try_write(data).map_err(|_| self.att.detached())
    }

    /// Mark the frontend open or closed (`frontend-open` in query-chardev,
    /// QEMU's `qemu_chr_fe_set_open`); returns once query-chardev shows it.
    pub async fn set_open(&self, open: bool) -> Result<(), Error> {
        self.att.set_open(open).await
    }

    /// A device ioctl (serial line settings, break, modem lines, parallel
    /// port registers); returns the value read, or 0.
    pub async fn ioctl(&self, req: CharIoctl) -> Result<u32, Error> {
        self.att.ioctl(req).await
    }

    /// Bytes of input dropped because the frontend did not read them in
    /// time (only for a port configured to drop: [`crate::frontend::Overflow::Drop`]).
    pub fn lost(&self) -> u64 {
        self.att.port.lost()
    }

    /// A handle for open/close and ioctls from another task; it does not
    /// keep the frontend attached.
    pub fn control(&self) -> FrontendControl {
        FrontendControl {
            att: Arc::downgrade(&self.att),
        }
    }

    /// Another writer on this frontend, for a second task (writes of the
    /// two interleave at write boundaries).
    pub fn writer(&self) -> FrontendWriter {
        FrontendWriter {
            att: self.att.clone(),
            write: WriteState::default(),
        }
    }

    /// Split into a reader, a writer and the event stream, for separate
    /// tasks. The frontend stays attached while any of them lives.
    pub fn split(self) -> (FrontendReader, FrontendWriter, FrontendEvents) {
        (
            FrontendReader {
                att: self.att.clone(),
                read: self.read,
            },
            FrontendWriter {
                att: self.att.clone(),
                write: self.write,
            },
            FrontendEvents { att: self.att },
        )
    }

    /// Detach from the chardev now (what was written is still written).
    pub async fn detach(self) -> Result<(), Error> {
        let (chardev, holder) = (self.att.chardev.clone(), self.att.holder.clone());
        let exec = self.att.exec.clone();
        drop(self);
        exec.with(move |sup, _ctx| sup.detach(&chardev, &holder)).await
    }
}

impl Stream for Frontend {
    type Item = FrontendEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FrontendEvent>> {
        let me = self.get_mut();
        me.read.poll_ordered(&me.att.port, cx)
    }
}

impl AsyncRead for Frontend {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        me.read.poll_read(&me.att.port, cx, buf)
    }
}

impl AsyncWrite for Frontend {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        io_write(&self.att, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        io_flush(&self.att, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        io_flush(&self.att, cx)
    }
}

impl Sink<Bytes> for Frontend {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let me = self.get_mut();
        me.write.poll_push(&me.att, cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        self.get_mut().write.pending = item;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let me = self.get_mut();
        me.write.poll_flush(&me.att, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let me = self.get_mut();
        me.write.poll_flush(&me.att, cx)
    }
}

/// A frontend's input: a `Stream` of [`Bytes`] and an [`AsyncRead`] (end
/// of stream once the frontend is detached). Events stay for
/// [`FrontendEvents`].
#[derive(Debug)]
pub struct FrontendReader {
    att: Arc<Attachment>,
    read: ReadState,
}

impl FrontendReader {
    /// The chardev's id.
    pub fn chardev(&self) -> &str {
        &self.att.chardev
    }

    /// Bytes of input dropped because they were not read in time (a port
    /// configured to drop only).
    pub fn lost(&self) -> u64 {
        self.att.port.lost()
    }
}

impl Stream for FrontendReader {
    type Item = Bytes;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let me = self.get_mut();
        me.read.poll_chunk(&me.att.port, cx)
    }
}

impl AsyncRead for FrontendReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        me.read.poll_read(&me.att.port, cx, buf)
    }
}

/// A frontend's output: a `Sink<Bytes>` and an [`AsyncWrite`] (a flush
/// waits until the chardev has finished with every byte), with the
/// frontend's controls.
#[derive(Debug)]
pub struct FrontendWriter {
    att: Arc<Attachment>,
    write: WriteState,
}

impl FrontendWriter {
    /// The chardev's id.
    pub fn chardev(&self) -> &str {
        &self.att.chardev
    }

    /// Write all of `data` and wait until the chardev has finished with it
    /// (see [`Frontend::write`]); returns its length.
    pub async fn write(&self, data: Bytes) -> Result<usize, Error> {
        let n = self.att.port.write(data).await.map_err(|_| self.att.detached())?;
        self.att.port.flush().await.map_err(|_| self.att.detached())?;
        Ok(n)
    }

    /// Queue as much of `data` as fits now; returns how many bytes were
    /// taken (see [`Frontend::try_write`]).
    pub fn try_write(&self, data: &[u8]) -> Result<usize, Error> {
        self.att.port.try_write(data).map_err(|_| self.att.detached())
    }

    /// Mark the frontend open or closed: the chardev's `frontend-open`
    /// (see [`Frontend::set_open`]).
    pub async fn set_open(&self, open: bool) -> Result<(), Error> {
        self.att.set_open(open).await
    }

    /// A device ioctl: serial line settings, break, modem lines, parallel
    /// port registers (see [`Frontend::ioctl`]).
    pub async fn ioctl(&self, req: CharIoctl) -> Result<u32, Error> {
        self.att.ioctl(req).await
    }

    /// A handle for open/close and ioctls that does not keep the frontend
    /// attached (see [`Frontend::control`]).
    pub fn control(&self) -> FrontendControl {
        FrontendControl {
            att: Arc::downgrade(&self.att),
        }
    }
}

impl AsyncWrite for FrontendWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        io_write(&self.att, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        io_flush(&self.att, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        io_flush(&self.att, cx)
    }
}

impl Sink<Bytes> for FrontendWriter {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let me = self.get_mut();
        me.write.poll_push(&me.att, cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), Error> {
        self.get_mut().write.pending = item;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let me = self.get_mut();
        me.write.poll_flush(&me.att, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let me = self.get_mut();
        me.write.poll_flush(&me.att, cx)
    }
}

/// A frontend's events: a `Stream` of [`ChardevEvent`]; ends once the
/// frontend is detached. Bounded: events nobody reads are kept as state
/// (open, focus, a count of breaks), never as a growing queue.
#[derive(Debug)]
pub struct FrontendEvents {
    att: Arc<Attachment>,
}

impl FrontendEvents {
    /// The next event; `None` once the frontend is detached.
    pub async fn recv(&mut self) -> Option<ChardevEvent> {
        std::future::poll_fn(|cx| self.att.port.poll_event(cx)).await
    }
}

impl Stream for FrontendEvents {
    type Item = ChardevEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ChardevEvent>> {
        self.att.port.poll_event(cx)
    }
}

/// Open/close and ioctls of a frontend from anywhere; it does not keep the
/// frontend attached (once it is gone, calls fail with `Detached`).
#[derive(Debug, Clone)]
pub struct FrontendControl {
    att: Weak<Attachment>,
}

impl FrontendControl {
    fn get(&self) -> Result<Arc<Attachment>, Error> {
        self.att.upgrade().ok_or(Error::Detached(String::new()))
    }

    /// Mark the frontend open or closed: the chardev's `frontend-open`
    /// (see [`Frontend::set_open`]).
    pub async fn set_open(&self, open: bool) -> Result<(), Error> {
        self.get()?.set_open(open).await
    }

    /// A device ioctl: serial line settings, break, modem lines, parallel
    /// port registers (see [`Frontend::ioctl`]).
    pub async fn ioctl(&self, req: CharIoctl) -> Result<u32, Error> {
        self.get()?.ioctl(req).await
    }
}
