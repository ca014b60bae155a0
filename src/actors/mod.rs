//! The actors: the supervisor (a thin shell over the registry and the
//! tables beside it), one actor per chardev, and the arbiter pool they run on.
pub mod chardev;
pub mod directory;
pub mod pool;
pub mod supervisor;

pub use directory::Directory;
pub(crate) use supervisor::Supervisor;
