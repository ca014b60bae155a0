//! The `chardevd` daemon: parse QEMU-style options, start the actor system,
//! wait for SIGINT/SIGTERM or a QMP `quit`, clean up.
//!
//! Messages follow QEMU's: `chardevd: -OPTION ARG: message`, the whole
//! option quoted, hint lines after it.
use chardevd::config::{self, ChardevOpt, DeviceOpt, ObjectOpt};
use chardevd::error::{Error, OsError};
use chardevd::qmp::listener::{remove_socket_file, QmpAddr};
use chardevd::runtime::{self, Config};
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the help text's notes start.
const NOTE_COLUMN: usize = 46;

fn usage() -> String {
    let options = format!(
        "{}\n\n\
         --stall-timeout SECS\tdrop a QMP client whose socket accepts nothing for SECS (default 60)\n\
         --max-sessions N\tQMP sessions per listener (default 1024)\n\
         --threads N\tthreads for chardevs and QMP sessions (default: one per core)\n\
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
         With no options at all, a ringbuf chardev 'console0' is created too.\n\
         Logging: RUST_LOG=debug (tracing's env filter), to stderr.\n",
    );
    text
}

/// Print to stdout; a closed or full stdout ends the program quietly.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the effective uid; no libc call needed.
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

/// The default QMP socket: `$XDG_RUNTIME_DIR/chardevd/qmp.sock` if that
/// runtime directory exists, else `/tmp/chardevd-$UID/qmp.sock`.
fn default_socket() -> PathBuf {
    let fallback = PathBuf::from(format!("/tmp/chardevd-{}", uid()));
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() && std::path::Path::new(&d).is_dir() => PathBuf::from(d).join("chardevd"),
        Some(d) if !d.is_empty() => {
            eprintln!(
                "chardevd: XDG_RUNTIME_DIR={} does not exist; using {}",
                std::path::Path::new(&d).display(),
                fallback.display()
            );
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
#[derive(Default)]
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

fn parse_args(args: Vec<String>) -> Result<Option<Cli>, String> {
    let no_args = args.is_empty();
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
            "h" | "help" => {
                print_out(&usage());
                return Ok(None);
            }
            "version" | "V" => {
                print_out(&format!(
                    "chardevd {} (QMP as QEMU 10.0.2)\n",
                    env!("CARGO_PKG_VERSION")
                ));
                return Ok(None);
            }
            "chardev" => {
                let v = value()?;
                let mut warnings = Vec::new();
                let c = config::parse_chardev_after(&v, &chardev_ids, &mut warnings);
                for w in &warnings {
                    eprintln!("chardevd: {flag} {v}: warning: {w}");
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
            "stall-timeout" => {
                let v = value()?;
                let secs: f64 = v.parse().map_err(|_| format!("{flag} {v}: seconds expected"))?;
                if !secs.is_finite() || secs <= 0.0 {
                    return Err(format!("{flag} {v}: must be positive"));
                }
                cli.cfg.limits.stall_timeout = std::time::Duration::from_secs_f64(secs);
            }
            "max-sessions" => {
                let v = value()?;
                cli.cfg.limits.max_sessions = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("{flag} {v}: a positive number expected"))?;
            }
            "threads" => {
                let v = value()?;
                cli.cfg.arbiters = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("{flag} {v}: a positive number expected"))?;
            }
            "allow-exit" if inline.is_none() => cli.cfg.allow_exit = true,
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
        let path = default_socket();
        prepare_private_dir(&path)?;
        cli.default_qmp = true;
        cli.qmp.push((
            format!("unix:{}", path.display()),
            QmpAddr::Unix {
                path,
                mode: Some(0o600),
            },
        ));
    }
    if no_args {
        use chardevd::backends::{ringbuf::Ringbuf, ChardevBackend};
        cli.chardevs.push((
            "console0".into(),
            ChardevOpt {
                id: "console0".into(),
                backend: ChardevBackend::new(Ringbuf::default()),
                mux: false,
            },
        ));
    }
    Ok(Some(cli))
}

/// An error's text as QEMU prints it on the command line: a chardev's
/// creation failure is its bare cause.
fn cause(e: Error) -> String {
    match e {
        Error::AddFailed { source, .. } => source.to_string(),
        e => e.to_string(),
    }
}

/// Create what the command line asks for, in QEMU's order.
async fn start(handle: &runtime::Handle, cli: Cli) -> Result<(), String> {
    use chardevd::commands::{Device, DeviceAdd, MonitorAdd, ObjectAdd, ObjectProps};
    for (opt, o) in cli.objects {
        let props = ObjectProps::from_json(&o.qom_type, &o.props).map_err(|e| format!("{opt}: {e}"))?;
        handle
            .run(ObjectAdd { id: o.id, props })
            .await
            .map_err(|e| format!("{opt}: {}", cause(e)))?;
    }
    for (opt, c) in cli.chardevs {
        // mux=on: the backend is ID-base, and a mux ID goes over it (QEMU).
        let base = if c.mux { format!("{}-base", c.id) } else { c.id.clone() };
        label_notices(&base, &opt);
        let ret = handle.chardev_add(&base, c.backend).await.map_err(|e| match e {
            // QEMU's text when ID-base clashes with another chardev.
            Error::AlreadyExists(id) => {
                format!("{opt}: attempt to add duplicate property '{id}' to object (type 'container')")
            }
            e => format!("{opt}: {}", cause(e)),
        })?;
        if c.mux {
            use chardevd::backends::{mux::Mux, ChardevBackend};
            label_notices(&c.id, &opt);
            handle
                .chardev_add(&c.id, ChardevBackend::new(Mux::over(base.clone())))
                .await
                .map_err(|e| match e {
                    Error::AlreadyExists(id) => {
                        format!("{opt}: attempt to add duplicate property '{id}' to object (type 'container')")
                    }
                    e => format!("{opt}: {}", cause(e)),
                })?;
        }
        if let Some(pty) = ret.pty {
            // QEMU's line, printed whatever the log level.
            eprintln!("char device redirected to {pty} (label {})", c.id);
        }
    }
    // Monitors after every chardev, before the devices (QEMU's order).
    for (opt, m) in cli.monitors {
        handle
            .run(MonitorAdd {
                id: m.id,
                chardev: m.chardev,
                pretty: m.pretty,
            })
            .await
            .map_err(|e| format!("{opt}: {}", cause(e)))?;
    }
    for (opt, d) in cli.devices {
        let device = Device::from_props(&d.driver, &d.props).map_err(|e| format!("{opt}: {e}"))?;
        handle
            .run(DeviceAdd { id: d.id, device })
            .await
            .map_err(|e| format!("{opt}: {}", cause(e)))?;
    }
    for (opt, addr) in cli.qmp {
        match handle.listen(addr).await {
            Ok(bound) => print_out(&format!("chardevd: QMP listening on {bound}\n")),
            Err(e) if cli.default_qmp => {
                return Err(format!(
                "{opt}: {}\n(is another chardevd running? stop it, or choose a socket with -qmp unix:PATH,server=on)",
                OsError::from(e)
            ))
            }
            Err(e) => return Err(format!("{opt}: {}", OsError::from(e))),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    init_logging();
    let cli = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(cli)) => cli,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chardevd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        eprintln!("chardevd: cannot start the signal runtime");
        return ExitCode::FAILURE;
    };
    let handle = match runtime::spawn(Config {
        limits: cli.cfg.limits,
        arbiters: cli.cfg.arbiters,
        allow_exit: cli.cfg.allow_exit,
        escape_char: cli.cfg.escape_char,
        ..Config::default()
    }) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("chardevd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = match rt.block_on(start(&handle, cli)) {
        Ok(()) => {
            if let Err(e) = rt.block_on(wait_for_signal(&handle)) {
                eprintln!("chardevd: cannot install signal handlers: {e}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chardevd: {e}");
            ExitCode::FAILURE
        }
    };
    handle.shutdown();
    handle.join();
    chardevd::backends::stdio::restore_terminal();
    // A testdev's `q` (with --allow-exit): QEMU's exit((n << 1) | 1).
    let status = match handle.exit_status() {
        Some(code) => ExitCode::from(code),
        None => status,
    };
    for addr in handle.listeners() {
        if let QmpAddr::Unix { path, .. } = addr {
            remove_socket_file(&path);
        }
    }
    status
}

/// Wait for SIGINT or SIGTERM (then send SHUTDOWN, reason `host-signal`,
/// as QEMU does), or until the system stops by itself (QMP `quit`).
async fn wait_for_signal(handle: &runtime::Handle) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    let signo = loop {
        tokio::select! {
            _ = int.recv() => break 2,
            _ = term.recv() => break 15,
            _ = tick.tick() => if !handle.is_running() { return Ok(()); },
        }
    };
    eprintln!("chardevd: terminating on signal {signo}");
    if handle.quit_on_signal().await.is_ok() {
        // The system stops once sessions have their SHUTDOWN (bounded).
        while handle.is_running() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    Ok(())
}

/// Messages the daemon prints whatever the log level (QEMU prints them with
/// `info_report`): tracing events of this target, from the library.
const NOTICE: &str = "chardevd::notice";

/// The option text of each command-line chardev, for notices about it.
fn labels() -> &'static std::sync::Mutex<std::collections::HashMap<String, String>> {
    static LABELS: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, String>>> =
        std::sync::OnceLock::new();
    LABELS.get_or_init(Default::default)
}

fn label_notices(id: &str, option: &str) {
    if let Ok(mut l) = labels().lock() {
        l.insert(id.to_owned(), option.to_owned());
    }
}

/// Prints notices as `chardevd: -chardev OPTION: message`.
struct Notices;

#[derive(Default)]
struct NoticeFields {
    message: String,
    chardev: Option<String>,
}

impl tracing::field::Visit for NoticeFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record_debug(field, &value as &dyn std::fmt::Debug);
        if field.name() == "chardev" {
            self.chardev = Some(value.to_owned());
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "chardev" => self.chardev = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Notices {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != NOTICE {
            return;
        }
        let mut f = NoticeFields::default();
        event.record(&mut f);
        let option = f.chardev.and_then(|id| labels().lock().ok()?.get(&id).cloned());
        match option {
            Some(o) => eprintln!("chardevd: {o}: {}", f.message),
            None => eprintln!("chardevd: {}", f.message),
        }
    }
}

fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        .add_directive(format!("{NOTICE}=off").parse().expect("a valid directive"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter);
    let notices = tracing_subscriber::filter::Targets::new().with_target(NOTICE, tracing::Level::INFO);
    tracing_subscriber::registry()
        .with(fmt)
        .with(Notices.with_filter(notices))
        .init();
}
