//! A terminal page's websocket: one more client of a console.
//!
//! The console gets a [`ChannelLink`] (through the supervisor, as
//! `__org.chardevd_client-disconnect` reaches it), so its history, its
//! per-client queue and overflow rule, its writer rule, `query-clients` and
//! the client events all apply to a web client as to any other. This side
//! pumps between the channel and the websocket: the console's bytes go out
//! in binary frames, the browser's binary frames come in (a text frame
//! closes the connection, as QEMU's websocket chardev does); text frames
//! from here carry the page's status (`{"client":N,"writer":BOOL}`).
use super::http::{Request, Response};
use super::Io;
use crate::api::execute::Executor;
use crate::backends::socket::websocket::{self, Closing, Decoder};
use crate::chardev::channel::{channel, ChannelEnd};
use crate::error::Error;
use bytes::Bytes;
use std::future::poll_fn;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How often the page's writer status is looked at (it changes when the
/// writer leaves, or over QMP).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Serve `GET /ws/ID`.
pub async fn serve(
    exec: &Executor,
    req: &Request,
    mut io: Box<dyn Io>,
    leftover: Vec<u8>,
    id: String,
    peer: String,
    origin_ok: bool,
) {
    let upgrade = req
        .header("upgrade")
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let key = req.header("sec-websocket-key");
    let (true, Some(key), Some("13")) = (upgrade, key, req.header("sec-websocket-version")) else {
        let _ = Response::text("400 Bad Request", "a websocket (version 13) is expected here\n")
            .send(&mut io)
            .await;
        return;
    };
    if !origin_ok {
        tracing::warn!(%peer, origin = ?req.header("origin"), "web: websocket from a foreign origin refused");
        let _ = Response::text("403 Forbidden", "this origin may not open a terminal here\n")
            .send(&mut io)
            .await;
        return;
    }
    let (link, end) = channel();
    let address = format!("web:{peer}");
    let added = exec.add_client(&id, link, address).await;
    let no = match added {
        Ok(no) => no,
        Err(e) => {
            let (status, text) = match &e {
                Error::NotFound(_) => ("404 Not Found", e.to_string()),
                Error::NotConsole(_) => (
                    "409 Conflict",
                    format!(
                        "'{id}' is not a console: give it a console option (for example \
                         __org.chardevd_history=64K) to open a terminal on it"
                    ),
                ),
                _ => ("503 Service Unavailable", e.to_string()),
            };
            let _ = Response::text(status, &format!("{text}\n")).send(&mut io).await;
            return;
        }
    };
    let protocol = req
        .header("sec-websocket-protocol")
        .is_some_and(|p| p.split(',').any(|x| x.trim() == "binary"));
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{}\r\n",
        websocket::accept_key(key, crate::backends::socket::link::sha1),
        if protocol {
            "Sec-WebSocket-Protocol: binary\r\n"
        } else {
            ""
        }
    );
    if io.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    tracing::info!(chardev = %id, client = no, %peer, "web terminal connected");
    pump(exec, &id, no, io, leftover, end).await;
    tracing::info!(chardev = %id, client = no, %peer, "web terminal gone");
}

/// Whether client `no` of `id` may type now (None: it is gone).
async fn writer(exec: &Executor, id: &str, no: u64) -> Option<bool> {
    let list = exec.clients(id).await.ok()?;
    list.into_iter().find(|c| c.client == no).map(|c| c.writer)
}

async fn pump(exec: &Executor, id: &str, no: u64, io: Box<dyn Io>, leftover: Vec<u8>, end: ChannelEnd) {
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut dec = Decoder::new();
    let mut inbuf = vec![0u8; 16 << 10];
    let mut pending_in = leftover;
    let mut tick = tokio::time::interval(STATUS_EVERY);
    let mut told: Option<bool> = None;
    loop {
        if !pending_in.is_empty() {
            let (mut data, mut reply) = (Vec::new(), Vec::new());
            let res = dec.feed(&pending_in, &mut data, &mut reply);
            pending_in.clear();
            end.input(Bytes::from(data));
            if !reply.is_empty() && wr.write_all(&reply).await.is_err() {
                return;
            }
            if let Err(c) = res {
                if let Closing::Error(status, reason) = c {
                    tracing::debug!(chardev = %id, client = no, status, reason, "web terminal closed by a frame");
                }
                return;
            }
        }
        tokio::select! {
            out = poll_fn(|cx| end.poll_output(cx)) => {
                let mut frames = Vec::new();
                match out {
                    Some(chunks) => {
                        for c in &chunks {
                            for piece in c.chunks(websocket::MAX_OUT_PAYLOAD) {
                                websocket::binary_frame(piece, &mut frames);
                            }
                        }
                        if wr.write_all(&frames).await.is_err() {
                            return;
                        }
                    }
                    None => {
                        websocket::close_frame(1000, "the console let this client go", &mut frames);
                        let _ = wr.write_all(&frames).await;
                        let _ = wr.shutdown().await;
                        return;
                    }
                }
            }
            got = async {
                if poll_fn(|cx| end.poll_room(cx)).await {
                    rd.read(&mut inbuf).await
                } else {
                    std::future::pending().await
                }
            } => match got {
                Ok(0) | Err(_) => return,
                Ok(n) => pending_in.extend_from_slice(&inbuf[..n]),
            },
            _ = tick.tick() => {
                let now = writer(exec, id, no).await;
                if now.is_some() && now != told {
                    told = now;
                    let mut frame = Vec::new();
                    let status = format!("{{\"client\":{no},\"writer\":{}}}", now.unwrap_or(false));
                    websocket::text_frame(&status, &mut frame);
                    if wr.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
