//! A BrlAPI client: the protocol brltty's braille display server speaks
//! (protocol version 8), spoken as libbrlapi 6.7 (Debian's, the one QEMU
//! links) speaks it, without linking it.
//!
//! - Packets: a 4-byte big-endian payload size, a 4-byte big-endian type,
//!   then the payload (at most 4096 bytes). [`encode`] and [`Decoder`].
//! - Where to connect ([`Target::from_host`]): `BRLAPI_HOST` or `:0`; a host
//!   of `:N` is the local socket `/var/lib/BrlAPI/N` (then, if that fails,
//!   TCP port 4101+N on 127.0.0.1 and ::1), `HOST:N` is TCP port 4101+N on
//!   HOST, `HOST` alone is port 4101.
//! - The handshake ([`connect`]): the server sends its version, the client
//!   answers with its own, the server offers authorization methods; `N`
//!   (none) needs nothing more, `K` sends the key file named by
//!   `BRLAPI_AUTH` (`keyfile:PATH`, or a path) and waits for the ACK.
//! - Then requests: the display size (`s`, answered with two u32s), entering
//!   tty mode (`t`, ACK'd), writes (`w`, not answered); the server sends key
//!   codes (`k`, a u64 as two big-endian u32s), errors (`e`) and
//!   exceptions (`E`).
//!
//! Errors read as libbrlapi's `brlapi_strerror` words them ([`BrlError`]),
//! which is how QEMU quotes them.
use crate::error::OsError;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The protocol version spoken.
pub const PROTOCOL_VERSION: u32 = 8;
/// The largest payload.
pub const MAX_PACKET: usize = 4096;
/// Where Debian's libbrlapi looks for the local server's sockets.
pub const SOCKET_PATH: &str = "/var/lib/BrlAPI";
/// The first TCP port (`:0`).
pub const PORT_BASE: u16 = 4101;

/// Packet types.
pub mod packet {
    /// Version.
    pub const VERSION: u32 = b'v' as u32;
    /// Authorization.
    pub const AUTH: u32 = b'a' as u32;
    /// Display size.
    pub const GET_DISPLAY_SIZE: u32 = b's' as u32;
    /// Take a tty.
    pub const ENTER_TTY_MODE: u32 = b't' as u32;
    /// A key.
    pub const KEY: u32 = b'k' as u32;
    /// Write to the display.
    pub const WRITE: u32 = b'w' as u32;
    /// Acknowledgement.
    pub const ACK: u32 = b'A' as u32;
    /// An error answering a request.
    pub const ERROR: u32 = b'e' as u32;
    /// An error about a packet that has no answer.
    pub const EXCEPTION: u32 = b'E' as u32;
}

/// Authorization methods.
pub mod auth {
    /// None needed.
    pub const NONE: u32 = b'N' as u32;
    /// A shared key.
    pub const KEY: u32 = b'K' as u32;
}

/// Flags of a write packet, in the order their fields follow.
pub mod wf {
    /// Region begin and size.
    pub const REGION: u32 = 0x02;
    /// Text.
    pub const TEXT: u32 = 0x04;
    /// AND mask.
    pub const ATTR_AND: u32 = 0x08;
    /// OR mask.
    pub const ATTR_OR: u32 = 0x10;
    /// Cursor position.
    pub const CURSOR: u32 = 0x20;
    /// Charset of the text.
    pub const CHARSET: u32 = 0x40;
}

/// libbrlapi's error codes.
pub mod code {
    /// Invalid parameter.
    pub const INVALID_PARAMETER: u32 = 6;
    /// Invalid packet.
    pub const INVALID_PACKET: u32 = 7;
    /// Connection refused.
    pub const CONNREFUSED: u32 = 8;
    /// Unknown tty.
    pub const UNKNOWN_TTY: u32 = 12;
    /// Protocol version.
    pub const PROTOCOL_VERSION: u32 = 13;
    /// End of file.
    pub const EOF: u32 = 14;
    /// Authentication failed.
    pub const AUTHENTICATION: u32 = 17;
}

const ERRLIST: &[&str] = &[
    "Success",
    "Insufficient memory",
    "Tty is busy",
    "Device is busy",
    "Unknown instruction",
    "Illegal instruction",
    "Invalid parameter",
    "Invalid packet",
    "Connection refused",
    "Operation not supported",
    "getaddrinfo() error",
    "libc error",
    "Can't determine tty number",
    "Bad protocol version",
    "Unexpected end of file",
    "Key file is empty",
    "Driver error",
    "Authentication failed",
    "Parameter can not be changed",
];

/// A BrlAPI error, displayed as `brlapi_strerror` displays it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrlError {
    /// One of libbrlapi's codes (also what an `e` packet carries).
    Code(u32),
    /// A failed system call: `"connect: No such file or directory"`.
    Libc(&'static str, OsError),
    /// Name resolution: `"resolve: ..."`.
    Resolve(String),
}

impl fmt::Display for BrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrlError::Code(c) => f.write_str(ERRLIST.get(*c as usize).copied().unwrap_or("Unknown error")),
            BrlError::Libc(fun, e) => write!(f, "{fun}: {e}"),
            BrlError::Resolve(why) => write!(f, "resolve: {why}"),
        }
    }
}

impl std::error::Error for BrlError {}

/// One packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Its type.
    pub ty: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A packet on the wire.
pub fn encode(ty: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Packets out of a byte stream cut anywhere.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Bytes read.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole packet; an error for a size over [`MAX_PACKET`] (the
    /// stream cannot be trusted after it).
    pub fn next_packet(&mut self) -> Option<Result<Packet, BrlError>> {
        if self.buf.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if size > MAX_PACKET {
            return Some(Err(BrlError::Code(code::INVALID_PACKET)));
        }
        if self.buf.len() < 8 + size {
            return None;
        }
        let ty = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
        let payload = self.buf[8..8 + size].to_vec();
        self.buf.drain(..8 + size);
        Some(Ok(Packet { ty, payload }))
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The code of an `e` or `E` packet.
pub fn error_code(payload: &[u8]) -> u32 {
    be32(payload, 0).unwrap_or(0)
}

/// The display size of an `s` answer.
pub fn display_size(payload: &[u8]) -> Option<(u32, u32)> {
    Some((be32(payload, 0)?, be32(payload, 4)?))
}

/// The key code of a `k` packet.
pub fn key_code(payload: &[u8]) -> Option<u64> {
    if payload.len() != 8 {
        return None;
    }
    Some(((be32(payload, 0)? as u64) << 32) | be32(payload, 4)? as u64)
}

/// A `k` packet's payload.
#[cfg(test)]
pub fn key_payload(code: u64) -> [u8; 8] {
    let mut p = [0; 8];
    p[..4].copy_from_slice(&((code >> 32) as u32).to_be_bytes());
    p[4..].copy_from_slice(&(code as u32).to_be_bytes());
    p
}

/// Where a host string leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The local socket of this name under [`SOCKET_PATH`]; `fallback` when
    /// TCP on localhost is to be tried if it fails (a host of `:N`).
    Local {
        /// The socket's name (the `N` of `:N`).
        name: String,
        /// TCP port to try on 127.0.0.1 and ::1 if the socket fails.
        fallback: Option<u16>,
    },
    /// TCP.
    Tcp {
        /// Host name or address.
        host: String,
        /// Port.
        port: u16,
    },
}

/// A port number `N` as 4101+N, if it is one.
fn port_number(s: &str) -> Option<u16> {
    if !s.starts_with(|c: char| c.is_ascii_digit()) || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: u64 = s.parse().ok()?;
    (v <= (u16::MAX - PORT_BASE) as u64).then(|| v as u16 + PORT_BASE)
}

impl Target {
    /// libbrlapi's reading of a host string (empty: the local `0`).
    pub fn from_host(host: &str) -> Target {
        if host.is_empty() {
            return Target::Local {
                name: "0".into(),
                fallback: None,
            };
        }
        match host.rfind(':') {
            Some(0) => Target::Local {
                name: host[1..].to_owned(),
                fallback: port_number(&host[1..]),
            },
            Some(i) => Target::Tcp {
                host: host[..i].to_owned(),
                port: port_number(&host[i + 1..]).unwrap_or(PORT_BASE),
            },
            None => Target::Tcp {
                host: host.to_owned(),
                port: PORT_BASE,
            },
        }
    }
}

/// The connection settings, from the environment as libbrlapi reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `BRLAPI_AUTH` (Debian's default: `none`).
    pub auth: String,
    /// `BRLAPI_HOST` (default `:0`).
    pub host: String,
}

impl Settings {
    /// From `BRLAPI_AUTH` and `BRLAPI_HOST` (empty ones count as unset).
    pub fn from_env() -> Settings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Settings {
            auth: var("BRLAPI_AUTH").unwrap_or_else(|| "none".into()),
            host: var("BRLAPI_HOST").unwrap_or_else(|| ":0".into()),
        }
    }
}

/// The key file an auth string names (`keyfile:PATH`, `...+keyfile:PATH`,
/// or the string itself, up to a `+`).
pub fn key_file(auth: &str) -> String {
    let path = if let Some(p) = auth.strip_prefix("keyfile:") {
        p
    } else if let Some(i) = auth.find("+keyfile:") {
        &auth[i + 9..]
    } else {
        auth
    };
    path.split('+').next().unwrap_or("").to_owned()
}

/// A byte stream to the server.
pub trait Io: AsyncRead + AsyncWrite + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + 'static> Io for T {}

/// An open, authorized connection.
pub struct Connection {
    /// The stream.
    pub io: Box<dyn Io>,
    /// What was read past the handshake.
    pub decoder: Decoder,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

async fn connect_local(name: &str) -> Result<Box<dyn Io>, BrlError> {
    let path = format!("{SOCKET_PATH}/{name}");
    // sun_path holds 108 bytes with the NUL.
    if path.len() + 1 > 108 {
        return Err(BrlError::Libc("path", OsError::from_errno(libc_enametoolong())));
    }
    match tokio::net::UnixStream::connect(&path).await {
        Ok(s) => Ok(Box::new(s)),
        Err(e) => Err(BrlError::Libc("connect", OsError::from(e))),
    }
}

fn libc_enametoolong() -> i32 {
    rustix::io::Errno::NAMETOOLONG.raw_os_error()
}

async fn connect_tcp(host: &str, port: u16) -> Result<Box<dyn Io>, BrlError> {
    let addrs = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect::<Vec<_>>(),
        Err(e) => {
            let s = e.to_string();
            let why = s.strip_prefix("failed to lookup address information: ").unwrap_or(&s);
            return Err(BrlError::Resolve(why.to_owned()));
        }
    };
    for a in addrs {
        if let Ok(s) = tokio::net::TcpStream::connect(a).await {
            let _ = s.set_nodelay(true);
            return Ok(Box::new(s));
        }
    }
    Err(BrlError::Code(code::CONNREFUSED))
}

async fn open_stream(target: &Target) -> Result<Box<dyn Io>, BrlError> {
    match target {
        Target::Tcp { host, port } => connect_tcp(host, *port).await,
        Target::Local { name, fallback } => match connect_local(name).await {
            Ok(s) => Ok(s),
            Err(first) => {
                if let Some(port) = fallback {
                    for host in ["127.0.0.1", "::1"] {
                        if let Ok(s) = connect_tcp(host, *port).await {
                            return Ok(s);
                        }
                    }
                }
                Err(first)
            }
        },
    }
}

/// Read packets until one of type `want`: an `e` packet is its error, the
/// end of the stream `Unexpected end of file`.
async fn wait_for(io: &mut Box<dyn Io>, dec: &mut Decoder, want: u32) -> Result<Packet, BrlError> {
    let mut buf = [0u8; 4096];
    loop {
        while let Some(p) = dec.next_packet() {
            let p = p?;
            if p.ty == want {
                return Ok(p);
            }
            if p.ty == packet::ERROR {
                return Err(BrlError::Code(error_code(&p.payload)));
            }
            tracing::debug!(ty = p.ty, "brlapi: unexpected packet ignored");
        }
        let n = io
            .read(&mut buf)
            .await
            .map_err(|e| BrlError::Libc("read", OsError::from(e)))?;
        if n == 0 {
            return Err(BrlError::Code(code::EOF));
        }
        dec.feed(&buf[..n]);
    }
}

async fn send(io: &mut Box<dyn Io>, ty: u32, payload: &[u8]) -> Result<(), BrlError> {
    io.write_all(&encode(ty, payload))
        .await
        .map_err(|e| BrlError::Libc("write", OsError::from(e)))
}

/// How long the handshake may take (libbrlapi waits for ever; a server
/// that never answers would hold the chardev-add up).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// `brlapi__openConnection`: connect and authorize.
pub async fn connect(settings: &Settings) -> Result<Connection, BrlError> {
    let target = Target::from_host(&settings.host);
    let mut io = open_stream(&target).await?;
    let hs = handshake(&mut io, &settings.auth);
    let decoder = match tokio::time::timeout(HANDSHAKE_TIMEOUT, hs).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(BrlError::Libc(
                "read",
                OsError::from_errno(rustix::io::Errno::TIMEDOUT.raw_os_error()),
            ))
        }
    };
    Ok(Connection { io, decoder })
}

async fn handshake(io: &mut Box<dyn Io>, auth: &str) -> Result<Decoder, BrlError> {
    let mut dec = Decoder::default();
    let v = wait_for(io, &mut dec, packet::VERSION).await?;
    if be32(&v.payload, 0).unwrap_or(0) < PROTOCOL_VERSION {
        return Err(BrlError::Code(code::PROTOCOL_VERSION));
    }
    send(io, packet::VERSION, &PROTOCOL_VERSION.to_be_bytes()).await?;
    let offer = wait_for(io, &mut dec, packet::AUTH).await?;
    for ty in offer.payload.chunks_exact(4) {
        let ty = u32::from_be_bytes([ty[0], ty[1], ty[2], ty[3]]);
        match ty {
            auth::NONE => return Ok(dec),
            auth::KEY => {
                let Some(key) = load_key(&key_file(auth)) else {
                    continue;
                };
                let mut p = auth::KEY.to_be_bytes().to_vec();
                p.extend_from_slice(&key);
                send(io, packet::AUTH, &p).await?;
                match wait_for(io, &mut dec, packet::ACK).await {
                    Ok(_) => return Ok(dec),
                    Err(BrlError::Code(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            _ => continue,
        }
    }
    Err(BrlError::Code(code::AUTHENTICATION))
}

fn load_key(path: &str) -> Option<Vec<u8>> {
    let data = std::fs::read(path).ok()?;
    if data.is_empty() {
        return None;
    }
    Some(data[..data.len().min(MAX_PACKET - 8)].to_vec())
}

/// The tty libbrlapi takes by default (`getControllingTty`): `WINDOWID`,
/// `CONTROLVT`, `XDG_VTNR` (without a display), else the process's
/// controlling terminal if it is a virtual console.
pub fn controlling_tty() -> Option<u32> {
    let num = |k: &str| std::env::var(k).ok().and_then(|v| scan_u32(&v));
    if let Some(t) = num("WINDOWID").or_else(|| num("CONTROLVT")) {
        return Some(t);
    }
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        if let Some(t) = num("XDG_VTNR") {
            return Some(t);
        }
    }
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // state, ppid, pgrp, session, tty_nr
    let tty: u32 = rest.split_whitespace().nth(4)?.parse::<i64>().ok()? as u32;
    let (major, minor) = ((tty >> 8) & 0xfff, (tty & 0xff) | ((tty >> 12) & 0xfff00));
    (major == 4 && (1..=63).contains(&minor)).then_some(minor)
}

/// `sscanf("%u")`: blanks, then digits (a value that does not fit an `int`
/// is not a tty).
fn scan_u32(s: &str) -> Option<u32> {
    let s = s.trim_start();
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let v: u32 = digits.parse().ok()?;
    (v <= i32::MAX as u32).then_some(v)
}

/// The tty path from `WINDOWPATH` (or `XDG_VTNR` with a display): numbers
/// separated by one character each; `None` when there is none; an error
/// when it is malformed.
pub fn tty_path() -> Result<Vec<u32>, BrlError> {
    let path = std::env::var("WINDOWPATH").ok().or_else(|| {
        (std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some())
            .then(|| std::env::var("XDG_VTNR").ok())
            .flatten()
    });
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut rest = path.as_str();
    while !rest.is_empty() {
        let (n, used) = strtol(rest).ok_or_else(|| {
            tracing::warn!(path = %path, "Erroneous window path");
            BrlError::Code(code::INVALID_PARAMETER)
        })?;
        out.push(n as u32);
        rest = &rest[used..];
        if rest.is_empty() {
            break;
        }
        // One separator.
        let mut chars = rest.chars();
        chars.next();
        rest = chars.as_str();
    }
    Ok(out)
}

/// C's `strtol(s, &end, 0)`: the value and the bytes used, if any digits.
fn strtol(s: &str) -> Option<(i64, usize)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let neg = match b.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let (radix, start) = if b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        (16, i + 2)
    } else if b.get(i) == Some(&b'0') {
        (8, i)
    } else {
        (10, i)
    };
    let mut j = start;
    let mut v: i64 = 0;
    while let Some(d) = b.get(j).and_then(|c| (*c as char).to_digit(radix)) {
        v = v.saturating_mul(radix as i64).saturating_add(d as i64);
        j += 1;
    }
    (j > start).then_some((if neg { -v } else { v }, j))
}

/// An `enterTtyMode` payload: the tty path then the tty, and a driver name
/// (none: the server's own keys).
pub fn enter_tty_payload(path: &[u32], tty: u32, driver: &str) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&(path.len() as u32 + 1).to_be_bytes());
    for t in path.iter().chain(std::iter::once(&tty)) {
        p.extend_from_slice(&t.to_be_bytes());
    }
    p.push(driver.len() as u8);
    p.extend_from_slice(driver.as_bytes());
    p
}

/// What `brlapi__write` is given (QEMU's `brlapi_writeArguments_t`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// First cell of the region (from 1).
    pub region_begin: u32,
    /// The text, one byte per cell in `charset`.
    pub text: Vec<u8>,
    /// Dots cleared in every cell.
    pub and_mask: Vec<u8>,
    /// Dots set in every cell.
    pub or_mask: Vec<u8>,
    /// The cursor (0: off; 1: the first cell).
    pub cursor: u32,
    /// The text's charset.
    pub charset: String,
}

impl Write {
    /// The `w` packet's payload, fields in flag order.
    pub fn payload(&self) -> Vec<u8> {
        let size = self.or_mask.len() as u32;
        let flags = wf::REGION | wf::TEXT | wf::ATTR_AND | wf::ATTR_OR | wf::CURSOR | wf::CHARSET;
        let mut p = Vec::new();
        p.extend_from_slice(&flags.to_be_bytes());
        p.extend_from_slice(&self.region_begin.to_be_bytes());
        p.extend_from_slice(&size.to_be_bytes());
        p.extend_from_slice(&(self.text.len() as u32).to_be_bytes());
        p.extend_from_slice(&self.text);
        p.extend_from_slice(&self.and_mask);
        p.extend_from_slice(&self.or_mask);
        p.extend_from_slice(&self.cursor.to_be_bytes());
        p.push(self.charset.len() as u8);
        p.extend_from_slice(self.charset.as_bytes());
        p
    }
}

/// A connection's stream, readable and writable from a poll function: bytes
/// to send are queued and flushed as the socket takes them.
pub struct Wire {
    io: Box<dyn Io>,
    decoder: Decoder,
    out: Vec<u8>,
    sent: usize,
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wire")
            .field("queued", &(self.out.len() - self.sent))
            .finish()
    }
}

/// The most queued for the server before the connection is deemed stuck.
pub const OUT_MAX: usize = 1 << 20;

impl Wire {
    /// Over an open connection.
    pub fn new(c: Connection) -> Wire {
        Wire {
            io: c.io,
            decoder: c.decoder,
            out: Vec::new(),
            sent: 0,
        }
    }

    /// Queue a packet; false when the queue is full (the packet is dropped).
    pub fn send(&mut self, ty: u32, payload: &[u8]) -> bool {
        if self.out.len() - self.sent + payload.len() + 8 > OUT_MAX {
            return false;
        }
        self.out.extend_from_slice(&encode(ty, payload));
        true
    }

    /// Write what is queued; read what arrived. Returns the packets read,
    /// or the error that ends the connection.
    pub fn poll(&mut self, cx: &mut Context<'_>) -> Result<Vec<Packet>, BrlError> {
        while self.sent < self.out.len() {
            match Pin::new(&mut self.io).poll_write(cx, &self.out[self.sent..]) {
                Poll::Ready(Ok(0)) => return Err(BrlError::Code(code::EOF)),
                Poll::Ready(Ok(n)) => self.sent += n,
                Poll::Ready(Err(e)) => return Err(BrlError::Libc("write", OsError::from(e))),
                Poll::Pending => break,
            }
        }
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        let mut buf = [0u8; 4096];
        loop {
            let mut rb = ReadBuf::new(&mut buf);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Err(BrlError::Code(code::EOF)),
                Poll::Ready(Ok(())) => self.decoder.feed(rb.filled()),
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Err(BrlError::Libc("read", OsError::from(e))),
                Poll::Pending => break,
            }
        }
        let mut packets = Vec::new();
        while let Some(p) = self.decoder.next_packet() {
            packets.push(p?);
        }
        Ok(packets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_read_as_libbrlapi_reads_them() {
        assert_eq!(
            Target::from_host(":0"),
            Target::Local {
                name: "0".into(),
                fallback: Some(4101)
            }
        );
        assert_eq!(
            Target::from_host("localhost:3"),
            Target::Tcp {
                host: "localhost".into(),
                port: 4104
            }
        );
        assert_eq!(
            Target::from_host("h:x"),
            Target::Tcp {
                host: "h".into(),
                port: 4101
            }
        );
        assert_eq!(
            Target::from_host("h"),
            Target::Tcp {
                host: "h".into(),
                port: 4101
            }
        );
        assert_eq!(
            Target::from_host(":sock"),
            Target::Local {
                name: "sock".into(),
                fallback: None
            }
        );
    }

    #[test]
    fn errors_read_as_brlapi_strerror() {
        assert_eq!(
            BrlError::Libc("connect", OsError::from_errno(2)).to_string(),
            "connect: No such file or directory"
        );
        assert_eq!(BrlError::Code(code::CONNREFUSED).to_string(), "Connection refused");
        assert_eq!(
            BrlError::Code(code::UNKNOWN_TTY).to_string(),
            "Can't determine tty number"
        );
        assert_eq!(BrlError::Code(99).to_string(), "Unknown error");
    }

    #[test]
    fn packets_round_trip_cut_anywhere() {
        let mut wire = encode(packet::KEY, &key_payload(0x2000_0010_0000_0004));
        wire.extend(encode(packet::ACK, &[]));
        for cut in 0..=wire.len() {
            let mut d = Decoder::default();
            d.feed(&wire[..cut]);
            let mut got = Vec::new();
            while let Some(p) = d.next_packet() {
                got.push(p.unwrap());
            }
            d.feed(&wire[cut..]);
            while let Some(p) = d.next_packet() {
                got.push(p.unwrap());
            }
            assert_eq!(got.len(), 2);
            assert_eq!(key_code(&got[0].payload), Some(0x2000_0010_0000_0004));
            assert_eq!(got[1].ty, packet::ACK);
        }
        let mut d = Decoder::default();
        d.feed(&encode(packet::WRITE, &[0; 4097]));
        assert!(d.next_packet().unwrap().is_err());
    }

    #[test]
    fn key_files_as_libbrlapi_names_them() {
        assert_eq!(key_file("keyfile:/etc/brlapi.key"), "/etc/brlapi.key");
        assert_eq!(key_file("none+keyfile:/k+polkit"), "/k");
        assert_eq!(key_file("/x"), "/x");
    }

    #[test]
    fn strtol_as_c() {
        assert_eq!(strtol("7"), Some((7, 1)));
        assert_eq!(strtol("0x1f,"), Some((31, 4)));
        assert_eq!(strtol("010"), Some((8, 3)));
        assert_eq!(strtol("x"), None);
        assert_eq!(enter_tty_payload(&[], 7, ""), [0, 0, 0, 1, 0, 0, 0, 7, 0]);
    }
}
