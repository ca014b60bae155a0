//! `stdio`: the daemon's own standard input and output. Only one at a time.
//!
//! On a terminal it switches to QEMU's raw mode (no echo, no line editing, no
//! CR/NL translation on input; output post-processing kept; Ctrl-C still
//! raises SIGINT unless `signal` is false, and absent means true, as in QEMU
//! 10). The terminal's settings and the descriptors' flags are restored on
//! every way out: chardev-remove, daemon exit, SIGINT/SIGTERM, and panics
//! (see [`restore_terminal`] and [`install_panic_hook`]). After job control
//! (Ctrl-Z, `fg`) raw mode is applied again on SIGCONT, as QEMU does.
//!
//! Unlike QEMU, removing the chardev does not close the daemon's fds 0 and 1
//! (QEMU does, so a stdio chardev can never be added again there).
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::fdio::{FdIo, FdLink};
use crate::chardev::transport::{Behaviour, Connection, LinkBackend, Transport};
use crate::error::BackendError;
use crate::options::Opts;
use crate::registry::{KindInfo, Resource};
use futures_util::future::LocalBoxFuture;
use rustix::fs::OFlags;
use rustix::termios::{self, ControlModes, LocalModes, OptionalActions, OutputModes, SpecialCodeIndex, Termios};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::task::{Context, Poll};

/// The `stdio` kind.
pub(crate) const KIND: Kind = Kind {
    name: "stdio",
    aliases: &[],
    from_qmp: from_data::<Stdio>,
    from_cli,
    syntax: "-chardev stdio,id=ID[,signal=on|off]",
    facts: Facts {
        oob: true,
        ..Facts::NONE
    },
};

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    let signal = Some(opts.take_bool("signal")?.unwrap_or(true));
    Ok(Box::new(Stdio { signal }))
}

/// `stdio` options (`ChardevStdio`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stdio {
    /// Let Ctrl-C etc. raise signals (absent: yes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<bool>,
}

impl BackendConfig for Stdio {
    fn kind(&self) -> &'static str {
        "stdio"
    }

    fn info(&self) -> KindInfo {
        KindInfo {
            resources: vec![Resource {
                key: "stdio".into(),
                exclusive: true,
            }],
            ..KindInfo::plain("stdio")
        }
    }

    fn conflict(&self, _resource: &Resource) -> BackendError {
        BackendError::StdioBusy
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move { start(&self) })
    }
}

/// The token of the stdio backend that owns the terminal (0: nobody).
static OWNER: AtomicU64 = AtomicU64::new(0);
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

#[derive(Debug)]
struct Saved {
    termios: Option<Termios>,
    flags0: OFlags,
    flags1: OFlags,
}

static SAVED: Mutex<Option<Saved>> = Mutex::new(None);

/// Put the terminal and fds 0/1 back as they were before a stdio chardev
/// changed them. Safe to call any number of times, from any thread.
pub fn restore_terminal() {
    let saved = match SAVED.lock() {
        Ok(mut s) => s.take(),
        Err(p) => p.into_inner().take(),
    };
    if let Some(s) = saved {
        let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
        if let Some(t) = &s.termios {
            let _ = termios::tcsetattr(stdin, OptionalActions::Now, t);
        }
        let _ = rustix::fs::fcntl_setfl(stdin, s.flags0);
        let _ = rustix::fs::fcntl_setfl(stdout, s.flags1);
    }
}

/// Restore the terminal before the default panic message is printed.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

/// QEMU's raw mode for stdio (`qemu_chr_set_echo_stdio(false)`), from the
/// saved settings.
pub fn raw_mode(saved: &Termios, allow_signals: bool) -> Termios {
    let mut t = saved.clone();
    t.input_modes -= super::serial::RAW_INPUT_CLEAR;
    t.output_modes |= OutputModes::OPOST;
    t.local_modes -= LocalModes::ECHO | LocalModes::ECHONL | LocalModes::ICANON | LocalModes::IEXTEN;
    t.control_modes -= ControlModes::CSIZE | ControlModes::PARENB;
    t.control_modes |= ControlModes::CS8;
    t.special_codes[SpecialCodeIndex::VMIN] = 1;
    t.special_codes[SpecialCodeIndex::VTIME] = 0;
    if !allow_signals {
        t.local_modes -= LocalModes::ISIG;
    }
    t
}

/// Owns the terminal while its backend lives. For a `chardev-change` to
/// another stdio it lends the terminal (release) and takes it back if the
/// change fails (reacquire); only the current owner restores the terminal
/// when it goes.
#[derive(Debug)]
pub struct StdioGuard {
    token: u64,
    allow_signals: bool,
    /// fds 0/1 were made non-blocking for polling (to redo on reacquire).
    nonblock: (bool, bool),
}

impl StdioGuard {
    fn release(&mut self) {
        let _ = OWNER.compare_exchange(self.token, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    fn reacquire(&mut self) {
        if OWNER
            .compare_exchange(0, self.token, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            take_terminal(self.allow_signals);
            // A failed replacement may have restored blocking mode: the
            // reader polls, so fds 0/1 must be non-blocking again.
            let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
            for (fd, nb) in [(stdin, self.nonblock.0), (stdout, self.nonblock.1)] {
                if let (true, Ok(flags)) = (nb, rustix::fs::fcntl_getfl(fd)) {
                    let _ = rustix::fs::fcntl_setfl(fd, flags | OFlags::NONBLOCK);
                }
            }
        }
    }
}

impl Drop for StdioGuard {
    fn drop(&mut self) {
        if OWNER
            .compare_exchange(self.token, 0, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            restore_terminal();
        }
    }
}

/// Save the terminal and descriptor flags (unless a previous owner's saved
/// state is still there: that is the original), then switch to raw mode.
fn take_terminal(allow_signals: bool) {
    let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
    let mut saved = match SAVED.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    if saved.is_none() {
        let (Ok(flags0), Ok(flags1)) = (rustix::fs::fcntl_getfl(stdin), rustix::fs::fcntl_getfl(stdout)) else {
            return;
        };
        *saved = Some(Saved {
            termios: termios::tcgetattr(stdin).ok(),
            flags0,
            flags1,
        });
    }
    if let Some(t) = saved.as_ref().and_then(|s| s.termios.as_ref()) {
        let raw = raw_mode(t, allow_signals);
        if let Err(e) = termios::tcsetattr(stdin, OptionalActions::Now, &raw) {
            tracing::warn!(cause = %e, "cannot set the terminal to raw mode");
        }
    }
}

/// SIGCONT's number on Linux (every architecture chardevd builds for).
fn libc_sigcont() -> i32 {
    rustix::process::Signal::CONT.as_raw()
}

fn fd_error(e: rustix::io::Errno) -> BackendError {
    BackendError::Nonblocking(e.into())
}

/// The terminal's side: ownership, and raw mode again after SIGCONT.
#[derive(Debug)]
struct StdioTransport {
    guard: StdioGuard,
    sigcont: Option<tokio::signal::unix::Signal>,
}

impl Transport for StdioTransport {
    fn poll_connect(&mut self, _cx: &mut Context<'_>) -> Poll<Option<Connection>> {
        Poll::Ready(None)
    }

    fn idle_filename(&self) -> String {
        "stdio".into()
    }

    fn behaviour(&self) -> Behaviour {
        Behaviour::ONCE
    }

    fn poll_aux(&mut self, cx: &mut Context<'_>) {
        // After job control (Ctrl-Z, fg) the shell has reset the terminal:
        // put the raw mode back while this backend owns it, as QEMU does.
        if let Some(sig) = &mut self.sigcont {
            while let Poll::Ready(Some(())) = sig.poll_recv(cx) {
                if OWNER.load(Ordering::SeqCst) == self.guard.token {
                    take_terminal(self.guard.allow_signals);
                }
            }
        }
    }

    fn poll_release(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        self.guard.release();
        Poll::Ready(())
    }

    fn reacquire(&mut self) {
        self.guard.reacquire();
    }
}

/// Take over the terminal and start the backend.
fn start(opts: &Stdio) -> Result<Opened, BackendError> {
    let token = NEXT_TOKEN.fetch_add(1, Ordering::SeqCst);
    if OWNER
        .compare_exchange(0, token, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        return Err(BackendError::StdioBusy);
    }
    let allow_signals = opts.signal.unwrap_or(true);
    let mut guard = StdioGuard {
        token,
        allow_signals,
        nonblock: (false, false),
    };
    let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
    rustix::fs::fcntl_getfl(stdin).map_err(fd_error)?;
    rustix::fs::fcntl_getfl(stdout).map_err(fd_error)?;
    install_panic_hook();
    take_terminal(allow_signals);
    // Duplicates, so that removing the chardev never closes fds 0 and 1.
    let input = rustix::io::fcntl_dupfd_cloexec(stdin, 3).map_err(fd_error)?;
    let output = rustix::io::fcntl_dupfd_cloexec(stdout, 3).map_err(fd_error)?;
    let input = FdIo::new(input).map_err(|e| BackendError::Nonblocking(e.into()))?;
    let output = FdIo::new(output).map_err(|e| BackendError::Nonblocking(e.into()))?;
    guard.nonblock = (input.is_pollable(), output.is_pollable());
    let sigcont = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc_sigcont())).ok();
    let transport = StdioTransport { guard, sigcont };
    let link = FdLink::new(Some(input), Some(output));
    Ok(Opened::open(LinkBackend::connected(transport, Connection::new(link))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::termios::InputModes;

    #[test]
    fn raw_mode_keeps_output_processing_and_signals_unless_told() {
        let (_master, _name, slave) = crate::backends::pty::open_pair().unwrap();
        let cooked = termios::tcgetattr(&slave).unwrap();
        let raw = raw_mode(&cooked, true);
        assert!(raw.output_modes.contains(OutputModes::OPOST));
        assert!(raw.local_modes.contains(LocalModes::ISIG));
        assert!(!raw.local_modes.intersects(LocalModes::ECHO | LocalModes::ICANON));
        assert!(!raw.input_modes.contains(InputModes::ICRNL));
        assert!(!raw_mode(&cooked, false).local_modes.contains(LocalModes::ISIG));
        termios::tcsetattr(&slave, OptionalActions::Now, &raw).unwrap();
        assert!(!termios::tcgetattr(&slave)
            .unwrap()
            .local_modes
            .contains(LocalModes::ECHO));
    }
}
