//! Socket addresses as QMP spells them (`SocketAddressLegacy` of QEMU's
//! `sockets.json`), shared by the kinds that use the network and by the QMP
//! listeners.
use serde::{Deserialize, Serialize};

/// `SocketAddressLegacy`: `{"type": "inet", "data": {...}}` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub enum SocketAddressLegacy {
    /// TCP or UDP over IP.
    Inet(InetSocketAddress),
    /// Unix domain socket.
    Unix(UnixSocketAddress),
    /// AF_VSOCK.
    Vsock(VsockSocketAddress),
    /// A file descriptor passed with `getfd`, or a number.
    Fd(FdSocketAddress),
}

/// `InetSocketAddress`.
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
    /// IPv4 only/also.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<bool>,
    /// IPv6 only/also.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    /// SO_KEEPALIVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<bool>,
    /// MPTCP.
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

/// `UnixSocketAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixSocketAddress {
    /// Socket path.
    pub path: String,
    /// Linux abstract namespace.
    #[serde(default, rename = "abstract", skip_serializing_if = "Option::is_none")]
    pub is_abstract: Option<bool>,
    /// Tight abstract address length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tight: Option<bool>,
}

/// `VsockSocketAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VsockSocketAddress {
    /// Context id.
    pub cid: String,
    /// Port.
    pub port: String,
}

/// `FdSocketAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdSocketAddress {
    /// Name given to `getfd`, or a number.
    pub str: String,
}
