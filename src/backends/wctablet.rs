//! `wctablet`: QEMU 10.0.2's Wacom CT-0045R (PenPartner) serial tablet.
//! At open it queues its 61-byte configuration blob; it answers commands
//! and sends events only at 9600 baud (`CharIoctl::SerialSetParams`; any
//! change of speed resets it). Commands (leading `@`, CR and LF skipped):
//! `~#` (model), `RE` (configuration), `ST` / `SP` (start and stop events),
//! `TS<c>` (a 7-byte reply); other lines are ignored. Events are
//! `input-send-event` `abs` and `btn`: one 7-byte packet per batch.
//!
//! [`Tablet`] is the pure model; the backend is its adapter.
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::input::{self, Axis, Button, InputEvent, InputHandler};
use crate::chardev::{Backend, CharIoctl, Input, Output};
use crate::error::{BackendError, Error};
use crate::options::Opts;
use crate::registry::KindInfo;
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::task::{Context, Poll};

/// The `wctablet` kind.
pub(crate) const KIND: Kind = Kind {
    name: "wctablet",
    aliases: &[],
    from_qmp: from_data::<Wctablet>,
    from_cli,
    syntax: "-chardev wctablet,id=ID",
    facts: Facts::NONE,
};

fn from_cli(_opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    Ok(Box::new(Wctablet {}))
}

/// QEMU's input handler.
pub const HANDLER: InputHandler = InputHandler {
    name: "QEMU Wacom Pen Tablet",
    mask: input::mask::BTN | input::mask::ABS,
};

/// `wctablet` options (none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wctablet {}

impl BackendConfig for Wctablet {
    fn kind(&self) -> &'static str {
        "wctablet"
    }

    fn info(&self) -> KindInfo {
        KindInfo {
            input: Some(HANDLER),
            ..KindInfo::plain("wctablet")
        }
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async { Ok(Opened::open(TabletBackend(Tablet::new()))) })
    }
}

/// The model string (`~#`).
pub const MODEL: &[u8] = b"~#CT-0045R,V1.3-5,";
/// The configuration string (`RE`).
pub const CONFIG: &[u8] = b"96,N,8,0";
/// The blob queued at open: `\96,N,8,1(` PnP id `WAC0045\\PEN\WAC0000\Tablet`,
/// then the model, `E7)`.
pub const FULL_CONFIG: &[u8] = b"\\96,N,8,1(\x01$WAC0045\\\\PEN\\WAC0000\\Tablet\r\nCT-0045R,V1.3-5\r\nE7)";
/// QEMU's output buffer (what does not fit is dropped).
pub const OUT_MAX: usize = 512;
/// QEMU's command buffer (100 bytes, one kept for the C string's end).
pub const QUERY_MAX: usize = 99;

/// The tablet.
#[derive(Debug, Clone)]
pub struct Tablet {
    query: Vec<u8>,
    out: Vec<u8>,
    line_speed: u32,
    send_events: bool,
    x: i64,
    y: i64,
    left: bool,
}

impl Default for Tablet {
    fn default() -> Self {
        Tablet::new()
    }
}

impl Tablet {
    /// A tablet just opened: its blob queued, speed unknown.
    pub fn new() -> Tablet {
        Tablet {
            query: Vec::new(),
            out: FULL_CONFIG.to_vec(),
            line_speed: 0,
            send_events: false,
            x: 0,
            y: 0,
            left: false,
        }
    }

    fn queue(&mut self, b: &[u8]) {
        if self.out.len() + b.len() <= OUT_MAX {
            self.out.extend_from_slice(b);
        }
    }

    /// The serial line speed changed (QEMU's `CHR_IOCTL_SERIAL_SET_PARAMS`).
    pub fn set_speed(&mut self, speed: u32) {
        if speed != self.line_speed {
            self.query.clear();
            self.out.clear();
            self.send_events = false;
            self.line_speed = speed;
        }
    }

    fn queue_event(&mut self) {
        if self.line_speed != 9600 {
            return;
        }
        // QEMU: int = int * double, truncated.
        let x = ((self.x as i32) as f64 * 0.1537) as i32;
        let y = ((self.y as i32) as f64 * 0.1152) as i32;
        let mut p = [
            0xe0 | (x >> 14) as u8,
            ((x >> 7) & 127) as u8,
            (x & 127) as u8,
            (y >> 14) as u8,
            ((y >> 7) & 127) as u8,
            (y & 127) as u8,
            0,
        ];
        if self.left {
            p[0] = 0xa0;
        }
        self.queue(&p);
    }

    /// Bytes from the frontend. QEMU handles at most one command per write;
    /// its serial device writes one byte at a time, so chardevd feeds the
    /// model byte by byte: every command in a chunk is handled, as in QEMU
    /// behind its UART.
    pub fn write(&mut self, data: &[u8]) {
        for b in data {
            self.write_one(*b);
        }
    }

    fn write_one(&mut self, b: u8) {
        if self.line_speed != 9600 {
            return;
        }
        if self.query.len() < QUERY_MAX {
            self.query.push(b);
        } else {
            // QEMU's buffer stays full for ever (the tablet is dead until
            // the speed changes); chardevd starts again with this byte.
            tracing::warn!("wctablet: 99 bytes without a command dropped");
            self.query.clear();
            self.query.push(b);
        }
        // QEMU works on a C string: what follows a NUL is unseen.
        let end = self.query.iter().position(|c| *c == 0).unwrap_or(self.query.len());
        let lead = self.query[..end]
            .iter()
            .take_while(|c| matches!(c, b'@' | b'\r' | b'\n'))
            .count();
        self.query.drain(..lead);
        let q = &self.query[..end - lead];
        if q.is_empty() {
            return;
        }
        if q.starts_with(b"~#") {
            self.query.drain(..2);
            self.queue(MODEL);
            return;
        }
        let Some(clen) = q
            .iter()
            .position(|c| *c == b'\r')
            .or_else(|| q.iter().position(|c| *c == b'\n'))
        else {
            return;
        };
        let line = q[..clen].to_vec();
        match (line.get(..2), clen) {
            (Some(b"RE"), 2) => {
                self.query.drain(..3);
                self.queue(CONFIG);
            }
            (Some(b"ST"), 2) => {
                self.query.drain(..3);
                self.send_events = true;
                self.queue_event();
            }
            (Some(b"SP"), 2) => {
                self.query.drain(..3);
                self.send_events = false;
            }
            (Some(b"TS"), 3) => {
                let c = line[2];
                let reply = [
                    0xa3,
                    if c & 0x80 == 0 { 0x7e } else { 0x7f },
                    ((((c >> 4) & 0x7) ^ 0x5) << 4) | ((c & 0xf) ^ 0x7),
                    0x03,
                    0x7f,
                    0x7f,
                    0x00,
                ];
                let n = self.query.len().min(4);
                self.query.drain(..n);
                self.queue(&reply);
            }
            _ => {
                tracing::debug!(line = %String::from_utf8_lossy(&line), "wctablet: command ignored");
                self.query.drain(..clen + 1);
            }
        }
    }

    /// One input event.
    pub fn event(&mut self, ev: &InputEvent) {
        match *ev {
            InputEvent::Abs { axis: Axis::X, value } => self.x = value,
            InputEvent::Abs { axis: Axis::Y, value } => self.y = value,
            InputEvent::Btn {
                button: Button::Left,
                down,
            } => self.left = down,
            _ => {}
        }
    }

    /// The end of a batch of events.
    pub fn sync(&mut self) {
        if self.send_events {
            self.queue_event();
        }
    }

    /// Take up to `n` bytes for the frontend.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.out.len());
        self.out.drain(..n).collect()
    }
}

struct TabletBackend(Tablet);

impl Backend for TabletBackend {
    fn poll_input(&mut self, _cx: &mut Context<'_>, room: usize) -> Poll<Input> {
        match self.0.take(room) {
            b if b.is_empty() => Poll::Pending,
            b => Poll::Ready(Input::Data(Bytes::from(b))),
        }
    }

    fn poll_output(&mut self, _cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        self.0.write(data);
        Poll::Ready(Output::Written(data.len()))
    }

    fn filename(&self) -> String {
        "wctablet".into()
    }

    fn ioctl(&mut self, req: CharIoctl) -> Result<u32, Error> {
        match req {
            CharIoctl::SerialSetParams(p) => {
                self.0.set_speed(p.speed);
                Ok(0)
            }
            _ => Err(Error::NotSupported),
        }
    }

    fn input(&mut self, events: &[InputEvent]) {
        for e in events {
            self.0.event(e);
        }
        self.0.sync();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_9600() -> Tablet {
        let mut t = Tablet::new();
        t.set_speed(9600);
        t
    }

    #[test]
    fn the_blob_is_qemus_61_bytes_and_a_speed_change_drops_it() {
        assert_eq!(FULL_CONFIG.len(), 61);
        assert_eq!(FULL_CONFIG[10], 0x01);
        let mut t = Tablet::new();
        assert_eq!(t.take(1000), FULL_CONFIG);
        let mut t = Tablet::new();
        t.set_speed(9600);
        assert!(t.take(1000).is_empty());
    }

    #[test]
    fn commands_answer_only_at_9600() {
        let mut t = Tablet::new();
        t.take(1000);
        t.write(b"~#");
        assert!(t.take(100).is_empty());
        let mut t = at_9600();
        t.write(b"@~#RE\rTS\x41\rXY\rSP\r");
        let mut want = MODEL.to_vec();
        want.extend_from_slice(CONFIG);
        want.extend_from_slice(&[0xa3, 0x7e, 0x16, 0x03, 0x7f, 0x7f, 0x00]);
        assert_eq!(t.take(1000), want);
    }

    #[test]
    fn events_after_st_scaled_as_qemu_scales_them() {
        let mut t = at_9600();
        t.event(&InputEvent::Abs {
            axis: Axis::X,
            value: 0x7fff,
        });
        t.sync();
        assert!(t.take(100).is_empty(), "not started");
        t.write(b"ST\r");
        // ST sends one event at once.
        let x = (0x7fff as f64 * 0.1537) as i32;
        assert_eq!(
            t.take(100),
            [
                0xe0 | (x >> 14) as u8,
                ((x >> 7) & 127) as u8,
                (x & 127) as u8,
                0,
                0,
                0,
                0
            ]
        );
        t.event(&InputEvent::Btn {
            button: Button::Left,
            down: true,
        });
        t.event(&InputEvent::Abs {
            axis: Axis::Y,
            value: 1000,
        });
        t.sync();
        let y = (1000.0 * 0.1152) as i32;
        assert_eq!(
            t.take(100),
            [0xa0, ((x >> 7) & 127) as u8, (x & 127) as u8, 0, 0, y as u8, 0]
        );
    }

    #[test]
    fn a_nul_hides_the_rest_and_a_full_buffer_recovers() {
        let mut t = at_9600();
        t.write(b"\0RE\r");
        assert!(t.take(100).is_empty());
        t.write(&[b'x'; 200]);
        t.write(b"\rRE\r");
        assert_eq!(t.take(100), CONFIG);
    }
}
