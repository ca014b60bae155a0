//! Every way a command can fail, in one module.
//!
//! Each error's `Display` is QEMU 10.0.2's exact `desc` text, and
//! [`Error::class`] gives its QMP error class. The QMP layer maps an [`Error`]
//! onto the wire in one place (`From<Error> for qmp::error::QmpError`); the
//! embedding [`crate::Handle`] returns the typed error itself.
//!
//! Causes are kept as `#[source]`s. Because QEMU's desc quotes the cause
//! (`Could not open '/p': No such file or directory`), a `Display` includes its
//! source's text: print the top-level error, not the whole chain.

/// QMP error classes (QEMU's `QapiErrorClass`, the ones chardevd uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Almost every error.
    GenericError,
    /// Unknown command, or a command the session may not run now.
    CommandNotFound,
    /// `device_del` and friends of an unknown device.
    DeviceNotFound,
}

impl ErrorClass {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
        }
    }
}

pub use crate::os_error::OsError;

/// Why a backend could not be created: the text after QEMU's
/// `Failed to add chardev 'ID': ` prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// A kind this build does not have (QEMU built without it says the same).
    #[error("'{0}' is not a valid char driver name")]
    InvalidDriver(String),
    /// A file or device could not be opened.
    #[error("Could not open '{path}': {source}")]
    Open {
        /// The path QEMU quotes in its message.
        path: String,
        /// The OS error.
        #[source]
        source: OsError,
    },
    /// The `logfile` could not be created.
    #[error("Could not create '{path}': {source}")]
    LogCreate {
        /// The path QEMU quotes in its message.
        path: String,
        /// The OS error.
        #[source]
        source: OsError,
    },
    /// A ring size that is not a positive power of two.
    #[error("size of ringbuf chardev must be power of two")]
    RingSize,
    /// A ring size above the limit.
    #[error("size of ringbuf chardev must be at most {0}")]
    RingTooBig(i64),
    /// The braille backend could not reach a BrlAPI server.
    #[error("brlapi__openConnection: {0}")]
    Brlapi(String),
    /// `openpty` failed (out of ptys, or no `/dev/ptmx`).
    #[error("Failed to create PTY: {0}")]
    PtyCreate(#[source] OsError),
    /// The pty's `path` link could not be made.
    #[error("Failed to create PTY symlink: {0}")]
    PtySymlink(#[source] OsError),
    /// A second stdio chardev.
    #[error("cannot use stdio by multiple character devices")]
    StdioBusy,
    /// A descriptor could not be set up for polling.
    #[error("Failed to set FD nonblocking: {0}")]
    Nonblocking(#[source] OsError),
    /// A parallel device that refused `PPCLAIM`.
    #[error("not a parallel port: {0}")]
    NotParallel(#[source] OsError),
    /// A datagram socket for a non-inet address.
    #[error("socket type unsupported for datagram")]
    DatagramType,
    /// Name resolution failed.
    #[error("address resolution failed for {host}:{port}: {why}")]
    Resolve {
        /// The host that did not resolve.
        host: String,
        /// The port or service asked for with it.
        port: String,
        /// The resolver's words.
        why: String,
    },
    /// `ipv4=off,ipv6=off`: no address family left to use.
    #[error("Cannot disable IPv4 and IPv6 at same time")]
    NoAddressFamily,
    /// A udp chardev without a remote port.
    #[error("remote port not specified")]
    RemotePortMissing,
    /// `socket()` failed (the family is unsupported, or no descriptor left).
    #[error("Failed to create socket family {family}: {source}")]
    SocketCreate {
        /// The address family number.
        family: i32,
        /// The OS error.
        #[source]
        source: OsError,
    },
    /// Setting up a socket failed.
    #[error("Failed to create socket: {0}")]
    SocketSetup(#[source] OsError),
    /// `bind()` of a datagram socket failed.
    #[error("Failed to bind socket: {0}")]
    Bind(#[source] OsError),
    /// `connect()` failed (`target` is `host:port`, a path, or `cid:port`).
    #[error("Failed to connect to '{target}': {source}")]
    Connect {
        /// Where, as given.
        target: String,
        /// The OS error.
        #[source]
        source: OsError,
    },
    /// A socket option combination QEMU refuses (the text is QEMU's).
    #[error("{0}")]
    Refused(&'static str),
    /// `tls-creds` names no object.
    #[error("No TLS credentials with id '{0}'")]
    NoTlsCreds(String),
    /// `tls-creds` names an object that is not TLS credentials.
    #[error("Object with id '{0}' is not TLS credentials")]
    NotTlsCreds(String),
    /// TLS credentials for the wrong end.
    #[error("Expected TLS credentials for a {0} endpoint")]
    TlsEndpoint(&'static str),
    /// A unix socket path longer than `sun_path`.
    #[error("UNIX socket path '{0}' is too long")]
    UnixPathTooLong(String),
    /// `bind()` of a unix socket failed.
    #[error("Failed to bind socket to {path}: {source}")]
    BindUnix {
        /// The path QEMU quotes in its message.
        path: String,
        /// The OS error.
        #[source]
        source: OsError,
    },
    /// A unix socket path where a live server answers (QEMU would take it over).
    #[error("Failed to bind socket to {0}: a server is listening there")]
    UnixInUse(String),
    /// A unix server's `__org.chardevd_mode`, `_owner` or `_group` that
    /// cannot be taken.
    #[error("{0}")]
    UnixAccess(String),
    /// A unix socket path that exists and is not a socket (QEMU would unlink it).
    #[error("Failed to bind socket to {0}: it exists and is not a socket")]
    UnixNotSocket(String),
    /// An existing path that could not be removed for a new socket.
    #[error("Failed to unlink socket {path}: {source}")]
    UnlinkSocket {
        /// The path QEMU quotes in its message.
        path: String,
        /// The OS error.
        #[source]
        source: OsError,
    },
    /// No port of the range could be bound.
    #[error("Failed to find an available port: {0}")]
    NoPort(#[source] OsError),
    /// No socket could be made for a port range that is empty.
    #[error("Failed to create a socket: {0}")]
    CreateSocket(#[source] OsError),
    /// A named descriptor that was never passed with `getfd`.
    #[error("File descriptor named '{0}' has not been found")]
    FdNotFound(String),
    /// A descriptor that is not a socket.
    #[error("File descriptor '{0}' is not a socket")]
    FdNotSocket(String),
    /// `listen()` on a passed descriptor failed.
    #[error("Failed to listen on fd socket: {0}")]
    FdListen(#[source] OsError),
    /// A descriptor number that is not a number (command line).
    #[error("Unable to parse FD number{0}")]
    FdNumber(String),
    /// A vsock cid or port that is not a number.
    #[error("Failed to parse {what} '{value}'")]
    VsockParse {
        /// `cid` or `port`.
        what: &'static str,
        /// The text that is not a number.
        value: String,
    },
    /// The arguments could not be read into the kind's options (a bug: the
    /// schema checks them first).
    #[error("Invalid backend: {0}")]
    Invalid(String),
    /// The backend was still waiting (a fifo with no reader, a server with
    /// `wait=on` and no client) when the command deadline passed (QEMU waits
    /// for ever: `Limits::command_deadline`).
    #[error("gave up after {0} s of waiting (the command deadline)")]
    Deadline(u64),
    /// A kind's own error, worded as QEMU's source of that kind words it
    /// (a mux's missing base, a hub's inputs).
    #[error("{0}")]
    Kind(String),
}

/// Why a QMP monitor on a chardev could not be created or removed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonitorError {
    /// No such chardev (QEMU's `-mon` text, double quotes and all).
    #[error("chardev \"{0}\" not found")]
    NoChardev(String),
    /// The id is taken.
    #[error("Duplicate ID '{0}' for mon")]
    DuplicateId(String),
    /// The id is not an identifier.
    #[error("Parameter 'id' expects an identifier")]
    BadId,
    /// No monitor of that id.
    #[error("Monitor '{0}' not found")]
    NotFound(String),
    /// `mode=readline`: chardevd has no human monitor.
    #[error("chardevd has no human monitor (HMP): use mode=control for a QMP monitor")]
    Readline,
    /// `pretty` with a human monitor (QEMU's text).
    #[error("'pretty' is not compatible with HMP monitors")]
    PrettyHmp,
    /// This system runs no QMP layer (an executor made without one).
    #[error("QMP monitors are not available here")]
    Unavailable,
}

/// Why a built-in device (`device_add`) could not be created or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// A driver name chardevd has no device for.
    #[error("'{0}' is not a valid device model name")]
    NoDriver(String),
    /// A property of the wrong JSON type.
    #[error("Invalid parameter type for '{0}', expected: string")]
    PropertyType(String),
    /// A property the driver does not have.
    #[error("Property '{driver}.{prop}' not found")]
    NoProperty {
        /// The device's driver.
        driver: String,
        /// The property QEMU names.
        prop: String,
    },
    /// A required property is missing.
    #[error("Property '{driver}.{prop}' is required")]
    PropertyRequired {
        /// The device's driver.
        driver: String,
        /// The property QEMU names.
        prop: String,
    },
    /// A device id that is not an identifier.
    #[error("Parameter 'id' expects an identifier")]
    BadId,
    /// A device id in use.
    #[error("Duplicate device ID '{0}'")]
    DuplicateId(String),
    /// A chardev property naming no chardev.
    #[error("Property '{driver}.{prop}' can't find value '{value}'")]
    NoChardev {
        /// The device's driver.
        driver: String,
        /// The property QEMU names.
        prop: String,
        /// The chardev id.
        value: String,
    },
    /// A chardev property naming a chardev in use.
    #[error("Property '{driver}.{prop}' can't take value '{value}', it's in use")]
    ChardevInUse {
        /// The device's driver.
        driver: String,
        /// The property QEMU names.
        prop: String,
        /// The chardev id.
        value: String,
    },
    /// An unknown device id (class `DeviceNotFound`).
    #[error("Device '{0}' not found")]
    NotFound(String),
    /// An input console's head that does not exist.
    #[error("Device {device} (head {head}) is not bound to a QemuConsole")]
    NotBound {
        /// The console's chardev.
        device: String,
        /// The head asked for (only 0 exists).
        head: i64,
    },
    /// `__org.chardevd_port-set-open` on a device that is not a port.
    #[error("Device '{0}' is not a port")]
    NotAPort(String),
}

/// Every way a chardev command can fail; `Display` is QEMU's exact `desc`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// chardev-add of an id in use.
    #[error("Chardev with id '{0}' already exists")]
    AlreadyExists(String),
    /// chardev-remove / chardev-send-break / attach of an unknown id.
    #[error("Chardev '{0}' not found")]
    NotFound(String),
    /// chardev-change of an unknown id.
    #[error("Chardev '{0}' does not exist")]
    DoesNotExist(String),
    /// ringbuf-* of an unknown id (QEMU says "Device" here).
    #[error("Device '{0}' not found")]
    RingNotFound(String),
    /// ringbuf-* of a chardev that is not a ring.
    #[error("{0} is not a ringbuf device")]
    NotRingbuf(String),
    /// chardev-remove of a chardev in use (or being created or changed).
    #[error("Chardev '{0}' is busy")]
    Busy(String),
    /// chardev-add failed to create the backend.
    #[error("Failed to add chardev '{id}': {source}")]
    AddFailed {
        /// The chardev's id.
        id: String,
        /// Why the backend could not be created.
        #[source]
        source: BackendError,
    },
    /// chardev-change with a frontend attached failed to create the new
    /// backend: QEMU reports the bare cause.
    #[error("{0}")]
    ChangeFailed(#[source] BackendError),
    /// A backend description that cannot be read (QEMU reports the bare cause).
    #[error("{0}")]
    Backend(#[source] BackendError),
    /// A chardevd limit (`Limits`) would be passed.
    #[error("too many {what}: at most {max} (a chardevd limit)")]
    TooMany {
        /// What there would be too many of (`chardevs`, `devices`, ...).
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// An argument of the typed API that QMP's schema would refuse (QEMU's
    /// text, naming the argument as QMP would).
    #[error("{0}")]
    Argument(String),
    /// chardev-change of a mux or hub.
    #[error("For mux or hub device hotswap is not supported yet")]
    MuxHotswap,
    /// chardev-change under a user that cannot follow a swap.
    #[error("Chardev user does not support chardev hotswap")]
    HotswapUnsupported,
    /// ringbuf-read with size <= 0.
    #[error("size must be greater than zero")]
    SizeNotPositive,
    /// ringbuf-write with bad base64.
    #[error("Base64 data contains invalid characters")]
    Base64Invalid,
    /// A frontend attach to a chardev that takes no more frontends.
    #[error("chardev '{0}' is already in use")]
    InUse(String),
    /// A frontend beyond a mux's limit.
    #[error("too many uses of multiplexed chardev '{id}' (maximum is {max})")]
    MuxFull {
        /// The mux's id.
        id: String,
        /// How many frontends it takes.
        max: usize,
    },
    /// A built-in device error.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A QMP monitor error.
    #[error(transparent)]
    Monitor(#[from] MonitorError),
    /// A frontend ioctl the backend does not support (QEMU's `-ENOTSUP`).
    #[error("Operation not supported")]
    NotSupported,
    /// A frontend ioctl the OS refused.
    #[error("{0}")]
    Ioctl(#[source] OsError),
    /// The frontend was detached, or its chardev is gone.
    #[error("the frontend is detached from chardev '{0}'")]
    Detached(String),
    /// `input-send-event` of an event type no chardev takes.
    #[error("Input handler not found for event type {0}")]
    NoInputHandler(&'static str),
    /// A screen asked of a system with no vc.
    #[error("There is no console to take a screendump from.")]
    NoConsole,
    /// A QMP listener could not listen (the cause is the socket chardev's
    /// wording for the same failure).
    #[error("QMP listener {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: String,
        /// The cause, worded as for a socket chardev.
        #[source]
        source: BackendError,
    },
    /// The web console's settings are refused (`--web`).
    #[error("{0}")]
    Web(String),
    /// An item of the start-up [`crate::Config`] failed; the system did not start.
    #[error("{item}: {source}")]
    Startup {
        /// The item of the configuration.
        item: ConfigItem,
        /// What went wrong with it.
        #[source]
        source: Box<Error>,
    },
    /// The system could not be started at all (its thread died).
    #[error("chardevd could not start: {0}")]
    Spawn(String),
    /// The actor system is not running (any more).
    #[error("chardevd is shutting down")]
    ShuttingDown,
    /// `object-add` / `object-del`.
    #[error(transparent)]
    Object(#[from] crate::objects::ObjectError),
    /// `yank` of something that cannot be yanked (class `DeviceNotFound`).
    #[error("Instance not found")]
    YankNotFound,
    /// `getfd` with no descriptor attached to the message.
    #[error("No file descriptor supplied via SCM_RIGHTS")]
    NoFdSupplied,
    /// `getfd` with a name that starts with a digit.
    #[error("Parameter 'fdname' expects a name not starting with a digit")]
    FdNameDigit,
    /// A console command on a chardev that is not a console.
    #[error("Chardev '{0}' is not a console (a listening socket with __org.chardevd_ console options)")]
    NotConsole(String),
    /// A console's client that is not connected (any more).
    #[error("Chardev '{id}' has no client {client}")]
    NoClient {
        /// The chardev's id.
        id: String,
        /// The client's number.
        client: u64,
    },
    /// `client-set-writer` on a console whose input rule has no writer role.
    #[error("Chardev '{id}' has __org.chardevd_input={input}: there is no writer role to give (use first)")]
    NoWriterRole {
        /// The chardev's id.
        id: String,
        /// Its input rule.
        input: &'static str,
    },
    /// `closefd` of an unknown name.
    #[error("File descriptor named '{0}' not found")]
    FdNameNotFound(String),
}

impl Error {
    /// The QMP error class QEMU uses for this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Device(DeviceError::NotFound(_)) | Error::YankNotFound => ErrorClass::DeviceNotFound,
            _ => ErrorClass::GenericError,
        }
    }
}

/// An item of a [`crate::Config`], as [`Error::Startup`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigItem {
    /// The `i`th of [`crate::Config::objects`].
    Object(usize),
    /// The `i`th of [`crate::Config::chardevs`].
    Chardev(usize),
    /// The `i`th of [`crate::Config::monitors`].
    Monitor(usize),
    /// The `i`th of [`crate::Config::devices`].
    Device(usize),
    /// The `i`th of [`crate::Config::qmp`].
    Qmp(usize),
    /// The web console (`Config::web`).
    Web,
}

impl std::fmt::Display for ConfigItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigItem::Object(i) => write!(f, "objects[{i}]"),
            ConfigItem::Chardev(i) => write!(f, "chardevs[{i}]"),
            ConfigItem::Monitor(i) => write!(f, "monitors[{i}]"),
            ConfigItem::Device(i) => write!(f, "devices[{i}]"),
            ConfigItem::Qmp(i) => write!(f, "qmp[{i}]"),
            ConfigItem::Web => write!(f, "web"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_read_like_strerror() {
        let e = OsError::from_errno(2);
        assert_eq!(e.to_string(), "No such file or directory");
        let add = Error::AddFailed {
            id: "f".into(),
            source: BackendError::Open {
                path: "/x".into(),
                source: e,
            },
        };
        assert_eq!(
            add.to_string(),
            "Failed to add chardev 'f': Could not open '/x': No such file or directory"
        );
        assert!(std::error::Error::source(&add).is_some(), "the cause is kept");
    }

    #[test]
    fn classes_follow_qemu() {
        assert_eq!(Error::NotFound("x".into()).class(), ErrorClass::GenericError);
        assert_eq!(
            Error::Device(DeviceError::NotFound("d".into())).class(),
            ErrorClass::DeviceNotFound
        );
    }
}
