//! What every caller shares: the one [`execute`]or commands run through,
//! and the library [`frontend`].
pub mod execute;
pub mod frontend;

pub use frontend::{Frontend, FrontendEvents, FrontendReader, FrontendWriter};
