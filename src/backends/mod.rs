//! Backends: one file per QEMU backend kind, and the factory that starts them.
//!
//! Every backend is an actor that handles [`ToBackend`]. The frontend's output
//! reaches it as `ToBackend::Write`; whatever the backend receives from the
//! outside world goes to the attached frontend as [`FrontendEvent`]s over a
//! bounded channel (a full channel makes the backend stop reading).
pub mod fdio;
pub mod file;
pub mod logfile;
pub mod null;
pub mod parallel;
pub mod pipe;
pub mod pty;
pub mod ringbuf;
pub mod serial;
pub mod spec;
pub mod stdio;
pub mod udp;

pub mod ring;
pub use ring::Ring;

use crate::actors::ChardevError;
use crate::qmp::command::DataFormat;
use actix::prelude::*;
use bytes::Bytes;
use spec::ChardevBackend;
use tokio::sync::mpsc;

/// Backend kinds this build really supports, in the order
/// `query-chardev-backends` lists them (QEMU 10.0.2's order, filtered).
pub const SUPPORTED: &[&str] = &[
    "serial", "file", "udp", "memory", "parallel", "null", "pty", "pipe", "ringbuf", "stdio",
];

/// What a backend tells its frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendEvent {
    /// Bytes from the outside world (QEMU's `chr_read`).
    Data(Bytes),
    /// The backend is open (QEMU's `CHR_EVENT_OPENED`).
    Opened,
    /// The backend closed (QEMU's `CHR_EVENT_CLOSED`).
    Closed,
    /// A break condition (QEMU's `CHR_EVENT_BREAK`).
    Break,
}

/// The sending end a backend uses to reach its frontend.
pub type FrontendSink = mpsc::Sender<FrontendEvent>;

/// Deliver a control event (OPENED, CLOSED, BREAK) without losing it: at once
/// when the frontend's queue has room, else by a task that waits for room
/// (data is what the queue bounds; events are rare and never dropped).
pub fn deliver(sink: &FrontendSink, ev: FrontendEvent) {
    match sink.try_send(ev) {
        Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        Err(mpsc::error::TrySendError::Full(ev)) => {
            let sink = sink.clone();
            actix_rt::spawn(async move {
                let _ = sink.send(ev).await;
            });
        }
    }
}

/// A message to a backend actor. Sent by the supervisor (control) and by the
/// attached frontend (`Write`); answered with a [`BackendReply`].
#[derive(Debug, Message)]
#[rtype(result = "Result<BackendReply, ChardevError>")]
pub enum ToBackend {
    /// Frontend output; the reply says how many bytes were accepted.
    Write(Bytes),
    /// A frontend attaches; the backend sends it `Opened` at once if it is open.
    Attach(FrontendSink),
    /// The frontend detaches.
    Detach,
    /// Deliver a break to the frontend (`chardev-send-break`).
    Break,
    /// `ringbuf-write` data (ring backends only).
    RingWrite(Vec<u8>),
    /// `ringbuf-read` (ring backends only).
    RingRead {
        /// Most bytes to take.
        size: usize,
        /// Encoding of the result.
        format: DataFormat,
    },
    /// A frontend ioctl (QEMU's `qemu_chr_fe_ioctl`): serial line settings,
    /// break and modem lines, parallel port registers.
    Ioctl(CharIoctl),
    /// Whether the backend is open now (QEMU's `be_open`): `Value(1)` or `Value(0)`.
    IsOpen,
    /// `chardev-change` to a backend of the same kind: give up the exclusive
    /// named resources the new one may need (a pty's symlink path, the
    /// terminal of stdio) while staying alive.
    Release,
    /// The change failed: take the released resources back.
    Reacquire,
    /// Stop the backend (release its resources).
    Stop,
}

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// None.
    None,
    /// Even.
    Even,
    /// Odd.
    Odd,
}

/// Serial line parameters (QEMU's `QEMUSerialSetParams`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialParams {
    /// Bits per second.
    pub speed: u32,
    /// Parity.
    pub parity: Parity,
    /// Data bits (5..=8).
    pub data_bits: u8,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
}

/// Frontend ioctls (QEMU's `CHR_IOCTL_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharIoctl {
    /// Set speed, parity, data and stop bits.
    SerialSetParams(SerialParams),
    /// Send a break (true) — QEMU sends one `tcsendbreak`; false does nothing.
    SerialSetBreak(bool),
    /// Read the modem lines (`TIOCM_*` bits).
    SerialGetTiocm,
    /// Set the modem lines (`TIOCM_*` bits).
    SerialSetTiocm(u32),
    /// Parallel port: read the data register.
    PpReadData,
    /// Parallel port: write the data register.
    PpWriteData(u8),
    /// Parallel port: read the control register.
    PpReadControl,
    /// Parallel port: write the control register.
    PpWriteControl(u8),
    /// Parallel port: read the status register.
    PpReadStatus,
}

/// A backend's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendReply {
    /// Done.
    Done,
    /// Bytes accepted by a write.
    Written(usize),
    /// `ringbuf-read` result.
    Text(String),
    /// An ioctl's value (modem lines, a parallel port register).
    Value(u32),
}

/// A backend that started.
#[derive(Debug)]
pub struct Started {
    /// Where to send [`ToBackend`].
    pub backend: Recipient<ToBackend>,
    /// `filename` in query-chardev.
    pub filename: String,
    /// Open at creation (QEMU's `be_opened`).
    pub opened: bool,
    /// `ringbuf-read`/`ringbuf-write` apply.
    pub ringbuf: bool,
    /// The pty path, for chardev-add's return value.
    pub pty: Option<String>,
}

/// How often an open of a fifo for writing retries while it has no reader.
pub const FIFO_WAIT_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Open without ever blocking the thread: `O_NONBLOCK | O_CLOEXEC | O_NOCTTY`
/// are added, and a fifo opened for writing with no reader yet (`ENXIO`) is
/// retried every [`FIFO_WAIT_POLL`] until one comes. QEMU blocks there (and
/// freezes); here only the command that asked waits, and it stays cancellable.
pub async fn open_nonblocking(
    path: &str,
    flags: rustix::fs::OFlags,
    mode: u32,
) -> Result<rustix::fd::OwnedFd, rustix::io::Errno> {
    use rustix::fs::{FileType, Mode, OFlags};
    let flags = flags | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    loop {
        match rustix::fs::open(path, flags, Mode::from_raw_mode(mode)) {
            Err(rustix::io::Errno::NXIO)
                if rustix::fs::stat(path).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo) =>
            {
                tokio::time::sleep(FIFO_WAIT_POLL).await;
            }
            other => return other,
        }
    }
}

/// Open a path as QEMU's `qmp_chardev_open_file_source` does (mode 0666); the
/// error is QEMU's text. See [`open_nonblocking`].
pub async fn open_path(path: &str, flags: rustix::fs::OFlags) -> Result<rustix::fd::OwnedFd, String> {
    open_nonblocking(path, flags, 0o666)
        .await
        .map_err(|e| format!("Could not open '{path}': {}", strerror(&e.into())))
}

impl Started {
    /// A backend that is open at creation, with QEMU's `filename`.
    pub fn open(backend: Recipient<ToBackend>, filename: &str) -> Started {
        Started {
            backend,
            filename: filename.to_owned(),
            opened: true,
            ringbuf: false,
            pty: None,
        }
    }
}

/// QEMU's wording of an OS error (`strerror`), without Rust's "(os error N)".
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// Start the backend for `spec` on the current arbiter. The error is the text
/// after QEMU's `Failed to add chardev 'ID': ` prefix.
pub async fn start(id: &str, spec: &ChardevBackend) -> Result<Started, String> {
    let log = match &spec.common().logfile {
        Some(path) => Some(logfile::LogFile::open(path, spec.common().logappend.unwrap_or(false)).await?),
        None => None,
    };
    match spec {
        ChardevBackend::Null(_) => Ok(null::NullBackend::start_backend(id, log)),
        ChardevBackend::File(f) => file::start(id, f, log).await,
        ChardevBackend::Pipe(p) => pipe::start(id, &p.device, log).await,
        ChardevBackend::Serial(s) => serial::start(id, &s.device, log).await,
        ChardevBackend::Parallel(p) => parallel::start(id, &p.device, log).await,
        ChardevBackend::Pty(p) => pty::start(id, p.path.as_deref(), log),
        ChardevBackend::Stdio(s) => stdio::start(id, s, log),
        ChardevBackend::Udp(u) => udp::start(id, u, log).await,
        ChardevBackend::Ringbuf(r) | ChardevBackend::Memory(r) => {
            let size = ringbuf::ring_size(r.size)?;
            Ok(ringbuf::RingbufBackend::start_backend(id, spec.kind(), size, log))
        }
        other => Err(format!("'{}' is not a valid char driver name", other.kind())),
    }
}
