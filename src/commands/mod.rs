//! The commands: one type per command, one file per command.
//!
//! Each file holds everything of its command: the type with its typed
//! arguments and its typed [`Request::Output`]; how QMP's checked arguments
//! become the type and how its output becomes QMP's reply; what it does (in
//! the supervisor's context where it changes the system's tables); and the
//! typed method of [`crate::Handle`] named after it. QMP sessions, QMP
//! monitors on chardevs and the embedding handle all run the same type
//! through [`Request`], so they check and fail in the same order with the
//! same errors.
//!
//! Adding a command: its file here, and one line in the table in this
//! module (with its `mod` line). A downstream extension also carries its
//! schema entities in its file; a QEMU command takes its entities from
//! QEMU's own schema (`tools/gen-schema.py`).
//!
//! QMP's own protocol commands (`qmp_capabilities`, `query-commands`,
//! `query-qmp-schema`, `getfd`, `closefd`) are the session's, in
//! `crate::qmp::protocol`.
use crate::api::execute::{offload, Executor};
use crate::error::Error;
use crate::json::Json;
use crate::net::Fds;
use futures_util::future::BoxFuture;
use std::future::Future;

mod chardev_add;
mod chardev_change;
mod chardev_remove;
mod chardev_send_break;
mod client_disconnect;
mod client_set_writer;
mod device_add;
mod device_del;
mod input_send_event;
mod monitor_add;
mod monitor_del;
mod object_add;
mod object_del;
mod port_set_open;
mod query_chardev;
mod query_chardev_backends;
mod query_clients;
mod query_mice;
mod query_stats;
mod query_version;
mod query_yank;
mod quit;
mod ringbuf_read;
mod ringbuf_write;
mod screendump_text;
mod send_key;
mod yank;

pub use crate::frontends::Device;
pub use crate::objects::ObjectProps;
pub use chardev_add::ChardevAdd;
pub use chardev_change::ChardevChange;
pub use chardev_remove::ChardevRemove;
pub use chardev_send_break::ChardevSendBreak;
pub use client_disconnect::ClientDisconnect;
pub use client_set_writer::ClientSetWriter;
pub use device_add::DeviceAdd;
pub use device_del::DeviceDel;
pub use input_send_event::InputSendEvent;
pub use monitor_add::MonitorAdd;
pub use monitor_del::MonitorDel;
pub use object_add::ObjectAdd;
pub use object_del::ObjectDel;
pub use port_set_open::PortSetOpen;
pub use query_chardev::QueryChardev;
pub use query_chardev_backends::QueryChardevBackends;
pub use query_clients::QueryClients;
pub use query_mice::QueryMice;
pub use query_stats::QueryStats;
pub use query_version::{QueryVersion, VersionInfo};
pub use query_yank::QueryYank;
pub use quit::Quit;
pub use ringbuf_read::{DataFormat, RingData, RingbufRead};
pub use ringbuf_write::{Payload, RingbufWrite};
pub use screendump_text::ScreendumpText;
pub use send_key::SendKey;
pub use yank::{Yank, YankInstance};

pub use crate::chardev::input::{Axis, Button, InputEvent, MouseInfo};
pub use crate::chardev::{ChardevInfo, ChardevReturn, ClientInfo, Screen};
pub use crate::objects::{Endpoint, Format, List as AuthzRules, Policy, Rule as AuthzRule, X509Props};
pub use crate::stats::{ChardevStats, QmpStats, Stats};

/// A command: its QMP name, its result, and how it runs. Sealed: the
/// commands are chardevd's; run any of them with [`crate::Handle::run`] or
/// the typed method named after it.
pub trait Request: Send + Sized + 'static {
    /// The QMP name (`chardev-add`, `__org.chardevd_monitor-add`).
    const NAME: &'static str;
    /// The typed result.
    type Output: Send + 'static;

    /// Run it (through [`crate::Handle::run`]).
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn execute(self, exec: &Executor) -> impl Future<Output = Result<Self::Output, Error>> + Send;
}

/// How QMP reads and writes a command.
pub(crate) trait Command: Request {
    /// A downstream extension's schema entities (QEMU's introspection
    /// format, a JSON array); empty for QEMU's commands.
    const SCHEMA: &'static str = "";
    /// A successful run stops the system once its reply is out (`quit`).
    const STOPS: bool = false;

    /// Build it from arguments the schema has checked.
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error>;

    /// Its result as QMP's `return`.
    fn to_qmp(output: Self::Output) -> Json;

    /// Roughly how many bytes rendering `output` takes (large ones are
    /// rendered off the arbiter).
    fn output_size(_output: &Self::Output) -> usize {
        0
    }
}

/// The checked arguments of a QMP command, and the descriptors its session
/// holds (for `fd` socket addresses).
#[derive(Debug)]
pub(crate) struct Args<'a> {
    json: &'a Json,
    fds: &'a Fds,
}

impl<'a> Args<'a> {
    /// Arguments `json` of a session with descriptors `fds`.
    pub fn new(json: &'a Json, fds: &'a Fds) -> Args<'a> {
        Args { json, fds }
    }

    /// A member.
    pub fn get(&self, key: &str) -> Option<&'a Json> {
        self.json.get(key)
    }

    /// The whole object.
    pub fn json(&self) -> &'a Json {
        self.json
    }

    /// A required string (the schema checked it is there).
    pub fn string(&self, key: &str) -> String {
        self.opt_string(key).unwrap_or_default()
    }

    /// An optional string.
    pub fn opt_string(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Json::as_str).map(str::to_owned)
    }

    /// An optional boolean (absent: false).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some(Json::Bool(true)))
    }

    /// An optional integer (QEMU's `int`; an unsigned beyond `i64` saturates).
    pub fn opt_int(&self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(Json::Int(i)) => Some(*i),
            Some(Json::UInt(u)) => Some(i64::try_from(*u).unwrap_or(i64::MAX)),
            _ => None,
        }
    }

    /// The session's descriptors.
    pub fn fds(&self) -> Fds {
        self.fds.clone()
    }
}

/// A command's run as QMP needs it: its reply, rendered.
pub(crate) type Run = BoxFuture<'static, Result<Json, Error>>;

/// One line of the table.
pub(crate) struct Entry {
    /// The QMP name.
    pub name: &'static str,
    /// Its schema entities, if it is an extension.
    pub schema: &'static str,
    /// It stops the system (see [`Command::STOPS`]).
    pub stops: bool,
    /// Parse (errors are returned at once) and run.
    pub start: fn(&Args<'_>, &Executor) -> Result<Run, Error>,
    /// Parse only (the fuzz targets: everything a session checks before a
    /// command runs).
    pub parse: fn(&Args<'_>) -> Result<(), Error>,
}

fn parse<C: Command>(args: &Args<'_>) -> Result<(), Error> {
    C::from_qmp(args).map(drop)
}

/// Build command `name` from QMP arguments `args` (already checked against
/// the schema) as a session does, without running it.
#[doc(hidden)]
pub fn parse_only(name: &str, args: &Json) -> Result<(), Error> {
    let fds: Fds = std::sync::Arc::new(crate::net::NoFds);
    match find(name) {
        Some(e) => (e.parse)(&Args::new(args, &fds)),
        None => Ok(()),
    }
}

fn start<C: Command>(args: &Args<'_>, exec: &Executor) -> Result<Run, Error> {
    let cmd = C::from_qmp(args)?;
    let exec = exec.clone();
    Ok(Box::pin(async move {
        let out = cmd.execute(&exec).await?;
        let size = C::output_size(&out);
        Ok(offload(size, move || C::to_qmp(out)).await)
    }))
}

macro_rules! table {
    ($($c:ty),* $(,)?) => {
        /// Every command the executor runs, for QMP.
        pub(crate) static TABLE: &[Entry] = &[$(Entry {
            name: <$c as Request>::NAME,
            schema: <$c as Command>::SCHEMA,
            stops: <$c as Command>::STOPS,
            start: start::<$c>,
            parse: parse::<$c>,
        }),*];
    };
}

table![
    QueryChardev,
    QueryChardevBackends,
    RingbufWrite,
    RingbufRead,
    ChardevAdd,
    ChardevChange,
    ChardevRemove,
    ChardevSendBreak,
    DeviceAdd,
    DeviceDel,
    Quit,
    QueryVersion,
    ObjectAdd,
    ObjectDel,
    Yank,
    QueryYank,
    InputSendEvent,
    SendKey,
    QueryMice,
    ScreendumpText,
    PortSetOpen,
    MonitorAdd,
    MonitorDel,
    QueryStats,
    QueryClients,
    ClientDisconnect,
    ClientSetWriter,
];

/// The table line of a command.
pub(crate) fn find(name: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_of_the_table_is_in_the_served_schema_once() {
        let schema = crate::qmp::schema::schema();
        for e in TABLE {
            assert!(schema.has_command(e.name), "{} is not served", e.name);
            assert_eq!(TABLE.iter().filter(|x| x.name == e.name).count(), 1, "{}", e.name);
        }
    }
}
