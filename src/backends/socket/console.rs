//! A listening socket in console mode (chardevd's extension, given by any
//! of the `__org.chardevd_` console options): many clients at once, each
//! with its own output queue, a history replayed to each new client, input
//! roles and client events.
//!
//! - Output from the frontends goes to every client's queue (one copy of the
//!   bytes, shared). A queue holds at most `client-queue` bytes (plus the
//!   history it started with); past that the `overflow` rule decides:
//!   `block` (the frontends wait for the slowest client: QEMU's and the
//!   hub's rule, the default with one client), `drop` (the client loses its
//!   oldest queued bytes, down to half its bound, counted, and sees a
//!   marker line `[chardevd: N bytes lost]` where they were: the default
//!   with more than one; the frontends never wait) or `disconnect`. A chunk
//!   of output is never larger than a queue, so a client that keeps up
//!   never loses a byte.
//! - With a history or more than one client allowed, output is taken while
//!   no client is connected (it reaches the history and the log); otherwise
//!   it is dropped and counted, as QEMU drops it.
//! - Input from clients allowed to type goes to the frontends in arrival
//!   order, one read at a time (never interleaved within a read); what the
//!   others send is read and dropped (counted per client).
//! - OPENED when the first client connects, CLOSED when the last goes;
//!   `filename` is QEMU's for the oldest client.
//! - Clients beyond `max-clients` wait in the listen backlog (as QEMU's
//!   second client waits).
use super::server::Server;
use crate::backends::Host;
use crate::chardev::transport::{read_into, Connection, Link, Transport};
use crate::chardev::{Backend, ClientInfo, ClientOp, ClientOpError, Input, Output, READ_CHUNK};
use crate::events::{ClientEvent, Event, Timestamp};
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io;
use std::task::{Context, Poll};

/// `-chardev` keys (and QMP members) of the console options.
pub const MAX_CLIENTS_KEY: &str = "__org.chardevd_max-clients";
/// See [`MAX_CLIENTS_KEY`].
pub const HISTORY_KEY: &str = "__org.chardevd_history";
/// See [`MAX_CLIENTS_KEY`].
pub const CLIENT_QUEUE_KEY: &str = "__org.chardevd_client-queue";
/// See [`MAX_CLIENTS_KEY`].
pub const OVERFLOW_KEY: &str = "__org.chardevd_overflow";
/// See [`MAX_CLIENTS_KEY`].
pub const OVERFLOW_MARKER_KEY: &str = "__org.chardevd_overflow-marker";
/// See [`MAX_CLIENTS_KEY`].
pub const INPUT_KEY: &str = "__org.chardevd_input";
/// See [`MAX_CLIENTS_KEY`].
pub const CLIENT_EVENTS_KEY: &str = "__org.chardevd_client-events";

/// The most clients one console serves at once.
pub const MAX_CLIENTS: u32 = 1024;

/// The largest history and client queue, in bytes.
pub const MAX_BUFFER: u64 = 256 << 20;

/// A client's queue when `__org.chardevd_client-queue` is not given.
pub const DEFAULT_CLIENT_QUEUE: u64 = 1 << 20;

/// Reads of a watcher's (dropped) input per poll, before others get a turn.
const WATCHER_READS: usize = 16;

/// What happens when a client's queue is full (`__org.chardevd_overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleOverflow {
    /// The frontends wait for the slowest client.
    Block,
    /// The client loses its oldest queued bytes (counted, marked).
    Drop,
    /// The client is cut off.
    Disconnect,
}

/// Who may type (`__org.chardevd_input`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleInput {
    /// Every client.
    All,
    /// One client: the one given the role over QMP while it stays, else the
    /// longest connected.
    First,
    /// Nobody: every client watches.
    None,
}

impl ConsoleInput {
    fn as_str(self) -> &'static str {
        match self {
            ConsoleInput::All => "all",
            ConsoleInput::First => "first",
            ConsoleInput::None => "none",
        }
    }
}

/// A console's settings, checked and with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleOptions {
    /// Clients at once.
    pub max_clients: u32,
    /// Bytes of output kept for new clients.
    pub history: usize,
    /// Bytes of live output queued per client.
    pub client_queue: usize,
    /// What a full queue does.
    pub overflow: ConsoleOverflow,
    /// Whether a client that lost bytes sees a marker line.
    pub overflow_marker: bool,
    /// Who may type.
    pub input: ConsoleInput,
    /// Whether client events are raised.
    pub client_events: bool,
}

impl ConsoleOptions {
    /// Output is taken while no client is connected.
    fn takes_idle_output(&self) -> bool {
        self.history > 0 || self.max_clients > 1
    }
}

/// The last bytes of output.
#[derive(Debug, Default)]
struct History {
    bytes: VecDeque<u8>,
    cap: usize,
}

impl History {
    fn push(&mut self, data: &[u8]) {
        if self.cap == 0 {
            return;
        }
        let data = &data[data.len().saturating_sub(self.cap)..];
        let over = (self.bytes.len() + data.len()).saturating_sub(self.cap);
        self.bytes.drain(..over);
        self.bytes.extend(data);
    }

    fn snapshot(&self) -> Option<Bytes> {
        if self.bytes.is_empty() {
            return None;
        }
        let (a, b) = self.bytes.as_slices();
        let mut v = Vec::with_capacity(self.bytes.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        Some(Bytes::from(v))
    }
}

/// One connected client.
struct Client {
    no: u64,
    link: Box<dyn Link>,
    address: String,
    since: Timestamp,
    queue: VecDeque<Bytes>,
    queued: usize,
    /// Its queue's bound (the live-output bound plus the history it got).
    cap: usize,
    /// Bytes lost since the last marker.
    unmarked: u64,
    marker: Option<Bytes>,
    bytes_in: u64,
    bytes_out: u64,
    dropped: u64,
    dropped_in: u64,
}

impl Client {
    fn room(&self) -> usize {
        self.cap.saturating_sub(self.queued)
    }

    /// Queue `data` and write what the peer takes now; past the bound drop
    /// the oldest bytes. Returns false if the client must be cut off
    /// (`disconnect`, or a failed write).
    fn enqueue(
        &mut self,
        cx: &mut Context<'_>,
        data: &Bytes,
        overflow: ConsoleOverflow,
        marker: bool,
        write: bool,
    ) -> bool {
        self.queue.push_back(data.clone());
        self.queued += data.len();
        if write && self.flush(cx).is_err() {
            return false;
        }
        if self.queued <= self.cap {
            return true;
        }
        if overflow == ConsoleOverflow::Disconnect {
            return false;
        }
        // Down to half the bound: a client that stays behind sees a few
        // large gaps (each marked), not a marker for every chunk.
        let mut over = self.queued - self.cap / 2;
        while over > 0 {
            let Some(front) = self.queue.front_mut() else { break };
            let n = front.len().min(over);
            if n == front.len() {
                self.queue.pop_front();
            } else {
                *front = front.slice(n..);
            }
            self.queued -= n;
            over -= n;
            self.dropped += n as u64;
            if marker {
                self.unmarked += n as u64;
            }
        }
        true
    }

    /// Write what is queued as far as the peer takes it.
    fn flush(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            if self.marker.is_none() && self.unmarked > 0 {
                self.marker = Some(Bytes::from(format!("\r\n[chardevd: {} bytes lost]\r\n", self.unmarked)));
                self.unmarked = 0;
            }
            let from_queue = self.marker.is_none();
            let Some(chunk) = self.marker.as_mut().or(self.queue.front_mut()) else {
                break;
            };
            match self.link.poll_write(cx, chunk) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    let n = n.min(chunk.len());
                    if n == chunk.len() {
                        if from_queue {
                            self.queue.pop_front();
                        } else {
                            self.marker = None;
                        }
                    } else {
                        *chunk = chunk.slice(n..);
                    }
                    if from_queue {
                        self.queued -= n;
                        self.bytes_out += n as u64;
                    }
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        match self.link.poll_flush(cx) {
            Poll::Ready(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    fn flushed(&self) -> bool {
        self.queue.is_empty() && self.marker.is_none() && self.unmarked == 0
    }
}

/// The console backend.
pub struct Console {
    id: String,
    server: Server,
    opts: ConsoleOptions,
    host: Host,
    clients: Vec<Client>,
    next_no: u64,
    history: History,
    /// The client given the writer role over QMP (`input=first`).
    writer: Option<u64>,
    /// Where the next input read starts (fair turns).
    cursor: usize,
    /// Where the next pass of writes starts (fair turns).
    turn: usize,
    /// What to report next.
    pending: VecDeque<Input>,
    buf: BytesMut,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("id", &self.id)
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl Console {
    /// A console serving on `server`.
    pub fn new(id: String, server: Server, opts: ConsoleOptions, host: Host) -> Console {
        Console {
            id,
            server,
            history: History {
                bytes: VecDeque::new(),
                cap: opts.history,
            },
            opts,
            host,
            clients: Vec::new(),
            next_no: 1,
            writer: None,
            cursor: 0,
            turn: 0,
            pending: VecDeque::new(),
            buf: BytesMut::new(),
        }
    }

    /// Whether client `i` may type.
    fn may_type(&self, i: usize) -> bool {
        match self.opts.input {
            ConsoleInput::All => true,
            ConsoleInput::None => false,
            ConsoleInput::First => {
                let writer = self
                    .writer
                    .filter(|w| self.clients.iter().any(|c| c.no == *w))
                    .or(self.clients.first().map(|c| c.no));
                writer == Some(self.clients[i].no)
            }
        }
    }

    fn event(&self, c: &Client, connected: bool) {
        if !self.opts.client_events {
            return;
        }
        let e = ClientEvent {
            id: self.id.clone(),
            client: c.no,
            address: c.address.clone(),
            clients: self.clients.len() as u64,
        };
        self.host.emit(if connected {
            Event::ClientConnected(e)
        } else {
            Event::ClientDisconnected(e)
        });
    }

    fn add(&mut self, conn: Connection) {
        let no = self.next_no;
        self.next_no += 1;
        let address = conn.filename.clone().unwrap_or_else(|| self.server.idle_filename());
        let mut c = Client {
            no,
            link: conn.link,
            address,
            since: Timestamp::now(),
            queue: VecDeque::new(),
            queued: 0,
            cap: self.opts.client_queue,
            unmarked: 0,
            marker: None,
            bytes_in: 0,
            bytes_out: 0,
            dropped: 0,
            dropped_in: 0,
        };
        if let Some(h) = self.history.snapshot() {
            c.cap += h.len();
            c.queued = h.len();
            c.queue.push_back(h);
        }
        tracing::debug!(chardev = %self.id, client = no, address = %c.address, "client connected");
        self.clients.push(c);
        if self.clients.len() == 1 {
            self.pending.push_back(Input::Opened);
        }
        self.event(self.clients.last().expect("just pushed"), true);
    }

    /// Remove the clients at `gone` (indices, any order).
    fn remove(&mut self, mut gone: Vec<usize>, why: &str) {
        if gone.is_empty() {
            return;
        }
        gone.sort_unstable();
        gone.dedup();
        let oldest_went = gone.first() == Some(&0);
        for i in gone.into_iter().rev() {
            let mut c = self.clients.remove(i);
            c.link.shutdown();
            let lost = c.queued;
            tracing::debug!(chardev = %self.id, client = c.no, cause = why, queued = lost, "client gone");
            self.event(&c, false);
        }
        self.cursor = 0;
        if self.clients.is_empty() {
            self.pending.push_back(Input::Closed);
        } else if oldest_went {
            self.pending.push_back(Input::Renamed);
        }
    }

    /// Write to every client; those whose writes fail go.
    fn flush_all(&mut self, cx: &mut Context<'_>) {
        let mut gone = Vec::new();
        for i in self.turns() {
            if !tokio::task::coop::has_budget_remaining() {
                // The task's I/O budget for this poll is spent (the task is
                // polled again at once): the next pass starts here.
                self.turn = i;
                break;
            }
            if self.clients[i].flush(cx).is_err() {
                gone.push(i);
            }
        }
        self.remove(gone, "write failed");
    }

    /// The clients in this pass's order: from where the last pass ran out
    /// of the task's I/O budget (a fixed order would starve the same
    /// clients every time, and make them drop what they could have read).
    fn turns(&self) -> impl Iterator<Item = usize> {
        let n = self.clients.len();
        let start = if n == 0 { 0 } else { self.turn % n };
        (0..n).map(move |k| (start + k) % n)
    }

    /// Take new clients while there is room for them.
    fn accept(&mut self, cx: &mut Context<'_>) {
        while self.clients.len() < self.opts.max_clients as usize {
            match self.server.poll_connect(cx) {
                Poll::Ready(Some(conn)) => self.add(conn),
                _ => break,
            }
        }
    }

    /// One read from the next client with something to say.
    fn read(&mut self, cx: &mut Context<'_>, room: usize) -> Option<Input> {
        let n = self.clients.len();
        let mut gone = Vec::new();
        let mut got = None;
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let typer = self.may_type(i);
            let c = &mut self.clients[i];
            if let Some(ev) = c.link.take_event() {
                if typer {
                    got = Some((i, ev));
                    break;
                }
                continue;
            }
            let want = if typer { room.min(READ_CHUNK) } else { READ_CHUNK };
            if want == 0 {
                if c.link.poll_hangup(cx).is_ready() {
                    gone.push(i);
                }
                continue;
            }
            let mut drained = false;
            for _ in 0..WATCHER_READS {
                match read_into(&mut *c.link, cx, &mut self.buf, want) {
                    Poll::Ready(Ok(data)) if data.is_empty() => {
                        gone.push(i);
                        break;
                    }
                    Poll::Ready(Ok(data)) if typer => {
                        c.bytes_in += data.len() as u64;
                        got = Some((i, Input::Data(data)));
                        break;
                    }
                    Poll::Ready(Ok(data)) => {
                        c.dropped_in += data.len() as u64;
                        continue;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Poll::Ready(Err(_)) => {
                        gone.push(i);
                        break;
                    }
                    Poll::Pending => {
                        drained = true;
                        break;
                    }
                }
            }
            if got.is_some() {
                break;
            }
            if !typer && !drained && !gone.contains(&i) {
                // A watcher that keeps sending: come back to it after the others.
                cx.waker().wake_by_ref();
            }
        }
        if let Some((i, _)) = &got {
            self.cursor = i + 1;
        }
        self.remove(gone, "hung up");
        got.map(|(_, input)| input)
    }
}

impl Backend for Console {
    fn poll_input(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<Input> {
        if let Some(i) = self.pending.pop_front() {
            return Poll::Ready(i);
        }
        // New clients first, so their history goes out in this poll.
        self.accept(cx);
        self.flush_all(cx);
        if let Some(i) = self.pending.pop_front() {
            return Poll::Ready(i);
        }
        let got = self.read(cx, room);
        match got.or_else(|| self.pending.pop_front()) {
            Some(i) => Poll::Ready(i),
            None => Poll::Pending,
        }
    }

    fn poll_output(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        if self.clients.is_empty() {
            if !self.opts.takes_idle_output() {
                return Poll::Ready(Output::Discarded(data.len()));
            }
            self.history.push(data);
            return Poll::Ready(Output::Written(data.len()));
        }
        // A chunk never exceeds a queue: a client that keeps up never loses.
        let mut take = data.len().min(self.opts.client_queue);
        if self.opts.overflow == ConsoleOverflow::Block {
            let room = |cs: &[Client]| cs.iter().map(Client::room).min().unwrap_or(usize::MAX);
            if room(&self.clients) == 0 {
                self.flush_all(cx);
                if self.clients.is_empty() {
                    return self.poll_output(cx, data);
                }
            }
            take = take.min(room(&self.clients));
            if take == 0 {
                return Poll::Pending;
            }
        }
        let chunk = Bytes::copy_from_slice(&data[..take]);
        self.history.push(&chunk);
        let (overflow, marker) = (self.opts.overflow, self.opts.overflow_marker);
        let order: Vec<usize> = self.turns().collect();
        let mut cut = Vec::new();
        let mut spent = false;
        for i in order {
            if !spent && !tokio::task::coop::has_budget_remaining() {
                spent = true;
                self.turn = i;
            }
            if !self.clients[i].enqueue(cx, &chunk, overflow, marker, !spent) {
                cut.push(i);
            }
        }
        self.remove(cut, "its queue overflowed or a write failed");
        Poll::Ready(Output::Written(take))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.flush_all(cx);
        if self.clients.iter().all(Client::flushed) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    fn filename(&self) -> String {
        match self.clients.first() {
            Some(c) => c.address.clone(),
            None => self.server.idle_filename(),
        }
    }

    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.server.poll_release(cx)
    }

    fn reacquire(&mut self) {
        self.server.reacquire();
    }

    fn yank(&mut self) -> bool {
        let all = (0..self.clients.len()).collect();
        self.remove(all, "yanked");
        true
    }

    fn clients(&self) -> Option<Vec<ClientInfo>> {
        Some(
            self.clients
                .iter()
                .enumerate()
                .map(|(i, c)| ClientInfo {
                    client: c.no,
                    address: c.address.clone(),
                    since: c.since,
                    bytes_in: c.bytes_in,
                    bytes_out: c.bytes_out,
                    dropped: c.dropped,
                    dropped_in: c.dropped_in,
                    queued: c.queued as u64,
                    writer: self.may_type(i),
                })
                .collect(),
        )
    }

    fn add_client(&mut self, conn: Connection) -> Result<u64, ClientOpError> {
        if self.clients.len() >= self.opts.max_clients as usize {
            return Err(ClientOpError::Full(self.opts.max_clients));
        }
        let no = self.next_no;
        self.add(conn);
        Ok(no)
    }

    fn client_count(&self) -> Option<usize> {
        Some(self.clients.len())
    }

    fn client_op(&mut self, op: ClientOp) -> Result<(), ClientOpError> {
        let (ClientOp::Disconnect(no) | ClientOp::SetWriter(no)) = op;
        let Some(i) = self.clients.iter().position(|c| c.no == no) else {
            return Err(ClientOpError::NoClient(no));
        };
        match op {
            ClientOp::Disconnect(_) => self.remove(vec![i], "disconnected over QMP"),
            ClientOp::SetWriter(_) => {
                if self.opts.input != ConsoleInput::First {
                    return Err(ClientOpError::NoWriterRole(self.opts.input.as_str()));
                }
                tracing::info!(chardev = %self.id, client = no, "client given the writer role");
                self.writer = Some(no);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_bytes() {
        let mut h = History {
            bytes: VecDeque::new(),
            cap: 5,
        };
        h.push(b"abc");
        h.push(b"defg");
        assert_eq!(h.snapshot().unwrap(), &b"cdefg"[..]);
        h.push(b"0123456789");
        assert_eq!(h.snapshot().unwrap(), &b"56789"[..]);
    }
}
