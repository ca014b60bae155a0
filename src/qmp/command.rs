//! From a checked QMP request to a typed command: the protocol's own
//! commands, or one of the executor's. Parsing never touches actors.
use super::error::QmpError;
use crate::api::{Command, DataFormat, Payload};
use crate::backends::ChardevBackend;
use crate::chardev::input::{key_value, InputEvent};
use crate::json::Json;

/// A QMP command.
#[derive(Debug)]
pub enum QmpCommand {
    /// `qmp_capabilities`.
    Capabilities {
        /// Capabilities to enable (`oob`).
        enable: Vec<String>,
    },
    /// `query-version`.
    QueryVersion,
    /// `query-commands`.
    QueryCommands,
    /// `query-qmp-schema`.
    QueryQmpSchema,
    /// `getfd`: name the descriptor sent with the command.
    GetFd {
        /// The name.
        fdname: String,
    },
    /// `closefd`.
    CloseFd {
        /// The name.
        fdname: String,
    },
    /// A chardev command, for the executor.
    Run(Command),
}

fn string(args: &Json, key: &str) -> String {
    args.get(key).and_then(Json::as_str).unwrap_or_default().to_owned()
}

fn format(args: &Json) -> DataFormat {
    match args.get("format").and_then(Json::as_str) {
        Some("base64") => DataFormat::Base64,
        _ => DataFormat::Utf8,
    }
}

fn backend(args: &Json) -> Result<ChardevBackend, QmpError> {
    let v = args.get("backend").map(Json::to_serde).unwrap_or_default();
    ChardevBackend::from_qmp(&v).map_err(|e| QmpError::generic(e.to_string()))
}

impl QmpCommand {
    /// Build the typed command from a request whose arguments passed
    /// [`crate::qmp::schema::Schema::check_args`].
    pub fn from_checked(name: &str, args: &Json) -> Result<QmpCommand, QmpError> {
        let run = QmpCommand::Run;
        Ok(match name {
            "qmp_capabilities" => QmpCommand::Capabilities {
                enable: match args.get("enable") {
                    Some(Json::Array(v)) => v.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                },
            },
            "query-version" => QmpCommand::QueryVersion,
            "query-commands" => QmpCommand::QueryCommands,
            "query-qmp-schema" => QmpCommand::QueryQmpSchema,
            "query-chardev" => run(Command::QueryChardev),
            "query-chardev-backends" => run(Command::QueryChardevBackends),
            "ringbuf-write" => run(Command::RingbufWrite {
                device: string(args, "device"),
                data: match format(args) {
                    DataFormat::Utf8 => Payload::Utf8(string(args, "data")),
                    DataFormat::Base64 => Payload::Base64(string(args, "data")),
                },
            }),
            "ringbuf-read" => run(Command::RingbufRead {
                device: string(args, "device"),
                size: match args.get("size") {
                    Some(Json::Int(i)) => *i,
                    Some(Json::UInt(u)) => i64::try_from(*u).unwrap_or(i64::MAX),
                    _ => 0,
                },
                format: format(args),
            }),
            "chardev-add" => run(Command::ChardevAdd {
                id: string(args, "id"),
                backend: backend(args)?,
            }),
            "chardev-change" => run(Command::ChardevChange {
                id: string(args, "id"),
                backend: backend(args)?,
            }),
            "chardev-remove" => run(Command::ChardevRemove { id: string(args, "id") }),
            "chardev-send-break" => run(Command::ChardevSendBreak { id: string(args, "id") }),
            "device_add" => run(Command::DeviceAdd {
                driver: string(args, "driver"),
                id: args.get("id").and_then(Json::as_str).map(str::to_owned),
                props: args
                    .as_object()
                    .unwrap_or_default()
                    .iter()
                    .filter(|(k, _)| k != "driver" && k != "id" && k != "bus")
                    .cloned()
                    .collect(),
            }),
            "device_del" => run(Command::DeviceDel { id: string(args, "id") }),
            "quit" => run(Command::Quit),
            "getfd" => QmpCommand::GetFd {
                fdname: string(args, "fdname"),
            },
            "closefd" => QmpCommand::CloseFd {
                fdname: string(args, "fdname"),
            },
            "object-add" => run(Command::ObjectAdd {
                qom_type: string(args, "qom-type"),
                id: string(args, "id"),
                props: {
                    let mut v = args.to_serde();
                    if let Some(o) = v.as_object_mut() {
                        o.remove("qom-type");
                        o.remove("id");
                    }
                    v
                },
            }),
            "object-del" => run(Command::ObjectDel { id: string(args, "id") }),
            "yank" => run(Command::Yank {
                instances: match args.get("instances") {
                    Some(Json::Array(v)) => v
                        .iter()
                        .map(|i| match i.get("type").and_then(Json::as_str) {
                            Some("chardev") => Some(string(i, "id")),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                },
            }),
            "query-yank" => run(Command::QueryYank),
            "input-send-event" => run(Command::InputSendEvent {
                device: args.get("device").and_then(Json::as_str).map(str::to_owned),
                head: match args.get("head") {
                    Some(Json::Int(i)) => Some(*i),
                    Some(Json::UInt(u)) => Some(i64::try_from(*u).unwrap_or(i64::MAX)),
                    _ => None,
                },
                events: match args.get("events") {
                    Some(Json::Array(v)) => v.iter().map(InputEvent::from_qmp).collect(),
                    _ => Vec::new(),
                },
            }),
            "send-key" => run(Command::SendKey {
                keys: match args.get("keys") {
                    Some(Json::Array(v)) => v.iter().map(key_value).collect(),
                    _ => Vec::new(),
                },
            }),
            "query-mice" => run(Command::QueryMice),
            "__org.chardevd_screendump-text" => run(Command::ScreenText {
                device: args.get("device").and_then(Json::as_str).map(str::to_owned),
            }),
            "__org.chardevd_port-set-open" => run(Command::PortSetOpen {
                id: string(args, "id"),
                open: matches!(args.get("open"), Some(Json::Bool(true))),
            }),
            "__org.chardevd_monitor-add" => run(Command::MonitorAdd {
                id: args.get("id").and_then(Json::as_str).map(str::to_owned),
                chardev: string(args, "chardev"),
                pretty: matches!(args.get("pretty"), Some(Json::Bool(true))),
            }),
            "__org.chardevd_monitor-del" => run(Command::MonitorDel { id: string(args, "id") }),
            other => return Err(QmpError::not_found(format!("The command {other} has not been found"))),
        })
    }
}
