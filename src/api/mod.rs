//! The API every caller shares: typed [`command`]s, the one [`execute`]or,
//! and the library [`frontend`].
pub mod command;
pub mod execute;
pub mod frontend;

pub use command::{Command, DataFormat, Payload, Reply};
pub use execute::Executor;
pub use frontend::Frontend;
