//! The one typed command enum: parsing a checked request never touches actors.
use super::error::QmpError;
use crate::json::Json;
use crate::backends::spec::ChardevBackend;
use serde::Deserialize;

/// `DataFormat` of ringbuf-write / ringbuf-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// Text (the default).
    #[default]
    Utf8,
    /// Base64.
    Base64,
}

/// Every command chardevd serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `qmp_capabilities`.
    QmpCapabilities {
        /// Capabilities to enable (`oob`).
        enable: Vec<String>,
    },
    /// `query-version`.
    QueryVersion,
    /// `query-commands`.
    QueryCommands,
    /// `query-qmp-schema`.
    QueryQmpSchema,
    /// `query-chardev`.
    QueryChardev,
    /// `query-chardev-backends`.
    QueryChardevBackends,
    /// `ringbuf-write`.
    RingbufWrite {
        /// Chardev id.
        device: String,
        /// Data (text or base64).
        data: String,
        /// Encoding of `data`.
        format: DataFormat,
    },
    /// `ringbuf-read`.
    RingbufRead {
        /// Chardev id.
        device: String,
        /// Most bytes to read.
        size: i64,
        /// Encoding of the result.
        format: DataFormat,
    },
    /// `chardev-add`.
    ChardevAdd {
        /// New id.
        id: String,
        /// Backend and options.
        backend: ChardevBackend,
    },
    /// `chardev-change`.
    ChardevChange {
        /// Existing id.
        id: String,
        /// New backend.
        backend: ChardevBackend,
    },
    /// `chardev-remove`.
    ChardevRemove {
        /// Id.
        id: String,
    },
    /// `chardev-send-break`.
    ChardevSendBreak {
        /// Id.
        id: String,
    },
    /// `device_add`: create a built-in frontend.
    DeviceAdd {
        /// Driver name (`echo`, `port`, `bridge`).
        driver: String,
        /// Device id.
        id: Option<String>,
        /// Every other member, as device properties.
        props: Vec<(String, Json)>,
    },
    /// `device_del`.
    DeviceDel {
        /// Device id.
        id: String,
    },
    /// `quit`: stop the daemon.
    Quit,
    /// `__org.chardevd_port-set-open`: a `port` frontend's guest opens or closes it.
    PortSetOpen {
        /// Device id of the port.
        id: String,
        /// Open or closed.
        open: bool,
    },
}

fn member<'a>(args: &'a Json, key: &str) -> Option<&'a Json> {
    args.get(key)
}

fn string(args: &Json, key: &str) -> String {
    member(args, key).and_then(Json::as_str).unwrap_or_default().to_owned()
}

fn format(args: &Json) -> DataFormat {
    match member(args, "format").and_then(Json::as_str) {
        Some("base64") => DataFormat::Base64,
        _ => DataFormat::Utf8,
    }
}

fn backend(args: &Json) -> Result<ChardevBackend, QmpError> {
    let v = member(args, "backend").map(Json::to_serde).unwrap_or_default();
    serde_json::from_value(v).map_err(|e| QmpError::generic(format!("Invalid backend: {e}")))
}

impl Command {
    /// Build the typed command from a request whose arguments passed
    /// [`crate::qmp::schema::Schema::check_args`].
    pub fn from_checked(name: &str, args: &Json) -> Result<Command, QmpError> {
        Ok(match name {
            "qmp_capabilities" => Command::QmpCapabilities {
                enable: match member(args, "enable") {
                    Some(Json::Array(v)) => v.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                    _ => Vec::new(),
                },
            },
            "query-version" => Command::QueryVersion,
            "query-commands" => Command::QueryCommands,
            "query-qmp-schema" => Command::QueryQmpSchema,
            "query-chardev" => Command::QueryChardev,
            "query-chardev-backends" => Command::QueryChardevBackends,
            "ringbuf-write" => Command::RingbufWrite {
                device: string(args, "device"),
                data: string(args, "data"),
                format: format(args),
            },
            "ringbuf-read" => Command::RingbufRead {
                device: string(args, "device"),
                size: match member(args, "size") {
                    Some(Json::Int(i)) => *i,
                    Some(Json::UInt(u)) => i64::try_from(*u).unwrap_or(i64::MAX),
                    _ => 0,
                },
                format: format(args),
            },
            "chardev-add" => Command::ChardevAdd {
                id: string(args, "id"),
                backend: backend(args)?,
            },
            "chardev-change" => Command::ChardevChange {
                id: string(args, "id"),
                backend: backend(args)?,
            },
            "chardev-remove" => Command::ChardevRemove { id: string(args, "id") },
            "chardev-send-break" => Command::ChardevSendBreak { id: string(args, "id") },
            "device_add" => Command::DeviceAdd {
                driver: string(args, "driver"),
                id: member(args, "id").and_then(Json::as_str).map(str::to_owned),
                props: args
                    .as_object()
                    .unwrap_or_default()
                    .iter()
                    .filter(|(k, _)| k != "driver" && k != "id" && k != "bus")
                    .cloned()
                    .collect(),
            },
            "device_del" => Command::DeviceDel { id: string(args, "id") },
            "quit" => Command::Quit,
            "__org.chardevd_port-set-open" => Command::PortSetOpen {
                id: string(args, "id"),
                open: matches!(member(args, "open"), Some(Json::Bool(true))),
            },
            other => return Err(QmpError::not_found(format!("The command {other} has not been found"))),
        })
    }
}
