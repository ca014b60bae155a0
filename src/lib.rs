//! chardevd: QEMU's character devices ("chardevs") and their QMP control
//! protocol, as an actix actor system: a daemon (`chardevd`), and this
//! library to embed in a Rust service (a VMM, a console server, a test
//! harness).
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
//! A system runs on threads of its own; its [`Handle`] works from any
//! thread and any async runtime. Every QMP command has a typed method named
//! after it ([`Handle::chardev_add`], [`Handle::ringbuf_read`], ...) that
//! runs the same code as QMP, with the same checks and errors. A frontend
//! (your device model) is a byte stream with events beside it:
//!
//! ```
//! use chardevd::backends::{ChardevBackend, Socket};
//! use chardevd::events::Event;
//! use chardevd::frontend::ChardevEvent;
//! use chardevd::{Config, Handle, QmpAddr};
//! use futures_util::StreamExt;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let console = dir.path().join("console.sock");
//! let handle = Handle::start(Config::default()).await?; // its own threads
//! // A console socket, and QMP for the tools beside it.
//! let console_path = console.to_str().unwrap();
//! handle.chardev_add("con", ChardevBackend::new(Socket::unix_server(console_path))).await?;
//! handle.listen(QmpAddr::unix(dir.path().join("qmp.sock"))).await?;
//! let mut events = handle.events(64).await?;
//!
//! // The device model: it answers each byte a client sends with "ok".
//! let (mut rx, mut tx, mut chardev_events) = handle.attach("con").await?.split();
//! let mut client = tokio::net::UnixStream::connect(&console).await?;
//! assert_eq!(chardev_events.next().await, Some(ChardevEvent::Opened));
//! client.write_all(b"x").await?;
//! let mut byte = [0u8; 1];
//! rx.read_exact(&mut byte).await?; // AsyncRead
//! tx.write_all(b"ok").await?; // AsyncWrite
//! let mut reply = [0u8; 2];
//! client.read_exact(&mut reply).await?;
//! assert_eq!(&reply, b"ok");
//!
//! handle.quit().await?; // QEMU's SHUTDOWN event, then the system stops
//! assert!(matches!(events.next().await, Some(Ok(e)) if matches!(e.event, Event::Shutdown { .. })));
//! handle.wait().await;
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
//!
//! # The public face
//! - the root: [`Handle`] (a running system, a typed method per command),
//!   [`Config`] (what a system starts with: everything the daemon's command
//!   line says), [`QmpAddr`] (QMP listeners), [`Limits`] (every bound),
//!   [`CommandLine`] (QEMU's options read into a [`Config`]);
//! - [`backends`]: the options of each backend kind, and socket addresses;
//! - [`commands`]: one type per command ([`commands::Request`]) with its
//!   arguments and result types, for [`Handle::run`];
//! - [`frontend`]: frontends as byte streams (`AsyncRead`/`AsyncWrite`,
//!   `Stream`/`Sink`) with their events and controls;
//! - [`events`]: the typed events and the bounded event stream;
//! - [`error`]: the one error type, whose text is QEMU's.
//!
//! # Inside
//! From the wire down (a module uses only the ones below it):
//! - `cli`, `runtime`: the command line, and starting a system;
//! - `qmp`: QMP's framing, request checks against the served schema, the
//!   protocol's own commands, the bounded output queue, sessions (over a
//!   socket, or over a frontend for a monitor on a chardev) and listeners;
//! - `commands`: one file per command (its type, its QMP form, what it does,
//!   its typed method), and the table QMP dispatches by;
//! - `api`: the executor every caller shares, and frontends;
//! - `frontends`: the built-in devices (`echo`, `bridge`, `port`);
//! - `actors`: the supervisor (a thin shell that runs commands' decisions
//!   against its tables), one actor per chardev, the arbiter pool;
//! - `backends`: one file per QEMU backend kind, and the table of kinds;
//! - `registry`: pure tables, each tested alone (ids and references,
//!   monitors, QEMU's input core, devices, operations held during a change,
//!   the event bus);
//! - `chardev`: the core every kind plugs into (ports, the `Backend` trait,
//!   transports, descriptor I/O, the log file);
//! - `json`, `options`, `net`, `objects`, `error`, `events`: QEMU's JSON
//!   dialect, its option syntax, socket addresses, TLS and authorization
//!   objects, errors with QEMU's texts, typed events.
//!
//! A QMP command travels: socket bytes → the framer → the request's shape
//! checks → the schema's argument checks → the table line of the command →
//! its type (`from_qmp`) → its run on the executor (a call in the
//! supervisor's context where it changes the tables) → its typed output →
//! QMP's rendering → the session's output queue. A byte from a frontend:
//! its writer → its port's queue → the chardev actor's driver → the backend
//! (partial accept) → the log; a byte from outside: the backend → every
//! port, as much as they have room for → the frontend's reader.
#![deny(missing_docs)]

mod actors;
mod api;
pub mod backends;
mod chardev;
mod cli;
pub mod commands;
mod config;
pub mod error;
pub mod events;
mod frontends;
mod json;
mod limits;
mod net;
mod objects;
mod options;
mod os_error;
mod qmp;
mod registry;
mod runtime;
mod stats;
#[cfg(feature = "web")]
mod web;

pub use cli::{CommandLine, CommandLineReport};
pub use limits::Limits;
pub use qmp::listener::QmpAddr;
pub use runtime::{spawn, ChardevSpec, Config, ConfigItem, Handle};
#[cfg(feature = "web")]
pub use web::{url as web_url, WebConfig};

/// Frontends: what sits on a chardev as QEMU's guest devices do. See
/// [`Frontend`](crate::frontend::Frontend) for the byte-stream contract (backpressure both ways, events
/// beside the data, flush once the chardev has the bytes).
pub mod frontend {
    pub use crate::api::frontend::{Frontend, FrontendControl, FrontendEvents, FrontendReader, FrontendWriter};
    pub use crate::chardev::port::{ChardevEvent, FrontendEvent, Overflow, PortConfig, INPUT_BYTES, OUTPUT_BYTES};
    pub use crate::chardev::{CharIoctl, Parity, SerialParams};
}

/// Internals that the tests and benches of this repository exercise
/// directly (codecs, parsers, device models, the served schema). Not part
/// of the API: no stability, no documentation promises.
#[doc(hidden)]
pub mod internals {
    #![allow(missing_docs)]
    #[cfg(feature = "braille")]
    pub mod braille {
        pub use crate::backends::braille::*;
    }
    #[cfg(feature = "braille")]
    pub mod brlapi {
        pub use crate::backends::brlapi::*;
    }
    pub mod msmouse {
        pub use crate::backends::msmouse::*;
    }
    pub mod mux {
        pub use crate::backends::mux::*;
    }
    pub mod pty {
        pub use crate::backends::pty::*;
    }
    pub mod ring {
        pub use crate::backends::ring::*;
    }
    pub mod ringbuf {
        pub use crate::backends::ringbuf::*;
    }
    pub mod serial {
        pub use crate::backends::serial::*;
    }
    pub mod testdev {
        pub use crate::backends::testdev::*;
    }
    pub mod wctablet {
        pub use crate::backends::wctablet::*;
    }
    pub mod vc {
        pub use crate::backends::vc::Terminal;
    }
    pub use crate::backends::socket::{dn, telnet, websocket};
    pub mod config {
        pub use crate::config::*;
    }
    pub mod json {
        pub use crate::json::*;
    }
    pub mod options {
        pub use crate::options::*;
    }
    pub mod port {
        pub use crate::chardev::port::*;
    }
    pub mod schema {
        pub use crate::qmp::schema::*;
    }
    pub mod request {
        pub use crate::qmp::request::*;
    }
    pub mod commands {
        pub use crate::commands::parse_only;
    }
}
