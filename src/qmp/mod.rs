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

/// The QEMU version chardevd's QMP interface matches.
pub const QEMU_VERSION: (i64, i64, i64) = (10, 0, 2);

/// The `package` string of the greeting and `query-version`.
pub fn package_string() -> String {
    format!("chardevd {}", env!("CARGO_PKG_VERSION"))
}
