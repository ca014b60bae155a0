//! The actor system: the supervisor (ID registry), the event bus, the messages
//! they exchange, and the frontend plumbing.
pub mod events;
pub mod frontend;
pub mod msgs;
pub mod supervisor;

pub use supervisor::Supervisor;

/// Every way a chardev command can fail; each `Display` is QEMU's exact `desc`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChardevError {
    /// chardev-add of an id in use.
    #[error("Chardev with id '{0}' already exists")]
    AlreadyExists(String),
    /// chardev-remove / chardev-send-break of an unknown id.
    #[error("Chardev '{0}' not found")]
    NotFound(String),
    /// chardev-change of an unknown id.
    #[error("Chardev '{0}' does not exist")]
    DoesNotExist(String),
    /// ringbuf-* of an unknown id.
    #[error("Device '{0}' not found")]
    DeviceNotFound(String),
    /// ringbuf-* of a chardev that is not a ring.
    #[error("{0} is not a ringbuf device")]
    NotRingbuf(String),
    /// chardev-remove of a chardev with a frontend.
    #[error("Chardev '{0}' is busy")]
    Busy(String),
    /// A backend could not be created.
    #[error("Failed to add chardev '{id}': {reason}")]
    AddFailed {
        /// The id.
        id: String,
        /// QEMU's text for the cause.
        reason: String,
    },
    /// chardev-change with a frontend attached failed to create the new backend.
    #[error("{0}")]
    ChangeFailed(String),
    /// chardev-change of a mux or hub.
    #[error("For mux or hub device hotswap is not supported yet")]
    MuxHotswap,
    /// chardev-change under a frontend that cannot follow a swap.
    #[error("Chardev user does not support chardev hotswap")]
    HotswapUnsupported,
    /// ringbuf-read with size <= 0.
    #[error("size must be greater than zero")]
    SizeNotPositive,
    /// ringbuf-write with bad base64.
    #[error("Base64 data contains invalid characters")]
    Base64Invalid,
    /// A second frontend on a chardev.
    #[error("chardev '{0}' is already in use")]
    InUse(String),
    /// The backend actor is gone (it stopped or the system is shutting down).
    #[error("Chardev '{0}' is not available")]
    Gone(String),
    /// device_del / port commands naming an unknown device (class DeviceNotFound).
    #[error("Device '{0}' not found")]
    NoSuchDevice(String),
    /// An ioctl the backend does not support (QEMU's -ENOTSUP).
    #[error("Operation not supported")]
    NotSupported,
    /// Any other error, worded in full.
    #[error("{0}")]
    Other(String),
}
