//! The supervisor: a thin actor that owns the system's tables (the
//! [`Registry`], the event bus, and the pure tables beside it) and runs what
//! commands decide with them.
//!
//! A command (one file each, in `crate::commands`) reaches the supervisor
//! as a [`Call`]: a closure that runs in the supervisor's context with
//! `&mut` access to its state, and answers with a future that may wait
//! (a backend opening, a socket waiting for its client) without holding
//! the supervisor up; what such a future commits, it commits in the
//! supervisor's context. The supervisor itself only provides the mechanisms
//! commands share: starting chardev actors on the arbiter pool, handing out
//! ports, holding port operations back during a change, publishing the
//! directory, and raising events.
//!
//! Port operations (attach, detach, open state, ioctls, breaks) for a
//! chardev in the middle of a change are held back and replayed once the
//! change is over, so nothing is lost or misrouted while ports move.
use super::chardev::{self, Attached, ChardevActor, ChardevNotice, Control, Started, CLOSE_FLUSH};
use super::directory::{self, Directory};
use super::pool::Pool;
use crate::actors::StopDevice;
use crate::backends::{facts, ChardevBackend, ExitRequest, Host};
use crate::chardev::{port, Port, PortConfig, PortId, SharedRing, Status};
use crate::error::{BackendError, Error};
use crate::events::{Event, ShutdownReason, Stamped};
use crate::objects::Objects;
use crate::registry::{
    events, AttachReject, Devices, EventBus, EventSink, Held, Holder, InputHandlers, Monitors, Registry,
};
use actix::prelude::*;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Operations a client can repeat at will (breaks, input, ioctls, ...) held
/// at most per chardev while it is being changed.
pub const MAX_HELD: usize = 1024;

/// What the supervisor keeps of a live chardev.
#[derive(Debug, Clone)]
pub(crate) struct ChardevRef {
    /// Its actor.
    pub addr: Addr<ChardevActor>,
    /// Its query-chardev status.
    pub status: Arc<Status>,
    /// Its ring, for the ring kinds.
    pub ring: Option<SharedRing>,
    /// The arbiter it runs on.
    pub arbiter: usize,
}

/// The supervisor actor. Create one per actor system with [`Supervisor::new`]
/// (it is not a `SystemService`, so several can coexist, e.g. in tests).
#[derive(Debug)]
pub(crate) struct Supervisor {
    /// Chardevs, references, leases, devices.
    pub registry: Registry<ChardevRef>,
    /// The read-only view of the live chardevs the executors read.
    pub directory: Directory,
    /// How to stop each running device.
    pub devices: Devices<Recipient<StopDevice>>,
    /// QMP monitors on chardevs.
    pub monitors: Monitors<Recipient<StopDevice>>,
    /// QEMU's input core.
    pub inputs: InputHandlers,
    /// Port operations held during a change.
    held: Held<Control>,
    bus: EventBus,
    /// The arbiters chardevs and devices run on.
    pub pool: Pool,
    /// Chardevs that a start-up device joins: each goes on the arbiter of
    /// one of its group already running (one data path, one thread).
    pub together: Vec<Vec<String>>,
    next_port: PortId,
    next_holder: u64,
    objects: Arc<Objects>,
    allow_exit: bool,
    escape_char: u8,
    host: Host,
    exit_status: Arc<AtomicI32>,
    /// The system's bounds.
    pub limits: crate::limits::Limits,
    /// `stop_system` ran.
    shutting_down: bool,
}

/// Wait until `done` holds, for at most `within` (checked every 10 ms).
async fn until(within: std::time::Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Chardevs in the order they stop: those no other one uses first, then
/// the ones they used, and so on (a cycle, which cannot be, goes last).
fn layers(mut left: Vec<(String, Addr<ChardevActor>, Vec<String>)>) -> Vec<Vec<Addr<ChardevActor>>> {
    let mut out = Vec::new();
    while !left.is_empty() {
        let used: std::collections::HashSet<String> = left.iter().flat_map(|(_, _, r)| r.iter().cloned()).collect();
        let (mut layer, rest): (Vec<_>, Vec<_>) = left.into_iter().partition(|(id, _, _)| !used.contains(id));
        left = rest;
        if layer.is_empty() {
            layer = std::mem::take(&mut left);
        }
        out.push(layer.into_iter().map(|(_, a, _)| a).collect());
    }
    out
}

/// A command's work in the supervisor's context (see the module docs).
pub(crate) struct Call<T>(pub Work<T>);

/// The closure a [`Call`] carries.
pub(crate) type Work<T> = Box<dyn FnOnce(&mut Supervisor, &mut Context<Supervisor>) -> Answer<T> + Send>;

/// What a [`Call`] answers with: a future run in the supervisor's context.
pub(crate) type Answer<T> = ResponseActFuture<Supervisor, T>;

impl<T: 'static> Message for Call<T> {
    type Result = T;
}

impl<T: 'static> Handler<Call<T>> for Supervisor {
    type Result = Answer<T>;

    fn handle(&mut self, Call(f): Call<T>, ctx: &mut Context<Self>) -> Answer<T> {
        f(self, ctx)
    }
}

/// An answer that is ready now.
pub(crate) fn ready<T: 'static>(t: T) -> Answer<T> {
    Box::pin(fut::ready(t))
}

/// An answer once `f` is done (it does not touch the supervisor).
pub(crate) fn later<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> Answer<T> {
    Box::pin(fut::wrap_future(f))
}

/// A chardev asks the daemon to exit.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Exit(ExitRequest);

/// An event a backend raised.
#[derive(Message)]
#[rtype(result = "()")]
struct Emit(Event);

impl Supervisor {
    /// A supervisor with empty tables, starting chardevs on `pool` with
    /// `objects` at hand.
    pub fn new(pool: Pool, objects: Arc<Objects>) -> Self {
        Supervisor {
            registry: Registry::new(),
            directory: Directory::new(),
            devices: Devices::default(),
            monitors: Monitors::default(),
            inputs: InputHandlers::default(),
            held: Held::default(),
            bus: EventBus::default(),
            pool,
            together: Vec::new(),
            next_port: 0,
            next_holder: 0,
            objects,
            allow_exit: false,
            escape_char: crate::backends::mux::ESCAPE_CHAR,
            host: Host::default(),
            exit_status: Arc::new(AtomicI32::new(-1)),
            limits: crate::limits::Limits::default(),
            shutting_down: false,
        }
    }

    /// The system's bounds.
    pub fn limits(mut self, limits: crate::limits::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The mux escape character (QEMU's `-echr`).
    pub fn escape_char(mut self, c: u8) -> Self {
        self.escape_char = c;
        self
    }

    /// Where a testdev's `q` leaves the exit status it asks for (-1: none).
    pub fn exit_status(mut self, status: Arc<AtomicI32>) -> Self {
        self.exit_status = status;
        self
    }

    /// Let a mux's `C-a x` stop the daemon (else it raises
    /// `__org.chardevd_EXIT_REQUEST` and is logged).
    pub fn allow_exit(mut self, allow: bool) -> Self {
        self.allow_exit = allow;
        self
    }

    /// The view of the live chardevs this supervisor keeps up to date, for
    /// executors to read without asking it.
    pub fn directory(&self) -> Directory {
        self.directory.clone()
    }

    /// Show `id` in the directory as the registry has it now (or not at all).
    pub fn publish(&self, id: &str) {
        match (self.registry.get(id), self.registry.seq_of(id)) {
            (Some(c), Some(seq)) => self.directory.set(
                id,
                directory::Entry {
                    seq,
                    ring: c.ring.clone(),
                    status: c.status.clone(),
                    kind: self.registry.info(id).map_or("", |i| i.kind),
                },
            ),
            _ => self.directory.unset(id),
        }
    }

    /// Whether `id` is a live chardev (for the input core's routing).
    pub fn live(&self) -> impl Fn(&str) -> bool + '_ {
        |id| self.registry.get(id).is_some()
    }

    /// A number for a new holder (a library frontend, a monitor).
    pub fn new_holder(&mut self) -> u64 {
        self.next_holder += 1;
        self.next_holder
    }

    /// Raise an event, stamped now (rate-limited as QEMU does where it applies).
    pub fn emit(&mut self, ev: Event, ctx: &mut Context<Self>) {
        if let Some(key) = self.bus.emit(Stamped::now(ev)) {
            self.arm_throttle(key, ctx);
        }
    }

    fn arm_throttle(&mut self, key: events::ThrottleKey, ctx: &mut Context<Self>) {
        ctx.run_later(events::THROTTLE_WINDOW, move |act, ctx| {
            if act.bus.expire(&key) {
                act.arm_throttle(key, ctx);
            }
        });
    }

    /// Add an event subscriber; returns its id.
    pub fn subscribe(&mut self, sink: Box<dyn EventSink>) -> u64 {
        self.bus.subscribe(sink)
    }

    /// Remove an event subscriber.
    pub fn unsubscribe(&mut self, id: u64) {
        self.bus.unsubscribe(id);
    }

    /// Send a port operation to a chardev, or hold it back while the chardev
    /// is being changed. Operations a client can repeat at will (breaks,
    /// input, ioctls, ...) are held up to [`MAX_HELD`] per chardev; beyond,
    /// the operation is dropped (its answer, if any, says detached) and the
    /// error says why.
    pub fn port_op(&mut self, chardev: &str, op: Control) -> Result<(), Error> {
        if self.registry.is_leased(chardev) {
            if op.is_repeatable() {
                if self.held.hold_within(chardev, op, MAX_HELD).is_err() {
                    tracing::warn!(%chardev, max = MAX_HELD, "too many operations wait for a chardev being changed");
                    return Err(Error::TooMany {
                        what: "operations waiting for a chardev being changed",
                        max: MAX_HELD,
                    });
                }
            } else {
                self.held.hold(chardev, op);
            }
        } else if let Some(c) = self.registry.get(chardev) {
            c.addr.do_send(op);
        }
        Ok(())
    }

    /// A change of `chardev` is over: send what was held back.
    pub fn replay(&mut self, chardev: &str) {
        for op in self.held.take(chardev) {
            let _ = self.port_op(chardev, op);
        }
    }

    /// Detach ports the registry let go.
    pub fn detach_ports(&mut self, ports: Vec<(String, PortId)>) {
        for (chardev, port) in ports {
            let _ = self.port_op(&chardev, Control::Detach(port));
        }
    }

    /// Make a port on a chardev the registry already counts `holder` in;
    /// the receiver answers once the chardev has it.
    pub fn make_port(
        &mut self,
        chardev: &str,
        holder: &Holder,
        open: bool,
        config: PortConfig,
    ) -> (Port, oneshot::Receiver<()>) {
        self.next_port += 1;
        let (front, end) = port::pair(self.next_port, config);
        self.registry.set_port(chardev, holder, self.next_port);
        let (done, attached) = oneshot::channel();
        end.set_frontend_open(open);
        let port = Attached { end };
        let _ = self.port_op(chardev, Control::Attach { port, done });
        (front, attached)
    }

    /// Attach `holder` to `chardev` with a new port (QEMU's
    /// `qemu_chr_fe_init`); the receiver answers once the chardev has it.
    pub fn attach(
        &mut self,
        chardev: &str,
        holder: &Holder,
        open: bool,
        config: PortConfig,
    ) -> Result<(Port, oneshot::Receiver<()>), AttachReject> {
        self.registry.attach(chardev, holder.clone())?;
        Ok(self.make_port(chardev, holder, open, config))
    }

    /// Let `holder` go from `chardev`.
    pub fn detach(&mut self, chardev: &str, holder: &Holder) {
        if let Some(port) = self.registry.detach(chardev, holder) {
            let _ = self.port_op(chardev, Control::Detach(port));
        }
    }

    /// The arbiter a live chardev runs on.
    pub fn arbiter_of(&self, chardev: &str) -> Option<usize> {
        self.registry.get(chardev).map(|c| c.arbiter)
    }

    /// The arbiter for a new chardev `id` that uses none: where a chardev
    /// of its start-up group runs, else the next one round robin.
    pub fn place(&self, id: &str) -> usize {
        self.together
            .iter()
            .filter(|g| g.iter().any(|c| c == id))
            .flatten()
            .find_map(|c| self.arbiter_of(c))
            .unwrap_or_else(|| self.pool.next().0)
    }

    /// The error for one frontend too many on `chardev` (worded by its kind).
    pub fn full_error(&self, chardev: String, max: usize) -> Error {
        match self.registry.info(&chardev) {
            Some(i) if facts(i.kind).multiplexed => Error::MuxFull { id: chardev, max },
            _ => Error::InUse(chardev),
        }
    }

    /// Open a backend on arbiter `arbiter` with ports on the chardevs it
    /// uses; the answer comes on the returned channel.
    pub fn spawn_open(
        &self,
        arbiter: usize,
        id: String,
        generation: u64,
        backend: ChardevBackend,
        (ports, attached): (Vec<Port>, Vec<oneshot::Receiver<()>>),
        gone: Recipient<ChardevNotice>,
    ) -> oneshot::Receiver<Result<Started, BackendError>> {
        let traffic = Arc::default();
        self.spawn_open_after(arbiter, attached, None, traffic, id, generation, backend, ports, gone)
    }

    /// Open a replacement for `old` on `arbiter`, after the old one lent
    /// what the new one needs (when `lends`), with its ports on the
    /// chardevs it uses (a mux's base, a hub's inputs).
    #[allow(clippy::too_many_arguments)]
    pub fn spawn_replacement(
        &self,
        old: &ChardevRef,
        arbiter: usize,
        lends: bool,
        id: String,
        generation: u64,
        backend: ChardevBackend,
        (ports, attached): (Vec<Port>, Vec<oneshot::Receiver<()>>),
        gone: Recipient<ChardevNotice>,
    ) -> oneshot::Receiver<Result<Started, BackendError>> {
        let release = lends.then(|| old.addr.clone());
        self.spawn_open_after(
            arbiter,
            attached,
            release,
            old.status.traffic().clone(),
            id,
            generation,
            backend,
            ports,
            gone,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn spawn_open_after(
        &self,
        arbiter: usize,
        attached: Vec<oneshot::Receiver<()>>,
        release: Option<Addr<ChardevActor>>,
        traffic: Arc<crate::stats::Traffic>,
        id: String,
        generation: u64,
        backend: ChardevBackend,
        ports: Vec<Port>,
        gone: Recipient<ChardevNotice>,
    ) -> oneshot::Receiver<Result<Started, BackendError>> {
        let (tx, rx) = oneshot::channel();
        let (objects, host) = (self.objects.clone(), self.host.clone());
        let deadline = self.limits.command_deadline;
        // The open runs on the arbiter (its descriptors register with that
        // thread's reactor); only the options and the answer cross threads.
        self.pool.get(arbiter).spawn_fn(move || {
            actix_rt::spawn(async move {
                // The ports on the chardevs it uses are attached first, so
                // the kind sees their state when it opens.
                for a in attached {
                    let _ = a.await;
                }
                if let Some(old) = release {
                    let (done, released) = oneshot::channel();
                    old.do_send(Control::Release(done));
                    let _ = released.await;
                }
                let opening = chardev::open(id, generation, backend, ports, objects, host, gone, traffic);
                // What it waits for (a fifo's reader, a server's client)
                // may never come: the command gives up at its deadline.
                let r = match deadline {
                    Some(d) => tokio::time::timeout(d, opening)
                        .await
                        .unwrap_or(Err(BackendError::Deadline(d.as_secs()))),
                    None => opening.await,
                };
                if let Err(Ok(started)) = tx.send(r) {
                    // Nobody is waiting any more (the system is stopping).
                    started.addr.do_send(Control::Stop);
                }
            });
        });
        rx
    }

    /// Stop the system once every subscriber has taken its last events
    /// (bounded by [`events::SHUTDOWN_FLUSH`]).
    pub fn stop_system(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        self.shutting_down = true;
        tracing::info!("shutting down");
        self.directory.close();
        let flushes = self.bus.flushes();
        // Nothing more is read from the outside world; every frontend reads
        // what is queued, then the end of its input.
        let live: Vec<(String, Addr<ChardevActor>, Vec<String>)> = self
            .registry
            .live()
            .into_iter()
            .map(|(id, c)| {
                let refs = self.registry.info(id).map(|i| i.references.clone()).unwrap_or_default();
                (id.to_owned(), c.addr.clone(), refs)
            })
            .collect();
        for (_, addr, _) in &live {
            addr.do_send(Control::Quiesce);
        }
        let users: Vec<Recipient<StopDevice>> = self.devices.all().chain(self.monitors.running()).cloned().collect();
        ctx.spawn(
            async move {
                let events = async {
                    for f in flushes {
                        f.await;
                    }
                };
                let data = async {
                    // Devices and monitors pass on what they read, then end.
                    until(CLOSE_FLUSH, || users.iter().all(|u| !u.connected())).await;
                    // Chardevs write what is queued to them, users first (a
                    // mux before its base), then stop.
                    let deadline = tokio::time::Instant::now() + 2 * CLOSE_FLUSH;
                    for layer in layers(live) {
                        for addr in &layer {
                            addr.do_send(Control::Stop);
                        }
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        until(left, || layer.iter().all(|a| !a.connected())).await;
                    }
                };
                let _ = tokio::join!(tokio::time::timeout(events::SHUTDOWN_FLUSH, events), data);
            }
            .into_actor(self)
            .map(|_, _, _| System::current().stop()),
        );
    }

    fn exit(&mut self, req: ExitRequest, ctx: &mut Context<Self>) {
        if let (true, Some(status)) = (self.allow_exit, req.status) {
            // QEMU's testdev calls exit(): no SHUTDOWN event.
            tracing::warn!(chardev = %req.chardev, source = req.source.as_str(), status, "exit requested: exiting");
            self.exit_status.store(i32::from(status), Ordering::SeqCst);
            self.directory.close();
            System::current().stop();
        } else if self.allow_exit {
            tracing::warn!(chardev = %req.chardev, source = req.source.as_str(), "exit requested: shutting down");
            // As QEMU's qmp_quit: SHUTDOWN (host-qmp-quit), then exit 0.
            self.emit(
                Event::Shutdown {
                    guest: false,
                    reason: ShutdownReason::HostQmpQuit,
                },
                ctx,
            );
            self.stop_system(ctx);
        } else {
            let event = Event::ExitRequest {
                chardev: req.chardev.clone(),
                source: req.source,
                status: req.status,
            };
            // Logged as often as the event goes out (once a second per chardev).
            if !self.bus.holds(&event) {
                tracing::warn!(
                    chardev = %req.chardev,
                    source = req.source.as_str(),
                    "exit requested; ignored (start the daemon with --allow-exit to let it stop the daemon)"
                );
            }
            self.emit(event, ctx);
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        let me = ctx.address();
        let me2 = me.clone();
        self.host = Host::new(self.allow_exit, move |req| me.do_send(Exit(req)))
            .with_events(move |ev| me2.do_send(Emit(ev)))
            .with_escape_char(self.escape_char)
            .with_handshake_timeout(self.limits.handshake_timeout);
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        self.directory.close();
        for (_, c) in self.registry.live() {
            c.addr.do_send(Control::Stop);
        }
        Running::Stop
    }
}

impl Handler<Exit> for Supervisor {
    type Result = ();

    fn handle(&mut self, Exit(req): Exit, ctx: &mut Context<Self>) {
        self.exit(req, ctx);
    }
}

impl Handler<Emit> for Supervisor {
    type Result = ();

    fn handle(&mut self, Emit(ev): Emit, ctx: &mut Context<Self>) {
        self.emit(ev, ctx);
    }
}

impl Handler<ChardevNotice> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChardevNotice, ctx: &mut Context<Self>) {
        match msg {
            ChardevNotice::Gone { id, generation } => {
                if let Some(gone) = self.registry.gone(&id, generation) {
                    self.publish(&id);
                    self.detach_ports(gone.ports);
                    self.inputs.register(&id, None);
                    for d in gone.devices {
                        if let Some(stop) = self.devices.stop(&d) {
                            stop.do_send(StopDevice);
                        }
                    }
                }
            }
            ChardevNotice::Fault { id, reason } => {
                self.inputs.register(&id, None);
                self.emit(Event::ChardevFault { id, reason }, ctx);
            }
        }
    }
}
