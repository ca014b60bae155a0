//! QEMU option strings: `-chardev`, `-qmp` and `-device`, as typed specs.
//!
//! The syntax is [`crate::options`]'; each backend kind reads its own
//! `-chardev` keys (see [`crate::backends::KINDS`]).
use crate::backends::{self, ChardevBackend, ChardevCommon};
use crate::json::Json;
use crate::net::QmpAddr;
use crate::options::{parse_bool, split_opts, Opts};
use std::path::PathBuf;

/// Help text for the option syntax.
pub fn syntax() -> String {
    format!(
        "Every -chardev also takes [,logfile=PATH][,logappend=on|off].\n{}{}",
        backends::syntax(),
        "-qmp unix:PATH,server=on[,wait=off]\n\
         -qmp tcp:[HOST]:PORT,server=on[,wait=off]\t(an empty HOST listens on every interface: keep QMP off networks)\n\
         -qmp stdio|pty|null|file:PATH|pipe:PATH|chardev:ID|mon:...\t(a QMP monitor on a chardev; -qmp-pretty: pretty JSON)\n\
         -mon chardev=ID,mode=control[,pretty=on][,id=ID]\t(a QMP monitor on any chardev, e.g. a socket or a mux)\n\
         -object tls-creds-x509,id=ID,dir=DIR,endpoint=server|client[,verify-peer=on|off]\n\
         -object authz-simple,id=ID,identity=DN\t(and authz-list, authz-listfile; JSON form for rules)\n\
         -device echo,id=ID,chardev=ID\t(writes back what it receives)\n\
         -device bridge,id=ID,chardev=ID,peer=ID\t(joins two chardevs both ways, e.g. a pty and a socket)\n\
         -device port,id=ID,chardev=ID\t(virtio-serial-like port: VSERPORT_CHANGE)\n\
         A literal comma in a value is written ',,'."
    )
}

/// A parsed `-chardev`.
#[derive(Debug)]
pub struct ChardevOpt {
    /// The id.
    pub id: String,
    /// The backend.
    pub backend: ChardevBackend,
    /// `mux=on`: the backend is created as `ID-base` with a mux `ID` over it.
    pub mux: bool,
}

/// `-chardev` keys of the log's rotation (chardevd's extension).
pub const LOGSIZE_KEY: &str = "__org.chardevd_logsize";
/// See [`LOGSIZE_KEY`].
pub const LOGBACKUPS_KEY: &str = "__org.chardevd_logbackups";

/// How QEMU's `qemu_chardev_opts` types a `-chardev` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Str,
    Bool,
    Number,
    Size,
}

/// Every key QEMU 10.0.2's `-chardev` knows, whatever the backend (QEMU
/// checks keys against this one list: a key of another backend is accepted
/// and has no effect).
const CHARDEV_KEYS: &[(&str, KeyType)] = {
    use KeyType::*;
    &[
        ("backend", Str),
        ("path", Str),
        ("host", Str),
        ("port", Str),
        ("fd", Str),
        ("localaddr", Str),
        ("localport", Str),
        ("to", Number),
        ("ipv4", Bool),
        ("ipv6", Bool),
        ("wait", Bool),
        ("server", Bool),
        ("delay", Bool),
        ("nodelay", Bool),
        ("reconnect", Number),
        ("reconnect-ms", Number),
        ("telnet", Bool),
        ("tn3270", Bool),
        ("tls-creds", Str),
        ("tls-authz", Str),
        ("websocket", Bool),
        ("width", Number),
        ("height", Number),
        ("cols", Number),
        ("rows", Number),
        ("mux", Bool),
        ("signal", Bool),
        ("name", Str),
        ("debug", Number),
        ("size", Size),
        ("chardev", Str),
        (crate::backends::mux::MAX_FRONTENDS_KEY, Number),
        ("chardevs.0", Str),
        ("chardevs.1", Str),
        ("chardevs.2", Str),
        ("chardevs.3", Str),
        ("append", Bool),
        ("logfile", Str),
        ("logappend", Bool),
        ("logtimestamp", Bool),
        (LOGSIZE_KEY, Size),
        (LOGBACKUPS_KEY, Number),
        ("mouse", Bool),
        ("clipboard", Bool),
        ("abstract", Bool),
        ("tight", Bool),
        ("input-path", Str),
        (crate::backends::socket::console::MAX_CLIENTS_KEY, Number),
        (crate::backends::socket::console::HISTORY_KEY, Size),
        (crate::backends::socket::console::CLIENT_QUEUE_KEY, Size),
        (crate::backends::socket::console::OVERFLOW_KEY, Str),
        (crate::backends::socket::console::OVERFLOW_MARKER_KEY, Bool),
        (crate::backends::socket::console::INPUT_KEY, Str),
        (crate::backends::socket::console::CLIENT_EVENTS_KEY, Bool),
        (crate::net::MODE_KEY, Str),
        (crate::net::OWNER_KEY, Str),
        (crate::net::GROUP_KEY, Str),
    ]
};

/// QEMU's hint after an id that is not an identifier.
pub const ID_HINT: &str = "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.";

/// `Parameter 'id' expects an identifier`, with QEMU's hint line.
pub fn bad_id() -> String {
    format!("Parameter 'id' expects an identifier\n{ID_HINT}")
}

/// QEMU's number syntax for option values (`qemu_strtou64`: decimal, `0x`
/// hex, `0` octal; a leading `-` wraps).
fn is_number(v: &str) -> bool {
    let v = v.strip_prefix('-').unwrap_or(v);
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit())
    } else {
        !v.is_empty() && v.chars().all(|c| c.is_ascii_digit())
    }
}

/// Split an option string as QEMU's option parser does: the first bare item
/// is `implied` (the backend, the driver), the others are short-form
/// booleans (`server` is `server=on`, `nowait` is `wait=off`) with QEMU's
/// deprecation warning.
fn expand_opts(s: &str, implied: &str, warnings: &mut Vec<String>) -> Vec<(String, String)> {
    let mut items = split_opts(s);
    if items.first().is_some_and(|(k, _)| k.is_empty()) {
        items[0].0 = implied.to_owned();
    }
    for (k, v) in items.iter_mut() {
        if k.is_empty() {
            let (name, value) = match v.strip_prefix("no") {
                Some(n) => (n.to_owned(), "off"),
                None => (v.clone(), "on"),
            };
            warnings.push(format!(
                "short-form boolean option '{v}' deprecated\nPlease use {name}={value} instead"
            ));
            *k = name;
            *v = value.to_owned();
        }
    }
    items.retain(|(k, _)| !k.is_empty());
    items
}

/// Parse a `-chardev` argument.
pub fn parse_chardev(s: &str) -> Result<ChardevOpt, String> {
    parse_chardev_after(s, &std::collections::HashSet::new(), &mut Vec::new())
}

/// Parse a `-chardev` argument that follows chardevs with the ids `earlier`,
/// checking in QEMU's order: the id (an identifier, not a duplicate), then
/// every key in turn (known, and a value of its type), then the id's
/// presence, the backend, and the backend's own options. QEMU's warnings
/// (deprecated forms) go to `warnings`, also when the option fails.
pub fn parse_chardev_after(
    s: &str,
    earlier: &std::collections::HashSet<String>,
    warnings: &mut Vec<String>,
) -> Result<ChardevOpt, String> {
    let items = expand_opts(s, "backend", warnings);
    let id = items.iter().find(|(k, _)| k == "id").map(|(_, v)| v.clone());
    if let Some(id) = &id {
        if !crate::registry::id_wellformed(id) {
            return Err(bad_id());
        }
        if earlier.contains(id) {
            return Err(format!("Duplicate ID '{id}' for chardev"));
        }
    }
    for (k, v) in items.iter().filter(|(k, _)| k != "id") {
        let Some((_, ty)) = CHARDEV_KEYS.iter().find(|(name, _)| name == k) else {
            return Err(format!("Invalid parameter '{k}'"));
        };
        match ty {
            KeyType::Str => {}
            KeyType::Bool => {
                parse_bool(k, v)?;
            }
            KeyType::Number if !is_number(v) => return Err(format!("Parameter '{k}' expects a number")),
            KeyType::Number => {}
            KeyType::Size => {
                crate::options::parse_size(k, v)?;
            }
        }
    }
    let Some(id) = id else {
        return Err("chardev: no id specified".into());
    };
    let mut opts = Opts::from_items(items.into_iter().filter(|(k, _)| k != "id").collect());
    let Some(kind) = opts.take("backend") else {
        return Err(format!("chardev: \"{id}\" missing backend"));
    };
    let common = ChardevCommon {
        logfile: opts.take("logfile"),
        logappend: opts.take_bool("logappend")?,
        logtimestamp: opts.take_bool("logtimestamp")?,
        logsize: opts
            .take(LOGSIZE_KEY)
            .map(|v| crate::options::parse_size(LOGSIZE_KEY, &v).map(|n| n as u64))
            .transpose()?,
        logbackups: opts
            .take(LOGBACKUPS_KEY)
            .map(|v| {
                v.parse::<u32>()
                    .map_err(|_| format!("Parameter '{LOGBACKUPS_KEY}' expects a number from 0 to 4294967295"))
            })
            .transpose()?,
    };
    let mux = opts.take_bool("mux")? == Some(true);
    let Some(k) = backends::kind(&kind) else {
        return Err(format!("'{kind}' is not a valid char driver name"));
    };
    let config = (k.from_cli)(&mut opts)?;
    for (key, _) in opts.rest() {
        // Known to QEMU's -chardev, but not this backend's: QEMU ignores it.
        warnings.push(format!("parameter '{key}' has no effect on a {kind} chardev"));
    }
    Ok(ChardevOpt {
        id,
        backend: ChardevBackend::from_parts(common, config),
        mux,
    })
}

/// A parsed `-qmp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpOpt {
    /// Where to listen.
    pub addr: QmpAddr,
    /// `wait=on`: accepted for compatibility (chardevd has no guest to hold back).
    pub wait: bool,
}

/// Parse a `-qmp` argument (`unix:PATH,server=on,wait=off` or `tcp:HOST:PORT,server=on`).
pub fn parse_qmp(s: &str) -> Result<QmpOpt, String> {
    let mut opts = split_opts(s);
    // The address is taken whole: a path may contain '='.
    let target = match opts.remove(0) {
        (k, v) if k.is_empty() => v,
        (k, v) => format!("{k}={v}"),
    };
    let (mut server, mut wait) = (false, true);
    let mut unix = crate::net::UnixSocketAddress::default();
    for (k, v) in opts {
        match k.as_str() {
            "server" => server = parse_bool("server", &v)?,
            "wait" => wait = parse_bool("wait", &v)?,
            crate::net::MODE_KEY => unix.mode = Some(v),
            crate::net::OWNER_KEY => unix.owner = Some(v),
            crate::net::GROUP_KEY => unix.group = Some(v),
            "" if v == "server" => server = true,
            "" if v == "nowait" => wait = false,
            "" => return Err(format!("Invalid parameter '{v}'")),
            other => return Err(format!("Invalid parameter '{other}'")),
        }
    }
    let socket = target.starts_with("unix:") || target.starts_with("tcp:");
    if !socket {
        let kind = target.split(':').next().unwrap_or_default();
        return Err(format!(
            "QMP over a '{kind}' chardev is not supported yet (it comes with QMP monitors on chardevs, -mon); \
             QMP is served on sockets: -qmp unix:PATH,server=on or -qmp tcp:HOST:PORT,server=on"
        ));
    }
    if !server {
        return Err("chardevd serves QMP; it does not connect out: add server=on".into());
    }
    let addr = if let Some(path) = target.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: needs a path".into());
        }
        let access = crate::net::UnixAccess::of(&unix).map_err(|e| e.to_string())?;
        QmpAddr::Unix {
            path: PathBuf::from(path),
            access,
        }
    } else {
        if unix != crate::net::UnixSocketAddress::default() {
            return Err("__org.chardevd_mode, _owner and _group apply to a unix socket".into());
        }
        let rest = target.strip_prefix("tcp:").unwrap_or(&target);
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("tcp: needs HOST:PORT, got '{rest}'"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = port.parse().map_err(|_| format!("invalid port '{port}'"))?;
        QmpAddr::Tcp { host, port }
    };
    Ok(QmpOpt { addr, wait })
}

/// A parsed `-mon` (or the monitor of a `-qmp` on a chardev).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonOpt {
    /// `id`.
    pub id: Option<String>,
    /// The chardev it runs on.
    pub chardev: String,
    /// `pretty=on`.
    pub pretty: bool,
}

/// Parse `-mon [chardev=]ID[,mode=control][,pretty=on][,id=ID]` with
/// QEMU's checks in QEMU's order. `mode=readline` (QEMU's default, the
/// human monitor) is refused: chardevd serves QMP only.
pub fn parse_mon(s: &str) -> Result<MonOpt, String> {
    let mut items = split_opts(s);
    if let Some((k, _)) = items.first_mut() {
        if k.is_empty() {
            *k = "chardev".into();
        }
    }
    for (k, _) in &items {
        if !matches!(k.as_str(), "chardev" | "mode" | "pretty" | "id") {
            return Err(format!("Invalid parameter '{k}'"));
        }
    }
    let get = |key: &str| items.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let id = get("id");
    if id.as_deref().is_some_and(|i| !crate::registry::id_wellformed(i)) {
        return Err(bad_id());
    }
    let control = match get("mode").as_deref() {
        None | Some("readline") => false,
        Some("control") => true,
        Some(other) => return Err(format!("Parameter 'mode' does not accept value '{other}'")),
    };
    let pretty = match get("pretty") {
        Some(v) => parse_bool("pretty", &v)?,
        None => false,
    };
    let Some(chardev) = get("chardev") else {
        return Err("Parameter 'chardev' is missing".into());
    };
    if !control {
        return Err(if pretty {
            crate::error::MonitorError::PrettyHmp.to_string()
        } else {
            crate::error::MonitorError::Readline.to_string()
        });
    }
    Ok(MonOpt { id, chardev, pretty })
}

/// What a `-qmp` asks for.
#[derive(Debug)]
pub enum QmpTarget {
    /// A listener: every client its own session (unix or tcp, server=on).
    Listen(QmpOpt),
    /// A QMP monitor on a chardev, created from QEMU's compat syntax
    /// (`stdio`, `pty`, `null`, `file:PATH`, `pipe:PATH`, `mon:...`) as
    /// `compat_monitorN`, or an existing one (`chardev:ID`).
    Monitor {
        /// The chardev to create first, if any.
        chardev: Option<ChardevOpt>,
        /// The chardev the monitor runs on.
        on: String,
    },
}

/// Parse a `-qmp` argument; `n` numbers the `compat_monitorN` chardevs.
pub fn parse_qmp_target(s: &str, n: usize) -> Result<QmpTarget, String> {
    let (mux, rest) = match s.strip_prefix("mon:") {
        Some(r) => (true, r),
        None => (false, s),
    };
    let id = format!("compat_monitor{n}");
    let backend = |b: ChardevBackend| {
        Ok(QmpTarget::Monitor {
            chardev: Some(ChardevOpt {
                id: id.clone(),
                backend: b,
                mux,
            }),
            on: id.clone(),
        })
    };
    use crate::backends::{file::File, null::Null, pipe::Pipe, pty::Pty, stdio::Stdio};
    match rest {
        // mon:stdio leaves Ctrl-C to the console (QEMU's signal=off).
        "stdio" => backend(ChardevBackend::new(Stdio {
            signal: if mux { Some(false) } else { None },
        })),
        "pty" => backend(ChardevBackend::new(Pty::default())),
        "null" => backend(ChardevBackend::new(Null {})),
        _ if rest.starts_with("file:") => backend(ChardevBackend::new(File {
            input: None,
            out: rest["file:".len()..].to_owned(),
            append: None,
        })),
        _ if rest.starts_with("pipe:") => backend(ChardevBackend::new(Pipe {
            device: rest["pipe:".len()..].to_owned(),
        })),
        _ if rest.starts_with("chardev:") && !mux => Ok(QmpTarget::Monitor {
            chardev: None,
            on: rest["chardev:".len()..].to_owned(),
        }),
        _ if !mux && (rest.starts_with("unix:") || rest.starts_with("tcp:")) => parse_qmp(rest).map(QmpTarget::Listen),
        _ => Err(format!("'{rest}' is not a valid char driver\nparse error: {s}")),
    }
}

/// A parsed `-object`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectOpt {
    /// `qom-type`.
    pub qom_type: String,
    /// `id`.
    pub id: String,
    /// The other properties.
    pub props: serde_json::Value,
}

/// Properties `-object` reads as booleans.
const BOOL_PROPS: &[&str] = &["verify-peer", "sanity-check", "refresh"];

/// Parse an `-object` argument: `TYPE,id=ID,key=value,...`, or QEMU's JSON
/// form `{"qom-type": ..., "id": ..., ...}` (needed for authz-list rules).
pub fn parse_object(s: &str) -> Result<ObjectOpt, String> {
    let mut map = if s.trim_start().starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(s) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err(format!("Invalid JSON object given to -object: {s}")),
        }
    } else {
        let mut opts = Opts::parse(s);
        let mut m = serde_json::Map::new();
        if let Some(t) = opts.take_positional() {
            m.insert("qom-type".into(), t.into());
        }
        for (k, v) in opts.rest().to_vec() {
            if k.is_empty() {
                return Err(format!("Invalid parameter '{v}'"));
            }
            let value = if BOOL_PROPS.contains(&k.as_str()) {
                serde_json::Value::Bool(parse_bool(&k, &v)?)
            } else {
                serde_json::Value::String(v)
            };
            m.insert(k, value);
        }
        m
    };
    let take = |m: &mut serde_json::Map<String, serde_json::Value>, k: &str| match m.remove(k) {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(format!("Invalid parameter type for '{k}', expected: string")),
        None => Err(format!("Parameter '{k}' is missing")),
    };
    if let Some(serde_json::Value::String(id)) = map.get("id") {
        if !crate::registry::id_wellformed(id) {
            return Err(bad_id());
        }
    }
    let qom_type = take(&mut map, "qom-type")?;
    let id = take(&mut map, "id")?;
    Ok(ObjectOpt {
        qom_type,
        id,
        props: serde_json::Value::Object(map),
    })
}

/// A parsed `-device`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceOpt {
    /// Driver.
    pub driver: String,
    /// Id.
    pub id: Option<String>,
    /// Other properties.
    pub props: Vec<(String, Json)>,
}

/// Parse a `-device` argument.
pub fn parse_device(s: &str) -> Result<DeviceOpt, String> {
    let mut opts = split_opts(s);
    let mut driver = None;
    if opts.first().is_some_and(|(k, _)| k.is_empty()) {
        driver = Some(opts.remove(0).1);
    }
    let mut id = None;
    let mut props = Vec::new();
    for (k, v) in opts {
        match k.as_str() {
            "driver" => driver = Some(v),
            "id" => id = Some(v),
            "" => return Err(format!("Invalid parameter '{v}'")),
            _ => props.push((k, Json::Str(v))),
        }
    }
    if id.as_deref().is_some_and(|id| !crate::registry::id_wellformed(id)) {
        return Err(bad_id());
    }
    let driver = driver.ok_or("Parameter 'driver' is missing")?;
    Ok(DeviceOpt { driver, id, props })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::ringbuf::Ringbuf;

    #[test]
    fn double_commas_escape_a_comma() {
        let c = parse_chardev("ringbuf,id=x,logfile=/tmp/a,,b").unwrap();
        assert_eq!(c.id, "x");
        assert_eq!(c.backend.common.logfile.as_deref(), Some("/tmp/a,b"));
        // An id is an identifier: a comma in it is refused, as by QEMU.
        assert_eq!(parse_chardev("ringbuf,id=x,,y").unwrap_err(), bad_id());
    }

    #[test]
    fn chardev_options_parse_to_typed_backends() {
        let c = parse_chardev("ringbuf,id=log0,size=64K").unwrap();
        assert_eq!(c.backend.config::<Ringbuf>(), Some(&Ringbuf { size: Some(65536) }));
        let c = parse_chardev("ringbuf,id=log0,size=0").unwrap();
        assert_eq!(c.backend.config::<Ringbuf>(), Some(&Ringbuf { size: None }));
        assert!(parse_chardev("null,id=n,logappend=on").is_ok());
        assert_eq!(parse_chardev("null").unwrap_err(), "chardev: no id specified");
        assert_eq!(
            parse_chardev("null,id=n,bogus=1").unwrap_err(),
            "Invalid parameter 'bogus'"
        );
        assert_eq!(
            parse_chardev("nope,id=n").unwrap_err(),
            "'nope' is not a valid char driver name"
        );
        assert_eq!(
            parse_chardev("tty,id=t,path=/dev/null").unwrap().backend.kind(),
            "serial"
        );
    }

    #[test]
    fn qmp_addresses_parse_like_qemu() {
        let q = parse_qmp("unix:/tmp/q.sock,server=on,wait=off").unwrap();
        assert_eq!(
            q.addr,
            QmpAddr::Unix {
                path: "/tmp/q.sock".into(),
                access: Default::default(),
            }
        );
        assert!(!q.wait);
        let q = parse_qmp("tcp:127.0.0.1:4444,server,nowait").unwrap();
        assert_eq!(
            q.addr,
            QmpAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 4444
            }
        );
        let q = parse_qmp("tcp::4444,server=on").unwrap();
        assert_eq!(
            q.addr,
            QmpAddr::Tcp {
                host: "".into(),
                port: 4444
            }
        );
        assert!(parse_qmp("unix:/tmp/q.sock").is_err());
        assert!(parse_qmp("unix:/a,,b,server=on").is_ok_and(|q| q.addr
            == QmpAddr::Unix {
                path: "/a,b".into(),
                access: Default::default(),
            }));
    }

    #[test]
    fn devices_take_driver_first() {
        let d = parse_device("echo,id=e0,chardev=c0").unwrap();
        assert_eq!((d.driver.as_str(), d.id.as_deref()), ("echo", Some("e0")));
        assert_eq!(d.props, vec![("chardev".to_owned(), Json::str("c0"))]);
    }
}
