//! A socket connection's layers, built in QEMU's order once a client is
//! accepted or connected: TCP options, TLS, the websocket handshake, the
//! telnet negotiation. Each layer is an `AsyncRead + AsyncWrite` stream or a
//! [`Link`] over the one below; the top one watches the raw socket for the
//! peer going away.
use super::telnet::{self, Piece};
use super::websocket::{self, Closing, Handshake};
use crate::chardev::fdio::FdIo;
use crate::chardev::transport::{Connection, Link, StreamLink};
use crate::chardev::Input;
use crate::objects::{Object, Objects, TlsCreds};
use futures_util::future::LocalBoxFuture;
use rustix::fd::{AsFd, OwnedFd};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// TLS for a socket chardev.
#[derive(Debug)]
pub struct Tls {
    /// The credentials (taken when the chardev was created).
    pub creds: Arc<TlsCreds>,
    /// The authorization object's id, looked up at each handshake.
    pub authz: Option<String>,
    /// Where to look it up.
    pub objects: Arc<Objects>,
    /// A client's server name (its address's host).
    pub host: String,
}

/// How a socket chardev's connections are set up.
#[derive(Debug)]
pub struct Setup {
    /// The chardev's id (for messages).
    pub id: String,
    /// `tcp`, `telnet` or `websocket` (filenames).
    pub proto: &'static str,
    /// Listening (filenames say `,server=on`).
    pub server: bool,
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// Telnet negotiation: `Some(tn3270)`.
    pub telnet: Option<bool>,
    /// Websocket handshake and framing.
    pub websocket: bool,
    /// TLS.
    pub tls: Option<Tls>,
    /// How long a peer may take over the TLS, telnet or websocket handshake.
    pub handshake_timeout: Duration,
}

/// Any byte stream a layer can sit on.
pub trait IoStream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> IoStream for T {}

/// A boxed byte stream.
pub type Io = Box<dyn IoStream>;

/// A socket descriptor as a byte stream.
#[derive(Debug)]
pub struct SockIo(pub FdIo);

impl AsyncRead for SockIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.0.poll_read(cx, buf)
    }
}

impl AsyncWrite for SockIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.0.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = rustix::net::shutdown(self.0.as_fd(), rustix::net::Shutdown::Write);
        Poll::Ready(Ok(()))
    }
}

/// Whether the peer of a socket is gone, seen without reading: a peek
/// finds the end of the stream (or an error) and no data waiting. Stale
/// readiness (left by a handshake that read exactly its request) is
/// cleared so the next hang-up wakes the task.
fn peer_gone(raw: &FdIo, cx: &mut Context<'_>) -> bool {
    let FdIo::Poll(afd, _) = raw else {
        return false;
    };
    loop {
        let Poll::Ready(Ok(mut guard)) = afd.poll_read_ready(cx) else {
            return false;
        };
        let mut byte = [0u8; 1];
        match rustix::net::recv(
            afd.get_ref(),
            &mut byte,
            rustix::net::RecvFlags::PEEK | rustix::net::RecvFlags::DONTWAIT,
        ) {
            Ok((0, _)) => return true,
            Ok(_) => return false,
            Err(rustix::io::Errno::AGAIN) => guard.clear_ready(),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return true,
        }
    }
}

/// The top of a connection: the layers, and the raw socket to watch.
struct Watched {
    link: Box<dyn Link>,
    raw: FdIo,
}

impl Link for Watched {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.link.poll_read(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.link.poll_write(cx, data)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.link.poll_flush(cx)
    }

    fn poll_hangup(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.link.poll_hangup(cx).is_ready() || peer_gone(&self.raw, cx) {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    fn take_event(&mut self) -> Option<Input> {
        self.link.take_event()
    }

    fn shutdown(&mut self) {
        let _ = rustix::net::shutdown(self.raw.as_fd(), rustix::net::Shutdown::Both);
    }
}

/// Telnet's input filter over a link: `IAC IAC` is one 0xFF, `IAC BREAK`
/// a BREAK, options are dropped. Output is not escaped (as in QEMU).
struct TelnetLink {
    inner: Box<dyn Link>,
    filter: telnet::Filter,
    pieces: VecDeque<Piece>,
    scratch: Vec<u8>,
}

impl Link for TelnetLink {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.pieces.front_mut() {
                Some(Piece::Data(d)) => {
                    let n = d.len().min(buf.remaining());
                    buf.put_slice(&d[..n]);
                    d.drain(..n);
                    if d.is_empty() {
                        self.pieces.pop_front();
                    }
                    return Poll::Ready(Ok(()));
                }
                Some(Piece::Break) => {
                    // The break goes first (take_event); come back at once.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                None => {}
            }
            let want = buf.remaining().max(1);
            if self.scratch.len() < want {
                self.scratch.resize(want, 0);
            }
            let mut rb = ReadBuf::new(&mut self.scratch[..want]);
            match self.inner.poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let mut out = Vec::new();
                    self.filter.feed(rb.filled(), &mut out);
                    self.pieces.extend(out);
                }
                other => return other,
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.inner.poll_write(cx, data)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_flush(cx)
    }

    fn poll_hangup(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.poll_hangup(cx)
    }

    fn take_event(&mut self) -> Option<Input> {
        if matches!(self.pieces.front(), Some(Piece::Break)) {
            self.pieces.pop_front();
            return Some(Input::Break);
        }
        self.inner.take_event()
    }
}

/// Pongs and other control replies a websocket client may leave unread
/// (beside the one data frame being sent) before its input is no longer
/// read: a client that pings without reading costs bounded memory.
const MAX_UNSENT_REPLIES: usize = websocket::MAX_OUT_PAYLOAD + (64 << 10);

/// Websocket framing over a stream: binary frames out (one per write, at
/// most [`websocket::MAX_OUT_PAYLOAD`] bytes), client frames decoded in;
/// pings answered, a close answered and then the end of input.
struct WsLink {
    io: Io,
    decoder: websocket::Decoder,
    /// Decoded payload not yet read.
    data: Vec<u8>,
    data_at: usize,
    /// Bytes to send (frames, pongs, the close reply).
    out: Vec<u8>,
    out_at: usize,
    closing: bool,
    scratch: Vec<u8>,
}

impl WsLink {
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.out.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.out[self.out_at..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.out_at += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.out.clear();
        self.out_at = 0;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl Link for WsLink {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.data_at < self.data.len() {
                let n = (self.data.len() - self.data_at).min(buf.remaining());
                buf.put_slice(&self.data[self.data_at..self.data_at + n]);
                self.data_at += n;
                if self.data_at == self.data.len() {
                    self.data.clear();
                    self.data_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let sent = self.poll_send(cx);
            if sent.is_pending() && self.out.len() - self.out_at >= MAX_UNSENT_REPLIES {
                // A client that sends pings and reads nothing: read nothing
                // more until its pongs are out (memory stays bounded).
                return Poll::Pending;
            }
            if self.closing {
                // The close reply is out (or cannot go): end of input.
                return match self.poll_send(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(_) => Poll::Ready(Ok(())),
                };
            }
            if self.scratch.len() < 16384 {
                self.scratch.resize(16384, 0);
            }
            let mut rb = ReadBuf::new(&mut self.scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let input = rb.filled().to_vec();
                    if let Err(c) = self.decoder.feed(&input, &mut self.data, &mut self.out) {
                        if let Closing::Error(status, why) = c {
                            tracing::debug!(status, why, "websocket client closed for a protocol error");
                        }
                        self.closing = true;
                    }
                }
                other => return other,
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.closing {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        match self.poll_send(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        let n = data.len().min(websocket::MAX_OUT_PAYLOAD);
        websocket::binary_frame(&data[..n], &mut self.out);
        let _ = self.poll_send(cx);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(cx)
    }
}

pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    let mut out = [0u8; 20];
    out.copy_from_slice(d.as_ref());
    out
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Read the HTTP upgrade request and answer it; on success the stream
/// speaks websocket frames.
async fn websocket_accept(mut io: Io) -> io::Result<WsLink> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match websocket::handshake(&head, &websocket::http_date(now_seconds()), sha1) {
            Handshake::Incomplete => {}
            Handshake::Accept { response, consumed } => {
                io.write_all(&response).await?;
                io.flush().await?;
                let mut link = WsLink {
                    io,
                    decoder: websocket::Decoder::new(),
                    data: Vec::new(),
                    data_at: 0,
                    out: Vec::new(),
                    out_at: 0,
                    closing: false,
                    scratch: Vec::new(),
                };
                let rest = head[consumed..].to_vec();
                if !rest.is_empty() {
                    if let Err(_c) = link.decoder.feed(&rest, &mut link.data, &mut link.out) {
                        link.closing = true;
                    }
                }
                return Ok(link);
            }
            Handshake::Reject { response } => {
                let _ = io.write_all(&response).await;
                let _ = io.flush().await;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "websocket handshake refused",
                ));
            }
            Handshake::Drop => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "not a websocket request"));
            }
        }
        let room = (websocket::MAX_HEAD + 1)
            .saturating_sub(head.len())
            .clamp(1, chunk.len());
        let n = io.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
}

fn denied(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, why)
}

/// The authz check on a TLS server's client certificate.
fn authorize(tls: &Tls, peer: Option<&[rustls::pki_types::CertificateDer<'_>]>) -> io::Result<()> {
    let Some(id) = &tls.authz else {
        return Ok(());
    };
    if !tls.creds.verify_peer {
        return Ok(());
    }
    let Some(cert) = peer.and_then(|c| c.first()) else {
        return Err(denied("no client certificate".into()));
    };
    let dn = super::dn::subject_dn(cert.as_ref()).ok_or_else(|| denied("unreadable client certificate".into()))?;
    match tls.objects.get(id) {
        Some(Object::Authz(a)) if a.allows(&dn) => Ok(()),
        Some(Object::Authz(_)) => Err(denied(format!("TLS x509 authz check for {dn} is denied"))),
        _ => Err(denied(format!("Cannot find QAuthZ object ID {id}"))),
    }
}

async fn tls_layer(tls: &Tls, server: bool, io: Io) -> io::Result<Io> {
    if server {
        let config = tls
            .creds
            .server
            .clone()
            .ok_or_else(|| denied("no server credentials".into()))?;
        let stream = tokio_rustls::TlsAcceptor::from(config).accept(io).await?;
        authorize(tls, stream.get_ref().1.peer_certificates())?;
        Ok(Box::new(stream))
    } else {
        let config = tls
            .creds
            .client
            .clone()
            .ok_or_else(|| denied("no client credentials".into()))?;
        let name = rustls::pki_types::ServerName::try_from(tls.host.clone())
            .map_err(|_| denied(format!("No hostname for certificate validation: {}", tls.host)))?;
        let stream = tokio_rustls::TlsConnector::from(config).connect(name, io).await?;
        Ok(Box::new(stream))
    }
}

impl Setup {
    /// The layers for a new connection on `fd`, ending with the telnet
    /// negotiation; the connection is ready for OPENED.
    pub fn handshake(self: &Rc<Self>, fd: OwnedFd) -> LocalBoxFuture<'static, io::Result<Connection>> {
        let setup = self.clone();
        Box::pin(async move {
            let slow = setup.tls.is_some() || setup.websocket || setup.telnet.is_some();
            let limit = setup.handshake_timeout;
            let work = setup.layers(fd);
            if slow {
                match tokio::time::timeout(limit, work).await {
                    Ok(r) => r,
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "handshake timed out")),
                }
            } else {
                work.await
            }
        })
    }

    async fn layers(self: Rc<Self>, fd: OwnedFd) -> io::Result<Connection> {
        let family = rustix::net::sockopt::socket_domain(&fd).ok();
        let inet = matches!(
            family,
            Some(rustix::net::AddressFamily::INET) | Some(rustix::net::AddressFamily::INET6)
        );
        if self.nodelay && inet {
            let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
        }
        let filename = crate::net::connected_filename(fd.as_fd(), self.proto, self.server);
        let raw = FdIo::new(fd)?;
        let watch = raw.share().ok_or_else(|| io::Error::other("socket cannot be polled"))?;
        let mut io: Io = Box::new(SockIo(raw));
        if let Some(tls) = &self.tls {
            io = tls_layer(tls, self.server, io).await?;
        }
        let mut link: Box<dyn Link> = if self.websocket {
            Box::new(websocket_accept(io).await?)
        } else {
            Box::new(StreamLink(io))
        };
        if let Some(tn3270) = self.telnet {
            let init: &[u8] = if tn3270 {
                &telnet::TN3270_INIT
            } else {
                &telnet::TELNET_INIT
            };
            let mut at = 0;
            while at < init.len() {
                at += poll_fn(|cx| link.poll_write(cx, &init[at..])).await?;
            }
            poll_fn(|cx| link.poll_flush(cx)).await?;
            link = Box::new(TelnetLink {
                inner: link,
                filter: telnet::Filter::new(tn3270),
                pieces: VecDeque::new(),
                scratch: Vec::new(),
            });
        }
        tracing::debug!(chardev = %self.id, %filename, "socket connected");
        Ok(Connection {
            link: Box::new(Watched { link, raw: watch }),
            filename: Some(filename),
        })
    }
}
