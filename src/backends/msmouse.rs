//! `msmouse`: QEMU 10.0.2's Microsoft serial mouse (three buttons, as a
//! Logitech `M3`). Input events (`input-send-event` `rel` and `btn`) become
//! 3-byte packets (4 with the middle button) for the frontend; the mouse is
//! powered by the serial line's RTS or DTR (`CharIoctl::SerialSetTiocm`):
//! without power it ignores events, and at power-up it sends `M3` and a
//! serial PnP id. Its fifo holds 64 bytes; an event that does not fit is
//! dropped. It never reports OPENED (QEMU's `be_opened = false`).
//!
//! [`Mouse`] is the pure model; the backend is its adapter.
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::input::{self, Axis, Button, InputEvent, InputHandler};
use crate::chardev::{Backend, CharIoctl, Input, Output};
use crate::error::{BackendError, Error};
use crate::options::Opts;
use crate::registry::KindInfo;
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::task::{Context, Poll};

/// The `msmouse` kind.
pub(crate) const KIND: Kind = Kind {
    name: "msmouse",
    aliases: &[],
    from_qmp: from_data::<Msmouse>,
    from_cli,
    syntax: "-chardev msmouse,id=ID",
    facts: Facts::NONE,
};

fn from_cli(_opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    Ok(Box::new(Msmouse {}))
}

/// QEMU's input handler.
pub const HANDLER: InputHandler = InputHandler {
    name: "QEMU Microsoft Mouse",
    mask: input::mask::BTN | input::mask::REL,
};

/// `msmouse` options (none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msmouse {}

impl BackendConfig for Msmouse {
    fn kind(&self) -> &'static str {
        "msmouse"
    }

    fn info(&self) -> KindInfo {
        KindInfo {
            input: Some(HANDLER),
            ..KindInfo::plain("msmouse")
        }
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async { Ok(Opened::closed(MouseBackend(Mouse::default()))) })
    }
}

/// The serial fifo size.
pub const FIFO: usize = 64;
/// `TIOCM_DTR`.
pub const TIOCM_DTR: u32 = 0x002;
/// `TIOCM_RTS`.
pub const TIOCM_RTS: u32 = 0x004;

/// Serial PnP for 6-bit devices: characters minus 0x20.
const fn m(c: u8) -> u8 {
    c - 0x20
}

/// The PnP header: start, version 1.0, vendor QMU, product 0001, class MOUSE.
const PNP: [u8; 19] = [
    m(b'('),
    1,
    b'$',
    m(b'Q'),
    m(b'M'),
    m(b'U'),
    m(b'0'),
    m(b'0'),
    m(b'0'),
    m(b'1'),
    m(b'\\'),
    m(b'\\'),
    m(b'M'),
    m(b'O'),
    m(b'U'),
    m(b'S'),
    m(b'E'),
    m(b'\\'),
    m(b'\\'),
];

/// What the mouse sends at power-up: `M3`, the PnP header, the description
/// (the handler's name), the checksum in hex, `)`.
pub fn power_up_bytes() -> Vec<u8> {
    let mut out = b"M3".to_vec();
    out.extend_from_slice(&PNP);
    let name: Vec<u8> = HANDLER.name.bytes().map(m).collect();
    let sum = name.iter().chain(PNP.iter()).fold(m(b')') as u32, |s, b| s + *b as u32) & 0xff;
    out.extend_from_slice(&name);
    let hex = |n: u32| m(b"0123456789ABCDEF"[n as usize]);
    out.extend_from_slice(&[hex(sum >> 4), hex(sum & 0xf), m(b')')]);
    out
}

/// The mouse: modem lines, accumulated motion, buttons and the fifo.
#[derive(Debug, Default, Clone)]
pub struct Mouse {
    tiocm: u32,
    dx: i64,
    dy: i64,
    buttons: [bool; 3],
    middle_changed: bool,
    fifo: VecDeque<u8>,
}

impl Mouse {
    fn powered(&self) -> bool {
        self.tiocm & (TIOCM_RTS | TIOCM_DTR) != 0
    }

    /// Set the modem lines (power on or off).
    pub fn set_tiocm(&mut self, bits: u32) {
        let was = self.powered();
        self.tiocm = bits;
        if self.powered() {
            if !was {
                self.fifo.extend(power_up_bytes());
            }
        } else {
            // Power down: everything is forgotten.
            *self = Mouse {
                tiocm: bits,
                ..Mouse::default()
            };
        }
    }

    /// The modem lines last set.
    pub fn tiocm(&self) -> u32 {
        self.tiocm
    }

    /// One input event (QEMU's `msmouse_input_event`).
    pub fn event(&mut self, ev: &InputEvent) {
        if !self.powered() {
            return;
        }
        match *ev {
            InputEvent::Rel { axis: Axis::X, value } => self.dx = self.dx.wrapping_add(value),
            InputEvent::Rel { axis: Axis::Y, value } => self.dy = self.dy.wrapping_add(value),
            InputEvent::Btn { button, down } => {
                let i = match button {
                    Button::Left => 0,
                    Button::Middle => 1,
                    Button::Right => 2,
                    Button::Other => return,
                };
                self.buttons[i] = down;
                if i == 1 {
                    self.middle_changed = true;
                }
            }
            _ => {}
        }
    }

    /// The end of a batch of events: queue one packet (QEMU's `msmouse_input_sync`).
    pub fn sync(&mut self) {
        if !self.powered() {
            return;
        }
        // QEMU keeps the axes in an int.
        let (dx, dy) = (self.dx as i32, self.dy as i32);
        self.dx = 0;
        self.dy = 0;
        let hi2 = |n: i32| ((n & 0xc0) >> 6) as u8;
        let lo6 = |n: i32| (n & 0x3f) as u8;
        let mut p = vec![0x40 | (hi2(dy) << 2) | hi2(dx), lo6(dx), lo6(dy)];
        if self.buttons[0] {
            p[0] |= 0x20;
        }
        if self.buttons[2] {
            p[0] |= 0x10;
        }
        if self.buttons[1] || self.middle_changed {
            p.push(if self.buttons[1] { 0x20 } else { 0 });
            self.middle_changed = false;
        }
        if FIFO - self.fifo.len() >= p.len() {
            self.fifo.extend(p);
        }
    }

    /// Take up to `n` bytes for the frontend.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.fifo.len());
        self.fifo.drain(..n).collect()
    }
}

struct MouseBackend(Mouse);

impl Backend for MouseBackend {
    fn poll_input(&mut self, _cx: &mut Context<'_>, room: usize) -> Poll<Input> {
        match self.0.take(room) {
            b if b.is_empty() => Poll::Pending,
            b => Poll::Ready(Input::Data(Bytes::from(b))),
        }
    }

    fn poll_output(&mut self, _cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        // Writes to the mouse are ignored.
        Poll::Ready(Output::Written(data.len()))
    }

    fn filename(&self) -> String {
        "msmouse".into()
    }

    fn ioctl(&mut self, req: CharIoctl) -> Result<u32, Error> {
        match req {
            CharIoctl::SerialSetTiocm(bits) => {
                self.0.set_tiocm(bits);
                Ok(0)
            }
            CharIoctl::SerialGetTiocm => Ok(self.0.tiocm()),
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

    fn rel(axis: Axis, value: i64) -> InputEvent {
        InputEvent::Rel { axis, value }
    }

    #[test]
    fn power_up_sends_m3_and_the_pnp_id() {
        let b = power_up_bytes();
        assert_eq!(b.len(), 44);
        assert_eq!(&b[..2], b"M3");
        let mut m = Mouse::default();
        m.set_tiocm(TIOCM_DTR);
        assert_eq!(m.take(100), b);
        // Already powered: nothing more.
        m.set_tiocm(TIOCM_DTR | TIOCM_RTS);
        assert!(m.take(100).is_empty());
    }

    #[test]
    fn packets_as_qemu_builds_them() {
        let mut m = Mouse::default();
        m.event(&rel(Axis::X, 5));
        m.sync();
        assert!(m.take(10).is_empty(), "unpowered: ignored");
        m.set_tiocm(TIOCM_RTS);
        m.take(100);
        m.event(&rel(Axis::X, 5));
        m.event(&rel(Axis::Y, -1));
        m.event(&InputEvent::Btn {
            button: Button::Left,
            down: true,
        });
        m.sync();
        assert_eq!(m.take(10), [0x40 | 0x20 | (3 << 2), 5, 0x3f]);
        m.event(&InputEvent::Btn {
            button: Button::Middle,
            down: true,
        });
        m.sync();
        assert_eq!(m.take(10), [0x60, 0, 0, 0x20]);
        m.event(&InputEvent::Btn {
            button: Button::Middle,
            down: false,
        });
        m.sync();
        assert_eq!(m.take(10), [0x60, 0, 0, 0]);
        m.sync();
        assert_eq!(m.take(10), [0x60, 0, 0]);
    }

    #[test]
    fn a_full_fifo_drops_events_and_power_down_forgets() {
        let mut m = Mouse::default();
        m.set_tiocm(TIOCM_DTR);
        for _ in 0..20 {
            m.sync();
        }
        // 44 + 6 packets of 3 = 62; the rest did not fit.
        assert_eq!(m.take(1000).len(), 62);
        m.sync();
        m.set_tiocm(0);
        assert!(m.take(10).is_empty());
    }
}
