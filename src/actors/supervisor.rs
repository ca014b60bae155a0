//! The supervisor: the ID registry of chardevs and devices, and the event bus.
//!
//! Every command becomes one message here. The registry is only changed inside
//! handlers (which run with `&mut self`), so each command sees a consistent
//! registry. Creating a backend may wait (a socket that waits for its client),
//! so `chardev-add` is reserve-then-commit: the id is reserved synchronously,
//! the backend starts in a future that does not block the supervisor, and the
//! result is committed or rolled back when it finishes. A second `chardev-add`
//! of a reserved id fails at once, before any side effect.
use super::events::{EventBus, QmpEvent};
use super::msgs::*;
use super::ChardevError;
use crate::backends::spec::ChardevBackend;
use crate::backends::{self, FrontendEvent, FrontendSink, Started, ToBackend};
use crate::frontends::{self, DeviceActor};
use crate::json::Json;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug)]
struct Frontend {
    id: u64,
    owner: FrontendOwner,
    open: bool,
    sink: FrontendSink,
    route: BackendRoute,
}

#[derive(Debug)]
struct Live {
    backend: Recipient<ToBackend>,
    filename: String,
    be_open: bool,
    ringbuf: bool,
    frontend: Option<Frontend>,
}

#[derive(Debug)]
struct Slot {
    /// Creation order (query-chardev lists in this order).
    seq: u64,
    kind: &'static str,
    /// None while the backend is being created.
    live: Option<Live>,
    /// A chardev-change is creating the replacement.
    changing: bool,
    /// The exclusive named resource the backend holds, if any (see [`resource_of`]).
    resource: Option<String>,
}

#[derive(Debug)]
struct Device {
    chardev: String,
    driver: &'static str,
    addr: Addr<DeviceActor>,
    /// Created without an id (QEMU's `/machine/peripheral-anon`).
    anonymous: bool,
}

/// The supervisor actor. Create one per actor system with [`Supervisor::new`]
/// (it is not a `SystemService`, so several can coexist, e.g. in tests).
#[derive(Debug, Default)]
pub struct Supervisor {
    slots: HashMap<String, Slot>,
    devices: HashMap<String, Device>,
    seq: u64,
    next_frontend: u64,
    bus: EventBus,
    /// Resources lent by a chardev to its same-kind replacement during a
    /// `chardev-change`: nobody else may take them meanwhile.
    lent: Vec<String>,
}

impl Supervisor {
    /// A supervisor with an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn live(&self, id: &str) -> Option<&Live> {
        self.slots.get(id).and_then(|s| s.live.as_ref())
    }

    fn live_mut(&mut self, id: &str) -> Option<&mut Live> {
        self.slots.get_mut(id).and_then(|s| s.live.as_mut())
    }

    fn emit(&mut self, ev: QmpEvent, ctx: &mut Context<Self>) {
        if let Some(key) = self.bus.emit(ev) {
            self.arm_throttle(key, ctx);
        }
    }

    fn arm_throttle(&mut self, key: (String, String), ctx: &mut Context<Self>) {
        ctx.run_later(super::events::THROTTLE_WINDOW, move |act, ctx| {
            if act.bus.expire(&key) {
                act.arm_throttle(key, ctx);
            }
        });
    }

    /// Attach a frontend (shared by the library API and built-in devices).
    fn attach(
        &mut self,
        chardev: &str,
        owner: FrontendOwner,
        sink: FrontendSink,
        open: bool,
    ) -> Result<(u64, BackendRoute), ChardevError> {
        self.next_frontend += 1;
        let id = self.next_frontend;
        let live = self
            .live_mut(chardev)
            .ok_or_else(|| ChardevError::NotFound(chardev.to_owned()))?;
        if live.frontend.is_some() {
            return Err(ChardevError::InUse(chardev.to_owned()));
        }
        let route: BackendRoute = Arc::new(RwLock::new(live.backend.clone()));
        live.backend.do_send(ToBackend::Attach(sink.clone()));
        live.frontend = Some(Frontend {
            id,
            owner,
            open,
            sink,
            route: route.clone(),
        });
        Ok((id, route))
    }

    fn detach(&mut self, chardev: &str, frontend: u64) {
        if let Some(live) = self.live_mut(chardev) {
            if live.frontend.as_ref().is_some_and(|f| f.id == frontend) {
                live.frontend = None;
                live.backend.do_send(ToBackend::Detach);
            }
        }
    }

    fn device_error(driver: &str, prop: &str, msg: String) -> ChardevError {
        ChardevError::Other(format!("Property '{driver}.{prop}' {msg}"))
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        for slot in self.slots.values() {
            if let Some(live) = &slot.live {
                live.backend.do_send(ToBackend::Stop);
            }
        }
        Running::Stop
    }
}

impl Handler<AddChardev> for Supervisor {
    type Result = ResponseActFuture<Self, Result<ChardevReturn, ChardevError>>;

    fn handle(&mut self, msg: AddChardev, _ctx: &mut Context<Self>) -> Self::Result {
        let AddChardev { id, backend } = msg;
        if self.slots.contains_key(&id) {
            return Box::pin(fut::ready(Err(ChardevError::AlreadyExists(id))));
        }
        if let Some(reason) = self.lent_conflict(&backend) {
            return Box::pin(fut::ready(Err(ChardevError::AddFailed { id, reason })));
        }
        self.seq += 1;
        let seq = self.seq;
        self.slots.insert(
            id.clone(),
            Slot {
                seq,
                kind: backend.kind(),
                live: None,
                changing: false,
                resource: resource_of(&backend),
            },
        );
        tracing::debug!(chardev = %id, kind = backend.kind(), "chardev-add reserved");
        let start_id = id.clone();
        Box::pin(
            async move { backends::start(&start_id, &backend).await }
                .into_actor(self)
                .map(move |res, act, _ctx| match res {
                    Ok(started) => {
                        let pty = started.pty.clone();
                        let Some(slot) = act.slots.get_mut(&id).filter(|s| s.seq == seq) else {
                            started.backend.do_send(ToBackend::Stop);
                            return Err(ChardevError::NotFound(id));
                        };
                        slot.live = Some(live_of(started));
                        tracing::info!(chardev = %id, kind = slot.kind, "chardev added");
                        Ok(ChardevReturn { pty })
                    }
                    Err(reason) => {
                        if act.slots.get(&id).is_some_and(|s| s.seq == seq) {
                            act.slots.remove(&id);
                        }
                        tracing::info!(chardev = %id, %reason, "chardev-add failed");
                        Err(ChardevError::AddFailed { id, reason })
                    }
                }),
        )
    }
}

/// QEMU's `id_wellformed`: a letter, then letters, digits, '-', '.', '_'.
/// (Anonymous devices are named `device[N]`, which no explicit id can be.)
fn id_wellformed(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The exclusive, named host resource a backend takes: the terminal for
/// stdio, the link path for a pty with `path`.
fn resource_of(spec: &ChardevBackend) -> Option<String> {
    match spec {
        ChardevBackend::Stdio(_) => Some("stdio".into()),
        ChardevBackend::Pty(p) => p.path.as_ref().map(|p| format!("pty:{p}")),
        ChardevBackend::File(f) => Some(format!("file:{}", f.out)),
        _ => None,
    }
}

impl Supervisor {
    /// The error a new backend gets while its resource is lent out.
    fn lent_conflict(&self, spec: &ChardevBackend) -> Option<String> {
        let res = resource_of(spec)?;
        // Files may be shared (as in QEMU); only the terminal and pty links are exclusive.
        if res.starts_with("file:") || !self.lent.contains(&res) {
            return None;
        }
        Some(match spec {
            ChardevBackend::Stdio(_) => "cannot use stdio by multiple character devices".into(),
            _ => "Failed to create PTY symlink: File exists".into(),
        })
    }
}

fn live_of(s: Started) -> Live {
    Live {
        backend: s.backend,
        filename: s.filename,
        be_open: s.opened,
        ringbuf: s.ringbuf,
        frontend: None,
    }
}

impl Handler<ChangeChardev> for Supervisor {
    type Result = ResponseActFuture<Self, Result<ChardevReturn, ChardevError>>;

    fn handle(&mut self, msg: ChangeChardev, _ctx: &mut Context<Self>) -> Self::Result {
        let ChangeChardev { id, backend } = msg;
        let Some(slot) = self.slots.get_mut(&id).filter(|s| s.live.is_some()) else {
            return Box::pin(fut::ready(Err(ChardevError::DoesNotExist(id))));
        };
        if matches!(slot.kind, "mux" | "hub") {
            return Box::pin(fut::ready(Err(ChardevError::MuxHotswap)));
        }
        if slot.changing {
            return Box::pin(fut::ready(Err(ChardevError::Busy(id))));
        }
        let own = slot.resource.clone();
        let new_resource = resource_of(&backend);
        if new_resource.is_some() && new_resource != own {
            if let Some(reason) = self.lent_conflict(&backend) {
                return Box::pin(fut::ready(Err(ChardevError::AddFailed { id, reason })));
            }
        }
        let Some(slot) = self.slots.get_mut(&id) else {
            return Box::pin(fut::ready(Err(ChardevError::DoesNotExist(id))));
        };
        slot.changing = true;
        let seq = slot.seq;
        let kind = backend.kind();
        let start_id = id.clone();
        // The new backend may need what the old one holds (the same pty link
        // path, the terminal, the same output file). The old one lends it and
        // takes it back if the new one fails, so a failed change leaves
        // everything as it was.
        let old_backend = slot.live.as_ref().map(|l| (l.backend.clone(), l.be_open));
        let lends = own.is_some() && own == new_resource;
        // While lent, the resource is off limits to every other chardev.
        let lent = own.filter(|_| lends);
        if let Some(r) = &lent {
            self.lent.push(r.clone());
        }
        Box::pin(
            async move {
                let mut old_open = false;
                if let Some((old, static_open)) = &old_backend {
                    // QEMU's be_open now (a pty may be connected, a file's input may have ended).
                    old_open = match old.send(ToBackend::IsOpen).await {
                        Ok(Ok(backends::BackendReply::Value(v))) => v != 0,
                        _ => *static_open,
                    };
                    if lends {
                        let _ = old.send(ToBackend::Release).await;
                    }
                }
                let started = backends::start(&start_id, &backend).await;
                if let (Err(_), Some((old, _)), true) = (&started, &old_backend, lends) {
                    let _ = old.send(ToBackend::Reacquire).await;
                }
                (started, old_open)
            }
            .into_actor(self)
            .map(move |(res, old_open), act, _ctx| {
                if let Some(r) = &lent {
                    if let Some(i) = act.lent.iter().position(|x| x == r) {
                        act.lent.remove(i);
                    }
                }
                let Some(slot) = act.slots.get_mut(&id).filter(|s| s.seq == seq) else {
                    if let Ok(started) = res {
                        started.backend.do_send(ToBackend::Stop);
                    }
                    return Err(ChardevError::DoesNotExist(id));
                };
                slot.changing = false;
                let has_frontend = slot.live.as_ref().is_some_and(|l| l.frontend.is_some());
                let started = match res {
                    Ok(s) => s,
                    // QEMU without a frontend re-adds (so the add prefix); with one, the bare cause.
                    Err(reason) if has_frontend => return Err(ChardevError::ChangeFailed(reason)),
                    Err(reason) => return Err(ChardevError::AddFailed { id, reason }),
                };
                let pty = started.pty.clone();
                let mut new = live_of(started);
                let Some(mut old) = slot.live.take() else {
                    return Err(ChardevError::DoesNotExist(id));
                };
                if let Some(fe) = old.frontend.take() {
                    if old_open && !new.be_open {
                        backends::deliver(&fe.sink, FrontendEvent::Closed);
                    }
                    old.backend.do_send(ToBackend::Detach);
                    match fe.route.write() {
                        Ok(mut r) => *r = new.backend.clone(),
                        Err(p) => *p.into_inner() = new.backend.clone(),
                    }
                    new.backend.do_send(ToBackend::Attach(fe.sink.clone()));
                    new.frontend = Some(fe);
                }
                old.backend.do_send(ToBackend::Stop);
                slot.kind = kind;
                slot.resource = new_resource;
                slot.live = Some(new);
                tracing::info!(chardev = %id, kind, "chardev changed");
                Ok(ChardevReturn { pty })
            }),
        )
    }
}

impl Handler<RemoveChardev> for Supervisor {
    type Result = Result<(), ChardevError>;

    fn handle(&mut self, msg: RemoveChardev, _ctx: &mut Context<Self>) -> Self::Result {
        let Some(slot) = self.slots.get(&msg.id) else {
            return Err(ChardevError::NotFound(msg.id));
        };
        // Still being created (e.g. waiting for a fifo reader): busy, not gone.
        if slot.live.is_none() {
            return Err(ChardevError::Busy(msg.id));
        }
        if slot.changing || slot.live.as_ref().is_some_and(|l| l.frontend.is_some()) {
            return Err(ChardevError::Busy(msg.id));
        }
        if let Some(Slot { live: Some(live), .. }) = self.slots.remove(&msg.id) {
            live.backend.do_send(ToBackend::Stop);
        }
        tracing::info!(chardev = %msg.id, "chardev removed");
        Ok(())
    }
}

impl Handler<SendBreak> for Supervisor {
    type Result = Result<(), ChardevError>;

    fn handle(&mut self, msg: SendBreak, _ctx: &mut Context<Self>) -> Self::Result {
        let live = self.live(&msg.id).ok_or(ChardevError::NotFound(msg.id))?;
        live.backend.do_send(ToBackend::Break);
        Ok(())
    }
}

impl Handler<QueryChardev> for Supervisor {
    type Result = MessageResult<QueryChardev>;

    fn handle(&mut self, _msg: QueryChardev, _ctx: &mut Context<Self>) -> Self::Result {
        let mut rows: Vec<(u64, ChardevInfo)> = self
            .slots
            .iter()
            .filter_map(|(id, s)| {
                let live = s.live.as_ref()?;
                Some((
                    s.seq,
                    ChardevInfo {
                        label: id.clone(),
                        filename: live.filename.clone(),
                        frontend_open: live.frontend.as_ref().is_some_and(|f| f.open),
                    },
                ))
            })
            .collect();
        rows.sort_by_key(|(seq, _)| *seq);
        MessageResult(rows.into_iter().map(|(_, r)| r).collect())
    }
}

fn ring_backend(sup: &Supervisor, device: &str) -> Result<Recipient<ToBackend>, ChardevError> {
    let live = sup
        .live(device)
        .ok_or_else(|| ChardevError::DeviceNotFound(device.to_owned()))?;
    if !live.ringbuf {
        return Err(ChardevError::NotRingbuf(device.to_owned()));
    }
    Ok(live.backend.clone())
}

impl Handler<RingbufWrite> for Supervisor {
    type Result = ResponseFuture<Result<(), ChardevError>>;

    fn handle(&mut self, msg: RingbufWrite, _ctx: &mut Context<Self>) -> Self::Result {
        let backend = ring_backend(self, &msg.device);
        Box::pin(async move {
            let backend = backend?;
            match backend.send(ToBackend::RingWrite(msg.data)).await {
                Ok(r) => r.map(|_| ()),
                Err(_) => Err(ChardevError::DeviceNotFound(msg.device)),
            }
        })
    }
}

impl Handler<RingbufRead> for Supervisor {
    type Result = ResponseFuture<Result<String, ChardevError>>;

    fn handle(&mut self, msg: RingbufRead, _ctx: &mut Context<Self>) -> Self::Result {
        let backend = ring_backend(self, &msg.device);
        Box::pin(async move {
            let backend = backend?;
            match backend
                .send(ToBackend::RingRead {
                    size: msg.size,
                    format: msg.format,
                })
                .await
            {
                Ok(Ok(backends::BackendReply::Text(t))) => Ok(t),
                Ok(Ok(_)) => Ok(String::new()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(ChardevError::DeviceNotFound(msg.device)),
            }
        })
    }
}

impl Handler<AttachFrontend> for Supervisor {
    type Result = Result<(u64, BackendRoute), ChardevError>;

    fn handle(&mut self, msg: AttachFrontend, _ctx: &mut Context<Self>) -> Self::Result {
        self.attach(&msg.chardev, msg.owner, msg.sink, msg.open)
    }
}

impl Handler<DetachFrontend> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: DetachFrontend, _ctx: &mut Context<Self>) {
        self.detach(&msg.chardev, msg.frontend);
    }
}

impl Handler<SetFrontendOpen> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: SetFrontendOpen, _ctx: &mut Context<Self>) {
        if let Some(fe) = self.live_mut(&msg.chardev).and_then(|l| l.frontend.as_mut()) {
            if fe.id == msg.frontend {
                fe.open = msg.open;
            }
        }
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

impl Handler<DeviceAdd> for Supervisor {
    type Result = Result<(), ChardevError>;

    fn handle(&mut self, msg: DeviceAdd, _ctx: &mut Context<Self>) -> Self::Result {
        let Some(driver) = frontends::driver(&msg.driver) else {
            return Err(ChardevError::Other(format!(
                "'{}' is not a valid device model name",
                msg.driver
            )));
        };
        let mut chardev = None;
        for (k, v) in &msg.props {
            match (k.as_str(), v) {
                ("chardev", Json::Str(s)) => chardev = Some(s.clone()),
                ("chardev", _) => {
                    return Err(ChardevError::Other(
                        "Invalid parameter type for 'chardev', expected: string".into(),
                    ))
                }
                (other, _) => {
                    return Err(ChardevError::Other(format!(
                        "Property '{}.{other}' not found",
                        msg.driver
                    )))
                }
            }
        }
        let Some(chardev) = chardev else {
            return Err(ChardevError::Other(format!(
                "Property '{}.chardev' is required",
                msg.driver
            )));
        };
        let anonymous = msg.id.is_none();
        let id = match msg.id {
            Some(id) if !id_wellformed(&id) => {
                return Err(ChardevError::Other("Parameter 'id' expects an identifier".into()))
            }
            Some(id) if self.devices.contains_key(&id) => {
                return Err(ChardevError::Other(format!("Duplicate device ID '{id}'")))
            }
            Some(id) => id,
            None => {
                let mut n = self.devices.len();
                loop {
                    let candidate = format!("device[{n}]");
                    if !self.devices.contains_key(&candidate) {
                        break candidate;
                    }
                    n += 1;
                }
            }
        };
        if self.live(&chardev).is_none() {
            return Err(Self::device_error(
                driver,
                "chardev",
                format!("can't find value '{chardev}'"),
            ));
        }
        if self.live(&chardev).is_some_and(|l| l.frontend.is_some()) {
            return Err(Self::device_error(
                driver,
                "chardev",
                format!("can't take value '{chardev}', it's in use"),
            ));
        }
        let (sink, rx) = tokio::sync::mpsc::channel(super::frontend::FRONTEND_QUEUE);
        let open = frontends::opens_at_start(driver);
        let (_, route) = self.attach(&chardev, FrontendOwner::Device(id.clone()), sink, open)?;
        let addr = DeviceActor::new(driver, id.clone(), chardev.clone(), route, rx).start();
        tracing::info!(device = %id, driver, chardev = %chardev, "device added");
        self.devices.insert(
            id,
            Device {
                chardev,
                driver,
                addr,
                anonymous,
            },
        );
        Ok(())
    }
}

impl Handler<DeviceDel> for Supervisor {
    type Result = Result<(), ChardevError>;

    fn handle(&mut self, msg: DeviceDel, ctx: &mut Context<Self>) -> Self::Result {
        let dev = self
            .devices
            .remove(&msg.id)
            .ok_or_else(|| ChardevError::NoSuchDevice(msg.id.clone()))?;
        let fe = self
            .live(&dev.chardev)
            .and_then(|l| l.frontend.as_ref())
            .filter(|f| f.owner == FrontendOwner::Device(msg.id.clone()))
            .map(|f| f.id);
        if let Some(fe) = fe {
            self.detach(&dev.chardev, fe);
        }
        dev.addr.do_send(frontends::StopDevice);
        tracing::info!(device = %msg.id, driver = dev.driver, "device removed");
        // As QEMU: DEVICE_DELETED once the device is gone (at once here: no guest to ask).
        let data = if dev.anonymous {
            Json::object([("path", Json::str(format!("/machine/peripheral-anon/{}", msg.id)))])
        } else {
            Json::object([
                ("device", Json::str(msg.id.clone())),
                ("path", Json::str(format!("/machine/peripheral/{}", msg.id))),
            ])
        };
        self.emit(QmpEvent::now("DEVICE_DELETED", Some(data)), ctx);
        Ok(())
    }
}

impl Handler<PortSetOpen> for Supervisor {
    type Result = Result<(), ChardevError>;

    fn handle(&mut self, msg: PortSetOpen, ctx: &mut Context<Self>) -> Self::Result {
        let dev = self
            .devices
            .get(&msg.id)
            .ok_or_else(|| ChardevError::NoSuchDevice(msg.id.clone()))?;
        if dev.driver != "port" {
            return Err(ChardevError::Other(format!("Device '{}' is not a port", msg.id)));
        }
        let (chardev, anonymous) = (dev.chardev.clone(), dev.anonymous);
        if let Some(fe) = self.live_mut(&chardev).and_then(|l| l.frontend.as_mut()) {
            fe.open = msg.open;
        }
        // As QEMU: only a port with an id of its own raises the event.
        if !anonymous {
            let data = Json::object([("id", Json::str(msg.id.clone())), ("open", Json::Bool(msg.open))]);
            self.emit(QmpEvent::now("VSERPORT_CHANGE", Some(data)), ctx);
        }
        Ok(())
    }
}

impl Handler<Quit> for Supervisor {
    type Result = ();

    fn handle(&mut self, _msg: Quit, ctx: &mut Context<Self>) {
        tracing::info!("quit requested over QMP");
        ctx.run_later(Duration::from_millis(10), |_, _| System::current().stop());
    }
}
