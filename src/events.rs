//! Events, typed from the point they are raised: what QMP sends as
//! `{"event": ..., "data": ..., "timestamp": ...}` and what an embedder
//! receives from [`crate::Handle::events`].
//!
//! Every event is an [`Event`] value stamped once ([`Stamped`]) and fanned
//! out to every subscriber; QMP renders its JSON from the same value
//! ([`Event::name`], and the data members QEMU sends), so a QMP client and an
//! embedder cannot see different events.
//!
//! An embedder's [`EventStream`] is bounded: when it holds `capacity` events
//! that were not read, the oldest one is dropped for each new one, and the
//! next item the stream yields is `Err(Lagged(n))` with the number dropped;
//! the subscription stays. The stream ends (`None`) only when the system
//! stops, after the events queued before it stopped (QEMU's `SHUTDOWN` last).
//!
//! ```
//! use chardevd::events::{Event, ShutdownReason};
//! let e = Event::Shutdown { guest: false, reason: ShutdownReason::HostQmpQuit };
//! assert_eq!(e.name(), "SHUTDOWN");
//! ```
use crate::json::Json;
use futures_util::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

/// Why the system shut down (QEMU's `ShutdownCause`, the values chardevd
/// raises).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShutdownReason {
    /// QMP `quit`, [`crate::Handle::quit`], or an allowed exit request (`host-qmp-quit`).
    HostQmpQuit,
    /// SIGINT or SIGTERM, or [`crate::Handle::quit_on_signal`] (`host-signal`).
    HostSignal,
}

impl ShutdownReason {
    /// QEMU's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownReason::HostQmpQuit => "host-qmp-quit",
            ShutdownReason::HostSignal => "host-signal",
        }
    }
}

/// What asked the daemon to exit ([`Event::ExitRequest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExitSource {
    /// A mux peer typed its escape character and `x` (QEMU's `C-a x`).
    Mux,
    /// A testdev received `q` (QEMU's test device exits).
    Testdev,
}

impl ExitSource {
    /// The name QMP shows in the event's `source`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitSource::Mux => "mux",
            ExitSource::Testdev => "testdev",
        }
    }
}

/// An event. QEMU's events keep QEMU's names and members; chardevd's own
/// carry the `__org.chardevd_` prefix on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// `SHUTDOWN`: the system stops (sent before `quit`'s reply, and on
    /// SIGINT/SIGTERM). chardevd runs no guest: `guest` is false.
    Shutdown {
        /// The guest asked for it (never, here).
        guest: bool,
        /// What caused it.
        reason: ShutdownReason,
    },
    /// `VSERPORT_CHANGE`: the guest side of a `port` device opened or closed
    /// (`__org.chardevd_port-set-open`). Rate-limited per `id` as QEMU does:
    /// one a second, the latest state winning.
    VserportChange {
        /// The port device's id.
        id: String,
        /// Open or closed.
        open: bool,
    },
    /// `DEVICE_DELETED`: a device is gone (`device_del`).
    DeviceDeleted {
        /// Its id (none for a device created without one).
        device: Option<String>,
        /// Its QOM path (`/machine/peripheral/ID`).
        path: String,
    },
    /// `__org.chardevd_CHARDEV_FAULT`: a chardev's backend panicked. The
    /// panic was contained: the chardev stays (it can be changed or removed)
    /// with a backend that drops output and never opens.
    ChardevFault {
        /// The chardev's id.
        id: String,
        /// The panic's message.
        reason: String,
    },
    /// `__org.chardevd_EXIT_REQUEST`: a chardev asked the daemon to exit and
    /// the daemon was not started with `--allow-exit` ([`crate::Config::allow_exit`]),
    /// so it stays.
    ExitRequest {
        /// The chardev that asked.
        chardev: String,
        /// What asked: a mux's `C-a x`, a testdev's `q`.
        source: ExitSource,
        /// The exit status asked for (a testdev's `q`); none for a mux's
        /// `C-a x` (QEMU's `quit`).
        status: Option<u8>,
    },
    /// `__org.chardevd_CLIENT_CONNECTED`: a client connected to a console
    /// (a socket chardev with `__org.chardevd_client-events=on`).
    ClientConnected(ClientEvent),
    /// `__org.chardevd_CLIENT_DISCONNECTED`: a console's client went (it
    /// hung up, was cut off for its queue, or disconnected over QMP).
    ClientDisconnected(ClientEvent),
}

/// The members of the client events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEvent {
    /// The chardev's id.
    pub id: String,
    /// The client's number on it (`__org.chardevd_query-clients`).
    pub client: u64,
    /// The peer, as QEMU's `filename` of a connected socket shows it.
    pub address: String,
    /// How many clients the chardev has now.
    pub clients: u64,
}

/// The schema entities of chardevd's own events (QEMU's introspection
/// format), appended to the served schema.
pub(crate) const EXTENSION_SCHEMA: &[&str] = &[
    r#"[
{"name": "__org.chardevd_EXIT_REQUEST", "meta-type": "event", "arg-type": "__org.chardevd_q_obj_EXIT_REQUEST-arg"},
{"name": "__org.chardevd_q_obj_EXIT_REQUEST-arg", "meta-type": "object", "members": [{"name": "chardev", "type": "str"}, {"name": "source", "type": "str"}, {"name": "status", "default": null, "type": "int"}]}
]"#,
    r#"[
{"name": "__org.chardevd_CHARDEV_FAULT", "meta-type": "event", "arg-type": "__org.chardevd_q_obj_CHARDEV_FAULT-arg"},
{"name": "__org.chardevd_q_obj_CHARDEV_FAULT-arg", "meta-type": "object", "members": [{"name": "id", "type": "str"}, {"name": "reason", "type": "str"}]}
]"#,
    r#"[
{"name": "__org.chardevd_CLIENT_CONNECTED", "meta-type": "event", "arg-type": "__org.chardevd_q_obj_CLIENT-arg"},
{"name": "__org.chardevd_CLIENT_DISCONNECTED", "meta-type": "event", "arg-type": "__org.chardevd_q_obj_CLIENT-arg"},
{"name": "__org.chardevd_q_obj_CLIENT-arg", "meta-type": "object", "members": [{"name": "id", "type": "str"}, {"name": "client", "type": "int"}, {"name": "address", "type": "str"}, {"name": "clients", "type": "int"}]}
]"#,
];

impl Event {
    /// The QMP event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Shutdown { .. } => "SHUTDOWN",
            Event::VserportChange { .. } => "VSERPORT_CHANGE",
            Event::DeviceDeleted { .. } => "DEVICE_DELETED",
            Event::ExitRequest { .. } => "__org.chardevd_EXIT_REQUEST",
            Event::ChardevFault { .. } => "__org.chardevd_CHARDEV_FAULT",
            Event::ClientConnected(_) => "__org.chardevd_CLIENT_CONNECTED",
            Event::ClientDisconnected(_) => "__org.chardevd_CLIENT_DISCONNECTED",
        }
    }

    /// The `data` member QMP sends.
    pub(crate) fn data(&self) -> Json {
        match self {
            Event::Shutdown { guest, reason } => {
                Json::object([("guest", Json::Bool(*guest)), ("reason", Json::str(reason.as_str()))])
            }
            Event::VserportChange { id, open } => {
                Json::object([("id", Json::str(id.clone())), ("open", Json::Bool(*open))])
            }
            Event::DeviceDeleted { device, path } => {
                let mut members = Vec::new();
                if let Some(d) = device {
                    members.push(("device", Json::str(d.clone())));
                }
                members.push(("path", Json::str(path.clone())));
                Json::object(members)
            }
            Event::ChardevFault { id, reason } => {
                Json::object([("id", Json::str(id.clone())), ("reason", Json::str(reason.clone()))])
            }
            Event::ClientConnected(c) | Event::ClientDisconnected(c) => Json::object([
                ("id", Json::str(c.id.clone())),
                ("client", Json::UInt(c.client)),
                ("address", Json::str(c.address.clone())),
                ("clients", Json::UInt(c.clients)),
            ]),
            Event::ExitRequest {
                chardev,
                source,
                status,
            } => {
                let mut members = vec![
                    ("chardev", Json::str(chardev.clone())),
                    ("source", Json::str(source.as_str())),
                ];
                if let Some(s) = status {
                    members.push(("status", Json::Int(i64::from(*s))));
                }
                Json::object(members)
            }
        }
    }

    /// The key this event is rate-limited by (QEMU's `monitor_qapi_event_conf`
    /// for its events; chardevd's peer-triggered ones likewise), if any.
    pub(crate) fn throttle_key(&self) -> Option<&str> {
        match self {
            Event::VserportChange { id, .. } => Some(id),
            // A peer can raise these as fast as it types: as QEMU limits
            // its guest-triggerable events, one a second per chardev.
            Event::ExitRequest { chardev, .. } => Some(chardev),
            _ => None,
        }
    }
}

/// When an event was raised: QMP's `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (-1 if the clock failed, as QEMU).
    pub seconds: i64,
    /// Microseconds within the second (-1 if the clock failed).
    pub microseconds: i64,
}

impl Timestamp {
    /// The current time, from the system clock.
    pub fn now() -> Timestamp {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                microseconds: i64::from(d.subsec_micros()),
            },
            Err(_) => Timestamp {
                seconds: -1,
                microseconds: -1,
            },
        }
    }
}

/// An event with the time it was raised (rate-limited events keep the time
/// they were raised at, as in QEMU, even when they go out later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    /// The event itself.
    pub event: Event,
    /// When it was raised.
    pub timestamp: Timestamp,
}

impl Stamped {
    /// `event`, stamped now.
    pub fn now(event: Event) -> Stamped {
        Stamped {
            event,
            timestamp: Timestamp::now(),
        }
    }

    /// The QMP message (`event`, `timestamp`, `data`).
    pub(crate) fn to_json(&self) -> Json {
        Json::Object(vec![
            ("event".to_owned(), Json::str(self.event.name())),
            (
                "timestamp".to_owned(),
                Json::object([
                    ("seconds", Json::Int(self.timestamp.seconds)),
                    ("microseconds", Json::Int(self.timestamp.microseconds)),
                ]),
            ),
            ("data".to_owned(), self.event.data()),
        ])
    }

    /// The QMP wire form, ending in CRLF as QEMU's monitor sends it.
    pub(crate) fn wire(&self) -> bytes::Bytes {
        let mut s = self.to_json().to_qemu_string();
        s.push_str("\r\n");
        bytes::Bytes::from(s)
    }
}

/// An [`EventStream`] fell behind: this many events were dropped (the oldest
/// first) before the next one it yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the event stream fell behind: {0} events were dropped")]
pub struct Lagged(pub u64);

#[derive(Debug)]
struct StreamState {
    queue: VecDeque<Stamped>,
    lagged: u64,
    /// The system let the subscription go (it stopped).
    ended: bool,
    /// The stream was dropped.
    dropped: bool,
    waker: Option<Waker>,
}

#[derive(Debug)]
struct StreamShared {
    capacity: usize,
    state: Mutex<StreamState>,
}

impl StreamShared {
    fn lock(&self) -> MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An embedder's subscription to every event (see the module docs for its
/// bound and overflow rule). A [`Stream`] of `Result<Stamped, Lagged>`;
/// dropping it unsubscribes.
#[derive(Debug)]
pub struct EventStream {
    shared: Arc<StreamShared>,
}

/// The bus's end of an [`EventStream`].
#[derive(Debug)]
pub(crate) struct StreamSink {
    shared: Arc<StreamShared>,
}

/// A new subscription holding at most `capacity` unread events (at least 1).
pub(crate) fn event_stream(capacity: usize) -> (EventStream, StreamSink) {
    let shared = Arc::new(StreamShared {
        capacity: capacity.max(1),
        state: Mutex::new(StreamState {
            queue: VecDeque::new(),
            lagged: 0,
            ended: false,
            dropped: false,
            waker: None,
        }),
    });
    (EventStream { shared: shared.clone() }, StreamSink { shared })
}

impl StreamSink {
    /// Queue an event, dropping the oldest unread one if full; false once
    /// the stream is gone.
    pub(crate) fn push(&self, ev: &Stamped) -> bool {
        let mut g = self.shared.lock();
        if g.dropped {
            return false;
        }
        if g.queue.len() >= self.shared.capacity {
            g.queue.pop_front();
            g.lagged += 1;
        }
        g.queue.push_back(ev.clone());
        if let Some(w) = g.waker.take() {
            w.wake();
        }
        true
    }
}

impl Drop for StreamSink {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        g.ended = true;
        if let Some(w) = g.waker.take() {
            w.wake();
        }
    }
}

impl EventStream {
    /// The next item: an event, `Err(Lagged)` after events were dropped,
    /// or `None` once the system stopped and everything queued was read.
    pub async fn recv(&mut self) -> Option<Result<Stamped, Lagged>> {
        std::future::poll_fn(|cx| self.poll_item(cx)).await
    }

    /// The next item if one is queued (see [`EventStream::recv`]).
    pub fn try_recv(&mut self) -> Option<Result<Stamped, Lagged>> {
        let mut g = self.shared.lock();
        Self::take(&mut g)
    }

    fn take(g: &mut StreamState) -> Option<Result<Stamped, Lagged>> {
        if g.lagged > 0 {
            return Some(Err(Lagged(std::mem::take(&mut g.lagged))));
        }
        g.queue.pop_front().map(Ok)
    }

    fn poll_item(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Stamped, Lagged>>> {
        let mut g = self.shared.lock();
        if let Some(item) = Self::take(&mut g) {
            return Poll::Ready(Some(item));
        }
        if g.ended {
            return Poll::Ready(None);
        }
        g.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Stream for EventStream {
    type Item = Result<Stamped, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_item(cx)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        let mut g = self.shared.lock();
        g.dropped = true;
        g.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(id: &str, open: bool) -> Stamped {
        Stamped::now(Event::VserportChange { id: id.into(), open })
    }

    #[test]
    fn the_wire_form_is_qemus() {
        let ev = Stamped {
            event: Event::VserportChange {
                id: "p".into(),
                open: true,
            },
            timestamp: Timestamp {
                seconds: 5,
                microseconds: 7,
            },
        };
        let wire = String::from_utf8(ev.wire().to_vec()).unwrap();
        assert!(wire.ends_with("\r\n"));
        assert!(
            wire.contains(r#""timestamp": {"seconds": 5, "microseconds": 7}"#),
            "{wire}"
        );
        assert!(wire.contains(r#""event": "VSERPORT_CHANGE""#));
        let exit = Event::ExitRequest {
            chardev: "m".into(),
            source: ExitSource::Mux,
            status: None,
        };
        assert_eq!(exit.data().to_qemu_string(), r#"{"source": "mux", "chardev": "m"}"#);
        let anon = Event::DeviceDeleted {
            device: None,
            path: "/machine/peripheral-anon/device[0]".into(),
        };
        assert_eq!(
            anon.data().to_qemu_string(),
            r#"{"path": "/machine/peripheral-anon/device[0]"}"#
        );
    }

    #[test]
    fn a_stream_that_falls_behind_says_how_many_it_lost_and_goes_on() {
        let (mut rx, tx) = event_stream(2);
        for i in 0..5 {
            assert!(tx.push(&port(&i.to_string(), true)));
        }
        assert_eq!(rx.try_recv(), Some(Err(Lagged(3))));
        let ids: Vec<_> = std::iter::from_fn(|| rx.try_recv())
            .map(|r| match r.unwrap().event {
                Event::VserportChange { id, .. } => id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, ["3", "4"], "the newest are kept");
        tx.push(&port("5", false));
        assert!(matches!(rx.try_recv(), Some(Ok(_))), "still subscribed");
    }

    #[test]
    fn a_stream_ends_after_what_was_queued_when_the_system_stops() {
        let (rx, tx) = event_stream(4);
        tx.push(&Stamped::now(Event::Shutdown {
            guest: false,
            reason: ShutdownReason::HostQmpQuit,
        }));
        drop(tx);
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(matches!(rx.poll_item(&mut cx), Poll::Ready(Some(Ok(_)))));
        assert!(matches!(rx.poll_item(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn a_dropped_stream_is_left_by_the_bus() {
        let (rx, tx) = event_stream(4);
        drop(rx);
        assert!(!tx.push(&port("a", true)));
    }
}
