//! Ports: the one attachment between a chardev and whoever uses it (a
//! built-in device, a mux frontend, a QMP monitor, an embedder's device model).
//!
//! A port is a pair of bounded queues shared by its two ends:
//! - **output** (frontend → chardev): [`PortHandle::try_write`] accepts as much as
//!   fits and says how much (partial accept is the backpressure contract,
//!   vm-superio style); [`PortHandle::write`] waits for room. The chardev's driver
//!   takes the queued [`Bytes`] with [`PortEnd::pop_output`].
//! - **input** (chardev → frontend): data and events. The driver reads from
//!   the outside world only as much as [`PortEnd::room`] allows (QEMU's
//!   `can_read`), so a frontend that stops reading stops its backend reading.
//!
//! Data and events are kept apart, so a frontend may read them from two
//! tasks (a byte stream, and an event stream), or in their order from one
//! ([`PortHandle::poll_recv`]). Each event is stamped with the number of data
//! bytes pushed before it, which is how the ordered view puts it in place.
//!
//! Events are state, not a queue of tasks: between two data items the events
//! form one *run* that holds the open state (with a flag for a close and
//! reopen nobody has seen yet), the focus state and a count of pending breaks.
//! At most [`MAX_RUNS`] runs wait; beyond that the two oldest merge (their
//! events then come a little early relative to the data, never lost: every
//! session boundary and every break is still told). However often a backend
//! flaps or a client sends breaks, a frontend that does not read costs a
//! bounded amount of memory.
//!
//! Pure: no actix, no tokio (wakers only), so the data path can cross threads.
//!
//! ```
//! use chardevd::internals::port::{pair, FrontendEvent, PortConfig};
//! let (front, back) = pair(1, PortConfig::default());
//! back.push_open(true);
//! back.push_data(bytes::Bytes::from_static(b"hi"));
//! assert_eq!(front.try_recv(), Some(FrontendEvent::Opened));
//! assert_eq!(front.try_recv(), Some(FrontendEvent::Data(bytes::Bytes::from_static(b"hi"))));
//! assert_eq!(front.try_write(b"typed").unwrap(), 5);
//! let (chunk, mut done) = back.pop_output(1024, std::task::Waker::noop()).unwrap();
//! assert_eq!(chunk, &b"typed"[..]);
//! done.complete(chunk.len()); // the backend took it: a flush() returns now
//! ```
use bytes::Bytes;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// Bytes from the chardev a frontend may leave unread before the chardev stops
/// reading (two reads of the 128 KiB a chardev reads at a time).
pub const INPUT_BYTES: usize = 256 << 10;

/// Bytes a frontend may queue for the chardev before its writes wait.
pub const OUTPUT_BYTES: usize = 256 << 10;

/// What an input item costs beyond its payload, so that a flood of 1-byte
/// items is bounded too.
const ITEM_COST: usize = 64;

/// Runs of events that wait unread before the two oldest merge.
pub const MAX_RUNS: usize = 64;

/// Identifies a port among the ports of one actor system.
pub type PortId = u64;

/// An event of a chardev, as its frontend sees it (QEMU's `QEMUChrEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChardevEvent {
    /// The backend is open (QEMU's `CHR_EVENT_OPENED`): a client connected,
    /// a file opened.
    Opened,
    /// The backend closed (QEMU's `CHR_EVENT_CLOSED`).
    Closed,
    /// A break condition (QEMU's `CHR_EVENT_BREAK`).
    Break,
    /// This frontend took the focus of its mux (`CHR_EVENT_MUX_IN`).
    MuxIn,
    /// This frontend lost the focus of its mux (`CHR_EVENT_MUX_OUT`).
    MuxOut,
}

impl From<ChardevEvent> for FrontendEvent {
    fn from(e: ChardevEvent) -> FrontendEvent {
        match e {
            ChardevEvent::Opened => FrontendEvent::Opened,
            ChardevEvent::Closed => FrontendEvent::Closed,
            ChardevEvent::Break => FrontendEvent::Break,
            ChardevEvent::MuxIn => FrontendEvent::MuxIn,
            ChardevEvent::MuxOut => FrontendEvent::MuxOut,
        }
    }
}

/// What a frontend receives, data and events in their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendEvent {
    /// Bytes from the outside world (QEMU's `chr_read`).
    Data(Bytes),
    /// The backend is open (QEMU's `CHR_EVENT_OPENED`).
    Opened,
    /// The backend closed (QEMU's `CHR_EVENT_CLOSED`).
    Closed,
    /// A break condition (QEMU's `CHR_EVENT_BREAK`).
    Break,
    /// This frontend took the focus of its mux (`CHR_EVENT_MUX_IN`).
    MuxIn,
    /// This frontend lost the focus of its mux (`CHR_EVENT_MUX_OUT`).
    MuxOut,
}

/// What happens to input when a frontend's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The chardev stops reading until the frontend catches up (QEMU's rule:
    /// nothing is lost).
    #[default]
    Stall,
    /// The data that does not fit is dropped and counted ([`PortHandle::lost`]), so
    /// a stopped frontend stalls nobody (for fan-out clients).
    Drop,
}

/// The bounds of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    /// Input bytes it may leave unread before the chardev stops reading
    /// (default [`INPUT_BYTES`]).
    pub input_bytes: usize,
    /// Output bytes it may queue before its writes wait (default
    /// [`OUTPUT_BYTES`]).
    pub output_bytes: usize,
    /// What happens to input beyond that (default: the chardev stops
    /// reading, QEMU's rule).
    pub overflow: Overflow,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            input_bytes: INPUT_BYTES,
            output_bytes: OUTPUT_BYTES,
            overflow: Overflow::Stall,
        }
    }
}

/// The port is detached: its chardev let it go, or the frontend dropped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detached;

/// A state that a run of events carries from its start to its end.
#[derive(Debug, Clone, Copy)]
struct Flip {
    start: bool,
    end: bool,
    /// It changed at least once within the run.
    moved: bool,
}

impl Flip {
    fn new(state: bool) -> Flip {
        Flip {
            start: state,
            end: state,
            moved: false,
        }
    }

    fn set(&mut self, state: bool) {
        if state != self.end {
            self.end = state;
            self.moved = true;
        }
    }

    /// `self`, then `later`.
    fn then(self, later: Flip) -> Flip {
        Flip {
            start: self.start,
            end: later.end,
            moved: self.moved || later.moved,
        }
    }
}

/// The events between two data items.
#[derive(Debug, Clone, Copy)]
struct Run {
    open: Flip,
    focus: Flip,
    breaks: u32,
}

impl Run {
    fn new(open: bool, focus: bool) -> Run {
        Run {
            open: Flip::new(open),
            focus: Flip::new(focus),
            breaks: 0,
        }
    }

    /// The next event a frontend sees of this run, taken out of it (`None`
    /// once it is told).
    fn next(&mut self) -> Option<ChardevEvent> {
        let o = &mut self.open;
        if o.start != o.end {
            o.start = o.end;
            o.moved = false;
            return Some(if o.end {
                ChardevEvent::Opened
            } else {
                ChardevEvent::Closed
            });
        }
        if o.moved && o.start {
            // Closed and opened again while nobody looked: a new session
            // (CLOSED now, OPENED next).
            o.start = false;
            o.moved = false;
            return Some(ChardevEvent::Closed);
        }
        // (Opened and closed again while nobody looked: a session with no
        // data that nobody saw; nothing to tell.)
        o.moved = false;
        let f = &mut self.focus;
        if f.start != f.end {
            f.start = f.end;
            f.moved = false;
            return Some(if f.end {
                ChardevEvent::MuxIn
            } else {
                ChardevEvent::MuxOut
            });
        }
        f.moved = false;
        if self.breaks > 0 {
            self.breaks -= 1;
            return Some(ChardevEvent::Break);
        }
        None
    }

    /// `self`, then `later`, as one run.
    fn then(self, later: Run) -> Run {
        Run {
            open: self.open.then(later.open),
            focus: self.focus.then(later.focus),
            breaks: self.breaks.saturating_add(later.breaks),
        }
    }
}

/// A run, and how many data bytes were pushed before it.
#[derive(Debug, Clone, Copy)]
struct Stamped {
    at: u64,
    run: Run,
}

#[derive(Debug)]
struct Inner {
    config: PortConfig,
    // chardev -> frontend
    data: VecDeque<Bytes>,
    runs: VecDeque<Stamped>,
    input_cost: usize,
    /// Data bytes pushed, and taken by the frontend (whole items), in all.
    pushed: u64,
    taken: u64,
    /// The open and focus states as of the last pushed item.
    open: bool,
    focus: bool,
    lost: u64,
    /// The frontend waits for data (or for data and events in order).
    reader: Option<Waker>,
    /// The frontend waits for events.
    watcher: Option<Waker>,
    /// The driver found too little room and waits for the frontend to read.
    driver_wants_room: bool,
    // frontend -> chardev
    output: VecDeque<Bytes>,
    output_len: usize,
    /// Bytes ever queued by the frontend, and bytes the chardev finished with.
    written: u64,
    completed: u64,
    writer: Option<Waker>,
    flusher: Option<Waker>,
    /// The driver found no output and waits for the frontend to write.
    driver_wants_output: bool,
    driver: Option<Waker>,
    // lifecycle
    detached: bool,
    /// The chardev reads no more (the system is stopping): the frontend
    /// reads what is queued, then the end; its writes still go.
    input_ended: bool,
    dropped: bool,
    /// The frontend is open (QEMU's `fe_open`: `frontend-open`).
    fe_open: bool,
    /// `fe_open` changed since the driver last looked.
    fe_open_changed: bool,
}

impl Inner {
    fn low_water(&self) -> usize {
        (self.config.input_bytes / 4).max(1)
    }

    fn room(&self) -> usize {
        self.config.input_bytes.saturating_sub(self.input_cost)
    }

    fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    fn wake_watcher(&mut self) {
        if let Some(w) = self.watcher.take() {
            w.wake();
        }
    }

    fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    fn wake_driver(&mut self) {
        if let Some(w) = &self.driver {
            w.wake_by_ref();
        }
    }

    /// The run events pushed now belong to (a new one after data).
    fn tail_run(&mut self) -> &mut Run {
        if self.runs.back().is_none_or(|r| r.at != self.pushed) {
            self.runs.push_back(Stamped {
                at: self.pushed,
                run: Run::new(self.open, self.focus),
            });
            self.input_cost += ITEM_COST;
            if self.runs.len() > MAX_RUNS {
                // Nobody reads the events: the two oldest runs become one.
                if let (Some(a), Some(b)) = (self.runs.pop_front(), self.runs.pop_front()) {
                    self.runs.push_front(Stamped {
                        at: a.at,
                        run: a.run.then(b.run),
                    });
                    self.input_cost = self.input_cost.saturating_sub(ITEM_COST);
                }
            }
        }
        match self.runs.back_mut() {
            Some(r) => &mut r.run,
            None => unreachable!("a run was just pushed"),
        }
    }

    /// The next event, whatever data is before it.
    fn pop_event(&mut self) -> Option<ChardevEvent> {
        self.pop_event_upto(u64::MAX)
    }

    /// The next event of the runs pushed with at most `limit` data bytes
    /// before them.
    fn pop_event_upto(&mut self, limit: u64) -> Option<ChardevEvent> {
        while let Some(head) = self.runs.front_mut().filter(|r| r.at <= limit) {
            if let Some(ev) = head.run.next() {
                if ev == ChardevEvent::Break {
                    // A break cost input budget while it waited.
                    let was_low = self.room() < self.low_water();
                    self.input_cost = self.input_cost.saturating_sub(ITEM_COST);
                    self.after_pop(was_low);
                }
                return Some(ev);
            }
            let was_low = self.room() < self.low_water();
            self.runs.pop_front();
            self.input_cost = self.input_cost.saturating_sub(ITEM_COST);
            self.after_pop(was_low);
        }
        None
    }

    /// The next data item, whatever events are before it.
    fn pop_data(&mut self) -> Option<Bytes> {
        let b = self.data.pop_front()?;
        let was_low = self.room() < self.low_water();
        self.input_cost = self.input_cost.saturating_sub(b.len() + ITEM_COST);
        self.taken += b.len() as u64;
        self.after_pop(was_low);
        Some(b)
    }

    /// The next data item or event, in the order they were pushed.
    fn pop_ordered(&mut self) -> Option<FrontendEvent> {
        if let Some(ev) = self.pop_event_upto(self.taken) {
            return Some(ev.into());
        }
        if let Some(b) = self.pop_data() {
            return Some(FrontendEvent::Data(b));
        }
        self.pop_event().map(FrontendEvent::from)
    }

    fn after_pop(&mut self, was_low: bool) {
        let empty = self.data.is_empty() && self.runs.is_empty();
        if self.driver_wants_room && (was_low || empty) && self.room() >= self.low_water() {
            self.driver_wants_room = false;
            self.wake_driver();
        }
    }
}

#[derive(Debug)]
struct Shared {
    id: PortId,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain data behind: go on.
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// Make a port: the frontend's end and the chardev's end.
pub fn pair(id: PortId, config: PortConfig) -> (Port, PortEnd) {
    let shared = Arc::new(Shared {
        id,
        inner: Mutex::new(Inner {
            config,
            data: VecDeque::new(),
            runs: VecDeque::new(),
            input_cost: 0,
            pushed: 0,
            taken: 0,
            open: false,
            focus: false,
            lost: 0,
            reader: None,
            watcher: None,
            driver_wants_room: false,
            output: VecDeque::new(),
            output_len: 0,
            written: 0,
            completed: 0,
            writer: None,
            flusher: None,
            driver_wants_output: false,
            driver: None,
            detached: false,
            input_ended: false,
            dropped: false,
            fe_open: false,
            fe_open_changed: false,
        }),
    });
    (
        Port {
            handle: PortHandle { shared: shared.clone() },
        },
        PortEnd { shared },
    )
}

/// The frontend's end of a port. Dropping it detaches the frontend's side:
/// the chardev sees it gone and forgets the port. It dereferences to a
/// [`PortHandle`], which has the operations.
#[derive(Debug)]
pub struct Port {
    handle: PortHandle,
}

impl std::ops::Deref for Port {
    type Target = PortHandle;

    fn deref(&self) -> &PortHandle {
        &self.handle
    }
}

/// The operations of a port's frontend end.
#[derive(Debug, Clone)]
pub struct PortHandle {
    shared: Arc<Shared>,
}

impl PortHandle {
    /// The next data item or event (in their order) if one is queued.
    pub fn try_recv(&self) -> Option<FrontendEvent> {
        self.shared.lock().pop_ordered()
    }

    /// Poll for the next data item or event, in their order; `Ready(None)`
    /// once the chardev let the port go and everything queued was read.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<FrontendEvent>> {
        let mut g = self.shared.lock();
        if let Some(ev) = g.pop_ordered() {
            return Poll::Ready(Some(ev));
        }
        if g.detached || g.input_ended {
            return Poll::Ready(None);
        }
        Self::wait(&mut g.reader, cx);
        Poll::Pending
    }

    /// Poll for the next data item (events stay for [`PortHandle::poll_event`]);
    /// `Ready(None)` once the chardev let the port go and all data was read.
    pub fn poll_data(&self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let mut g = self.shared.lock();
        if let Some(b) = g.pop_data() {
            return Poll::Ready(Some(b));
        }
        if g.detached || g.input_ended {
            return Poll::Ready(None);
        }
        Self::wait(&mut g.reader, cx);
        Poll::Pending
    }

    /// Poll for the next event (data stays for [`PortHandle::poll_data`]);
    /// `Ready(None)` once the chardev let the port go and every event was read.
    pub fn poll_event(&self, cx: &mut Context<'_>) -> Poll<Option<ChardevEvent>> {
        let mut g = self.shared.lock();
        if let Some(ev) = g.pop_event() {
            return Poll::Ready(Some(ev));
        }
        if g.detached || g.input_ended {
            return Poll::Ready(None);
        }
        Self::wait(&mut g.watcher, cx);
        Poll::Pending
    }

    fn wait(slot: &mut Option<Waker>, cx: &Context<'_>) {
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
    }

    /// Queue as much of `data` as fits; returns how many bytes were taken
    /// (0 when the queue is full).
    pub fn try_write(&self, data: &[u8]) -> Result<usize, Detached> {
        let mut g = self.shared.lock();
        if g.detached {
            return Err(Detached);
        }
        let n = g.config.output_bytes.saturating_sub(g.output_len).min(data.len());
        if n > 0 {
            g.output.push_back(Bytes::copy_from_slice(&data[..n]));
            g.output_len += n;
            g.written += n as u64;
            Self::output_ready(&mut g);
        }
        Ok(n)
    }

    fn output_ready(g: &mut Inner) {
        if g.driver_wants_output {
            g.driver_wants_output = false;
            g.wake_driver();
        }
    }

    /// Queue a prefix of `data` (taken out of it, without copying) once there
    /// is room; returns how many bytes were taken.
    pub fn poll_write(&self, cx: &mut Context<'_>, data: &mut Bytes) -> Poll<Result<usize, Detached>> {
        let mut g = self.shared.lock();
        if g.detached {
            return Poll::Ready(Err(Detached));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let room = g.config.output_bytes.saturating_sub(g.output_len);
        if room == 0 {
            if !g.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                g.writer = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        let chunk = if data.len() <= room {
            std::mem::take(data)
        } else {
            data.split_to(room)
        };
        let n = chunk.len();
        g.output.push_back(chunk);
        g.output_len += n;
        g.written += n as u64;
        Self::output_ready(&mut g);
        Poll::Ready(Ok(n))
    }

    /// Ready once the chardev has finished with every byte written so far
    /// (handed it to its backend, or dropped it as its kind does while
    /// disconnected). `Err` once the port is detached.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<Result<(), Detached>> {
        let mut g = self.shared.lock();
        if g.completed >= g.written {
            return Poll::Ready(Ok(()));
        }
        if g.detached {
            return Poll::Ready(Err(Detached));
        }
        if !g.flusher.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            g.flusher = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Wait until the chardev has finished with every byte written so far.
    pub async fn flush(&self) -> Result<(), Detached> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Queue all of `data`, waiting for room as needed; returns its length.
    pub async fn write(&self, mut data: Bytes) -> Result<usize, Detached> {
        let len = data.len();
        while !data.is_empty() {
            poll_fn(|cx| self.poll_write(cx, &mut data)).await?;
        }
        Ok(len)
    }

    /// Ready with the room for output once there is some (registering the
    /// waker while the queue is full).
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Result<usize, Detached>> {
        let mut g = self.shared.lock();
        if g.detached {
            return Poll::Ready(Err(Detached));
        }
        let room = g.config.output_bytes.saturating_sub(g.output_len);
        if room == 0 {
            if !g.writer.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                g.writer = Some(cx.waker().clone());
            }
            return Poll::Pending;
        }
        Poll::Ready(Ok(room))
    }

    /// Bytes that can be queued now without waiting.
    #[cfg(test)]
    pub fn output_room(&self) -> usize {
        let g = self.shared.lock();
        g.config.output_bytes.saturating_sub(g.output_len)
    }

    /// Bytes of input dropped because this port's queue was full
    /// ([`Overflow::Drop`] only).
    pub fn lost(&self) -> u64 {
        self.shared.lock().lost
    }

    /// Open or close the frontend's side (QEMU's `qemu_chr_fe_set_open`):
    /// the chardev's `frontend-open` follows.
    pub fn set_frontend_open(&self, open: bool) {
        let mut g = self.shared.lock();
        if g.fe_open != open {
            g.fe_open = open;
            g.fe_open_changed = true;
            g.wake_driver();
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        let mut g = self.handle.shared.lock();
        g.dropped = true;
        g.wake_driver();
    }
}

/// The chardev's end of a port (held by the chardev actor's driver).
#[derive(Debug)]
pub struct PortEnd {
    shared: Arc<Shared>,
}

impl PortEnd {
    /// The port's id.
    pub fn id(&self) -> PortId {
        self.shared.id
    }

    /// How many input bytes the frontend can take now. A stalling port with
    /// less than a quarter of its queue free reports 0 and asks to be woken
    /// (`waker`) when the frontend has read enough; a dropping port never
    /// holds the chardev back.
    pub fn room(&self, waker: &Waker) -> usize {
        let mut g = self.shared.lock();
        if g.config.overflow == Overflow::Drop {
            return usize::MAX;
        }
        let room = g.room();
        if room < g.low_water() {
            g.driver_wants_room = true;
            Self::set_driver(&mut g, waker);
            return 0;
        }
        room
    }

    fn set_driver(g: &mut Inner, waker: &Waker) {
        if !g.driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
            g.driver = Some(waker.clone());
        }
    }

    /// Hand bytes to the frontend. A dropping port drops what does not fit
    /// and counts it; returns the bytes it dropped so (0 when they were
    /// queued, or the frontend is gone).
    pub fn push_data(&self, data: Bytes) -> usize {
        let mut g = self.shared.lock();
        if g.dropped || g.detached {
            return 0;
        }
        if g.config.overflow == Overflow::Drop && data.len() + ITEM_COST > g.room() {
            g.lost += data.len() as u64;
            return data.len();
        }
        g.input_cost += data.len() + ITEM_COST;
        g.pushed += data.len() as u64;
        g.data.push_back(data);
        g.wake_reader();
        0
    }

    /// The backend opened (true) or closed (false). Telling the state the
    /// frontend already has is a no-op.
    pub fn push_open(&self, open: bool) {
        let mut g = self.shared.lock();
        if g.open == open || g.detached {
            return;
        }
        g.tail_run().open.set(open);
        g.open = open;
        g.wake_reader();
        g.wake_watcher();
    }

    /// The frontend gained (true) or lost (false) its mux's focus.
    pub fn push_focus(&self, focused: bool) {
        let mut g = self.shared.lock();
        if g.focus == focused || g.detached {
            return;
        }
        g.tail_run().focus.set(focused);
        g.focus = focused;
        g.wake_reader();
        g.wake_watcher();
    }

    /// A break.
    pub fn push_break(&self) {
        let mut g = self.shared.lock();
        if g.detached {
            return;
        }
        let run = g.tail_run();
        run.breaks = run.breaks.saturating_add(1);
        // A break costs input budget as a data item does, so a flood of
        // them (telnet's IAC BREAK, a mux's C-a b) stops the chardev
        // reading while the frontend does not take them.
        g.input_cost += ITEM_COST;
        g.wake_reader();
        g.wake_watcher();
    }

    /// Whether the frontend is open (`frontend-open`).
    pub fn frontend_open(&self) -> bool {
        self.shared.lock().fe_open
    }

    /// Set the frontend's open state from the chardev's side (a device's
    /// `__org.chardevd_port-set-open`, the open state given at attach).
    pub fn set_frontend_open(&self, open: bool) {
        let mut g = self.shared.lock();
        g.fe_open = open;
        g.fe_open_changed = false;
    }

    /// True once if the frontend opened or closed its side since the last call.
    pub fn take_open_change(&self) -> bool {
        std::mem::take(&mut self.shared.lock().fe_open_changed)
    }

    /// The open state the frontend has been told (or will be, once it reads).
    pub fn told_open(&self) -> bool {
        self.shared.lock().open
    }

    /// Take the next queued output chunk, at most `max` bytes, with the
    /// [`Completion`] to report what became of it. `None` (and `waker`
    /// registered) when there is none.
    pub fn pop_output(&self, max: usize, waker: &Waker) -> Option<(Bytes, Completion)> {
        let mut g = self.shared.lock();
        let Some(front) = g.output.front_mut() else {
            g.driver_wants_output = true;
            Self::set_driver(&mut g, waker);
            return None;
        };
        let chunk = if front.len() <= max {
            g.output.pop_front().unwrap_or_default()
        } else {
            front.split_to(max)
        };
        g.output_len -= chunk.len();
        if g.output_len <= g.config.output_bytes / 2 {
            g.wake_writer();
        }
        let left = chunk.len();
        Some((
            chunk,
            Completion {
                shared: self.shared.clone(),
                left,
            },
        ))
    }

    /// Bytes the frontend has queued so far, in all (a mark to drain up to).
    pub fn written(&self) -> u64 {
        self.shared.lock().written
    }

    /// Whether the chardev has finished with everything up to `mark`.
    pub fn completed_to(&self, mark: u64) -> bool {
        self.shared.lock().completed >= mark
    }

    /// Bytes of output queued and not yet taken.
    pub fn queued_output(&self) -> usize {
        self.shared.lock().output_len
    }

    /// True when output is queued.
    pub fn has_output(&self) -> bool {
        !self.shared.lock().output.is_empty()
    }

    /// True once the frontend dropped its end.
    pub fn is_dropped(&self) -> bool {
        self.shared.lock().dropped
    }

    /// The chardev reads nothing more (the system is stopping): the
    /// frontend reads what is queued, then `None`; its writes still go.
    pub fn end_input(&self) {
        let mut g = self.shared.lock();
        g.input_ended = true;
        g.wake_reader();
        g.wake_watcher();
    }

    /// Let the port go: the frontend reads what is queued, then `None`; its
    /// writes fail.
    pub fn detach(&self) {
        let mut g = self.shared.lock();
        g.detached = true;
        g.wake_reader();
        g.wake_watcher();
        g.wake_writer();
    }
}

/// What the chardev owes a port for a chunk it took: it reports the bytes
/// it finished with (written, or dropped); whatever is left when it is
/// dropped counts as finished (the chunk is gone).
#[derive(Debug)]
pub struct Completion {
    shared: Arc<Shared>,
    left: usize,
}

impl Completion {
    /// `n` more bytes of the chunk are done with.
    pub fn complete(&mut self, n: usize) {
        let n = n.min(self.left);
        if n == 0 {
            return;
        }
        self.left -= n;
        let mut g = self.shared.lock();
        g.completed += n as u64;
        if g.completed >= g.written {
            if let Some(w) = g.flusher.take() {
                w.wake();
            }
        }
        if g.driver_wants_output {
            // A drain may be waiting on this.
            g.wake_driver();
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        let left = self.left;
        self.complete(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count::default());
        (c.clone(), Waker::from(c))
    }

    fn drain(p: &Port) -> Vec<FrontendEvent> {
        std::iter::from_fn(|| p.try_recv()).collect()
    }

    fn small() -> PortConfig {
        PortConfig {
            input_bytes: 1024,
            output_bytes: 100,
            overflow: Overflow::Stall,
        }
    }

    #[test]
    fn writes_are_accepted_partially_up_to_the_bound() {
        let (front, back) = pair(1, small());
        assert_eq!(front.try_write(&[1; 70]).unwrap(), 70);
        assert_eq!(front.try_write(&[2; 70]).unwrap(), 30, "only what fits");
        assert_eq!(front.try_write(&[3; 1]).unwrap(), 0, "full");
        let (_, w) = waker();
        assert_eq!(
            back.pop_output(50, &w).unwrap().0.len(),
            50,
            "chunks are split to the reader's size"
        );
        assert_eq!(front.output_room(), 50);
        assert_eq!(back.pop_output(1000, &w).unwrap().0.len(), 20);
        assert_eq!(back.pop_output(1000, &w).unwrap().0.len(), 30);
        assert!(back.pop_output(1000, &w).is_none());
    }

    #[test]
    fn flush_waits_for_the_chardev_to_finish_with_every_byte() {
        let (front, back) = pair(1, small());
        let (_, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert_eq!(front.poll_flush(&mut cx), Poll::Ready(Ok(())));
        front.try_write(b"abcdef").unwrap();
        assert_eq!(front.poll_flush(&mut cx), Poll::Pending);
        let mark = back.written();
        let (chunk, mut done) = back.pop_output(4, &w).unwrap();
        done.complete(chunk.len());
        assert!(!back.completed_to(mark));
        let (_, done) = back.pop_output(4, &w).unwrap();
        drop(done);
        assert!(back.completed_to(mark), "a dropped chunk is finished with");
        assert_eq!(front.poll_flush(&mut cx), Poll::Ready(Ok(())));
    }

    #[test]
    fn a_frontend_that_does_not_read_stops_the_chardev_reading() {
        let (front, back) = pair(1, small());
        let (count, w) = waker();
        assert_eq!(back.room(&w), 1024);
        back.push_data(Bytes::from(vec![0; 800]));
        assert_eq!(back.room(&w), 0, "below the low-water mark the chardev must stall");
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert!(matches!(front.try_recv(), Some(FrontendEvent::Data(b)) if b.len() == 800));
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "reading frees room and wakes the driver"
        );
        assert_eq!(back.room(&w), 1024);
    }

    #[test]
    fn events_are_state_with_bounded_memory() {
        let (front, back) = pair(1, small());
        for _ in 0..10_000 {
            back.push_open(true);
            back.push_open(false);
            back.push_break();
        }
        assert_eq!(back.shared.lock().runs.len(), 1, "one run however many events");
        let evs = drain(&front);
        assert_eq!(evs.len(), 10_000, "every break is counted: {:?}", &evs[..2]);
        assert!(
            evs.iter().all(|e| *e == FrontendEvent::Break),
            "an unseen open-close pair is nothing"
        );
    }

    #[test]
    fn a_reopen_nobody_saw_is_still_a_new_session() {
        let (front, back) = pair(1, small());
        back.push_open(true);
        assert_eq!(drain(&front), vec![FrontendEvent::Opened]);
        back.push_open(false);
        back.push_open(true);
        back.push_open(true);
        assert_eq!(drain(&front), vec![FrontendEvent::Closed, FrontendEvent::Opened]);
        back.push_open(true);
        assert_eq!(drain(&front), vec![], "the same state again is no event");
    }

    #[test]
    fn data_and_events_keep_their_order() {
        let (front, back) = pair(1, small());
        back.push_open(true);
        back.push_data(Bytes::from_static(b"x"));
        back.push_open(false);
        assert_eq!(
            drain(&front),
            vec![
                FrontendEvent::Opened,
                FrontendEvent::Data(Bytes::from_static(b"x")),
                FrontendEvent::Closed
            ]
        );
    }

    fn poll<T>(f: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Option<T> {
        let mut cx = Context::from_waker(Waker::noop());
        match f(&mut cx) {
            Poll::Ready(t) => Some(t),
            Poll::Pending => None,
        }
    }

    #[test]
    fn data_and_events_are_read_apart_and_neither_waits_for_the_other() {
        let (front, back) = pair(1, small());
        back.push_open(true);
        back.push_data(Bytes::from_static(b"a"));
        back.push_break();
        back.push_data(Bytes::from_static(b"b"));
        assert_eq!(poll(|cx| front.poll_data(cx)), Some(Some(Bytes::from_static(b"a"))));
        assert_eq!(poll(|cx| front.poll_data(cx)), Some(Some(Bytes::from_static(b"b"))));
        assert_eq!(poll(|cx| front.poll_data(cx)), None, "no more data: pending");
        assert_eq!(poll(|cx| front.poll_event(cx)), Some(Some(ChardevEvent::Opened)));
        assert_eq!(poll(|cx| front.poll_event(cx)), Some(Some(ChardevEvent::Break)));
        assert_eq!(poll(|cx| front.poll_event(cx)), None);
        back.detach();
        assert_eq!(poll(|cx| front.poll_data(cx)), Some(None));
        assert_eq!(poll(|cx| front.poll_event(cx)), Some(None));
    }

    #[test]
    fn events_nobody_reads_merge_into_a_bounded_number_of_runs_and_none_is_lost() {
        let (front, back) = pair(
            1,
            PortConfig {
                input_bytes: 1 << 20,
                ..small()
            },
        );
        back.push_open(true);
        for _ in 0..10_000 {
            back.push_data(Bytes::from_static(b"x"));
            back.push_break();
            assert!(poll(|cx| front.poll_data(cx)).is_some());
        }
        assert!(back.shared.lock().runs.len() <= MAX_RUNS);
        let cost = back.shared.lock().input_cost;
        assert!(
            cost <= (MAX_RUNS + 10_000) * ITEM_COST,
            "the runs' cost is bounded, the breaks' charged: {cost}"
        );
        let evs: Vec<_> = std::iter::from_fn(|| poll(|cx| front.poll_event(cx)).flatten()).collect();
        assert_eq!(evs[0], ChardevEvent::Opened);
        assert_eq!(evs.iter().filter(|e| **e == ChardevEvent::Break).count(), 10_000);
    }

    #[test]
    fn breaks_cost_input_budget_until_they_are_read() {
        let (front, back) = pair(1, small());
        let (count, w) = waker();
        let mut pushed = 0;
        while back.room(&w) > 0 {
            back.push_break();
            pushed += 1;
            assert!(pushed < 1000, "breaks must fill the budget");
        }
        // 1024 bytes of budget: the run (64) and 12 breaks (64 each) leave
        // less than the low-water quarter.
        assert_eq!(pushed, 12);
        let evs: Vec<_> = std::iter::from_fn(|| poll(|cx| front.poll_event(cx)).flatten()).collect();
        assert_eq!(evs.len(), pushed, "every break is told");
        assert!(count.0.load(Ordering::SeqCst) > 0, "reading them woke the chardev");
        assert_eq!(back.room(&w), small().input_bytes);
    }

    #[test]
    fn the_ordered_view_puts_each_event_between_the_data_it_came_between() {
        let (front, back) = pair(1, small());
        back.push_data(Bytes::from_static(b"1"));
        back.push_open(true);
        back.push_open(false);
        back.push_open(true);
        back.push_data(Bytes::from_static(b"2"));
        back.push_focus(true);
        assert_eq!(
            drain(&front),
            vec![
                FrontendEvent::Data(Bytes::from_static(b"1")),
                FrontendEvent::Opened,
                FrontendEvent::Data(Bytes::from_static(b"2")),
                FrontendEvent::MuxIn,
            ],
            "an open-close-open nobody saw between two data items is one OPENED"
        );
    }

    #[test]
    fn a_dropping_port_never_stalls_and_counts_its_losses() {
        let (front, back) = pair(
            1,
            PortConfig {
                overflow: Overflow::Drop,
                ..small()
            },
        );
        let (_, w) = waker();
        for _ in 0..10 {
            assert_eq!(back.room(&w), usize::MAX);
            back.push_data(Bytes::from(vec![0; 300]));
        }
        assert_eq!(front.lost(), 8 * 300, "what did not fit was dropped");
        assert_eq!(drain(&front).len(), 2, "what fit is kept");
    }

    #[test]
    fn detaching_ends_the_stream_after_what_is_queued() {
        let (front, back) = pair(1, small());
        back.push_data(Bytes::from_static(b"last"));
        back.detach();
        assert!(front.try_write(b"x").is_err());
        let (_, w) = waker();
        let mut cx = Context::from_waker(&w);
        assert!(matches!(
            front.poll_recv(&mut cx),
            Poll::Ready(Some(FrontendEvent::Data(_)))
        ));
        assert_eq!(front.poll_recv(&mut cx), Poll::Ready(None));
    }

    #[test]
    fn writing_wakes_a_driver_waiting_for_output_and_dropping_wakes_it_too() {
        let (front, back) = pair(1, small());
        let (count, w) = waker();
        assert!(back.pop_output(10, &w).is_none());
        front.try_write(b"a").unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        drop(front);
        assert!(back.is_dropped());
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }

    proptest::proptest! {
        #[test]
        fn input_bytes_arrive_whole_and_in_order(chunks in proptest::collection::vec(proptest::collection::vec(0u8..=255, 1..300), 0..30)) {
            let (front, back) = pair(1, PortConfig { input_bytes: 4096, ..small() });
            let (_, w) = waker();
            let mut sent = Vec::new();
            let mut got = Vec::new();
            for c in &chunks {
                while back.room(&w) < c.len() + ITEM_COST {
                    match front.try_recv() {
                        Some(FrontendEvent::Data(b)) => got.extend_from_slice(&b),
                        Some(_) => {}
                        None => break,
                    }
                }
                back.push_data(Bytes::from(c.clone()));
                sent.extend_from_slice(c);
            }
            while let Some(ev) = front.try_recv() {
                if let FrontendEvent::Data(b) = ev { got.extend_from_slice(&b); }
            }
            proptest::prop_assert_eq!(got, sent);
        }
    }
}
