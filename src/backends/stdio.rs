//! `stdio`: the daemon's own standard input and output. Only one at a time.
//!
//! On a terminal it switches to QEMU's raw mode (no echo, no line editing, no
//! CR/NL translation on input; output post-processing kept; Ctrl-C still
//! raises SIGINT unless `signal` is false, and absent means true, as in QEMU
//! 10). The terminal's settings and the descriptors' flags are restored on
//! every way out: chardev-remove, daemon exit, SIGINT/SIGTERM, and panics
//! (see [`restore_terminal`] and [`install_panic_hook`]).
//!
//! Unlike QEMU, removing the chardev does not close the daemon's fds 0 and 1
//! (QEMU does, so a stdio chardev can never be added again there).
use super::fdio::{FdBackend, FdKind, Io};
use super::logfile::LogFile;
use super::spec::ChardevStdio;
use super::Started;
use actix::prelude::*;
use rustix::fs::OFlags;
use rustix::termios::{self, ControlModes, LocalModes, OptionalActions, OutputModes, SpecialCodeIndex, Termios};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

static IN_USE: AtomicBool = AtomicBool::new(false);

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

/// Owns the terminal while the backend lives: restores it and releases the
/// "in use" flag when the backend goes (or hands it over for a change).
#[derive(Debug)]
pub struct StdioGuard {
    allow_signals: bool,
    released: bool,
}

impl FdKind for StdioGuard {
    fn release(&mut self) {
        if !self.released {
            restore_terminal();
            IN_USE.store(false, Ordering::SeqCst);
            self.released = true;
        }
    }

    fn reacquire(&mut self) {
        if self.released && !IN_USE.swap(true, Ordering::SeqCst) {
            take_terminal(self.allow_signals);
            self.released = false;
        }
    }
}

impl Drop for StdioGuard {
    fn drop(&mut self) {
        if !self.released {
            restore_terminal();
            IN_USE.store(false, Ordering::SeqCst);
        }
    }
}

/// Save the terminal and descriptor flags, then switch to raw mode.
fn take_terminal(allow_signals: bool) -> Option<()> {
    let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
    let flags0 = rustix::fs::fcntl_getfl(stdin).ok()?;
    let flags1 = rustix::fs::fcntl_getfl(stdout).ok()?;
    let saved_termios = termios::tcgetattr(stdin).ok();
    if let Ok(mut s) = SAVED.lock() {
        *s = Some(Saved {
            termios: saved_termios.clone(),
            flags0,
            flags1,
        });
    }
    if let Some(t) = &saved_termios {
        let raw = raw_mode(t, allow_signals);
        if let Err(e) = termios::tcsetattr(stdin, OptionalActions::Now, &raw) {
            tracing::warn!(cause = %e, "cannot set the terminal to raw mode");
        }
    }
    Some(())
}

fn fd_error(e: rustix::io::Errno) -> String {
    format!("Failed to set FD nonblocking: {}", super::strerror(&e.into()))
}

/// Take over the terminal and start the backend.
pub fn start(id: &str, opts: &ChardevStdio, log: Option<LogFile>) -> Result<Started, String> {
    if IN_USE.swap(true, Ordering::SeqCst) {
        return Err("cannot use stdio by multiple character devices".into());
    }
    let allow_signals = opts.signal.unwrap_or(true);
    let guard = StdioGuard {
        allow_signals,
        released: false,
    };
    let (stdin, stdout) = (rustix::stdio::stdin(), rustix::stdio::stdout());
    rustix::fs::fcntl_getfl(stdin).map_err(fd_error)?;
    rustix::fs::fcntl_getfl(stdout).map_err(fd_error)?;
    install_panic_hook();
    take_terminal(allow_signals);
    // Duplicates, so that removing the chardev never closes fds 0 and 1.
    let input = rustix::io::fcntl_dupfd_cloexec(stdin, 3).map_err(fd_error)?;
    let output = rustix::io::fcntl_dupfd_cloexec(stdout, 3).map_err(fd_error)?;
    let input = Io::new(input).map_err(|e| format!("Failed to set FD nonblocking: {}", super::strerror(&e)))?;
    let output = Io::new(output).map_err(|e| format!("Failed to set FD nonblocking: {}", super::strerror(&e)))?;
    let addr = FdBackend::new(id, Some(input), Some(output), log, guard).start();
    Ok(Started::open(addr.recipient(), "stdio"))
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
