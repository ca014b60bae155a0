//! The supervisor: a thin actor over the [`Registry`] and the [`EventBus`].
//!
//! Every decision (is the id free, is it busy, may it be changed, who holds
//! what) is the registry's; the supervisor runs them: it starts chardev
//! actors on the arbiter pool, hands out ports, moves them on
//! `chardev-change`, starts and stops built-in devices, and fans out events.
//! Creating or replacing a backend may wait (a fifo with no reader, a socket
//! that waits for its client), so those run as futures that never hold the
//! supervisor up; their results are committed in the supervisor's context.
//!
//! Port operations (attach, detach, open state, ioctls, breaks) for a
//! chardev in the middle of a change are held back and replayed once the
//! change is over, so nothing is lost or misrouted while ports move.
use super::chardev::{self, Attached, ChardevActor, ChardevGone, Control, Started};
use super::directory::{self, Directory};
use super::msgs::*;
use super::pool::Pool;
use crate::backends::facts;
use crate::backends::{ExitRequest, Host};
use crate::chardev::{port, ChardevReturn, Port, PortConfig, PortId, SharedRing, Status};
use crate::error::{DeviceError, Error, MonitorError};
use crate::events::{Event, ShutdownReason, Stamped};
use crate::frontends::{self, StopDevice};
use crate::objects::Objects;
use crate::registry::{
    events, AttachReject, DeviceReject, Devices, EventBus, Held, Holder, InputHandlers, Monitors, Registry, Reject,
};
use actix::prelude::*;
use std::sync::Arc;
use tokio::sync::oneshot;

/// What the supervisor keeps of a live chardev.
#[derive(Debug, Clone)]
pub struct ChardevRef {
    addr: Addr<ChardevActor>,
    status: Arc<Status>,
    ring: Option<SharedRing>,
    arbiter: usize,
}

/// The supervisor actor. Create one per actor system with [`Supervisor::new`]
/// (it is not a `SystemService`, so several can coexist, e.g. in tests).
#[derive(Debug)]
pub struct Supervisor {
    registry: Registry<ChardevRef>,
    directory: Directory,
    devices: Devices<Recipient<StopDevice>>,
    bus: EventBus,
    pool: Pool,
    next_port: PortId,
    next_holder: u64,
    held: Held<Control>,
    objects: Arc<Objects>,
    allow_exit: bool,
    escape_char: u8,
    host: Host,
    monitors: Monitors<Recipient<StopDevice>>,
    inputs: InputHandlers,
    exit_status: Arc<std::sync::atomic::AtomicI32>,
}

/// A chardev asks the daemon to exit.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct Exit(ExitRequest);

impl Supervisor {
    /// A supervisor with an empty registry, starting chardevs on `pool`
    /// with `objects` at hand.
    pub fn new(pool: Pool, objects: Arc<Objects>) -> Self {
        Supervisor {
            registry: Registry::new(),
            directory: Directory::new(),
            devices: Devices::default(),
            bus: EventBus::default(),
            pool,
            next_port: 0,
            next_holder: 0,
            held: Held::default(),
            objects,
            allow_exit: false,
            escape_char: crate::backends::mux::ESCAPE_CHAR,
            host: Host::default(),
            monitors: Monitors::default(),
            inputs: InputHandlers::default(),
            exit_status: Arc::new(std::sync::atomic::AtomicI32::new(-1)),
        }
    }

    /// The view of the live chardevs this supervisor keeps up to date, for
    /// executors to read without asking it.
    pub fn directory(&self) -> Directory {
        self.directory.clone()
    }

    /// Show `id` in the directory as the registry has it now (or not at all).
    fn publish(&self, id: &str) {
        match (self.registry.get(id), self.registry.seq_of(id)) {
            (Some(c), Some(seq)) => self.directory.set(
                id,
                directory::Entry {
                    seq,
                    ring: c.ring.clone(),
                    status: c.status.clone(),
                },
            ),
            _ => self.directory.unset(id),
        }
    }

    /// The mux escape character (QEMU's `-echr`).
    pub fn escape_char(mut self, c: u8) -> Self {
        self.escape_char = c;
        self
    }

    /// Where a testdev's `q` leaves the exit status it asks for (-1: none).
    pub fn exit_status(mut self, status: Arc<std::sync::atomic::AtomicI32>) -> Self {
        self.exit_status = status;
        self
    }

    /// Whether `id` is a live chardev (for the input core's routing).
    fn live(&self) -> impl Fn(&str) -> bool + '_ {
        |id| self.registry.get(id).is_some()
    }

    /// Let a mux's `C-a x` stop the daemon (else it raises
    /// `__org.chardevd_EXIT_REQUEST` and is logged).
    pub fn allow_exit(mut self, allow: bool) -> Self {
        self.allow_exit = allow;
        self
    }

    fn emit(&mut self, ev: Event, ctx: &mut Context<Self>) {
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

    /// Send a port operation to a chardev, or hold it back while the chardev
    /// is being changed.
    fn port_op(&mut self, chardev: &str, op: Control) {
        if self.registry.is_leased(chardev) {
            self.held.hold(chardev, op);
        } else if let Some(c) = self.registry.get(chardev) {
            c.addr.do_send(op);
        }
    }

    fn replay(&mut self, chardev: &str) {
        for op in self.held.take(chardev) {
            self.port_op(chardev, op);
        }
    }

    fn detach_ports(&mut self, ports: Vec<(String, PortId)>) {
        for (chardev, port) in ports {
            self.port_op(&chardev, Control::Detach(port));
        }
    }

    /// Make a port on a chardev the registry already counts `holder` in;
    /// the receiver answers once the chardev has it.
    fn make_port(
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
        self.port_op(chardev, Control::Attach { port, done });
        (front, attached)
    }

    fn arbiter_of(&self, chardev: &str) -> Option<usize> {
        self.registry.get(chardev).map(|c| c.arbiter)
    }

    /// Open a backend on arbiter `arbiter`; the answer comes on the returned channel.
    fn spawn_open(
        &self,
        arbiter: usize,
        id: String,
        generation: u64,
        backend: crate::backends::ChardevBackend,
        (ports, attached): (Vec<Port>, Vec<oneshot::Receiver<()>>),
        gone: Recipient<ChardevGone>,
    ) -> oneshot::Receiver<Result<Started, crate::error::BackendError>> {
        let (tx, rx) = oneshot::channel();
        let (objects, host) = (self.objects.clone(), self.host.clone());
        // The open runs on the arbiter (its descriptors register with that
        // thread's reactor); only the options and the answer cross threads.
        self.pool.get(arbiter).spawn_fn(move || {
            actix_rt::spawn(async move {
                // The ports on the chardevs it uses are attached first, so
                // the kind sees their state when it opens.
                for a in attached {
                    let _ = a.await;
                }
                let r = chardev::open(id, generation, backend, ports, objects, host, gone).await;
                if let Err(Ok(started)) = tx.send(r) {
                    // Nobody is waiting any more (the system is stopping).
                    started.addr.do_send(Control::Stop);
                }
            });
        });
        rx
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        let me = ctx.address();
        self.host = Host::new(self.allow_exit, move |req| me.do_send(Exit(req))).with_escape_char(self.escape_char);
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        for (_, c) in self.registry.live() {
            c.addr.do_send(Control::Stop);
        }
        Running::Stop
    }
}

fn reject_to_add_error(id: &str, backend: &crate::backends::ChardevBackend, r: Reject) -> Error {
    match r {
        Reject::AlreadyExists => Error::AlreadyExists(id.to_owned()),
        Reject::ResourceLent(res) => Error::AddFailed {
            id: id.to_owned(),
            source: backend.conflict(&res),
        },
        r @ (Reject::RefMissing(_) | Reject::RefInUse { .. } | Reject::RefRefused(_) | Reject::RefTooMany) => {
            Error::AddFailed {
                id: id.to_owned(),
                source: backend.reference_error(id, &r),
            }
        }
        _ => Error::Busy(id.to_owned()),
    }
}

impl Handler<AddChardev> for Supervisor {
    type Result = ResponseActFuture<Self, Result<ChardevReturn, Error>>;

    fn handle(&mut self, msg: AddChardev, ctx: &mut Context<Self>) -> Self::Result {
        let AddChardev { id, backend } = msg;
        let info = backend.info();
        let input = info.input;
        let ticket = match self.registry.reserve(&id, info.clone()) {
            Ok(t) => t,
            Err(r) => return Box::pin(fut::ready(Err(reject_to_add_error(&id, &backend, r)))),
        };
        tracing::debug!(chardev = %id, kind = backend.kind(), "chardev-add reserved");
        let holder = Holder::Chardev(id.clone());
        // Its ports on the chardevs it uses are closed until it has a
        // frontend of its own (QEMU's frontend-open of a mux's base).
        let (ports, attached): (Vec<Port>, Vec<_>) = info
            .references
            .iter()
            .map(|r| self.make_port(r, &holder, false, PortConfig::default()))
            .unzip();
        // A chardev over others runs where they run: one data path, one thread.
        let arbiter = match info.references.first().and_then(|r| self.arbiter_of(r)) {
            Some(a) => a,
            None => self.pool.next().0,
        };
        let rx = self.spawn_open(
            arbiter,
            id.clone(),
            ticket.generation,
            backend,
            (ports, attached),
            ctx.address().recipient(),
        );
        Box::pin(rx.into_actor(self).map(move |res, act, _ctx| match res {
            Ok(Ok(started)) => {
                let pty = started.pty.clone();
                let kept = ChardevRef {
                    addr: started.addr,
                    status: started.status,
                    ring: started.ring,
                    arbiter,
                };
                match act.registry.commit(ticket, kept) {
                    Ok(()) => {
                        act.publish(&id);
                        act.inputs.register(&id, input);
                        tracing::info!(chardev = %id, "chardev added");
                        Ok(ChardevReturn { pty })
                    }
                    Err(kept) => {
                        kept.addr.do_send(Control::Stop);
                        Err(Error::NotFound(id))
                    }
                }
            }
            Ok(Err(source)) => {
                let ports = act.registry.abort(ticket);
                act.detach_ports(ports);
                tracing::info!(chardev = %id, cause = %source, "chardev-add failed");
                Err(Error::AddFailed { id, source })
            }
            Err(_) => {
                let ports = act.registry.abort(ticket);
                act.detach_ports(ports);
                Err(Error::ShuttingDown)
            }
        }))
    }
}

impl Handler<ChangeChardev> for Supervisor {
    type Result = ResponseActFuture<Self, Result<ChardevReturn, Error>>;

    fn handle(&mut self, msg: ChangeChardev, ctx: &mut Context<Self>) -> Self::Result {
        let ChangeChardev { id, backend } = msg;
        let lease = match self.registry.begin_change(&id, backend.info()) {
            Ok(l) => l,
            Err(Reject::NotFound) => return Box::pin(fut::ready(Err(Error::DoesNotExist(id)))),
            Err(Reject::NotHotswappable) => return Box::pin(fut::ready(Err(Error::MuxHotswap))),
            Err(Reject::HotswapUnsupported) => return Box::pin(fut::ready(Err(Error::HotswapUnsupported))),
            Err(Reject::ResourceLent(r)) => {
                let source = backend.conflict(&r);
                return Box::pin(fut::ready(Err(Error::AddFailed { id, source })));
            }
            Err(_) => return Box::pin(fut::ready(Err(Error::Busy(id)))),
        };
        let Some(old) = self.registry.get(&id).cloned() else {
            let _ = self.registry.finish_change(lease, None);
            return Box::pin(fut::ready(Err(Error::DoesNotExist(id))));
        };
        let kind = backend.kind();
        let input = backend.info().input;
        // The new backend may need what the old one holds (the same pty link
        // path, the terminal, the same output file): the old one lends it for
        // the attempt and takes it back if the attempt fails.
        let lends = !lease.lent.is_empty();
        let rx = self.spawn_open_after_release(old.clone(), lends, &id, lease.generation, backend, ctx);
        let arbiter = old.arbiter;
        Box::pin(
            async move {
                let started = match rx.await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        if lends {
                            old.addr.do_send(Control::Reacquire);
                        }
                        return Err(Some(e));
                    }
                    Err(_) => return Err(None),
                };
                // Take the frontends off the old backend (QEMU's detach); the new
                // one gets them in the supervisor's context below.
                let (tx, ports) = oneshot::channel();
                old.addr.do_send(Control::TakePorts(tx));
                Ok((started, ports.await.unwrap_or_default(), old))
            }
            .into_actor(self)
            .map(move |res, act, _ctx| {
                let has_frontend = !act.registry.holders(&id).is_empty();
                let out = match res {
                    Ok((started, ports, old)) => {
                        let pty = started.pty.clone();
                        started.addr.do_send(Control::GivePorts(ports));
                        let new = ChardevRef {
                            addr: started.addr,
                            status: started.status,
                            ring: started.ring,
                            arbiter,
                        };
                        let finished = act.registry.finish_change(lease, Some(new));
                        act.publish(&id);
                        match finished {
                            Ok(_) => {
                                old.addr.do_send(Control::Stop);
                                act.inputs.register(&id, input);
                                tracing::info!(chardev = %id, kind, "chardev changed");
                                Ok(ChardevReturn { pty })
                            }
                            Err(new) => {
                                if let Some(n) = new {
                                    n.addr.do_send(Control::Stop);
                                }
                                Err(Error::DoesNotExist(id.clone()))
                            }
                        }
                    }
                    Err(e) => {
                        let _ = act.registry.finish_change(lease, None);
                        match e {
                            // QEMU without a frontend re-adds (so the add
                            // prefix); with one, the bare cause.
                            Some(source) if has_frontend => Err(Error::ChangeFailed(source)),
                            Some(source) => Err(Error::AddFailed { id: id.clone(), source }),
                            None => Err(Error::ShuttingDown),
                        }
                    }
                };
                act.replay(&id);
                out
            }),
        )
    }
}

impl Supervisor {
    /// Open a replacement on the old one's arbiter, after the old one lent
    /// what it must.
    fn spawn_open_after_release(
        &self,
        old: ChardevRef,
        lends: bool,
        id: &str,
        generation: u64,
        backend: crate::backends::ChardevBackend,
        ctx: &mut Context<Self>,
    ) -> oneshot::Receiver<Result<Started, crate::error::BackendError>> {
        let (tx, rx) = oneshot::channel();
        let (id, gone) = (id.to_owned(), ctx.address().recipient());
        let (objects, host) = (self.objects.clone(), self.host.clone());
        self.pool.get(old.arbiter).spawn_fn(move || {
            actix_rt::spawn(async move {
                if lends {
                    let (done, released) = oneshot::channel();
                    old.addr.do_send(Control::Release(done));
                    let _ = released.await;
                }
                let r = chardev::open(id, generation, backend, Vec::new(), objects, host, gone).await;
                if let Err(Ok(started)) = tx.send(r) {
                    started.addr.do_send(Control::Stop);
                }
            });
        });
        rx
    }
}

impl Handler<RemoveChardev> for Supervisor {
    type Result = Result<(), Error>;

    fn handle(&mut self, msg: RemoveChardev, _ctx: &mut Context<Self>) -> Self::Result {
        match self.registry.remove(&msg.id) {
            Ok((c, ports)) => {
                self.publish(&msg.id);
                c.addr.do_send(Control::Stop);
                self.detach_ports(ports);
                self.inputs.register(&msg.id, None);
                tracing::info!(chardev = %msg.id, "chardev removed");
                Ok(())
            }
            Err(Reject::NotFound) => Err(Error::NotFound(msg.id)),
            Err(_) => Err(Error::Busy(msg.id)),
        }
    }
}

impl Handler<SendBreak> for Supervisor {
    type Result = Result<(), Error>;

    fn handle(&mut self, msg: SendBreak, _ctx: &mut Context<Self>) -> Self::Result {
        if self.registry.get(&msg.id).is_none() {
            return Err(Error::NotFound(msg.id));
        }
        self.port_op(&msg.id, Control::Break);
        Ok(())
    }
}

impl Handler<Attach> for Supervisor {
    type Result = ResponseFuture<Result<Port, Error>>;

    fn handle(&mut self, msg: Attach, _ctx: &mut Context<Self>) -> Self::Result {
        let r = match self.registry.attach(&msg.chardev, msg.holder.clone()) {
            Ok(()) => Ok(self.make_port(&msg.chardev, &msg.holder, msg.open, msg.config)),
            Err(AttachReject::NotFound) => Err(Error::NotFound(msg.chardev)),
            Err(AttachReject::Full { max }) => Err(self.full_error(msg.chardev, max)),
        };
        Box::pin(async move {
            let (port, attached) = r?;
            let _ = attached.await;
            Ok(port)
        })
    }
}

impl Handler<Detach> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Detach, _ctx: &mut Context<Self>) {
        if let Some(port) = self.registry.detach(&msg.chardev, &msg.holder) {
            self.port_op(&msg.chardev, Control::Detach(port));
        }
    }
}

impl Handler<SetOpen> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: SetOpen, _ctx: &mut Context<Self>) -> Self::Result {
        let Some(port) = self.registry.port_of(&msg.chardev, &msg.holder) else {
            return Box::pin(async {});
        };
        let (done, rx) = oneshot::channel();
        self.port_op(
            &msg.chardev,
            Control::SetOpen {
                port,
                open: msg.open,
                done,
            },
        );
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<Ioctl> for Supervisor {
    type Result = ResponseFuture<Result<u32, Error>>;

    fn handle(&mut self, msg: Ioctl, _ctx: &mut Context<Self>) -> Self::Result {
        if self.registry.port_of(&msg.chardev, &msg.holder).is_none() {
            let e = Error::Detached(msg.chardev);
            return Box::pin(async move { Err(e) });
        }
        let (done, rx) = oneshot::channel();
        self.port_op(&msg.chardev, Control::Ioctl { req: msg.req, done });
        let chardev = msg.chardev;
        Box::pin(async move { rx.await.unwrap_or(Err(Error::Detached(chardev))) })
    }
}

impl Handler<NewHolderId> for Supervisor {
    type Result = u64;

    fn handle(&mut self, _msg: NewHolderId, _ctx: &mut Context<Self>) -> u64 {
        self.next_holder += 1;
        self.next_holder
    }
}

impl Handler<Subscribe> for Supervisor {
    type Result = u64;

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Context<Self>) -> u64 {
        self.bus.subscribe(msg.0)
    }
}

impl Handler<Unsubscribe> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Context<Self>) {
        self.bus.unsubscribe(msg.0);
    }
}

impl Handler<Emit> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Emit, ctx: &mut Context<Self>) {
        self.emit(msg.0, ctx);
    }
}

impl Handler<ChardevGone> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChardevGone, _ctx: &mut Context<Self>) {
        if let Some((_, ports)) = self.registry.gone(&msg.id, msg.generation) {
            self.publish(&msg.id);
            self.detach_ports(ports);
            self.inputs.register(&msg.id, None);
        }
    }
}

impl Handler<DeviceAdd> for Supervisor {
    type Result = ResponseFuture<Result<(), Error>>;

    fn handle(&mut self, msg: DeviceAdd, _ctx: &mut Context<Self>) -> Self::Result {
        match self.add_device(msg) {
            Ok(attached) => Box::pin(async move {
                for a in attached {
                    let _ = a.await;
                }
                Ok(())
            }),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl Supervisor {
    fn add_device(&mut self, msg: DeviceAdd) -> Result<Vec<oneshot::Receiver<()>>, Error> {
        let Some(driver) = frontends::driver(&msg.driver) else {
            return Err(DeviceError::NoDriver(msg.driver).into());
        };
        let chardevs = driver.chardevs(&msg.props)?;
        let prop_error = |i: usize, in_use: bool| {
            let (driver, prop, value) = (driver.name.into(), driver.chardev_props[i].into(), chardevs[i].clone());
            if in_use {
                DeviceError::ChardevInUse { driver, prop, value }
            } else {
                DeviceError::NoChardev { driver, prop, value }
            }
        };
        let id = match self.registry.add_device(msg.id.as_deref(), driver.name, &chardevs) {
            Ok(id) => id,
            Err(DeviceReject::BadId) => return Err(DeviceError::BadId.into()),
            Err(DeviceReject::Duplicate(d)) => return Err(DeviceError::DuplicateId(d).into()),
            Err(DeviceReject::NoChardev(i)) => return Err(prop_error(i, false).into()),
            Err(DeviceReject::ChardevInUse(i)) => return Err(prop_error(i, true).into()),
        };
        let holder = Holder::Device(id.clone());
        let (ports, attached): (Vec<Port>, Vec<_>) = chardevs
            .iter()
            .map(|c| self.make_port(c, &holder, driver.opens_at_start, PortConfig::default()))
            .unzip();
        let arbiter = chardevs.first().and_then(|c| self.arbiter_of(c)).unwrap_or(0);
        let stop = (driver.start)(&self.pool.get(arbiter), id.clone(), ports);
        tracing::info!(device = %id, driver = driver.name, chardevs = ?chardevs, "device added");
        self.devices.started(id, stop);
        Ok(attached)
    }
}

impl Handler<DeviceDel> for Supervisor {
    type Result = Result<(), Error>;

    fn handle(&mut self, msg: DeviceDel, ctx: &mut Context<Self>) -> Self::Result {
        let (dev, ports) = self
            .registry
            .remove_device(&msg.id)
            .ok_or_else(|| DeviceError::NotFound(msg.id.clone()))?;
        self.detach_ports(ports);
        if let Some(stop) = self.devices.stop(&msg.id) {
            stop.do_send(StopDevice);
        }
        tracing::info!(device = %msg.id, driver = dev.driver, "device removed");
        // As QEMU: DEVICE_DELETED once the device is gone (at once here: no guest to ask).
        let event = if dev.anonymous {
            Event::DeviceDeleted {
                device: None,
                path: format!("/machine/peripheral-anon/{}", msg.id),
            }
        } else {
            Event::DeviceDeleted {
                device: Some(msg.id.clone()),
                path: format!("/machine/peripheral/{}", msg.id),
            }
        };
        self.emit(event, ctx);
        Ok(())
    }
}

impl Handler<PortSetOpen> for Supervisor {
    type Result = ResponseFuture<Result<(), Error>>;

    fn handle(&mut self, msg: PortSetOpen, ctx: &mut Context<Self>) -> Self::Result {
        match self.port_set_open(msg, ctx) {
            Ok(applied) => Box::pin(async move {
                if let Some(a) = applied {
                    let _ = a.await;
                }
                Ok(())
            }),
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}

impl Supervisor {
    fn port_set_open(
        &mut self,
        msg: PortSetOpen,
        ctx: &mut Context<Self>,
    ) -> Result<Option<oneshot::Receiver<bool>>, Error> {
        let dev = self
            .registry
            .device(&msg.id)
            .ok_or_else(|| DeviceError::NotFound(msg.id.clone()))?;
        if dev.driver != frontends::port::DRIVER.name {
            return Err(DeviceError::NotAPort(msg.id).into());
        }
        let (chardev, anonymous) = (dev.chardevs[0].clone(), dev.anonymous);
        let holder = Holder::Device(msg.id.clone());
        let mut applied = None;
        if let Some(port) = self.registry.port_of(&chardev, &holder) {
            let (done, rx) = oneshot::channel();
            applied = Some(rx);
            self.port_op(
                &chardev,
                Control::SetOpen {
                    port,
                    open: msg.open,
                    done,
                },
            );
        }
        // As QEMU: only a port with an id of its own raises the event.
        if !anonymous {
            let event = Event::VserportChange {
                id: msg.id.clone(),
                open: msg.open,
            };
            self.emit(event, ctx);
        }
        Ok(applied)
    }
}

impl Handler<Yank> for Supervisor {
    type Result = Result<(), Error>;

    fn handle(&mut self, msg: Yank, _ctx: &mut Context<Self>) -> Self::Result {
        // Every instance is checked first: one bad id and nothing is yanked.
        let mut ids = Vec::new();
        for id in msg.ids {
            match id.filter(|id| self.registry.info(id).is_some_and(|i| i.yank)) {
                Some(id) => ids.push(id),
                None => return Err(Error::YankNotFound),
            }
        }
        for id in ids {
            self.port_op(&id, Control::Yank);
        }
        Ok(())
    }
}

impl Handler<QueryYank> for Supervisor {
    type Result = MessageResult<QueryYank>;

    fn handle(&mut self, _msg: QueryYank, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.registry
                .live()
                .into_iter()
                .filter(|(id, _)| self.registry.info(id).is_some_and(|i| i.yank))
                .map(|(id, _)| id.to_owned())
                .collect(),
        )
    }
}

impl Handler<Quit> for Supervisor {
    type Result = ();

    fn handle(&mut self, _msg: Quit, ctx: &mut Context<Self>) {
        tracing::info!("shutting down");
        // Every session takes its last events (SHUTDOWN) first, bounded.
        let flushes = self.bus.flushes();
        ctx.spawn(
            async move {
                let all = async {
                    for f in flushes {
                        f.await;
                    }
                };
                let _ = tokio::time::timeout(events::SHUTDOWN_FLUSH, all).await;
            }
            .into_actor(self)
            .map(|_, _, _| System::current().stop()),
        );
    }
}

impl Handler<Exit> for Supervisor {
    type Result = ();

    fn handle(&mut self, Exit(req): Exit, ctx: &mut Context<Self>) {
        if let (true, Some(status)) = (self.allow_exit, req.status) {
            // QEMU's testdev calls exit(): no SHUTDOWN event.
            tracing::warn!(chardev = %req.chardev, source = req.source.as_str(), status, "exit requested: exiting");
            self.exit_status
                .store(i32::from(status), std::sync::atomic::Ordering::SeqCst);
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
            ctx.notify(Quit);
        } else {
            tracing::warn!(
                chardev = %req.chardev,
                source = req.source.as_str(),
                "exit requested; ignored (start the daemon with --allow-exit to let it stop the daemon)"
            );
            let event = Event::ExitRequest {
                chardev: req.chardev,
                source: req.source,
                status: req.status,
            };
            self.emit(event, ctx);
        }
    }
}

impl Handler<AddMonitor> for Supervisor {
    type Result = ResponseFuture<Result<MonitorAdded, Error>>;

    fn handle(&mut self, msg: AddMonitor, _ctx: &mut Context<Self>) -> Self::Result {
        let r = self.add_monitor(msg);
        Box::pin(async move {
            let (added, attached) = r?;
            let _ = attached.await;
            Ok(added)
        })
    }
}

impl Supervisor {
    fn add_monitor(&mut self, msg: AddMonitor) -> Result<(MonitorAdded, oneshot::Receiver<()>), Error> {
        let id = self.monitors.name(msg.id)?;
        self.next_holder += 1;
        let holder = Holder::Monitor(self.next_holder);
        let chardev = msg.chardev;
        match self.registry.attach(&chardev, holder.clone()) {
            Ok(()) => {}
            Err(AttachReject::NotFound) => return Err(MonitorError::NoChardev(chardev).into()),
            Err(AttachReject::Full { max }) => return Err(self.full_error(chardev, max)),
        }
        let oob = self.registry.info(&chardev).is_some_and(|i| facts(i.kind).oob);
        // A monitor sets its handlers at once: open from the start (QEMU).
        let (port, attached) = self.make_port(&chardev, &holder, true, PortConfig::default());
        let arbiter = self.pool.get(self.arbiter_of(&chardev).unwrap_or(0));
        self.monitors.insert(id.clone(), chardev.clone(), holder);
        tracing::info!(monitor = %id, chardev = %chardev, "QMP monitor added");
        Ok((
            MonitorAdded {
                id,
                chardev,
                port,
                arbiter,
                oob,
            },
            attached,
        ))
    }

    /// The error for one frontend too many on `chardev` (worded by its kind).
    fn full_error(&self, chardev: String, max: usize) -> Error {
        match self.registry.info(&chardev) {
            Some(i) if facts(i.kind).multiplexed => Error::MuxFull { id: chardev, max },
            _ => Error::InUse(chardev),
        }
    }
}

impl Handler<CommitMonitor> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: CommitMonitor, _ctx: &mut Context<Self>) {
        if let Err(stop) = self.monitors.commit(&msg.id, msg.stop) {
            stop.do_send(StopDevice);
        }
    }
}

impl Handler<RemoveMonitor> for Supervisor {
    type Result = Result<(), Error>;

    fn handle(&mut self, msg: RemoveMonitor, _ctx: &mut Context<Self>) -> Self::Result {
        let m = self.monitors.remove(&msg.id)?;
        if let Some(port) = self.registry.detach(&m.chardev, &m.holder) {
            self.port_op(&m.chardev, Control::Detach(port));
        }
        if let Some(stop) = m.stop {
            stop.do_send(StopDevice);
        }
        tracing::info!(monitor = %msg.id, chardev = %m.chardev, "QMP monitor removed");
        Ok(())
    }
}

impl Handler<SendInput> for Supervisor {
    type Result = Result<(), Error>;

    fn handle(&mut self, msg: SendInput, _ctx: &mut Context<Self>) -> Self::Result {
        // QEMU's order: the console, then every event has a handler, then
        // the events go out and every handler that got some syncs.
        let batches = self
            .inputs
            .route(msg.device.as_deref(), msg.head, &msg.events, self.live())?;
        for (chardev, events) in batches {
            self.port_op(&chardev, Control::Input(events));
        }
        Ok(())
    }
}

impl Handler<SendKey> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: SendKey, _ctx: &mut Context<Self>) {
        // Without a key handler QEMU drops them silently.
        if let Some((chardev, events)) = self.inputs.keys(&msg.keys, self.live()) {
            self.port_op(&chardev, Control::Input(events));
        }
    }
}

impl Handler<QueryMice> for Supervisor {
    type Result = MessageResult<QueryMice>;

    fn handle(&mut self, _msg: QueryMice, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.inputs.mice(self.live()))
    }
}

impl Handler<GetScreen> for Supervisor {
    type Result = Result<oneshot::Receiver<Option<crate::chardev::Screen>>, Error>;

    fn handle(&mut self, msg: GetScreen, _ctx: &mut Context<Self>) -> Self::Result {
        let has_screen = |id: &str| self.registry.info(id).is_some_and(|i| facts(i.kind).screen);
        let id = match msg.device {
            Some(d) if has_screen(&d) => d,
            Some(d) => return Err(Error::Device(crate::error::DeviceError::NotFound(d))),
            None => match self.inputs.first(has_screen) {
                Some(c) => c.to_owned(),
                None => return Err(Error::NoConsole),
            },
        };
        let (tx, rx) = oneshot::channel();
        self.port_op(&id, Control::Screen(tx));
        Ok(rx)
    }
}
