//! The built-in devices that run (`device_add`): how to stop each. Which
//! chardevs a device holds is the registry's; this table only keeps the
//! running side. Pure; `S` is whatever stops one.
use std::collections::HashMap;

/// Running devices by id.
#[derive(Debug)]
pub struct Devices<S> {
    map: HashMap<String, S>,
}

impl<S> Default for Devices<S> {
    fn default() -> Self {
        Devices { map: HashMap::new() }
    }
}

impl<S> Devices<S> {
    /// A device started.
    pub fn started(&mut self, id: String, stop: S) {
        self.map.insert(id, stop);
    }

    /// Every running device's stop.
    pub fn all(&self) -> impl Iterator<Item = &S> {
        self.map.values()
    }

    /// A device is deleted: how to stop it (none if it never started).
    pub fn stop(&mut self, id: &str) -> Option<S> {
        self.map.remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_stopped_once() {
        let mut d = Devices::default();
        d.started("e".into(), 1);
        assert_eq!(d.stop("e"), Some(1));
        assert_eq!(d.stop("e"), None);
    }
}
