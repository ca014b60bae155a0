//! A QMP session: one actor per connection, whatever carries it (a socket
//! of a QMP listener, or a chardev for a QMP monitor: `-mon`).
//!
//! The session reads [`Input`]: a connection opening (the greeting, and
//! capabilities negotiation again), closing, and framed messages. Its
//! [`Protocol`] state checks each request and answers the protocol's own
//! commands; the rest runs as the command table's type on the executor. One
//! command runs at a time (the input is not read meanwhile), so replies
//! come in request order and a command that waits holds up only its own
//! session.
//!
//! Output goes through the session's [`Output`] queue, bounded in bytes and
//! drained by a writer task into any `AsyncWrite`; events reach the same
//! queue from the event bus once the connection negotiated.
use super::codec::QmpCodec;
use super::fds::FdTable;
use super::output::{write_loop, Budget, Output};
use super::protocol::{Protocol, Step};
use super::wire::{failure, success};
use crate::api::execute::Executor;
use crate::events::Stamped;
use crate::json::framer::{InputBudget, Message};
use crate::json::Json;
use crate::registry::events::{Delivery, EventSink, Flushed, SHUTDOWN_FLUSH};
use crate::stats::{bump, QmpCounters};
use actix::prelude::*;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::FramedRead;

pub use crate::limits::Limits as SessionLimits;

/// Size of one read from a socket.
const IO_CHUNK: usize = 256 * 1024;

/// How long `quit` waits for its reply to be written.
const QUIT_FLUSH: Duration = Duration::from_secs(1);

/// A monitor's writes never time out: a chardev that takes nothing (a pty
/// nobody reads) holds the monitor's output, it does not end the monitor.
const NO_STALL: Duration = Duration::from_secs(365 * 24 * 3600);

/// A command that has waited this long is abandoned when its client hangs
/// up (`socat` and the like close their side first and read replies for half
/// a second; a client gone for good frees its session slot).
const HANGUP_GRACE: Duration = Duration::from_secs(1);

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// What a session reads.
#[derive(Debug)]
pub(crate) enum Input {
    /// The connection opened: greeting, and negotiation from the start.
    Opened,
    /// The connection closed (a monitor's chardev lost its client).
    Closed,
    /// A framed message.
    Message(Message),
}

/// Who the session serves (for its logs), and how.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// A client of a QMP listener.
    Client {
        /// Its peer address.
        peer: String,
        /// The connection's socket, watched for a hang-up while a command
        /// waits (the session owns it).
        socket: Option<RawFd>,
    },
    /// A QMP monitor on a chardev.
    Monitor {
        /// The monitor's id.
        id: String,
        /// Its chardev.
        chardev: String,
    },
}

/// How a session renders and what it does when its reader falls behind.
#[derive(Debug, Clone)]
pub(crate) struct Style {
    /// Who it serves.
    pub kind: Kind,
    /// QEMU's pretty JSON (`pretty=on`), every line ending in CRLF.
    pub pretty: bool,
    /// The greeting offers `oob`.
    pub oob: bool,
    /// Descriptors passed on the connection (unix sockets).
    pub fds: Option<Arc<FdTable>>,
}

impl Style {
    fn is_monitor(&self) -> bool {
        matches!(self.kind, Kind::Monitor { .. })
    }
}

/// A JSON value as a session writes it: compact or pretty, every line
/// ending in `\r\n`.
pub fn render(v: &Json, pretty: bool) -> Bytes {
    if !pretty {
        // Compact JSON has no newline (strings escape theirs).
        let mut text = v.to_qemu_string();
        text.push_str("\r\n");
        return Bytes::from(text);
    }
    let text = v.to_qemu_pretty();
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

/// A session as an event subscriber.
#[derive(Debug)]
struct SessionSink {
    out: Arc<Output>,
    pretty: bool,
    /// Events go out only while negotiated.
    live: Arc<AtomicBool>,
    /// Counts the events a monitor drops.
    counters: Arc<QmpCounters>,
    /// Unwritten events beyond which new ones are dropped (a monitor: its
    /// chardev may have no reader for a long time, as QEMU's writes into
    /// the void); a client is disconnected by its output queue instead.
    drop_beyond: Option<usize>,
}

impl EventSink for SessionSink {
    fn deliver(&self, event: &Arc<Stamped>, wire: &Bytes) -> Delivery {
        if !self.live.load(Ordering::Acquire) {
            return Delivery::Queued;
        }
        if self.drop_beyond.is_some_and(|n| self.out.events_waiting() >= n) {
            tracing::warn!(
                event = event.event.name(),
                "nobody reads the monitor's chardev; event dropped"
            );
            bump(&self.counters.events_dropped, 1);
            return Delivery::Queued;
        }
        let bytes = if self.pretty {
            render(&event.to_json(), true)
        } else {
            wire.clone()
        };
        match self.out.push_event(&bytes) {
            Delivery::Full if self.drop_beyond.is_some() => {
                bump(&self.counters.events_dropped, 1);
                Delivery::Queued
            }
            d => d,
        }
    }

    fn flushed(&self) -> Option<Flushed> {
        let out = self.out.clone();
        Some(Box::pin(async move { out.drained(SHUTDOWN_FLUSH).await }))
    }
}

/// The session actor.
pub(crate) struct QmpSession {
    id: u64,
    style: Style,
    exec: Executor,
    out: Arc<Output>,
    proto: Protocol,
    live: Arc<AtomicBool>,
    subscription: Option<u64>,
    event_limit: usize,
    quitting: bool,
    /// The listener's count of live sessions (decremented when this one ends).
    count: Option<Arc<AtomicUsize>>,
}

impl std::fmt::Debug for QmpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QmpSession")
            .field("id", &self.id)
            .field("kind", &self.style.kind)
            .finish()
    }
}

/// The writer task ended (the output is closed or the client is gone).
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct WriterDone;

impl QmpSession {
    /// Serve a client of a listener on the current arbiter. `count` is the
    /// listener's session count, decremented when the session ends.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn serve<S>(
        stream: S,
        peer: String,
        exec: Executor,
        limits: SessionLimits,
        global: Arc<Budget>,
        input: Arc<InputBudget>,
        fds: Option<Arc<FdTable>>,
        count: Option<Arc<AtomicUsize>>,
        socket: Option<RawFd>,
    ) -> Addr<QmpSession>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let (rd, wr) = tokio::io::split(stream);
        let codec = QmpCodec::with_budget(limits.max_message, input);
        let messages = FramedRead::with_capacity(rd, codec, IO_CHUNK)
            .map(|m: Result<Message, std::io::Error>| m.map(Input::Message));
        let input = futures_util::stream::once(async { Ok(Input::Opened) }).chain(messages);
        let style = Style {
            kind: Kind::Client { peer, socket },
            pretty: false,
            oob: true,
            fds,
        };
        QmpSession::create(move |ctx| QmpSession::new(input, wr, exec, limits, global, style, count, ctx))
    }

    /// A session reading `input` and writing to `output`, in `ctx`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new<I, W>(
        input: I,
        output: W,
        exec: Executor,
        limits: SessionLimits,
        global: Arc<Budget>,
        style: Style,
        count: Option<Arc<AtomicUsize>>,
        ctx: &mut Context<QmpSession>,
    ) -> QmpSession
    where
        I: Stream<Item = Result<Input, std::io::Error>> + 'static,
        W: AsyncWrite + Unpin + 'static,
    {
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        // A monitor drops the events nobody reads instead of being cut off.
        let event_limit = if style.is_monitor() {
            usize::MAX
        } else {
            limits.event_queue
        };
        let stall = if style.is_monitor() {
            NO_STALL
        } else {
            limits.stall_timeout
        };
        let out = Output::new(limits.output_bytes, event_limit, global);
        let (writer, done) = (out.clone(), ctx.address());
        actix_rt::spawn(async move {
            write_loop(writer, output, stall).await;
            done.do_send(WriterDone);
        });
        ctx.add_stream(input);
        let counters = exec.counters();
        bump(&counters.open, 1);
        bump(&counters.served, 1);
        match &style.kind {
            Kind::Client { peer, .. } => tracing::info!(session = id, %peer, "QMP client connected"),
            Kind::Monitor { id, chardev } => tracing::info!(monitor = %id, %chardev, "QMP monitor started"),
        }
        QmpSession {
            id,
            proto: Protocol::new(style.oob, style.fds.clone()),
            style,
            exec,
            out,
            live: Arc::new(AtomicBool::new(false)),
            subscription: None,
            event_limit: limits.event_queue,
            quitting: false,
            count,
        }
    }

    fn render(&self, v: &Json) -> Bytes {
        render(v, self.style.pretty)
    }

    /// Queue bytes once the output has room (the input waits meanwhile).
    fn push(&mut self, b: Bytes, ctx: &mut Context<Self>) {
        if self.out.has_room() {
            self.out.push(b);
        } else {
            // Backpressure: read nothing more until the client reads.
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

    fn message(&mut self, msg: Message, ctx: &mut Context<Self>) {
        let out = self.out.clone();
        if msg.as_ref().is_err_and(|e| refused(e)) {
            bump(&self.exec.counters().messages_refused, 1);
        }
        match self.proto.prepare(msg, &self.exec) {
            Step::Reply(reply) => {
                let b = self.render(&reply);
                self.push(b, ctx);
            }
            Step::Subscribe(id) => {
                self.live.store(true, Ordering::Release);
                let reply = self.render(&success(id, Json::empty_object()));
                if self.subscription.is_some() {
                    return self.push(reply, ctx);
                }
                let sink = SessionSink {
                    out: out.clone(),
                    pretty: self.style.pretty,
                    live: self.live.clone(),
                    counters: self.exec.counters().clone(),
                    drop_beyond: self.style.is_monitor().then_some(self.event_limit),
                };
                let exec = self.exec.clone();
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
                let (exec, pretty) = (self.exec.clone(), self.style.pretty);
                // A client that hangs up while its command waits is not
                // waited for: the command goes on in the daemon (to its end
                // or the command deadline), its reply is dropped. `quit` is
                // always seen through.
                let watch = match &self.style.kind {
                    Kind::Client { socket: Some(fd), .. } if !stops => Some(*fd),
                    _ => None,
                };
                ctx.wait(
                    async move {
                        out.room().await;
                        let result = match watch {
                            None => run.await,
                            Some(fd) => {
                                let gone = async {
                                    tokio::time::sleep(HANGUP_GRACE).await;
                                    hung_up(fd).await
                                };
                                tokio::pin!(gone);
                                tokio::select! {
                                    biased;
                                    r = run => r,
                                    () = &mut gone => return Ran::HungUp,
                                }
                            }
                        };
                        let quit = stops && result.is_ok();
                        let json = match result {
                            Ok(r) => success(id, r),
                            Err(e) => failure(id, &e.into()),
                        };
                        out.push(render(&json, pretty));
                        if quit {
                            // Let the writer flush the reply, then stop the daemon.
                            out.drained(QUIT_FLUSH).await;
                            let _ = exec.stop_system().await;
                            return Ran::Quit;
                        }
                        Ran::Answered
                    }
                    .into_actor(self)
                    .map(|ran, act, ctx| match ran {
                        Ran::Answered => {}
                        Ran::Quit => act.quitting = true,
                        Ran::HungUp => {
                            tracing::info!(
                                session = act.id,
                                "QMP client hung up while its command waits; the command goes on, its reply is dropped"
                            );
                            bump(&act.exec.counters().hung_up, 1);
                            act.out.close();
                            ctx.stop();
                        }
                    }),
                );
            }
        }
    }
}

/// A message the framer dropped for its size or the shared input budget.
fn refused(error: &str) -> bool {
    error == crate::json::framer::BUDGET_EXCEEDED || error.ends_with("limit exceeded")
}

/// How a command's run ended for its session.
enum Ran {
    /// Its reply is queued.
    Answered,
    /// `quit` succeeded: the daemon stops.
    Quit,
    /// The client hung up first.
    HungUp,
}

/// Resolves once the peer of socket `fd` has closed its side (never, if the
/// socket cannot be watched).
async fn hung_up(fd: RawFd) {
    // SAFETY: the session owns the socket and polls this future, so `fd` is
    // open while it is borrowed here, only to be duplicated.
    let dup = match unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned() {
        Ok(d) => d,
        Err(_) => return std::future::pending().await,
    };
    // SAFETY: the duplicate is moved into the AsyncFd: it stays open and
    // refers to the same socket until the AsyncFd is dropped.
    let watch = match unsafe { tokio::io::unix::AsyncFd::register_with_interest(dup, tokio::io::Interest::READABLE) } {
        Ok(w) => w,
        Err(_) => return std::future::pending().await,
    };
    loop {
        match watch.readable().await {
            Ok(guard) if guard.ready().is_read_closed() => return,
            // Readable with more requests: wait for the next change.
            Ok(mut guard) => guard.clear_ready(),
            Err(_) => return std::future::pending().await,
        }
    }
}

impl Actor for QmpSession {
    type Context = Context<Self>;

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        if let Some(sub) = self.subscription.take() {
            self.exec.unsubscribe(sub);
        }
        self.out.kick();
        match &self.style.kind {
            Kind::Client { peer, .. } => tracing::info!(session = self.id, %peer, "QMP client disconnected"),
            Kind::Monitor { id, .. } => tracing::info!(monitor = %id, "QMP monitor stopped"),
        }
        if let Some(count) = self.count.take() {
            count.fetch_sub(1, Ordering::Relaxed);
        }
        let counters = self.exec.counters();
        counters.open.fetch_sub(1, Ordering::Relaxed);
        if self.out.was_cut_off() {
            bump(&counters.cut_off, 1);
        }
        Running::Stop
    }
}

impl StreamHandler<Result<Input, std::io::Error>> for QmpSession {
    fn handle(&mut self, item: Result<Input, std::io::Error>, ctx: &mut Context<Self>) {
        let input = match item {
            Ok(i) => i,
            Err(e) => {
                tracing::debug!(session = self.id, cause = %e, "QMP read failed");
                self.out.close();
                return;
            }
        };
        if self.quitting {
            return;
        }
        if self.out.is_kicked() {
            ctx.stop();
            return;
        }
        match input {
            Input::Opened => {
                // A new connection: negotiation again, and the greeting.
                self.proto.reset();
                self.live.store(false, Ordering::Release);
                let greeting = self.render(&self.proto.greeting());
                self.push(greeting, ctx);
            }
            Input::Closed => {
                tracing::debug!(session = self.id, "connection closed: pending input dropped");
            }
            Input::Message(msg) => self.message(msg, ctx),
        }
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {
        // End of input: the writer flushes every reply, then the session ends.
        self.out.close();
    }
}

impl Handler<WriterDone> for QmpSession {
    type Result = ();

    fn handle(&mut self, _msg: WriterDone, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<crate::actors::StopDevice> for QmpSession {
    type Result = ();

    fn handle(&mut self, _msg: crate::actors::StopDevice, ctx: &mut Context<Self>) {
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
