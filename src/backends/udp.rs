//! `udp`: a connected UDP socket. Each frontend write is one datagram to
//! `remote`; each datagram received (up to 64 KiB; QEMU cuts at 4 KiB) goes
//! to the frontend when it has room. Never `OPENED`, as in QEMU.
use super::fdio::{FdBackend, Io, Plain};
use super::logfile::LogFile;
use super::spec::{ChardevUdp, InetSocketAddress, SocketAddressLegacy};
use super::Started;
use actix::prelude::*;
use rustix::net::{AddressFamily, SocketAddrAny, SocketType};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

fn inet(addr: &SocketAddressLegacy) -> Result<&InetSocketAddress, String> {
    match addr {
        SocketAddressLegacy::Inet(a) => Ok(a),
        _ => Err("socket type unsupported for datagram".into()),
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
async fn resolve(host: &str, port: &str, a: &InetSocketAddress) -> Result<Vec<SocketAddr>, String> {
    let fail = |why: String| format!("address resolution failed for {host}:{port}: {why}");
    if a.ipv4 == Some(false) && a.ipv6 == Some(false) {
        return Err("Cannot disable IPv4 and IPv6 at same time".into());
    }
    let host = if host.is_empty() { "localhost" } else { host };
    let port: u16 = match port.parse::<u64>() {
        Ok(p) => (p % 65536) as u16,
        Err(_) => return Err(fail("Servname not supported for ai_socktype".into())),
    };
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
pub async fn start(id: &str, u: &ChardevUdp, log: Option<LogFile>) -> Result<Started, String> {
    let remote = inet(&u.remote)?;
    if remote.port.is_empty() {
        return Err("remote port not specified".into());
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
            format!(
                "Failed to create socket family {}: {}",
                family.as_raw(),
                super::strerror(&e.into())
            )
        })?;
    let _ = rustix::net::sockopt::set_socket_reuseaddr(&sock, true);
    rustix::net::bind(&sock, &SocketAddrAny::from(local))
        .map_err(|e| format!("Failed to bind socket: {}", super::strerror(&e.into())))?;
    rustix::net::connect(&sock, &SocketAddrAny::from(peer)).map_err(|e| {
        format!(
            "Failed to connect to '{}:{}': {}",
            remote.host,
            remote.port,
            super::strerror(&e.into())
        )
    })?;
    let io = Io::new(sock).map_err(|e| format!("Failed to create socket: {}", super::strerror(&e)))?;
    let backend = FdBackend::new(id, Some(io.clone()), Some(io), log, Plain)
        .not_opened()
        .datagrams();
    let addr = backend.start();
    Ok(Started {
        backend: addr.recipient(),
        filename: "udp".into(),
        opened: false,
        ringbuf: false,
        pty: None,
    })
}

fn wildcard(peer: SocketAddr, port: u16) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    }
}
