//! The actors: the supervisor (a thin shell over the registry and the
//! tables beside it), one actor per chardev, and the arbiter pool they run on.
pub mod chardev;
pub mod directory;
pub mod pool;
pub mod supervisor;

pub use directory::Directory;
pub(crate) use supervisor::Supervisor;

/// Stop a device or a QMP monitor on a chardev (sent by the supervisor on
/// `device_del`, `__org.chardevd_monitor-del`).
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub(crate) struct StopDevice;
