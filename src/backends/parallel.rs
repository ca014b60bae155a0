//! `parallel` (alias `parport`): a Linux ppdev port, claimed at open with
//! `PPCLAIM`. As in QEMU on Linux, the data stream is not used (writes are
//! discarded); the frontend drives the port's registers through
//! [`CharIoctl`]s, which go to a [`ParallelPort`]: [`PpDev`] makes the ioctls,
//! [`RecordingPort`] records them for tests (no parallel port here).
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::fdio::{open_path, FdLink};
use crate::chardev::transport::{Behaviour, Connection, Ioctls, LinkBackend, Once};
use crate::chardev::CharIoctl;
use crate::error::{BackendError, Error, OsError};
use crate::options::Opts;
use futures_util::future::LocalBoxFuture;
use rustix::fd::OwnedFd;
use rustix::fs::OFlags;
use rustix::ioctl::{ioctl, Getter, NoArg, Opcode, Setter};
use serde::{Deserialize, Serialize};
use std::io;
#[cfg(test)]
use std::sync::{Arc, Mutex};

/// The `parallel` kind.
pub(crate) const KIND: Kind = Kind {
    name: "parallel",
    aliases: &["parport"],
    from_qmp: from_data::<Parallel>,
    from_cli,
    syntax: "-chardev parallel,id=ID,path=DEVICE\t(alias parport; Linux ppdev)",
    facts: Facts::NONE,
};

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    let device = opts.take("path").ok_or("chardev: parallel: no device path given")?;
    Ok(Box::new(Parallel { device }))
}

/// `parallel` options (`ChardevHostdev`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parallel {
    /// The ppdev device.
    pub device: String,
}

impl BackendConfig for Parallel {
    fn kind(&self) -> &'static str {
        "parallel"
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            let fd = open_path(&self.device, OFlags::RDWR).await?;
            // SAFETY: PPCLAIM takes no argument.
            if let Err(e) = unsafe { ioctl(&fd, NoArg::<PPCLAIM>::new()) } {
                return Err(BackendError::NotParallel(e.into()));
            }
            let transport = Once {
                filename: "parallel",
                behaviour: Behaviour::ONCE,
                ioctls: Registers(PpDev { fd }),
            };
            Ok(Opened::open(LinkBackend::connected(
                transport,
                Connection::new(FdLink::new(None, None)),
            )))
        })
    }
}

const PPCLAIM: Opcode = 0x708b;
const PPRELEASE: Opcode = 0x708c;
const PPRSTATUS: Opcode = 0x8001_7081;
const PPRCONTROL: Opcode = 0x8001_7083;
const PPWCONTROL: Opcode = 0x4001_7084;
const PPRDATA: Opcode = 0x8001_7085;
const PPWDATA: Opcode = 0x4001_7086;

/// The register operations of a parallel port.
pub trait ParallelPort: std::fmt::Debug + Send + 'static {
    /// Read the data register.
    fn read_data(&mut self) -> io::Result<u8>;
    /// Write the data register.
    fn write_data(&mut self, v: u8) -> io::Result<()>;
    /// Read the control register.
    fn read_control(&mut self) -> io::Result<u8>;
    /// Write the control register.
    fn write_control(&mut self, v: u8) -> io::Result<()>;
    /// Read the status register.
    fn read_status(&mut self) -> io::Result<u8>;
}

/// A claimed ppdev port; released on drop.
#[derive(Debug)]
pub struct PpDev {
    fd: OwnedFd,
}

impl PpDev {
    fn get<const OP: Opcode>(&self) -> io::Result<u8> {
        // SAFETY: the PPR* ioctls write one unsigned char through the Getter's pointer.
        Ok(unsafe { ioctl(&self.fd, Getter::<OP, u8>::new())? })
    }

    fn set<const OP: Opcode>(&self, v: u8) -> io::Result<()> {
        // SAFETY: the PPW* ioctls read one unsigned char through the Setter's pointer.
        unsafe { ioctl(&self.fd, Setter::<OP, u8>::new(v))? };
        Ok(())
    }
}

impl Drop for PpDev {
    fn drop(&mut self) {
        // SAFETY: PPRELEASE takes no argument.
        let _ = unsafe { ioctl(&self.fd, NoArg::<PPRELEASE>::new()) };
    }
}

impl ParallelPort for PpDev {
    fn read_data(&mut self) -> io::Result<u8> {
        self.get::<PPRDATA>()
    }
    fn write_data(&mut self, v: u8) -> io::Result<()> {
        self.set::<PPWDATA>(v)
    }
    fn read_control(&mut self) -> io::Result<u8> {
        self.get::<PPRCONTROL>()
    }
    fn write_control(&mut self, v: u8) -> io::Result<()> {
        self.set::<PPWCONTROL>(v)
    }
    fn read_status(&mut self) -> io::Result<u8> {
        self.get::<PPRSTATUS>()
    }
}

/// A port that records register accesses (tests).
#[cfg(test)]
#[derive(Debug, Clone, Default)]
pub struct RecordingPort {
    /// Every call, in order (`write_data 65`, `read_status`, ...).
    pub calls: Arc<Mutex<Vec<String>>>,
    /// Register values: data, control, status.
    pub regs: Arc<Mutex<[u8; 3]>>,
}

#[cfg(test)]
impl RecordingPort {
    fn rec(&self, s: String) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(s);
        }
    }
    fn reg(&self, i: usize) -> u8 {
        self.regs.lock().map(|r| r[i]).unwrap_or(0)
    }
    fn set_reg(&self, i: usize, v: u8) {
        if let Ok(mut r) = self.regs.lock() {
            r[i] = v;
        }
    }
}

#[cfg(test)]
impl ParallelPort for RecordingPort {
    fn read_data(&mut self) -> io::Result<u8> {
        self.rec("read_data".into());
        Ok(self.reg(0))
    }
    fn write_data(&mut self, v: u8) -> io::Result<()> {
        self.rec(format!("write_data {v}"));
        self.set_reg(0, v);
        Ok(())
    }
    fn read_control(&mut self) -> io::Result<u8> {
        self.rec("read_control".into());
        Ok(self.reg(1))
    }
    fn write_control(&mut self, v: u8) -> io::Result<()> {
        self.rec(format!("write_control {v}"));
        self.set_reg(1, v);
        Ok(())
    }
    fn read_status(&mut self) -> io::Result<u8> {
        self.rec("read_status".into());
        Ok(self.reg(2))
    }
}

/// The parallel side: the port behind the register ioctls.
#[derive(Debug)]
struct Registers<P>(P);

/// Map a frontend ioctl onto a port.
pub fn parallel_ioctl(port: &mut dyn ParallelPort, req: CharIoctl) -> Result<u32, Error> {
    let err = |e: io::Error| Error::Ioctl(OsError::from(e));
    let value = |r: io::Result<u8>| r.map(u32::from).map_err(err);
    let done = |r: io::Result<()>| r.map(|_| 0).map_err(err);
    match req {
        CharIoctl::PpReadData => value(port.read_data()),
        CharIoctl::PpWriteData(v) => done(port.write_data(v)),
        CharIoctl::PpReadControl => value(port.read_control()),
        CharIoctl::PpWriteControl(v) => done(port.write_control(v)),
        CharIoctl::PpReadStatus => value(port.read_status()),
        _ => Err(Error::NotSupported),
    }
}

impl<P: ParallelPort> Ioctls for Registers<P> {
    fn ioctl(&mut self, req: CharIoctl) -> Result<u32, Error> {
        parallel_ioctl(&mut self.0, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_ioctls_reach_the_port() {
        let port = RecordingPort::default();
        *port.regs.lock().unwrap() = [0, 0, 0x78];
        let mut p = port.clone();
        assert_eq!(parallel_ioctl(&mut p, CharIoctl::PpWriteData(65)), Ok(0));
        assert_eq!(parallel_ioctl(&mut p, CharIoctl::PpReadData), Ok(65));
        assert_eq!(parallel_ioctl(&mut p, CharIoctl::PpWriteControl(0x0c)), Ok(0));
        assert_eq!(parallel_ioctl(&mut p, CharIoctl::PpReadStatus), Ok(0x78));
        assert_eq!(
            parallel_ioctl(&mut p, CharIoctl::SerialGetTiocm),
            Err(Error::NotSupported)
        );
        assert_eq!(
            *port.calls.lock().unwrap(),
            vec!["write_data 65", "read_data", "write_control 12", "read_status"]
        );
    }
}
