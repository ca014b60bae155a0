//! QEMU's websocket server side (`-chardev socket,…,websocket=on`), without I/O.
//!
//! The caller owns the socket. It first feeds everything the client sent so far to [`handshake`] until
//! the answer is not [`Handshake::Incomplete`], sends the response, and on [`Handshake::Accept`] hands
//! the bytes after the request head to a [`Decoder`]. Chardev writes go out through [`binary_frame`].
//!
//! Everything here follows QEMU 10.0.2's `io/channel-websock.c`, byte for byte where bytes are visible:
//!
//! - The request head must end (`\r\n\r\n`) within the first [`MAX_HEAD`] bytes, else
//!   `403 Request Entity Too Large`. A NUL byte ends the search, as `g_strstr_len` does.
//! - Request line: exact `GET`, `/` and `HTTP/1.1`. A line without any space gets no answer at all
//!   ([`Handshake::Drop`]); a path other than `/` gets `404`; everything else that is wrong gets the one
//!   `400` response, which (QEMU's quirk) has no final blank line.
//! - At most 32 header lines, each with a colon. Names are compared case-insensitively (QEMU lower-cases
//!   them); leading spaces of a value are skipped, nothing else is trimmed. The first header of a name
//!   wins. Checks, in QEMU's order: `Sec-WebSocket-Version`, `Sec-WebSocket-Key`, `Host`, `Connection`
//!   and `Upgrade` present; `Sec-WebSocket-Protocol`, if present, contains `binary` anywhere; version
//!   exactly `13`; key exactly 24 bytes (not base64-checked); one comma-separated, whitespace-stripped
//!   `Connection` token equal to `Upgrade` ignoring case; `Upgrade` equal to `websocket` ignoring case.
//! - The 101 response carries `Sec-WebSocket-Protocol: binary` only when the request had that header.
//! - There is no handshake timeout.
//!
//! Frames from the client:
//!
//! - QEMU looks at nothing before it has 6 bytes of a frame header, even for a frame that cannot be
//!   masked; so does [`Decoder`].
//! - A close frame (any payload, masked or not, FIN or not) is never echoed: the reply is always
//!   `88 16 03 e8 "peer requested close"`.
//! - Then, in this order: FIN=0 on anything but binary → 1008 `only binary frames may be fragmented`;
//!   an opcode other than binary, ping and pong → 1003 `only binary, close, ping, and pong frames are
//!   supported`; no mask → 1002 `client frames must be masked`; a 16- or 64-bit length on a control
//!   frame → 1002 `control frame is too large`. RSV bits are ignored.
//! - Binary payload (and that of continuation frames) is delivered as one byte stream. A ping is
//!   answered with a pong once its whole payload is in; a pong is ignored.
//!
//! Where this module differs from QEMU, on purpose:
//!
//! - **Pong payload.** QEMU's pong echoes the whole rest of its input buffer, so a ping that arrives
//!   together with another frame gets `8a 09 "hi" 82 81 07 77 9e f9 56` back. Ours echoes exactly the
//!   ping's payload (`8a 02 "hi"`).
//! - **Memory guard.** A frame whose declared payload exceeds [`MAX_IN_PAYLOAD`] (64 MiB) is refused with
//!   1009 `message too big`; QEMU accepts any 64-bit length.
//! - **Every ping gets its pong.** QEMU drops a pong while a previous one is still unsent; being
//!   I/O-free, [`Decoder`] cannot know that, so it leaves such throttling to the caller.
//! - **Continuation frames.** QEMU gives a continuation frame the opcode of the previous frame, whatever
//!   it was, so a continuation right after a ping is taken for a ping (its payload echoed in a pong, not
//!   delivered). Ours continues the last *data* frame: control frames between fragments, which RFC 6455
//!   allows, do not disturb the message. As in QEMU, a continuation before any binary frame is refused
//!   with 1003, and one after a finished binary message is still accepted as binary.
//! - QEMU's 1011 `internal server error` and the handshake's `500` (SHA-1 failure) cannot happen here.

/// Longest HTTP request head QEMU reads (4096 bytes).
pub const MAX_HEAD: usize = 4096;

/// Largest payload QEMU puts in one frame it sends.
pub const MAX_OUT_PAYLOAD: usize = 8192;

/// Largest payload a client frame may declare (64 MiB); a larger one is refused with 1009.
pub const MAX_IN_PAYLOAD: u64 = 64 * 1024 * 1024;

const MAX_HEADERS: usize = 32;
const KEY_LEN: usize = 24;
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const OP_CONTINUATION: u8 = 0x0;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xa;
const CONTROL_BIT: u8 = 0x8;

const STATUS_NORMAL: u16 = 1000;
const STATUS_PROTOCOL_ERR: u16 = 1002;
const STATUS_INVALID_DATA: u16 = 1003;
const STATUS_POLICY: u16 = 1008;
const STATUS_TOO_BIG: u16 = 1009;

const PEER_REQUESTED_CLOSE: &str = "peer requested close";
const ERR_MASK: Closing = Closing::Error(STATUS_PROTOCOL_ERR, "client frames must be masked");
const ERR_OPCODE: Closing = Closing::Error(
    STATUS_INVALID_DATA,
    "only binary, close, ping, and pong frames are supported",
);
const ERR_FRAGMENT: Closing = Closing::Error(STATUS_POLICY, "only binary frames may be fragmented");
const ERR_CONTROL_SIZE: Closing = Closing::Error(STATUS_PROTOCOL_ERR, "control frame is too large");
const ERR_TOO_BIG: Closing = Closing::Error(STATUS_TOO_BIG, "message too big");

/// What to do with the bytes a client has sent so far, before the websocket upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Need more bytes.
    Incomplete,
    /// Upgrade accepted: send `response`; the request head was `consumed` bytes (bytes after it are frames).
    Accept {
        /// The `101 Switching Protocols` response.
        response: Vec<u8>,
        /// Length of the request head, its final `\r\n\r\n` included.
        consumed: usize,
    },
    /// Refused: send `response`, then close.
    Reject {
        /// The `400`, `403` or `404` response.
        response: Vec<u8>,
    },
    /// Close without sending anything (QEMU's "Missing HTTP path delimiter" case, and a client that
    /// half-closes mid-head: the caller handles EOF itself).
    Drop,
}

/// Why a request head was refused.
enum Refusal {
    BadRequest,
    NotFound,
    Silent,
}

/// Answer a websocket upgrade request, `head` being every byte the client has sent so far.
///
/// `date` is the HTTP Date value (e.g. "Tue, 01 Dec 2026 21:31:31 GMT"); `sha1` computes SHA-1.
#[must_use]
pub fn handshake(head: &[u8], date: &str, sha1: fn(&[u8]) -> [u8; 20]) -> Handshake {
    let window = &head[..head.len().min(MAX_HEAD)];
    let searchable = match window.iter().position(|&b| b == 0) {
        Some(nul) => &window[..nul],
        None => window,
    };
    let Some(end) = find(searchable, b"\r\n\r\n") else {
        if head.len() >= MAX_HEAD {
            return Handshake::Reject {
                response: error_response("403 Request Entity Too Large", date, true),
            };
        }
        return Handshake::Incomplete;
    };
    match check_request(&searchable[..end]) {
        Ok((key, with_protocol)) => Handshake::Accept {
            response: ok_response(date, &accept_bytes(key, sha1), with_protocol),
            consumed: end + 4,
        },
        Err(Refusal::BadRequest) => Handshake::Reject {
            response: bad_request_response(date),
        },
        Err(Refusal::NotFound) => Handshake::Reject {
            response: error_response("404 Not Found", date, true),
        },
        Err(Refusal::Silent) => Handshake::Drop,
    }
}

/// Sec-WebSocket-Accept for a key: base64(sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")).
#[must_use]
pub fn accept_key(key: &str, sha1: fn(&[u8]) -> [u8; 20]) -> String {
    accept_bytes(key.as_bytes(), sha1)
}

/// The Date value for a time (seconds since the Unix epoch), strftime "%a, %d %b %Y %H:%M:%S GMT".
#[must_use]
pub fn http_date(unix_seconds: u64) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Howard Hinnant's civil_from_days, for days >= 0 (March-based years).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let weekday = WEEKDAYS[(days % 7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} GMT",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// QEMU's `qio_channel_websock_extract_headers` and `qio_channel_websock_handshake_process`, on the
/// request head without its final `\r\n\r\n`. Returns the key and whether a protocol header was present.
fn check_request(text: &[u8]) -> Result<(&[u8], bool), Refusal> {
    let nl = find(text, b"\r\n").ok_or(Refusal::BadRequest)?;
    let line = &text[..nl];
    let space = line.iter().position(|&b| b == b' ').ok_or(Refusal::Silent)?;
    if &line[..space] != b"GET" {
        return Err(Refusal::BadRequest);
    }
    let rest = &line[space + 1..];
    let space = rest.iter().position(|&b| b == b' ').ok_or(Refusal::BadRequest)?;
    if &rest[..space] != b"/" {
        return Err(Refusal::NotFound);
    }
    if &rest[space + 1..] != b"HTTP/1.1" {
        return Err(Refusal::BadRequest);
    }

    let mut headers: Vec<(&[u8], &[u8])> = Vec::new();
    let mut remaining = &text[nl + 2..];
    loop {
        let (line, next) = match find(remaining, b"\r\n") {
            Some(nl) => (&remaining[..nl], Some(&remaining[nl + 2..])),
            None => (remaining, None),
        };
        let colon = line.iter().position(|&b| b == b':').ok_or(Refusal::BadRequest)?;
        if headers.len() >= MAX_HEADERS {
            return Err(Refusal::BadRequest);
        }
        let mut value = &line[colon + 1..];
        while let [b' ', tail @ ..] = value {
            value = tail;
        }
        headers.push((&line[..colon], value));
        match next {
            Some(next) => remaining = next,
            None => break,
        }
    }

    let header = |name: &[u8]| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    };
    let protocol = header(b"sec-websocket-protocol");
    let version = header(b"sec-websocket-version").ok_or(Refusal::BadRequest)?;
    let key = header(b"sec-websocket-key").ok_or(Refusal::BadRequest)?;
    header(b"host").ok_or(Refusal::BadRequest)?;
    let connection = header(b"connection").ok_or(Refusal::BadRequest)?;
    let upgrade = header(b"upgrade").ok_or(Refusal::BadRequest)?;
    if protocol.is_some_and(|p| find(p, b"binary").is_none()) {
        return Err(Refusal::BadRequest);
    }
    if version != b"13" || key.len() != KEY_LEN {
        return Err(Refusal::BadRequest);
    }
    if !connection
        .split(|&b| b == b',')
        .any(|token| g_strstrip(token).eq_ignore_ascii_case(b"Upgrade"))
    {
        return Err(Refusal::BadRequest);
    }
    if !upgrade.eq_ignore_ascii_case(b"websocket") {
        return Err(Refusal::BadRequest);
    }
    Ok((key, protocol.is_some()))
}

/// `g_strstrip`: drop leading and trailing `g_ascii_isspace` bytes (which include `\v`).
fn g_strstrip(mut s: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r');
    while let [first, rest @ ..] = s {
        if !space(first) {
            break;
        }
        s = rest;
    }
    while let [rest @ .., last] = s {
        if !space(last) {
            break;
        }
        s = rest;
    }
    s
}

/// First position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn accept_bytes(key: &[u8], sha1: fn(&[u8]) -> [u8; 20]) -> String {
    let mut combined = Vec::with_capacity(key.len() + GUID.len());
    combined.extend_from_slice(key);
    combined.extend_from_slice(GUID);
    base64(&sha1(&combined))
}

fn ok_response(date: &str, accept: &str, with_protocol: bool) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 101 Switching Protocols\r\nServer: QEMU VNC\r\nDate: {date}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if with_protocol {
        s.push_str("Sec-WebSocket-Protocol: binary\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// `HTTP/1.1 <status>` with the common and `Connection: close` lines, then a blank line if `end`.
fn error_response(status: &str, date: &str, end: bool) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status}\r\nServer: QEMU VNC\r\nDate: {date}\r\nConnection: close\r\n");
    if end {
        s.push_str("\r\n");
    }
    s.into_bytes()
}

/// QEMU's 400 response: no final blank line.
fn bad_request_response(date: &str) -> Vec<u8> {
    let mut v = error_response("400 Bad Request", date, false);
    v.extend_from_slice(b"Sec-WebSocket-Version: 13\r\n");
    v
}

/// Standard base64 (RFC 4648 §4) with padding.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One unmasked frame with FIN set, QEMU's `qio_channel_websock_encode`.
fn encode(opcode: u8, parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len < 65_536 {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Append one unmasked text frame (FIN, opcode 1): the web console's status
/// messages (a terminal's bytes always go in binary frames).
pub fn text_frame(payload: &str, out: &mut Vec<u8>) {
    encode(1, &[payload.as_bytes()], out);
}

/// Append one unmasked binary frame (FIN, opcode 2) carrying `payload` (caller keeps payload <= [`MAX_OUT_PAYLOAD`]
/// or splits).
pub fn binary_frame(payload: &[u8], out: &mut Vec<u8>) {
    encode(OP_BINARY, &[payload], out);
}

/// A close frame: 2-byte status then reason.
pub fn close_frame(status: u16, reason: &str, out: &mut Vec<u8>) {
    encode(OP_CLOSE, &[&status.to_be_bytes(), reason.as_bytes()], out);
}

/// Why the connection must close; the close frame to send is already in the `reply` of [`Decoder::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The peer asked to close: reply then close.
    Requested,
    /// Protocol error: status and reason as QEMU words them.
    Error(u16, &'static str),
}

impl Closing {
    fn write_reply(self, reply: &mut Vec<u8>) {
        match self {
            Closing::Requested => close_frame(STATUS_NORMAL, PEER_REQUESTED_CLOSE, reply),
            Closing::Error(status, reason) => close_frame(status, reason, reply),
        }
    }
}

/// A header that passed QEMU's checks on its first 6 bytes.
#[derive(Debug, Clone, Copy)]
struct Checked {
    opcode: u8,
    size: usize,
}

/// The frame whose payload is being read.
#[derive(Debug)]
struct Frame {
    opcode: u8,
    remain: u64,
    mask: [u8; 4],
    /// Payload bytes unmasked so far, modulo 4.
    phase: usize,
    /// Payload of a control frame, kept until it is whole.
    control: Vec<u8>,
}

/// Server-side decoder of client frames, fed the bytes that follow the handshake.
#[derive(Debug, Default)]
pub struct Decoder {
    header: [u8; 14],
    header_len: usize,
    checked: Option<Checked>,
    frame: Option<Frame>,
    /// Opcode of the last data frame (0: none yet), which continuation frames carry on.
    data_opcode: u8,
    closed: Option<Closing>,
}

impl Decoder {
    /// A decoder for a freshly upgraded connection.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode client bytes: payload of binary (and continuation) frames is appended to `data`; pongs owed for
    /// pings and the close reply are appended to `reply` (bytes to send). Returns Err(Closing) once the
    /// connection must close (after `reply` is sent). Handles frames split across calls at any byte.
    ///
    /// Data and pongs decoded before the closing frame are appended too, pongs before the close frame. Once
    /// closed, every later call returns the same `Err` and appends nothing.
    ///
    /// # Errors
    /// [`Closing::Requested`] on a close frame; [`Closing::Error`] on a frame QEMU refuses, or one declaring
    /// more than [`MAX_IN_PAYLOAD`] bytes.
    pub fn feed(&mut self, input: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) -> Result<(), Closing> {
        if let Some(closing) = self.closed {
            return Err(closing);
        }
        self.run(input, data, reply).inspect_err(|&closing| {
            closing.write_reply(reply);
            self.closed = Some(closing);
        })
    }

    fn run(&mut self, mut input: &[u8], data: &mut Vec<u8>, reply: &mut Vec<u8>) -> Result<(), Closing> {
        loop {
            if let Some(frame) = &mut self.frame {
                let take = usize::try_from(frame.remain).map_or(input.len(), |r| r.min(input.len()));
                let (chunk, rest) = input.split_at(take);
                input = rest;
                let target = if frame.opcode == OP_BINARY {
                    &mut *data
                } else {
                    &mut frame.control
                };
                let start = target.len();
                target.extend_from_slice(chunk);
                for (i, byte) in target[start..].iter_mut().enumerate() {
                    *byte ^= frame.mask[(frame.phase + i) % 4];
                }
                frame.phase = (frame.phase + take) % 4;
                frame.remain -= take as u64;
                if frame.remain > 0 {
                    return Ok(());
                }
                if frame.opcode == OP_PING {
                    encode(OP_PONG, &[&frame.control], reply);
                }
                // Pongs are ignored; binary payload is already delivered.
                self.frame = None;
                continue;
            }
            if input.is_empty() {
                return Ok(());
            }
            input = self.fill(input, 6);
            if self.header_len < 6 {
                return Ok(());
            }
            let checked = match self.checked {
                Some(checked) => checked,
                None => {
                    let checked = self.check_header()?;
                    self.checked = Some(checked);
                    checked
                }
            };
            input = self.fill(input, checked.size);
            if self.header_len < checked.size {
                return Ok(());
            }
            let h = &self.header;
            let remain = match checked.size {
                6 => u64::from(h[1] & 0x7f),
                8 => u64::from(u16::from_be_bytes([h[2], h[3]])),
                _ => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            };
            if remain > MAX_IN_PAYLOAD {
                return Err(ERR_TOO_BIG);
            }
            let size = checked.size;
            let mask = [h[size - 4], h[size - 3], h[size - 2], h[size - 1]];
            self.header_len = 0;
            self.checked = None;
            self.frame = Some(Frame {
                opcode: checked.opcode,
                remain,
                mask,
                phase: 0,
                control: Vec::new(),
            });
        }
    }

    /// Move bytes from `input` into the header buffer until it holds `upto` bytes; return the rest.
    fn fill<'a>(&mut self, input: &'a [u8], upto: usize) -> &'a [u8] {
        let n = upto.saturating_sub(self.header_len).min(input.len());
        self.header[self.header_len..self.header_len + n].copy_from_slice(&input[..n]);
        self.header_len += n;
        &input[n..]
    }

    /// QEMU's `qio_channel_websock_decode_header` checks, in its order, on the first 6 header bytes.
    fn check_header(&mut self) -> Result<Checked, Closing> {
        let (b0, b1) = (self.header[0], self.header[1]);
        let fin = b0 & 0x80 != 0;
        let raw = b0 & 0x0f;
        let opcode = if raw == OP_CONTINUATION { self.data_opcode } else { raw };
        if raw & CONTROL_BIT == 0 && raw != OP_CONTINUATION {
            self.data_opcode = raw;
        }
        if opcode == OP_CLOSE {
            return Err(Closing::Requested);
        }
        if !fin && opcode != OP_BINARY {
            return Err(ERR_FRAGMENT);
        }
        if !matches!(opcode, OP_BINARY | OP_PING | OP_PONG) {
            return Err(ERR_OPCODE);
        }
        if b1 & 0x80 == 0 {
            return Err(ERR_MASK);
        }
        let size = match b1 & 0x7f {
            0..=125 => 6,
            _ if opcode & CONTROL_BIT != 0 => return Err(ERR_CONTROL_SIZE),
            126 => 8,
            _ => 14,
        };
        Ok(Checked { opcode, size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-1 (FIPS 180-1), for the tests only.
    fn sha1(input: &[u8]) -> [u8; 20] {
        let mut h: [u32; 5] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];
        let mut msg = input.to_vec();
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&((input.len() as u64) * 8).to_be_bytes());
        for block in msg.chunks(64) {
            let mut w = [0u32; 80];
            for i in 0..16 {
                w[i] = u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
            }
            for i in 16..80 {
                w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
            }
            let [mut a, mut b, mut c, mut d, mut e] = h;
            for (i, wi) in w.iter().enumerate() {
                let (f, k) = match i {
                    0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                    20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                    40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                    _ => (b ^ c ^ d, 0xca62_c1d6),
                };
                let t = a
                    .rotate_left(5)
                    .wrapping_add(f)
                    .wrapping_add(e)
                    .wrapping_add(k)
                    .wrapping_add(*wi);
                e = d;
                d = c;
                c = b.rotate_left(30);
                b = a;
                a = t;
            }
            for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
                *x = x.wrapping_add(y);
            }
        }
        let mut out = [0u8; 20];
        for (i, word) in h.iter().enumerate() {
            out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_vectors() {
        assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn base64_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input), expected);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0x00]), "//79AA==");
    }

    #[test]
    fn accept_keys() {
        assert_eq!(accept_key(KEY, sha1), ACCEPT);
        // RFC 6455 §1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ==", sha1),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // All from `date -u -d @N '+%a, %d %b %Y %H:%M:%S GMT'`.
        assert_eq!(http_date(1_796_167_891), "Tue, 01 Dec 2026 23:31:31 GMT");
        assert_eq!(http_date(1_796_160_691), "Tue, 01 Dec 2026 21:31:31 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(http_date(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
    }

    const KEY: &str = "o9JHNiS3/0/0zYE1wa3yIw==";
    const ACCEPT: &str = "b3DnPh7O8hyYE5sIjQxl/c1J+S8=";
    const DATE: &str = "Tue, 01 Dec 2026 21:31:31 GMT";

    fn ok_with_protocol() -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nServer: QEMU VNC\r\nDate: {DATE}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\nSec-WebSocket-Protocol: binary\r\n\r\n"
        )
        .into_bytes()
    }

    fn ok_without_protocol() -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nServer: QEMU VNC\r\nDate: {DATE}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        )
        .into_bytes()
    }

    fn bad_request() -> Handshake {
        let response = format!(
            "HTTP/1.1 400 Bad Request\r\nServer: QEMU VNC\r\nDate: {DATE}\r\nConnection: close\r\n\
             Sec-WebSocket-Version: 13\r\n"
        );
        Handshake::Reject {
            response: response.into_bytes(),
        }
    }

    fn not_found() -> Handshake {
        let response =
            format!("HTTP/1.1 404 Not Found\r\nServer: QEMU VNC\r\nDate: {DATE}\r\nConnection: close\r\n\r\n");
        Handshake::Reject {
            response: response.into_bytes(),
        }
    }

    fn too_large() -> Handshake {
        let response = format!(
            "HTTP/1.1 403 Request Entity Too Large\r\nServer: QEMU VNC\r\nDate: {DATE}\r\nConnection: close\r\n\r\n"
        );
        Handshake::Reject {
            response: response.into_bytes(),
        }
    }

    /// A request from a request line and header lines.
    fn request(line: &str, headers: &[String]) -> Vec<u8> {
        let mut s = format!("{line}\r\n");
        for h in headers {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }

    /// The valid headers, in the usual form, `protocol` optional.
    fn headers(protocol: Option<&str>) -> Vec<String> {
        let mut v = vec![
            "Host: localhost:5000".to_string(),
            "Upgrade: websocket".to_string(),
            "Connection: Upgrade".to_string(),
            format!("Sec-WebSocket-Key: {KEY}"),
            "Sec-WebSocket-Version: 13".to_string(),
        ];
        if let Some(p) = protocol {
            v.push(format!("Sec-WebSocket-Protocol: {p}"));
        }
        v
    }

    /// The valid headers with the one named `name` replaced by `line` (or dropped when `line` is None).
    fn with_header(name: &str, line: Option<&str>) -> Vec<String> {
        let mut v: Vec<String> = headers(Some("binary"))
            .into_iter()
            .filter(|h| {
                !h.to_ascii_lowercase()
                    .starts_with(&format!("{}:", name.to_ascii_lowercase()))
            })
            .collect();
        if let Some(l) = line {
            v.push(l.to_string());
        }
        v
    }

    fn run(head: &[u8]) -> Handshake {
        handshake(head, DATE, sha1)
    }

    fn accept(head: &[u8], response: Vec<u8>) -> Handshake {
        Handshake::Accept {
            response,
            consumed: head.len(),
        }
    }

    #[test]
    fn accepts_binary_protocol_substrings() {
        for protocol in ["binary", "chat, binary", "xbinaryx"] {
            let head = request("GET / HTTP/1.1", &headers(Some(protocol)));
            assert_eq!(run(&head), accept(&head, ok_with_protocol()), "{protocol}");
        }
    }

    #[test]
    fn accepts_without_protocol_and_omits_the_line() {
        let head = request("GET / HTTP/1.1", &headers(None));
        assert_eq!(run(&head), accept(&head, ok_without_protocol()));
    }

    #[test]
    fn refuses_other_protocols_and_versions() {
        let head = request("GET / HTTP/1.1", &headers(Some("chat")));
        assert_eq!(run(&head), bad_request());
        let head = request(
            "GET / HTTP/1.1",
            &with_header("Sec-WebSocket-Version", Some("Sec-WebSocket-Version: 8")),
        );
        assert_eq!(run(&head), bad_request());
        let head = request(
            "GET / HTTP/1.1",
            &with_header("Sec-WebSocket-Version", Some("Sec-WebSocket-Version: 13 ")),
        );
        assert_eq!(run(&head), bad_request());
    }

    #[test]
    fn refuses_bad_keys() {
        let head = request("GET / HTTP/1.1", &with_header("Sec-WebSocket-Key", None));
        assert_eq!(run(&head), bad_request());
        let short = format!("Sec-WebSocket-Key: {}", &KEY[..23]);
        let head = request("GET / HTTP/1.1", &with_header("Sec-WebSocket-Key", Some(&short)));
        assert_eq!(run(&head), bad_request());
        // Not base64-checked: any 24 bytes do.
        let head = request(
            "GET / HTTP/1.1",
            &with_header("Sec-WebSocket-Key", Some("Sec-WebSocket-Key: ************************")),
        );
        let expected = ok_with_protocol();
        let expected = String::from_utf8_lossy(&expected)
            .replace(ACCEPT, &accept_key("************************", sha1))
            .into_bytes();
        assert_eq!(run(&head), accept(&head, expected));
    }

    #[test]
    fn refuses_missing_headers() {
        for name in ["Host", "Upgrade", "Connection", "Sec-WebSocket-Version"] {
            let head = request("GET / HTTP/1.1", &with_header(name, None));
            assert_eq!(run(&head), bad_request(), "{name}");
        }
        // Host's value is not checked.
        let head = request("GET / HTTP/1.1", &with_header("Host", Some("Host:")));
        assert_eq!(run(&head), accept(&head, ok_with_protocol()));
    }

    #[test]
    fn connection_token_list() {
        for value in [
            "keep-alive, Upgrade",
            "upgrade",
            "keep-alive,\tUPGRADE \x0b",
            "Upgrade,keep-alive",
        ] {
            let line = format!("Connection: {value}");
            let head = request("GET / HTTP/1.1", &with_header("Connection", Some(&line)));
            assert_eq!(run(&head), accept(&head, ok_with_protocol()), "{value:?}");
        }
        for value in ["keep-alive", "Upgrade2", "keep-alive; Upgrade", ""] {
            let line = format!("Connection: {value}");
            let head = request("GET / HTTP/1.1", &with_header("Connection", Some(&line)));
            assert_eq!(run(&head), bad_request(), "{value:?}");
        }
    }

    #[test]
    fn upgrade_value_case_insensitive() {
        let head = request("GET / HTTP/1.1", &with_header("Upgrade", Some("Upgrade: WebSocket")));
        assert_eq!(run(&head), accept(&head, ok_with_protocol()));
        let head = request("GET / HTTP/1.1", &with_header("Upgrade", Some("Upgrade: websocket2")));
        assert_eq!(run(&head), bad_request());
    }

    #[test]
    fn lower_case_names_and_several_spaces() {
        let hs: Vec<String> = headers(Some("binary"))
            .iter()
            .map(|h| {
                let (name, value) = h.split_once(": ").unwrap_or((h, ""));
                format!("{}:    {value}", name.to_ascii_lowercase())
            })
            .collect();
        let head = request("GET / HTTP/1.1", &hs);
        assert_eq!(run(&head), accept(&head, ok_with_protocol()));
        // A tab is not skipped: the version becomes "\t13".
        let head = request(
            "GET / HTTP/1.1",
            &with_header("Sec-WebSocket-Version", Some("Sec-WebSocket-Version:\t13")),
        );
        assert_eq!(run(&head), bad_request());
        // The name is not trimmed.
        let head = request("GET / HTTP/1.1", &with_header("Host", Some("Host : x")));
        assert_eq!(run(&head), bad_request());
    }

    #[test]
    fn first_header_of_a_name_wins() {
        let mut hs = headers(Some("binary"));
        hs.insert(0, "sec-websocket-version: 8".to_string());
        assert_eq!(run(&request("GET / HTTP/1.1", &hs)), bad_request());
        let mut hs = headers(Some("binary"));
        hs.push("Sec-WebSocket-Version: 8".to_string());
        let head = request("GET / HTTP/1.1", &hs);
        assert_eq!(run(&head), accept(&head, ok_with_protocol()));
    }

    #[test]
    fn request_line() {
        let hs = headers(Some("binary"));
        assert_eq!(run(&request("GET /foo HTTP/1.1", &hs)), not_found());
        assert_eq!(run(&request("POST / HTTP/1.1", &hs)), bad_request());
        assert_eq!(run(&request("GET / HTTP/1.0", &hs)), bad_request());
        assert_eq!(run(&request("get / HTTP/1.1", &hs)), bad_request());
        assert_eq!(run(&request("GET / HTTP/1.1 ", &hs)), bad_request());
        assert_eq!(run(&request("GET /", &hs)), bad_request());
        // The method is checked before the path, the path before the version.
        assert_eq!(run(&request("POST /foo HTTP/1.1", &hs)), bad_request());
        assert_eq!(run(&request("GET /foo HTTP/1.0", &hs)), not_found());
        // 404 comes before any header check.
        assert_eq!(run(&request("GET /foo HTTP/1.1", &["X y".to_string()])), not_found());
    }

    #[test]
    fn garbage() {
        assert_eq!(run(b"hello world\r\n\r\n"), bad_request());
        assert_eq!(run(b"GARBAGE\r\n\r\n"), bad_request());
        assert_eq!(run(b"GET / HTTP/1.1\r\n\r\n"), bad_request());
        assert_eq!(run(b"\r\n\r\n"), bad_request());
        assert_eq!(run(b"GARBAGE\r\nX: y\r\n\r\n"), Handshake::Drop);
    }

    #[test]
    fn header_without_colon() {
        let mut hs = headers(Some("binary"));
        hs.insert(2, "X-Broken header".to_string());
        assert_eq!(run(&request("GET / HTTP/1.1", &hs)), bad_request());
    }

    #[test]
    fn header_count_limit() {
        let fill = |n: usize| {
            let mut hs = headers(Some("binary"));
            let mut i = 0;
            while hs.len() < n {
                hs.push(format!("X-Filler-{i}: {i}"));
                i += 1;
            }
            hs
        };
        let head = request("GET / HTTP/1.1", &fill(32));
        assert_eq!(run(&head), accept(&head, ok_with_protocol()));
        assert_eq!(run(&request("GET / HTTP/1.1", &fill(33))), bad_request());
    }

    #[test]
    fn head_size_limit() {
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_HEAD - 1, b'a');
        assert_eq!(run(&big), Handshake::Incomplete);
        big.push(b'a');
        assert_eq!(big.len(), MAX_HEAD);
        assert_eq!(run(&big), too_large());
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(run(&big), too_large());
        // The end straddling byte 4096 is not seen either.
        let mut straddle = big[..MAX_HEAD - 2].to_vec();
        straddle.extend_from_slice(b"\r\n\r\n");
        assert_eq!(run(&straddle), too_large());
        // An end whose last byte is byte 4096 is seen.
        let mut head = request("GET / HTTP/1.1", &headers(Some("binary")));
        let pad = MAX_HEAD - head.len();
        let filler = format!("X-Pad: {}\r\n", "p".repeat(pad - 9));
        head.splice(16..16, filler.bytes());
        assert_eq!(head.len(), MAX_HEAD);
        assert_eq!(run(&head), accept(&head, ok_with_protocol()));
        let mut more = head.clone();
        more.extend_from_slice(&[0x82, 0x80, 1, 2, 3, 4]);
        assert_eq!(run(&more), accept(&head, ok_with_protocol()));
    }

    #[test]
    fn nul_stops_the_end_search() {
        let mut head = request("GET / HTTP/1.1", &headers(Some("binary")));
        head.insert(5, 0);
        assert_eq!(run(&head), Handshake::Incomplete);
        head.resize(MAX_HEAD, b'z');
        assert_eq!(run(&head), too_large());
    }

    #[test]
    fn partial_heads_are_incomplete() {
        let head = request("GET / HTTP/1.1", &headers(Some("binary")));
        for n in 0..head.len() {
            assert_eq!(run(&head[..n]), Handshake::Incomplete, "{n}");
        }
        assert_eq!(run(&head), accept(&head, ok_with_protocol()));
    }

    #[test]
    fn consumed_excludes_following_frames() {
        let head = request("GET / HTTP/1.1", &headers(None));
        let mut bytes = head.clone();
        bytes.extend_from_slice(&masked(0x82, [7, 0x77, 0x9e, 0xf9], b"world"));
        let Handshake::Accept { consumed, .. } = run(&bytes) else {
            panic!("not accepted")
        };
        assert_eq!(consumed, head.len());
        let mut data = Vec::new();
        let mut reply = Vec::new();
        assert_eq!(Decoder::new().feed(&bytes[consumed..], &mut data, &mut reply), Ok(()));
        assert_eq!(data, b"world");
    }

    // ---------------------------------------------------------------------------------------------
    // Frames.

    const MASK: [u8; 4] = [0x07, 0x77, 0x9e, 0xf9];

    /// A masked client frame; the first byte is given whole (FIN, RSV, opcode).
    fn masked(b0: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![b0];
        let n = payload.len();
        if n < 126 {
            v.push(0x80 | n as u8);
        } else if n < 65_536 {
            v.push(0x80 | 126);
            v.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            v.push(0x80 | 127);
            v.extend_from_slice(&(n as u64).to_be_bytes());
        }
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        v
    }

    /// A masked client frame using the 64-bit length form whatever the length.
    fn masked64(b0: u8, mask: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![b0, 0x80 | 127];
        v.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        v
    }

    fn feed_all(dec: &mut Decoder, input: &[u8]) -> (Vec<u8>, Vec<u8>, Result<(), Closing>) {
        let mut data = Vec::new();
        let mut reply = Vec::new();
        let r = dec.feed(input, &mut data, &mut reply);
        (data, reply, r)
    }

    fn close_reply(status: u16, reason: &str) -> Vec<u8> {
        let mut v = vec![0x88, (2 + reason.len()) as u8];
        v.extend_from_slice(&status.to_be_bytes());
        v.extend_from_slice(reason.as_bytes());
        v
    }

    #[test]
    fn server_frames() {
        let mut out = Vec::new();
        binary_frame(b"QEMU 10.0.2 monitor - type 'help' for more information\r\n", &mut out);
        assert_eq!(&out[..2], [0x82, 0x38]);
        assert_eq!(&out[2..], b"QEMU 10.0.2 monitor - type 'help' for more information\r\n");
        out.clear();
        binary_frame(b"(qemu) ", &mut out);
        assert_eq!(out, b"\x82\x07(qemu) ");
        for (len, header) in [
            (0usize, vec![0x82, 0]),
            (125, vec![0x82, 125]),
            (126, vec![0x82, 126, 0, 126]),
            (213, vec![0x82, 0x7e, 0, 213]),
            (65_535, vec![0x82, 126, 0xff, 0xff]),
            (65_536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let payload = vec![0x5a; len];
            let mut out = vec![0xee];
            binary_frame(&payload, &mut out);
            assert_eq!(out[0], 0xee, "appends");
            assert_eq!(&out[1..1 + header.len()], &header[..], "{len}");
            assert_eq!(&out[1 + header.len()..], &payload[..], "{len}");
        }
        let mut out = Vec::new();
        close_frame(1000, "peer requested close", &mut out);
        assert_eq!(out, b"\x88\x16\x03\xe8peer requested close");
        assert_eq!(MAX_OUT_PAYLOAD, 8192);
    }

    #[test]
    fn test_char_ping() {
        let mut frame = vec![0x89, 0x85, 0x07, 0x77, 0x9e, 0xf9];
        frame.extend(b"hello".iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
        assert_eq!(frame, masked(0x89, MASK, b"hello"));
        let (data, reply, r) = feed_all(&mut Decoder::new(), &frame);
        assert_eq!(r, Ok(()));
        assert!(data.is_empty());
        assert_eq!(reply, [0x8a, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    #[test]
    fn test_char_binary() {
        let (data, reply, r) = feed_all(&mut Decoder::new(), &masked(0x82, MASK, b"world"));
        assert_eq!(r, Ok(()));
        assert_eq!(data, b"world");
        assert!(reply.is_empty());
    }

    #[test]
    fn test_char_close() {
        let mut dec = Decoder::new();
        let (data, reply, r) = feed_all(&mut dec, &[0x88, 0x82, 0xef, 0xaa, 0xc5, 0x97, 0xec, 0x42]);
        assert_eq!(r, Err(Closing::Requested));
        assert!(data.is_empty());
        assert_eq!(reply, b"\x88\x16\x03\xe8peer requested close");
        // Closed for good: later calls add nothing.
        let (data, reply, r) = feed_all(&mut dec, &masked(0x82, MASK, b"late"));
        assert_eq!((data.len(), reply.len(), r), (0, 0, Err(Closing::Requested)));
    }

    #[test]
    fn close_status_is_never_echoed() {
        let expected = close_reply(1000, "peer requested close");
        let mut bye = 1001u16.to_be_bytes().to_vec();
        bye.extend_from_slice(b"bye");
        for frame in [
            masked(0x88, MASK, b""),
            masked(0x88, MASK, &bye),
            masked(0x08, MASK, &bye),
            vec![0x88, 0x05, 0x03, 0xe9, b'b', b'y', b'e'],
        ] {
            let (_, reply, r) = feed_all(&mut Decoder::new(), &frame);
            assert_eq!(r, Err(Closing::Requested), "{frame:02x?}");
            assert_eq!(reply, expected, "{frame:02x?}");
        }
    }

    #[test]
    fn waits_for_six_header_bytes() {
        let mut dec = Decoder::new();
        let (data, reply, r) = feed_all(&mut dec, &[0x88, 0x02, 0x03, 0xe8]);
        assert_eq!((data.len(), reply.len(), r), (0, 0, Ok(())));
        let (_, reply, r) = feed_all(&mut dec, &[0x00, 0x00]);
        assert_eq!(r, Err(Closing::Requested));
        assert_eq!(reply, close_reply(1000, "peer requested close"));
        // Likewise for a short unmasked binary frame.
        let mut dec = Decoder::new();
        assert_eq!(feed_all(&mut dec, &[0x82, 0x01, b'x']).2, Ok(()));
        assert_eq!(feed_all(&mut dec, &[0x82, 0x01, b'y']).2, Err(ERR_MASK));
    }

    #[test]
    fn error_frames() {
        let unsupported = close_reply(1003, "only binary, close, ping, and pong frames are supported");
        assert_eq!(&unsupported[..4], [0x88, 0x39, 0x03, 0xeb]);
        let unmasked = close_reply(1002, "client frames must be masked");
        assert_eq!(&unmasked[..4], [0x88, 0x1e, 0x03, 0xea]);
        let fragmented = close_reply(1008, "only binary frames may be fragmented");
        assert_eq!(&fragmented[..4], [0x88, 0x26, 0x03, 0xf0]);
        let too_large = close_reply(1002, "control frame is too large");
        assert_eq!(&too_large[..4], [0x88, 0x1c, 0x03, 0xea]);
        let too_big = close_reply(1009, "message too big");
        assert_eq!(&too_big[..4], [0x88, 0x11, 0x03, 0xf1]);

        let mut huge = vec![0x82, 0xff];
        huge.extend_from_slice(&(MAX_IN_PAYLOAD + 1).to_be_bytes());
        huge.extend_from_slice(&MASK);
        let mut ping126 = vec![0x89, 0xfe, 0x00, 0x7e];
        ping126.extend_from_slice(&MASK);
        ping126.extend(std::iter::repeat_n(0u8, 126));
        let cases: Vec<(Vec<u8>, Closing, &Vec<u8>)> = vec![
            (masked(0x81, MASK, b"text"), ERR_OPCODE, &unsupported),
            (masked(0x80, MASK, b"cont"), ERR_OPCODE, &unsupported),
            (masked(0x83, MASK, b"op3"), ERR_OPCODE, &unsupported),
            (masked(0x8b, MASK, b"op11"), ERR_OPCODE, &unsupported),
            (vec![0x82, 0x05, b'h', b'e', b'l', b'l', b'o'], ERR_MASK, &unmasked),
            (vec![0x82, 0x00, 0, 0, 0, 0], ERR_MASK, &unmasked),
            (vec![0x81, 0x05, b'h', b'e', b'l', b'l', b'o'], ERR_OPCODE, &unsupported),
            (masked(0x09, MASK, b"hello"), ERR_FRAGMENT, &fragmented),
            (masked(0x01, MASK, b"text"), ERR_FRAGMENT, &fragmented),
            (masked(0x00, MASK, b"cont"), ERR_FRAGMENT, &fragmented),
            (
                vec![0x09, 0x05, b'h', b'e', b'l', b'l', b'o'],
                ERR_FRAGMENT,
                &fragmented,
            ),
            (ping126, ERR_CONTROL_SIZE, &too_large),
            (vec![0x8a, 0xff, 0, 0, 0, 0], ERR_CONTROL_SIZE, &too_large),
            (huge, ERR_TOO_BIG, &too_big),
        ];
        for (frame, closing, expected) in cases {
            let (data, reply, r) = feed_all(&mut Decoder::new(), &frame);
            assert_eq!(r, Err(closing), "{frame:02x?}");
            assert_eq!(&reply, expected, "{frame:02x?}");
            assert!(data.is_empty());
        }
        // Exactly 64 MiB is allowed (and streamed).
        let mut edge = vec![0x82, 0xff];
        edge.extend_from_slice(&MAX_IN_PAYLOAD.to_be_bytes());
        edge.extend_from_slice(&[0; 4]);
        edge.extend_from_slice(b"abc");
        let (data, reply, r) = feed_all(&mut Decoder::new(), &edge);
        assert_eq!((data, reply.len(), r), (b"abc".to_vec(), 0, Ok(())));
    }

    #[test]
    fn pings_and_pongs() {
        let (_, reply, r) = feed_all(&mut Decoder::new(), &masked(0x89, MASK, b""));
        assert_eq!((reply, r), (vec![0x8a, 0x00], Ok(())));
        let (data, reply, r) = feed_all(&mut Decoder::new(), &masked(0x8a, MASK, b"unsolicited"));
        assert_eq!((data.len(), reply.len(), r), (0, 0, Ok(())));
        let (_, reply, _) = feed_all(&mut Decoder::new(), &masked(0x89, MASK, &[0x42; 125]));
        assert_eq!(&reply[..2], [0x8a, 125]);
        assert_eq!(&reply[2..], [0x42; 125]);
    }

    #[test]
    fn ping_with_following_frame_echoes_only_its_payload() {
        // QEMU answers `8a 09 "hi" 82 81 07 77 9e f9 56`; we answer `8a 02 "hi"`.
        let mut input = masked(0x89, MASK, b"hi");
        input.extend_from_slice(&[0x82, 0x81, 0x07, 0x77, 0x9e, 0xf9, 0x56]);
        let (data, reply, r) = feed_all(&mut Decoder::new(), &input);
        assert_eq!(r, Ok(()));
        assert_eq!(reply, b"\x8a\x02hi");
        assert_eq!(data, [0x56 ^ 0x07]);
    }

    #[test]
    fn lengths_and_fragments() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mid: Vec<u8> = (0..300u32).map(|i| (i % 256) as u8).collect();
        let mut input = masked(0x82, MASK, &big);
        assert_eq!(input[1], 0xff);
        input.extend(masked(0x82, [1, 2, 3, 4], &mid));
        input.extend(masked64(0x82, [9, 8, 7, 6], b"sixty-four"));
        let (data, reply, r) = feed_all(&mut Decoder::new(), &input);
        assert_eq!(r, Ok(()));
        assert!(reply.is_empty());
        let mut expected = big.clone();
        expected.extend_from_slice(&mid);
        expected.extend_from_slice(b"sixty-four");
        assert_eq!(data, expected);

        // FIN=0 binary, a ping in between, continuation frames, the last with FIN.
        let mut input = masked(0x02, MASK, b"frag");
        input.extend(masked(0x89, MASK, b"p"));
        input.extend(masked(0x00, [5, 6, 7, 8], b"ment"));
        input.extend(masked(0x80, [0, 0, 0, 0], b"ed"));
        // QEMU keeps the binary opcode after the message ends: a later continuation is still data.
        input.extend(masked(0x80, MASK, b"!"));
        let (data, reply, r) = feed_all(&mut Decoder::new(), &input);
        assert_eq!(r, Ok(()));
        assert_eq!(data, b"fragmented!");
        assert_eq!(reply, b"\x8a\x01p");
    }

    #[test]
    fn frames_before_an_error_are_kept() {
        let mut input = masked(0x82, MASK, b"ok");
        input.extend(masked(0x89, MASK, b"pi"));
        input.extend(masked(0x81, MASK, b"text"));
        input.extend(masked(0x82, MASK, b"never"));
        let (data, reply, r) = feed_all(&mut Decoder::new(), &input);
        assert_eq!(r, Err(ERR_OPCODE));
        assert_eq!(data, b"ok");
        let mut expected = b"\x8a\x02pi".to_vec();
        expected.extend(close_reply(
            1003,
            "only binary, close, ping, and pong frames are supported",
        ));
        assert_eq!(reply, expected);
    }

    /// A sequence exercising every path, ending with a close.
    fn sequence() -> Vec<u8> {
        let mid: Vec<u8> = (0..200u32).map(|i| (i * 13 % 256) as u8).collect();
        let mut v = masked(0x89, MASK, b"hello");
        v.extend(masked(0x82, MASK, b"world"));
        v.extend(masked(0x02, [0x11, 0x22, 0x33, 0x44], &mid));
        v.extend(masked(0x8a, MASK, b"pong"));
        v.extend(masked(0x89, MASK, b""));
        v.extend(masked64(0x80, [0xaa, 0xbb, 0xcc, 0xdd], b"-end"));
        v.extend(masked(0x82, MASK, b""));
        v.extend(masked(0x82, [0xde, 0xad, 0xbe, 0xef], b"tail"));
        v.extend([0x88, 0x82, 0xef, 0xaa, 0xc5, 0x97, 0xec, 0x42]);
        v.extend(masked(0x82, MASK, b"after close"));
        v
    }

    fn expected_sequence() -> (Vec<u8>, Vec<u8>) {
        let mut data = b"world".to_vec();
        data.extend((0..200u32).map(|i| (i * 13 % 256) as u8));
        data.extend_from_slice(b"-endtail");
        let mut reply = b"\x8a\x05hello\x8a\x00".to_vec();
        reply.extend(close_reply(1000, "peer requested close"));
        (data, reply)
    }

    /// Feed `input` cut at `cuts` (sorted positions); stop at the first Err.
    fn feed_chunks(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<u8>, Result<(), Closing>) {
        let mut dec = Decoder::new();
        let mut data = Vec::new();
        let mut reply = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let r = dec.feed(&input[start..cut], &mut data, &mut reply);
            if r.is_err() {
                return (data, reply, r);
            }
            start = cut;
        }
        (data, reply, Ok(()))
    }

    #[test]
    fn rechunking_gives_the_same_result() {
        let input = sequence();
        let (data, reply) = expected_sequence();
        let whole = feed_chunks(&input, &[]);
        assert_eq!(whole, (data.clone(), reply.clone(), Err(Closing::Requested)));
        // One cut anywhere, two cuts anywhere.
        for a in 0..=input.len() {
            assert_eq!(feed_chunks(&input, &[a]), whole, "cut at {a}");
            for b in a..=input.len() {
                assert_eq!(feed_chunks(&input, &[a, b]), whole, "cuts at {a}, {b}");
            }
        }
        // Byte by byte, and in a few strides.
        for stride in 1..=17 {
            let cuts: Vec<usize> = (stride..input.len()).step_by(stride).collect();
            assert_eq!(feed_chunks(&input, &cuts), whole, "stride {stride}");
        }
        // Empty calls change nothing.
        let mut dec = Decoder::new();
        assert_eq!(feed_all(&mut dec, b""), (Vec::new(), Vec::new(), Ok(())));
    }

    #[test]
    fn rechunking_an_error() {
        let mut input = masked(0x82, MASK, b"data");
        input.extend(masked(0x89, MASK, b"x"));
        input.extend([0x82, 0x05, b'h', b'e', b'l', b'l', b'o']);
        let whole = feed_chunks(&input, &[]);
        assert_eq!(whole.2, Err(ERR_MASK));
        for a in 0..=input.len() {
            for b in a..=input.len() {
                assert_eq!(feed_chunks(&input, &[a, b]), whole, "cuts at {a}, {b}");
            }
        }
    }
}
