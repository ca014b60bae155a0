//! Sockets as QEMU's chardevs and monitors use them: addresses as QMP spells
//! them (`SocketAddressLegacy` of QEMU's `sockets.json`), name resolution,
//! listening (backlog 1: one client at a time, the next waits in the
//! backlog), connecting, descriptors passed by name or number, and QEMU's
//! `filename` strings. Shared by the `socket` and `udp` kinds and the QMP
//! listeners, so `-qmp` and `-chardev socket` accept and refuse alike.
//!
//! Unix socket paths are safer than QEMU's: an existing path that is not a
//! socket is never unlinked, and a socket where a live server answers is
//! never taken over (QEMU unlinks both); only a stale socket is replaced.
use crate::chardev::fdio::c_path;
use crate::chardev::fdio::FdIo;
use crate::error::{BackendError, OsError};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{AddressFamily, SocketAddrAny, SocketAddrUnix, SocketFlags, SocketType};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::FileTypeExt;
use std::sync::Arc;
use std::task::Poll;

/// `SocketAddressLegacy`: `{"type": "inet", "data": {...}}` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub enum SocketAddressLegacy {
    /// TCP or UDP over IP.
    Inet(InetSocketAddress),
    /// Unix domain socket.
    Unix(UnixSocketAddress),
    /// AF_VSOCK (a VM's host-guest socket).
    Vsock(VsockSocketAddress),
    /// A file descriptor passed with `getfd`, or a number.
    Fd(FdSocketAddress),
}

impl SocketAddressLegacy {
    /// A unix socket path.
    pub fn unix(path: impl Into<String>) -> SocketAddressLegacy {
        SocketAddressLegacy::Unix(UnixSocketAddress::new(path))
    }

    /// TCP (or UDP) `host:port`; `port` 0 picks a free port when listening.
    pub fn inet(host: impl Into<String>, port: u16) -> SocketAddressLegacy {
        SocketAddressLegacy::Inet(InetSocketAddress::new(host, port.to_string()))
    }
}

/// A TCP or UDP address (QEMU's `InetSocketAddress`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InetSocketAddress {
    /// Host name or address.
    pub host: String,
    /// Port number or service name.
    pub port: String,
    /// Numeric host only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<bool>,
    /// Try ports up to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    /// Use IPv4 (`false`: IPv6 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<bool>,
    /// Use IPv6 (`false`: IPv4 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    /// Enable TCP keep-alive (`SO_KEEPALIVE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<bool>,
    /// Use multipath TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mptcp: Option<bool>,
}

impl InetSocketAddress {
    /// `host:port` with every option at its default.
    pub fn new(host: impl Into<String>, port: impl Into<String>) -> Self {
        InetSocketAddress {
            host: host.into(),
            port: port.into(),
            ..Default::default()
        }
    }
}

/// A unix domain socket address (QEMU's `UnixSocketAddress`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixSocketAddress {
    /// The socket's path (or name, when abstract).
    pub path: String,
    /// Linux abstract namespace.
    #[serde(default, rename = "abstract", skip_serializing_if = "Option::is_none")]
    pub is_abstract: Option<bool>,
    /// Tight abstract address length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tight: Option<bool>,
    /// A listening socket's file mode, octal (`"0660"`); chardevd's
    /// extension, applied before the socket takes connections.
    #[serde(default, rename = "__org.chardevd_mode", skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// A listening socket's owner (a user name or number).
    #[serde(default, rename = "__org.chardevd_owner", skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A listening socket's group (a group name or number).
    #[serde(default, rename = "__org.chardevd_group", skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// `-chardev` and `-qmp` keys of [`UnixAccess`].
pub const MODE_KEY: &str = "__org.chardevd_mode";
/// See [`MODE_KEY`].
pub const OWNER_KEY: &str = "__org.chardevd_owner";
/// See [`MODE_KEY`].
pub const GROUP_KEY: &str = "__org.chardevd_group";

/// Who may connect to a unix server: its file's mode, owner and group,
/// resolved (`__org.chardevd_mode`, `__org.chardevd_owner`,
/// `__org.chardevd_group`). Applied between bind and listen, so no client
/// can connect before they hold (a connect meanwhile is refused).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnixAccess {
    /// The file mode (permission bits).
    pub mode: Option<u32>,
    /// The owner's uid.
    pub uid: Option<u32>,
    /// The group's gid.
    pub gid: Option<u32>,
}

impl UnixAccess {
    /// Only the owner may connect (mode 0600).
    pub const PRIVATE: UnixAccess = UnixAccess {
        mode: Some(0o600),
        uid: None,
        gid: None,
    };

    /// Resolve an address's options, in their order: mode, owner, group.
    pub fn of(a: &UnixSocketAddress) -> Result<UnixAccess, BackendError> {
        Ok(UnixAccess {
            mode: a.mode.as_deref().map(parse_mode).transpose()?,
            uid: a
                .owner
                .as_deref()
                .map(|o| lookup_id(o, "/etc/passwd", "owner", "user"))
                .transpose()?,
            gid: a
                .group
                .as_deref()
                .map(|g| lookup_id(g, "/etc/group", "group", "group"))
                .transpose()?,
        })
    }

    /// Nothing asked for (the umask and the daemon's ids decide, as in QEMU).
    pub fn is_default(&self) -> bool {
        *self == UnixAccess::default()
    }

    /// Set the owner, group and mode of the socket file at `path`.
    fn apply(&self, path: &std::ffi::OsStr) -> rustix::io::Result<()> {
        if self.uid.is_some() || self.gid.is_some() {
            rustix::fs::chown(
                path,
                self.uid.map(rustix::fs::Uid::from_raw),
                self.gid.map(rustix::fs::Gid::from_raw),
            )?;
        }
        if let Some(mode) = self.mode {
            rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(mode))?;
        }
        Ok(())
    }
}

/// An octal mode such as `0660` or `660` (at most `07777`).
pub fn parse_mode(s: &str) -> Result<u32, BackendError> {
    let bad = || {
        BackendError::UnixAccess(format!(
            "Parameter '__org.chardevd_mode' expects an octal mode such as \"0660\", not '{s}'"
        ))
    };
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    let m = u32::from_str_radix(s, 8).map_err(|_| bad())?;
    if m > 0o7777 {
        return Err(bad());
    }
    Ok(m)
}

/// A user or group by number or by name (as `/etc/passwd` or `/etc/group`
/// lists it).
fn lookup_id(s: &str, db: &str, key: &str, what: &str) -> Result<u32, BackendError> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| {
            BackendError::UnixAccess(format!(
                "Parameter '__org.chardevd_{key}': {what} id '{s}' is out of range"
            ))
        });
    }
    let table = std::fs::read_to_string(db).unwrap_or_default();
    table
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _password = f.next()?;
            let id = f.next()?;
            (name == s).then(|| id.parse().ok()).flatten()
        })
        .ok_or_else(|| BackendError::UnixAccess(format!("Parameter '__org.chardevd_{key}': no {what} '{s}'")))
}

impl UnixSocketAddress {
    /// A path in the file system (not abstract).
    pub fn new(path: impl Into<String>) -> Self {
        UnixSocketAddress {
            path: path.into(),
            ..Default::default()
        }
    }
}

/// An AF_VSOCK address (QEMU's `VsockSocketAddress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockSocketAddress {
    /// The context id (2: the host), as text.
    pub cid: String,
    /// The vsock port, as text.
    pub port: String,
}

/// A socket passed as a descriptor (QEMU's `FdSocketAddress`): a `getfd`
/// name or, on the command line, a number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdSocketAddress {
    /// Name given to `getfd`, or a number.
    pub str: String,
}

/// Where passed descriptors come from: names given with QMP's `getfd`, or
/// numbers inherited on the command line.
pub trait FdSource: Send + Sync + fmt::Debug {
    /// Take the descriptor `name` names (it is used up, whether what takes it
    /// succeeds or not, as in QEMU).
    fn take(&self, name: &str) -> Result<OwnedFd, BackendError>;
}

/// The command line's `fd=N`: a descriptor number the daemon inherited.
#[derive(Debug, Clone, Copy, Default)]
pub struct InheritedFds;

impl FdSource for InheritedFds {
    fn take(&self, name: &str) -> Result<OwnedFd, BackendError> {
        let n: i32 = name.parse().map_err(|_| BackendError::FdNumber(format!(" {name}")))?;
        if n < 0 {
            return Err(BackendError::FdNotSocket(name.to_owned()));
        }
        // SAFETY: the descriptor is only borrowed for the duplication below;
        // if `n` is not open, fcntl fails with EBADF and nothing is touched.
        let fd = unsafe { BorrowedFd::borrow_raw(n) };
        rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|_| BackendError::FdNotSocket(name.to_owned()))
    }
}

/// No descriptors to take.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFds;

impl FdSource for NoFds {
    fn take(&self, name: &str) -> Result<OwnedFd, BackendError> {
        Err(BackendError::FdNotFound(name.to_owned()))
    }
}

/// The length of `sun_path`.
const SUN_PATH: usize = 108;

/// A unix socket name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixName {
    /// The path (or the abstract name).
    pub path: String,
    /// Linux's abstract namespace.
    pub is_abstract: bool,
    /// Abstract names only: the address is as long as the name (not padded).
    pub tight: bool,
}

impl UnixName {
    fn of(a: &UnixSocketAddress) -> UnixName {
        UnixName {
            path: a.path.clone(),
            is_abstract: a.is_abstract.unwrap_or(false),
            tight: a.tight.unwrap_or(true),
        }
    }

    fn sockaddr(&self) -> Result<SocketAddrUnix, BackendError> {
        let too_long = || BackendError::UnixPathTooLong(self.path.clone());
        // QEMU's C string: U+0000 is `C0 80` (and counts two bytes).
        let path = c_path(&self.path);
        let bytes = path.as_bytes();
        if self.is_abstract {
            if bytes.len() >= SUN_PATH {
                return Err(too_long());
            }
            let mut name = bytes.to_vec();
            if !self.tight {
                name.resize(SUN_PATH - 1, 0);
            }
            SocketAddrUnix::new_abstract_name(&name).map_err(|_| too_long())
        } else {
            if bytes.len() > SUN_PATH {
                return Err(too_long());
            }
            SocketAddrUnix::new(&*path).map_err(|_| too_long())
        }
    }

    /// `unix:PATH[,abstract=on[,tight=on]]`
    fn describe(&self) -> String {
        let mut s = format!("unix:{}", self.path);
        if self.is_abstract {
            s.push_str(",abstract=on");
            if self.tight {
                s.push_str(",tight=on");
            }
        }
        s
    }
}

/// What a listener is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// An IP address and the real port.
    Inet(SocketAddr),
    /// A unix socket.
    Unix(UnixName),
    /// A vsock cid and port.
    Vsock {
        /// Context id.
        cid: u32,
        /// Port.
        port: u32,
    },
    /// A passed descriptor that is not listening (QEMU's `fd:` with no
    /// name on a server: it never accepts).
    Fd(String),
}

impl Local {
    /// QEMU's `qemu_chr_socket_address`: `PROTO:HOST:PORT`, `unix:PATH`,
    /// `vsock:CID:PORT`, `fd:NAME`, with `,server=on` for a listener (not
    /// vsock). IPv6 hosts are not bracketed here.
    pub fn describe(&self, proto: &str, server: bool) -> String {
        let srv = if server { ",server=on" } else { "" };
        match self {
            Local::Inet(a) => format!("{proto}:{}:{}{srv}", a.ip(), a.port()),
            Local::Unix(u) => format!("{}{srv}", u.describe()),
            Local::Vsock { cid, port } => format!("vsock:{cid}:{port}"),
            Local::Fd(name) => format!("fd:{name}{srv}"),
        }
    }
}

/// A client's target as QEMU's `filename` shows it while disconnected
/// (the address as given).
pub fn describe_target(addr: &SocketAddressLegacy, proto: &str) -> String {
    match addr {
        SocketAddressLegacy::Inet(a) => format!("{proto}:{}:{}", a.host, a.port),
        SocketAddressLegacy::Unix(u) => UnixName::of(u).describe(),
        SocketAddressLegacy::Vsock(v) => format!("vsock:{}:{}", v.cid, v.port),
        SocketAddressLegacy::Fd(f) => format!("fd:{}", f.str),
    }
}

/// QEMU's `qemu_chr_compute_filename` for a connected socket:
/// `PROTO:LHOST:LPORT[,server=on] <-> PHOST:PPORT` (IPv6 bracketed), or
/// `unix:PATH[,server=on]` (a client shows the peer's path), else `unknown`.
pub fn connected_filename(fd: BorrowedFd<'_>, proto: &str, server: bool) -> String {
    let srv = if server { ",server=on" } else { "" };
    let local = rustix::net::getsockname(fd).ok();
    let peer = rustix::net::getpeername(fd).ok().flatten();
    let ip = |a: &SocketAddr| match a {
        SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    };
    let Some(local) = local else {
        return "unknown".into();
    };
    match local.address_family() {
        AddressFamily::INET | AddressFamily::INET6 => {
            let l = SocketAddr::try_from(local).ok();
            let p = peer.and_then(|p| SocketAddr::try_from(p).ok());
            match (l, p) {
                (Some(l), Some(p)) => format!("{proto}:{}{srv} <-> {}", ip(&l), ip(&p)),
                _ => "unknown".into(),
            }
        }
        AddressFamily::UNIX => {
            let path = |a: SocketAddrAny| {
                SocketAddrUnix::try_from(a)
                    .ok()
                    .and_then(|u| u.path_bytes().map(|b| String::from_utf8_lossy(b).into_owned()))
                    .unwrap_or_default()
            };
            let mut p = path(local);
            if p.is_empty() && !server {
                p = peer.map(path).unwrap_or_default();
            }
            format!("unix:{p}{srv}")
        }
        _ => "unknown".into(),
    }
}

/// The text of a resolver error, as `gai_strerror` gives it.
fn gai_text(e: &io::Error) -> String {
    let s = e.to_string();
    s.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&s)
        .to_owned()
}

/// A port as getaddrinfo reads it: a number (wrapping at 65536 as glibc's
/// does), or "" for any.
fn parse_port(port: &str) -> Option<u16> {
    if port.is_empty() {
        return Some(0);
    }
    port.parse::<u64>().ok().map(|p| (p % 65536) as u16)
}

/// Resolve an inet address as QEMU's `inet_parse`/getaddrinfo do, IPv4
/// first. `passive`: an empty host is every interface (a listener).
pub async fn resolve(a: &InetSocketAddress, passive: bool) -> Result<Vec<SocketAddr>, BackendError> {
    let fail = |why: &str| BackendError::Resolve {
        host: a.host.clone(),
        port: a.port.clone(),
        why: why.to_owned(),
    };
    if a.ipv4 == Some(false) && a.ipv6 == Some(false) {
        return Err(BackendError::NoAddressFamily);
    }
    let numeric = a.numeric.unwrap_or(false);
    let Some(port) = parse_port(&a.port) else {
        return Err(fail(if numeric {
            "Name or service not known"
        } else {
            "Servname not supported for ai_socktype"
        }));
    };
    // QEMU's inet_ai_family_from_address.
    let (on4, on6) = (a.ipv4 == Some(true), a.ipv6 == Some(true));
    let (off4, off6) = (a.ipv4 == Some(false), a.ipv6 == Some(false));
    let (want4, want6) = if on4 && on6 {
        (!a.host.is_empty(), true)
    } else if on6 || off4 {
        (false, true)
    } else if on4 || off6 {
        (true, false)
    } else {
        (true, true)
    };
    let mut v: Vec<SocketAddr> = if a.host.is_empty() && passive {
        if want6 && !want4 {
            vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)]
        } else {
            vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)]
        }
    } else if let Ok(ip) = a.host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, port)]
    } else if numeric || a.host.contains('\0') {
        // A name QEMU passes with U+0000 (as C0 80) resolves to nothing.
        return Err(fail("Name or service not known"));
    } else {
        let host = if a.host.is_empty() {
            "localhost"
        } else {
            a.host.as_str()
        };
        tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| fail(&gai_text(&e)))?
            .collect()
    };
    v.retain(|s| (s.is_ipv4() && want4) || (s.is_ipv6() && want6));
    v.sort_by_key(SocketAddr::is_ipv6);
    v.dedup();
    if v.is_empty() {
        return Err(fail("Address family for hostname not supported"));
    }
    Ok(v)
}

/// A listening socket.
#[derive(Debug)]
pub struct Listening {
    /// The descriptor (non-blocking, listening), or None for an `fd:`
    /// address that never accepts.
    pub fd: Option<OwnedFd>,
    /// What it is bound to.
    pub local: Local,
    /// A unix socket file to remove when the listener goes.
    pub unlink: Option<String>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        if let Some(path) = self.unlink.take() {
            remove_socket_file(std::path::Path::new(&*c_path(&path)));
        }
    }
}

/// Remove a unix socket file, but only if it is a socket.
pub fn remove_socket_file(path: &std::path::Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(path);
    }
}

fn stream_socket(family: AddressFamily, protocol: Option<rustix::net::Protocol>) -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        protocol,
    )?)
}

/// IPPROTO_MPTCP.
fn mptcp() -> Option<rustix::net::Protocol> {
    rustix::net::Protocol::from_raw(std::num::NonZeroU32::new(262)?).into()
}

/// QEMU's listen backlog for chardevs: one waiting client.
pub const BACKLOG: i32 = 1;

/// Listen on `addr` as QEMU's `socket_listen` does.
pub async fn listen(addr: &SocketAddressLegacy, fds: &dyn FdSource, backlog: i32) -> Result<Listening, BackendError> {
    match addr {
        SocketAddressLegacy::Inet(a) => listen_inet(a, backlog).await,
        SocketAddressLegacy::Unix(u) => {
            let access = UnixAccess::of(u)?;
            listen_unix(&UnixName::of(u), access, backlog).await
        }
        SocketAddressLegacy::Vsock(v) => {
            let (cid, port) = vsock_parse(v)?;
            let fd = vsock_socket().map_err(|e| BackendError::SocketSetup(e.into()))?;
            vsock_bind(&fd, cid, port).map_err(BackendError::Bind)?;
            rustix::net::listen(&fd, backlog).map_err(|e| BackendError::Bind(e.into()))?;
            Ok(Listening {
                fd: Some(fd),
                local: Local::Vsock { cid, port },
                unlink: None,
            })
        }
        SocketAddressLegacy::Fd(f) if f.str.is_empty() => Ok(Listening {
            fd: None,
            local: Local::Fd(String::new()),
            unlink: None,
        }),
        SocketAddressLegacy::Fd(f) => {
            let fd = fds.take(&f.str)?;
            if rustix::net::sockopt::socket_type(&fd).is_err() {
                return Err(BackendError::FdNotSocket(f.str.clone()));
            }
            rustix::net::listen(&fd, backlog).map_err(|e| BackendError::FdListen(e.into()))?;
            set_nonblocking(&fd);
            let local = match rustix::net::getsockname(&fd) {
                Ok(l) if matches!(l.address_family(), AddressFamily::INET | AddressFamily::INET6) => {
                    match SocketAddr::try_from(l) {
                        Ok(a) => Local::Inet(a),
                        Err(_) => Local::Fd(f.str.clone()),
                    }
                }
                Ok(l) if l.address_family() == AddressFamily::UNIX => {
                    let path = SocketAddrUnix::try_from(l)
                        .ok()
                        .and_then(|u| u.path_bytes().map(|b| String::from_utf8_lossy(b).into_owned()))
                        .unwrap_or_default();
                    Local::Unix(UnixName {
                        path,
                        is_abstract: false,
                        tight: true,
                    })
                }
                _ => Local::Fd(f.str.clone()),
            };
            let unlink = match &local {
                Local::Unix(u) if !u.path.is_empty() => Some(u.path.clone()),
                _ => None,
            };
            Ok(Listening {
                fd: Some(fd),
                local,
                unlink,
            })
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    if let Ok(flags) = rustix::fs::fcntl_getfl(fd) {
        let _ = rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK);
    }
}

async fn listen_inet(a: &InetSocketAddress, backlog: i32) -> Result<Listening, BackendError> {
    let addrs = resolve(a, true).await?;
    let first = parse_port(&a.port).unwrap_or(0);
    let last = match a.to {
        Some(to) if to >= 0 => (to.min(65535)) as u16,
        _ => first,
    };
    let mut last_error = OsError::from_errno(rustix::io::Errno::ADDRINUSE.raw_os_error());
    if last < first {
        // QEMU's loop never runs; its errno is left over from elsewhere.
        return Err(BackendError::CreateSocket(OsError::from_errno(
            rustix::io::Errno::NOTCONN.raw_os_error(),
        )));
    }
    for sa in &addrs {
        for port in first..=last {
            let sa = SocketAddr::new(sa.ip(), port);
            let family = if sa.is_ipv4() {
                AddressFamily::INET
            } else {
                AddressFamily::INET6
            };
            let protocol = if a.mptcp.unwrap_or(false) { mptcp() } else { None };
            let fd = match stream_socket(family, protocol) {
                Ok(fd) => fd,
                Err(e) => {
                    last_error = e.into();
                    continue;
                }
            };
            let _ = rustix::net::sockopt::set_socket_reuseaddr(&fd, true);
            if sa.is_ipv6() {
                // Dual stack unless told IPv6 only.
                let _ = rustix::net::sockopt::set_ipv6_v6only(&fd, a.ipv4 == Some(false));
            }
            if let Err(e) = rustix::net::bind(&fd, &sa) {
                last_error = e.into();
                continue;
            }
            if let Err(e) = rustix::net::listen(&fd, backlog) {
                last_error = e.into();
                continue;
            }
            let bound = rustix::net::getsockname(&fd)
                .ok()
                .and_then(|l| SocketAddr::try_from(l).ok())
                .unwrap_or(sa);
            return Ok(Listening {
                fd: Some(fd),
                local: Local::Inet(bound),
                unlink: None,
            });
        }
    }
    Err(BackendError::NoPort(last_error))
}

/// Whether a server listens at a unix socket path. The kernel's table of
/// unix sockets answers without connecting (a probe connection would be
/// accepted by that server, ours or another's, as a client that at once
/// goes away); only a path it does not list as listening (a server in
/// another network namespace) is probed by connecting.
fn live_server(path: &str) -> bool {
    if let Ok(table) = std::fs::read_to_string("/proc/net/unix") {
        if listed_as_listening(&table, path) {
            return true;
        }
    }
    std::os::unix::net::UnixStream::connect(&*c_path(path)).is_ok()
}

/// Whether `/proc/net/unix` (`Num RefCount Protocol Flags Type St Inode
/// Path`) has a listening socket (flag `__SO_ACCEPTCON`, 0x10000) bound to
/// `path`.
fn listed_as_listening(table: &str, path: &str) -> bool {
    table.lines().skip(1).any(|line| {
        // Seven space-separated fields, then the path (which may hold spaces).
        let mut rest = line;
        let mut flags = None;
        for i in 0..7 {
            rest = rest.trim_start_matches(' ');
            let end = rest.find(' ').unwrap_or(rest.len());
            if i == 3 {
                flags = u32::from_str_radix(&rest[..end], 16).ok();
            }
            rest = &rest[end..];
        }
        let bound = rest.strip_prefix(' ').unwrap_or(rest);
        flags.is_some_and(|f| f & 0x10000 != 0) && bound == path
    })
}

/// Listen on a unix socket with `access` (see [`UnixAccess`]).
pub async fn listen_unix(name: &UnixName, access: UnixAccess, backlog: i32) -> Result<Listening, BackendError> {
    if name.is_abstract && !access.is_default() {
        return Err(BackendError::UnixAccess(
            "an abstract socket has no file: __org.chardevd_mode, _owner and _group need a path".into(),
        ));
    }
    let mut name = name.clone();
    if name.path.is_empty() && !name.is_abstract {
        // QEMU makes a fresh path for an empty one.
        name.path = temp_socket_path();
    }
    let sa = name.sockaddr()?;
    if !name.is_abstract {
        let os_path = c_path(&name.path).into_owned();
        if let Ok(meta) = std::fs::symlink_metadata(&os_path) {
            if meta.is_dir() {
                return Err(BackendError::UnlinkSocket {
                    path: name.path.clone(),
                    source: OsError::from_errno(rustix::io::Errno::ISDIR.raw_os_error()),
                });
            }
            if !meta.file_type().is_socket() {
                return Err(BackendError::UnixNotSocket(name.path.clone()));
            }
            let path = name.path.clone();
            let live = tokio::task::spawn_blocking(move || live_server(&path))
                .await
                .unwrap_or(true);
            if live {
                return Err(BackendError::UnixInUse(name.path.clone()));
            }
            // A stale socket: replace it.
            let _ = std::fs::remove_file(&os_path);
        }
    }
    let fd = stream_socket(AddressFamily::UNIX, None).map_err(|e| BackendError::SocketSetup(e.into()))?;
    rustix::net::bind(&fd, &sa).map_err(|e| BackendError::BindUnix {
        path: name.path.clone(),
        source: e.into(),
    })?;
    if !access.is_default() {
        // Before listen: a client connecting meanwhile is refused, never let in.
        let os_path = c_path(&name.path).into_owned();
        if let Err(e) = access.apply(&os_path) {
            remove_socket_file(std::path::Path::new(&os_path));
            return Err(BackendError::BindUnix {
                path: name.path.clone(),
                source: e.into(),
            });
        }
    }
    rustix::net::listen(&fd, backlog).map_err(|e| BackendError::BindUnix {
        path: name.path.clone(),
        source: e.into(),
    })?;
    let unlink = (!name.is_abstract).then(|| name.path.clone());
    Ok(Listening {
        fd: Some(fd),
        local: Local::Unix(name),
        unlink,
    })
}

/// Listen again where a released listener was bound (a failed
/// `chardev-change` takes its address back). `v6only` as the old one had it.
pub fn relisten(local: &Local, v6only: bool, backlog: i32) -> io::Result<OwnedFd> {
    let fd = match local {
        Local::Inet(sa) => {
            let family = if sa.is_ipv4() {
                AddressFamily::INET
            } else {
                AddressFamily::INET6
            };
            let fd = stream_socket(family, None)?;
            let _ = rustix::net::sockopt::set_socket_reuseaddr(&fd, true);
            if sa.is_ipv6() {
                let _ = rustix::net::sockopt::set_ipv6_v6only(&fd, v6only);
            }
            rustix::net::bind(&fd, sa)?;
            fd
        }
        Local::Unix(name) => {
            let sa = name
                .sockaddr()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
            if !name.is_abstract {
                remove_socket_file(std::path::Path::new(&*c_path(&name.path)));
            }
            let fd = stream_socket(AddressFamily::UNIX, None)?;
            rustix::net::bind(&fd, &sa)?;
            fd
        }
        Local::Vsock { cid, port } => {
            let fd = vsock_socket()?;
            rustix::net::bind(&fd, &VsockAddr::new(*cid, *port))?;
            fd
        }
        Local::Fd(_) => return Err(io::Error::new(io::ErrorKind::Unsupported, "a passed descriptor")),
    };
    rustix::net::listen(&fd, backlog)?;
    Ok(fd)
}

/// A fresh, unguessable path for a unix server given an empty one (as
/// QEMU's `qemu-socket-XXXXXX` under `$TMPDIR`): 64 random bits, and a name
/// nothing holds yet.
fn temp_socket_path() -> String {
    use std::hash::BuildHasher;
    let dir = std::env::var("TMPDIR").ok().filter(|d| !d.is_empty());
    let dir = dir.as_deref().unwrap_or("/tmp").trim_end_matches('/').to_owned();
    // A RandomState's keys come from the OS's random source.
    let random = std::collections::hash_map::RandomState::new();
    let mut n = 0u64;
    loop {
        let path = format!("{dir}/chardevd-socket-{:016x}", random.hash_one(n));
        if n >= 16 || std::fs::symlink_metadata(&path).is_err() {
            return path;
        }
        n += 1;
    }
}

/// Connect to `addr` as QEMU's `socket_connect` does; the descriptor is
/// non-blocking and connected.
pub async fn connect(addr: &SocketAddressLegacy, fds: &dyn FdSource) -> Result<OwnedFd, BackendError> {
    match addr {
        SocketAddressLegacy::Inet(a) => {
            let target = format!("{}:{}", a.host, a.port);
            let addrs = resolve(a, false).await?;
            let mut last = OsError::from_errno(rustix::io::Errno::CONNREFUSED.raw_os_error());
            for sa in addrs {
                let family = if sa.is_ipv4() {
                    AddressFamily::INET
                } else {
                    AddressFamily::INET6
                };
                let protocol = if a.mptcp.unwrap_or(false) { mptcp() } else { None };
                let fd = match stream_socket(family, protocol) {
                    Ok(fd) => fd,
                    Err(e) => {
                        last = e.into();
                        continue;
                    }
                };
                if a.keep_alive.unwrap_or(false) {
                    let _ = rustix::net::sockopt::set_socket_keepalive(&fd, true);
                }
                match finish_connect(fd, &sa).await {
                    Ok(fd) => return Ok(fd),
                    Err(e) => last = e,
                }
            }
            Err(BackendError::Connect { target, source: last })
        }
        SocketAddressLegacy::Unix(u) => {
            let name = UnixName::of(u);
            let sa = name.sockaddr()?;
            let fd = stream_socket(AddressFamily::UNIX, None).map_err(|e| BackendError::SocketSetup(e.into()))?;
            finish_connect(fd, &sa).await.map_err(|source| BackendError::Connect {
                target: name.path.clone(),
                source,
            })
        }
        SocketAddressLegacy::Vsock(v) => {
            let (cid, port) = vsock_parse(v)?;
            let fd = vsock_socket().map_err(|e| BackendError::SocketCreate {
                family: AddressFamily::VSOCK.as_raw() as i32,
                source: e.into(),
            })?;
            vsock_connect(fd, cid, port)
                .await
                .map_err(|source| BackendError::Connect {
                    target: format!("{cid}:{port}"),
                    source,
                })
        }
        SocketAddressLegacy::Fd(f) => {
            let fd = fds.take(&f.str)?;
            if rustix::net::sockopt::socket_type(&fd).is_err() {
                return Err(BackendError::FdNotSocket(f.str.clone()));
            }
            set_nonblocking(&fd);
            Ok(fd)
        }
    }
}

/// Start a non-blocking connect and wait for it.
async fn finish_connect(fd: OwnedFd, sa: &impl rustix::net::addr::SocketAddrArg) -> Result<OwnedFd, OsError> {
    match rustix::net::connect(&fd, sa) {
        Ok(()) => return Ok(fd),
        Err(rustix::io::Errno::INPROGRESS) | Err(rustix::io::Errno::AGAIN) => {}
        Err(e) => return Err(e.into()),
    }
    wait_connected(fd).await
}

async fn wait_connected(fd: OwnedFd) -> Result<OwnedFd, OsError> {
    // SAFETY: `fd` is an OwnedFd moved into the AsyncFd: it stays open and
    // refers to the same file description until the AsyncFd is dropped.
    let afd = match unsafe { tokio::io::unix::AsyncFd::register(fd) } {
        Ok(a) => a,
        Err(e) => return Err(e.into_parts().1.into()),
    };
    let _ = poll_fn(|cx| afd.poll_write_ready(cx).map(|r| r.map(|mut g| g.clear_ready()))).await;
    let fd = afd.into_inner();
    match rustix::net::sockopt::socket_error(&fd) {
        Ok(Ok(())) => Ok(fd),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(e.into()),
    }
}

fn vsock_parse(v: &VsockSocketAddress) -> Result<(u32, u32), BackendError> {
    let cid = v.cid.parse().map_err(|_| BackendError::VsockParse {
        what: "cid",
        value: v.cid.clone(),
    })?;
    let port = v.port.parse().map_err(|_| BackendError::VsockParse {
        what: "port",
        value: v.port.clone(),
    })?;
    Ok((cid, port))
}

fn vsock_socket() -> io::Result<OwnedFd> {
    stream_socket(AddressFamily::VSOCK, None)
}

/// `struct sockaddr_vm`.
#[repr(C)]
struct SockaddrVm {
    family: u16,
    reserved: u16,
    port: u32,
    cid: u32,
    flags: u8,
    zero: [u8; 3],
}

/// A vsock address for rustix's socket calls.
struct VsockAddr(SockaddrVm);

impl VsockAddr {
    fn new(cid: u32, port: u32) -> VsockAddr {
        VsockAddr(SockaddrVm {
            family: AddressFamily::VSOCK.as_raw(),
            reserved: 0,
            port,
            cid,
            flags: 0,
            zero: [0; 3],
        })
    }
}

// SAFETY: `with_sockaddr` passes a pointer to a properly initialised,
// `repr(C)` `sockaddr_vm` and its exact size, valid for the call.
unsafe impl rustix::net::addr::SocketAddrArg for VsockAddr {
    unsafe fn with_sockaddr<R>(
        &self,
        f: impl FnOnce(*const rustix::net::addr::SocketAddrOpaque, rustix::net::addr::SocketAddrLen) -> R,
    ) -> R {
        f(
            (&self.0 as *const SockaddrVm).cast(),
            std::mem::size_of::<SockaddrVm>() as rustix::net::addr::SocketAddrLen,
        )
    }
}

fn vsock_bind(fd: &OwnedFd, cid: u32, port: u32) -> Result<(), OsError> {
    rustix::net::bind(fd, &VsockAddr::new(cid, port)).map_err(OsError::from)
}

async fn vsock_connect(fd: OwnedFd, cid: u32, port: u32) -> Result<OwnedFd, OsError> {
    finish_connect(fd, &VsockAddr::new(cid, port)).await
}

/// Accept one client on a listening socket served by the reactor.
pub fn poll_accept(io: &FdIo, cx: &mut std::task::Context<'_>) -> Poll<io::Result<OwnedFd>> {
    match io {
        FdIo::Poll(afd, _) => loop {
            let mut guard = std::task::ready!(afd.poll_read_ready(cx))?;
            match guard.try_io(|fd| {
                rustix::net::accept_with(fd.get_ref().as_fd(), SocketFlags::CLOEXEC | SocketFlags::NONBLOCK)
                    .map_err(io::Error::from)
            }) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        },
        FdIo::File(..) => Poll::Pending,
    }
}

/// Shared, immutable descriptor sources.
pub type Fds = Arc<dyn FdSource>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_unix_table_tells_listeners_by_path() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                     000000005d5821fb: 00000003 00000000 00000000 0001 03   649\n\
                     00000000a67eaed4: 00000002 00000000 00010000 0001 01 77312 /tmp/a b.sock\n\
                     00000000a67eaed5: 00000003 00000000 00000000 0001 03 77313 /tmp/c.sock\n";
        assert!(listed_as_listening(table, "/tmp/a b.sock"));
        assert!(!listed_as_listening(table, "/tmp/c.sock"), "connected, not listening");
        assert!(!listed_as_listening(table, "/tmp/a"));
        assert!(!listed_as_listening(table, ""));
    }

    #[test]
    fn a_live_server_is_seen_without_connecting_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sock");
        let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        l.set_nonblocking(true).unwrap();
        assert!(live_server(path.to_str().unwrap()));
        assert!(l.accept().is_err(), "no probe connection reached the server");
    }
}

/// Where a listener of the daemon listens: QMP (`-qmp`) or the web
/// console (`--web`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QmpAddr {
    /// A unix socket path.
    Unix {
        /// The socket file.
        path: std::path::PathBuf,
        /// Its mode, owner and group, set before it takes connections (the
        /// default: the umask and the daemon's ids decide, as in QEMU).
        access: UnixAccess,
    },
    /// TCP `host:port`; an empty host means every interface, as in QEMU.
    Tcp {
        /// The address or name to listen on (empty: every interface).
        host: String,
        /// The port (0: any free one).
        port: u16,
    },
}

impl QmpAddr {
    /// Bind and listen here as a socket chardev would (the same errors; a
    /// unix path that is not a socket, or where a live server answers, is
    /// refused): the listening guard (it removes a unix socket's file when
    /// dropped) and the listening socket.
    pub(crate) async fn listen(&self, backlog: i32) -> Result<(Listening, OwnedFd), BackendError> {
        let mut listening = match self {
            QmpAddr::Unix { path, access } => {
                let name = UnixName {
                    path: path.to_string_lossy().into_owned(),
                    is_abstract: false,
                    tight: true,
                };
                listen_unix(&name, *access, backlog).await
            }
            QmpAddr::Tcp { host, port } => {
                listen(&SocketAddressLegacy::inet(host.clone(), *port), &NoFds, backlog).await
            }
        }?;
        match listening.fd.take() {
            Some(fd) => Ok((listening, fd)),
            None => Err(BackendError::SocketSetup(
                io::Error::other("no listening socket").into(),
            )),
        }
    }

    /// A unix socket at `path`, created with mode 0600 (only this user
    /// may connect: QMP has no authentication).
    pub fn unix(path: impl Into<std::path::PathBuf>) -> QmpAddr {
        QmpAddr::Unix {
            path: path.into(),
            access: UnixAccess::PRIVATE,
        }
    }

    /// TCP `host:port` (port 0: any free port; [`crate::Handle::listen`]
    /// returns the one bound). QMP has no authentication: keep `host` a
    /// loopback address unless the network is trusted.
    pub fn tcp(host: impl Into<String>, port: u16) -> QmpAddr {
        QmpAddr::Tcp {
            host: host.into(),
            port,
        }
    }
}

impl std::fmt::Display for QmpAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QmpAddr::Unix { path, .. } => write!(f, "unix:{}", path.display()),
            QmpAddr::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
        }
    }
}

/// A daemon listener (QMP, the web console) that serves: dropping it stops
/// accepting and removes a unix socket's file.
#[derive(Debug)]
pub(crate) struct Listener {
    /// The bound address (the real port for `:0`).
    pub addr: QmpAddr,
    /// The accept loop.
    pub task: tokio::task::JoinHandle<()>,
    /// The socket (its file goes with it).
    pub _listening: Listening,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}
