//! Messages to the supervisor. Sessions and the embedding [`crate::runtime::Handle`]
//! send them; [`crate::actors::Supervisor`] handles them and answers with the
//! result type named in each `rtype`.
use super::events::{EventSink, QmpEvent};
use super::ChardevError;
use crate::backends::spec::ChardevBackend;
use crate::backends::{FrontendSink, ToBackend};
use crate::qmp::command::DataFormat;
use crate::json::Json;
use actix::prelude::*;
use serde::Serialize;
use std::sync::{Arc, RwLock};

/// One row of `query-chardev`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChardevInfo {
    /// The id.
    pub label: String,
    /// Backend description (QEMU's `filename`).
    pub filename: String,
    /// A frontend is attached and open.
    #[serde(rename = "frontend-open")]
    pub frontend_open: bool,
}

/// `ChardevReturn`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ChardevReturn {
    /// The pty path, for pty backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pty: Option<String>,
}

/// `chardev-add`.
#[derive(Debug, Message)]
#[rtype(result = "Result<ChardevReturn, ChardevError>")]
pub struct AddChardev {
    /// New id.
    pub id: String,
    /// Backend.
    pub backend: ChardevBackend,
}

/// `chardev-change`.
#[derive(Debug, Message)]
#[rtype(result = "Result<ChardevReturn, ChardevError>")]
pub struct ChangeChardev {
    /// Existing id.
    pub id: String,
    /// New backend.
    pub backend: ChardevBackend,
}

/// `chardev-remove`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ChardevError>")]
pub struct RemoveChardev {
    /// Id.
    pub id: String,
}

/// `chardev-send-break`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ChardevError>")]
pub struct SendBreak {
    /// Id.
    pub id: String,
}

/// `query-chardev`.
#[derive(Debug, Message)]
#[rtype(result = "Vec<ChardevInfo>")]
pub struct QueryChardev;

/// `ringbuf-write` (data already decoded).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ChardevError>")]
pub struct RingbufWrite {
    /// Chardev id.
    pub device: String,
    /// Bytes to append.
    pub data: Vec<u8>,
}

/// `ringbuf-read`.
#[derive(Debug, Message)]
#[rtype(result = "Result<String, ChardevError>")]
pub struct RingbufRead {
    /// Chardev id.
    pub device: String,
    /// Most bytes (already checked > 0).
    pub size: usize,
    /// Result encoding.
    pub format: DataFormat,
}

/// Where a frontend's writes go; the supervisor re-points it on chardev-change.
pub type BackendRoute = Arc<RwLock<Recipient<ToBackend>>>;

/// Who owns a frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendOwner {
    /// An embedder's [`crate::actors::frontend::FrontendHandle`].
    Library,
    /// A built-in device created by `device_add`, by device id.
    Device(String),
}

/// Attach a frontend to a chardev (QEMU's `qemu_chr_fe_init` + `set_handlers`).
#[derive(Debug, Message)]
#[rtype(result = "Result<(u64, BackendRoute), ChardevError>")]
pub struct AttachFrontend {
    /// The chardev.
    pub chardev: String,
    /// Who attaches.
    pub owner: FrontendOwner,
    /// Where the backend's bytes and events go.
    pub sink: FrontendSink,
    /// Initial `frontend-open`.
    pub open: bool,
}

/// Detach a frontend.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct DetachFrontend {
    /// The chardev.
    pub chardev: String,
    /// The frontend id [`AttachFrontend`] returned.
    pub frontend: u64,
}

/// Mark a frontend open or closed (QEMU's `qemu_chr_fe_set_open`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetFrontendOpen {
    /// The chardev.
    pub chardev: String,
    /// The frontend id.
    pub frontend: u64,
    /// Open or closed.
    pub open: bool,
}

/// Subscribe to events (QMP sessions after negotiation, embedders).
#[derive(Debug, Message)]
#[rtype(result = "u64")]
pub struct Subscribe(pub EventSink);

/// Unsubscribe.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub u64);

/// Emit an event (throttled per QEMU's table where it applies).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Emit(pub QmpEvent);

/// `device_add`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ChardevError>")]
pub struct DeviceAdd {
    /// Driver.
    pub driver: String,
    /// Device id.
    pub id: Option<String>,
    /// Properties.
    pub props: Vec<(String, Json)>,
}

/// `device_del`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ChardevError>")]
pub struct DeviceDel {
    /// Device id.
    pub id: String,
}

/// `__org.chardevd_port-set-open`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), ChardevError>")]
pub struct PortSetOpen {
    /// Port device id.
    pub id: String,
    /// Guest side open.
    pub open: bool,
}

/// `quit`: stop the actor system shortly after replying.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Quit;
