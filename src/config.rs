//! QEMU option strings: `-chardev`, `-qmp` and `-device`, as typed specs.
//!
//! QEMU's syntax is `key=value` pairs separated by commas, with `,,` standing
//! for a literal comma; the first item may omit its key (the backend name for
//! `-chardev`, the driver for `-device`). Booleans take `on`/`off` (also
//! `yes`/`no`, `true`/`false`), and sizes take QEMU's suffixes (`64K`, `1M`).
use crate::backends::spec::*;
use crate::json::Json;
use crate::qmp::listener::QmpAddr;
use std::path::PathBuf;

/// Help text for the option syntax.
pub const SYNTAX: &str = "\
Every -chardev also takes [,logfile=PATH][,logappend=on|off].
-chardev null,id=ID
-chardev file,id=ID,path=OUT[,input-path=IN][,append=on|off]
-chardev pipe,id=ID,path=PATH             (PATH.in/PATH.out, else PATH both ways)
-chardev pty,id=ID[,path=SYMLINK]
-chardev serial,id=ID,path=DEVICE          (alias tty)
-chardev parallel,id=ID,path=DEVICE        (alias parport; Linux ppdev)
-chardev stdio,id=ID[,signal=on|off]
-chardev udp,id=ID,[host=HOST],port=PORT[,localaddr=ADDR][,localport=PORT][,ipv4=on][,ipv6=on]
-chardev ringbuf,id=ID[,size=SIZE]        (SIZE a power of two, default 64K)
-chardev memory,id=ID[,size=SIZE]                                    (deprecated alias of ringbuf)
-qmp unix:PATH,server=on[,wait=off]
-qmp tcp:[HOST]:PORT,server=on[,wait=off]     (an empty HOST listens on every interface: keep QMP off networks)
-device echo,id=ID,chardev=ID                  (writes back what it receives)
-device port,id=ID,chardev=ID                  (virtio-serial-like port: VSERPORT_CHANGE)
A literal comma in a value is written ',,'.";

/// Split `a=b,c=d` with `,,` escapes; an item without `=` is returned with an empty key.
pub fn split_opts(s: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                items.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    items.push(cur);
    items
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (String::new(), item),
        })
        .collect()
}

/// Parse a QEMU boolean.
pub fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => Err(format!("Parameter '{key}' expects 'on' or 'off'")),
    }
}

/// Parse a QEMU size (`65536`, `64K`, `1M`, `2G`).
pub fn parse_size(key: &str, v: &str) -> Result<i64, String> {
    let err = || format!("Parameter '{key}' expects a non-negative number below 2^64");
    let (num, mult) = match v.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: i64 = match c.to_ascii_uppercase() {
                'B' => 1,
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(err()),
            };
            (&v[..i], m)
        }
        _ => (v, 1),
    };
    let n: i64 = num.parse().map_err(|_| err())?;
    if n < 0 {
        return Err(err());
    }
    n.checked_mul(mult).ok_or_else(err)
}

/// A parsed `-chardev`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChardevOpt {
    /// The id.
    pub id: String,
    /// The backend.
    pub backend: ChardevBackend,
}

/// Parse a `-chardev` argument.
pub fn parse_chardev(s: &str) -> Result<ChardevOpt, String> {
    let mut opts = split_opts(s);
    if opts.is_empty() || !opts[0].0.is_empty() {
        return Err("chardev: backend type is missing (e.g. -chardev ringbuf,id=log0)".into());
    }
    let kind = opts.remove(0).1;
    let mut id = None;
    let mut common = ChardevCommon::default();
    let mut kv: Vec<(String, String)> = Vec::new();
    for (k, v) in opts {
        match k.as_str() {
            "id" => id = Some(v),
            "logfile" => common.logfile = Some(v),
            "logappend" => common.logappend = Some(parse_bool("logappend", &v)?),
            "" => return Err(format!("Invalid parameter '{v}'")),
            _ => kv.push((k, v)),
        }
    }
    let Some(id) = id else {
        return Err("Parameter 'id' is missing".into());
    };
    let mut take = |key: &str| kv.iter().position(|(k, _)| k == key).map(|i| kv.remove(i).1);
    let path = |take: &mut dyn FnMut(&str) -> Option<String>, what: &str| {
        take("path").ok_or_else(|| format!("chardev: {what}: no device path given"))
    };
    let backend = match kind.as_str() {
        "null" => ChardevBackend::Null(common),
        "ringbuf" | "memory" => {
            // As in QEMU, size=0 on the command line means the default.
            let size = take("size")
                .map(|v| parse_size("size", &v))
                .transpose()?
                .filter(|s| *s != 0);
            let r = ChardevRingbuf { common, size };
            if kind == "ringbuf" {
                ChardevBackend::Ringbuf(r)
            } else {
                ChardevBackend::Memory(r)
            }
        }
        "file" => {
            let out = take("path").ok_or("chardev: file: no filename given")?;
            let input = take("input-path");
            let append = take("append").map(|v| parse_bool("append", &v)).transpose()?;
            ChardevBackend::File(ChardevFile {
                common,
                input,
                out,
                append,
            })
        }
        "pipe" => ChardevBackend::Pipe(ChardevHostdev {
            common,
            device: path(&mut take, "pipe")?,
        }),
        "serial" | "tty" => ChardevBackend::Serial(ChardevHostdev {
            common,
            device: path(&mut take, "serial/tty")?,
        }),
        "parallel" | "parport" => ChardevBackend::Parallel(ChardevHostdev {
            common,
            device: path(&mut take, "parallel")?,
        }),
        "pty" => ChardevBackend::Pty(ChardevPty {
            common,
            path: take("path"),
        }),
        "stdio" => {
            let signal = Some(
                take("signal")
                    .map(|v| parse_bool("signal", &v))
                    .transpose()?
                    .unwrap_or(true),
            );
            ChardevBackend::Stdio(ChardevStdio { common, signal })
        }
        "udp" => {
            let host = take("host").unwrap_or_else(|| "localhost".into());
            let port = take("port").ok_or("chardev: udp: remote port not specified")?;
            let ipv4 = take("ipv4").map(|v| parse_bool("ipv4", &v)).transpose()?;
            let ipv6 = take("ipv6").map(|v| parse_bool("ipv6", &v)).transpose()?;
            let localaddr = take("localaddr");
            let localport = take("localport");
            let inet = |host: String, port: String| {
                SocketAddressLegacy::Inet(InetSocketAddress {
                    host,
                    port,
                    numeric: None,
                    to: None,
                    ipv4,
                    ipv6,
                    keep_alive: None,
                    mptcp: None,
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
            ChardevBackend::Udp(ChardevUdp {
                common,
                remote: inet(host, port),
                local,
            })
        }
        other => return Err(format!("'{other}' is not a valid char driver name")),
    };
    if let Some((k, _)) = kv.first() {
        return Err(format!("Invalid parameter '{k}'"));
    }
    Ok(ChardevOpt { id, backend })
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
    for (k, v) in opts {
        match k.as_str() {
            "server" => server = parse_bool("server", &v)?,
            "wait" => wait = parse_bool("wait", &v)?,
            "" if v == "server" => server = true,
            "" if v == "nowait" => wait = false,
            "" => return Err(format!("Invalid parameter '{v}'")),
            other => return Err(format!("Invalid parameter '{other}'")),
        }
    }
    if !server {
        return Err("only listening QMP sockets are supported: add server=on".into());
    }
    let addr = if let Some(path) = target.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: needs a path".into());
        }
        QmpAddr::Unix {
            path: PathBuf::from(path),
            mode: None,
        }
    } else if let Some(rest) = target.strip_prefix("tcp:") {
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("tcp: needs HOST:PORT, got '{rest}'"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = port.parse().map_err(|_| format!("invalid port '{port}'"))?;
        QmpAddr::Tcp { host, port }
    } else {
        return Err(format!(
            "'{target}' is not a supported QMP address (use unix:PATH or tcp:HOST:PORT)"
        ));
    };
    Ok(QmpOpt { addr, wait })
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
    let driver = driver.ok_or("Parameter 'driver' is missing")?;
    Ok(DeviceOpt { driver, id, props })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_commas_escape_a_comma() {
        assert_eq!(
            split_opts("ringbuf,id=a,,b,size=4"),
            vec![
                ("".into(), "ringbuf".into()),
                ("id".into(), "a,b".into()),
                ("size".into(), "4".into())
            ]
        );
        let c = parse_chardev("ringbuf,id=x,,y,logfile=/tmp/a,,b").unwrap();
        assert_eq!(c.id, "x,y");
        assert_eq!(c.backend.common().logfile.as_deref(), Some("/tmp/a,b"));
    }

    #[test]
    fn chardev_options_parse_to_typed_backends() {
        let c = parse_chardev("ringbuf,id=log0,size=64K").unwrap();
        assert_eq!(
            c.backend,
            ChardevBackend::Ringbuf(ChardevRingbuf {
                common: Default::default(),
                size: Some(65536)
            })
        );
        let c = parse_chardev("ringbuf,id=log0,size=0").unwrap();
        assert_eq!(
            c.backend,
            ChardevBackend::Ringbuf(ChardevRingbuf {
                common: Default::default(),
                size: None
            })
        );
        assert!(parse_chardev("null,id=n,logappend=on").is_ok());
        assert_eq!(parse_chardev("null").unwrap_err(), "Parameter 'id' is missing");
        assert_eq!(
            parse_chardev("null,id=n,bogus=1").unwrap_err(),
            "Invalid parameter 'bogus'"
        );
        assert_eq!(
            parse_chardev("nope,id=n").unwrap_err(),
            "'nope' is not a valid char driver name"
        );
    }

    #[test]
    fn qmp_addresses_parse_like_qemu() {
        let q = parse_qmp("unix:/tmp/q.sock,server=on,wait=off").unwrap();
        assert_eq!(
            q.addr,
            QmpAddr::Unix {
                path: "/tmp/q.sock".into(),
                mode: None
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
                mode: None
            }));
    }

    #[test]
    fn sizes_take_qemu_suffixes() {
        assert_eq!(parse_size("size", "64K"), Ok(65536));
        assert_eq!(parse_size("size", "1M"), Ok(1 << 20));
        assert_eq!(parse_size("size", "512"), Ok(512));
        assert!(parse_size("size", "-1").is_err());
        assert!(parse_size("size", "1Q").is_err());
    }

    #[test]
    fn devices_take_driver_first() {
        let d = parse_device("echo,id=e0,chardev=c0").unwrap();
        assert_eq!((d.driver.as_str(), d.id.as_deref()), ("echo", Some("e0")));
        assert_eq!(d.props, vec![("chardev".to_owned(), Json::str("c0"))]);
    }
}
