//! The QMP wire protocol: framing, requests, commands, errors, sessions, listeners.
pub mod codec;
pub mod command;
pub mod error;
pub mod framer;
pub mod json;
pub mod listener;
pub mod request;
pub mod session;
