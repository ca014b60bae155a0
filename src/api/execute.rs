//! The one executor: every command (`crate::commands`), whoever
//! sends it (a QMP session, a monitor, the embedding handle), runs here, so
//! they all see the same checks in the same order (QEMU's) and the same
//! typed errors.
use crate::actors::supervisor::{ready, Answer, Call};
use crate::actors::{Directory, Supervisor};
use crate::chardev::SharedRing;
use crate::error::Error;
use crate::objects::Objects;
use crate::registry::EventSink;
use actix::prelude::*;
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
pub(crate) trait MonitorStarter: Send + Sync + std::fmt::Debug {
    /// Start a monitor on `arbiter` with its frontend on the chardev; it
    /// runs its commands through `exec`.
    fn start(
        &self,
        spec: MonitorSpec,
        fe: super::Frontend,
        arbiter: &ArbiterHandle,
        exec: Executor,
    ) -> Recipient<crate::actors::StopDevice>;
}

/// Runs commands against one supervisor. Cheap to clone, `Send`.
#[derive(Debug, Clone)]
pub(crate) struct Executor {
    supervisor: Addr<Supervisor>,
    directory: Directory,
    objects: Arc<Objects>,
    monitors: Option<Arc<dyn MonitorStarter>>,
    limits: crate::limits::Limits,
    counters: Arc<crate::stats::QmpCounters>,
}

impl Executor {
    /// An executor for `supervisor`'s system, whose objects are `objects`;
    /// `directory` is the supervisor's (`Supervisor::directory`), read for
    /// the commands that only look.
    pub fn new(
        supervisor: Addr<Supervisor>,
        directory: Directory,
        objects: Arc<Objects>,
        limits: crate::limits::Limits,
    ) -> Executor {
        Executor {
            supervisor,
            directory,
            objects,
            monitors: None,
            limits,
            counters: Arc::default(),
        }
    }

    /// The QMP side's counters (sessions bump them).
    pub fn counters(&self) -> &Arc<crate::stats::QmpCounters> {
        &self.counters
    }

    /// The system's bounds.
    pub fn limits(&self) -> &crate::limits::Limits {
        &self.limits
    }

    /// The same, starting QMP monitors with `starter`.
    pub fn with_monitors(mut self, starter: Arc<dyn MonitorStarter>) -> Executor {
        self.monitors = Some(starter);
        self
    }

    /// Run `f` in the supervisor's context; its answer may wait (see
    /// [`crate::actors::supervisor::Call`]).
    pub async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Supervisor, &mut Context<Supervisor>) -> Answer<T> + Send + 'static,
    ) -> Result<T, Error> {
        self.supervisor
            .send(Call(Box::new(f)))
            .await
            .map_err(|_| Error::ShuttingDown)
    }

    /// Run `f` in the supervisor's context and answer at once.
    pub async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Supervisor, &mut Context<Supervisor>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        self.call(move |sup, ctx| ready(f(sup, ctx))).await
    }

    /// Tell the supervisor without waiting (a frontend dropped: detach it).
    pub fn tell(&self, f: impl FnOnce(&mut Supervisor, &mut Context<Supervisor>) + Send + 'static) {
        self.supervisor.do_send(Call(Box::new(move |sup, ctx| {
            f(sup, ctx);
            ready(())
        })));
    }

    /// `Err(ShuttingDown)` once the system stopped.
    pub fn check_running(&self) -> Result<(), Error> {
        if self.is_running() {
            Ok(())
        } else {
            Err(Error::ShuttingDown)
        }
    }

    /// Whether the system still runs.
    pub fn is_running(&self) -> bool {
        self.supervisor.connected() && !self.directory.is_closed()
    }

    /// The directory of live chardevs (`Err` once the system stopped).
    pub fn directory(&self) -> Result<&Directory, Error> {
        self.check_running()?;
        Ok(&self.directory)
    }

    /// A ring chardev, checked as QEMU checks it: it exists, then it is a ring.
    pub fn ring(&self, device: &str) -> Result<SharedRing, Error> {
        match self.directory()?.ring(device) {
            Err(()) => Err(Error::RingNotFound(device.to_owned())),
            Ok(None) => Err(Error::NotRingbuf(device.to_owned())),
            Ok(Some(ring)) => Ok(ring),
        }
    }

    /// The system's objects.
    pub fn objects(&self) -> &Arc<Objects> {
        &self.objects
    }

    /// The QMP monitor starter, if the QMP layer installed one.
    pub fn monitors(&self) -> Option<Arc<dyn MonitorStarter>> {
        self.monitors.clone()
    }

    /// Add an event subscriber; returns its id.
    pub async fn subscribe(&self, sink: Box<dyn EventSink>) -> Result<u64, Error> {
        self.with(move |sup, _ctx| sup.subscribe(sink)).await
    }

    /// Remove an event subscriber (without waiting).
    pub fn unsubscribe(&self, id: u64) {
        self.tell(move |sup, _ctx| sup.unsubscribe(id));
    }

    /// Raise an event.
    pub async fn emit(&self, event: crate::events::Event) -> Result<(), Error> {
        self.with(move |sup, ctx| sup.emit(event, ctx)).await
    }

    /// The traffic and drop counters (`__org.chardevd_query-stats`, `/metrics`).
    pub async fn stats(&self) -> Result<crate::stats::Stats, Error> {
        let dir = self.directory()?.clone();
        let n = dir.len();
        let chardevs = offload(n * 128, move || dir.stats()).await;
        Ok(crate::stats::Stats {
            chardevs,
            qmp: self.counters().read(),
        })
    }

    /// Ask chardev `id`'s actor (through the supervisor, in order with the
    /// rest of its control) and wait for the answer; `NotFound` when there
    /// is no such chardev or it went meanwhile.
    async fn ask<T: Send + 'static>(
        &self,
        id: &str,
        make: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> crate::actors::chardev::Control + Send + 'static,
    ) -> Result<T, Error> {
        let name = id.to_owned();
        let rx = self
            .with(move |sup, _ctx| {
                if sup.registry.get(&name).is_none() {
                    return Err(Error::NotFound(name));
                }
                let (tx, rx) = tokio::sync::oneshot::channel();
                sup.port_op(&name, make(tx))?;
                Ok(rx)
            })
            .await??;
        rx.await.map_err(|_| Error::NotFound(id.to_owned()))
    }

    /// A console's clients, oldest first (`__org.chardevd_query-clients`).
    pub async fn clients(&self, id: &str) -> Result<Vec<crate::chardev::ClientInfo>, Error> {
        use crate::actors::chardev::Control;
        self.ask(id, Control::Clients)
            .await?
            .ok_or_else(|| Error::NotConsole(id.to_owned()))
    }

    /// Act on a client of console `id` (`__org.chardevd_client-disconnect`,
    /// `__org.chardevd_client-set-writer`).
    pub async fn client_op(&self, id: &str, op: crate::chardev::ClientOp) -> Result<(), Error> {
        use crate::actors::chardev::Control;
        let r = self.ask(id, move |tx| Control::ClientOp(op, tx)).await?;
        r.map_err(|e| client_error(id, e))
    }

    /// Give console `id` one more client (a web console's); its number.
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub async fn add_client(
        &self,
        id: &str,
        link: crate::chardev::channel::ChannelLink,
        address: String,
    ) -> Result<u64, Error> {
        use crate::actors::chardev::Control;
        let r = self.ask(id, move |tx| Control::AddClient(link, address, tx)).await?;
        r.map_err(|e| client_error(id, e))
    }

    /// Stop the system once subscribers took their last events (bounded).
    pub async fn stop_system(&self) -> Result<(), Error> {
        self.with(|sup, ctx| sup.stop_system(ctx)).await
    }
}

/// A console's refusal, as QMP words it.
fn client_error(id: &str, e: crate::chardev::ClientOpError) -> Error {
    use crate::chardev::ClientOpError;
    let id = id.to_owned();
    match e {
        ClientOpError::NotConsole => Error::NotConsole(id),
        ClientOpError::NoClient(client) => Error::NoClient { id, client },
        ClientOpError::NoWriterRole(input) => Error::NoWriterRole { id, input },
        ClientOpError::Full(max) => Error::TooMany {
            what: "clients",
            max: max as usize,
        },
    }
}
