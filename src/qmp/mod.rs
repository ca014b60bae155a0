//! The QMP wire protocol: framing, requests, commands, errors, sessions, listeners.
pub mod codec;
pub mod command;
pub mod error;
pub mod listener;
pub mod request;
pub mod schema;
pub mod session;
