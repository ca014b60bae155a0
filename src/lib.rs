//! chardevd: QEMU's character devices and their QMP control protocol, as an
//! actix actor system: a daemon, and a library to embed.
//!
//! # Embedding
//!
//! ```toml
//! [dependencies]
//! chardevd = { path = "../chardevd" }   # this repository
//! bytes = "1"
//! tokio = { version = "1", features = ["rt", "macros"] }   # or any async runtime
//! ```
//!
//! The system runs on its own threads; its [`Handle`] works from any thread
//! and any async runtime, through the same executor as QMP:
//!
//! ```
//! use chardevd::backends::{ringbuf::Ringbuf, ChardevBackend};
//! use chardevd::{Config, FrontendEvent};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let handle = chardevd::spawn(Config::default())?; // its own threads and actix System
//!     handle.chardev_add("log0", ChardevBackend::new(Ringbuf { size: Some(4096) })).await?;
//!     let mut events = handle.events(64).await?; // every QMP event, typed
//!     let mut fe = handle.attach("log0").await?; // a frontend: your device model
//!     assert_eq!(fe.recv().await, Some(FrontendEvent::Opened));
//!     fe.write(bytes::Bytes::from_static(b"boot ok\n")).await?;
//!     assert_eq!(handle.ringbuf_read_text("log0", 100).await?, "boot ok\n");
//!     handle.quit().await?; // QEMU's SHUTDOWN event, then the system stops
//!     assert!(matches!(events.recv().await, Some(Ok(e)) if e.event.name() == "SHUTDOWN"));
//!     handle.join();
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })
//! # }
//! ```
//!
//! # Module map
//! From the wire down (a module uses only the ones below it):
//! - [`qmp`]: the QMP protocol: framing, request checks against the served
//!   schema, the protocol's own commands, the bounded output queue,
//!   sessions and listeners, and QMP monitors on chardevs.
//! - [`runtime`]: the embedding [`Handle`]; [`config`]: QEMU's command-line
//!   options.
//! - [`commands`]: one type per command, one file each ([`Request`]); `api`:
//!   the one executor every caller shares, and the library [`Frontend`].
//! - `actors`: the supervisor (a thin shell over the registry), one actor
//!   per chardev, and the arbiter pool.
//! - `frontends`: built-in devices (`echo`, `bridge`, `port`), one file per driver.
//! - [`backends`]: one file per QEMU backend kind (a mux and a hub hold
//!   ports on the chardevs they use), and the table of kinds.
//! - [`chardev`]: the core every kind plugs into: ports, the `Backend`
//!   trait, transports and links, descriptor I/O, the log file.
//! - `registry`: pure bookkeeping (ids, references, leases, generations;
//!   the event bus).
//! - [`json`], [`options`], [`net`], [`error`]: QEMU's JSON dialect, its
//!   option syntax, socket addresses, and every error with QEMU's text.
//!
//! A command travels: socket bytes → [`json::framer::Framer`] (in
//! [`qmp::codec`]) → [`qmp::request::parse_request`] →
//! [`qmp::schema::Schema::check_args`] → [`qmp::command::QmpCommand`] →
//! the command's type → a call in the supervisor's context, which asks the
//! registry and tells chardev actors → the typed output → the session's output
//! queue. A byte from a frontend travels: [`Frontend::write`] → its port's
//! queue → the chardev actor's driver → the backend (partial accept) → the
//! log; a byte from outside: the backend → every port (as much as they have
//! room for) → [`Frontend::recv`].
#![deny(missing_docs)]

pub(crate) mod actors;
pub mod api;
pub mod backends;
pub mod chardev;
mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod events;
pub(crate) mod frontends;
pub mod json;
pub mod net;
pub mod objects;
pub mod options;
mod os_error;
pub mod qmp;
pub(crate) mod registry;
pub mod runtime;

pub use api::frontend::{Frontend, FrontendControl, FrontendEvents, FrontendReader, FrontendWriter};
pub use backends::stdio::restore_terminal;
pub use backends::ChardevBackend;
pub use chardev::port::ChardevEvent;
pub use chardev::{CharIoctl, ChardevInfo, ChardevReturn, FrontendEvent, Overflow, Parity, PortConfig, SerialParams};
pub use cli::{CommandLine, CommandLineReport};
pub use commands::{DataFormat, Request};
pub use error::{BackendError, DeviceError, Error, ErrorClass};
pub use net::remove_socket_file;
pub use qmp::listener::QmpAddr;
pub use qmp::session::SessionLimits;
pub use qmp::{package_string, QEMU_VERSION};
pub use runtime::{spawn, ChardevSpec, Config, ConfigItem, Handle};
