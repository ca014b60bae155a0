//! One actor per QMP connection.
//!
//! The session reads bytes, frames them ([`Framer`]), checks each request
//! ([`parse_request`], the schema), turns it into a [`Command`] and the command
//! into a supervisor message, and queues the reply. Requests are handled one at
//! a time, so replies come in request order and a command that waits blocks
//! only its own session.
//!
//! Output goes through two bounded queues drained by one writer: replies
//! ([`SessionLimits::reply_queue`]; when full, the session stops reading, so a
//! pipelining client is slowed down, never dropped) and events
//! ([`SessionLimits::event_queue`]; when full, the client is not reading at all
//! and is disconnected). A write that makes no progress for
//! [`SessionLimits::stall_timeout`] also disconnects the client.
use super::codec::QmpCodec;
use super::command::{Command, DataFormat};
use super::error::QmpError;
use crate::json::framer::Message;
use crate::json::Json;
use super::request::{parse_request, ShapeError};
use crate::actors::events::{EventSink, Kick};
use crate::actors::msgs::*;
use crate::actors::{ChardevError, Supervisor};
use crate::backends::ringbuf::qemu_base64_decode;
use crate::qmp::schema::schema;
use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

/// Bounds of one session.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Replies queued before the session stops reading input.
    pub reply_queue: usize,
    /// Events queued before a client that does not read is disconnected.
    pub event_queue: usize,
    /// How long one write may make no progress before the client is dropped.
    pub stall_timeout: Duration,
    /// Largest message (QEMU's 64 MiB token limit).
    pub max_message: usize,
    /// Sessions served at once per listener; further connections are closed
    /// at once (each session may buffer up to `max_message` bytes).
    pub max_sessions: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            reply_queue: 256,
            event_queue: 4096,
            stall_timeout: Duration::from_secs(60),
            max_message: crate::json::framer::MAX_TOKEN_SIZE,
            max_sessions: 1024,
        }
    }
}

/// Size of one read from the socket, and the writer's batch size.
const IO_CHUNK: usize = 64 * 1024;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// The session actor.
#[derive(Debug)]
pub struct QmpSession {
    id: u64,
    peer: String,
    supervisor: Addr<Supervisor>,
    subscription: Rc<Cell<Option<u64>>>,
    /// The listener's count of live sessions (decremented when this one ends).
    live: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl QmpSession {
    /// Serve one connection on the current arbiter. `live` is the listener's
    /// session count, decremented when the session ends.
    pub fn start<S>(
        stream: S,
        peer: String,
        supervisor: Addr<Supervisor>,
        limits: SessionLimits,
        live: Option<Arc<std::sync::atomic::AtomicUsize>>,
    ) -> Addr<QmpSession>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        QmpSession::create(move |ctx| {
            let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
            let (rd, wr) = tokio::io::split(stream);
            let (reply_tx, reply_rx) = mpsc::channel::<Stamped>(limits.reply_queue.max(1));
            let (event_tx, event_rx) = mpsc::channel::<Stamped>(limits.event_queue.max(1));
            let subscription = Rc::new(Cell::new(None));
            let seq = Arc::new(AtomicU64::new(1));
            let _ = reply_tx.try_send((0, wire(&greeting())));
            let writer = write_loop(wr, reply_rx, event_rx, limits.stall_timeout);
            ctx.spawn(
                actix::fut::wrap_future::<_, QmpSession>(writer).map(|_, _, ctx: &mut Context<QmpSession>| {
                    ctx.stop();
                }),
            );
            let dispatch = Dispatch {
                supervisor: supervisor.clone(),
                negotiated: false,
                oob: false,
                event_tx: Some(event_tx),
                kick: ctx.address().recipient(),
                subscription: subscription.clone(),
                seq,
                quit: false,
            };
            ctx.spawn(actix::fut::wrap_future::<_, QmpSession>(read_loop(
                rd,
                dispatch,
                reply_tx,
                limits.max_message,
            )));
            tracing::info!(session = id, %peer, "QMP client connected");
            QmpSession {
                id,
                peer,
                supervisor,
                subscription,
                live,
            }
        })
    }
}

impl Actor for QmpSession {
    type Context = Context<Self>;

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        if let Some(sub) = self.subscription.take() {
            self.supervisor.do_send(Unsubscribe(sub));
        }
        tracing::info!(session = self.id, peer = %self.peer, "QMP client disconnected");
        if let Some(live) = self.live.take() {
            live.fetch_sub(1, Ordering::Relaxed);
        }
        Running::Stop
    }
}

impl Handler<Kick> for QmpSession {
    type Result = ();

    fn handle(&mut self, _msg: Kick, ctx: &mut Context<Self>) {
        tracing::warn!(session = self.id, peer = %self.peer, "disconnecting a client that does not read its events");
        self.subscription.take();
        ctx.stop();
    }
}

/// The greeting object.
pub fn greeting() -> Json {
    Json::object([(
        "QMP",
        Json::object([
            ("version", version()),
            ("capabilities", Json::Array(vec![Json::str("oob")])),
        ]),
    )])
}

/// The `query-version` result.
pub fn version() -> Json {
    let (major, minor, micro) = crate::QEMU_VERSION;
    Json::object([
        (
            "qemu",
            Json::object([
                ("major", Json::Int(major)),
                ("minor", Json::Int(minor)),
                ("micro", Json::Int(micro)),
            ]),
        ),
        ("package", Json::str(crate::package_string())),
    ])
}

/// A message on the wire: QEMU's compact JSON and CRLF.
pub fn wire(v: &Json) -> Bytes {
    let mut s = v.to_qemu_string();
    s.push_str("\r\n");
    Bytes::from(s)
}

/// `{"return": …, "id": …}`.
pub fn success(id: Option<Json>, ret: Json) -> Json {
    let mut m = vec![("return".to_owned(), ret)];
    if let Some(id) = id {
        m.push(("id".to_owned(), id));
    }
    Json::Object(m)
}

/// `{"id": …, "error": {…}}`.
pub fn failure(id: Option<Json>, err: &QmpError) -> Json {
    let mut m = vec![("error".to_owned(), err.to_json())];
    if let Some(id) = id {
        m.push(("id".to_owned(), id));
    }
    Json::Object(m)
}

async fn read_loop<R: AsyncRead + Unpin>(rd: R, mut dispatch: Dispatch, replies: mpsc::Sender<Stamped>, max: usize) {
    let mut input = FramedRead::with_capacity(rd, QmpCodec::new(max), IO_CHUNK);
    while let Some(m) = input.next().await {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(cause = %e, "QMP read failed");
                break;
            }
        };
        let reply = dispatch.handle(m).await;
        let stamp = dispatch.seq.fetch_add(1, Ordering::Relaxed);
        if replies.send((stamp, wire(&reply))).await.is_err() {
            return;
        }
        if dispatch.quit {
            // Let the writer flush the reply, then stop the daemon.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while replies.capacity() < replies.max_capacity() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = dispatch.supervisor.send(Quit).await;
            return;
        }
    }
}

/// One queued output message, stamped with the session's output sequence
/// number when it was queued (replies by the reader, events by the bus), so
/// the writer can send them in the order they happened.
pub type Stamped = (u64, Bytes);

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut replies: mpsc::Receiver<Stamped>,
    mut events: mpsc::Receiver<Stamped>,
    stall: Duration,
) {
    let mut events_open = true;
    let mut replies_open = true;
    let (mut next_reply, mut next_event): (Option<Stamped>, Option<Stamped>) = (None, None);
    let mut batch = BytesMut::new();
    loop {
        if next_reply.is_none() && replies_open {
            match replies.try_recv() {
                Ok(m) => next_reply = Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => replies_open = false,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
        }
        if next_event.is_none() && events_open {
            match events.try_recv() {
                Ok(m) => next_event = Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => events_open = false,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
        }
        let pick_reply = match (&next_reply, &next_event) {
            (Some(r), Some(e)) => r.0 < e.0,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => {
                if !batch.is_empty() {
                    if !write_with_progress(&mut wr, &mut batch, stall).await {
                        return;
                    }
                    continue;
                }
                if !replies_open {
                    break;
                }
                tokio::select! {
                    r = replies.recv() => match r {
                        Some(m) => next_reply = Some(m),
                        None => replies_open = false,
                    },
                    e = events.recv(), if events_open => match e {
                        Some(m) => next_event = Some(m),
                        None => events_open = false,
                    },
                }
                continue;
            }
        };
        let taken = if pick_reply {
            next_reply.take()
        } else {
            next_event.take()
        };
        if let Some((_, bytes)) = taken {
            batch.extend_from_slice(&bytes);
        }
        if batch.len() >= IO_CHUNK && !write_with_progress(&mut wr, &mut batch, stall).await {
            return;
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// Write the whole batch; false (disconnect) on an error or when one write
/// makes no progress for `stall`.
async fn write_with_progress<W: AsyncWrite + Unpin>(wr: &mut W, batch: &mut BytesMut, stall: Duration) -> bool {
    while !batch.is_empty() {
        match tokio::time::timeout(stall, wr.write(batch)).await {
            Ok(Ok(0)) => return false,
            Ok(Ok(n)) => {
                let _ = batch.split_to(n);
            }
            Ok(Err(e)) => {
                tracing::debug!(cause = %e, "QMP write failed");
                return false;
            }
            Err(_) => {
                tracing::warn!("QMP client made no progress reading for {stall:?}; disconnecting");
                return false;
            }
        }
    }
    true
}

/// Per-session command handling state.
struct Dispatch {
    supervisor: Addr<Supervisor>,
    negotiated: bool,
    oob: bool,
    event_tx: Option<mpsc::Sender<Stamped>>,
    kick: Recipient<Kick>,
    /// The session's output sequence (shared with the event bus).
    seq: Arc<AtomicU64>,
    /// `quit` was answered: stop the daemon once the reply is out.
    quit: bool,
    subscription: Rc<Cell<Option<u64>>>,
}

impl Dispatch {
    async fn handle(&mut self, msg: Message) -> Json {
        let value = match msg {
            Ok(v) => v,
            Err(desc) => return failure(None, &QmpError::generic(desc)),
        };
        let req = match parse_request(value, self.oob) {
            Ok(r) => r,
            Err(ShapeError { id, error }) => return failure(id, &error),
        };
        match self.run(&req.name, &req.args, req.oob).await {
            Ok(ret) => success(req.id, ret),
            Err(e) => failure(req.id, &e),
        }
    }

    async fn run(&mut self, name: &str, args: &Json, oob: bool) -> Result<Json, QmpError> {
        let schema = schema();
        if !self.negotiated && name != "qmp_capabilities" {
            return Err(QmpError::not_found(
                "Expecting capabilities negotiation with 'qmp_capabilities'",
            ));
        }
        if !schema.has_command(name) {
            return Err(QmpError::not_found(format!("The command {name} has not been found")));
        }
        if oob {
            return Err(QmpError::generic(format!("The command {name} does not support OOB")));
        }
        schema
            .check_args(name, args, name == "device_add")
            .map_err(QmpError::generic)?;
        let cmd = Command::from_checked(name, args)?;
        self.execute(cmd).await
    }

    async fn ask<M>(&self, msg: M) -> Result<M::Result, QmpError>
    where
        M: actix::Message + Send + 'static,
        M::Result: Send,
        Supervisor: Handler<M>,
    {
        self.supervisor
            .send(msg)
            .await
            .map_err(|_| QmpError::generic("chardevd is shutting down"))
    }

    async fn execute(&mut self, cmd: Command) -> Result<Json, QmpError> {
        let empty = Json::empty_object;
        match cmd {
            Command::QmpCapabilities { enable } => {
                if self.negotiated {
                    return Err(QmpError::not_found(
                        "Capabilities negotiation is already complete, command ignored",
                    ));
                }
                self.oob = enable.iter().any(|c| c == "oob");
                self.negotiated = true;
                if let Some(tx) = self.event_tx.take() {
                    let sink = EventSink::Wire {
                        tx,
                        kick: self.kick.clone(),
                        seq: self.seq.clone(),
                    };
                    let sub = self.ask(Subscribe(sink)).await?;
                    self.subscription.set(Some(sub));
                }
                Ok(empty())
            }
            Command::QueryVersion => Ok(version()),
            Command::QueryCommands => Ok(Json::Array(
                schema()
                    .commands()
                    .iter()
                    .map(|c| Json::object([("name", Json::str(c.clone()))]))
                    .collect(),
            )),
            Command::QueryQmpSchema => Ok(schema().introspection().clone()),
            Command::QueryChardev => {
                let rows = self.ask(QueryChardev).await?;
                Ok(Json::Array(
                    rows.into_iter()
                        .map(|r| {
                            Json::object([
                                ("label", Json::Str(r.label)),
                                ("filename", Json::Str(r.filename)),
                                ("frontend-open", Json::Bool(r.frontend_open)),
                            ])
                        })
                        .collect(),
                ))
            }
            Command::QueryChardevBackends => Ok(Json::Array(
                crate::backends::SUPPORTED
                    .iter()
                    .map(|b| Json::object([("name", Json::str(*b))]))
                    .collect(),
            )),
            Command::RingbufWrite { device, data, format } => {
                let bytes = match format {
                    DataFormat::Utf8 => data.into_bytes(),
                    DataFormat::Base64 => match qemu_base64_decode(&data) {
                        Ok(b) => b,
                        Err(e) => {
                            // QEMU looks the device up before decoding.
                            self.ask(RingbufWrite {
                                device,
                                data: Vec::new(),
                            })
                            .await??;
                            return Err(e.into());
                        }
                    },
                };
                self.ask(RingbufWrite { device, data: bytes }).await??;
                Ok(empty())
            }
            Command::RingbufRead { device, size, format } => {
                if size <= 0 {
                    // QEMU checks the device first, then the size.
                    self.ask(RingbufRead {
                        device,
                        size: 0,
                        format,
                    })
                    .await??;
                    return Err(ChardevError::SizeNotPositive.into());
                }
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                Ok(Json::Str(self.ask(RingbufRead { device, size, format }).await??))
            }
            Command::ChardevAdd { id, backend } => chardev_return(self.ask(AddChardev { id, backend }).await??),
            Command::ChardevChange { id, backend } => chardev_return(self.ask(ChangeChardev { id, backend }).await??),
            Command::ChardevRemove { id } => {
                self.ask(RemoveChardev { id }).await??;
                Ok(empty())
            }
            Command::ChardevSendBreak { id } => {
                self.ask(SendBreak { id }).await??;
                Ok(empty())
            }
            Command::DeviceAdd { driver, id, props } => {
                self.ask(DeviceAdd { driver, id, props }).await??;
                Ok(empty())
            }
            Command::DeviceDel { id } => {
                self.ask(DeviceDel { id }).await??;
                Ok(empty())
            }
            Command::PortSetOpen { id, open } => {
                self.ask(PortSetOpen { id, open }).await??;
                Ok(empty())
            }
            Command::Quit => {
                self.quit = true;
                Ok(empty())
            }
        }
    }
}

fn chardev_return(r: ChardevReturn) -> Result<Json, QmpError> {
    Ok(match r.pty {
        Some(p) => Json::object([("pty", Json::Str(p))]),
        None => Json::empty_object(),
    })
}
