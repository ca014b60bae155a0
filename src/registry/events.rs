//! The event bus: fan-out of typed events ([`Stamped`]) to every negotiated
//! QMP session, every monitor and every embedder subscription, with QEMU's
//! per-key rate limit for guest-triggerable events. Owned by the supervisor
//! (no global broker). Pure: subscribers are [`EventSink`]s, and the caller
//! arms the throttle timers.
use crate::events::{Event, Stamped};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// QEMU's rate limit window for throttled events (`monitor_qapi_event_conf`).
pub const THROTTLE_WINDOW: Duration = Duration::from_millis(1000);

/// What a subscriber did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued.
    Queued,
    /// The subscriber's queue is full: it is dropped from the bus (a QMP
    /// session disconnects its client).
    Full,
    /// The subscriber is gone: it is dropped from the bus.
    Closed,
}

/// A subscriber: a QMP session's output queue, an embedder's channel.
pub trait EventSink: Send + std::fmt::Debug {
    /// Take one event: its typed form, and its wire form (serialized once for
    /// every subscriber). Must not block.
    fn deliver(&self, event: &Arc<Stamped>, wire: &Bytes) -> Delivery;

    /// A future that ends once what was delivered so far has left (a QMP
    /// session's socket took it), or `None` if delivery is the end of it.
    /// Shutdown waits on these, bounded, so the last events are not lost.
    fn flushed(&self) -> Option<Flushed> {
        None
    }
}

impl EventSink for crate::events::StreamSink {
    fn deliver(&self, event: &Arc<Stamped>, _wire: &Bytes) -> Delivery {
        if self.push(event) {
            Delivery::Queued
        } else {
            Delivery::Closed
        }
    }
}

/// How long shutdown waits for subscribers to take their last events.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);

/// What [`EventSink::flushed`] returns.
pub type Flushed = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What rate-limited events are keyed by: the event's name and its key member.
pub type ThrottleKey = (&'static str, String);

#[derive(Debug, Default)]
struct Throttle {
    pending: Option<Stamped>,
}

/// The subscriber list and throttle table.
#[derive(Debug, Default)]
pub struct EventBus {
    next_id: u64,
    subscribers: Vec<(u64, Box<dyn EventSink>)>,
    throttle: HashMap<ThrottleKey, Throttle>,
}

impl EventBus {
    /// Add a subscriber; returns its id.
    pub fn subscribe(&mut self, sink: Box<dyn EventSink>) -> u64 {
        self.next_id += 1;
        self.subscribers.push((self.next_id, sink));
        self.next_id
    }

    /// Remove a subscriber.
    pub fn unsubscribe(&mut self, id: u64) {
        self.subscribers.retain(|(i, _)| *i != id);
    }

    /// True with no subscribers.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.subscribers.is_empty()
    }

    /// The throttle key of an event, if QEMU rate-limits it.
    pub fn throttle_key(ev: &Event) -> Option<ThrottleKey> {
        ev.throttle_key().map(|k| (ev.name(), k.to_owned()))
    }

    /// Whether `ev` would be held back now (its key's window is open).
    pub fn holds(&self, ev: &Event) -> bool {
        Self::throttle_key(ev).is_some_and(|k| self.throttle.contains_key(&k))
    }

    /// Emit with QEMU's rate limit: the first event of a key goes out at once
    /// and opens a window; events inside the window replace each other and the
    /// latest goes out when it closes. Returns the key whose window must be
    /// timed (the caller arms [`THROTTLE_WINDOW`] and calls [`Self::expire`]).
    pub fn emit(&mut self, ev: Stamped) -> Option<ThrottleKey> {
        match Self::throttle_key(&ev.event) {
            Some(key) => {
                if let Some(t) = self.throttle.get_mut(&key) {
                    t.pending = Some(ev);
                    None
                } else {
                    self.broadcast(&ev);
                    self.throttle.insert(key.clone(), Throttle::default());
                    Some(key)
                }
            }
            None => {
                self.broadcast(&ev);
                None
            }
        }
    }

    /// A window closed: send the pending event (re-arming, returns true) or forget the key.
    pub fn expire(&mut self, key: &ThrottleKey) -> bool {
        let pending = self.throttle.get_mut(key).and_then(|t| t.pending.take());
        match pending {
            Some(ev) => {
                // Sent with the timestamp it was raised with, as QEMU does.
                self.broadcast(&ev);
                true
            }
            None => {
                self.throttle.remove(key);
                false
            }
        }
    }

    /// The subscribers' [`EventSink::flushed`] futures.
    pub fn flushes(&self) -> Vec<Flushed> {
        self.subscribers.iter().filter_map(|(_, s)| s.flushed()).collect()
    }

    /// Send to every subscriber; drop the closed and the overflowing ones.
    pub fn broadcast(&mut self, ev: &Stamped) {
        if self.subscribers.is_empty() {
            return;
        }
        let wire = ev.wire();
        let typed = Arc::new(ev.clone());
        self.subscribers.retain(|(id, sink)| match sink.deliver(&typed, &wire) {
            Delivery::Queued => true,
            Delivery::Full => {
                tracing::warn!(
                    subscriber = id,
                    event = typed.event.name(),
                    "event subscriber overflowed; dropping it"
                );
                false
            }
            Delivery::Closed => false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A subscriber that keeps what it gets, up to a bound.
    #[derive(Debug, Default)]
    struct Keep(std::sync::Mutex<std::collections::VecDeque<Arc<Stamped>>>, usize);

    impl EventSink for Arc<Keep> {
        fn deliver(&self, event: &Arc<Stamped>, _wire: &Bytes) -> Delivery {
            let mut q = self.0.lock().unwrap();
            if q.len() >= self.1 {
                return Delivery::Full;
            }
            q.push_back(event.clone());
            Delivery::Queued
        }
    }

    impl Keep {
        fn try_recv(&self) -> Result<Arc<Stamped>, ()> {
            self.0.lock().unwrap().pop_front().ok_or(())
        }
    }

    #[test]
    fn a_subscriber_that_overflows_is_dropped() {
        let mut bus = EventBus::default();
        let keep = Arc::new(Keep(Default::default(), 2));
        bus.subscribe(Box::new(keep.clone()));
        for _ in 0..3 {
            bus.emit(Stamped::now(Event::DeviceDeleted {
                device: None,
                path: "/p".into(),
            }));
        }
        assert!(bus.is_empty(), "the third event overflowed it");
        assert_eq!(keep.0.lock().unwrap().len(), 2);
    }

    #[test]
    fn throttled_events_coalesce_to_the_latest_per_key() {
        let mut bus = EventBus::default();
        let rx = Arc::new(Keep(Default::default(), 16));
        bus.subscribe(Box::new(rx.clone()));
        let ev = |id: &str, open: bool| Stamped::now(Event::VserportChange { id: id.into(), open });
        let key = bus.emit(ev("a", true)).expect("first event arms the window");
        assert!(bus.emit(ev("a", false)).is_none());
        assert!(bus.emit(ev("a", true)).is_none());
        assert!(bus.emit(ev("b", true)).is_some(), "other keys are independent");
        let id = |e: Arc<Stamped>| match &e.event {
            Event::VserportChange { id, .. } => id.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(id(rx.try_recv().unwrap()), "a");
        assert_eq!(id(rx.try_recv().unwrap()), "b");
        assert!(rx.try_recv().is_err());
        assert!(bus.expire(&key), "the pending event goes out and re-arms");
        let last = rx.try_recv().unwrap();
        assert!(matches!(last.event, Event::VserportChange { open: true, .. }));
        assert!(!bus.expire(&key), "nothing pending: the window closes");
    }
}
