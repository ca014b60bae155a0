//! The chardev core: what every backend kind plugs into.
//!
//! - [`port`]: the attachment between a chardev and each of its frontends.
//! - [`Backend`]: what a kind does at run time (poll for input, take output,
//!   ioctls, capabilities such as the ring). The chardev actor
//!   (`actors::chardev`) owns one and drives it together with the ports, the
//!   log file and the open state.
//! - [`transport`]: a [`Backend`] built from a [`transport::Transport`] that
//!   yields connections ([`transport::Link`]s) over time: once (file, pipe,
//!   serial, udp) or again and again (pty now, socket accept and reconnect).
//! - [`fdio`]: non-blocking I/O on file descriptors, for the links of the
//!   host-file kinds.
//! - [`logfile`]: the `logfile` and `logappend` options.
use bytes::Bytes;
use serde::Serialize;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

#[cfg_attr(not(feature = "web"), allow(dead_code))]
pub mod channel;
pub mod fdio;
pub mod input;
pub mod logfile;
pub mod port;
pub mod transport;

pub use port::{FrontendEvent, Port, PortConfig, PortEnd, PortId};

/// Bytes read from the outside world at a time (QEMU reads 4 KiB; larger
/// chunks cost nothing here and cut per-message overhead; 128 KiB, socat's
/// `-b 131072`, halves the system calls of a 64 KiB chunk stream: a read of
/// exactly the size asked must be followed by another to find the end).
pub const READ_CHUNK: usize = 128 * 1024;

/// What a backend reports to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Bytes for the frontends.
    Data(Bytes),
    /// The backend opened (a client connected, a pty slave was opened).
    Opened,
    /// The backend closed (the client went, the input ended).
    Closed,
    /// A break arrived (a telnet `IAC BREAK`).
    Break,
    /// A break raised on this chardev itself (a mux's `C-a b`): it goes to
    /// the focused frontend only, where the kind has a focus.
    FocusedBreak,
    /// The backend's `filename` changed while it stayed open (a console's
    /// oldest client went and the next one is now the one shown).
    Renamed,
}

/// One client of a console (a listening socket chardev in console mode):
/// `__org.chardevd_query-clients`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's number on this chardev (from 1, never reused while the
    /// chardev lives).
    pub client: u64,
    /// The peer, as QEMU's `filename` of a connected socket shows it.
    pub address: String,
    /// When it connected.
    pub since: crate::events::Timestamp,
    /// Bytes it sent that went to the frontend.
    pub bytes_in: u64,
    /// Bytes of output written to it.
    pub bytes_out: u64,
    /// Bytes of output it lost (its queue overflowed).
    pub dropped: u64,
    /// Bytes it sent that were dropped (it may not type).
    pub dropped_in: u64,
    /// Bytes of output queued for it now.
    pub queued: u64,
    /// Whether what it types reaches the frontend.
    pub writer: bool,
}

/// What can be done to one console client over QMP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOp {
    /// Cut it off (`__org.chardevd_client-disconnect`).
    Disconnect(u64),
    /// Make it the one that types (`__org.chardevd_client-set-writer`,
    /// with `__org.chardevd_input=first`).
    SetWriter(u64),
}

/// Why a [`ClientOp`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientOpError {
    /// The chardev is not a console.
    NotConsole,
    /// No such client now.
    NoClient(u64),
    /// The console's input rule has no single writer.
    NoWriterRole(&'static str),
    /// The console has as many clients as it takes.
    Full(u32),
}

/// Who gets a chardev's data and its own events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// Every frontend (most kinds).
    All,
    /// One frontend: a mux's focus.
    One(PortId),
    /// Nobody: the focus is on a slot whose frontend went (a mux holds
    /// the input meanwhile).
    Nobody,
}

/// What became of frontend output handed to a backend.
#[derive(Debug)]
pub enum Output {
    /// The backend took this many bytes (they are logged).
    Written(usize),
    /// The bytes were dropped without being written or logged (QEMU's write
    /// returned an error: a socket with no client).
    Discarded(usize),
    /// The write failed; the bytes are dropped.
    Failed(io::Error),
}

/// A kind's run-time side, owned by its chardev actor and polled on its
/// arbiter (it need not be `Send`).
pub trait Backend: 'static {
    /// Poll for input or a change of state. `room` is how many bytes the
    /// frontends can take now; with 0, read nothing, but still report state
    /// changes (a hang-up, a new connection).
    fn poll_input(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<Input>;

    /// Take some of `data` (partial accept).
    fn poll_output(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<Output>;

    /// Finish writing what was taken (before the backend goes or is lent).
    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }

    /// QEMU's `filename` for query-chardev, now.
    fn filename(&self) -> String;

    /// A frontend ioctl (QEMU's `qemu_chr_fe_ioctl`); returns the value read.
    fn ioctl(&mut self, _req: CharIoctl) -> Result<u32, crate::error::Error> {
        Err(crate::error::Error::NotSupported)
    }

    /// The ring, for the kinds that have one (`ringbuf`, `memory`): shared
    /// with the executors, which run `ringbuf-write` and `ringbuf-read` on it
    /// under its lock without a message to this chardev's actor.
    fn ring(&self) -> Option<SharedRing> {
        None
    }

    /// `chardev-change` to a backend that needs what this one holds: give
    /// it up (flush and close an output file, remove a link, leave the
    /// terminal) while staying alive. Polled until ready.
    fn poll_release(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }

    /// The change failed: take back what [`Backend::poll_release`] gave up.
    fn reacquire(&mut self) {}

    /// QMP's `yank`: drop the current connection. False if the kind has
    /// nothing to yank.
    fn yank(&mut self) -> bool {
        false
    }

    /// A frontend attached (kinds that share their input by focus keep
    /// track of their frontends).
    fn attached(&mut self, _port: PortId) {}

    /// A frontend detached.
    fn detached(&mut self, _port: PortId) {}

    /// Whether any frontend is open now (a mux or hub opens its own
    /// ports on the chardevs it uses with the first: QEMU sets their
    /// handlers when a frontend sets the mux's).
    fn frontends_open(&mut self, _any: bool) {}

    /// Input events the input core routed to this chardev's input handler
    /// (its kind's input handler in the registry), then QEMU's sync.
    fn input(&mut self, _events: &[input::InputEvent]) {}

    /// The screen, for the kinds that have one (`vc`).
    fn screen(&self) -> Option<Screen> {
        None
    }

    /// Who gets data and the chardev's own events now.
    fn focus(&self) -> Focus {
        Focus::All
    }

    /// A console's clients (None: the kind is not a console).
    fn clients(&self) -> Option<Vec<ClientInfo>> {
        None
    }

    /// Act on one of a console's clients.
    fn client_op(&mut self, _op: ClientOp) -> Result<(), ClientOpError> {
        Err(ClientOpError::NotConsole)
    }

    /// Take one more client that did not come through the console's own
    /// listener (a web console's); returns its number.
    fn add_client(&mut self, _conn: Connection) -> Result<u64, ClientOpError> {
        Err(ClientOpError::NotConsole)
    }

    /// How many clients a console has now (None: not a console).
    fn client_count(&self) -> Option<usize> {
        None
    }
}

/// One connection, bytes both ways (see [`transport`]): what a
/// [`transport::Transport`] yields and a console serves.
pub trait Link: 'static {
    /// Read some bytes (none filled = end of input).
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut tokio::io::ReadBuf<'_>) -> Poll<io::Result<()>>;

    /// Write some of `data`.
    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>>;

    /// Finish writing.
    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Ready once the peer is gone, found without reading (nothing is read
    /// while no frontend has room, yet a hang-up must still be seen).
    fn poll_hangup(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }

    /// An event found in the byte stream by the last read (a telnet BREAK).
    fn take_event(&mut self) -> Option<Input> {
        None
    }

    /// Whether the link has an input side at all.
    fn has_input(&self) -> bool {
        true
    }

    /// See [`Backend::poll_release`] (an output file is flushed and closed).
    fn poll_release(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }

    /// See [`Backend::reacquire`].
    fn reacquire(&mut self) {}

    /// Cut the connection off (QMP's `yank`); the backend then drops it.
    fn shutdown(&mut self) {}
}

/// A link, and the filename QEMU shows while it is up.
pub struct Connection {
    /// The link.
    pub link: Box<dyn Link>,
    /// `filename` while connected (None: the transport's idle filename).
    pub filename: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("filename", &self.filename).finish()
    }
}

/// A text console's screen (`__org.chardevd_screendump-text`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Screen {
    /// Width in characters.
    pub cols: u16,
    /// Height in characters.
    pub rows: u16,
    /// The rows, top to bottom, without trailing blanks.
    pub lines: Vec<String>,
    /// The cursor's row (from 0).
    pub cursor_row: u16,
    /// The cursor's column (from 0).
    pub cursor_col: u16,
}

/// A ring kind's ring, shared by its backend (frontend output goes in) and
/// the executors (`ringbuf-write`, `ringbuf-read`).
pub type SharedRing = Arc<std::sync::Mutex<dyn RingOps + Send>>;

/// Lock a shared ring (a panic while it was held leaves the bytes usable).
pub fn lock_ring(ring: &SharedRing) -> std::sync::MutexGuard<'_, dyn RingOps + Send + 'static> {
    ring.lock().unwrap_or_else(|p| p.into_inner())
}

/// The operations of a ring kind (`ringbuf-write`, `ringbuf-read`).
pub trait RingOps: std::fmt::Debug {
    /// Append bytes (the oldest are overwritten when full).
    fn write(&mut self, data: &[u8]);
    /// Take up to `n` bytes.
    fn read(&mut self, n: usize) -> Vec<u8>;
    /// Take up to `n` bytes as text, whole characters only.
    fn read_utf8(&mut self, n: usize) -> String;
    /// The number of bytes held.
    fn len(&self) -> usize;
    /// Bytes overwritten before anyone read them, in all.
    fn overwritten(&self) -> u64;
}

/// What query-chardev shows of a live chardev; shared by its actor (which
/// updates it) and the supervisor (which reads it without a message).
#[derive(Debug, Default)]
pub struct Status {
    filename: Mutex<String>,
    frontend_open: AtomicBool,
    traffic: Arc<crate::stats::Traffic>,
    /// The backend is open.
    open: AtomicBool,
    /// A console's clients (-1: not a console).
    clients: AtomicI64,
}

impl Status {
    /// A status with this filename, counting into `traffic` (a changed
    /// chardev's new backend goes on with the old one's counters).
    pub(crate) fn new(filename: String, traffic: Arc<crate::stats::Traffic>) -> Arc<Status> {
        Arc::new(Status {
            filename: Mutex::new(filename),
            frontend_open: AtomicBool::new(false),
            traffic,
            open: AtomicBool::new(false),
            clients: AtomicI64::new(-1),
        })
    }

    /// Record the backend's open state and its console clients (the web
    /// console's list and `/metrics` read them).
    pub(crate) fn set_state(&self, open: bool, clients: Option<usize>) {
        self.open.store(open, Ordering::Relaxed);
        self.clients.store(clients.map_or(-1, |n| n as i64), Ordering::Relaxed);
    }

    /// Whether the backend is open (a client connected, a file open).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub fn backend_open(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// A console's clients now (None: not a console).
    #[cfg_attr(not(feature = "web"), allow(dead_code))]
    pub fn clients(&self) -> Option<u64> {
        u64::try_from(self.clients.load(Ordering::Relaxed)).ok()
    }

    /// The chardev's counters.
    pub(crate) fn traffic(&self) -> &Arc<crate::stats::Traffic> {
        &self.traffic
    }

    /// QEMU's `filename` now.
    pub fn filename(&self) -> String {
        match self.filename.lock() {
            Ok(f) => f.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Set the filename.
    pub fn set_filename(&self, f: String) {
        match self.filename.lock() {
            Ok(mut g) => *g = f,
            Err(p) => *p.into_inner() = f,
        }
    }

    /// `frontend-open`.
    pub fn frontend_open(&self) -> bool {
        self.frontend_open.load(Ordering::Acquire)
    }

    /// Set `frontend-open`.
    pub fn set_frontend_open(&self, open: bool) {
        self.frontend_open.store(open, Ordering::Release);
    }
}

/// One row of `query-chardev`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChardevInfo {
    /// The chardev's id (QEMU calls it the label).
    pub label: String,
    /// Backend description (QEMU's `filename`).
    pub filename: String,
    /// A frontend is attached and open.
    #[serde(rename = "frontend-open")]
    pub frontend_open: bool,
}

/// `ChardevReturn` of chardev-add and chardev-change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ChardevReturn {
    /// The pty path, for pty backends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pty: Option<String>,
}

/// Parity of a serial line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity: the bit makes the count of ones even.
    Even,
    /// Odd parity: the bit makes the count of ones odd.
    Odd,
}

/// Serial line parameters (QEMU's `QEMUSerialSetParams`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialParams {
    /// Bits per second.
    pub speed: u32,
    /// The parity bit.
    pub parity: Parity,
    /// Data bits (5..=8).
    pub data_bits: u8,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
}

/// Frontend ioctls (QEMU's `CHR_IOCTL_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharIoctl {
    /// Set speed, parity, data and stop bits.
    SerialSetParams(SerialParams),
    /// Send a break (true); false does nothing, as in QEMU.
    SerialSetBreak(bool),
    /// Read the modem lines (`TIOCM_*` bits).
    SerialGetTiocm,
    /// Set the modem lines (`TIOCM_*` bits).
    SerialSetTiocm(u32),
    /// Parallel port: read the data register.
    PpReadData,
    /// Parallel port: write the data register.
    PpWriteData(u8),
    /// Parallel port: read the control register.
    PpReadControl,
    /// Parallel port: write the control register.
    PpWriteControl(u8),
    /// Parallel port: read the status register.
    PpReadStatus,
}
