//! chardevd: QEMU's character devices and their QMP control protocol, as an
//! actix actor system.
//!
//! # Module map
//! - [`qmp`]: the wire protocol. [`qmp::json`] (QEMU's value model and writer),
//!   [`qmp::framer`] (QEMU's JSON lexer/streamer/parser, a pure core),
//!   [`qmp::request`] (request-shape checks), [`qmp::command`] (the typed
//!   command enum), [`qmp::error`] (the one place errors become QMP replies),
//!   [`qmp::session`] (one actor per connection) and [`qmp::listener`].
//! - [`schema`]: the served QMP schema (introspection + argument validation).
//! - [`actors`]: the supervisor (ID registry, reserve-then-commit), the event
//!   bus, messages, and the frontend plumbing.
//! - [`backends`]: one file per QEMU backend kind, plus the factory.
//! - [`frontends`]: built-in frontends (`echo`, `port`) created by `device_add`.
//! - [`config`]: QEMU option strings (`-chardev`, `-qmp`, `-device`).
//! - [`runtime`]: embedding: start the actor system on its own thread and get
//!   a [`runtime::Handle`] with typed async methods.
//!
//! A command travels: socket bytes → [`qmp::framer::Framer`] →
//! [`qmp::request::parse_request`] → [`schema::Schema::check_args`] →
//! [`qmp::command::Command`] → a message to [`actors::supervisor::Supervisor`]
//! → a reply built in [`qmp::session`].
#![deny(missing_docs)]

pub mod actors;
pub mod backends;
pub mod config;
pub mod frontends;
pub mod json;
pub mod qmp;
pub mod runtime;

/// The QEMU version chardevd's QMP interface matches.
pub const QEMU_VERSION: (i64, i64, i64) = (10, 0, 2);

/// The `package` string of the greeting and `query-version`.
pub fn package_string() -> String {
    format!("chardevd {}", env!("CARGO_PKG_VERSION"))
}
