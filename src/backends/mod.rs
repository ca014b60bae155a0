//! Backends: one file per QEMU backend kind, and the factory that starts them.
//!
//! Every backend is an actor that handles [`ToBackend`]. The frontend's output
//! reaches it as `ToBackend::Write`; whatever the backend receives from the
//! outside world goes to the attached frontend as [`FrontendEvent`]s over a
//! bounded channel (a full channel makes the backend stop reading).
pub mod logfile;
pub mod null;
pub mod ringbuf;
pub mod spec;

pub use ring::Ring;
pub mod ring;

use crate::actors::ChardevError;
use crate::qmp::command::DataFormat;
use actix::prelude::*;
use bytes::Bytes;
use spec::ChardevBackend;
use tokio::sync::mpsc;

/// Backend kinds this build really supports, in the order
/// `query-chardev-backends` lists them.
pub const SUPPORTED: &[&str] = &["null", "ringbuf", "memory"];

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
    /// Stop the backend (release its resources).
    Stop,
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
        Some(path) => Some(logfile::LogFile::open(
            path,
            spec.common().logappend.unwrap_or(false),
        )?),
        None => None,
    };
    match spec {
        ChardevBackend::Null(_) => Ok(null::NullBackend::start_backend(id, log)),
        ChardevBackend::Ringbuf(r) | ChardevBackend::Memory(r) => {
            let size = ringbuf::ring_size(r.size)?;
            Ok(ringbuf::RingbufBackend::start_backend(
                id,
                spec.kind(),
                size,
                log,
            ))
        }
        other => Err(format!(
            "'{}' is not a valid char driver name",
            other.kind()
        )),
    }
}
