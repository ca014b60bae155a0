//! One actor per QMP connection.
//!
//! The session reads its input as a stream of framed messages ([`QmpCodec`]),
//! and its [`Protocol`] state checks each request
//! ([`super::request::parse_request`], the schema), turns it into a
//! [`super::command::QmpCommand`] and answers the protocol's own commands;
//! the rest runs through the executor. One command runs at a time (the input is
//! not read meanwhile), so replies come in request order and a command that
//! waits holds up only its own session.
//!
//! Output goes through the session's [`Output`] queue, bounded in bytes and
//! drained by a writer task; events reach the same queue from the event bus.
use super::codec::QmpCodec;
use super::fds::FdTable;
use super::output::{write_loop, Budget, Output, WireSink};
use super::protocol::{Protocol, Step};
use super::wire::{failure, greeting, success, wire};
use crate::api::execute::Executor;
use crate::json::framer::Message;
use crate::json::Json;
use actix::prelude::*;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::FramedRead;

/// Bounds of one session.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Output bytes queued before the session stops reading its input.
    pub output_bytes: usize,
    /// Output bytes all sessions of a system may queue together before they
    /// all stop reading.
    pub global_output_bytes: usize,
    /// Events waiting unwritten before a client that reads nothing is
    /// disconnected.
    pub event_queue: usize,
    /// How long one write may make no progress before the client is dropped.
    pub stall_timeout: Duration,
    /// Largest message (QEMU's 64 MiB token limit).
    pub max_message: usize,
    /// Sessions served at once per listener; further connections are closed
    /// at once (each session may buffer up to `max_message` bytes).
    pub max_sessions: usize,
}

/// A session's output budget by default: a few MiB.
pub const OUTPUT_BYTES: usize = 4 << 20;

/// All sessions' output budget by default.
pub const GLOBAL_OUTPUT_BYTES: usize = 256 << 20;

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            output_bytes: OUTPUT_BYTES,
            global_output_bytes: GLOBAL_OUTPUT_BYTES,
            event_queue: 4096,
            stall_timeout: Duration::from_secs(60),
            max_message: crate::json::framer::MAX_TOKEN_SIZE,
            max_sessions: 1024,
        }
    }
}

/// Size of one read from the socket.
const IO_CHUNK: usize = 256 * 1024;

/// How long `quit` waits for its reply to be written.
const QUIT_FLUSH: Duration = Duration::from_secs(1);

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// The session actor.
#[derive(Debug)]
pub struct QmpSession {
    id: u64,
    peer: String,
    exec: Executor,
    out: Arc<Output>,
    proto: Protocol,
    subscription: Option<u64>,
    quitting: bool,
    /// The listener's count of live sessions (decremented when this one ends).
    live: Option<Arc<AtomicUsize>>,
}

/// The writer task ended (the output is closed or the client is gone).
#[derive(Debug, Message)]
#[rtype(result = "()")]
struct WriterDone;

impl QmpSession {
    /// Serve one connection on the current arbiter. `live` is the listener's
    /// session count, decremented when the session ends.
    pub(crate) fn start<S>(
        stream: S,
        peer: String,
        exec: Executor,
        limits: SessionLimits,
        global: Arc<Budget>,
        fds: Option<Arc<FdTable>>,
        live: Option<Arc<AtomicUsize>>,
    ) -> Addr<QmpSession>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        QmpSession::create(move |ctx| {
            let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
            let (rd, wr) = tokio::io::split(stream);
            let out = Output::new(limits.output_bytes, limits.event_queue, global);
            out.push(wire(&greeting()));
            let (writer, done) = (out.clone(), ctx.address());
            actix_rt::spawn(async move {
                write_loop(writer, wr, limits.stall_timeout).await;
                done.do_send(WriterDone);
            });
            ctx.add_stream(FramedRead::with_capacity(
                rd,
                QmpCodec::new(limits.max_message),
                IO_CHUNK,
            ));
            tracing::info!(session = id, %peer, "QMP client connected");
            QmpSession {
                id,
                peer,
                exec,
                out,
                proto: Protocol::new(true, fds),
                subscription: None,
                quitting: false,
                live,
            }
        })
    }
}

impl Actor for QmpSession {
    type Context = Context<Self>;

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        if let Some(sub) = self.subscription.take() {
            self.exec.unsubscribe(sub);
        }
        self.out.kick();
        tracing::info!(session = self.id, peer = %self.peer, "QMP client disconnected");
        if let Some(live) = self.live.take() {
            live.fetch_sub(1, Ordering::Relaxed);
        }
        Running::Stop
    }
}

impl StreamHandler<Result<Message, std::io::Error>> for QmpSession {
    fn handle(&mut self, item: Result<Message, std::io::Error>, ctx: &mut Context<Self>) {
        let msg = match item {
            Ok(m) => m,
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
        let out = self.out.clone();
        match self.proto.prepare(msg, &self.exec) {
            Step::Reply(reply) => {
                if out.has_room() {
                    out.push(wire(&reply));
                } else {
                    // Backpressure: read nothing more until the client reads.
                    ctx.wait(
                        async move {
                            out.room().await;
                            out.push(wire(&reply));
                        }
                        .into_actor(self),
                    );
                }
            }
            Step::Subscribe(id) => {
                let (exec, sink) = (self.exec.clone(), WireSink(out.clone()));
                ctx.wait(
                    async move {
                        out.room().await;
                        let sub = exec.subscribe(Box::new(sink)).await.ok();
                        out.push(wire(&success(id, Json::empty_object())));
                        sub
                    }
                    .into_actor(self)
                    .map(|sub, act, _ctx| act.subscription = sub),
                );
            }
            Step::Run { id, run, stops } => {
                let exec = self.exec.clone();
                ctx.wait(
                    async move {
                        out.room().await;
                        let result = run.await;
                        let quit = stops && result.is_ok();
                        out.push(reply_wire(id, result));
                        if quit {
                            // Let the writer flush the reply, then stop the daemon.
                            out.drained(QUIT_FLUSH).await;
                            let _ = exec.stop_system().await;
                        }
                        quit
                    }
                    .into_actor(self)
                    .map(|quit, act, _ctx| act.quitting |= quit),
                );
            }
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

/// A command's reply on the wire.
fn reply_wire(id: Option<Json>, result: Result<Json, crate::error::Error>) -> Bytes {
    match result {
        Ok(r) => wire(&success(id, r)),
        Err(e) => wire(&failure(id, &e.into())),
    }
}
