//! The QMP wire protocol: framing ([`codec`] over QEMU's JSON framer),
//! request checks ([`request`], [`schema`]), commands ([`command`]), errors
//! on the wire ([`error`]), messages in wire form ([`wire`]), the bounded
//! [`output`] queue, sessions ([`session`]) and listeners ([`listener`]).
pub mod codec;
pub mod command;
pub mod error;
pub mod fds;
pub mod listener;
pub mod monitor;
pub mod output;
pub mod protocol;
pub mod request;
pub mod schema;
pub mod session;
pub mod wire;
