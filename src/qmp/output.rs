//! A QMP session's output: one queue, bounded in bytes, shared by the
//! session (replies), the event bus (events, from another thread) and the
//! writer task that drains it into the socket.
//!
//! - Messages are queued in the order they happen, so an event raised while
//!   a command runs goes out before the command's reply, as in QEMU.
//! - Small messages are coalesced into one write; large ones are queued as
//!   they are, without a copy.
//! - The session stops reading its input while its queue holds
//!   [`SessionLimits::output_bytes`] or more (backpressure: a pipelining
//!   client is slowed, never dropped), or while all sessions together hold
//!   more than the global [`Budget`].
//! - A client is disconnected only when a write makes no progress for
//!   [`SessionLimits::stall_timeout`], or when more than
//!   [`SessionLimits::event_queue`] events wait unwritten.
//!
//! [`SessionLimits::output_bytes`]: super::session::SessionLimits::output_bytes
//! [`SessionLimits::stall_timeout`]: super::session::SessionLimits::stall_timeout
//! [`SessionLimits::event_queue`]: super::session::SessionLimits::event_queue
use crate::registry::Delivery;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Messages up to this size are copied into the current batch.
const COALESCE: usize = 16 << 10;

/// A batch is written once it reaches this size.
const BATCH: usize = 64 << 10;

/// The output all sessions of a system may hold together.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
    freed: Notify,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            limit: limit.max(1),
            freed: Notify::new(),
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    fn give(&self, n: usize) {
        let before = self.used.fetch_sub(n, Ordering::Relaxed);
        if before >= self.limit && before - n < self.limit {
            self.freed.notify_waiters();
        }
    }

    fn full(&self) -> bool {
        self.used() >= self.limit
    }

    async fn below_limit(&self) {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if !self.full() {
                return;
            }
            freed.await;
        }
    }
}

#[derive(Debug, Default)]
struct State {
    chunks: VecDeque<Bytes>,
    batch: BytesMut,
    queued: usize,
    pushed: u64,
    written: u64,
    /// Where each queued event ends (to count the events still unwritten).
    event_ends: VecDeque<u64>,
    closing: bool,
    kicked: bool,
    /// Kicked for not reading (events piling up, a stalled write).
    cut_off: bool,
}

/// One session's output queue.
#[derive(Debug)]
pub struct Output {
    state: Mutex<State>,
    data: Notify,
    room: Notify,
    budget: usize,
    event_limit: usize,
    global: Arc<Budget>,
}

impl Output {
    /// A queue holding up to `budget` bytes before the session stops
    /// reading, and `event_limit` unwritten events before it is cut off.
    pub fn new(budget: usize, event_limit: usize, global: Arc<Budget>) -> Arc<Output> {
        Arc::new(Output {
            state: Mutex::new(State::default()),
            data: Notify::new(),
            room: Notify::new(),
            budget: budget.max(1),
            event_limit: event_limit.max(1),
            global,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn push_locked(&self, s: &mut State, b: Bytes) {
        let n = b.len();
        if n <= COALESCE {
            s.batch.extend_from_slice(&b);
            if s.batch.len() >= BATCH {
                let batch = s.batch.split().freeze();
                s.chunks.push_back(batch);
            }
        } else {
            if !s.batch.is_empty() {
                let batch = s.batch.split().freeze();
                s.chunks.push_back(batch);
            }
            s.chunks.push_back(b);
        }
        s.queued += n;
        s.pushed += n as u64;
        self.global.take(n);
        self.data.notify_one();
    }

    /// Queue a reply (or the greeting). Never refused: the session waits
    /// for [`Output::room`] before it reads the next command.
    pub fn push(&self, b: Bytes) {
        let mut s = self.lock();
        if s.kicked {
            return;
        }
        self.push_locked(&mut s, b);
    }

    /// Queue an event; `Full` once too many events wait unwritten (the
    /// client is then cut off).
    pub fn push_event(&self, b: &Bytes) -> Delivery {
        let mut s = self.lock();
        if s.kicked || s.closing {
            return Delivery::Closed;
        }
        if s.event_ends.len() >= self.event_limit {
            drop(s);
            tracing::warn!("disconnecting a QMP client that does not read its events");
            self.cut_off();
            return Delivery::Full;
        }
        self.push_locked(&mut s, b.clone());
        let end = s.pushed;
        s.event_ends.push_back(end);
        Delivery::Queued
    }

    /// Events queued and not yet written.
    pub fn events_waiting(&self) -> usize {
        self.lock().event_ends.len()
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.lock().queued
    }

    /// Whether the session may read its next command.
    pub fn has_room(&self) -> bool {
        self.queued() < self.budget && !self.global.full()
    }

    /// Wait until the session may read its next command.
    pub async fn room(&self) {
        loop {
            if self.lock().kicked {
                return;
            }
            if self.queued() >= self.budget {
                self.room.notified().await;
                continue;
            }
            if self.global.full() {
                self.global.below_limit().await;
                continue;
            }
            return;
        }
    }

    /// Wait until everything queued so far is written (or `limit` passes).
    pub async fn drained(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.queued() > 0 && !self.lock().kicked && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// No more input: write what is queued, then end.
    pub fn close(&self) {
        self.lock().closing = true;
        self.data.notify_one();
    }

    /// Cut the client off now; what is queued is dropped.
    pub fn kick(&self) {
        let mut s = self.lock();
        s.kicked = true;
        let queued = std::mem::take(&mut s.queued);
        s.chunks.clear();
        s.batch.clear();
        drop(s);
        self.global.give(queued);
        self.data.notify_one();
        self.room.notify_one();
    }

    /// Cut the client off for not reading (counted apart from an ordinary
    /// end).
    pub fn cut_off(&self) {
        self.lock().cut_off = true;
        self.kick();
    }

    /// True once the client was cut off for not reading.
    pub fn was_cut_off(&self) -> bool {
        self.lock().cut_off
    }

    /// True once the client was cut off.
    pub fn is_kicked(&self) -> bool {
        self.lock().kicked
    }

    async fn next(&self) -> Option<Bytes> {
        loop {
            {
                let mut s = self.lock();
                if s.kicked {
                    return None;
                }
                if let Some(c) = s.chunks.pop_front() {
                    return Some(c);
                }
                if !s.batch.is_empty() {
                    return Some(s.batch.split().freeze());
                }
                if s.closing {
                    return None;
                }
            }
            self.data.notified().await;
        }
    }

    fn wrote(&self, n: usize) {
        let mut s = self.lock();
        if s.kicked {
            return;
        }
        let was_full = s.queued >= self.budget;
        s.queued -= n.min(s.queued);
        s.written += n as u64;
        let written = s.written;
        while s.event_ends.front().is_some_and(|e| *e <= written) {
            s.event_ends.pop_front();
        }
        let now_room = s.queued < self.budget;
        drop(s);
        self.global.give(n);
        if was_full && now_room {
            self.room.notify_one();
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        let queued = self.lock().queued;
        self.global.give(queued);
    }
}

/// Drain `out` into `wr` until the session closes or the client is cut off;
/// a write that makes no progress for `stall` cuts it off.
pub async fn write_loop<W: AsyncWrite + Unpin>(out: Arc<Output>, mut wr: W, stall: Duration) {
    while let Some(mut chunk) = out.next().await {
        while !chunk.is_empty() {
            match tokio::time::timeout(stall, wr.write(&chunk)).await {
                Ok(Ok(0)) => {
                    out.kick();
                    return;
                }
                Ok(Ok(n)) => {
                    let _ = chunk.split_to(n);
                    out.wrote(n);
                }
                Ok(Err(e)) => {
                    tracing::debug!(cause = %e, "QMP write failed");
                    out.kick();
                    return;
                }
                Err(_) => {
                    tracing::warn!("QMP client made no progress reading for {stall:?}; disconnecting");
                    out.cut_off();
                    return;
                }
            }
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_messages_are_coalesced_and_the_budget_is_in_bytes() {
        let out = Output::new(100, 10, Budget::new(1 << 20));
        for _ in 0..10 {
            out.push(Bytes::from_static(b"0123456789"));
        }
        assert_eq!(out.queued(), 100);
        assert!(!out.has_room(), "100 bytes fill a 100-byte budget");
        let first = out.next().await.unwrap();
        assert_eq!(first.len(), 100, "ten replies, one write");
        out.wrote(100);
        assert!(out.has_room());
    }

    #[tokio::test]
    async fn a_client_that_reads_no_events_is_cut_off_but_replies_are_never_refused() {
        let global = Budget::new(1 << 20);
        let out = Output::new(1 << 20, 2, global.clone());
        for _ in 0..1000 {
            out.push(Bytes::from_static(b"reply\r\n"));
        }
        assert_eq!(out.push_event(&Bytes::from_static(b"e\r\n")), Delivery::Queued);
        assert_eq!(out.push_event(&Bytes::from_static(b"e\r\n")), Delivery::Queued);
        assert_eq!(out.push_event(&Bytes::from_static(b"e\r\n")), Delivery::Full);
        assert!(out.is_kicked());
        assert_eq!(global.used(), 0, "a cut-off session gives its budget back");
        assert!(out.next().await.is_none());
    }

    #[tokio::test]
    async fn the_global_budget_holds_every_session_back() {
        let global = Budget::new(50);
        let a = Output::new(1000, 10, global.clone());
        let b = Output::new(1000, 10, global.clone());
        a.push(Bytes::from(vec![b'x'; 60]));
        assert!(!b.has_room(), "another session's output counts");
        let chunk = a.next().await.unwrap();
        a.wrote(chunk.len());
        assert!(b.has_room());
        tokio::time::timeout(Duration::from_secs(1), b.room()).await.unwrap();
    }
}
