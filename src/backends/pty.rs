//! `pty`: a new pseudo-terminal whose slave side (`/dev/pts/N`) another
//! program opens. As in QEMU:
//! - `chardev-add` returns `{"pty": "/dev/pts/N"}`; `filename` is `pty:/dev/pts/N`;
//! - the slave starts in raw mode;
//! - the frontend gets `OPENED` when a program opens the slave (again after
//!   each reconnect), and `CLOSED` when it hangs up (new in QEMU 10);
//! - output written while nobody has the slave open is dropped (the write
//!   still succeeds), so a guest never blocks on an unwatched console;
//! - with `path`, a symlink to the slave is created, and removed with the chardev.
//!
//! While disconnected the master is polled for `POLLHUP` every
//! [`PTY_POLL`] (QEMU polls once a second).
use super::fdio::{pump_input, InputMode, Io, OUTPUT_QUEUE};
use super::logfile::LogFile;
use super::{BackendReply, FrontendEvent, FrontendSink, Started, ToBackend};
use crate::actors::ChardevError;
use actix::prelude::*;
use bytes::Bytes;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{self, OptionalActions};
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often a disconnected pty checks whether its slave was opened.
pub const PTY_POLL: Duration = Duration::from_millis(200);

/// Open a new pseudo-terminal: (master, slave path, slave). Both ends are
/// close-on-exec and neither becomes a controlling terminal.
pub fn open_pair() -> std::io::Result<(OwnedFd, String, OwnedFd)> {
    let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?
        .to_string_lossy()
        .into_owned();
    let slave = rustix::fs::open(
        name.as_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((master, name, slave))
}

fn create() -> std::io::Result<(OwnedFd, String)> {
    let (master, name, slave) = open_pair()?;
    // Put the slave in raw mode once, then close it, as QEMU's openpty does.
    let mut t = termios::tcgetattr(&slave)?;
    t.make_raw();
    termios::tcsetattr(&slave, OptionalActions::Flush, &t)?;
    drop(slave);
    Ok((master, name))
}

/// True when some program has the slave open (the master shows no hang-up).
fn slave_open(master: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(master, PollFlags::IN)];
    match rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })) {
        Ok(_) => !fds[0].revents().contains(PollFlags::HUP),
        Err(_) => false,
    }
}

/// The pty backend actor.
///
/// The master is registered with the reactor only while a slave is open (a
/// fresh registration per connection): a master with no slave reports a
/// permanent hang-up, which would wake a registered reader for ever.
#[derive(Debug)]
pub struct PtyBackend {
    id: String,
    master: Rc<OwnedFd>,
    connected: Rc<Cell<bool>>,
    frontend: watch::Sender<Option<FrontendSink>>,
    output: Option<mpsc::Sender<Bytes>>,
    output_rx: Option<mpsc::Receiver<Bytes>>,
    log: Option<LogFile>,
    /// The slave's path.
    name: String,
    link: Option<PathBuf>,
    /// A link given up for a `chardev-change` that may still fail.
    released: Option<PathBuf>,
}

/// Create the pty and start the backend.
pub fn start(id: &str, path: Option<&str>, log: Option<LogFile>) -> Result<Started, String> {
    let (master, name) = create().map_err(|e| format!("Failed to create PTY: {}", super::strerror(&e)))?;
    let link = match path {
        Some(p) => {
            std::os::unix::fs::symlink(&name, p)
                .map_err(|e| format!("Failed to create PTY symlink: {}", super::strerror(&e)))?;
            Some(PathBuf::from(p))
        }
        None => None,
    };
    let (tx, rx) = mpsc::channel(OUTPUT_QUEUE);
    let (frontend, _) = watch::channel(None);
    tracing::info!(chardev = %id, pty = %name, "char device redirected to {name} (label {id})");
    let actor = PtyBackend {
        id: id.to_owned(),
        master: Rc::new(master),
        connected: Rc::new(Cell::new(false)),
        frontend,
        output: Some(tx),
        output_rx: Some(rx),
        log,
        name: name.clone(),
        link,
        released: None,
    };
    let addr = actor.start();
    Ok(Started {
        backend: addr.recipient(),
        filename: format!("pty:{name}"),
        opened: false,
        ringbuf: false,
        pty: Some(name),
    })
}

impl Actor for PtyBackend {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let (id, master, connected) = (self.id.clone(), self.master.clone(), self.connected.clone());
        let frontend = self.frontend.subscribe();
        let Some(mut output) = self.output_rx.take() else {
            return;
        };
        let watcher = async move {
            loop {
                while !slave_open(&master) {
                    actix_rt::time::sleep(PTY_POLL).await;
                }
                let io = match rustix::io::fcntl_dupfd_cloexec(&*master, 0)
                    .map_err(std::io::Error::from)
                    .and_then(Io::new)
                {
                    Ok(io) => io,
                    Err(e) => {
                        tracing::warn!(chardev = %id, cause = %e, "cannot watch the pty master");
                        actix_rt::time::sleep(PTY_POLL).await;
                        continue;
                    }
                };
                connected.set(true);
                tracing::debug!(chardev = %id, "pty slave opened");
                if let Some(fe) = frontend.borrow().as_ref() {
                    super::deliver(fe, FrontendEvent::Opened);
                }
                // Serve the connection until the slave hangs up (EIO).
                tokio::select! {
                    _ = pump_input(id.clone(), io.clone(), frontend.clone(), InputMode::Stream { closed_event: false }) => {}
                    _ = drain_output(&mut output, &io) => {}
                    // With no frontend nothing is read, so watch for the hang-up too.
                    _ = hangup(&master) => {}
                }
                connected.set(false);
                while output.try_recv().is_ok() {}
                tracing::debug!(chardev = %id, "pty slave closed");
                if let Some(fe) = frontend.borrow().as_ref() {
                    // QEMU 10 reports the hang-up of a connected pty.
                    super::deliver(fe, FrontendEvent::Closed);
                }
                actix_rt::time::sleep(PTY_POLL).await;
            }
        };
        ctx.spawn(actix::fut::wrap_future(watcher));
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(link) = self.link.take() {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// Returns once the slave is no longer open.
async fn hangup(master: &OwnedFd) {
    while slave_open(master) {
        actix_rt::time::sleep(PTY_POLL).await;
    }
}

/// Write queued output to the connected slave; returns when the slave hangs up.
async fn drain_output(rx: &mut mpsc::Receiver<Bytes>, io: &Io) {
    while let Some(data) = rx.recv().await {
        if let Err(e) = io.write_all(&data).await {
            tracing::debug!(cause = %e, "pty write failed");
            return;
        }
    }
    std::future::pending::<()>().await;
}

impl Handler<ToBackend> for PtyBackend {
    type Result = ResponseFuture<Result<BackendReply, ChardevError>>;

    fn handle(&mut self, msg: ToBackend, ctx: &mut Context<Self>) -> Self::Result {
        let done = |r| -> Self::Result { Box::pin(std::future::ready(r)) };
        match msg {
            ToBackend::Write(b) => {
                if let Some(log) = &mut self.log {
                    log.log(&b);
                }
                let len = b.len();
                match (&self.output, self.connected.get()) {
                    (Some(tx), true) => {
                        let tx = tx.clone();
                        Box::pin(async move {
                            let _ = tx.send(b).await;
                            Ok(BackendReply::Written(len))
                        })
                    }
                    // Nobody has the slave open: dropped, as in QEMU.
                    _ => done(Ok(BackendReply::Written(len))),
                }
            }
            ToBackend::Attach(sink) => {
                if self.connected.get() {
                    super::deliver(&sink, FrontendEvent::Opened);
                }
                self.frontend.send_replace(Some(sink));
                done(Ok(BackendReply::Done))
            }
            ToBackend::Detach => {
                self.frontend.send_replace(None);
                done(Ok(BackendReply::Done))
            }
            ToBackend::Break => {
                if let Some(fe) = self.frontend.borrow().as_ref() {
                    super::deliver(fe, FrontendEvent::Break);
                }
                done(Ok(BackendReply::Done))
            }
            ToBackend::Ioctl(_) => done(Err(ChardevError::NotSupported)),
            ToBackend::IsOpen => done(Ok(BackendReply::Value(self.connected.get() as u32))),
            ToBackend::Release => {
                if let Some(link) = self.link.take() {
                    let _ = std::fs::remove_file(&link);
                    self.released = Some(link);
                }
                done(Ok(BackendReply::Done))
            }
            ToBackend::Reacquire => {
                if let Some(link) = self.released.take() {
                    match std::os::unix::fs::symlink(&self.name, &link) {
                        Ok(()) => self.link = Some(link),
                        Err(e) => {
                            tracing::warn!(chardev = %self.id, cause = %e, "cannot restore the pty symlink")
                        }
                    }
                }
                done(Ok(BackendReply::Done))
            }
            ToBackend::RingWrite(_) | ToBackend::RingRead { .. } => {
                done(Err(ChardevError::NotRingbuf(self.id.clone())))
            }
            ToBackend::Stop => {
                self.output = None;
                ctx.stop();
                done(Ok(BackendReply::Done))
            }
        }
    }
}
