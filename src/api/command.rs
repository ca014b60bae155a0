//! The typed commands every caller runs through the executor (QMP sessions,
//! QMP monitors on chardevs, the embedding [`crate::Handle`]), and their
//! results.
use crate::backends::ChardevBackend;
use crate::chardev::{ChardevInfo, ChardevReturn};
use crate::json::Json;
use bytes::Bytes;
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

/// What `ringbuf-write` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// QMP's utf8 format: the text's bytes (U+0000 is the byte 0x00).
    Utf8(String),
    /// QMP's base64 format, decoded as QEMU does (glib-lenient).
    Base64(String),
    /// Raw bytes (the library API).
    Bytes(Bytes),
}

impl Payload {
    /// Its size in bytes, roughly (to decide whether to decode it off the thread).
    pub fn len(&self) -> usize {
        match self {
            Payload::Utf8(s) | Payload::Base64(s) => s.len(),
            Payload::Bytes(b) => b.len(),
        }
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every chardev command, typed.
#[derive(Debug)]
pub enum Command {
    /// `query-chardev`.
    QueryChardev,
    /// `query-chardev-backends`.
    QueryChardevBackends,
    /// `ringbuf-write`.
    RingbufWrite {
        /// Chardev id.
        device: String,
        /// What to write.
        data: Payload,
    },
    /// `ringbuf-read`.
    RingbufRead {
        /// Chardev id.
        device: String,
        /// Most bytes to read (must be positive).
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
        /// Driver name (`echo`, `port`).
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
    /// `__org.chardevd_port-set-open`: a `port` frontend's guest opens or closes it.
    PortSetOpen {
        /// Device id of the port.
        id: String,
        /// Open or closed.
        open: bool,
    },
    /// `quit`: stop the daemon.
    Quit,
    /// `__org.chardevd_monitor-add` / `-mon chardev=ID,mode=control`: a QMP
    /// monitor on a chardev.
    MonitorAdd {
        /// Its id (one is made up if none is given).
        id: Option<String>,
        /// The chardev it runs on.
        chardev: String,
        /// `pretty=on`.
        pretty: bool,
    },
    /// `__org.chardevd_monitor-del`.
    MonitorDel {
        /// The monitor's id.
        id: String,
    },
    /// `object-add`.
    ObjectAdd {
        /// `qom-type`.
        qom_type: String,
        /// `id`.
        id: String,
        /// The other members.
        props: serde_json::Value,
    },
    /// `object-del`.
    ObjectDel {
        /// `id`.
        id: String,
    },
    /// `yank` of chardevs (the ids of `{"type": "chardev", "id": ...}`
    /// instances; any other instance type is `None`).
    Yank {
        /// The instances.
        instances: Vec<Option<String>>,
    },
    /// `query-yank`.
    QueryYank,
    /// `input-send-event`.
    InputSendEvent {
        /// The console tried first (a chardev with an input handler).
        device: Option<String>,
        /// Its head.
        head: Option<i64>,
        /// The events.
        events: Vec<crate::chardev::input::InputEvent>,
    },
    /// `send-key`: press the keys in order, release them in reverse.
    SendKey {
        /// The qcodes.
        keys: Vec<String>,
    },
    /// `query-mice`.
    QueryMice,
    /// `__org.chardevd_screendump-text`: a vc's screen as text.
    ScreenText {
        /// The vc (default: the first).
        device: Option<String>,
    },
}

/// A command's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `{}`.
    Empty,
    /// `ChardevReturn`.
    Chardev(ChardevReturn),
    /// The query-chardev rows.
    Chardevs(Vec<ChardevInfo>),
    /// The backend kinds.
    Backends(Vec<&'static str>),
    /// ringbuf-read's text.
    Text(String),
    /// `quit` was accepted: the caller stops the system once its reply is out.
    Quit,
    /// The yank instances (chardev ids).
    Yanks(Vec<String>),
    /// `query-mice`.
    Mice(Vec<crate::chardev::input::MouseInfo>),
    /// A screen.
    Screen(crate::chardev::Screen),
}
