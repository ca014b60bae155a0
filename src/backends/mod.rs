//! Backends: the options of every QEMU backend kind this build has
//! ([`ChardevBackend`] holds one, with the options every kind takes), and
//! the socket addresses they use.
//!
//! ```
//! use chardevd::backends::{ChardevBackend, Ringbuf, Socket};
//! let console = ChardevBackend::new(Socket::unix_server("/run/vm/console.sock")).with_log("/var/log/vm/console.log", true);
//! let log = ChardevBackend::new(Ringbuf { size: Some(1 << 20) });
//! assert_eq!((console.kind(), log.kind()), ("socket", "ringbuf"));
//! ```
//!
//! Inside the crate: one file per QEMU backend kind, and the one table
//! that lists them (`KINDS`).
//!
//! A kind's file holds all of that kind: its QEMU name, its options (the
//! `data` of QMP's `ChardevBackend` union, and its `-chardev` keys), the host
//! resources it takes, how it opens, and its run-time `Backend` (often a
//! `LinkBackend` over a transport of its own). Adding a kind touches its
//! file and one line of `KINDS`.
use crate::chardev::{Backend, Port};
use crate::error::BackendError;
use crate::options::Opts;
use crate::registry::KindInfo;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::fmt;

#[cfg(feature = "braille")]
pub(crate) mod braille;
#[cfg(feature = "braille")]
pub(crate) mod brlapi;
pub(crate) mod file;
pub(crate) mod hub;
pub(crate) mod msmouse;
pub(crate) mod mux;
pub(crate) mod null;
pub(crate) mod parallel;
pub(crate) mod pipe;
pub(crate) mod pty;
pub(crate) mod ring;
pub(crate) mod ringbuf;
pub(crate) mod serial;
pub(crate) mod socket;
pub(crate) mod stdio;
pub(crate) mod testdev;
pub(crate) mod udp;
pub(crate) mod vc;
pub(crate) mod wctablet;

#[cfg(feature = "braille")]
pub use braille::Braille;
pub use file::File;
pub use hub::Hub;
pub use msmouse::Msmouse;
pub use mux::Mux;
pub use null::Null;
pub use parallel::Parallel;
pub use pipe::Pipe;
pub use pty::Pty;
pub use ringbuf::{Memory, Ringbuf};
pub use serial::Serial;
pub use socket::console::{ConsoleInput, ConsoleOverflow};
pub use socket::{Socket, SocketConsole};
pub use stdio::Stdio;
pub use testdev::Testdev;
pub use udp::Udp;
pub use vc::Vc;
pub use wctablet::Wctablet;

pub use crate::net::{
    FdSocketAddress, InetSocketAddress, SocketAddressLegacy, UnixAccess, UnixSocketAddress, VsockSocketAddress,
};

/// One backend kind.
pub(crate) struct Kind {
    /// QEMU's name (`ChardevBackendKind`).
    pub name: &'static str,
    /// Other names `-chardev` takes (`tty`, `parport`).
    pub aliases: &'static [&'static str],
    /// Build the options from a QMP `data` object the schema has checked.
    pub from_qmp: fn(&serde_json::Value) -> Result<Box<dyn BackendConfig>, BackendError>,
    /// Build the options from `-chardev` keys (the generic ones are taken).
    pub from_cli: fn(&mut Opts) -> Result<Box<dyn BackendConfig>, String>,
    /// The `-chardev` syntax, for `--help`.
    pub syntax: &'static str,
    /// What the rest of the system needs to know of the kind.
    pub facts: Facts,
}

/// Facts about a kind that the rest of the system acts on (so nothing
/// outside the kind's file tests its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    /// A QMP monitor on it offers `oob` in its greeting (QEMU: the kind can
    /// run in the monitor I/O thread, `QEMU_CHAR_FEATURE_GCONTEXT`).
    pub oob: bool,
    /// Its frontends share it, one focused at a time (a mux): a frontend
    /// beyond its limit is refused with QEMU's multiplexer text.
    pub multiplexed: bool,
    /// It has a text screen (`__org.chardevd_screendump-text`).
    pub screen: bool,
}

impl Facts {
    /// None of them.
    pub const NONE: Facts = Facts {
        oob: false,
        multiplexed: false,
        screen: false,
    };
}

/// The facts of a kind by its QEMU name (none for a kind this build lacks).
pub(crate) fn facts(kind_name: &str) -> Facts {
    KINDS
        .iter()
        .find(|k| k.name == kind_name)
        .map_or(Facts::NONE, |k| k.facts)
}

/// Every kind this build has, in the order `query-chardev-backends` lists
/// them (QEMU 10.0.2's order, filtered).
pub(crate) static KINDS: &[Kind] = &[
    testdev::KIND,
    serial::KIND,
    wctablet::KIND,
    file::KIND,
    udp::KIND,
    ringbuf::MEMORY,
    parallel::KIND,
    vc::KIND,
    #[cfg(feature = "braille")]
    braille::KIND,
    socket::KIND,
    msmouse::KIND,
    null::KIND,
    hub::KIND,
    pty::KIND,
    pipe::KIND,
    mux::KIND,
    ringbuf::RINGBUF,
    stdio::KIND,
];

/// Every name of QEMU 10.0.2's `ChardevBackendKind` on Linux (Windows'
/// `console` is not one); the ones not in [`KINDS`] are refused as a QEMU
/// built without them refuses them.
pub(crate) const QEMU_KINDS: &[&str] = &[
    "file",
    "serial",
    "parallel",
    "pipe",
    "socket",
    "udp",
    "pty",
    "null",
    "mux",
    "hub",
    "msmouse",
    "wctablet",
    "braille",
    "testdev",
    "stdio",
    "spicevmc",
    "spiceport",
    "qemu-vdagent",
    "dbus",
    "vc",
    "ringbuf",
    "memory",
];

/// The kind of a QEMU name or `-chardev` alias.
pub(crate) fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name || k.aliases.contains(&name))
}

/// `ChardevCommon`: options every backend takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChardevCommon {
    /// Log every byte the frontend writes to this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logfile: Option<String>,
    /// Append to the log file instead of truncating it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logappend: Option<bool>,
    /// Start each log line with its UTC time (QEMU 11.0's option: ISO 8601
    /// with microseconds, then a space).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logtimestamp: Option<bool>,
    /// Rotate the log before it would pass this many bytes (chardevd's
    /// extension; at a line boundary when one is near).
    #[serde(default, rename = "__org.chardevd_logsize", skip_serializing_if = "Option::is_none")]
    pub logsize: Option<u64>,
    /// Rotated logs kept as `PATH.1` (newest) to `PATH.N` (default 5; 0:
    /// the log starts afresh).
    #[serde(
        default,
        rename = "__org.chardevd_logbackups",
        skip_serializing_if = "Option::is_none"
    )]
    pub logbackups: Option<u32>,
}

impl ChardevCommon {
    /// The log options, checked; `None` without a `logfile` (QEMU ignores
    /// `logtimestamp` then, and so do the others).
    pub(crate) fn log_options(&self) -> Result<Option<crate::chardev::logfile::LogOptions>, BackendError> {
        use crate::chardev::logfile::{LogOptions, DEFAULT_BACKUPS, MAX_BACKUPS, MIN_LOG_SIZE};
        let Some(path) = self.logfile.clone() else {
            return Ok(None);
        };
        if let Some(n) = self.logsize.filter(|n| *n < MIN_LOG_SIZE) {
            return Err(BackendError::Invalid(format!(
                "__org.chardevd_logsize must be at least {MIN_LOG_SIZE} bytes, not {n}"
            )));
        }
        if let Some(n) = self.logbackups.filter(|n| *n > MAX_BACKUPS) {
            return Err(BackendError::Invalid(format!(
                "__org.chardevd_logbackups must be at most {MAX_BACKUPS}, not {n}"
            )));
        }
        Ok(Some(LogOptions {
            path,
            append: self.logappend.unwrap_or(false),
            timestamp: self.logtimestamp.unwrap_or(false),
            max_size: self.logsize,
            backups: self.logbackups.unwrap_or(DEFAULT_BACKUPS),
        }))
    }
}

/// What a kind needs to open: the chardev's id, a port on each chardev it
/// references (a mux's base, a hub's inputs), in order, the system's
/// objects (TLS credentials, authorization lists) and what it may ask of
/// the daemon.
#[derive(Debug)]
pub(crate) struct OpenContext {
    /// The chardev's id.
    pub id: String,
    /// Ports on the referenced chardevs.
    pub ports: Vec<Port>,
    /// `-object` / `object-add` objects.
    pub objects: std::sync::Arc<crate::objects::Objects>,
    /// The daemon.
    pub host: Host,
}

/// A chardev asks the daemon to exit (a mux's `C-a x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExitRequest {
    /// The chardev that asks.
    pub chardev: String,
    /// What asked.
    pub source: crate::events::ExitSource,
    /// The exit status it asks for (testdev's `q`); none: QEMU's `quit`.
    pub status: Option<u8>,
}

/// What a backend may ask of the daemon it runs in.
#[derive(Clone)]
pub(crate) struct Host {
    allow_exit: bool,
    escape_char: u8,
    handshake_timeout: std::time::Duration,
    exit: Option<std::sync::Arc<dyn Fn(ExitRequest) + Send + Sync>>,
    events: Option<std::sync::Arc<dyn Fn(crate::events::Event) + Send + Sync>>,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            allow_exit: false,
            escape_char: mux::ESCAPE_CHAR,
            handshake_timeout: crate::limits::Limits::default().handshake_timeout,
            exit: None,
            events: None,
        }
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host").field("allow_exit", &self.allow_exit).finish()
    }
}

impl Host {
    /// A host that hands exit requests to `exit`; `allow_exit` says whether
    /// they stop the daemon (else they are an event and a log line).
    pub fn new(allow_exit: bool, exit: impl Fn(ExitRequest) + Send + Sync + 'static) -> Host {
        Host {
            allow_exit,
            escape_char: mux::ESCAPE_CHAR,
            handshake_timeout: crate::limits::Limits::default().handshake_timeout,
            exit: Some(std::sync::Arc::new(exit)),
            events: None,
        }
    }

    /// The same, handing the events a backend raises (a console's client
    /// events) to `events`.
    pub fn with_events(mut self, events: impl Fn(crate::events::Event) + Send + Sync + 'static) -> Host {
        self.events = Some(std::sync::Arc::new(events));
        self
    }

    /// Raise an event (to every QMP session and event stream).
    pub fn emit(&self, event: crate::events::Event) {
        if let Some(f) = &self.events {
            f(event);
        }
    }

    /// The same, with this handshake timeout (TLS, telnet, websocket).
    pub fn with_handshake_timeout(mut self, t: std::time::Duration) -> Host {
        self.handshake_timeout = t;
        self
    }

    /// How long a socket peer may take over its handshake.
    pub fn handshake_timeout(&self) -> std::time::Duration {
        self.handshake_timeout
    }

    /// The same, with this mux escape character (QEMU's `-echr`).
    pub fn with_escape_char(mut self, c: u8) -> Host {
        self.escape_char = c;
        self
    }

    /// The mux escape character (`C-a` unless `-echr` says otherwise).
    pub fn escape_char(&self) -> u8 {
        self.escape_char
    }

    /// Whether an exit request stops the daemon.
    pub fn exit_allowed(&self) -> bool {
        self.allow_exit
    }

    /// Ask the daemon to exit.
    pub fn request_exit(&self, req: ExitRequest) {
        match &self.exit {
            Some(f) => f(req),
            None => {
                tracing::warn!(chardev = %req.chardev, source = req.source.as_str(), "exit requested; nobody to tell")
            }
        }
    }
}

/// An opened backend.
pub(crate) struct Opened {
    /// The run-time side.
    pub backend: Box<dyn Backend>,
    /// Open at creation (QEMU's `be_opened`).
    pub be_open: bool,
    /// The pty path, for chardev-add's return value.
    pub pty: Option<String>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("be_open", &self.be_open)
            .field("pty", &self.pty)
            .finish()
    }
}

impl Opened {
    /// A backend open at creation.
    pub fn open(backend: impl Backend) -> Opened {
        Opened {
            backend: Box::new(backend),
            be_open: true,
            pty: None,
        }
    }

    /// A backend that is not open at creation.
    pub fn closed(backend: impl Backend) -> Opened {
        Opened {
            backend: Box::new(backend),
            be_open: false,
            pty: None,
        }
    }
}

/// Any value as `dyn Any` (for [`ChardevBackend::config`]).
pub(crate) trait AsAny {
    /// `self` as `dyn Any`.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any> AsAny for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// One kind's options: what the registry must know of them, and how to open.
pub(crate) trait BackendConfig: fmt::Debug + Send + AsAny + 'static {
    /// QEMU's kind name.
    fn kind(&self) -> &'static str;

    /// Ports, capabilities, resources and references (the registry decides
    /// with them).
    fn info(&self) -> KindInfo {
        KindInfo::plain(self.kind())
    }

    /// Where `fd` socket addresses of these options come from (QMP's `getfd`
    /// names of the session that sent the command; the command line's
    /// numbers). Only kinds with such addresses keep it.
    fn set_fds(&mut self, _fds: crate::net::Fds) {}

    /// The error when a chardev it references is missing, refused or full
    /// (worded as the kind's QEMU source words it).
    fn reference_error(&self, id: &str, reject: &crate::registry::Reject) -> BackendError {
        use crate::registry::Reject;
        BackendError::Kind(match reject {
            Reject::RefMissing(r) => format!("chardev '{r}' not found"),
            Reject::RefRefused(r) => format!("chardev '{r}' cannot be used here"),
            Reject::RefTooMany => format!("too many chardevs for '{id}'"),
            other => in_use_text(other),
        })
    }

    /// The error when an exclusive resource it needs is lent out by a
    /// chardev being changed (worded as the OS conflict would be).
    fn conflict(&self, resource: &crate::registry::Resource) -> BackendError {
        BackendError::Invalid(format!("{} is in use", resource.key))
    }

    /// Open the backend, on the arbiter that will run it.
    fn open(self: Box<Self>, cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>>;
}

/// QEMU's `qemu_chr_fe_init` error for a chardev that takes no more users.
pub(crate) fn in_use_text(reject: &crate::registry::Reject) -> String {
    match reject {
        crate::registry::Reject::RefInUse { id, kind: "mux", max } => {
            format!("too many uses of multiplexed chardev '{id}' (maximum is {max})")
        }
        crate::registry::Reject::RefInUse { id, .. } => format!("chardev '{id}' is already in use"),
        other => format!("{other:?}"),
    }
}

/// The options of one backend kind ([`File`], [`Socket`], [`Ringbuf`], ...):
/// what [`ChardevBackend::new`] takes. Sealed: the kinds are chardevd's.
pub trait BackendOptions: fmt::Debug + Send + Any + 'static {
    /// The options as the chardev opens them.
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn boxed(self) -> Box<dyn BackendConfig>;
}

impl<T: BackendConfig> BackendOptions for T {
    #[allow(private_interfaces)]
    fn boxed(self) -> Box<dyn BackendConfig> {
        Box::new(self)
    }
}

/// A kind this build does not have: refused when opened, as a QEMU built
/// without it refuses it.
#[derive(Debug)]
struct Unbuilt(&'static str);

impl BackendConfig for Unbuilt {
    fn kind(&self) -> &'static str {
        self.0
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        let kind = self.0;
        Box::pin(async move { Err(BackendError::InvalidDriver(kind.to_owned())) })
    }
}

/// `ChardevBackend`: which kind, with its options.
///
/// ```
/// use chardevd::backends::{ChardevBackend, Ringbuf};
/// let b = ChardevBackend::new(Ringbuf { size: Some(4096) });
/// assert_eq!(b.kind(), "ringbuf");
/// assert_eq!(b.config::<Ringbuf>().unwrap().size, Some(4096));
/// ```
#[derive(Debug)]
pub struct ChardevBackend {
    /// The options every kind takes.
    pub common: ChardevCommon,
    config: Box<dyn BackendConfig>,
}

impl ChardevBackend {
    /// A backend of a kind, with no log file.
    pub fn new(config: impl BackendOptions) -> ChardevBackend {
        ChardevBackend {
            common: ChardevCommon::default(),
            config: config.boxed(),
        }
    }

    /// The same, with these common options.
    pub fn with_common(mut self, common: ChardevCommon) -> ChardevBackend {
        self.common = common;
        self
    }

    /// The same, logging frontend output to `path` (truncated unless `append`).
    pub fn with_log(self, path: impl Into<String>, append: bool) -> ChardevBackend {
        let common = ChardevCommon {
            logfile: Some(path.into()),
            logappend: Some(append),
            ..self.common.clone()
        };
        self.with_common(common)
    }

    /// A kind's options and the common ones.
    pub(crate) fn from_parts(common: ChardevCommon, config: Box<dyn BackendConfig>) -> ChardevBackend {
        ChardevBackend { common, config }
    }

    /// QEMU's kind name.
    pub fn kind(&self) -> &'static str {
        self.config.kind()
    }

    /// The options, if they are of kind `T`.
    pub fn config<T: BackendOptions>(&self) -> Option<&T> {
        (*self.config).as_any().downcast_ref::<T>()
    }

    /// What the registry needs to know.
    pub(crate) fn info(&self) -> KindInfo {
        self.config.info()
    }

    /// The same, taking `fd` addresses from `fds` (see [`BackendConfig::set_fds`]).
    pub(crate) fn with_fds(mut self, fds: crate::net::Fds) -> ChardevBackend {
        self.config.set_fds(fds);
        self
    }

    /// See [`BackendConfig::reference_error`].
    pub(crate) fn reference_error(&self, id: &str, reject: &crate::registry::Reject) -> BackendError {
        self.config.reference_error(id, reject)
    }

    /// See [`BackendConfig::conflict`].
    pub(crate) fn conflict(&self, resource: &crate::registry::Resource) -> BackendError {
        self.config.conflict(resource)
    }

    /// How the chardev logs, checked.
    pub(crate) fn log(&self) -> Result<Option<crate::chardev::logfile::LogOptions>, BackendError> {
        self.common.log_options()
    }

    /// The parts, to open.
    pub(crate) fn into_parts(self) -> (ChardevCommon, Box<dyn BackendConfig>) {
        (self.common, self.config)
    }

    /// From QMP's `{"type": ..., "data": {...}}`, already checked against the
    /// schema. A kind of QEMU's that this build lacks is kept, to be refused
    /// when opened (in QEMU's order of checks).
    pub fn from_qmp(v: &serde_json::Value) -> Result<ChardevBackend, BackendError> {
        let kind_name = v.get("type").and_then(|t| t.as_str()).unwrap_or("");
        let empty = serde_json::Value::Object(Default::default());
        let data = v.get("data").unwrap_or(&empty);
        let common: ChardevCommon =
            serde_json::from_value(data.clone()).map_err(|e| BackendError::Invalid(e.to_string()))?;
        let config = match KINDS.iter().find(|k| k.name == kind_name) {
            Some(k) => (k.from_qmp)(data)?,
            None => match QEMU_KINDS.iter().find(|k| **k == kind_name) {
                Some(k) => Box::new(Unbuilt(k)),
                None => return Err(BackendError::InvalidDriver(kind_name.to_owned())),
            },
        };
        Ok(ChardevBackend { common, config })
    }
}

/// Read a kind's options from its QMP `data`.
pub(crate) fn from_data<T: serde::de::DeserializeOwned + BackendConfig>(
    data: &serde_json::Value,
) -> Result<Box<dyn BackendConfig>, BackendError> {
    serde_json::from_value::<T>(data.clone())
        .map(|t| Box::new(t) as Box<dyn BackendConfig>)
        .map_err(|e| BackendError::Invalid(e.to_string()))
}

/// The `-chardev` lines of every kind, for `--help`.
pub(crate) fn syntax() -> String {
    KINDS.iter().map(|k| format!("{}\n", k.syntax)).collect()
}
