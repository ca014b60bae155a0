//! `braille`: QEMU's Baum braille display (`chardev/baum.c`), the frontend's
//! serial line speaking the Baum protocol to a "Baum Vario" whose cells and
//! keys are a real braille display reached through BrlAPI
//! ([`super::brlapi`], brltty's server).
//!
//! The protocol: every packet starts with ESC (0x1b), an ESC inside it is
//! doubled. The frontend asks for display data (one byte of dots per cell,
//! dots 7 and 8 together marking the cursor), the device identity, version
//! and serial number, and sets modes (ignored); the device answers and sends
//! key packets (routing keys, top keys, braille entry keys) as BrlAPI
//! reports key presses.
//!
//! [`Baum`] is the pure model (frontend bytes in: display writes and replies
//! out; BrlAPI key codes in: key packets out); the backend is its adapter:
//! the connection is opened at creation (QEMU's error if it fails), the
//! display size read and the tty taken at the first write (QEMU's deferred
//! init, retried at every write until it works), display data written with
//! `brlapi__write`'s packet, an unfinished display packet answered after
//! 100 ms with the cell count, as QEMU does.
use super::brlapi::{self, code, packet, BrlError, Settings, Wire};
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::{Backend, Input, Output};
use crate::error::BackendError;
use crate::options::Opts;
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The `braille` kind.
pub(crate) const KIND: Kind = Kind {
    name: "braille",
    aliases: &[],
    from_qmp: from_data::<Braille>,
    from_cli,
    syntax: "-chardev braille,id=ID",
    facts: Facts::NONE,
};

fn from_cli(_opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    Ok(Box::new(Braille {}))
}

/// `braille` options (none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Braille {}

impl BackendConfig for Braille {
    fn kind(&self) -> &'static str {
        "braille"
    }

    fn open(self: Box<Self>, cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            let settings = Settings::from_env();
            let conn = brlapi::connect(&settings)
                .await
                .map_err(|e| BackendError::Brlapi(e.to_string()))?;
            tracing::info!(chardev = %cx.id, host = %settings.host, "braille: connected to BrlAPI");
            Ok(Opened::open(BrailleBackend {
                id: cx.id,
                wire: Some(Wire::new(conn)),
                baum: Baum::new(),
                init: Init::NotDone,
                size: None,
                timer: None,
                init_deadline: None,
            }))
        })
    }
}

const ESC: u8 = 0x1b;

/// Requests from the frontend.
pub mod req {
    /// Display data: one byte per cell.
    pub const DISPLAY_DATA: u8 = 0x01;
    /// Version number.
    pub const GET_VERSION_NUMBER: u8 = 0x05;
    /// Keys (ignored).
    pub const GET_KEYS: u8 = 0x08;
    /// Mode, setting (ignored).
    pub const SET_MODE: u8 = 0x12;
    /// Protocol (ignored).
    pub const SET_PROTOCOL: u8 = 0x15;
    /// Device identity.
    pub const GET_DEVICE_IDENTITY: u8 = 0x84;
    /// Serial number.
    pub const GET_SERIAL_NUMBER: u8 = 0x8a;
}

/// Responses to the frontend.
pub mod rsp {
    /// The number of cells.
    pub const CELL_COUNT: u8 = 0x01;
    /// Version number.
    pub const VERSION_NUMBER: u8 = 0x05;
    /// A routing key (its number from 1; 0: released).
    pub const ROUTING_KEY: u8 = 0x27;
    /// Top keys (bits TL1..TR3; 0: released).
    pub const TOP_KEYS: u8 = 0x24;
    /// Braille entry keys (two bytes of dots).
    pub const ENTRY_KEYS: u8 = 0x33;
    /// Device identity.
    pub const DEVICE_IDENTITY: u8 = 0x84;
    /// Serial number.
    pub const SERIAL_NUMBER: u8 = 0x8a;
}

/// The top keys.
pub mod top {
    /// Left 1.
    pub const TL1: u8 = 0x01;
    /// Left 2.
    pub const TL2: u8 = 0x02;
    /// Left 3.
    pub const TL3: u8 = 0x04;
    /// Right 1.
    pub const TR1: u8 = 0x08;
    /// Right 2.
    pub const TR2: u8 = 0x10;
    /// Right 3.
    pub const TR3: u8 = 0x20;
}

/// QEMU's input buffer.
pub const BUF_SIZE: usize = 256;
/// The widest display QEMU emulates, and its one line.
pub const X_MAX: u32 = 84;
/// Lines.
pub const Y_MAX: u32 = 1;

/// Dots 7 and 8 (the cursor).
const DOTS78: u8 = 0x40 | 0x80;

/// North American Braille Computer Code, as QEMU's table: each character
/// with its dots (digits 1 to 8).
const NABCC: &[(&str, u8)] = &[
    ("", b' '),
    ("1", b'a'),
    ("12", b'b'),
    ("14", b'c'),
    ("145", b'd'),
    ("15", b'e'),
    ("124", b'f'),
    ("1245", b'g'),
    ("125", b'h'),
    ("24", b'i'),
    ("245", b'j'),
    ("13", b'k'),
    ("123", b'l'),
    ("134", b'm'),
    ("1345", b'n'),
    ("135", b'o'),
    ("1234", b'p'),
    ("12345", b'q'),
    ("1235", b'r'),
    ("234", b's'),
    ("2345", b't'),
    ("136", b'u'),
    ("1236", b'v'),
    ("2456", b'w'),
    ("1346", b'x'),
    ("13456", b'y'),
    ("1356", b'z'),
    ("17", b'A'),
    ("127", b'B'),
    ("147", b'C'),
    ("1457", b'D'),
    ("157", b'E'),
    ("1247", b'F'),
    ("12457", b'G'),
    ("1257", b'H'),
    ("247", b'I'),
    ("2457", b'J'),
    ("137", b'K'),
    ("1237", b'L'),
    ("1347", b'M'),
    ("13457", b'N'),
    ("1357", b'O'),
    ("12347", b'P'),
    ("123457", b'Q'),
    ("12357", b'R'),
    ("2347", b'S'),
    ("23457", b'T'),
    ("1367", b'U'),
    ("12367", b'V'),
    ("24567", b'W'),
    ("13467", b'X'),
    ("134567", b'Y'),
    ("13567", b'Z'),
    ("356", b'0'),
    ("2", b'1'),
    ("23", b'2'),
    ("25", b'3'),
    ("256", b'4'),
    ("26", b'5'),
    ("235", b'6'),
    ("2356", b'7'),
    ("236", b'8'),
    ("35", b'9'),
    ("46", b'.'),
    ("346", b'+'),
    ("36", b'-'),
    ("16", b'*'),
    ("34", b'/'),
    ("12356", b'('),
    ("23456", b')'),
    ("12346", b'&'),
    ("3456", b'#'),
    ("6", b','),
    ("56", b';'),
    ("156", b':'),
    ("2346", b'!'),
    ("1456", b'?'),
    ("5", b'"'),
    ("3", b'\''),
    ("4", b'`'),
    ("457", b'^'),
    ("45", b'~'),
    ("2467", b'['),
    ("124567", b']'),
    ("246", b'{'),
    ("12456", b'}'),
    ("123456", b'='),
    ("126", b'<'),
    ("345", b'>'),
    ("1246", b'$'),
    ("146", b'%'),
    ("47", b'@'),
    ("1256", b'|'),
    ("12567", b'\\'),
    ("456", b'_'),
];

fn dots(digits: &str) -> u8 {
    digits.bytes().fold(0, |d, c| d | 1 << (c - b'1'))
}

/// The character for a cell's dots (0: none).
pub fn dots_to_ascii(d: u8) -> u8 {
    NABCC.iter().rev().find(|(ds, _)| dots(ds) == d).map_or(0, |(_, c)| *c)
}

/// The dots for a character (0: none).
pub fn ascii_to_dots(c: u8) -> u8 {
    NABCC
        .iter()
        .rev()
        .find(|(_, ch)| *ch == c)
        .map_or(0, |(ds, _)| dots(ds))
}

/// BrlAPI key codes.
pub mod key {
    /// The type bits.
    pub const TYPE_MASK: u64 = 0xe000_0000;
    /// A command.
    pub const TYPE_CMD: u64 = 0x2000_0000;
    /// A keysym.
    pub const TYPE_SYM: u64 = 0;
    /// A keysym's value.
    pub const CODE_MASK: u64 = 0x1fff_ffff;
    /// A command's block.
    pub const CMD_BLK_MASK: u64 = 0x1fff_0000;
    /// A command's argument.
    pub const CMD_ARG_MASK: u64 = 0xffff;
    /// The routing block.
    pub const CMD_ROUTE: u64 = 1 << 16;
    /// Line up.
    pub const CMD_LNUP: u64 = 1;
    /// Line down.
    pub const CMD_LNDN: u64 = 2;
    /// Top.
    pub const CMD_TOP: u64 = 9;
    /// Bottom.
    pub const CMD_BOT: u64 = 10;
    /// Top left.
    pub const CMD_TOP_LEFT: u64 = 11;
    /// Bottom left.
    pub const CMD_BOT_LEFT: u64 = 12;
    /// Window left.
    pub const CMD_FWINLT: u64 = 23;
    /// Window right.
    pub const CMD_FWINRT: u64 = 24;
    /// Home.
    pub const CMD_HOME: u64 = 29;
    /// Preferences menu.
    pub const CMD_PREFMENU: u64 = 52;
}

/// What the model asks of the display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Display {
    /// Each cell's dots as the frontend sent them (the OR mask).
    pub cells: Vec<u8>,
    /// Each cell as a character (NABCC, `?` for dots with none).
    pub text: Vec<u8>,
    /// The cursor: the cell with dots 7 and 8 (the last one), from 1; 0 for none.
    pub cursor: u32,
}

/// The Baum device: QEMU's parser over a 256-byte buffer, its replies and
/// key packets queued for the frontend in a 256-byte buffer.
#[derive(Debug, Clone)]
pub struct Baum {
    x: u32,
    y: u32,
    buf: Vec<u8>,
    out: VecDeque<u8>,
    awaiting_display: bool,
    dropped: u64,
}

impl Default for Baum {
    fn default() -> Self {
        Baum::new()
    }
}

/// What eating a packet did.
enum Eaten {
    /// Not whole yet.
    Incomplete,
    /// This many bytes consumed.
    Bytes(usize),
}

impl Baum {
    /// A device whose display size is not known yet (0 cells).
    pub fn new() -> Baum {
        Baum {
            x: 0,
            y: 0,
            buf: Vec::new(),
            out: VecDeque::new(),
            awaiting_display: false,
            dropped: 0,
        }
    }

    /// The display's size as BrlAPI reports it (QEMU keeps at most 84x1).
    pub fn set_size(&mut self, x: u32, y: u32) {
        self.x = x.min(X_MAX);
        self.y = y.min(Y_MAX);
    }

    /// Cells.
    pub fn cells(&self) -> usize {
        (self.x * self.y) as usize
    }

    /// Whether a display packet is unfinished: QEMU's 100 ms cell count
    /// timer runs (restarted by every write).
    pub fn awaiting_display(&self) -> bool {
        self.awaiting_display
    }

    /// The timer fired: tell the frontend the cell count.
    pub fn display_timeout(&mut self) {
        self.awaiting_display = false;
        self.send_cell_count();
    }

    fn send_cell_count(&mut self) {
        let n = self.cells() as u8;
        self.packet(&[rsp::CELL_COUNT, n]);
    }

    /// Queue a packet for the frontend: ESC, then the bytes with ESC doubled.
    /// What does not fit in the 256-byte buffer replaces what is queued
    /// (QEMU drops the older data).
    fn packet(&mut self, p: &[u8]) {
        let mut wire = vec![ESC];
        for b in p {
            wire.push(*b);
            if *b == ESC {
                wire.push(ESC);
            }
        }
        if self.out.len() + wire.len() > BUF_SIZE {
            tracing::debug!(dropped = self.out.len(), "braille: frontend slow, older output dropped");
            self.dropped += self.out.len() as u64;
            self.out.clear();
        }
        self.out.extend(wire);
    }

    /// Take up to `n` bytes for the frontend.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.out.len());
        self.out.drain(..n).collect()
    }

    /// Bytes dropped so far because the frontend did not read them in time.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes from the frontend; returns the display writes, in order.
    pub fn write(&mut self, mut data: &[u8]) -> Vec<Display> {
        let mut shown = Vec::new();
        while !data.is_empty() {
            let take = data.len().min(BUF_SIZE - self.buf.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            let mut at = 0;
            while at < self.buf.len() {
                match self.eat(at, &mut shown) {
                    Eaten::Bytes(n) => at += n,
                    Eaten::Incomplete => break,
                }
            }
            self.buf.drain(..at);
            // QEMU spins for ever on a full buffer it cannot eat (an
            // unknown request with no ESC after it); chardevd drops it.
            if self.buf.len() == BUF_SIZE {
                tracing::warn!("braille: 256 bytes without a whole packet dropped");
                self.buf.clear();
                self.awaiting_display = false;
            }
        }
        shown
    }

    /// One packet from `buf[at..]` (QEMU's `baum_eat_packet`).
    fn eat(&mut self, at: usize, shown: &mut Vec<Display>) -> Eaten {
        let buf = self.buf[at..].to_vec();
        let buf = &buf[..];
        // Bytes before an ESC are dropped (once an ESC is there).
        if buf[0] != ESC {
            return match buf.iter().position(|b| *b == ESC) {
                Some(i) => {
                    tracing::debug!(bytes = i, "braille: bytes outside a packet dropped");
                    Eaten::Bytes(i)
                }
                None => Eaten::Incomplete,
            };
        }
        let mut cur = 1;
        // One unescaped byte: Ok(byte), Err(None) for more needed,
        // Err(Some(n)) for a broken packet (an ESC that starts the next one:
        // n bytes eaten).
        let next = |cur: &mut usize| -> Result<u8, Option<usize>> {
            let c = *buf.get(*cur).ok_or(None)?;
            *cur += 1;
            if c == ESC {
                let d = *buf.get(*cur).ok_or(None)?;
                *cur += 1;
                if d != ESC {
                    return Err(Some(*cur - 2));
                }
            }
            Ok(c)
        };
        let req = match next(&mut cur) {
            Ok(r) => r,
            Err(None) => return Eaten::Incomplete,
            Err(Some(n)) => return Eaten::Bytes(n),
        };
        let mut fields = Vec::new();
        let want = match req {
            req::DISPLAY_DATA => self.cells(),
            req::SET_MODE => 2,
            req::SET_PROTOCOL => 1,
            req::GET_DEVICE_IDENTITY | req::GET_VERSION_NUMBER | req::GET_SERIAL_NUMBER | req::GET_KEYS => 0,
            _ => {
                // Unknown: skip to the next ESC (at least one byte on).
                if buf.len() <= cur {
                    return Eaten::Incomplete;
                }
                tracing::debug!(request = req, "braille: unknown request skipped");
                return match buf[cur..].iter().position(|b| *b == ESC) {
                    Some(i) => Eaten::Bytes(cur + i),
                    None => Eaten::Incomplete,
                };
            }
        };
        if req == req::DISPLAY_DATA {
            // QEMU's timer runs from here until the packet is whole.
            self.awaiting_display = true;
        }
        while fields.len() < want {
            match next(&mut cur) {
                Ok(c) => fields.push(c),
                Err(None) => return Eaten::Incomplete,
                Err(Some(n)) => {
                    tracing::debug!(request = req, "braille: broken packet tossed");
                    if self.awaiting_display {
                        self.awaiting_display = false;
                        self.send_cell_count();
                    }
                    return Eaten::Bytes(n);
                }
            }
        }
        match req {
            req::DISPLAY_DATA => {
                self.awaiting_display = false;
                let mut cursor = 0;
                let text = fields
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let mut c = *c;
                        if c & DOTS78 == DOTS78 {
                            cursor = i as u32 + 1;
                            c &= !DOTS78;
                        }
                        match dots_to_ascii(c) {
                            0 => b'?',
                            a => a,
                        }
                    })
                    .collect();
                shown.push(Display {
                    cells: fields,
                    text,
                    cursor,
                });
            }
            req::GET_DEVICE_IDENTITY => {
                let mut id = [0u8; 17];
                id[0] = rsp::DEVICE_IDENTITY;
                id[1..11].copy_from_slice(b"Baum Vario");
                id[11] = b'0' + (self.x / 10) as u8;
                id[12] = b'0' + (self.x % 10) as u8;
                self.packet(&id);
            }
            req::GET_VERSION_NUMBER => self.packet(&[rsp::VERSION_NUMBER, 1]),
            req::GET_SERIAL_NUMBER => {
                let mut s = [b'0'; 9];
                s[0] = rsp::SERIAL_NUMBER;
                self.packet(&s);
            }
            _ => {}
        }
        Eaten::Bytes(cur)
    }

    fn press(&mut self, ty: u8, value: &[u8]) {
        let mut p = vec![ty];
        p.extend_from_slice(value);
        self.packet(&p);
        let mut up = vec![ty];
        up.extend(std::iter::repeat_n(0, value.len()));
        self.packet(&up);
    }

    /// A key code from BrlAPI: the key packets QEMU sends for it (a press
    /// then a release; codes QEMU does not map send nothing).
    pub fn key(&mut self, code: u64) {
        match code & key::TYPE_MASK {
            key::TYPE_CMD => match code & key::CMD_BLK_MASK {
                key::CMD_ROUTE => {
                    let n = ((code & key::CMD_ARG_MASK) as u8).wrapping_add(1);
                    self.packet(&[rsp::ROUTING_KEY, n]);
                    self.packet(&[rsp::ROUTING_KEY, 0]);
                }
                0 => {
                    use top::*;
                    let keys = match code & key::CMD_ARG_MASK {
                        key::CMD_FWINLT => TL2,
                        key::CMD_FWINRT => TR2,
                        key::CMD_LNUP => TR1,
                        key::CMD_LNDN => TR3,
                        key::CMD_TOP => TL1 | TR1,
                        key::CMD_BOT => TL3 | TR3,
                        key::CMD_TOP_LEFT => TL2 | TR1,
                        key::CMD_BOT_LEFT => TL2 | TR3,
                        key::CMD_HOME => TL2 | TR1 | TR3,
                        key::CMD_PREFMENU => TL1 | TL3 | TR1,
                        _ => return,
                    };
                    self.press(rsp::TOP_KEYS, &[keys]);
                }
                _ => {}
            },
            key::TYPE_SYM => {
                let sym = code & key::CODE_MASK;
                if sym < 0x100 {
                    let d = ascii_to_dots(sym as u8);
                    if d != 0 {
                        self.packet(&[rsp::ENTRY_KEYS, 0, d]);
                        self.packet(&[rsp::ENTRY_KEYS, 0, 0]);
                    }
                }
            }
            _ => {}
        }
    }
}

/// QEMU's deferred init: the display size, then the tty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    NotDone,
    Sizing,
    Entering,
    Done,
    /// Failed: the write that started it is dropped, the next one retries.
    Failed,
}

/// How long the server may take to answer the init requests (libbrlapi
/// waits for ever).
const INIT_TIMEOUT: Duration = Duration::from_secs(5);
/// QEMU's wait for the rest of a display packet.
const DISPLAY_TIMEOUT: Duration = Duration::from_millis(100);

struct BrailleBackend {
    id: String,
    wire: Option<Wire>,
    baum: Baum,
    init: Init,
    /// The display size, once read (libbrlapi keeps it).
    size: Option<(u32, u32)>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    init_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl BrailleBackend {
    fn fail_init(&mut self, what: &str, e: &BrlError) {
        // QEMU: brlapi_perror("baum: ...").
        tracing::warn!(chardev = %self.id, "baum: {what}: {e}");
        self.init = Init::Failed;
        self.init_deadline = None;
    }

    fn lose(&mut self, e: &BrlError) {
        tracing::warn!(chardev = %self.id, "baum: brlapi_readKey: {e}");
        self.wire = None;
        self.init_deadline = None;
        if matches!(self.init, Init::Sizing | Init::Entering) {
            self.init = Init::Failed;
        }
    }

    fn enter_tty(&mut self) {
        let path = match brlapi::tty_path() {
            Ok(p) => p,
            Err(e) => return self.fail_init("brlapi__enterTtyMode", &e),
        };
        let Some(tty) = brlapi::controlling_tty() else {
            return self.fail_init("brlapi__enterTtyMode", &BrlError::Code(code::UNKNOWN_TTY));
        };
        let payload = brlapi::enter_tty_payload(&path, tty, "");
        if let Some(w) = self.wire.as_mut() {
            w.send(packet::ENTER_TTY_MODE, &payload);
        }
        self.init = Init::Entering;
    }

    fn start_init(&mut self) {
        self.init_deadline = Some(Box::pin(tokio::time::sleep(INIT_TIMEOUT)));
        if let Some((x, y)) = self.size {
            self.baum.set_size(x, y);
            self.enter_tty();
        } else if let Some(w) = self.wire.as_mut() {
            w.send(packet::GET_DISPLAY_SIZE, &[]);
            self.init = Init::Sizing;
        }
    }

    /// Flush, read and handle what the server sent.
    fn pump(&mut self, cx: &mut Context<'_>) {
        loop {
            let Some(w) = self.wire.as_mut() else {
                return;
            };
            let packets = match w.poll(cx) {
                Ok(p) => p,
                Err(e) => return self.lose(&e),
            };
            if packets.is_empty() {
                break;
            }
            for p in packets {
                self.on_packet(p);
            }
        }
        if matches!(self.init, Init::Sizing | Init::Entering) {
            if let Some(d) = self.init_deadline.as_mut() {
                if d.as_mut().poll(cx).is_ready() {
                    let what = if self.init == Init::Sizing {
                        "brlapi__getDisplaySize"
                    } else {
                        "brlapi__enterTtyMode"
                    };
                    let e = BrlError::Libc("read", rustix::io::Errno::TIMEDOUT.into());
                    self.fail_init(what, &e);
                }
            }
        }
    }

    fn on_packet(&mut self, p: brlapi::Packet) {
        match (p.ty, self.init) {
            (packet::GET_DISPLAY_SIZE, Init::Sizing) => match brlapi::display_size(&p.payload) {
                Some((x, y)) => {
                    self.size = Some((x, y));
                    self.baum.set_size(x, y);
                    self.enter_tty();
                }
                None => self.fail_init("brlapi__getDisplaySize", &BrlError::Code(code::INVALID_PACKET)),
            },
            (packet::ACK, Init::Entering) => {
                tracing::debug!(chardev = %self.id, "braille: tty mode entered");
                self.init = Init::Done;
                self.init_deadline = None;
            }
            (packet::ERROR, Init::Sizing) => self.fail_init(
                "brlapi__getDisplaySize",
                &BrlError::Code(brlapi::error_code(&p.payload)),
            ),
            (packet::ERROR, Init::Entering) => {
                self.fail_init("brlapi__enterTtyMode", &BrlError::Code(brlapi::error_code(&p.payload)))
            }
            (packet::KEY, Init::Done) => match brlapi::key_code(&p.payload) {
                Some(code) => self.baum.key(code),
                None => tracing::debug!(chardev = %self.id, "braille: short key packet ignored"),
            },
            (packet::EXCEPTION, _) => {
                // libbrlapi's default handler aborts the program; chardevd
                // logs it and drops the connection.
                let e = BrlError::Code(brlapi::error_code(&p.payload));
                tracing::warn!(chardev = %self.id, "BrlAPI exception: {e}");
                self.wire = None;
            }
            (ty, _) => tracing::debug!(chardev = %self.id, ty, "braille: packet ignored"),
        }
    }

    fn arm_timer(&mut self) {
        self.timer = self
            .baum
            .awaiting_display()
            .then(|| Box::pin(tokio::time::sleep(DISPLAY_TIMEOUT)));
    }
}

impl Backend for BrailleBackend {
    fn poll_input(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<Input> {
        self.pump(cx);
        if let Some(t) = self.timer.as_mut() {
            if t.as_mut().poll(cx).is_ready() {
                self.timer = None;
                tracing::debug!(chardev = %self.id, "braille: display data timed out; cell count sent");
                self.baum.display_timeout();
            }
        }
        if room == 0 {
            return Poll::Pending;
        }
        match self.baum.take(room) {
            b if b.is_empty() => Poll::Pending,
            b => Poll::Ready(Input::Data(Bytes::from(b))),
        }
    }

    fn poll_output(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        if self.wire.is_none() {
            // QEMU: the connection is gone; writes are swallowed.
            return Poll::Ready(Output::Written(data.len()));
        }
        if self.init == Init::NotDone {
            self.start_init();
        }
        self.pump(cx);
        match self.init {
            Init::Done => {}
            Init::Failed => {
                self.init = Init::NotDone;
                return Poll::Ready(Output::Written(data.len()));
            }
            _ if self.wire.is_none() => return Poll::Ready(Output::Written(data.len())),
            _ => return Poll::Pending,
        }
        for d in self.baum.write(data) {
            let n = d.cells.len();
            let w = brlapi::Write {
                region_begin: 1,
                text: d.text,
                and_mask: vec![0; n],
                or_mask: d.cells,
                cursor: d.cursor,
                charset: "ISO-8859-1".into(),
            };
            if let Some(wire) = self.wire.as_mut() {
                if !wire.send(packet::WRITE, &w.payload()) {
                    tracing::warn!(chardev = %self.id, "braille: BrlAPI server not reading; display write dropped");
                }
            }
        }
        self.arm_timer();
        self.pump(cx);
        Poll::Ready(Output::Written(data.len()))
    }

    fn filename(&self) -> String {
        "braille".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized() -> Baum {
        let mut b = Baum::new();
        b.set_size(40, 1);
        b
    }

    #[test]
    fn nabcc_both_ways() {
        assert_eq!(dots_to_ascii(0), b' ');
        assert_eq!(dots_to_ascii(0b1), b'a');
        assert_eq!(ascii_to_dots(b'a'), 1);
        assert_eq!(ascii_to_dots(b'A'), 1 | 0x40);
        assert_eq!(ascii_to_dots(b'_'), dots("456"));
        assert_eq!(ascii_to_dots(b' '), 0);
        for (_, c) in NABCC {
            assert_eq!(dots_to_ascii(ascii_to_dots(*c)), *c, "{}", *c as char);
        }
    }

    #[test]
    fn identity_version_serial() {
        let mut b = sized();
        b.write(&[ESC, 0x84, ESC, 0x05, ESC, 0x8a]);
        let out = b.take(usize::MAX);
        let mut want = vec![ESC, 0x84];
        want.extend_from_slice(b"Baum Vario40");
        want.extend_from_slice(&[0; 4]);
        want.extend_from_slice(&[ESC, 0x05, 1, ESC, 0x8a]);
        want.extend_from_slice(b"00000000");
        assert_eq!(out, want);
    }

    #[test]
    fn display_data_with_escapes_and_cursor() {
        let mut b = Baum::new();
        b.set_size(3, 1);
        // Cells: 'a', ESC (dots 1,2,4,5 = 0x1b: 'g'), 'b' with dots 7+8.
        let shown = b.write(&[ESC, 0x01, 0x01, ESC, ESC, 0x03 | 0xc0]);
        assert_eq!(
            shown,
            [Display {
                cells: vec![0x01, 0x1b, 0xc3],
                text: b"agb".to_vec(),
                cursor: 3
            }]
        );
        assert!(!b.awaiting_display());
    }

    #[test]
    fn an_unfinished_display_waits_and_a_broken_one_sends_the_cell_count() {
        let mut b = sized();
        assert!(b.write(&[ESC, 0x01, 1, 2]).is_empty());
        assert!(b.awaiting_display());
        b.display_timeout();
        assert_eq!(b.take(usize::MAX), [ESC, 0x01, 40]);
        // The new packet breaks the old one: cell count at once, then the
        // version answered.
        b.write(&[ESC, 0x05]);
        assert_eq!(b.take(usize::MAX), [ESC, 0x01, 40, ESC, 0x05, 1]);
    }

    #[test]
    fn keys_as_qemu_maps_them() {
        let mut b = sized();
        b.key(key::TYPE_CMD | key::CMD_ROUTE | 4);
        b.key(key::TYPE_CMD | key::CMD_HOME);
        b.key(key::TYPE_SYM | b'a' as u64);
        b.key(key::TYPE_SYM | b' ' as u64);
        b.key(key::TYPE_CMD | 7);
        assert_eq!(
            b.take(usize::MAX),
            [
                ESC,
                0x27,
                5,
                ESC,
                0x27,
                0,
                ESC,
                0x24,
                0x02 | 0x08 | 0x20,
                ESC,
                0x24,
                0,
                ESC,
                0x33,
                0,
                1,
                ESC,
                0x33,
                0,
                0
            ]
        );
    }

    #[test]
    fn garbage_and_unknown_requests_are_skipped() {
        let mut b = sized();
        b.write(b"junk");
        b.write(&[ESC, 0x77, 1, 2, 3, ESC, 0x05]);
        assert_eq!(b.take(usize::MAX), [ESC, 0x05, 1]);
        // An unknown request with no ESC after it fills the buffer: dropped.
        b.write(&[ESC, 0x77]);
        b.write(&[0x55; 300]);
        b.write(&[ESC, 0x05]);
        assert_eq!(b.take(usize::MAX), [ESC, 0x05, 1]);
    }
}
