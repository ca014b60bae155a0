//! The arbiter pool: the threads chardevs and QMP sessions run on.
//!
//! Arbiter 0 is the system's own (the supervisor and the registry live
//! there); the others are started here. Sessions are spread round robin;
//! a chardev goes where its data path is (a mux next to its base, a
//! replacement where the old backend ran), else round robin.
use actix::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The arbiters.
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    arbiters: Vec<ArbiterHandle>,
    /// The arbiters this pool started (stopped with it).
    owned: Vec<Arbiter>,
    next: AtomicUsize,
}

impl Pool {
    /// A pool of `n` arbiters (at least 1): the current one and `n - 1` new
    /// threads. Call inside a running actix `System`.
    pub fn new(n: usize) -> Pool {
        let n = n.max(1);
        let mut arbiters = vec![Arbiter::current()];
        let mut owned = Vec::new();
        for _ in 1..n {
            let a = Arbiter::new();
            arbiters.push(a.handle());
            owned.push(a);
        }
        Pool {
            inner: Arc::new(Inner {
                arbiters,
                owned,
                next: AtomicUsize::new(0),
            }),
        }
    }

    /// How many arbiters.
    pub fn len(&self) -> usize {
        self.inner.arbiters.len()
    }

    /// The next arbiter, round robin: (index, handle).
    pub fn next(&self) -> (usize, ArbiterHandle) {
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.len();
        (i, self.inner.arbiters[i].clone())
    }

    /// Arbiter `i`.
    pub fn get(&self, i: usize) -> ArbiterHandle {
        self.inner.arbiters[i % self.len()].clone()
    }

    /// Stop the threads this pool started.
    pub fn stop(&self) {
        for a in &self.inner.owned {
            a.stop();
        }
    }
}

/// The default number of arbiters: the cores available to this process.
pub fn default_size() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
