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
use super::command::{Command, DataFormat};
use super::error::QmpError;
use super::framer::{Framer, Message};
use super::json::Json;
use super::request::{parse_request, ShapeError};
use crate::actors::events::{EventSink, Kick};
use crate::actors::msgs::*;
use crate::actors::{ChardevError, Supervisor};
use crate::backends::ringbuf::qemu_base64_decode;
use crate::schema::schema;
use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

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
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            reply_queue: 256,
            event_queue: 4096,
            stall_timeout: Duration::from_secs(60),
            max_message: super::framer::MAX_TOKEN_SIZE,
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
}

impl QmpSession {
    /// Serve one connection on the current arbiter.
    pub fn start<S>(
        stream: S,
        peer: String,
        supervisor: Addr<Supervisor>,
        limits: SessionLimits,
    ) -> Addr<QmpSession>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        QmpSession::create(move |ctx| {
            let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
            let (rd, wr) = tokio::io::split(stream);
            let (reply_tx, reply_rx) = mpsc::channel::<Bytes>(limits.reply_queue);
            let (event_tx, event_rx) = mpsc::channel::<Bytes>(limits.event_queue);
            let subscription = Rc::new(Cell::new(None));
            let _ = reply_tx.try_send(wire(&greeting()));
            let writer = write_loop(wr, reply_rx, event_rx, limits.stall_timeout);
            ctx.spawn(actix::fut::wrap_future::<_, QmpSession>(writer).map(
                |_, _, ctx: &mut Context<QmpSession>| {
                    ctx.stop();
                },
            ));
            let dispatch = Dispatch {
                supervisor: supervisor.clone(),
                negotiated: false,
                oob: false,
                event_tx: Some(event_tx),
                kick: ctx.address().recipient(),
                subscription: subscription.clone(),
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

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    mut dispatch: Dispatch,
    replies: mpsc::Sender<Bytes>,
    max: usize,
) {
    let mut framer = Framer::with_max_token_size(max);
    let mut buf = vec![0u8; IO_CHUNK];
    let mut messages = Vec::new();
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(cause = %e, "QMP read failed");
                break;
            }
        };
        framer.feed(&buf[..n], &mut messages);
        for m in messages.drain(..) {
            let reply = dispatch.handle(m).await;
            if replies.send(wire(&reply)).await.is_err() {
                return;
            }
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut replies: mpsc::Receiver<Bytes>,
    mut events: mpsc::Receiver<Bytes>,
    stall: Duration,
) {
    let mut events_open = true;
    let mut batch = BytesMut::new();
    loop {
        let first = tokio::select! {
            biased;
            r = replies.recv() => match r {
                Some(b) => b,
                None => break,
            },
            e = events.recv(), if events_open => match e {
                Some(b) => b,
                None => { events_open = false; continue; }
            },
        };
        batch.extend_from_slice(&first);
        while batch.len() < IO_CHUNK {
            if let Ok(b) = replies.try_recv() {
                batch.extend_from_slice(&b);
            } else if let Ok(b) = events.try_recv() {
                batch.extend_from_slice(&b);
            } else {
                break;
            }
        }
        match tokio::time::timeout(stall, wr.write_all(&batch)).await {
            Ok(Ok(())) => batch.clear(),
            Ok(Err(e)) => {
                tracing::debug!(cause = %e, "QMP write failed");
                return;
            }
            Err(_) => {
                tracing::warn!("QMP client made no progress reading for {stall:?}; disconnecting");
                return;
            }
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

/// Per-session command handling state.
struct Dispatch {
    supervisor: Addr<Supervisor>,
    negotiated: bool,
    oob: bool,
    event_tx: Option<mpsc::Sender<Bytes>>,
    kick: Recipient<Kick>,
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
            return Err(QmpError::not_found(format!(
                "The command {name} has not been found"
            )));
        }
        if oob {
            return Err(QmpError::generic(format!(
                "The command {name} does not support OOB"
            )));
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
            Command::RingbufWrite {
                device,
                data,
                format,
            } => {
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
                self.ask(RingbufWrite {
                    device,
                    data: bytes,
                })
                .await??;
                Ok(empty())
            }
            Command::RingbufRead {
                device,
                size,
                format,
            } => {
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
                Ok(Json::Str(
                    self.ask(RingbufRead {
                        device,
                        size,
                        format,
                    })
                    .await??,
                ))
            }
            Command::ChardevAdd { id, backend } => {
                chardev_return(self.ask(AddChardev { id, backend }).await??)
            }
            Command::ChardevChange { id, backend } => {
                chardev_return(self.ask(ChangeChardev { id, backend }).await??)
            }
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
                self.ask(Quit).await?;
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
