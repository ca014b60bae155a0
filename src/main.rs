//! The `chardevd` daemon: the command line (QEMU's options) read into the
//! library's start-up description, the system started, then SIGINT/SIGTERM
//! or a QMP `quit` awaited.
use chardevd::{CommandLine, Handle};
use std::io::Write;
use std::process::ExitCode;

/// Print to stdout; a closed or full stdout ends the program quietly.
fn print_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn main() -> ExitCode {
    init_logging();
    let mut warn = |w: String| eprintln!("chardevd: {w}");
    let (config, report) = match CommandLine::parse(std::env::args().skip(1), &mut warn) {
        Ok(CommandLine::Run { config, report }) => (config, report),
        Ok(CommandLine::Print(text)) => {
            print_out(&text);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("chardevd: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (id, option) in report.chardev_options() {
        label_notices(id.clone(), option);
    }
    let handle = match chardevd::spawn(*config) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("chardevd: {}", report.describe(e));
            return ExitCode::FAILURE;
        }
    };
    let status = match report.refused() {
        Some(e) => {
            eprintln!("chardevd: {e}");
            ExitCode::FAILURE
        }
        None => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match rt.map(|rt| rt.block_on(wait_for_signal(&handle))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("chardevd: cannot install signal handlers: {e}"),
                Err(e) => eprintln!("chardevd: cannot start the signal runtime: {e}"),
            }
            ExitCode::SUCCESS
        }
    };
    handle.shutdown();
    handle.join();
    // A testdev's `q` (with --allow-exit): QEMU's exit((n << 1) | 1).
    match handle.exit_status() {
        Some(code) => ExitCode::from(code),
        None => status,
    }
}

/// Wait for SIGINT or SIGTERM (then send SHUTDOWN, reason `host-signal`,
/// as QEMU does), or until the system stops by itself (QMP `quit`). SIGHUP
/// reopens every chardev log (logrotate's `create` mode).
async fn wait_for_signal(handle: &Handle) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    // Only now, with the handlers in place, say where QMP listens: a client
    // (or a test) that signals the daemon once it sees the line is handled.
    for bound in handle.listeners() {
        print_out(&format!("chardevd: QMP listening on {bound}\n"));
    }
    #[cfg(feature = "web")]
    if let Some(web) = handle.web_addr() {
        print_out(&format!("chardevd: web console on {}\n", chardevd::web_url(&web)));
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    let signo = loop {
        tokio::select! {
            _ = int.recv() => break 2,
            _ = term.recv() => break 15,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reopening the chardev logs");
                handle.reopen_logs();
            }
            _ = tick.tick() => if handle.has_ended() { return Ok(()); },
        }
    };
    eprintln!("chardevd: terminating on signal {signo}");
    if handle.quit_on_signal().await.is_ok() {
        // The system stops once sessions have their SHUTDOWN and what is
        // queued is written (both bounded).
        while !handle.has_ended() {
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

fn label_notices(id: String, option: &str) {
    if let Ok(mut l) = labels().lock() {
        l.insert(id, option.to_owned());
    }
}

/// Prints notices as `chardevd: -chardev OPTION: message`.
struct Notices;

#[derive(Default)]
struct NoticeFields {
    message: String,
    chardev: Option<String>,
    /// Printed as it is (QEMU's own lines, such as a pty's).
    bare: bool,
}

impl tracing::field::Visit for NoticeFields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.record_debug(field, &value as &dyn std::fmt::Debug);
        if field.name() == "chardev" {
            self.chardev = Some(value.to_owned());
        }
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        if field.name() == "bare" {
            self.bare = value;
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
        if f.bare {
            eprintln!("{}", f.message);
            return;
        }
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
