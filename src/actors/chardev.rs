//! The chardev actor: one per chardev, on one arbiter of the pool.
//!
//! It owns its kind's [`Backend`], its ports (one per frontend), its log file
//! and its open state, and drives them all from one [`Driver`] future that
//! runs in the actor's own context (so every piece of state is the actor's,
//! handled with `&mut self`):
//! - input: read only as much as every stalling port has room for (QEMU's
//!   `can_read`), then hand it to every port;
//! - output: take the ports' queued bytes in turn and give them to the
//!   backend, which may take part of them (the rest waits); what it took is
//!   logged;
//! - events: OPENED/CLOSED/BREAK reach every port as state.
//!
//! Control (attach, detach, open state, ioctls, breaks, moving the ports for
//! `chardev-change`, stopping) arrives as [`Control`] messages from the
//! supervisor, in order, with replies over oneshot channels. The ring of a
//! ring kind is shared (`SharedRing`): the executors run `ringbuf-write` and
//! `ringbuf-read` on it under its lock, with no message to the actor.
use crate::backends::{ChardevBackend, OpenContext};
use crate::chardev::logfile::LogFile;
use crate::chardev::port::Completion;
use crate::chardev::{Backend, CharIoctl, Focus, Input, Output, Port, PortEnd, PortId, SharedRing, Status, READ_CHUNK};
use crate::error::{BackendError, Error};
use crate::stats::{bump, Traffic};
use actix::prelude::*;
use bytes::Bytes;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll, Waker};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a removed chardev may take to flush what it already took.
pub const CLOSE_FLUSH: Duration = Duration::from_secs(5);

/// Rounds of input and output one poll of the driver may do before it lets
/// other actors on the arbiter run.
const DRIVE_BUDGET: usize = 64;

/// Control messages from the supervisor (queued in order: send them with
/// `do_send`, which never reorders).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum Control {
    /// A frontend attaches: it is told OPENED at once if the chardev is open.
    Attach {
        /// The port.
        port: Attached,
        /// Answered once the port is attached.
        done: oneshot::Sender<()>,
    },
    /// A frontend detaches.
    Detach(PortId),
    /// `frontend-open` of a port changes.
    SetOpen {
        /// The port.
        port: PortId,
        /// Open or closed.
        open: bool,
        /// Answered once `frontend-open` reflects it (false: no such port).
        done: oneshot::Sender<bool>,
    },
    /// A frontend ioctl.
    Ioctl {
        /// The request.
        req: CharIoctl,
        /// The answer.
        done: oneshot::Sender<Result<u32, Error>>,
    },
    /// `chardev-send-break`: a BREAK to the frontends.
    Break,
    /// `chardev-change`: hand over every port.
    TakePorts(oneshot::Sender<Vec<Attached>>),
    /// `chardev-change`: take these ports over.
    GivePorts(Vec<Attached>),
    /// `chardev-change`: lend what the replacement needs (answered once done).
    Release(oneshot::Sender<()>),
    /// The change failed: take it back.
    Reacquire,
    /// Flush what was taken (for at most [`CLOSE_FLUSH`]) and stop.
    Stop,
    /// The system is stopping: read nothing more from the outside; the
    /// frontends read what is queued, then the end (output goes on).
    Quiesce,
    /// QMP's `yank`: drop the current connection.
    Yank,
    /// Input events for the chardev's input handler (then a sync).
    Input(Vec<crate::chardev::input::InputEvent>),
    /// The screen (a vc's).
    Screen(oneshot::Sender<Option<crate::chardev::Screen>>),
    /// A console's clients.
    Clients(oneshot::Sender<Option<Vec<crate::chardev::ClientInfo>>>),
    /// A console's new client from elsewhere (a web console's): its link,
    /// its address, and the answer (its number).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    AddClient(
        crate::chardev::channel::ChannelLink,
        String,
        oneshot::Sender<Result<u64, crate::chardev::ClientOpError>>,
    ),
    /// Act on a console's client.
    ClientOp(
        crate::chardev::ClientOp,
        oneshot::Sender<Result<(), crate::chardev::ClientOpError>>,
    ),
}

impl Control {
    /// An operation a client can send again and again (a break, input, an
    /// ioctl, ...), as opposed to the ports' own bookkeeping.
    pub fn is_repeatable(&self) -> bool {
        !matches!(
            self,
            Control::Attach { .. }
                | Control::Detach(_)
                | Control::TakePorts(_)
                | Control::GivePorts(_)
                | Control::Release(_)
                | Control::Reacquire
                | Control::Stop
                | Control::Quiesce
        )
    }
}

/// A frontend's port as the chardev holds it (its `frontend-open` is the
/// port's: [`PortEnd::frontend_open`]).
#[derive(Debug)]
pub struct Attached {
    /// The chardev's end.
    pub end: PortEnd,
}

/// What a chardev's actor tells the supervisor by itself.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub enum ChardevNotice {
    /// Its actor stopped without being told to.
    Gone {
        /// The chardev's id.
        id: String,
        /// Its generation.
        generation: u64,
    },
    /// Its backend panicked: the panic was contained, the backend replaced
    /// by one that drops output and never opens, and the chardev stays
    /// (it can be changed or removed).
    Fault {
        /// The chardev's id.
        id: String,
        /// The panic's message.
        reason: String,
    },
}

#[derive(Debug, PartialEq, Eq)]
enum Lending {
    No,
    Releasing,
    Released,
}

/// What waits for the output the frontends queued before it to be written
/// (QEMU's writes are done when they return: what a frontend wrote before a
/// `chardev-change` goes to the old backend).
#[derive(Debug)]
enum AfterDrain {
    /// Lend the backend's resources.
    Release,
    /// Hand the ports over.
    Take(oneshot::Sender<Vec<Attached>>),
}

#[derive(Debug)]
struct Drain {
    /// Each port's mark: drained once the chardev finished with it.
    marks: Vec<(PortId, u64)>,
    then: AfterDrain,
    seq: u64,
    expired: bool,
}

/// The chardev actor.
pub struct ChardevActor {
    id: String,
    generation: u64,
    backend: Box<dyn Backend>,
    ports: Vec<Attached>,
    status: Arc<Status>,
    log: Option<LogFile>,
    be_open: bool,
    /// Output taken from a port that the backend has not taken all of yet.
    inflight: Option<(Bytes, Completion)>,
    drain: Option<Drain>,
    drain_seq: u64,
    /// Detached ports whose queued output is still being written: (port,
    /// mark, given up on).
    leaving: Vec<(PortId, u64, bool)>,
    /// The port to take output from next (round robin).
    cursor: usize,
    waker: Option<Waker>,
    last_write_error: Option<std::io::ErrorKind>,
    lending: Lending,
    lend_replies: Vec<oneshot::Sender<()>>,
    stopping: bool,
    /// Reads nothing more from the backend (the system is stopping).
    quiesced: bool,
    gone: Option<Recipient<ChardevNotice>>,
    /// The focused port as the ports were last told (kinds with a focus).
    focus_told: Option<PortId>,
}

impl std::fmt::Debug for ChardevActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChardevActor")
            .field("id", &self.id)
            .field("ports", &self.ports.len())
            .field("be_open", &self.be_open)
            .finish()
    }
}

/// A started chardev, as the supervisor keeps it.
#[derive(Debug, Clone)]
pub struct Started {
    /// The actor.
    pub addr: Addr<ChardevActor>,
    /// Its query-chardev status.
    pub status: Arc<Status>,
    /// The pty path, for chardev-add's return value.
    pub pty: Option<String>,
    /// The ring of a ring kind.
    pub ring: Option<SharedRing>,
}

/// Open a chardev on the current arbiter: its log file first (as QEMU), then
/// its backend, then its actor.
#[allow(clippy::too_many_arguments)]
pub async fn open(
    id: String,
    generation: u64,
    backend: ChardevBackend,
    ports: Vec<Port>,
    objects: std::sync::Arc<crate::objects::Objects>,
    host: crate::backends::Host,
    gone: Recipient<ChardevNotice>,
    traffic: Arc<Traffic>,
) -> Result<Started, BackendError> {
    let (common, config) = backend.into_parts();
    let log = match common.log_options()? {
        Some(opts) => Some(LogFile::open(opts).await?),
        None => None,
    };
    let opened = config
        .open(OpenContext {
            id: id.clone(),
            ports,
            objects,
            host,
        })
        .await?;
    let pty = opened.pty.clone();
    Ok(start(id, generation, opened, log, gone, pty, traffic))
}

/// Start the actor of an opened backend.
fn start(
    id: String,
    generation: u64,
    opened: crate::backends::Opened,
    log: Option<LogFile>,
    gone: Recipient<ChardevNotice>,
    pty: Option<String>,
    traffic: Arc<Traffic>,
) -> Started {
    let status = Status::new(opened.backend.filename(), traffic);
    let ring = opened.backend.ring();
    let actor = ChardevActor {
        id,
        generation,
        backend: opened.backend,
        ports: Vec::new(),
        status: status.clone(),
        log,
        be_open: opened.be_open,
        inflight: None,
        drain: None,
        drain_seq: 0,
        leaving: Vec::new(),
        cursor: 0,
        waker: None,
        last_write_error: None,
        lending: Lending::No,
        lend_replies: Vec::new(),
        stopping: false,
        quiesced: false,
        gone: Some(gone),
        focus_told: None,
    };
    Started {
        addr: actor.start(),
        status,
        pty,
        ring,
    }
}

impl ChardevActor {
    fn wake(&self) {
        if let Some(w) = &self.waker {
            w.wake_by_ref();
        }
    }

    fn is_leaving(&self, id: PortId) -> bool {
        self.leaving.iter().any(|(p, _, _)| *p == id)
    }

    /// The ports that take input and events (not those on their way out).
    fn active(&self) -> impl Iterator<Item = &Attached> {
        self.ports.iter().filter(|p| !self.is_leaving(p.end.id()))
    }

    fn update_status(&mut self) {
        // A mux's is its focused frontend's (QEMU's `chr->be`).
        self.status
            .set_frontend_open(self.focused().any(|p| p.end.frontend_open()));
        let any = self.active().any(|p| p.end.frontend_open());
        self.backend.frontends_open(any);
    }

    /// The ports that get data and the chardev's own events.
    fn focused(&self) -> impl Iterator<Item = &Attached> {
        let focus = self.backend.focus();
        self.active().filter(move |p| match focus {
            Focus::All => true,
            Focus::One(id) => p.end.id() == id,
            Focus::Nobody => false,
        })
    }

    /// Tell the ports of a change of focus (QEMU's MUX_OUT to the old
    /// focus, MUX_IN to the new one).
    fn sync_focus(&mut self) {
        let now = match self.backend.focus() {
            Focus::One(id) => Some(id),
            Focus::All | Focus::Nobody => None,
        };
        if now.is_none() || now == self.focus_told {
            return;
        }
        if let Some(old) = self
            .focus_told
            .and_then(|o| self.ports.iter().find(|p| p.end.id() == o))
        {
            old.end.push_focus(false);
        }
        if let Some(new) = now.and_then(|n| self.ports.iter().find(|p| p.end.id() == n)) {
            new.end.push_focus(true);
        }
        self.focus_told = now;
        self.update_status();
    }

    /// Forget ports whose frontend is gone, and detached ports whose output
    /// is written.
    fn prune(&mut self) {
        let before = self.ports.len();
        let leaving = std::mem::take(&mut self.leaving);
        let (done, left): (Vec<_>, Vec<_>) = leaving.into_iter().partition(|(id, mark, given_up)| {
            *given_up
                || self
                    .ports
                    .iter()
                    .find(|p| p.end.id() == *id)
                    .is_none_or(|p| p.end.completed_to(*mark))
        });
        self.leaving = left;
        for (id, _, _) in done {
            if let Some(i) = self.ports.iter().position(|p| p.end.id() == id) {
                self.ports.remove(i).end.detach();
            }
        }
        // A frontend that dropped its end goes once what it queued is written.
        let backend = &mut self.backend;
        self.ports.retain(|p| {
            let stays = !p.end.is_dropped() || p.end.has_output();
            if !stays {
                backend.detached(p.end.id());
            }
            stays
        });
        let changed = self.ports.iter().fold(false, |c, p| p.end.take_open_change() | c);
        if changed || self.ports.len() != before {
            self.update_status();
        }
    }

    /// How many input bytes every stalling port can take now.
    fn room(&self, waker: &Waker) -> usize {
        if self.backend.focus() == Focus::Nobody {
            // The kind holds the input itself while nobody has the focus.
            return READ_CHUNK;
        }
        self.focused()
            .filter(|p| !p.end.is_dropped())
            .map(|p| p.end.room(waker))
            .min()
            .unwrap_or(0)
            .min(READ_CHUNK)
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Data(b) => {
                let traffic = self.status.traffic();
                bump(&traffic.read, b.len() as u64);
                for p in self.focused() {
                    bump(&traffic.lost, p.end.push_data(b.clone()) as u64);
                }
            }
            Input::Opened | Input::Closed => {
                self.be_open = input == Input::Opened;
                self.status.set_filename(self.backend.filename());
                tracing::debug!(chardev = %self.id, open = self.be_open, "backend state");
                for p in self.active() {
                    p.end.push_open(self.be_open);
                }
            }
            Input::Break => {
                for p in self.active() {
                    p.end.push_break();
                }
            }
            Input::Renamed => self.status.set_filename(self.backend.filename()),
            Input::FocusedBreak => {
                for p in self.focused() {
                    p.end.push_break();
                }
            }
        }
    }

    fn next_output(&mut self, waker: &Waker) -> Option<(Bytes, Completion)> {
        let n = self.ports.len();
        for i in 0..n {
            let idx = (self.cursor + i) % n;
            if let Some(b) = self.ports[idx].end.pop_output(READ_CHUNK, waker) {
                self.cursor = idx + 1;
                return Some(b);
            }
        }
        None
    }

    fn on_output(&mut self, chunk: Bytes, mut done: Completion, out: Output) {
        match out {
            Output::Written(n) if n > 0 || chunk.is_empty() => {
                let n = n.min(chunk.len());
                bump(&self.status.traffic().written, n as u64);
                if let Some(log) = &mut self.log {
                    let lost = log.log(&chunk[..n]);
                    if lost > 0 {
                        bump(&self.status.traffic().log_lost, lost as u64);
                    }
                }
                self.last_write_error = None;
                done.complete(n);
                if n < chunk.len() {
                    self.inflight = Some((chunk.slice(n..), done));
                }
            }
            Output::Discarded(n) => {
                bump(&self.status.traffic().unconnected, n as u64);
                tracing::trace!(chardev = %self.id, bytes = n, "output discarded");
            }
            Output::Written(_) => self.write_failed(std::io::ErrorKind::WriteZero.into(), chunk.len()),
            Output::Failed(e) => self.write_failed(e, chunk.len()),
        }
    }

    /// Start draining what the frontends queued so far, then do `then`.
    fn start_drain(&mut self, then: AfterDrain, ctx: &mut Context<Self>) {
        self.drain_seq += 1;
        let seq = self.drain_seq;
        self.drain = Some(Drain {
            marks: self.ports.iter().map(|p| (p.end.id(), p.end.written())).collect(),
            then,
            seq,
            expired: false,
        });
        ctx.run_later(CLOSE_FLUSH, move |act, _ctx| {
            if let Some(d) = act.drain.as_mut().filter(|d| d.seq == seq) {
                tracing::warn!(chardev = %act.id, "output still blocked; going on without it");
                d.expired = true;
                act.wake();
            }
        });
    }

    fn drained(&self) -> bool {
        let Some(d) = &self.drain else { return false };
        d.expired
            || d.marks.iter().all(|(id, mark)| {
                self.ports
                    .iter()
                    .find(|p| p.end.id() == *id)
                    .is_none_or(|p| p.end.completed_to(*mark))
            })
    }

    fn after_drain(&mut self) {
        let Some(d) = self.drain.take() else { return };
        match d.then {
            AfterDrain::Release => self.lending = Lending::Releasing,
            AfterDrain::Take(done) => {
                let _ = done.send(self.hand_over());
            }
        }
    }

    /// Give up every port for a replacement (those on their way out go now).
    fn hand_over(&mut self) -> Vec<Attached> {
        let leaving = std::mem::take(&mut self.leaving);
        let mut ports = std::mem::take(&mut self.ports);
        ports.retain(|p| {
            let stays = !leaving.iter().any(|(id, _, _)| *id == p.end.id());
            if !stays {
                p.end.detach();
            }
            stays
        });
        self.update_status();
        ports
    }

    fn write_failed(&mut self, e: std::io::Error, bytes: usize) {
        let traffic = self.status.traffic();
        bump(&traffic.write_failed, bytes as u64);
        bump(&traffic.write_errors, 1);
        // Logged once per kind of error in a row; the data is dropped, as
        // QEMU drops what a failing backend cannot take.
        if self.last_write_error != Some(e.kind()) {
            tracing::warn!(chardev = %self.id, cause = %e, bytes, "write failed; data dropped");
            self.last_write_error = Some(e.kind());
        }
    }

    /// One poll of the data path; a panic of the backend is contained.
    fn drive(&mut self, ctx: &mut Context<Self>, cx: &mut task::Context<'_>) -> Poll<()> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.drive_inner(ctx, cx))) {
            Ok(p) => {
                self.status.set_state(self.be_open, self.backend.client_count());
                p
            }
            Err(panic) => {
                self.fault(panic);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// The backend panicked: log it, tell the supervisor (an event), and
    /// go on with a backend that drops output and never opens, so the
    /// chardev stays for the user to change or remove, with its frontends.
    fn fault(&mut self, panic: Box<dyn std::any::Any + Send>) {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        tracing::error!(
            chardev = %self.id,
            %reason,
            "the backend panicked; contained: the chardev now drops output and never opens (chardev-change or chardev-remove it)"
        );
        let filename = self.status.filename();
        self.backend = Box::new(Failed { filename });
        self.inflight = None;
        if self.be_open {
            self.be_open = false;
            for p in self.active() {
                p.end.push_open(false);
            }
        }
        if let Some(notices) = &self.gone {
            notices.do_send(ChardevNotice::Fault {
                id: self.id.clone(),
                reason,
            });
        }
    }

    fn drive_inner(&mut self, ctx: &mut Context<Self>, cx: &mut task::Context<'_>) -> Poll<()> {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.waker = Some(cx.waker().clone());
        }
        for _ in 0..DRIVE_BUDGET {
            self.prune();
            self.sync_focus();
            let mut progress = false;
            if !self.stopping && !self.quiesced {
                let room = self.room(cx.waker());
                if let Poll::Ready(input) = self.backend.poll_input(cx, room) {
                    self.on_input(input);
                    progress = true;
                }
            }
            if self.lending != Lending::Released {
                if self.inflight.is_none() && self.lending == Lending::No {
                    self.inflight = self.next_output(cx.waker());
                }
                if let Some((chunk, done)) = self.inflight.take() {
                    match self.backend.poll_output(cx, &chunk) {
                        Poll::Ready(out) => {
                            self.on_output(chunk, done, out);
                            progress = true;
                        }
                        Poll::Pending => self.inflight = Some((chunk, done)),
                    }
                }
            }
            if self.drain.is_some() && self.drained() {
                self.after_drain();
                progress = true;
            }
            if self.lending == Lending::Releasing
                && self.inflight.is_none()
                && self.backend.poll_flush(cx).is_ready()
                && self.backend.poll_release(cx).is_ready()
            {
                self.lending = Lending::Released;
                for r in self.lend_replies.drain(..) {
                    let _ = r.send(());
                }
                progress = true;
            }
            if self.stopping
                && self.inflight.is_none()
                && (self.ports.is_empty() || self.lending == Lending::Released)
                && self.backend.poll_flush(cx).is_ready()
            {
                ctx.stop();
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Let the others on this arbiter run; carry on at the next poll.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The data path, polled in the actor's context.
struct Driver;

impl ActorFuture<ChardevActor> for Driver {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut ChardevActor,
        ctx: &mut Context<ChardevActor>,
        task: &mut task::Context<'_>,
    ) -> Poll<()> {
        act.drive(ctx, task)
    }
}

/// Control messages are few; a roomy mailbox means `send` never parks.
const CONTROL_MAILBOX: usize = 4096;

impl Actor for ChardevActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(CONTROL_MAILBOX);
        ctx.spawn(Driver);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        // What is still queued goes with the chardev: counted.
        let mut left = self.inflight.take().map_or(0, |(chunk, _)| chunk.len());
        for p in self.ports.drain(..) {
            left += p.end.queued_output();
            p.end.detach();
        }
        if left > 0 {
            bump(&self.status.traffic().at_close, left as u64);
            tracing::warn!(chardev = %self.id, bytes = left, "output still queued when the chardev went; dropped");
        }
        if let Some(gone) = self.gone.take() {
            if !self.stopping {
                tracing::debug!(chardev = %self.id, "chardev stopped without being told to");
                gone.do_send(ChardevNotice::Gone {
                    id: self.id.clone(),
                    generation: self.generation,
                });
            }
        }
        tracing::debug!(chardev = %self.id, "chardev actor stopped");
    }
}

impl Handler<Control> for ChardevActor {
    type Result = ();

    fn handle(&mut self, msg: Control, ctx: &mut Context<Self>) {
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.control(msg, ctx)));
        if let Err(panic) = handled {
            self.fault(panic);
        }
        self.wake();
    }
}

impl ChardevActor {
    fn control(&mut self, msg: Control, ctx: &mut Context<Self>) {
        match msg {
            Control::Attach { port, done } => {
                // QEMU's set_handlers: OPENED at once if the backend is open.
                port.end.push_open(self.be_open);
                if self.quiesced {
                    port.end.end_input();
                }
                self.backend.attached(port.end.id());
                self.ports.push(port);
                self.sync_focus();
                self.update_status();
                let _ = done.send(());
            }
            Control::Detach(port) => {
                // What the frontend wrote before it detached is still written
                // (for at most CLOSE_FLUSH); it gets nothing more.
                if let Some(p) = self.ports.iter().find(|p| p.end.id() == port) {
                    self.leaving.push((port, p.end.written(), false));
                    self.backend.detached(port);
                    self.update_status();
                    ctx.run_later(CLOSE_FLUSH, move |act, _ctx| {
                        for l in act.leaving.iter_mut().filter(|l| l.0 == port) {
                            l.2 = true;
                        }
                        act.wake();
                    });
                }
            }
            Control::SetOpen { port, open, done } => {
                let found = match self.ports.iter().find(|p| p.end.id() == port) {
                    Some(p) => {
                        p.end.set_frontend_open(open);
                        true
                    }
                    None => false,
                };
                self.update_status();
                let _ = done.send(found);
            }
            Control::Ioctl { req, done } => {
                let _ = done.send(self.backend.ioctl(req));
            }
            Control::Break => {
                // On a mux: its focused frontend only (QEMU's mux_chr_be_event).
                for p in self.focused() {
                    p.end.push_break();
                }
            }
            Control::TakePorts(done) => {
                if self.lending == Lending::Released {
                    // Nothing more is written once lent: hand over now.
                    let _ = done.send(self.hand_over());
                } else {
                    self.start_drain(AfterDrain::Take(done), ctx);
                }
            }
            Control::GivePorts(ports) => {
                for p in ports {
                    // QEMU's hotswap: CLOSED if the new backend is not open,
                    // OPENED (on re-attach) if it is. From an open backend to
                    // an open one QEMU sends a second OPENED; a port carries
                    // open/closed as state, so it tells CLOSED then OPENED: a
                    // new session, on the new backend.
                    if self.be_open && p.end.told_open() {
                        p.end.push_open(false);
                    }
                    p.end.push_open(self.be_open);
                    self.backend.attached(p.end.id());
                    self.ports.push(p);
                }
                self.sync_focus();
                self.update_status();
            }
            Control::Release(done) => {
                self.lend_replies.push(done);
                if self.lending == Lending::Released {
                    for r in self.lend_replies.drain(..) {
                        let _ = r.send(());
                    }
                } else if self.lending == Lending::No && self.drain.is_none() {
                    self.start_drain(AfterDrain::Release, ctx);
                }
            }
            Control::Reacquire => {
                if self.lending == Lending::Released {
                    self.backend.reacquire();
                }
                self.lending = Lending::No;
                for r in self.lend_replies.drain(..) {
                    let _ = r.send(());
                }
            }
            Control::Input(events) => self.backend.input(&events),
            Control::Screen(done) => {
                let _ = done.send(self.backend.screen());
            }
            Control::Clients(done) => {
                let _ = done.send(self.backend.clients());
            }
            Control::ClientOp(op, done) => {
                let _ = done.send(self.backend.client_op(op));
            }
            Control::AddClient(link, address, done) => {
                let conn = crate::chardev::transport::Connection {
                    link: Box::new(link),
                    filename: Some(address),
                };
                let _ = done.send(self.backend.add_client(conn));
            }
            Control::Yank => {
                if self.backend.yank() {
                    tracing::info!(chardev = %self.id, "connection yanked");
                }
            }
            Control::Quiesce => {
                self.quiesced = true;
                for p in &self.ports {
                    p.end.end_input();
                }
            }
            Control::Stop => {
                // Write what the frontends queued (for at most CLOSE_FLUSH),
                // take nothing more, then stop.
                self.stopping = true;
                for p in &self.ports {
                    let id = p.end.id();
                    if !self.leaving.iter().any(|(l, _, _)| *l == id) {
                        self.leaving.push((id, p.end.written(), false));
                    }
                }
                self.update_status();
                ctx.run_later(CLOSE_FLUSH, |act, ctx| {
                    if act.inflight.is_some() {
                        tracing::warn!(chardev = %act.id, "output still blocked after the chardev went; the rest is dropped");
                    }
                    ctx.stop();
                });
            }
        }
    }
}

/// What a chardev runs on once its backend panicked: output is dropped
/// (and counted as discarded), nothing is ever read, it never opens; its
/// `filename` stays the last one it had.
struct Failed {
    filename: String,
}

impl Backend for Failed {
    fn poll_input(&mut self, _cx: &mut task::Context<'_>, _room: usize) -> Poll<Input> {
        Poll::Pending
    }

    fn poll_output(&mut self, _cx: &mut task::Context<'_>, data: &[u8]) -> Poll<Output> {
        Poll::Ready(Output::Discarded(data.len()))
    }

    fn filename(&self) -> String {
        self.filename.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::Opened;
    use crate::chardev::port::pair;
    use crate::chardev::PortConfig;

    /// A backend that panics on its first write.
    struct Panicky;

    impl Backend for Panicky {
        fn poll_input(&mut self, _cx: &mut task::Context<'_>, _room: usize) -> Poll<Input> {
            Poll::Pending
        }

        fn poll_output(&mut self, _cx: &mut task::Context<'_>, _data: &[u8]) -> Poll<Output> {
            panic!("the model broke");
        }

        fn filename(&self) -> String {
            "panicky".into()
        }
    }

    /// Keeps what a chardev tells the supervisor.
    struct Notes(tokio::sync::mpsc::UnboundedSender<String>);

    impl Actor for Notes {
        type Context = Context<Self>;
    }

    impl Handler<ChardevNotice> for Notes {
        type Result = ();

        fn handle(&mut self, msg: ChardevNotice, _ctx: &mut Context<Self>) {
            let _ = self.0.send(format!("{msg:?}"));
        }
    }

    #[actix::test]
    async fn a_panicking_backend_is_contained_and_the_chardev_stays() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let notes = Notes(tx).start().recipient();
        let started = start("p".into(), 1, Opened::open(Panicky), None, notes, None, Arc::default());
        let (front, end) = pair(1, PortConfig::default());
        let (done, attached) = oneshot::channel();
        started.addr.do_send(Control::Attach {
            port: Attached { end },
            done,
        });
        attached.await.unwrap();
        let recv = || std::future::poll_fn(|cx| front.poll_recv(cx));
        assert_eq!(recv().await, Some(crate::chardev::FrontendEvent::Opened));
        front.write(Bytes::from_static(b"boom")).await.unwrap();
        let note = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(note.contains("Fault") && note.contains("the model broke"), "{note}");
        assert_eq!(recv().await, Some(crate::chardev::FrontendEvent::Closed));
        // The chardev is still there: its writes are taken (and dropped).
        front.write(Bytes::from_static(b"more")).await.unwrap();
        front.flush().await.unwrap();
        assert!(started.addr.connected());
        assert_eq!(started.status.filename(), "panicky");
    }
}
