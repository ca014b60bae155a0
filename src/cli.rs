//! The daemon's command line: QEMU's options (`-chardev`, `-qmp`, `-mon`,
//! `-object`, `-device`, ...) read into a start-up [`Config`], and QEMU's
//! wording for what goes wrong (`chardevd: -OPTION ARG: message`, the whole
//! option quoted, hint lines after it). The `chardevd` binary is this and a
//! signal handler.
use crate::config::{self, ChardevOpt, DeviceOpt, ObjectOpt};
use crate::error::{Error, OsError};
use crate::net::QmpAddr;
use crate::runtime::{ChardevSpec, Config, ConfigItem};
use std::collections::HashSet;
use std::path::PathBuf;

/// A command line, read.
#[derive(Debug)]
pub enum CommandLine {
    /// Run the daemon with `config`; `report` words its messages.
    Run {
        /// What to start.
        config: Box<Config>,
        /// How to word what happens to it.
        report: CommandLineReport,
    },
    /// Print this (the help, the version) and exit.
    Print(String),
}

impl CommandLine {
    /// Read `args` (without the program name); `warn` gets QEMU's warnings
    /// (deprecated forms, options without effect) as they are read. An
    /// error is QEMU's message, without the `chardevd: ` prefix.
    pub fn parse(args: impl IntoIterator<Item = String>, warn: &mut dyn FnMut(String)) -> Result<CommandLine, String> {
        Ok(match parse_args(args.into_iter().collect(), warn)? {
            Read::Print(text) => CommandLine::Print(text),
            Read::Run(cli) => {
                let default_qmp = cli.default_qmp;
                let (config, labels, refused) = into_config(*cli);
                CommandLine::Run {
                    config: Box::new(config),
                    report: CommandLineReport {
                        labels,
                        refused,
                        default_qmp,
                    },
                }
            }
        })
    }
}

/// How a command line's start is worded.
#[derive(Debug)]
pub struct CommandLineReport {
    labels: Labels,
    refused: Option<String>,
    default_qmp: bool,
}

impl CommandLineReport {
    /// Each chardev's id (a mux's base too) and the option that made it.
    pub fn chardev_options(&self) -> &[(String, String)] {
        &self.labels.chardev_ids
    }

    /// An item QEMU refuses only when it creates it (a device's driver or
    /// properties, an object's type): the configuration stops before it,
    /// and this is its message, to print once what comes before it started.
    pub fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// QEMU's message for a start-up error (without the `chardevd: ` prefix).
    pub fn describe(&self, e: Error) -> String {
        startup_error(e, &self.labels, self.default_qmp)
    }
}

/// What the arguments ask for.
enum Read {
    Run(Box<Cli>),
    Print(String),
}

/// Where the help text's notes start.
const NOTE_COLUMN: usize = 46;

fn usage() -> String {
    let options = format!(
        "{}\n\n\
         Limits (sizes take QEMU's suffixes: 64k, 4M, 1G):\n\
         --max-sessions N\tQMP sessions per listener (default 1024)\n\
         --max-message SIZE\tlargest QMP message (default 64M, QEMU's)\n\
         --max-input SIZE\tpartly received QMP messages of all sessions together (default 256M)\n\
         --max-output SIZE\tQMP output a session queues before it stops reading (default 4M)\n\
         --max-events N\tunread events before a QMP client is dropped (default 4096)\n\
         --stall-timeout SECS\tdrop a QMP client whose socket accepts nothing for SECS (default 60)\n\
         --max-fds N\tdescriptors a QMP session holds under getfd names (default 64; 256 in all)\n\
         --max-chardevs N\tchardevs at once (default 65536)\n\
         --max-devices N\tdevices at once (default 4096)\n\
         --max-monitors N\tQMP monitors on chardevs at once (default 256)\n\
         --command-deadline SECS\ta command waiting to open (a fifo with no reader, wait=on) fails after SECS; 0: waits for ever, as QEMU (default 60)\n\
         --handshake-timeout SECS\tTLS, telnet and websocket handshakes (default 10)\n\
         --max-read SIZE\tthe most one ringbuf-read takes (default 16M)\n\
         --threads N\tthreads for chardevs and QMP sessions (default: one per core)\n\
         --web ADDR[,tls-creds=ID][,token=T|token-file=PATH][,origin=URL]\tthe web console: the chardevs, a terminal on each console, /metrics (tcp:127.0.0.1:8080, or unix:PATH; other hosts need TLS and a token)\n\
         --allow-exit\tlet a mux's C-a x and a testdev's q stop the daemon, as in QEMU (default: an event)\n\
         -echr N\tthe mux escape character (default 1: C-a; 0x14 is C-t)\n\
         -h, -help, --help, help\tthis text\n\
         -V, -version, --version\tthe version\n\
         Every --option VALUE may also be written --option=VALUE.",
        config::syntax()
    );
    let mut text = format!(
        "chardevd {} - QEMU's character devices and QMP, as a standalone daemon\n\n\
         Usage: chardevd [OPTIONS]\n\n\
         Options (QEMU syntax):\n",
        env!("CARGO_PKG_VERSION")
    );
    for line in options.lines() {
        match line.split_once('\t') {
            Some((usage, note)) if usage.len() < NOTE_COLUMN => {
                text.push_str(&format!("{usage:NOTE_COLUMN$}{note}\n"));
            }
            Some((usage, note)) => {
                text.push_str(&format!("{usage}\n{:NOTE_COLUMN$}{note}\n", ""));
            }
            None => {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    text.push_str(
        "\nWith no -qmp, QMP listens on a unix socket (mode 0600) at\n\
         $XDG_RUNTIME_DIR/chardevd/qmp.sock, or /tmp/chardevd-$UID/qmp.sock.\n\
         With no options at all (or only --web), a ringbuf chardev 'console0' is created too.\n\
         Logging: RUST_LOG=debug (tracing's env filter), to stderr.\n",
    );
    text
}

fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the effective uid; no libc call needed.
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// The default QMP socket: `$XDG_RUNTIME_DIR/chardevd/qmp.sock` if that
/// runtime directory exists, else `/tmp/chardevd-$UID/qmp.sock`.
fn default_socket(warn: &mut dyn FnMut(String)) -> PathBuf {
    let fallback = PathBuf::from(format!("/tmp/chardevd-{}", uid()));
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && std::path::Path::new(&d).is_dir() => PathBuf::from(d).join("chardevd"),
        Some(d) if !d.is_empty() => {
            warn(format!(
                "XDG_RUNTIME_DIR={} does not exist; using {}",
                std::path::Path::new(&d).display(),
                fallback.display()
            ));
            fallback
        }
        _ => fallback,
    };
    dir.join("qmp.sock")
}

fn prepare_private_dir(socket: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let Some(dir) = socket.parent() else {
        return Ok(());
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {}", dir.display(), OsError::from(e)))?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {}", dir.display(), OsError::from(e)))?;
    if !meta.is_dir() || meta.uid() != uid() || meta.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "{} is not a private directory owned by this user; pass -qmp unix:PATH,server=on",
            dir.display()
        ));
    }
    Ok(())
}

/// What the command line asks for, each item with the option text QEMU
/// would quote in a message about it.
#[derive(Debug, Default)]
struct Cli {
    cfg: Config,
    objects: Vec<(String, ObjectOpt)>,
    chardevs: Vec<(String, ChardevOpt)>,
    devices: Vec<(String, DeviceOpt)>,
    qmp: Vec<(String, QmpAddr)>,
    /// QMP monitors on chardevs (`-mon`, `-qmp` on a chardev).
    monitors: Vec<(String, config::MonOpt)>,
    /// The QMP socket was not asked for: chardevd chose it.
    default_qmp: bool,
}

/// A positive count.
fn count(flag: &str, v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(format!("{flag} {v}: a positive number expected"))
}

/// A positive size in QEMU's syntax (`64k`, `4M`).
fn size(flag: &str, v: &str) -> Result<usize, String> {
    let n = crate::options::parse_size(flag.trim_start_matches('-'), v).map_err(|e| format!("{flag} {v}: {e}"))?;
    usize::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or(format!("{flag} {v}: a positive size expected"))
}

/// A positive duration in seconds.
fn seconds(flag: &str, v: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = v.parse().map_err(|_| format!("{flag} {v}: seconds expected"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{flag} {v}: must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Options QEMU has that chardevd does not, with what to use instead.
fn unsupported(name: &str) -> Option<&'static str> {
    Some(match name {
        "monitor" => "chardevd has no human monitor (HMP); QMP is served with -qmp unix:PATH,server=on",
        "serial" | "parallel" | "virtioconsole" => {
            "chardevd has no guest serial or parallel port: create the chardev with \
             -chardev KIND,id=ID and attach a frontend with -device echo|port,chardev=ID"
        }
        "nographic" | "display" | "vga" => "chardevd has no display; it needs no -nographic",
        "machine" | "M" | "nodefaults" | "S" | "daemonize" => "chardevd runs no machine; the option is not needed",
        _ => return None,
    })
}

fn parse_args(args: Vec<String>, warn: &mut dyn FnMut(String)) -> Result<Read, String> {
    // No options, or only the web console's: the daemon's defaults (a
    // ringbuf `console0` beside the default QMP socket).
    let web_only = match args.as_slice() {
        [flag, _] => flag == "--web" || flag == "-web",
        [flag] => flag.starts_with("--web=") || flag.starts_with("-web="),
        _ => false,
    };
    let no_args = args.is_empty() || web_only;
    let mut cli = Cli::default();
    let (mut chardev_ids, mut object_ids, mut device_ids) = (HashSet::new(), HashSet::new(), HashSet::new());
    let (mut mon_ids, mut compat) = (HashSet::new(), 0);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        // `--opt=value` is `--opt value`.
        let (name, inline) = match arg.strip_prefix('-') {
            Some(rest) => match rest.trim_start_matches('-').split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (rest.trim_start_matches('-').to_owned(), None),
            },
            None => (arg.clone(), None),
        };
        // Messages quote the option as it was written.
        let flag = match (&inline, arg.split_once('=')) {
            (Some(_), Some((f, _))) => f.to_owned(),
            _ => arg.clone(),
        };
        let mut value = || match inline.clone() {
            Some(v) => Ok(v),
            None => it.next().ok_or_else(|| format!("{arg}: requires an argument")),
        };
        match name.as_str() {
            "h" | "help" => return Ok(Read::Print(usage())),
            "version" | "V" => {
                return Ok(Read::Print(format!(
                    "chardevd {} (QMP as QEMU 10.0.2)\n",
                    env!("CARGO_PKG_VERSION")
                )))
            }
            "chardev" => {
                let v = value()?;
                let mut warnings = Vec::new();
                let c = config::parse_chardev_after(&v, &chardev_ids, &mut warnings);
                for w in &warnings {
                    warn(format!("{flag} {v}: warning: {w}"));
                }
                let c = c.map_err(|e| format!("{flag} {v}: {e}"))?;
                chardev_ids.insert(c.id.clone());
                cli.chardevs.push((format!("{flag} {v}"), c));
            }
            "qmp" | "qmp-pretty" => {
                let v = value()?;
                let opt = format!("{flag} {v}");
                // Each line of the message names the option (QEMU's two lines
                // for a bad chardev spec).
                let target = config::parse_qmp_target(&v, compat).map_err(|e| {
                    e.lines()
                        .map(|l| format!("{opt}: {l}"))
                        .collect::<Vec<_>>()
                        .join("\nchardevd: ")
                })?;
                match target {
                    config::QmpTarget::Listen(q) => cli.qmp.push((opt, q.addr)),
                    config::QmpTarget::Monitor { chardev, on } => {
                        if let Some(c) = chardev {
                            compat += 1;
                            chardev_ids.insert(c.id.clone());
                            cli.chardevs.push((opt.clone(), c));
                        }
                        let pretty = name == "qmp-pretty";
                        cli.monitors.push((
                            opt,
                            config::MonOpt {
                                id: None,
                                chardev: on,
                                pretty,
                            },
                        ));
                    }
                }
            }
            "mon" => {
                let v = value()?;
                let opt = format!("{flag} {v}");
                let m = config::parse_mon(&v).map_err(|e| format!("{opt}: {e}"))?;
                if let Some(id) = &m.id {
                    if !mon_ids.insert(id.clone()) {
                        return Err(format!("{opt}: Duplicate ID '{id}' for mon"));
                    }
                }
                cli.monitors.push((opt, m));
            }
            "stall-timeout" => cli.cfg.limits.stall_timeout = seconds(&flag, &value()?)?,
            "max-sessions" => cli.cfg.limits.max_sessions = count(&flag, &value()?)?,
            "max-events" => cli.cfg.limits.event_queue = count(&flag, &value()?)?,
            "max-fds" => cli.cfg.limits.session_fds = count(&flag, &value()?)?,
            "max-chardevs" => cli.cfg.limits.max_chardevs = count(&flag, &value()?)?,
            "max-devices" => cli.cfg.limits.max_devices = count(&flag, &value()?)?,
            "max-monitors" => cli.cfg.limits.max_monitors = count(&flag, &value()?)?,
            "max-message" => cli.cfg.limits.max_message = size(&flag, &value()?)?,
            "max-input" => cli.cfg.limits.total_input = size(&flag, &value()?)?,
            "max-output" => cli.cfg.limits.output_bytes = size(&flag, &value()?)?,
            "max-read" => cli.cfg.limits.max_read = size(&flag, &value()?)?,
            "handshake-timeout" => cli.cfg.limits.handshake_timeout = seconds(&flag, &value()?)?,
            "command-deadline" => {
                let v = value()?;
                cli.cfg.limits.command_deadline = match v.as_str() {
                    "0" => None,
                    _ => Some(seconds(&flag, &v)?),
                };
            }
            "threads" => {
                let v = value()?;
                cli.cfg.threads = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("{flag} {v}: a positive number expected"))?;
            }
            "allow-exit" if inline.is_none() => cli.cfg.allow_exit = true,
            #[cfg(feature = "web")]
            "web" => {
                let v = value()?;
                cli.cfg.web = Some(crate::web::WebConfig::parse(&v).map_err(|e| format!("{flag} {v}: {e}"))?);
            }
            "echr" => {
                // QEMU's strtol(.., 0): decimal, 0x hex or 0 octal.
                let v = value()?;
                let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                    u8::from_str_radix(h, 16).ok()
                } else if v.len() > 1 && v.starts_with('0') {
                    u8::from_str_radix(&v[1..], 8).ok()
                } else {
                    v.parse().ok()
                };
                cli.cfg.escape_char = Some(n.ok_or(format!("{flag} {v}: a character code 0-255 expected"))?);
            }
            "object" => {
                let v = value()?;
                let o = config::parse_object(&v).map_err(|e| format!("{flag} {v}: {e}"))?;
                if !object_ids.insert(o.id.clone()) {
                    return Err(format!("{flag} {v}: Duplicate ID '{}' for object", o.id));
                }
                cli.objects.push((format!("{flag} {v}"), o));
            }
            "device" => {
                let v = value()?;
                let d = config::parse_device(&v).map_err(|e| format!("{flag} {v}: {e}"))?;
                if let Some(id) = &d.id {
                    if !device_ids.insert(id.clone()) {
                        return Err(format!("{flag} {v}: Duplicate ID '{id}' for device"));
                    }
                }
                cli.devices.push((format!("{flag} {v}"), d));
            }
            n if arg.starts_with('-') => match unsupported(n) {
                Some(instead) => return Err(format!("{arg}: {instead}")),
                None => return Err(format!("{arg}: invalid option (see --help)")),
            },
            _ => return Err(format!("{arg}: not an option (options start with '-'; see --help)")),
        }
    }
    if cli.qmp.is_empty() && cli.monitors.is_empty() {
        let path = default_socket(warn);
        prepare_private_dir(&path)?;
        cli.default_qmp = true;
        cli.qmp.push((
            format!("unix:{}", path.display()),
            QmpAddr::Unix {
                path,
                access: crate::net::UnixAccess::PRIVATE,
            },
        ));
    }
    if no_args {
        use crate::backends::{ringbuf::Ringbuf, ChardevBackend};
        cli.chardevs.push((
            "console0".into(),
            ChardevOpt {
                id: "console0".into(),
                backend: ChardevBackend::new(Ringbuf::default()),
                mux: false,
            },
        ));
    }
    Ok(Read::Run(Box::new(cli)))
}

/// An error's text as QEMU prints it on the command line: a chardev's
/// creation failure is its bare cause.
fn cause(e: Error) -> String {
    match e {
        Error::AddFailed { source, .. } => source.to_string(),
        e => e.to_string(),
    }
}

/// The option text of each item of a [`Config`], to quote in messages.
#[derive(Debug, Default)]
struct Labels {
    /// The chardevs' ids (a mux's base too) and their options.
    chardev_ids: Vec<(String, String)>,
    objects: Vec<String>,
    chardevs: Vec<String>,
    monitors: Vec<String>,
    devices: Vec<String>,
    qmp: Vec<String>,
}

impl Labels {
    fn of(&self, item: ConfigItem) -> &str {
        let (list, i) = match item {
            ConfigItem::Object(i) => (&self.objects, i),
            ConfigItem::Chardev(i) => (&self.chardevs, i),
            ConfigItem::Monitor(i) => (&self.monitors, i),
            ConfigItem::Device(i) => (&self.devices, i),
            ConfigItem::Qmp(i) => (&self.qmp, i),
            ConfigItem::Web => return "--web",
        };
        list.get(i).map_or("", String::as_str)
    }
}

/// The command line as the library's start-up description. An item QEMU
/// would refuse only when it creates it (a device's driver or properties,
/// an object's type) ends the description there, in QEMU's order of
/// creation; its message is returned, to print once what comes before it
/// was created.
fn into_config(cli: Cli) -> (Config, Labels, Option<String>) {
    use crate::commands::{Device, DeviceAdd, MonitorAdd, ObjectAdd, ObjectProps};
    let mut cfg = cli.cfg;
    let mut labels = Labels::default();
    let mut refused = None;
    for (opt, o) in cli.objects {
        match ObjectProps::from_json(&o.qom_type, &o.props) {
            Ok(props) => {
                cfg.objects.push(ObjectAdd { id: o.id, props });
                labels.objects.push(opt);
            }
            Err(e) => {
                refused = Some(format!("{opt}: {e}"));
                break;
            }
        }
    }
    if refused.is_some() {
        return (cfg, labels, refused);
    }
    for (opt, c) in cli.chardevs {
        let base = if c.mux { format!("{}-base", c.id) } else { c.id.clone() };
        labels.chardev_ids.push((base, opt.clone()));
        if c.mux {
            labels.chardev_ids.push((c.id.clone(), opt.clone()));
        }
        cfg.chardevs.push(ChardevSpec {
            id: c.id,
            backend: c.backend,
            mux: c.mux,
        });
        labels.chardevs.push(opt);
    }
    // Monitors after every chardev, before the devices (QEMU's order).
    for (opt, m) in cli.monitors {
        cfg.monitors.push(MonitorAdd {
            id: m.id,
            chardev: m.chardev,
            pretty: m.pretty,
        });
        labels.monitors.push(opt);
    }
    for (opt, d) in cli.devices {
        match Device::from_props(&d.driver, &d.props) {
            Ok(device) => {
                cfg.devices.push(DeviceAdd { id: d.id, device });
                labels.devices.push(opt);
            }
            Err(e) => {
                refused = Some(format!("{opt}: {e}"));
                break;
            }
        }
    }
    if refused.is_none() {
        for (opt, addr) in cli.qmp {
            cfg.qmp.push(addr);
            labels.qmp.push(opt);
        }
    }
    (cfg, labels, refused)
}

/// A start-up failure as QEMU prints it: the option quoted, the cause.
fn startup_error(e: Error, labels: &Labels, default_qmp: bool) -> String {
    let Error::Startup { item, source } = e else {
        return e.to_string();
    };
    let opt = labels.of(item);
    match (item, *source) {
        // QEMU's text when ID-base (mux=on) clashes with another chardev.
        (ConfigItem::Chardev(_), Error::AlreadyExists(id)) => {
            format!("{opt}: attempt to add duplicate property '{id}' to object (type 'container')")
        }
        (ConfigItem::Qmp(_), Error::Listen { source, .. }) if default_qmp => format!(
            "{opt}: {source}\n(is another chardevd running? stop it, or choose a socket with -qmp unix:PATH,server=on)"
        ),
        (ConfigItem::Qmp(_), Error::Listen { source, .. }) => format!("{opt}: {source}"),
        (_, e) => format!("{opt}: {}", cause(e)),
    }
}
