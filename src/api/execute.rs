//! The one executor: every [`Command`], whoever sends it, runs here, so a QMP
//! session, a monitor and the embedding handle see the same checks in the
//! same order (QEMU's) and the same typed errors.
use super::command::{Command, DataFormat, Payload, Reply};
use crate::actors::msgs::*;
use crate::actors::{Directory, Supervisor};
use crate::backends::ringbuf::qemu_base64_decode;
use crate::chardev::{lock_ring, SharedRing};
use crate::error::Error;
use crate::events::{Event, ShutdownReason};
use crate::objects::Objects;
use actix::prelude::*;
use base64::Engine as _;
use std::sync::Arc;

/// Work on payloads at least this large (base64 of a big ring read, decoding
/// a big write, serialising a big reply) runs on the blocking pool, so it
/// never holds up other sessions on the same arbiter.
pub const OFFLOAD_BYTES: usize = 256 << 10;

/// Run `f` on the blocking pool when `size` is large and a tokio runtime is
/// at hand, else here.
pub async fn offload<T: Send + 'static>(size: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    if size >= OFFLOAD_BYTES && tokio::runtime::Handle::try_current().is_ok() {
        match tokio::task::spawn_blocking(f).await {
            Ok(t) => t,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    } else {
        f()
    }
}

/// What a QMP monitor on a chardev is started with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSpec {
    /// The monitor's id.
    pub id: String,
    /// Its chardev.
    pub chardev: String,
    /// `pretty=on`.
    pub pretty: bool,
    /// The greeting offers `oob` (QEMU: the chardev can run in the monitor
    /// I/O thread).
    pub oob: bool,
}

/// Starts QMP monitors (the QMP layer installs one; the executor itself
/// knows nothing of the protocol).
pub trait MonitorStarter: Send + Sync + std::fmt::Debug {
    /// Start a monitor on `arbiter` with its port on the chardev; it runs
    /// its commands through `exec`.
    fn start(
        &self,
        spec: MonitorSpec,
        port: crate::chardev::Port,
        arbiter: &ArbiterHandle,
        exec: Executor,
    ) -> Recipient<crate::frontends::StopDevice>;
}

/// Runs commands against one supervisor. Cheap to clone, `Send`.
#[derive(Debug, Clone)]
pub struct Executor {
    supervisor: Addr<Supervisor>,
    directory: Directory,
    objects: Arc<Objects>,
    monitors: Option<Arc<dyn MonitorStarter>>,
}

impl Executor {
    /// An executor for `supervisor`'s system, whose objects are `objects`;
    /// `directory` is the supervisor's (`Supervisor::directory`), read for
    /// the commands that only look.
    pub fn new(supervisor: Addr<Supervisor>, directory: Directory, objects: Arc<Objects>) -> Executor {
        Executor {
            supervisor,
            directory,
            objects,
            monitors: None,
        }
    }

    /// The same, starting QMP monitors with `starter`.
    pub fn with_monitors(mut self, starter: Arc<dyn MonitorStarter>) -> Executor {
        self.monitors = Some(starter);
        self
    }

    /// The system's objects.
    pub fn objects(&self) -> &Arc<Objects> {
        &self.objects
    }

    /// The supervisor.
    pub fn supervisor(&self) -> &Addr<Supervisor> {
        &self.supervisor
    }

    /// Ask the supervisor.
    pub async fn ask<M>(&self, msg: M) -> Result<M::Result, Error>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        Supervisor: Handler<M>,
    {
        self.supervisor.send(msg).await.map_err(|_| Error::ShuttingDown)
    }

    /// A ring chardev, checked as QEMU checks it: it exists, then it is a ring.
    fn ring(&self, device: &str) -> Result<SharedRing, Error> {
        match self.directory.ring(device) {
            Err(()) => Err(Error::RingNotFound(device.to_owned())),
            Ok(None) => Err(Error::NotRingbuf(device.to_owned())),
            Ok(Some(ring)) => Ok(ring),
        }
    }

    /// Run one command.
    pub async fn run(&self, cmd: Command) -> Result<Reply, Error> {
        match cmd {
            Command::QueryChardev => {
                // Thousands of rows: built off the arbiter.
                let dir = self.directory.clone();
                let n = dir.len();
                Ok(Reply::Chardevs(offload(n * 64, move || dir.query()).await))
            }
            Command::QueryChardevBackends => {
                Ok(Reply::Backends(crate::backends::KINDS.iter().map(|k| k.name).collect()))
            }
            Command::ChardevAdd { id, backend } => Ok(Reply::Chardev(self.ask(AddChardev { id, backend }).await??)),
            Command::ChardevChange { id, backend } => {
                Ok(Reply::Chardev(self.ask(ChangeChardev { id, backend }).await??))
            }
            Command::ChardevRemove { id } => {
                self.ask(RemoveChardev { id }).await??;
                Ok(Reply::Empty)
            }
            Command::ChardevSendBreak { id } => {
                self.ask(SendBreak { id }).await??;
                Ok(Reply::Empty)
            }
            Command::RingbufWrite { device, data } => {
                // The ring is written under its lock right here (no message
                // to its actor); big payloads are decoded off the arbiter.
                let ring = self.ring(&device)?;
                offload(data.len(), move || {
                    match data {
                        Payload::Utf8(s) => lock_ring(&ring).write(s.as_bytes()),
                        Payload::Base64(s) => lock_ring(&ring).write(&qemu_base64_decode(&s)?),
                        Payload::Bytes(b) => lock_ring(&ring).write(&b),
                    }
                    Ok::<_, Error>(())
                })
                .await?;
                Ok(Reply::Empty)
            }
            Command::RingbufRead { device, size, format } => {
                let ring = self.ring(&device)?;
                if size <= 0 {
                    return Err(Error::SizeNotPositive);
                }
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                let utf8 = format == DataFormat::Utf8;
                // Taken under the lock and encoded, off the arbiter when big.
                let big = lock_ring(&ring).len().min(size);
                Ok(Reply::Text(
                    offload(big, move || {
                        let mut r = lock_ring(&ring);
                        if utf8 {
                            r.read_utf8(size)
                        } else {
                            let b = r.read(size);
                            drop(r);
                            base64::engine::general_purpose::STANDARD.encode(b)
                        }
                    })
                    .await,
                ))
            }
            Command::DeviceAdd { driver, id, props } => {
                self.ask(DeviceAdd { driver, id, props }).await??;
                Ok(Reply::Empty)
            }
            Command::DeviceDel { id } => {
                self.ask(DeviceDel { id }).await??;
                Ok(Reply::Empty)
            }
            Command::PortSetOpen { id, open } => {
                self.ask(PortSetOpen { id, open }).await??;
                Ok(Reply::Empty)
            }
            Command::Quit => {
                // QEMU: SHUTDOWN to every session before quit's reply.
                self.ask(Emit(Event::Shutdown {
                    guest: false,
                    reason: ShutdownReason::HostQmpQuit,
                }))
                .await?;
                Ok(Reply::Quit)
            }
            Command::ObjectAdd { qom_type, id, props } => {
                let objects = self.objects.clone();
                // Reading credentials is file I/O: off the arbiter.
                offload(OFFLOAD_BYTES, move || objects.add(&qom_type, &id, &props)).await?;
                Ok(Reply::Empty)
            }
            Command::ObjectDel { id } => {
                self.objects.del(&id)?;
                Ok(Reply::Empty)
            }
            Command::Yank { instances } => {
                self.ask(Yank { ids: instances }).await??;
                Ok(Reply::Empty)
            }
            Command::QueryYank => Ok(Reply::Yanks(self.ask(QueryYank).await?)),
            Command::InputSendEvent { device, head, events } => {
                self.ask(SendInput { device, head, events }).await??;
                Ok(Reply::Empty)
            }
            Command::SendKey { keys } => {
                self.ask(SendKey { keys }).await?;
                Ok(Reply::Empty)
            }
            Command::QueryMice => Ok(Reply::Mice(self.ask(QueryMice).await?)),
            Command::ScreenText { device } => {
                let rx = self.ask(GetScreen { device }).await??;
                match rx.await {
                    Ok(Some(screen)) => Ok(Reply::Screen(screen)),
                    _ => Err(Error::NoConsole),
                }
            }
            Command::MonitorAdd { id, chardev, pretty } => {
                let Some(starter) = self.monitors.clone() else {
                    return Err(Error::Monitor(crate::error::MonitorError::Unavailable));
                };
                let added = self.ask(AddMonitor { id, chardev }).await??;
                let spec = MonitorSpec {
                    id: added.id.clone(),
                    chardev: added.chardev,
                    pretty,
                    oob: added.oob,
                };
                let stop = starter.start(spec, added.port, &added.arbiter, self.clone());
                self.ask(CommitMonitor { id: added.id, stop }).await?;
                Ok(Reply::Empty)
            }
            Command::MonitorDel { id } => {
                self.ask(RemoveMonitor { id }).await??;
                Ok(Reply::Empty)
            }
        }
    }
}
