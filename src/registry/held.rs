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

    /// Hold `op` for `chardev` unless `cap` operations already wait for it:
    /// then `op` comes back (for operations a client can repeat at will).
    pub fn hold_within(&mut self, chardev: &str, op: Op, cap: usize) -> Result<(), Op> {
        let ops = self.map.entry(chardev.to_owned()).or_default();
        if ops.len() >= cap {
            return Err(op);
        }
        ops.push(op);
        Ok(())
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

    #[test]
    fn repeatable_operations_are_held_up_to_a_cap() {
        let mut h = Held::default();
        assert_eq!(h.hold_within("a", 1, 2), Ok(()));
        assert_eq!(h.hold_within("a", 2, 2), Ok(()));
        assert_eq!(h.hold_within("a", 3, 2), Err(3));
        // Essential operations are always held.
        h.hold("a", 4);
        assert_eq!(h.take("a"), vec![1, 2, 4]);
        assert_eq!(h.hold_within("a", 5, 2), Ok(()));
    }
}
