//! `parallel` (alias `parport`): a Linux ppdev port, claimed at open with
//! `PPCLAIM`. As in QEMU on Linux, the data stream is not used (writes are
//! discarded); the frontend drives the port's registers through
//! [`CharIoctl`]s, which go to a [`ParallelPort`]: [`PpDev`] makes the ioctls,
//! [`RecordingPort`] records them for tests (no parallel port here).
use super::fdio::{FdBackend, FdKind, Io};
use super::logfile::LogFile;
use super::{open_path, BackendReply, CharIoctl, Started};
use crate::actors::ChardevError;
use actix::prelude::*;
use rustix::fs::OFlags;
use rustix::ioctl::{ioctl, Getter, NoArg, Opcode, Setter};
use std::io;
use std::sync::{Arc, Mutex};

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
    fd: Io,
}

impl PpDev {
    fn get<const OP: Opcode>(&self) -> io::Result<u8> {
        // SAFETY: the PPR* ioctls write one unsigned char through the Getter's pointer.
        Ok(unsafe { ioctl(self.fd.as_fd(), Getter::<OP, u8>::new())? })
    }

    fn set<const OP: Opcode>(&self, v: u8) -> io::Result<()> {
        // SAFETY: the PPW* ioctls read one unsigned char through the Setter's pointer.
        unsafe { ioctl(self.fd.as_fd(), Setter::<OP, u8>::new(v))? };
        Ok(())
    }
}

impl Drop for PpDev {
    fn drop(&mut self) {
        // SAFETY: PPRELEASE takes no argument.
        let _ = unsafe { ioctl(self.fd.as_fd(), NoArg::<PPRELEASE>::new()) };
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

/// A port that records register accesses (tests, simulations).
#[derive(Debug, Clone, Default)]
pub struct RecordingPort {
    /// Every call, in order (`write_data 65`, `read_status`, ...).
    pub calls: Arc<Mutex<Vec<String>>>,
    /// Register values: data, control, status.
    pub regs: Arc<Mutex<[u8; 3]>>,
}

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

/// The parallel side of an [`FdBackend`].
#[derive(Debug)]
pub struct Parallel<P: ParallelPort> {
    port: P,
}

impl<P: ParallelPort> Parallel<P> {
    /// Wrap a port.
    pub fn new(port: P) -> Self {
        Parallel { port }
    }
}

impl<P: ParallelPort> FdKind for Parallel<P> {
    fn ioctl(&mut self, req: CharIoctl) -> Result<BackendReply, ChardevError> {
        let err = |e: io::Error| ChardevError::Other(super::strerror(&e));
        let value = |r: io::Result<u8>| r.map(|v| BackendReply::Value(v as u32)).map_err(err);
        let done = |r: io::Result<()>| r.map(|_| BackendReply::Done).map_err(err);
        match req {
            CharIoctl::PpReadData => value(self.port.read_data()),
            CharIoctl::PpWriteData(v) => done(self.port.write_data(v)),
            CharIoctl::PpReadControl => value(self.port.read_control()),
            CharIoctl::PpWriteControl(v) => done(self.port.write_control(v)),
            CharIoctl::PpReadStatus => value(self.port.read_status()),
            _ => Err(ChardevError::NotSupported),
        }
    }
}

/// Open and claim the port, then start the backend.
pub async fn start(id: &str, device: &str, log: Option<LogFile>) -> Result<Started, String> {
    let fd = open_path(device, OFlags::RDWR).await?;
    let io = Io::new(fd).map_err(|e| format!("Could not open '{device}': {}", super::strerror(&e)))?;
    // SAFETY: PPCLAIM takes no argument.
    if let Err(e) = unsafe { ioctl(io.as_fd(), NoArg::<PPCLAIM>::new()) } {
        return Err(format!("not a parallel port: {}", super::strerror(&e.into())));
    }
    let addr = FdBackend::new(id, None, None, log, Parallel::new(PpDev { fd: io })).start();
    Ok(Started::open(addr.recipient(), "parallel"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_ioctls_reach_the_port() {
        let port = RecordingPort::default();
        *port.regs.lock().unwrap() = [0, 0, 0x78];
        let mut p = Parallel::new(port.clone());
        assert_eq!(p.ioctl(CharIoctl::PpWriteData(65)), Ok(BackendReply::Done));
        assert_eq!(p.ioctl(CharIoctl::PpReadData), Ok(BackendReply::Value(65)));
        assert_eq!(p.ioctl(CharIoctl::PpWriteControl(0x0c)), Ok(BackendReply::Done));
        assert_eq!(p.ioctl(CharIoctl::PpReadStatus), Ok(BackendReply::Value(0x78)));
        assert_eq!(p.ioctl(CharIoctl::SerialGetTiocm), Err(ChardevError::NotSupported));
        assert_eq!(
            *port.calls.lock().unwrap(),
            vec!["write_data 65", "read_data", "write_control 12", "read_status"]
        );
    }
}
