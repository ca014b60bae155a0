//! QMP monitors on chardevs (`-mon chardev=ID,mode=control[,pretty=on]`,
//! `__org.chardevd_monitor-add`): a QMP session whose connection is a port
//! on a chardev: a pty, a socket (with TLS, websocket, telnet), a mux
//! shared with a console, anything.
//!
//! It behaves as QEMU 10.0.2's QMP monitor:
//! - every OPENED of the chardev (each client of a socket; once for a
//!   chardev that is always open) starts a new session: back to
//!   capabilities negotiation, and the greeting;
//! - CLOSED drops the requests read but not yet run and the parser's
//!   partial input; a command already running still writes its reply;
//! - events go out only once negotiated; while the chardev has no client
//!   they are written into the void, as QEMU does;
//! - output turns every `\n` into `\r\n`; `pretty=on` is QEMU's pretty
//!   JSON (4 spaces a level).
//!
//! It runs its commands through the same executor as every QMP session.
//! Its output goes through a bounded [`Output`] queue into its port; when
//! too many events wait unwritten (nobody reads the chardev), new ones are
//! dropped and logged, and the monitor stays.
use super::output::{write_loop, Budget, Output};
use super::protocol::{Protocol, Step};
use super::session::SessionLimits;
use super::wire::{failure, success};
use crate::api::execute::{Executor, MonitorSpec, MonitorStarter};
use crate::chardev::port::PortHandle;
use crate::chardev::{FrontendEvent, Port};
use crate::events::Stamped;
use crate::frontends::StopDevice;
use crate::json::framer::{Framer, Message};
use crate::json::Json;
use crate::registry::events::{Delivery, EventSink, Flushed, SHUTDOWN_FLUSH};
use actix::prelude::*;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

/// A monitor's writes never time out: a chardev that takes nothing (a pty
/// nobody reads) holds the monitor's output, it does not end the monitor.
const NO_STALL: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long `quit` waits for its reply to be written.
const QUIT_FLUSH: Duration = Duration::from_secs(1);

/// Starts monitors; installed in the executor by the runtime.
#[derive(Debug)]
pub struct Starter {
    limits: SessionLimits,
    global: Arc<Budget>,
}

impl Starter {
    /// Monitors bounded like sessions, sharing the sessions' global budget.
    pub fn new(limits: SessionLimits, global: Arc<Budget>) -> Starter {
        Starter { limits, global }
    }
}

impl MonitorStarter for Starter {
    fn start(&self, spec: MonitorSpec, port: Port, arbiter: &ArbiterHandle, exec: Executor) -> Recipient<StopDevice> {
        let (limits, global) = (self.limits, self.global.clone());
        QmpMonitor::start_in_arbiter(arbiter, move |ctx| {
            QmpMonitor::new(spec, port, exec, limits, global, ctx)
        })
        .recipient()
    }
}

/// What the monitor reads from its chardev.
#[derive(Debug)]
enum MonitorInput {
    Opened,
    Closed,
    Message(Message),
}

/// The port's events as monitor input: bytes through QEMU's JSON framer;
/// a CLOSED drops what was read but not yet handled, and the parser's
/// partial input.
fn monitor_input(port: PortHandle, max_message: usize) -> impl futures_util::Stream<Item = MonitorInput> {
    struct State {
        port: PortHandle,
        framer: Framer,
        max_message: usize,
        ready: VecDeque<MonitorInput>,
        scratch: Vec<Message>,
    }
    let state = State {
        port,
        framer: Framer::with_max_token_size(max_message),
        max_message,
        ready: VecDeque::new(),
        scratch: Vec::new(),
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.ready.pop_front() {
                return Some((item, st));
            }
            match st.port.recv().await? {
                FrontendEvent::Data(b) => {
                    st.framer.feed(&b, &mut st.scratch);
                    st.ready.extend(st.scratch.drain(..).map(MonitorInput::Message));
                }
                FrontendEvent::Opened => st.ready.push_back(MonitorInput::Opened),
                FrontendEvent::Closed => {
                    st.ready.retain(|i| !matches!(i, MonitorInput::Message(_)));
                    st.framer = Framer::with_max_token_size(st.max_message);
                    st.ready.push_back(MonitorInput::Closed);
                }
                // QEMU's QMP monitor ignores BREAK, MUX_IN and MUX_OUT.
                FrontendEvent::Break | FrontendEvent::MuxIn | FrontendEvent::MuxOut => {}
            }
        }
    })
}

/// A JSON value as the monitor writes it: compact or pretty, every line
/// ending in `\r\n`.
pub fn render(v: &Json, pretty: bool) -> Bytes {
    let text = if pretty { v.to_qemu_pretty() } else { v.to_qemu_string() };
    let mut out = String::with_capacity(text.len() + text.len() / 16 + 2);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        out.push_str(line);
    }
    out.push_str("\r\n");
    Bytes::from(out)
}

/// The monitor as an event subscriber.
#[derive(Debug)]
struct MonitorSink {
    out: Arc<Output>,
    pretty: bool,
    event_limit: usize,
    /// Events go out only while negotiated.
    live: Arc<AtomicBool>,
    id: String,
}

impl EventSink for MonitorSink {
    fn deliver(&self, event: &Arc<Stamped>, wire: &Bytes) -> Delivery {
        if !self.live.load(Ordering::Acquire) {
            return Delivery::Queued;
        }
        if self.out.events_waiting() >= self.event_limit {
            tracing::warn!(monitor = %self.id, event = event.event.name(), "nobody reads the monitor's chardev; event dropped");
            return Delivery::Queued;
        }
        let bytes = if self.pretty {
            render(&event.to_json(), true)
        } else {
            wire.clone()
        };
        match self.out.push_event(&bytes) {
            Delivery::Full => Delivery::Queued,
            d => d,
        }
    }

    fn flushed(&self) -> Option<Flushed> {
        let out = self.out.clone();
        Some(Box::pin(async move { out.drained(SHUTDOWN_FLUSH).await }))
    }
}

/// Writes into a port (for [`write_loop`]).
struct PortWriter(PortHandle);

impl tokio::io::AsyncWrite for PortWriter {
    fn poll_write(self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let broken = || io::Error::from(io::ErrorKind::BrokenPipe);
        match self.0.poll_room(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(_)) => Poll::Ready(Err(broken())),
            Poll::Ready(Ok(room)) => Poll::Ready(self.0.try_write(&buf[..room.min(buf.len())]).map_err(|_| broken())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The monitor actor.
pub struct QmpMonitor {
    spec: MonitorSpec,
    exec: Executor,
    out: Arc<Output>,
    proto: Protocol,
    live: Arc<AtomicBool>,
    subscription: Option<u64>,
    event_limit: usize,
    quitting: bool,
    _port: Port,
}

impl std::fmt::Debug for QmpMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QmpMonitor").field("spec", &self.spec).finish()
    }
}

/// The writer ended: the chardev let the port go.
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct WriterDone;

impl QmpMonitor {
    fn new(
        spec: MonitorSpec,
        port: Port,
        exec: Executor,
        limits: SessionLimits,
        global: Arc<Budget>,
        ctx: &mut Context<Self>,
    ) -> QmpMonitor {
        let out = Output::new(limits.output_bytes, usize::MAX, global);
        let (writer, done, handle) = (out.clone(), ctx.address(), port.handle());
        actix_rt::spawn(async move {
            write_loop(writer, PortWriter(handle), NO_STALL).await;
            done.do_send(WriterDone);
        });
        ctx.add_stream(monitor_input(port.handle(), limits.max_message));
        QmpMonitor {
            proto: Protocol::new(spec.oob, None),
            spec,
            exec,
            out,
            live: Arc::new(AtomicBool::new(false)),
            subscription: None,
            event_limit: limits.event_queue,
            quitting: false,
            _port: port,
        }
    }

    fn render(&self, v: &Json) -> Bytes {
        render(v, self.spec.pretty)
    }

    /// Queue bytes once the output has room (the input waits meanwhile).
    fn push(&mut self, b: Bytes, ctx: &mut Context<Self>) {
        if self.out.has_room() {
            self.out.push(b);
        } else {
            let out = self.out.clone();
            ctx.wait(
                async move {
                    out.room().await;
                    out.push(b);
                }
                .into_actor(self),
            );
        }
    }
}

impl Actor for QmpMonitor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        tracing::info!(monitor = %self.spec.id, chardev = %self.spec.chardev, "QMP monitor started");
    }

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        if let Some(sub) = self.subscription.take() {
            self.exec.unsubscribe(sub);
        }
        self.out.kick();
        tracing::info!(monitor = %self.spec.id, "QMP monitor stopped");
        Running::Stop
    }
}

impl StreamHandler<MonitorInput> for QmpMonitor {
    fn handle(&mut self, item: MonitorInput, ctx: &mut Context<Self>) {
        if self.quitting {
            return;
        }
        match item {
            MonitorInput::Opened => {
                // A new session: negotiation again, and the greeting.
                tracing::debug!(monitor = %self.spec.id, "chardev opened: greeting");
                self.proto.reset();
                self.live.store(false, Ordering::Release);
                let greeting = self.render(&self.proto.greeting());
                self.push(greeting, ctx);
            }
            MonitorInput::Closed => {
                tracing::debug!(monitor = %self.spec.id, "chardev closed: pending input dropped");
            }
            MonitorInput::Message(msg) => match self.proto.prepare(msg, &self.exec) {
                Step::Reply(reply) => {
                    let b = self.render(&reply);
                    self.push(b, ctx);
                }
                Step::Subscribe(id) => {
                    self.live.store(true, Ordering::Release);
                    let reply = self.render(&success(id, Json::empty_object()));
                    if self.subscription.is_some() {
                        self.push(reply, ctx);
                        return;
                    }
                    let sink = MonitorSink {
                        out: self.out.clone(),
                        pretty: self.spec.pretty,
                        event_limit: self.event_limit,
                        live: self.live.clone(),
                        id: self.spec.id.clone(),
                    };
                    let (exec, out) = (self.exec.clone(), self.out.clone());
                    ctx.wait(
                        async move {
                            out.room().await;
                            let sub = exec.subscribe(Box::new(sink)).await.ok();
                            out.push(reply);
                            sub
                        }
                        .into_actor(self)
                        .map(|sub, act, _ctx| act.subscription = sub),
                    );
                }
                Step::Run { id, run, stops } => {
                    let (exec, out, pretty) = (self.exec.clone(), self.out.clone(), self.spec.pretty);
                    ctx.wait(
                        async move {
                            out.room().await;
                            let result = run.await;
                            let quit = stops && result.is_ok();
                            let json = match result {
                                Ok(r) => success(id, r),
                                Err(e) => failure(id, &e.into()),
                            };
                            out.push(render(&json, pretty));
                            if quit {
                                out.drained(QUIT_FLUSH).await;
                                let _ = exec.stop_system().await;
                            }
                            quit
                        }
                        .into_actor(self)
                        .map(|quit, act, _ctx| act.quitting |= quit),
                    );
                }
            },
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The chardev let the port go.
        ctx.stop();
    }
}

impl Handler<WriterDone> for QmpMonitor {
    type Result = ();

    fn handle(&mut self, _msg: WriterDone, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<StopDevice> for QmpMonitor {
    type Result = ();

    fn handle(&mut self, _msg: StopDevice, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_output_is_qemus_with_crlf() {
        let greeting = crate::qmp::wire::greeting_with(false);
        let text = String::from_utf8(render(&greeting, true).to_vec()).unwrap();
        assert!(text.starts_with("{\r\n    \"QMP\": {\r\n        \"version\": {\r\n            \"qemu\": {\r\n"));
        assert!(
            text.ends_with("        \"capabilities\": [\r\n        ]\r\n    }\r\n}\r\n"),
            "{text}"
        );
        let err = failure(
            Some(Json::str("b")),
            &super::super::error::QmpError::not_found("Capabilities negotiation is already complete, command ignored"),
        );
        assert_eq!(
            render(&err, true),
            "{\r\n    \"id\": \"b\",\r\n    \"error\": {\r\n        \"class\": \"CommandNotFound\",\r\n        \"desc\": \"Capabilities negotiation is already complete, command ignored\"\r\n    }\r\n}\r\n"
        );
        assert_eq!(
            render(&success(None, Json::empty_object()), false),
            "{\"return\": {}}\r\n"
        );
    }
}
