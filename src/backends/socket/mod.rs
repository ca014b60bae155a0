//! `socket`: a stream socket over TCP, unix, vsock or a passed descriptor;
//! a server that accepts one client at a time (the next waits in the
//! backlog), or a client that connects (and with `reconnect-ms`, connects
//! again after a failure or a drop). On a connection, in this order: TCP
//! options, TLS (`tls-creds`, with `tls-authz` checking the client's
//! certificate), the websocket handshake (server), the telnet or tn3270
//! negotiation (server); only then OPENED. CLOSED when the peer goes.
//!
//! As in QEMU 10.0.2: QMP defaults (server on, wait off) and command-line
//! defaults (server off, wait on for a server); validation in QEMU's order
//! and words; `filename` strings before and after a connection; output while
//! no client is connected is dropped (QEMU's write fails with EIO). Better:
//! a unix path that is not a socket, or where a live server answers, is
//! never taken over; a handshake that does not finish within
//! the handshake timeout (`Limits::handshake_timeout`) is dropped; a peer that goes away is noticed
//! even while no frontend reads.
//!
//! Files: [`server`] and [`client`] are the two transports; [`link`] builds
//! a connection's layers; [`telnet`], [`websocket`] and [`dn`] are I/O-free
//! codecs.
use super::{BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::transport::{LinkBackend, Transport};
use crate::error::BackendError;
use crate::net::{self, Fds, InheritedFds, NoFds, SocketAddressLegacy};
use crate::objects::{Endpoint, Object, Objects, TlsCreds};
use crate::options::Opts;
use crate::registry::{KindInfo, Resource};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub mod client;
pub mod console;
pub mod dn;
pub mod link;
pub mod server;
pub mod telnet;
pub mod websocket;

/// The `socket` kind.
pub(crate) const KIND: Kind = Kind {
    name: "socket",
    aliases: &[],
    from_qmp: super::from_data::<Socket>,
    from_cli,
    syntax: "-chardev socket,id=ID,host=HOST,port=PORT|path=PATH|fd=N[,server=on|off][,wait=on|off][,nodelay=on]\n\
             \x20                [,telnet=on][,tn3270=on][,websocket=on][,reconnect-ms=MS][,to=PORT][,ipv4=on][,ipv6=on]\n\
             \x20                [,abstract=on][,tight=off][,tls-creds=ID][,tls-authz=ID]",
    facts: Facts { oob: true, ..Facts::NONE },
};

/// `socket` options (`ChardevSocket`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Socket {
    /// Where to listen or connect.
    pub addr: SocketAddressLegacy,
    /// A `tls-creds-*` object's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_creds: Option<String>,
    /// An `authz-*` object's id, checked against the client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_authz: Option<String>,
    /// Listen (the QMP default) or connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<bool>,
    /// A server's creation waits for its first client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// Disable Nagle's algorithm (`TCP_NODELAY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodelay: Option<bool>,
    /// Telnet negotiation (server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telnet: Option<bool>,
    /// TN3270 negotiation (server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tn3270: Option<bool>,
    /// Speak the websocket protocol (servers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<bool>,
    /// Reconnect delay in seconds (deprecated; the seed's member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect: Option<i64>,
    /// Reconnect delay in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnect_ms: Option<i64>,
    /// Console mode (chardevd's extension; a listening socket only):
    /// many clients, history, queues, input roles, client events.
    #[serde(flatten)]
    pub console: SocketConsole,
    /// Where `fd` addresses come from.
    #[serde(skip)]
    pub fds: Option<Fds>,
}

/// A listening socket's console options (`__org.chardevd_max-clients`,
/// ...). Giving any of them puts the socket in console mode
/// (README, "Console server"); with none it behaves exactly as QEMU's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketConsole {
    /// Clients served at once (1 to 1024; default 1,
    /// the next one waits in the backlog as in QEMU).
    #[serde(
        default,
        rename = "__org.chardevd_max-clients",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_clients: Option<i64>,
    /// Bytes of output kept and replayed to each new client (default 0).
    #[serde(default, rename = "__org.chardevd_history", skip_serializing_if = "Option::is_none")]
    pub history: Option<i64>,
    /// Bytes of live output queued per client (default 1 MiB).
    #[serde(
        default,
        rename = "__org.chardevd_client-queue",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_queue: Option<i64>,
    /// What a full client queue does (default `block` with one client,
    /// `drop` with more).
    #[serde(default, rename = "__org.chardevd_overflow", skip_serializing_if = "Option::is_none")]
    pub overflow: Option<console::ConsoleOverflow>,
    /// A client that lost bytes sees `[chardevd: N bytes lost]` where they
    /// were (default on).
    #[serde(
        default,
        rename = "__org.chardevd_overflow-marker",
        skip_serializing_if = "Option::is_none"
    )]
    pub overflow_marker: Option<bool>,
    /// Who may type (default `all`).
    #[serde(default, rename = "__org.chardevd_input", skip_serializing_if = "Option::is_none")]
    pub input: Option<console::ConsoleInput>,
    /// Raise `__org.chardevd_CLIENT_CONNECTED` and `_DISCONNECTED` (default off).
    #[serde(
        default,
        rename = "__org.chardevd_client-events",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_events: Option<bool>,
}

impl SocketConsole {
    /// Whether any console option is given.
    pub fn is_set(&self) -> bool {
        *self != SocketConsole::default()
    }

    /// The options checked, with their defaults.
    pub fn options(&self) -> Result<console::ConsoleOptions, BackendError> {
        let max = console::MAX_BUFFER as i64;
        let ranged = |name: &str, v: Option<i64>, lo: i64, hi: i64, default: i64| match v {
            Some(n) if n < lo || n > hi => Err(BackendError::Invalid(format!(
                "__org.chardevd_{name} must be between {lo} and {hi}, not {n}"
            ))),
            Some(n) => Ok(n),
            None => Ok(default),
        };
        let max_clients = ranged("max-clients", self.max_clients, 1, i64::from(console::MAX_CLIENTS), 1)?;
        let history = ranged("history", self.history, 0, max, 0)?;
        let client_queue = ranged(
            "client-queue",
            self.client_queue,
            1,
            max,
            console::DEFAULT_CLIENT_QUEUE as i64,
        )?;
        Ok(console::ConsoleOptions {
            max_clients: max_clients as u32,
            history: history as usize,
            client_queue: client_queue as usize,
            overflow: self.overflow.unwrap_or(if max_clients > 1 {
                console::ConsoleOverflow::Drop
            } else {
                console::ConsoleOverflow::Block
            }),
            overflow_marker: self.overflow_marker.unwrap_or(true),
            input: self.input.unwrap_or(console::ConsoleInput::All),
            client_events: self.client_events.unwrap_or(false),
        })
    }
}

impl Socket {
    /// A QMP-style socket on `addr` with every option at its default
    /// (a server, not waiting).
    pub fn new(addr: SocketAddressLegacy) -> Socket {
        Socket {
            addr,
            tls_creds: None,
            tls_authz: None,
            server: None,
            wait: None,
            nodelay: None,
            telnet: None,
            tn3270: None,
            websocket: None,
            reconnect: None,
            reconnect_ms: None,
            console: SocketConsole::default(),
            fds: None,
        }
    }

    /// The same socket in console mode with these options.
    pub fn with_console(self, console: SocketConsole) -> Socket {
        Socket { console, ..self }
    }

    /// A server listening on unix socket `path` (not waiting for a client).
    pub fn unix_server(path: impl Into<String>) -> Socket {
        Socket::new(SocketAddressLegacy::unix(path))
    }

    /// A server listening on TCP `host:port` (port 0: any free port; the
    /// chardev's `filename` shows the one taken).
    pub fn tcp_server(host: impl Into<String>, port: u16) -> Socket {
        Socket::new(SocketAddressLegacy::inet(host, port))
    }

    /// A client of unix socket `path`.
    pub fn unix_client(path: impl Into<String>) -> Socket {
        Socket {
            server: Some(false),
            ..Socket::unix_server(path)
        }
    }

    /// A client of TCP `host:port`.
    pub fn tcp_client(host: impl Into<String>, port: u16) -> Socket {
        Socket {
            server: Some(false),
            ..Socket::tcp_server(host, port)
        }
    }

    fn is_server(&self) -> bool {
        self.server.unwrap_or(true)
    }

    /// QEMU's word for the protocol in filenames.
    fn proto(&self) -> &'static str {
        if self.telnet == Some(true) {
            "telnet"
        } else if self.websocket == Some(true) {
            "websocket"
        } else {
            "tcp"
        }
    }

    /// QEMU's checks, in QEMU's order; returns the TLS credentials.
    fn validate(&self, objects: &Objects) -> Result<Option<Arc<TlsCreds>>, BackendError> {
        let server = self.is_server();
        let creds = match &self.tls_creds {
            None => None,
            Some(id) => match objects.get(id) {
                None => return Err(BackendError::NoTlsCreds(id.clone())),
                Some(Object::TlsCreds(c)) => {
                    let want = if server { Endpoint::Server } else { Endpoint::Client };
                    if c.endpoint != want {
                        return Err(BackendError::TlsEndpoint(if server { "server" } else { "client" }));
                    }
                    Some(c)
                }
                Some(_) => return Err(BackendError::NotTlsCreds(id.clone())),
            },
        };
        let tls = self.tls_creds.is_some();
        match &self.addr {
            SocketAddressLegacy::Fd(_) => {
                if self.reconnect.is_some() {
                    return Err(BackendError::Refused(
                        "'reconnect' option is incompatible with 'fd' address type",
                    ));
                }
                if tls && self.server != Some(true) {
                    return Err(BackendError::Refused(
                        "'tls_creds' option is incompatible with 'fd' address type as client",
                    ));
                }
            }
            SocketAddressLegacy::Unix(_) if tls => {
                return Err(BackendError::Refused(
                    "'tls_creds' option is incompatible with 'unix' address type",
                ))
            }
            SocketAddressLegacy::Vsock(_) if tls => {
                return Err(BackendError::Refused(
                    "'tls_creds' option is incompatible with 'vsock' address type",
                ))
            }
            _ => {}
        }
        if self.tls_authz.is_some() && !tls {
            return Err(BackendError::Refused("'tls_authz' option requires 'tls_creds' option"));
        }
        if server {
            if self.reconnect.is_some() {
                return Err(BackendError::Refused(
                    "'reconnect' option is incompatible with socket in server listen mode",
                ));
            }
        } else {
            if self.websocket == Some(true) {
                return Err(BackendError::Refused("Websocket client is not implemented"));
            }
            if self.wait.is_some() {
                return Err(BackendError::Refused(
                    "'wait' option is incompatible with socket in client connect mode",
                ));
            }
        }
        if self.reconnect.is_some() && self.reconnect_ms.is_some() {
            return Err(BackendError::Refused(
                "'reconnect' and 'reconnect-ms' are mutually exclusive",
            ));
        }
        if self.console.is_set() {
            if !server {
                return Err(BackendError::Refused(
                    "the __org.chardevd_ console options apply to a listening socket only",
                ));
            }
            self.console.options()?;
        }
        if let SocketAddressLegacy::Unix(u) = &self.addr {
            let access = net::UnixAccess::of(u)?;
            if !server && !access.is_default() {
                return Err(BackendError::Refused(
                    "__org.chardevd_mode, _owner and _group apply to a listening socket only",
                ));
            }
        }
        Ok(creds)
    }

    /// A client's reconnect delay, if it reconnects.
    fn reconnect_delay(&self) -> Option<Duration> {
        let ms = self
            .reconnect_ms
            .or(self.reconnect.map(|s| s.saturating_mul(1000)))
            .filter(|ms| *ms > 0)?;
        Some(Duration::from_millis(ms as u64))
    }
}

impl BackendConfig for Socket {
    fn kind(&self) -> &'static str {
        "socket"
    }

    fn info(&self) -> KindInfo {
        let resources = match (&self.addr, self.is_server()) {
            (SocketAddressLegacy::Unix(u), true) if !u.path.is_empty() => vec![Resource {
                key: format!("unix:{}", u.path),
                exclusive: true,
            }],
            (SocketAddressLegacy::Inet(a), true) if !a.port.is_empty() && a.port != "0" => vec![Resource {
                key: format!("tcp:{}:{}", a.host, a.port),
                exclusive: true,
            }],
            _ => Vec::new(),
        };
        KindInfo {
            resources,
            yank: true,
            ..KindInfo::plain("socket")
        }
    }

    fn set_fds(&mut self, fds: Fds) {
        self.fds = Some(fds);
    }

    fn conflict(&self, _resource: &Resource) -> BackendError {
        match &self.addr {
            SocketAddressLegacy::Unix(u) => BackendError::UnixInUse(u.path.clone()),
            _ => BackendError::NoPort(crate::error::OsError::from_errno(
                rustix::io::Errno::ADDRINUSE.raw_os_error(),
            )),
        }
    }

    fn open(self: Box<Self>, cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            let creds = self.validate(&cx.objects)?;
            if let (Some(authz), Some(c)) = (&self.tls_authz, &creds) {
                if !c.verify_peer {
                    // As QEMU: no client certificate is asked for, so there
                    // is nothing to check; say so instead of keeping quiet.
                    tracing::warn!(
                        chardev = %cx.id,
                        %authz,
                        "tls-authz is not checked: its tls-creds have verify-peer=off (any client is let in)"
                    );
                }
            }
            let fds: Fds = self.fds.clone().unwrap_or_else(|| Arc::new(NoFds));
            let server = self.is_server();
            let setup = Rc::new(link::Setup {
                id: cx.id.clone(),
                proto: self.proto(),
                server,
                nodelay: self.nodelay == Some(true),
                telnet: match (self.telnet == Some(true) || self.tn3270 == Some(true), server) {
                    (true, true) => Some(self.tn3270 == Some(true)),
                    _ => None,
                },
                websocket: server && self.websocket == Some(true),
                handshake_timeout: cx.host.handshake_timeout(),
                tls: creds.map(|c| link::Tls {
                    creds: c,
                    authz: self.tls_authz.clone(),
                    objects: cx.objects.clone(),
                    host: match &self.addr {
                        SocketAddressLegacy::Inet(a) => a.host.clone(),
                        _ => String::new(),
                    },
                }),
            });
            if server {
                // A console takes its clients as fast as they come: its
                // backlog holds as many as it serves (QEMU's is 1).
                let console = match self.console.is_set() {
                    true => Some(self.console.options()?),
                    false => None,
                };
                let backlog = console.as_ref().map_or(net::BACKLOG, |c| c.max_clients as i32);
                let listening = net::listen(&self.addr, &*fds, backlog).await?;
                let mut t = server::Server::new(listening, setup)?.with_backlog(backlog);
                if self.wait == Some(true) {
                    // QEMU's info line; the daemon prints it whatever the log level.
                    tracing::info!(
                        target: "chardevd::notice",
                        chardev = %cx.id,
                        "info: chardevd waiting for connection on: {}",
                        t.idle_filename()
                    );
                    t.accept_first().await;
                }
                if let Some(opts) = console {
                    return Ok(Opened::closed(console::Console::new(
                        cx.id.clone(),
                        t,
                        opts,
                        cx.host.clone(),
                    )));
                }
                Ok(Opened::closed(LinkBackend::idle(t)))
            } else {
                let t = match self.reconnect_delay() {
                    Some(delay) => client::Client::reconnecting(self.addr.clone(), fds, setup, delay),
                    None => {
                        let fd = net::connect(&self.addr, &*fds).await?;
                        client::Client::connected(self.addr.clone(), fd, setup)
                    }
                };
                Ok(Opened::closed(LinkBackend::idle(t)))
            }
        })
    }
}

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    // Short-form booleans (`server`, `nowait`) arrive as `server=on`,
    // `wait=off` (crate::config expands them, as QEMU does).
    let flag = |opts: &mut Opts, key: &str| opts.take_bool(key);
    let path = opts.take("path");
    let host = opts.take("host");
    let port = opts.take("port");
    let fd = opts.take("fd");
    let server = flag(opts, "server")?.unwrap_or(false);
    let wait = flag(opts, "wait")?;
    let nodelay = flag(opts, "nodelay")?;
    let delay = flag(opts, "delay")?;
    if nodelay.is_some() && delay.is_some() {
        return Err("'delay' and 'nodelay' are mutually exclusive".into());
    }
    let number = |opts: &mut Opts, key: &str| -> Result<Option<i64>, String> {
        opts.take(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("Parameter '{key}' expects a number"))
            })
            .transpose()
    };
    let to = number(opts, "to")?;
    let reconnect = number(opts, "reconnect")?;
    let reconnect_ms = number(opts, "reconnect-ms")?;
    let ipv4 = flag(opts, "ipv4")?;
    let ipv6 = flag(opts, "ipv6")?;
    let telnet = flag(opts, "telnet")?;
    let tn3270 = flag(opts, "tn3270")?;
    let websocket = flag(opts, "websocket")?;
    let is_abstract = opts.take_bool("abstract")?;
    let tight = opts.take_bool("tight")?;
    let tls_creds = opts.take("tls-creds");
    let tls_authz = opts.take("tls-authz");
    let console = console_from_cli(opts)?;
    let given = [path.is_some(), host.is_some(), fd.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    let has_port = port.is_some();
    if given > 1 {
        return Err("None or one of 'path', 'fd' or 'host' option required.".into());
    }
    let addr = if let Some(path) = path {
        SocketAddressLegacy::Unix(net::UnixSocketAddress {
            path,
            is_abstract,
            tight,
            mode: opts.take(net::MODE_KEY),
            owner: opts.take(net::OWNER_KEY),
            group: opts.take(net::GROUP_KEY),
        })
    } else if let Some(host) = host {
        let port = port.ok_or("chardev: socket: no port given")?;
        SocketAddressLegacy::Inet(net::InetSocketAddress {
            to,
            ipv4,
            ipv6,
            ..net::InetSocketAddress::new(host, port)
        })
    } else {
        SocketAddressLegacy::Fd(net::FdSocketAddress {
            str: fd.unwrap_or_default(),
        })
    };
    if matches!(&addr, SocketAddressLegacy::Fd(f) if f.str.is_empty()) && !has_port && !server {
        return Err("Unable to parse FD number".into());
    }
    Ok(Box::new(Socket {
        addr,
        tls_creds,
        tls_authz,
        server: Some(server),
        // On the command line a server waits for its client unless told not to.
        wait: if server { Some(wait.unwrap_or(true)) } else { wait },
        nodelay: nodelay.or(delay.map(|d| !d)),
        telnet,
        tn3270,
        websocket,
        reconnect,
        reconnect_ms,
        console,
        fds: Some(Arc::new(InheritedFds)),
    }))
}

/// The console options on `-chardev` (sizes take suffixes: `history=64K`).
fn console_from_cli(opts: &mut Opts) -> Result<SocketConsole, String> {
    let size = |opts: &mut Opts, key: &str| -> Result<Option<i64>, String> {
        opts.take(key).map(|v| crate::options::parse_size(key, &v)).transpose()
    };
    let number = |opts: &mut Opts, key: &str| -> Result<Option<i64>, String> {
        opts.take(key)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("Parameter '{key}' expects a number"))
            })
            .transpose()
    };
    let word = |opts: &mut Opts, key: &str, values: &str| -> Result<Option<String>, String> {
        match opts.take(key) {
            Some(v) if values.split('|').any(|w| w == v) => Ok(Some(v)),
            Some(v) => Err(format!("Parameter '{key}' does not accept value '{v}'")),
            None => Ok(None),
        }
    };
    Ok(SocketConsole {
        max_clients: number(opts, console::MAX_CLIENTS_KEY)?,
        history: size(opts, console::HISTORY_KEY)?,
        client_queue: size(opts, console::CLIENT_QUEUE_KEY)?,
        overflow: word(opts, console::OVERFLOW_KEY, "block|drop|disconnect")?.map(|w| match w.as_str() {
            "block" => console::ConsoleOverflow::Block,
            "drop" => console::ConsoleOverflow::Drop,
            _ => console::ConsoleOverflow::Disconnect,
        }),
        overflow_marker: opts.take_bool(console::OVERFLOW_MARKER_KEY)?,
        input: word(opts, console::INPUT_KEY, "all|first|none")?.map(|w| match w.as_str() {
            "all" => console::ConsoleInput::All,
            "first" => console::ConsoleInput::First,
            _ => console::ConsoleInput::None,
        }),
        client_events: opts.take_bool(console::CLIENT_EVENTS_KEY)?,
    })
}
