//! `udp`: a connected UDP socket. Each frontend write is one datagram to
//! `remote`; each datagram received (up to 64 KiB; QEMU cuts at 4 KiB) goes
//! to the frontend when it has room. Never `OPENED`, as in QEMU.
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::fdio::{FdIo, FdLink};
use crate::chardev::transport::{Behaviour, Connection, LinkBackend, Once};
use crate::error::BackendError;
use crate::net::{InetSocketAddress, SocketAddressLegacy};
use crate::options::Opts;
use futures_util::future::LocalBoxFuture;
use rustix::net::{AddressFamily, SocketAddrAny, SocketType};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The `udp` kind.
pub(crate) const KIND: Kind = Kind {
    name: "udp",
    aliases: &[],
    from_qmp: from_data::<Udp>,
    from_cli,
    syntax: "-chardev udp,id=ID,[host=HOST],port=PORT[,localaddr=ADDR][,localport=PORT][,ipv4=on][,ipv6=on]",
    facts: Facts {
        oob: true,
        ..Facts::NONE
    },
};

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    let host = opts.take("host").unwrap_or_else(|| "localhost".into());
    let port = opts.take("port").ok_or("chardev: udp: remote port not specified")?;
    let ipv4 = opts.take_bool("ipv4")?;
    let ipv6 = opts.take_bool("ipv6")?;
    let localaddr = opts.take("localaddr");
    let localport = opts.take("localport");
    let inet = |host: String, port: String| {
        SocketAddressLegacy::Inet(InetSocketAddress {
            ipv4,
            ipv6,
            ..InetSocketAddress::new(host, port)
        })
    };
    let local = if localaddr.is_some() || localport.is_some() {
        Some(inet(
            localaddr.unwrap_or_default(),
            localport.unwrap_or_else(|| "0".into()),
        ))
    } else {
        None
    };
    Ok(Box::new(Udp {
        remote: inet(host, port),
        local,
    }))
}

/// `udp` options (`ChardevUdp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Udp {
    /// Where datagrams go.
    pub remote: SocketAddressLegacy,
    /// Local address to bind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<SocketAddressLegacy>,
}

impl BackendConfig for Udp {
    fn kind(&self) -> &'static str {
        "udp"
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move { start(&self).await })
    }
}

fn inet(addr: &SocketAddressLegacy) -> Result<&InetSocketAddress, BackendError> {
    match addr {
        SocketAddressLegacy::Inet(a) => Ok(a),
        _ => Err(BackendError::DatagramType),
    }
}

/// The text of a resolver error, as `gai_strerror` gives it.
fn gai_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.strip_prefix("failed to lookup address information: ")
        .unwrap_or(&s)
        .to_owned()
}

/// Resolve `host:port` as QEMU's `inet_dgram_saddr` does: an empty host is
/// `localhost`; numeric ports only (they wrap at 65536, as getaddrinfo's do).
/// The lookup runs on the blocking pool: a slow resolver never stalls the actor thread.
async fn resolve(host: &str, port: &str, a: &InetSocketAddress) -> Result<Vec<SocketAddr>, BackendError> {
    let fail = |why: String| BackendError::Resolve {
        host: host.to_owned(),
        port: port.to_owned(),
        why,
    };
    if a.ipv4 == Some(false) && a.ipv6 == Some(false) {
        return Err(BackendError::NoAddressFamily);
    }
    let host = if host.is_empty() { "localhost" } else { host };
    let port: u16 = match port.parse::<u64>() {
        Ok(p) => (p % 65536) as u16,
        Err(_) => return Err(fail("Servname not supported for ai_socktype".into())),
    };
    if host.contains('\0') {
        // QEMU passes U+0000 as C0 80: no such name.
        return Err(fail("Name or service not known".into()));
    }
    let addrs = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| fail(gai_text(&e)))?;
    let want4 = a.ipv4.unwrap_or(true) || a.ipv6 == Some(false);
    let want6 = a.ipv6.unwrap_or(true) || a.ipv4 == Some(false);
    let mut v: Vec<SocketAddr> = addrs
        .filter(|s| (s.is_ipv4() && want4) || (s.is_ipv6() && want6))
        .collect();
    // IPv4 first, as QEMU ends up with for `localhost` (AI_ADDRCONFIG | AI_V4MAPPED).
    v.sort_by_key(SocketAddr::is_ipv6);
    if v.is_empty() {
        return Err(fail("Address family for hostname not supported".into()));
    }
    Ok(v)
}

/// Create the socket and start the backend.
async fn start(u: &Udp) -> Result<Opened, BackendError> {
    let remote = inet(&u.remote)?;
    if remote.port.is_empty() {
        return Err(BackendError::RemotePortMissing);
    }
    let peer = resolve(&remote.host, &remote.port, remote).await?[0];
    let local = match &u.local {
        Some(l) => {
            let l = inet(l)?;
            let port = if l.port.is_empty() { "0" } else { l.port.as_str() };
            if l.host.is_empty() {
                wildcard(peer, port.parse::<u64>().map(|p| (p % 65536) as u16).unwrap_or(0))
            } else {
                resolve(&l.host, port, l).await?[0]
            }
        }
        None => wildcard(peer, 0),
    };
    let family = if peer.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let sock =
        rustix::net::socket_with(family, SocketType::DGRAM, rustix::net::SocketFlags::CLOEXEC, None).map_err(|e| {
            BackendError::SocketCreate {
                family: family.as_raw() as i32,
                source: e.into(),
            }
        })?;
    let _ = rustix::net::sockopt::set_socket_reuseaddr(&sock, true);
    rustix::net::bind(&sock, &SocketAddrAny::from(local)).map_err(|e| BackendError::Bind(e.into()))?;
    rustix::net::connect(&sock, &SocketAddrAny::from(peer)).map_err(|e| BackendError::Connect {
        target: format!("{}:{}", remote.host, remote.port),
        source: e.into(),
    })?;
    let io = FdIo::new(sock).map_err(|e| BackendError::SocketSetup(e.into()))?;
    let output = io.share();
    let transport = Once {
        filename: "udp",
        behaviour: Behaviour {
            announce: false,
            eof_disconnects: false,
            datagrams: true,
            idle_output_logged: true,
            linger: false,
        },
        ioctls: (),
    };
    let link = FdLink::new(Some(io), output);
    Ok(Opened::closed(LinkBackend::connected(transport, Connection::new(link))))
}

fn wildcard(peer: SocketAddr, port: u16) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    }
}
