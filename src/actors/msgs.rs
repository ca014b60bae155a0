//! Messages to the supervisor. The executor (QMP sessions, monitors, the
//! embedding handle) sends them; [`super::Supervisor`] handles them and
//! answers with the result named in each `rtype`.
use crate::backends::ChardevBackend;
use crate::chardev::{CharIoctl, ChardevReturn, Port, PortConfig};
use crate::error::Error;
use crate::events::Event;
use crate::json::Json;
use crate::registry::{EventSink, Holder};
use actix::prelude::*;

/// `chardev-add`.
#[derive(Debug, Message)]
#[rtype(result = "Result<ChardevReturn, Error>")]
pub struct AddChardev {
    /// New id.
    pub id: String,
    /// Backend.
    pub backend: ChardevBackend,
}

/// `chardev-change`.
#[derive(Debug, Message)]
#[rtype(result = "Result<ChardevReturn, Error>")]
pub struct ChangeChardev {
    /// Existing id.
    pub id: String,
    /// New backend.
    pub backend: ChardevBackend,
}

/// `chardev-remove`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct RemoveChardev {
    /// Id.
    pub id: String,
}

/// `chardev-send-break`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct SendBreak {
    /// Id.
    pub id: String,
}

/// Attach a frontend (QEMU's `qemu_chr_fe_init` + `set_handlers`).
#[derive(Debug, Message)]
#[rtype(result = "Result<Port, Error>")]
pub struct Attach {
    /// The chardev.
    pub chardev: String,
    /// Who attaches.
    pub holder: Holder,
    /// Initial `frontend-open`.
    pub open: bool,
    /// The port's bounds.
    pub config: PortConfig,
}

/// Detach a frontend.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Detach {
    /// The chardev.
    pub chardev: String,
    /// Who.
    pub holder: Holder,
}

/// Mark a frontend open or closed (QEMU's `qemu_chr_fe_set_open`).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetOpen {
    /// The chardev.
    pub chardev: String,
    /// Who.
    pub holder: Holder,
    /// Open or closed.
    pub open: bool,
}

/// A frontend ioctl.
#[derive(Debug, Message)]
#[rtype(result = "Result<u32, Error>")]
pub struct Ioctl {
    /// The chardev.
    pub chardev: String,
    /// Who asks.
    pub holder: Holder,
    /// The request.
    pub req: CharIoctl,
}

/// A number for a new library frontend or monitor.
#[derive(Debug, Message)]
#[rtype(result = "u64")]
pub struct NewHolderId;

/// Subscribe to events (QMP sessions after negotiation, embedders).
#[derive(Debug, Message)]
#[rtype(result = "u64")]
pub struct Subscribe(pub Box<dyn EventSink>);

/// Unsubscribe.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub u64);

/// Emit an event, stamped now (throttled per QEMU's table where it applies).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Emit(pub Event);

/// `device_add`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
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
#[rtype(result = "Result<(), Error>")]
pub struct DeviceDel {
    /// Device id.
    pub id: String,
}

/// `__org.chardevd_port-set-open`.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct PortSetOpen {
    /// Port device id.
    pub id: String,
    /// Guest side open.
    pub open: bool,
}

/// Stop the actor system once every session has taken its last events
/// (bounded); `quit` sends it after its reply is out.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Quit;

/// `yank`: drop the connections of these chardevs (all must be yankable, or
/// nothing is done).
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct Yank {
    /// Chardev ids (`None` for an instance of another type).
    pub ids: Vec<Option<String>>,
}

/// `query-yank`: the yankable chardevs, in creation order.
#[derive(Debug, Message)]
#[rtype(result = "Vec<String>")]
pub struct QueryYank;

/// Reserve a QMP monitor: its id, and a port on its chardev.
#[derive(Debug, Message)]
#[rtype(result = "Result<MonitorAdded, Error>")]
pub struct AddMonitor {
    /// The id asked for.
    pub id: Option<String>,
    /// The chardev.
    pub chardev: String,
}

/// A reserved monitor.
#[derive(Debug)]
pub struct MonitorAdded {
    /// Its id.
    pub id: String,
    /// Its chardev.
    pub chardev: String,
    /// Its port on the chardev.
    pub port: crate::chardev::Port,
    /// The chardev's arbiter (the monitor runs there).
    pub arbiter: actix::ArbiterHandle,
    /// Whether the greeting offers `oob`.
    pub oob: bool,
}

/// The reserved monitor runs: how to stop it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct CommitMonitor {
    /// Its id.
    pub id: String,
    /// Stops it.
    pub stop: Recipient<crate::frontends::StopDevice>,
}

/// Stop a monitor and detach it from its chardev.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct RemoveMonitor {
    /// Its id.
    pub id: String,
}

/// `input-send-event`: route the events as QEMU's input core does.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), Error>")]
pub struct SendInput {
    /// The console (a chardev with an input handler) tried first.
    pub device: Option<String>,
    /// Its head (only 0 exists).
    pub head: Option<i64>,
    /// The events, in order.
    pub events: Vec<crate::chardev::input::InputEvent>,
}

/// `send-key`: the keys pressed in order, released in reverse.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SendKey {
    /// The qcodes.
    pub keys: Vec<String>,
}

/// `query-mice`.
#[derive(Debug, Message)]
#[rtype(result = "Vec<crate::chardev::input::MouseInfo>")]
pub struct QueryMice;

/// A vc's screen: the chardev named, or the first vc.
#[derive(Debug, Message)]
#[rtype(result = "Result<tokio::sync::oneshot::Receiver<Option<crate::chardev::Screen>>, Error>")]
pub struct GetScreen {
    /// The vc's id.
    pub device: Option<String>,
}
