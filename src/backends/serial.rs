//! `serial` (alias `tty`): a host tty in raw mode, 115200 8N1 at start as in
//! QEMU. Frontends change line parameters, send breaks and read or set the
//! modem lines through [`CharIoctl`]s, which go to a [`SerialLine`]: the real
//! one ([`TtyLine`]) makes the termios and `TIOCM*` calls, and
//! [`RecordingLine`] records them for tests ([`SerialWithLine`] puts one on a
//! chardev; a pty stands in for a real port for termios, but has no break or
//! modem lines).
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::fdio::{open_path, FdIo, FdLink};
use crate::chardev::transport::{Behaviour, Connection, Ioctls, LinkBackend, Once};
use crate::chardev::{CharIoctl, Parity, SerialParams};
use crate::error::{BackendError, Error, OsError};
use crate::options::Opts;
use futures_util::future::LocalBoxFuture;
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::OFlags;
use rustix::termios::{self, ControlModes, InputModes, LocalModes, OptionalActions, OutputModes};
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, Mutex};

/// The `serial` kind.
pub(crate) const KIND: Kind = Kind {
    name: "serial",
    aliases: &["tty"],
    from_qmp: from_data::<Serial>,
    from_cli,
    syntax: "-chardev serial,id=ID,path=DEVICE\t(alias tty)",
    facts: Facts {
        oob: true,
        ..Facts::NONE
    },
};

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    let device = opts.take("path").ok_or("chardev: serial/tty: no device path given")?;
    Ok(Box::new(Serial { device }))
}

/// `serial` options (`ChardevHostdev`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Serial {
    /// The host serial device (`/dev/ttyS0`, `/dev/ttyUSB0`, ...).
    pub device: String,
}

/// A `serial` chardev on `device` whose line calls go to `line` instead of
/// the OS (tests and simulations).
#[derive(Debug, Clone)]
pub struct SerialWithLine<L> {
    /// The device to read and write.
    pub device: String,
    /// Where the line settings, breaks and modem lines go.
    pub line: L,
}

impl BackendConfig for Serial {
    fn kind(&self) -> &'static str {
        "serial"
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            let (link, fd) = open_device(&self.device).await?;
            if let Err(e) = tty_serial_init(&fd, &DEFAULT_PARAMS) {
                tracing::debug!(device = %self.device, cause = %e, "not a tty; line settings skipped (as QEMU)");
            }
            Ok(opened(link, TtyLine { fd }))
        })
    }
}

impl<L: SerialLine + Clone> BackendConfig for SerialWithLine<L> {
    fn kind(&self) -> &'static str {
        "serial"
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            let (link, _fd) = open_device(&self.device).await?;
            Ok(opened(link, self.line))
        })
    }
}

/// Open the device both ways; also returns a descriptor for the line calls.
async fn open_device(device: &str) -> Result<(FdLink, OwnedFd), BackendError> {
    let failed = |e: io::Error| BackendError::Open {
        path: device.to_owned(),
        source: e.into(),
    };
    let fd: OwnedFd = open_path(device, OFlags::RDWR | OFlags::NONBLOCK).await?;
    let dup = |fd: &OwnedFd| rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| failed(e.into()));
    let line_fd = dup(&fd)?;
    let spare = dup(&fd)?;
    let input = FdIo::new(fd).map_err(failed)?;
    let output = match input.share() {
        Some(o) => o,
        None => FdIo::new(spare).map_err(failed)?,
    };
    Ok((FdLink::new(Some(input), Some(output)), line_fd))
}

fn opened<L: SerialLine>(link: FdLink, line: L) -> Opened {
    let transport = Once {
        filename: "serial",
        behaviour: Behaviour::ONCE,
        ioctls: Lines(line),
    };
    Opened::open(LinkBackend::connected(transport, Connection::new(link)))
}

/// QEMU's line settings at open.
pub const DEFAULT_PARAMS: SerialParams = SerialParams {
    speed: 115200,
    parity: Parity::None,
    data_bits: 8,
    stop_bits: 1,
};

/// Standard speeds; a requested speed, scaled by 10/11 as QEMU does, maps to
/// the smallest one at or above it (QEMU's `check_speed` ladder), 115200 when
/// above all of them.
const SPEEDS: &[u32] = &[
    50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800,
    500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
];

/// The standard speed QEMU picks for `speed`.
pub fn standard_speed(speed: u32) -> u32 {
    let scaled = (speed as u64 * 10 / 11) as u32;
    SPEEDS.iter().copied().find(|s| scaled <= *s).unwrap_or(115200)
}

/// The OS calls behind a serial chardev's ioctls.
pub trait SerialLine: std::fmt::Debug + Send + 'static {
    /// Apply speed, parity, data and stop bits (raw mode).
    fn set_params(&mut self, p: &SerialParams) -> io::Result<()>;
    /// Send a break (`tcsendbreak`).
    fn send_break(&mut self) -> io::Result<()>;
    /// Read the modem lines (`TIOCMGET`).
    fn get_tiocm(&mut self) -> io::Result<u32>;
    /// Set the modem lines (`TIOCMSET`).
    fn set_tiocm(&mut self, bits: u32) -> io::Result<()>;
}

/// Input flags QEMU clears for a raw line (serial) or a raw terminal (stdio):
/// no break or parity marking, no stripping, no CR/NL translation, no XON/XOFF.
pub const RAW_INPUT_CLEAR: InputModes = InputModes::IGNBRK
    .union(InputModes::BRKINT)
    .union(InputModes::PARMRK)
    .union(InputModes::ISTRIP)
    .union(InputModes::INLCR)
    .union(InputModes::IGNCR)
    .union(InputModes::ICRNL)
    .union(InputModes::IXON);

/// Apply QEMU's `tty_serial_init` to a tty: raw input and output, no echo, no
/// signals, the given speed and framing. Errors (e.g. not a tty) are returned
/// for the caller to ignore, as QEMU ignores them.
pub fn tty_serial_init<F: AsFd>(fd: F, p: &SerialParams) -> io::Result<()> {
    let mut t = termios::tcgetattr(&fd)?;
    t.set_speed(standard_speed(p.speed))?;
    t.input_modes -= RAW_INPUT_CLEAR;
    t.output_modes -= OutputModes::OPOST;
    t.local_modes -= LocalModes::ECHO | LocalModes::ECHONL | LocalModes::ICANON | LocalModes::IEXTEN | LocalModes::ISIG;
    t.control_modes -= ControlModes::CSIZE
        | ControlModes::PARENB
        | ControlModes::PARODD
        | ControlModes::CRTSCTS
        | ControlModes::CSTOPB;
    t.control_modes |= match p.data_bits {
        5 => ControlModes::CS5,
        6 => ControlModes::CS6,
        7 => ControlModes::CS7,
        _ => ControlModes::CS8,
    };
    match p.parity {
        Parity::None => {}
        Parity::Even => t.control_modes |= ControlModes::PARENB,
        Parity::Odd => t.control_modes |= ControlModes::PARENB | ControlModes::PARODD,
    }
    if p.stop_bits == 2 {
        t.control_modes |= ControlModes::CSTOPB;
    }
    termios::tcsetattr(&fd, OptionalActions::Now, &t)?;
    Ok(())
}

const TIOCMGET: rustix::ioctl::Opcode = 0x5415;
const TIOCMSET: rustix::ioctl::Opcode = 0x5418;

/// The real line: termios and `TIOCM*` ioctls on the device.
#[derive(Debug)]
pub struct TtyLine {
    fd: OwnedFd,
}

impl SerialLine for TtyLine {
    fn set_params(&mut self, p: &SerialParams) -> io::Result<()> {
        tty_serial_init(&self.fd, p)
    }

    fn send_break(&mut self) -> io::Result<()> {
        // tcsendbreak holds the line for a quarter to half a second: do it on
        // the blocking pool, not on the actor thread.
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)?;
        tokio::task::spawn_blocking(move || {
            if let Err(e) = termios::tcsendbreak(&fd) {
                tracing::debug!(cause = %e, "tcsendbreak failed");
            }
        });
        Ok(())
    }

    fn get_tiocm(&mut self) -> io::Result<u32> {
        // SAFETY: TIOCMGET writes one c_int through the pointer the Getter provides.
        let bits = unsafe { rustix::ioctl::ioctl(&self.fd, rustix::ioctl::Getter::<TIOCMGET, i32>::new())? };
        Ok(bits as u32)
    }

    fn set_tiocm(&mut self, bits: u32) -> io::Result<()> {
        // SAFETY: TIOCMSET reads one c_int through the pointer the Setter provides.
        unsafe { rustix::ioctl::ioctl(&self.fd, rustix::ioctl::Setter::<TIOCMSET, i32>::new(bits as i32))? };
        Ok(())
    }
}

/// A line that records every call (for tests and for embedders' tests).
#[derive(Debug, Clone, Default)]
pub struct RecordingLine {
    /// Every call, in order, e.g. `set_params 9600 E 7 2`, `break`, `set_tiocm 6`.
    pub calls: Arc<Mutex<Vec<String>>>,
    /// The modem lines `get_tiocm` reports (and `set_tiocm` stores).
    pub tiocm: Arc<Mutex<u32>>,
}

impl RecordingLine {
    fn record(&self, s: String) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(s);
        }
    }
}

impl SerialLine for RecordingLine {
    fn set_params(&mut self, p: &SerialParams) -> io::Result<()> {
        let parity = match p.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        self.record(format!(
            "set_params {} {parity} {} {}",
            standard_speed(p.speed),
            p.data_bits,
            p.stop_bits
        ));
        Ok(())
    }

    fn send_break(&mut self) -> io::Result<()> {
        self.record("break".into());
        Ok(())
    }

    fn get_tiocm(&mut self) -> io::Result<u32> {
        self.record("get_tiocm".into());
        Ok(self.tiocm.lock().map(|t| *t).unwrap_or(0))
    }

    fn set_tiocm(&mut self, bits: u32) -> io::Result<()> {
        self.record(format!("set_tiocm {bits}"));
        if let Ok(mut t) = self.tiocm.lock() {
            *t = bits;
        }
        Ok(())
    }
}

/// The serial side: the line settings behind the ioctls.
#[derive(Debug)]
struct Lines<L>(L);

fn ioctl_err(e: io::Error) -> Error {
    Error::Ioctl(OsError::from(e))
}

/// Map a frontend ioctl onto a line.
pub fn serial_ioctl(line: &mut dyn SerialLine, req: CharIoctl) -> Result<u32, Error> {
    match req {
        CharIoctl::SerialSetParams(p) => line.set_params(&p).map(|_| 0).map_err(ioctl_err),
        CharIoctl::SerialSetBreak(true) => line.send_break().map(|_| 0).map_err(ioctl_err),
        CharIoctl::SerialSetBreak(false) => Ok(0),
        CharIoctl::SerialGetTiocm => line.get_tiocm().map_err(ioctl_err),
        CharIoctl::SerialSetTiocm(bits) => line.set_tiocm(bits).map(|_| 0).map_err(ioctl_err),
        _ => Err(Error::NotSupported),
    }
}

impl<L: SerialLine> Ioctls for Lines<L> {
    fn ioctl(&mut self, req: CharIoctl) -> Result<u32, Error> {
        serial_ioctl(&mut self.0, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speeds_round_up_to_the_standard_ladder() {
        assert_eq!(standard_speed(9600), 9600);
        assert_eq!(standard_speed(10_560), 9600);
        assert_eq!(standard_speed(10_562), 19200);
        assert_eq!(standard_speed(1), 50);
        assert_eq!(standard_speed(115200), 115200);
        assert_eq!(standard_speed(5_000_000), 115200);
    }

    #[test]
    fn ioctls_reach_the_line() {
        let line = RecordingLine::default();
        let mut s = line.clone();
        let p = SerialParams {
            speed: 9000,
            parity: Parity::Even,
            data_bits: 7,
            stop_bits: 2,
        };
        assert_eq!(serial_ioctl(&mut s, CharIoctl::SerialSetParams(p)), Ok(0));
        assert_eq!(serial_ioctl(&mut s, CharIoctl::SerialSetBreak(true)), Ok(0));
        assert_eq!(serial_ioctl(&mut s, CharIoctl::SerialSetBreak(false)), Ok(0));
        assert_eq!(serial_ioctl(&mut s, CharIoctl::SerialSetTiocm(0x6)), Ok(0));
        assert_eq!(serial_ioctl(&mut s, CharIoctl::SerialGetTiocm), Ok(0x6));
        assert_eq!(serial_ioctl(&mut s, CharIoctl::PpReadData), Err(Error::NotSupported));
        assert_eq!(
            *line.calls.lock().unwrap(),
            vec!["set_params 9600 E 7 2", "break", "set_tiocm 6", "get_tiocm"]
        );
    }

    #[test]
    fn tty_serial_init_makes_a_pty_raw_8n1() {
        let (_master, _name, slave) = crate::backends::pty::open_pair().unwrap();
        tty_serial_init(&slave, &DEFAULT_PARAMS).unwrap();
        let t = termios::tcgetattr(&slave).unwrap();
        assert_eq!(t.output_speed(), 115200);
        assert!(!t
            .local_modes
            .intersects(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG));
        assert!(!t.input_modes.contains(InputModes::ICRNL));
        assert!(!t.output_modes.contains(OutputModes::OPOST));
        assert!(t.control_modes.contains(ControlModes::CS8));
        assert!(!t.control_modes.contains(ControlModes::PARENB));
        let p = SerialParams {
            speed: 9600,
            parity: Parity::Odd,
            data_bits: 7,
            stop_bits: 2,
        };
        tty_serial_init(&slave, &p).unwrap();
        let t = termios::tcgetattr(&slave).unwrap();
        assert_eq!(t.output_speed(), 9600);
        // Linux ptys force CS8 and no parity (pty_set_termios); the rest sticks.
        assert!(t.control_modes.contains(ControlModes::CSTOPB), "{:?}", t.control_modes);
    }
}
