//! The actors: the supervisor (a thin shell over the registry), one actor
//! per chardev, and the arbiter pool they run on.
pub mod chardev;
pub mod directory;
pub mod msgs;
pub mod pool;
pub mod supervisor;

pub use directory::Directory;
pub use supervisor::Supervisor;
