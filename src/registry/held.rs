//! Port operations held back while a chardev is being changed: attach,
//! detach, open state, ioctls and breaks for a chardev whose ports are
//! moving to a new backend wait here and are replayed, in order, once the
//! change is over. Pure; `Op` is whatever the caller sends.
use std::collections::HashMap;

/// Held operations per chardev.
#[derive(Debug)]
pub struct Held<Op> {
    map: HashMap<String, Vec<Op>>,
}

impl<Op> Default for Held<Op> {
    fn default() -> Self {
        Held { map: HashMap::new() }
    }
}

impl<Op> Held<Op> {
    /// Hold `op` for `chardev`.
    pub fn hold(&mut self, chardev: &str, op: Op) {
        self.map.entry(chardev.to_owned()).or_default().push(op);
    }

    /// The change is over: what was held, in order.
    pub fn take(&mut self, chardev: &str) -> Vec<Op> {
        self.map.remove(chardev).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_operations_come_back_in_order_once() {
        let mut h = Held::default();
        h.hold("a", 1);
        h.hold("b", 9);
        h.hold("a", 2);
        assert_eq!(h.take("a"), vec![1, 2]);
        assert!(h.take("a").is_empty());
        assert_eq!(h.take("b"), vec![9]);
    }
}
