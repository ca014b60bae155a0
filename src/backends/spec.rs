//! The typed `ChardevBackend` union of `qapi/char.json` (QEMU 10.0.2 shapes).
//!
//! Arguments are validated against the schema first (exact QEMU error texts),
//! then deserialized into these types, so a serde failure here is a bug.
use serde::{Deserialize, Serialize};

/// `ChardevCommon`: options every backend takes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ChardevCommon {
    /// Log every byte the frontend writes to this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logfile: Option<String>,
    /// Append to the log file instead of truncating it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logappend: Option<bool>,
}

macro_rules! backend_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub struct $name {
            /// Common options.
            #[serde(flatten)]
            pub common: ChardevCommon,
            $($(#[$fm])* pub $field: $ty,)*
        }
    };
}

backend_struct!(
    /// `ChardevFile`.
    ChardevFile {
        /// Input file.
        #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        /// Output file.
        out: String,
        /// Open `out` for appending.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        append: Option<bool>,
    }
);
backend_struct!(
    /// `ChardevHostdev` (serial, parallel, pipe).
    ChardevHostdev {
        /// Device path (or pipe path prefix).
        device: String,
    }
);
backend_struct!(
    /// `ChardevSocket`.
    ChardevSocket {
        /// Address to listen on or connect to.
        addr: SocketAddressLegacy,
        /// TLS credentials object id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls_creds: Option<String>,
        /// TLS authorization object id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls_authz: Option<String>,
        /// Listen (true, the QMP default) or connect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<bool>,
        /// Block creation until a client connects.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        wait: Option<bool>,
        /// TCP_NODELAY.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodelay: Option<bool>,
        /// Telnet negotiation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        telnet: Option<bool>,
        /// TN3270 negotiation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tn3270: Option<bool>,
        /// Websocket server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        websocket: Option<bool>,
        /// Reconnect delay in seconds (deprecated in QEMU 10).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reconnect: Option<i64>,
        /// Reconnect delay in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reconnect_ms: Option<i64>,
    }
);
backend_struct!(
    /// `ChardevUdp`.
    ChardevUdp {
        /// Where datagrams go.
        remote: SocketAddressLegacy,
        /// Local address to bind.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local: Option<SocketAddressLegacy>,
    }
);
backend_struct!(
    /// `ChardevMux`.
    ChardevMux {
        /// The base chardev.
        chardev: String,
    }
);
backend_struct!(
    /// `ChardevHub` (QEMU 10).
    ChardevHub {
        /// The backends merged.
        chardevs: Vec<String>,
    }
);
backend_struct!(
    /// `ChardevPty`.
    ChardevPty {
        /// Symlink to create to the pty.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    }
);
backend_struct!(
    /// `ChardevStdio`.
    ChardevStdio {
        /// Let Ctrl-C etc. raise signals.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<bool>,
    }
);
backend_struct!(
    /// `ChardevSpiceChannel`.
    ChardevSpiceChannel {
        /// Channel subtype.
        #[serde(rename = "type")]
        kind: String,
    }
);
backend_struct!(
    /// `ChardevSpicePort`.
    ChardevSpicePort {
        /// Port name.
        fqdn: String,
    }
);
backend_struct!(
    /// `ChardevQemuVDAgent`.
    ChardevQemuVdAgent {
        /// Mouse.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mouse: Option<bool>,
        /// Clipboard.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clipboard: Option<bool>,
    }
);
backend_struct!(
    /// `ChardevDBus`.
    ChardevDBus {
        /// Channel name.
        name: String,
    }
);
backend_struct!(
    /// `ChardevVC`.
    ChardevVc {
        /// Width in pixels.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        width: Option<i64>,
        /// Height in pixels.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        height: Option<i64>,
        /// Width in characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cols: Option<i64>,
        /// Height in characters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rows: Option<i64>,
    }
);
backend_struct!(
    /// `ChardevRingbuf`.
    ChardevRingbuf {
        /// Ring size in bytes (power of two; default 65536).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<i64>,
    }
);

/// `SocketAddressLegacy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub enum SocketAddressLegacy {
    /// TCP.
    Inet(InetSocketAddress),
    /// Unix domain socket.
    Unix(UnixSocketAddress),
    /// AF_VSOCK.
    Vsock(VsockSocketAddress),
    /// A file descriptor passed with `getfd`, or a number.
    Fd(FdSocketAddress),
}

/// `InetSocketAddress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// `UnixSocketAddress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsockSocketAddress {
    /// Context id.
    pub cid: String,
    /// Port.
    pub port: String,
}

/// `FdSocketAddress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FdSocketAddress {
    /// Name given to `getfd`, or a number.
    pub str: String,
}

/// `ChardevBackend`: which backend, with its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum ChardevBackend {
    File(ChardevFile),
    Serial(ChardevHostdev),
    Parallel(ChardevHostdev),
    Pipe(ChardevHostdev),
    Socket(ChardevSocket),
    Udp(ChardevUdp),
    Pty(ChardevPty),
    Null(ChardevCommon),
    Mux(ChardevMux),
    Hub(ChardevHub),
    Msmouse(ChardevCommon),
    Wctablet(ChardevCommon),
    Braille(ChardevCommon),
    Testdev(ChardevCommon),
    Stdio(ChardevStdio),
    Spicevmc(ChardevSpiceChannel),
    Spiceport(ChardevSpicePort),
    QemuVdagent(ChardevQemuVdAgent),
    Dbus(ChardevDBus),
    Vc(ChardevVc),
    Ringbuf(ChardevRingbuf),
    Memory(ChardevRingbuf),
}

impl ChardevBackend {
    /// The QEMU backend type name (`ChardevBackendKind`).
    pub fn kind(&self) -> &'static str {
        match self {
            ChardevBackend::File(_) => "file",
            ChardevBackend::Serial(_) => "serial",
            ChardevBackend::Parallel(_) => "parallel",
            ChardevBackend::Pipe(_) => "pipe",
            ChardevBackend::Socket(_) => "socket",
            ChardevBackend::Udp(_) => "udp",
            ChardevBackend::Pty(_) => "pty",
            ChardevBackend::Null(_) => "null",
            ChardevBackend::Mux(_) => "mux",
            ChardevBackend::Hub(_) => "hub",
            ChardevBackend::Msmouse(_) => "msmouse",
            ChardevBackend::Wctablet(_) => "wctablet",
            ChardevBackend::Braille(_) => "braille",
            ChardevBackend::Testdev(_) => "testdev",
            ChardevBackend::Stdio(_) => "stdio",
            ChardevBackend::Spicevmc(_) => "spicevmc",
            ChardevBackend::Spiceport(_) => "spiceport",
            ChardevBackend::QemuVdagent(_) => "qemu-vdagent",
            ChardevBackend::Dbus(_) => "dbus",
            ChardevBackend::Vc(_) => "vc",
            ChardevBackend::Ringbuf(_) => "ringbuf",
            ChardevBackend::Memory(_) => "memory",
        }
    }

    /// The options every backend shares.
    pub fn common(&self) -> &ChardevCommon {
        match self {
            ChardevBackend::File(b) => &b.common,
            ChardevBackend::Serial(b) | ChardevBackend::Parallel(b) | ChardevBackend::Pipe(b) => &b.common,
            ChardevBackend::Socket(b) => &b.common,
            ChardevBackend::Udp(b) => &b.common,
            ChardevBackend::Pty(b) => &b.common,
            ChardevBackend::Null(c)
            | ChardevBackend::Msmouse(c)
            | ChardevBackend::Wctablet(c)
            | ChardevBackend::Braille(c)
            | ChardevBackend::Testdev(c) => c,
            ChardevBackend::Mux(b) => &b.common,
            ChardevBackend::Hub(b) => &b.common,
            ChardevBackend::Stdio(b) => &b.common,
            ChardevBackend::Spicevmc(b) => &b.common,
            ChardevBackend::Spiceport(b) => &b.common,
            ChardevBackend::QemuVdagent(b) => &b.common,
            ChardevBackend::Dbus(b) => &b.common,
            ChardevBackend::Vc(b) => &b.common,
            ChardevBackend::Ringbuf(b) | ChardevBackend::Memory(b) => &b.common,
        }
    }
}
