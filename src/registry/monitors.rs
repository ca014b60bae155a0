//! The QMP monitors running on chardevs (`-mon`, `__org.chardevd_monitor-add`):
//! their ids, the chardev each holds, and how to stop each. Pure; `S` is
//! whatever stops one (the supervisor keeps an actor's recipient).
use super::Holder;
use crate::error::MonitorError;
use std::collections::HashMap;

/// One monitor.
#[derive(Debug)]
pub struct MonitorEntry<S> {
    /// The chardev it runs on.
    pub chardev: String,
    /// Its hold on the chardev.
    pub holder: Holder,
    /// How to stop it, once it runs.
    pub stop: Option<S>,
}

/// The monitors by id.
#[derive(Debug)]
pub struct Monitors<S> {
    map: HashMap<String, MonitorEntry<S>>,
}

impl<S> Default for Monitors<S> {
    fn default() -> Self {
        Monitors { map: HashMap::new() }
    }
}

impl<S> Monitors<S> {
    /// The id a new monitor gets: the one asked for (an identifier not in
    /// use), or the first free `monitorN` (N from the number of monitors).
    pub fn name(&self, asked: Option<String>) -> Result<String, MonitorError> {
        match asked {
            Some(id) if !super::id_wellformed(&id) => Err(MonitorError::BadId),
            Some(id) if self.map.contains_key(&id) => Err(MonitorError::DuplicateId(id)),
            Some(id) => Ok(id),
            None => Ok((self.map.len()..)
                .map(|n| format!("monitor{n}"))
                .find(|c| !self.map.contains_key(c))
                .unwrap_or_default()),
        }
    }

    /// How many monitors exist.
    pub fn running(&self) -> impl Iterator<Item = &S> {
        self.map.values().filter_map(|m| m.stop.as_ref())
    }

    /// How many monitors there are.
    pub fn count(&self) -> usize {
        self.map.len()
    }

    /// Record a monitor that is starting (its id from [`Monitors::name`]).
    pub fn insert(&mut self, id: String, chardev: String, holder: Holder) {
        self.map.insert(
            id,
            MonitorEntry {
                chardev,
                holder,
                stop: None,
            },
        );
    }

    /// The monitor runs: keep how to stop it. If it was removed meanwhile,
    /// `stop` is handed back (to stop it at once).
    pub fn commit(&mut self, id: &str, stop: S) -> Result<(), S> {
        match self.map.get_mut(id) {
            Some(m) => {
                m.stop = Some(stop);
                Ok(())
            }
            None => Err(stop),
        }
    }

    /// Forget a monitor (to stop it and detach it from its chardev).
    pub fn remove(&mut self, id: &str) -> Result<MonitorEntry<S>, MonitorError> {
        self.map.remove(id).ok_or_else(|| MonitorError::NotFound(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_and_made_up_as_qemu_names_monitors() {
        let mut m = Monitors::<u8>::default();
        assert_eq!(m.count(), 0);
        assert_eq!(m.name(None).unwrap(), "monitor0");
        m.insert("monitor0".into(), "c".into(), Holder::Monitor(1));
        m.insert("monitor2".into(), "c".into(), Holder::Monitor(2));
        assert_eq!(m.count(), 2);
        assert_eq!(m.name(None).unwrap(), "monitor3", "from the count, skipping taken ones");
        assert_eq!(m.name(Some("1x".into())), Err(MonitorError::BadId));
        assert_eq!(
            m.name(Some("monitor0".into())),
            Err(MonitorError::DuplicateId("monitor0".into()))
        );
    }

    #[test]
    fn a_monitor_removed_before_it_runs_hands_its_stop_back() {
        let mut m = Monitors::default();
        m.insert("a".into(), "c".into(), Holder::Monitor(1));
        assert_eq!(m.commit("a", 7), Ok(()));
        assert_eq!(m.remove("a").unwrap().stop, Some(7));
        assert_eq!(m.commit("a", 8), Err(8));
        assert_eq!(m.remove("a").unwrap_err(), MonitorError::NotFound("a".into()));
    }
}
