//! The `chardevd` daemon: parse QEMU-style options, start the actor system,
//! wait for SIGINT/SIGTERM or a QMP `quit`, clean up.
use chardevd::config;
use chardevd::qmp::listener::{remove_socket_file, QmpAddr};
use chardevd::runtime::{self, Config};
use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> String {
    format!(
        "chardevd {} - QEMU's character devices and QMP, as a standalone daemon\n\n\
         Usage: chardevd [OPTIONS]\n\n\
         Options (QEMU syntax):\n{}\n\n\
         --stall-timeout SECS  drop a QMP client whose socket accepts nothing for SECS (default 60)\n\
         --max-sessions N      QMP sessions per listener (default 1024)\n\
         --threads N           threads for chardevs and QMP sessions (default: one per core)\n\
         --help, -h        this text\n\
         --version, -version\n\n\
         With no -qmp, QMP listens on a unix socket (mode 0600) at\n\
         $XDG_RUNTIME_DIR/chardevd/qmp.sock, or /tmp/chardevd-$UID/qmp.sock.\n\
         With no options at all, a ringbuf chardev 'console0' is created too.\n\
         Logging: RUST_LOG=debug (tracing's env filter), to stderr.\n",
        env!("CARGO_PKG_VERSION"),
        config::syntax()
    )
}

fn default_socket() -> PathBuf {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("chardevd"),
        _ => PathBuf::from(format!("/tmp/chardevd-{}", rustix_uid())),
    };
    dir.join("qmp.sock")
}

fn rustix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is the effective uid; no libc call needed.
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0)
}

fn prepare_private_dir(socket: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    let Some(dir) = socket.parent() else {
        return Ok(());
    };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != rustix_uid() || meta.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "{} is not a private directory owned by this user; pass -qmp unix:PATH,server=on",
            dir.display()
        ));
    }
    Ok(())
}

fn parse_args(args: Vec<String>) -> Result<Option<Config>, String> {
    let no_args = args.is_empty();
    let mut cfg = Config::default();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name}: requires an argument"));
        match arg.trim_start_matches('-') {
            "h" | "help" => {
                print!("{}", usage());
                return Ok(None);
            }
            "version" | "V" => {
                println!("chardevd {} (QMP as QEMU 10.0.2)", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "chardev" => {
                let v = value("-chardev")?;
                let c = config::parse_chardev(&v).map_err(|e| format!("-chardev {v}: {e}"))?;
                cfg.chardevs.push((c.id, c.backend));
            }
            "qmp" => {
                let v = value("-qmp")?;
                let q = config::parse_qmp(&v).map_err(|e| format!("-qmp {v}: {e}"))?;
                cfg.qmp.push(q.addr);
            }
            "stall-timeout" => {
                let v = value("--stall-timeout")?;
                let secs: f64 = v
                    .parse()
                    .map_err(|_| format!("--stall-timeout {v}: seconds expected"))?;
                if !secs.is_finite() || secs <= 0.0 {
                    return Err(format!("--stall-timeout {v}: must be positive"));
                }
                cfg.limits.stall_timeout = std::time::Duration::from_secs_f64(secs);
            }
            "max-sessions" => {
                let v = value("--max-sessions")?;
                cfg.limits.max_sessions = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--max-sessions {v}: a positive number expected"))?;
            }
            "threads" => {
                let v = value("--threads")?;
                cfg.arbiters = v
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or(format!("--threads {v}: a positive number expected"))?;
            }
            "object" => {
                let v = value("-object")?;
                cfg.objects
                    .push(config::parse_object(&v).map_err(|e| format!("-object {v}: {e}"))?);
            }
            "device" => {
                let v = value("-device")?;
                cfg.devices
                    .push(config::parse_device(&v).map_err(|e| format!("-device {v}: {e}"))?);
            }
            _ => return Err(format!("{arg}: invalid option (see --help)")),
        }
    }
    if cfg.qmp.is_empty() {
        let path = default_socket();
        prepare_private_dir(&path)?;
        cfg.qmp.push(QmpAddr::Unix {
            path,
            mode: Some(0o600),
        });
    }
    if no_args {
        use chardevd::backends::{ringbuf::Ringbuf, ChardevBackend};
        cfg.chardevs
            .push(("console0".into(), ChardevBackend::new(Ringbuf::default())));
    }
    Ok(Some(cfg))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cfg = match parse_args(std::env::args().skip(1).collect()) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chardevd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match runtime::spawn(cfg) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("chardevd: {e}");
            return ExitCode::FAILURE;
        }
    };
    for addr in handle.listeners() {
        println!("chardevd: QMP listening on {addr}");
    }
    if let Err(e) = wait_for_signal(&handle) {
        eprintln!("chardevd: cannot install signal handlers: {e}");
    }
    handle.shutdown();
    handle.join();
    chardevd::backends::stdio::restore_terminal();
    for addr in handle.listeners() {
        if let QmpAddr::Unix { path, .. } = addr {
            remove_socket_file(&path);
        }
    }
    ExitCode::SUCCESS
}

/// Block until SIGINT or SIGTERM, or until the system stops by itself (QMP `quit`).
fn wait_for_signal(handle: &runtime::Handle) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); break; }
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
                _ = tick.tick() => if !handle.is_running() { break; },
            }
        }
        Ok(())
    })
}
