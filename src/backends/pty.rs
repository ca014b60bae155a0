//! `pty`: a new pseudo-terminal whose slave side (`/dev/pts/N`) another
//! program opens. As in QEMU:
//! - `chardev-add` returns `{"pty": "/dev/pts/N"}`; `filename` is `pty:/dev/pts/N`;
//! - the slave starts in raw mode;
//! - the frontend gets `OPENED` when a program opens the slave (again after
//!   each reconnect), and `CLOSED` when it hangs up (new in QEMU 10);
//! - output written while nobody has the slave open is dropped (the write
//!   still succeeds, and is logged), so a guest never blocks on an unwatched
//!   console;
//! - with `path`, a symlink to the slave is created, and removed with the chardev.
//!
//! The transport yields one link per program that opens the slave. While
//! disconnected the master is polled for `POLLHUP` every [`PTY_POLL`] (QEMU
//! polls once a second); the master is registered with the reactor only
//! while a slave is open (a master with no slave reports a permanent hang-up,
//! which would wake a registered reader for ever).
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::fdio::{FdIo, FdLink};
use crate::chardev::transport::{Behaviour, Connection, Link, LinkBackend, Transport};
use crate::error::BackendError;
use crate::options::Opts;
use crate::registry::{KindInfo, Resource};
use futures_util::future::LocalBoxFuture;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{self, OptionalActions};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::ReadBuf;

/// How often a disconnected pty checks whether its slave was opened.
pub const PTY_POLL: Duration = Duration::from_millis(200);

/// The `pty` kind.
pub(crate) const KIND: Kind = Kind {
    name: "pty",
    aliases: &[],
    from_qmp: from_data::<Pty>,
    from_cli,
    syntax: "-chardev pty,id=ID[,path=SYMLINK]",
    facts: Facts {
        oob: true,
        ..Facts::NONE
    },
};

fn from_cli(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    Ok(Box::new(Pty {
        path: opts.take("path"),
    }))
}

/// `pty` options (`ChardevPty`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pty {
    /// A symlink to create to the slave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl BackendConfig for Pty {
    fn kind(&self) -> &'static str {
        "pty"
    }

    fn info(&self) -> KindInfo {
        KindInfo {
            resources: self
                .path
                .iter()
                .map(|p| Resource {
                    key: format!("pty:{p}"),
                    exclusive: true,
                })
                .collect(),
            ..KindInfo::plain("pty")
        }
    }

    fn conflict(&self, _resource: &Resource) -> BackendError {
        BackendError::PtySymlink(crate::error::OsError::from_errno(
            rustix::io::Errno::EXIST.raw_os_error(),
        ))
    }

    fn open(self: Box<Self>, cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        Box::pin(async move {
            let (master, name) = create().map_err(|e| BackendError::PtyCreate(e.into()))?;
            let link = match &self.path {
                Some(p) => {
                    let p = PathBuf::from(crate::chardev::fdio::c_path(p).into_owned());
                    std::os::unix::fs::symlink(&name, &p).map_err(|e| BackendError::PtySymlink(e.into()))?;
                    Some(p)
                }
                None => None,
            };
            tracing::info!(chardev = %cx.id, pty = %name, "char device redirected to {name} (label {})", cx.id);
            let transport = PtyTransport {
                master: Rc::new(master),
                name: name.clone(),
                link,
                released: None,
                timer: None,
            };
            Ok(Opened {
                backend: Box::new(LinkBackend::idle(transport)),
                be_open: false,
                pty: Some(name),
            })
        })
    }
}

/// Open a new pseudo-terminal: (master, slave path, slave). Both ends are
/// close-on-exec and neither becomes a controlling terminal.
pub fn open_pair() -> io::Result<(OwnedFd, String, OwnedFd)> {
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

fn create() -> io::Result<(OwnedFd, String)> {
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

/// Ready when `timer` fires (arming it first if needed).
fn poll_tick(timer: &mut Option<Pin<Box<tokio::time::Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
    let t = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(PTY_POLL)));
    match t.as_mut().poll(cx) {
        Poll::Ready(()) => {
            *timer = None;
            Poll::Ready(())
        }
        Poll::Pending => Poll::Pending,
    }
}

#[derive(Debug)]
struct PtyTransport {
    master: Rc<OwnedFd>,
    name: String,
    link: Option<PathBuf>,
    /// A link given up for a `chardev-change` that may still fail.
    released: Option<PathBuf>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Transport for PtyTransport {
    fn poll_connect(&mut self, cx: &mut Context<'_>) -> Poll<Option<Connection>> {
        loop {
            if slave_open(&self.master) {
                let io = rustix::io::fcntl_dupfd_cloexec(&*self.master, 0)
                    .map_err(io::Error::from)
                    .and_then(FdIo::new);
                match io {
                    Ok(io) => {
                        tracing::debug!(pty = %self.name, "pty slave opened");
                        let output = io.share();
                        self.timer = None;
                        return Poll::Ready(Some(Connection::new(PtyLink {
                            fd: FdLink::new(Some(io), output),
                            master: self.master.clone(),
                            timer: None,
                        })));
                    }
                    Err(e) => tracing::warn!(pty = %self.name, cause = %e, "cannot watch the pty master"),
                }
            }
            if poll_tick(&mut self.timer, cx).is_pending() {
                return Poll::Pending;
            }
        }
    }

    fn idle_filename(&self) -> String {
        format!("pty:{}", self.name)
    }

    fn behaviour(&self) -> Behaviour {
        Behaviour {
            announce: true,
            eof_disconnects: true,
            datagrams: false,
            idle_output_logged: true,
            linger: false,
        }
    }

    fn disconnected(&mut self) {
        tracing::debug!(pty = %self.name, "pty slave closed");
        // Look again only after a while: the hang-up may linger.
        self.timer = None;
    }

    fn poll_release(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        if let Some(link) = self.link.take() {
            let _ = std::fs::remove_file(&link);
            self.released = Some(link);
        }
        Poll::Ready(())
    }

    fn reacquire(&mut self) {
        if let Some(link) = self.released.take() {
            match std::os::unix::fs::symlink(&self.name, &link) {
                Ok(()) => self.link = Some(link),
                Err(e) => tracing::warn!(pty = %self.name, cause = %e, "cannot restore the pty symlink"),
            }
        }
    }
}

impl Drop for PtyTransport {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            let _ = std::fs::remove_file(link);
        }
    }
}

/// One program's session on the slave.
#[derive(Debug)]
struct PtyLink {
    fd: FdLink,
    master: Rc<OwnedFd>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Link for PtyLink {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.fd.poll_read(cx, buf)
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.fd.poll_write(cx, data)
    }

    fn poll_hangup(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Nothing is read while no frontend has room: watch for the hang-up too.
        while poll_tick(&mut self.timer, cx).is_ready() {
            if !slave_open(&self.master) {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    }
}
