//! Transports and links: how the kinds that talk to the outside world get
//! their connections.
//!
//! A [`Link`] is one connection, bytes both ways: a file and its input, a
//! serial line, a pty's master while a program has the slave open, a socket
//! client (later with TLS, websocket or telnet layered on it; any
//! `AsyncRead + AsyncWrite` is a link through [`StreamLink`]).
//!
//! A [`Transport`] yields links over time: once (file, pipe, serial, udp) or
//! again and again (a pty whose slave is opened and closed; a socket server
//! accepting one client at a time; a client reconnecting). [`LinkBackend`]
//! turns any transport into a [`Backend`]: it asks for the next link only
//! while none is up (so a server's next client waits in the backlog, as in
//! QEMU), reports OPENED and CLOSED, reads only what the frontends have room
//! for, and decides what becomes of output while no link is up.
use super::{Backend, CharIoctl, Input, Output, READ_CHUNK};
pub use super::{Connection, Link};
use crate::error::Error;
use bytes::{BufMut, Bytes, BytesMut};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Any byte stream as a link.
#[derive(Debug)]
pub struct StreamLink<T>(pub T);

impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Link for StreamLink<T> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, data)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
}

/// How a transport's links behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// Links coming and going are told to frontends as OPENED and CLOSED
    /// (false for udp, which QEMU never opens).
    pub announce: bool,
    /// The end of input ends the link (pty, socket); otherwise only the
    /// input ends and output goes on (file, pipe, serial, stdio).
    pub eof_disconnects: bool,
    /// Each read is one datagram: an empty one or a read error (an ICMP
    /// "port unreachable" from an earlier send) is skipped.
    pub datagrams: bool,
    /// Output while no link is up is taken and logged (a pty, as QEMU's
    /// write returns its length); otherwise it is discarded unlogged (a
    /// socket, whose write fails).
    pub idle_output_logged: bool,
    /// When the peer ends its input (a socket half-close, or a hang-up
    /// seen without reading) less than [`LINGER_QUIET`] after it last sent
    /// something, keep the link for output until it has been quiet for
    /// [`LINGER_QUIET`] (at most [`LINGER_MAX`]), so the answer to what it
    /// sent last still reaches it. QEMU's frontends answer inside
    /// the read callback, before QEMU reads the end; chardevd's answer from
    /// other actors, a moment later.
    pub linger: bool,
}

/// How long output must pause before a lingering link is dropped.
pub const LINGER_QUIET: std::time::Duration = std::time::Duration::from_millis(250);

/// The longest a link lingers after its peer's end of input.
pub const LINGER_MAX: std::time::Duration = std::time::Duration::from_secs(10);

impl Behaviour {
    /// A descriptor opened once (file, pipe, serial, stdio).
    pub const ONCE: Behaviour = Behaviour {
        announce: true,
        eof_disconnects: false,
        datagrams: false,
        idle_output_logged: true,
        linger: false,
    };
}

/// A source of links.
pub trait Transport: 'static {
    /// The next link. `Ready(None)` when no more will ever come. Failures
    /// along the way are the transport's to report and retry.
    fn poll_connect(&mut self, cx: &mut Context<'_>) -> Poll<Option<Connection>>;

    /// `filename` while no link is up.
    fn idle_filename(&self) -> String;

    /// How the links behave.
    fn behaviour(&self) -> Behaviour;

    /// A frontend ioctl.
    fn ioctl(&mut self, _req: CharIoctl) -> Result<u32, Error> {
        Err(Error::NotSupported)
    }

    /// Work of its own, polled whenever the backend is (a signal to watch).
    fn poll_aux(&mut self, _cx: &mut Context<'_>) {}

    /// See [`Backend::poll_release`] (the current link's part is the link's).
    fn poll_release(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }

    /// See [`Backend::reacquire`].
    fn reacquire(&mut self) {}

    /// The current link was dropped (hang-up, end of input, release).
    fn disconnected(&mut self) {}

    /// Whether QMP's `yank` applies (socket chardevs).
    fn yankable(&self) -> bool {
        false
    }
}

#[derive(Debug)]
struct Up {
    conn: Connection,
    reading: bool,
    linger: Option<Linger>,
    /// When the link last delivered input.
    last_input: Option<tokio::time::Instant>,
}

/// A link whose peer ended its input, kept for output a little longer.
#[derive(Debug)]
struct Linger {
    quiet: Pin<Box<tokio::time::Sleep>>,
    until: tokio::time::Instant,
}

/// A [`Backend`] over a [`Transport`].
#[derive(Debug)]
pub struct LinkBackend<T> {
    transport: T,
    behaviour: Behaviour,
    up: Option<Up>,
    done: bool,
    /// Drop the link at the next poll (yanked, or a lingering link's write failed).
    drop_link: bool,
    buf: BytesMut,
}

impl<T: Transport> LinkBackend<T> {
    /// A backend whose first link is up from the start (QEMU's kinds that
    /// are open at creation).
    pub fn connected(transport: T, conn: Connection) -> Self {
        let mut b = Self::idle(transport);
        b.up = Some(Up {
            reading: conn.link.has_input(),
            conn,
            linger: None,
            last_input: None,
        });
        b
    }

    /// A backend that waits for its first link.
    pub fn idle(transport: T) -> Self {
        let behaviour = transport.behaviour();
        LinkBackend {
            transport,
            behaviour,
            up: None,
            done: false,
            drop_link: false,
            buf: BytesMut::new(),
        }
    }

    /// Drop the current link.
    pub fn disconnect(&mut self) {
        if self.up.take().is_some() {
            self.transport.disconnected();
        }
    }

    /// The input ended: `clean` for an end of stream (not an error).
    fn ended(&mut self, clean: bool) -> Option<Input> {
        if self.behaviour.eof_disconnects {
            if clean && self.start_linger() {
                return None;
            }
            self.disconnect();
        } else if let Some(up) = &mut self.up {
            up.reading = false;
        }
        self.behaviour.announce.then_some(Input::Closed)
    }

    /// Linger if the transport does and the peer sent something lately (it
    /// may wait for the answer); false if the link should go now.
    fn start_linger(&mut self) -> bool {
        let Some(up) = &mut self.up else {
            return false;
        };
        let now = tokio::time::Instant::now();
        let recent = up.last_input.is_some_and(|t| now.duration_since(t) < LINGER_QUIET);
        if !self.behaviour.linger || !(recent || up.linger.is_some()) {
            return false;
        }
        if up.linger.is_none() {
            tracing::debug!("peer ended its input; the link lingers for output");
            up.reading = false;
            up.linger = Some(Linger {
                quiet: Box::pin(tokio::time::sleep_until(now + LINGER_QUIET)),
                until: now + LINGER_MAX,
            });
        }
        true
    }
}

impl<T: Transport> Backend for LinkBackend<T> {
    fn poll_input(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<Input> {
        self.transport.poll_aux(cx);
        loop {
            let Some(up) = &mut self.up else {
                if self.done {
                    return Poll::Pending;
                }
                match self.transport.poll_connect(cx) {
                    Poll::Ready(Some(conn)) => {
                        self.up = Some(Up {
                            reading: conn.link.has_input(),
                            conn,
                            linger: None,
                            last_input: None,
                        });
                        if self.behaviour.announce {
                            return Poll::Ready(Input::Opened);
                        }
                        continue;
                    }
                    Poll::Ready(None) => {
                        self.done = true;
                        return Poll::Pending;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            };
            // Layers that buffer output (TLS records, websocket frames) send it.
            let _ = up.conn.link.poll_flush(cx);
            let over = match &mut up.linger {
                Some(l) => tokio::time::Instant::now() >= l.until || l.quiet.as_mut().poll(cx).is_ready(),
                None => false,
            };
            if self.drop_link || over {
                self.drop_link = false;
                self.disconnect();
                if self.behaviour.announce {
                    return Poll::Ready(Input::Closed);
                }
                continue;
            }
            if up.linger.is_some() {
                return Poll::Pending;
            }
            if let Some(ev) = up.conn.link.take_event() {
                return Poll::Ready(ev);
            }
            if !up.reading || room == 0 {
                // Not reading now: watch for the peer going away without
                // reading (a read would see it by itself, so no peek then).
                if up.conn.link.poll_hangup(cx).is_ready() {
                    if !self.start_linger() {
                        self.drop_link = true;
                    }
                    continue;
                }
                return Poll::Pending;
            }
            let want = room.min(READ_CHUNK);
            match read_into(&mut *up.conn.link, cx, &mut self.buf, want) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(data)) if !data.is_empty() => {
                    up.last_input = Some(tokio::time::Instant::now());
                    return Poll::Ready(Input::Data(data));
                }
                Poll::Ready(Ok(_)) if self.behaviour.datagrams => continue,
                Poll::Ready(Ok(_)) => {
                    tracing::debug!("input reached its end");
                    if let Some(ev) = self.ended(true) {
                        return Poll::Ready(ev);
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Poll::Ready(Err(e)) if self.behaviour.datagrams => {
                    tracing::debug!(cause = %e, "datagram receive error skipped");
                    continue;
                }
                Poll::Ready(Err(e)) => {
                    tracing::debug!(cause = %e, "read failed; input closed");
                    if let Some(ev) = self.ended(false) {
                        return Poll::Ready(ev);
                    }
                }
            }
        }
    }

    fn poll_output(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        match &mut self.up {
            Some(up) => match up.conn.link.poll_write(cx, data) {
                Poll::Ready(Ok(n)) => {
                    if let Some(l) = &mut up.linger {
                        l.quiet.as_mut().reset(tokio::time::Instant::now() + LINGER_QUIET);
                    }
                    Poll::Ready(Output::Written(n))
                }
                Poll::Ready(Err(e)) => {
                    if up.linger.is_some() {
                        // The peer is gone for good.
                        self.drop_link = true;
                        return Poll::Ready(Output::Discarded(data.len()));
                    }
                    Poll::Ready(Output::Failed(e))
                }
                Poll::Pending => Poll::Pending,
            },
            None if self.behaviour.idle_output_logged => Poll::Ready(Output::Written(data.len())),
            None => Poll::Ready(Output::Discarded(data.len())),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.up {
            Some(up) => up.conn.link.poll_flush(cx).map(|_| ()),
            None => Poll::Ready(()),
        }
    }

    fn filename(&self) -> String {
        match self.up.as_ref().and_then(|u| u.conn.filename.clone()) {
            Some(f) => f,
            None => self.transport.idle_filename(),
        }
    }

    fn ioctl(&mut self, req: CharIoctl) -> Result<u32, Error> {
        self.transport.ioctl(req)
    }

    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.transport.poll_release(cx).is_pending() {
            return Poll::Pending;
        }
        match &mut self.up {
            Some(up) => up.conn.link.poll_release(cx),
            None => Poll::Ready(()),
        }
    }

    fn reacquire(&mut self) {
        self.transport.reacquire();
        if let Some(up) = &mut self.up {
            up.conn.link.reacquire();
        }
    }

    fn yank(&mut self) -> bool {
        if !self.transport.yankable() {
            return false;
        }
        if let Some(up) = &mut self.up {
            up.conn.link.shutdown();
            self.drop_link = true;
        }
        true
    }
}

/// A link as an `AsyncRead` (to read straight into a `BytesMut`).
struct AsRead<'a>(&'a mut dyn Link);

impl AsyncRead for AsRead<'_> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.0.poll_read(cx, buf)
    }
}

/// Read at most `want` bytes from `link` into `buf`'s spare room and hand
/// them out without a copy. `buf` takes back its memory once every chunk
/// handed out is dropped (the chunk was written on), so a steady stream
/// neither copies nor allocates.
pub(crate) fn read_into(
    link: &mut dyn Link,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    want: usize,
) -> Poll<io::Result<Bytes>> {
    buf.clear();
    buf.reserve(want);
    let mut limited = (&mut *buf).limit(want);
    match tokio_util::io::poll_read_buf(Pin::new(&mut AsRead(link)), cx, &mut limited) {
        Poll::Ready(Ok(_)) => Poll::Ready(Ok(buf.split().freeze())),
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// What answers a transport's ioctls.
pub trait Ioctls: 'static {
    /// A frontend ioctl.
    fn ioctl(&mut self, req: CharIoctl) -> Result<u32, Error>;
}

/// No ioctls.
impl Ioctls for () {
    fn ioctl(&mut self, _req: CharIoctl) -> Result<u32, Error> {
        Err(Error::NotSupported)
    }
}

/// A transport whose one link was there from the start (file, pipe, udp,
/// serial, parallel), with what answers its ioctls.
#[derive(Debug, Clone, Copy)]
pub struct Once<X = ()> {
    /// `filename`.
    pub filename: &'static str,
    /// How the link behaves.
    pub behaviour: Behaviour,
    /// The ioctls (a serial line, a parallel port's registers).
    pub ioctls: X,
}

impl Once {
    /// A descriptor opened once, with no ioctls.
    pub fn file(filename: &'static str) -> Once {
        Once {
            filename,
            behaviour: Behaviour::ONCE,
            ioctls: (),
        }
    }
}

impl<X: Ioctls> Transport for Once<X> {
    fn poll_connect(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Connection>> {
        Poll::Ready(None)
    }

    fn idle_filename(&self) -> String {
        self.filename.into()
    }

    fn behaviour(&self) -> Behaviour {
        self.behaviour
    }

    fn ioctl(&mut self, req: CharIoctl) -> Result<u32, Error> {
        self.ioctls.ioctl(req)
    }
}

impl Connection {
    /// A connection over `link` that keeps the transport's filename.
    pub fn new(link: impl Link) -> Connection {
        Connection {
            link: Box::new(link),
            filename: None,
        }
    }
}
