//! The ID registry: which chardevs and devices exist, who uses what, and
//! every decision that follows from it. Pure: no actix, no I/O; the
//! supervisor actor runs its decisions.
//!
//! - **Chardevs** go through reserve → commit (or abort): a reserved id is
//!   taken at once, before any side effect, so a second `chardev-add` of it
//!   fails while the first is still opening its backend.
//! - **References** are the graph that decides "busy": a mux holds its base,
//!   a hub its inputs, a device or a QMP monitor its chardev, an embedder's
//!   frontend its chardev. A chardev with holders cannot be removed; its kind
//!   says how many ports it takes.
//! - **Leases** make `chardev-change` atomic: while one is held nobody else
//!   may change or remove the chardev, and the exclusive resources the old
//!   backend lends to its replacement (a pty link path, the terminal) are off
//!   limits to every other chardev.
//! - **Generations** tell a live chardev from an earlier one of the same id,
//!   so a late "backend gone" report cannot remove its successor.
//!
//! `C` is whatever the caller keeps per live chardev (the supervisor keeps the
//! actor's address); the registry never looks inside it.
use std::collections::HashMap;

/// Identifies a port (an attachment) among the ports of one system.
pub type PortId = u64;

/// A named host resource a backend takes (the terminal, a pty link path, an
/// output file, a listening address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// A key unique to the resource, e.g. `pty:/tmp/console`.
    pub key: String,
    /// Only one chardev may hold it. Non-exclusive resources (an output file)
    /// are only lent to a same-kind replacement.
    pub exclusive: bool,
}

/// What the registry needs to know of a chardev's kind and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindInfo {
    /// QEMU's backend name.
    pub kind: &'static str,
    /// `chardev-change` may replace it (false for mux and hub).
    pub hotswap: bool,
    /// How many frontends it takes at once.
    pub max_ports: usize,
    /// Host resources it takes.
    pub resources: Vec<Resource>,
    /// Chardevs it uses (a mux's base, a hub's inputs), in order.
    pub references: Vec<String>,
    /// The most chardevs it may use (a hub's 4).
    pub max_references: usize,
    /// Kinds it may not use (a hub over a mux or a hub: they do not stack).
    pub refuses: &'static [&'static str],
    /// QMP's `yank` applies (socket chardevs).
    pub yank: bool,
    /// The input handler it registers (msmouse, wctablet, vc).
    pub input: Option<crate::chardev::input::InputHandler>,
}

impl KindInfo {
    /// A kind with one port, hot-swappable, nothing referenced.
    pub fn plain(kind: &'static str) -> KindInfo {
        KindInfo {
            kind,
            hotswap: true,
            max_ports: 1,
            resources: Vec::new(),
            references: Vec::new(),
            max_references: usize::MAX,
            refuses: &[],
            yank: false,
            input: None,
        }
    }
}

/// Who holds a reference to a chardev.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Holder {
    /// Another chardev (a mux over its base, a hub over its inputs).
    Chardev(String),
    /// A built-in device (`device_add`).
    Device(String),
    /// An embedder's frontend, by a number the caller chose.
    Library(u64),
    /// A QMP monitor running on the chardev, by number.
    Monitor(u64),
}

impl Holder {
    /// Whether this user follows a `chardev-change` (QEMU's `be_change`
    /// hook): devices and embedders do; a mux, a hub or a monitor does not.
    pub fn follows_hotswap(&self) -> bool {
        matches!(self, Holder::Device(_) | Holder::Library(_))
    }
}

#[derive(Debug)]
enum State<C> {
    Pending,
    Live(C),
}

#[derive(Debug)]
struct Slot<C> {
    seq: u64,
    generation: u64,
    info: KindInfo,
    state: State<C>,
    holders: Vec<(Holder, Option<PortId>)>,
    leased: bool,
}

/// A built-in device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    /// Driver name.
    pub driver: &'static str,
    /// The chardevs it uses, in property order.
    pub chardevs: Vec<String>,
    /// Created without an id (QEMU's `/machine/peripheral-anon`).
    pub anonymous: bool,
}

/// A chardev that went by itself, as the registry forgot it.
#[derive(Debug, PartialEq, Eq)]
pub struct Gone<C> {
    /// What the caller kept for it.
    pub kept: C,
    /// The ports it, and its devices, had on other chardevs (to detach).
    pub ports: Vec<(String, PortId)>,
    /// Its devices, forgotten with it (to stop).
    pub devices: Vec<String>,
}

/// Why the registry said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// The id is taken (live or being created).
    AlreadyExists,
    /// No such chardev (or it is still being created, where that matters).
    NotFound,
    /// It is in use, being created, or being changed.
    Busy,
    /// The kind cannot be replaced (mux, hub).
    NotHotswappable,
    /// A user of it cannot follow a replacement.
    HotswapUnsupported,
    /// An exclusive resource is lent out by a chardev being changed.
    ResourceLent(Resource),
    /// A referenced chardev does not exist.
    RefMissing(String),
    /// A referenced chardev takes no more users.
    RefInUse {
        /// Its id.
        id: String,
        /// Its kind.
        kind: &'static str,
        /// How many users it takes.
        max: usize,
    },
    /// A referenced chardev is of a kind this one may not use.
    RefRefused(String),
    /// More references than the kind takes.
    RefTooMany,
}

/// Why an attachment was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachReject {
    /// No live chardev of that id.
    NotFound,
    /// It already has as many users as its kind takes.
    Full {
        /// The most it takes.
        max: usize,
    },
}

/// Why a device was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceReject {
    /// The id is not an identifier.
    BadId,
    /// The id is taken.
    Duplicate(String),
    /// The chardev (by index into the given list) does not exist.
    NoChardev(usize),
    /// The chardev (by index) is in use.
    ChardevInUse(usize),
}

/// A reservation for a chardev that is being created.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a reservation must be committed or aborted"]
pub struct Ticket {
    /// The id.
    pub id: String,
    seq: u64,
    /// The generation the chardev will have.
    pub generation: u64,
}

/// A chardev-change in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a lease must be finished"]
pub struct Lease {
    /// The id.
    pub id: String,
    seq: u64,
    /// The resource keys the old backend lends to the new one.
    pub lent: Vec<String>,
    /// The generation the replacement will have.
    pub generation: u64,
    new: KindInfo,
}

pub use crate::options::id_wellformed;

/// The registry.
#[derive(Debug)]
pub struct Registry<C> {
    chardevs: HashMap<String, Slot<C>>,
    devices: HashMap<String, DeviceEntry>,
    next_seq: u64,
    next_generation: u64,
    lent: Vec<String>,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Registry {
            chardevs: HashMap::new(),
            devices: HashMap::new(),
            next_seq: 0,
            next_generation: 0,
            lent: Vec::new(),
        }
    }
}

impl<C> Registry<C> {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    fn lent_conflict(&self, info: &KindInfo, own: &[Resource]) -> Option<Resource> {
        info.resources
            .iter()
            .find(|r| r.exclusive && self.lent.contains(&r.key) && !own.contains(r))
            .cloned()
    }

    fn room(slot: &Slot<C>) -> bool {
        slot.holders.len() < slot.info.max_ports
    }

    /// Whether `id` may use the chardevs `info` references, in QEMU's
    /// order, one reference after the other. `id` itself is never there to
    /// use (a chardev being changed is gone, in QEMU, before its
    /// replacement looks).
    fn check_references(&self, id: &str, info: &KindInfo) -> Result<(), Reject> {
        for (i, r) in info.references.iter().enumerate() {
            if i >= info.max_references {
                return Err(Reject::RefTooMany);
            }
            match self.chardevs.get(r) {
                Some(s) if matches!(s.state, State::Live(_)) && r != id => {
                    if info.refuses.contains(&s.info.kind) {
                        return Err(Reject::RefRefused(r.clone()));
                    }
                    let twice = info.references[..i].iter().filter(|x| *x == r).count();
                    if s.holders.len() + twice >= s.info.max_ports {
                        return Err(Reject::RefInUse {
                            id: r.clone(),
                            kind: s.info.kind,
                            max: s.info.max_ports,
                        });
                    }
                }
                _ => return Err(Reject::RefMissing(r.clone())),
            }
        }
        Ok(())
    }

    /// `id` holds the chardevs `info` references.
    fn take_references(&mut self, id: &str, info: &KindInfo) {
        for r in &info.references {
            if let Some(s) = self.chardevs.get_mut(r) {
                s.holders.push((Holder::Chardev(id.to_owned()), None));
            }
        }
    }

    /// Reserve `id` for a new chardev. Its references are taken at once.
    pub fn reserve(&mut self, id: &str, info: KindInfo) -> Result<Ticket, Reject> {
        if self.chardevs.contains_key(id) {
            return Err(Reject::AlreadyExists);
        }
        if let Some(r) = self.lent_conflict(&info, &[]) {
            return Err(Reject::ResourceLent(r));
        }
        self.check_references(id, &info)?;
        self.take_references(id, &info);
        self.next_seq += 1;
        let seq = self.next_seq;
        let generation = self.generation();
        self.chardevs.insert(
            id.to_owned(),
            Slot {
                seq,
                generation,
                info,
                state: State::Pending,
                holders: Vec::new(),
                leased: false,
            },
        );
        Ok(Ticket {
            id: id.to_owned(),
            seq,
            generation,
        })
    }

    /// Drop `id`'s hold on the chardevs it references; returns the ports it
    /// had on them (to detach).
    fn release_references(&mut self, id: &str, refs: &[String]) -> Vec<(String, PortId)> {
        let me = Holder::Chardev(id.to_owned());
        let mut ports = Vec::new();
        for r in refs {
            if let Some(s) = self.chardevs.get_mut(r) {
                if let Some(i) = s.holders.iter().position(|(h, _)| *h == me) {
                    if let (_, Some(p)) = s.holders.remove(i) {
                        ports.push((r.clone(), p));
                    }
                }
            }
        }
        ports
    }

    /// The backend started: the chardev is live. If the reservation is gone
    /// (it cannot be, short of a bug), `c` is handed back.
    pub fn commit(&mut self, ticket: Ticket, c: C) -> Result<(), C> {
        match self.chardevs.get_mut(&ticket.id) {
            Some(s) if s.seq == ticket.seq && matches!(s.state, State::Pending) => {
                s.state = State::Live(c);
                Ok(())
            }
            _ => Err(c),
        }
    }

    /// The backend failed to start: forget the reservation. Returns the
    /// ports it had on the chardevs it references (to detach).
    pub fn abort(&mut self, ticket: Ticket) -> Vec<(String, PortId)> {
        if self.chardevs.get(&ticket.id).is_some_and(|s| s.seq == ticket.seq) {
            if let Some(s) = self.chardevs.remove(&ticket.id) {
                return self.release_references(&ticket.id, &s.info.references);
            }
        }
        Vec::new()
    }

    /// Remove a chardev nobody uses; returns what the caller kept for it,
    /// and the ports it had on the chardevs it references (to detach).
    pub fn remove(&mut self, id: &str) -> Result<(C, Vec<(String, PortId)>), Reject> {
        let s = self.chardevs.get(id).ok_or(Reject::NotFound)?;
        if matches!(s.state, State::Pending) || s.leased || !s.holders.is_empty() {
            return Err(Reject::Busy);
        }
        let s = self.chardevs.remove(id).ok_or(Reject::NotFound)?;
        let ports = self.release_references(id, &s.info.references);
        match s.state {
            State::Live(c) => Ok((c, ports)),
            State::Pending => Err(Reject::Busy),
        }
    }

    /// The chardev's actor went away by itself: forget it (and the devices
    /// on it), if it is still the same generation. Returns what the caller
    /// kept for it, and the ports it had on the chardevs it references.
    pub fn gone(&mut self, id: &str, generation: u64) -> Option<Gone<C>> {
        let s = self.chardevs.get(id)?;
        if s.generation != generation || !matches!(s.state, State::Live(_)) {
            return None;
        }
        let s = self.chardevs.remove(id)?;
        let mut ports = self.release_references(id, &s.info.references);
        // Its devices go too, and let go of their other chardevs.
        let mut devices = Vec::new();
        for h in &s.holders {
            if let (Holder::Device(d), _) = h {
                if let Some((_, p)) = self.remove_device(d) {
                    ports.extend(p);
                    devices.push(d.clone());
                }
            }
        }
        match s.state {
            State::Live(c) => Some(Gone {
                kept: c,
                ports,
                devices,
            }),
            State::Pending => None,
        }
    }

    /// A live chardev.
    pub fn get(&self, id: &str) -> Option<&C> {
        match &self.chardevs.get(id)?.state {
            State::Live(c) => Some(c),
            State::Pending => None,
        }
    }

    /// A live chardev's kind.
    pub fn info(&self, id: &str) -> Option<&KindInfo> {
        let s = self.chardevs.get(id)?;
        matches!(s.state, State::Live(_)).then_some(&s.info)
    }

    /// A live chardev's place in creation order.
    pub fn seq_of(&self, id: &str) -> Option<u64> {
        let s = self.chardevs.get(id)?;
        matches!(s.state, State::Live(_)).then_some(s.seq)
    }

    /// A live chardev's generation.
    #[cfg(test)]
    pub fn generation_of(&self, id: &str) -> Option<u64> {
        let s = self.chardevs.get(id)?;
        matches!(s.state, State::Live(_)).then_some(s.generation)
    }

    /// How many chardevs exist or are being created.
    pub fn chardev_count(&self) -> usize {
        self.chardevs.len()
    }

    /// How many devices exist.
    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Every live chardev, in creation order.
    pub fn live(&self) -> Vec<(&str, &C)> {
        let mut v: Vec<(u64, &str, &C)> = self
            .chardevs
            .iter()
            .filter_map(|(id, s)| match &s.state {
                State::Live(c) => Some((s.seq, id.as_str(), c)),
                State::Pending => None,
            })
            .collect();
        v.sort_by_key(|(seq, _, _)| *seq);
        v.into_iter().map(|(_, id, c)| (id, c)).collect()
    }

    /// Start replacing a chardev's backend (`chardev-change`).
    pub fn begin_change(&mut self, id: &str, new: KindInfo) -> Result<Lease, Reject> {
        let s = match self.chardevs.get(id) {
            Some(s) if matches!(s.state, State::Live(_)) => s,
            _ => return Err(Reject::NotFound),
        };
        if !s.info.hotswap {
            return Err(Reject::NotHotswappable);
        }
        if s.holders.iter().any(|(h, _)| !h.follows_hotswap()) {
            return Err(Reject::HotswapUnsupported);
        }
        let plain = new.hotswap && new.references.is_empty();
        if !plain && !s.holders.is_empty() {
            // A chardev with frontends cannot become a mux or a hub (QEMU
            // cannot move its frontends onto one either).
            return Err(Reject::NotHotswappable);
        }
        if s.leased {
            return Err(Reject::Busy);
        }
        if let Some(r) = self.lent_conflict(&new, &s.info.resources) {
            return Err(Reject::ResourceLent(r));
        }
        // QEMU's easy case (no frontend): the chardev goes and the new one
        // is added; a mux or hub takes its references here.
        self.check_references(id, &new)?;
        let Some(s) = self.chardevs.get(id) else {
            return Err(Reject::NotFound);
        };
        let lent: Vec<String> = s
            .info
            .resources
            .iter()
            .filter(|r| new.resources.contains(r))
            .map(|r| r.key.clone())
            .collect();
        let seq = s.seq;
        self.lent.extend(lent.iter().cloned());
        self.take_references(id, &new);
        let generation = self.generation();
        if let Some(s) = self.chardevs.get_mut(id) {
            s.leased = true;
        }
        Ok(Lease {
            id: id.to_owned(),
            seq,
            lent,
            generation,
            new,
        })
    }

    /// A change failed: everything stays as it was; returns the ports the
    /// replacement had on the chardevs it references (to detach).
    pub fn fail_change(&mut self, lease: Lease) -> Vec<(String, PortId)> {
        let refs = lease.new.references.clone();
        let id = lease.id.clone();
        let _ = self.finish_change(lease, None);
        self.release_references(&id, &refs)
    }

    /// Finish a change: with `Some(new)` the replacement takes the chardev's
    /// place (its users stay) and the old value is returned to be stopped;
    /// with `None` (it failed) everything stays as it was. If the chardev
    /// vanished meanwhile (it cannot, short of a bug), `Err` gives `new` back.
    pub fn finish_change(&mut self, lease: Lease, new: Option<C>) -> Result<Option<C>, Option<C>> {
        for k in &lease.lent {
            if let Some(i) = self.lent.iter().position(|x| x == k) {
                self.lent.remove(i);
            }
        }
        let Some(s) = self.chardevs.get_mut(&lease.id).filter(|s| s.seq == lease.seq) else {
            return Err(new);
        };
        s.leased = false;
        let Some(new) = new else {
            return Ok(None);
        };
        s.info = lease.new;
        s.generation = lease.generation;
        match std::mem::replace(&mut s.state, State::Live(new)) {
            State::Live(old) => Ok(Some(old)),
            State::Pending => Ok(None),
        }
    }

    /// Whether a change is in progress.
    pub fn is_leased(&self, id: &str) -> bool {
        self.chardevs.get(id).is_some_and(|s| s.leased)
    }

    /// Attach a user to a live chardev (the port id is set with [`Self::set_port`]).
    pub fn attach(&mut self, chardev: &str, holder: Holder) -> Result<(), AttachReject> {
        let s = match self.chardevs.get_mut(chardev) {
            Some(s) if matches!(s.state, State::Live(_)) => s,
            _ => return Err(AttachReject::NotFound),
        };
        if !Self::room(s) {
            return Err(AttachReject::Full { max: s.info.max_ports });
        }
        s.holders.push((holder, None));
        Ok(())
    }

    /// Record the port a holder's attachment uses.
    pub fn set_port(&mut self, chardev: &str, holder: &Holder, port: PortId) {
        if let Some(s) = self.chardevs.get_mut(chardev) {
            if let Some(h) = s.holders.iter_mut().find(|(h, _)| h == holder) {
                h.1 = Some(port);
            }
        }
    }

    /// The port a holder's attachment uses.
    pub fn port_of(&self, chardev: &str, holder: &Holder) -> Option<PortId> {
        self.chardevs
            .get(chardev)?
            .holders
            .iter()
            .find(|(h, _)| h == holder)
            .and_then(|(_, p)| *p)
    }

    /// Detach a user; returns its port, if it had one.
    pub fn detach(&mut self, chardev: &str, holder: &Holder) -> Option<PortId> {
        let s = self.chardevs.get_mut(chardev)?;
        let i = s.holders.iter().position(|(h, _)| h == holder)?;
        s.holders.remove(i).1
    }

    /// The users of a chardev.
    pub fn holders(&self, chardev: &str) -> Vec<Holder> {
        self.chardevs
            .get(chardev)
            .map(|s| s.holders.iter().map(|(h, _)| h.clone()).collect())
            .unwrap_or_default()
    }

    /// Reserve a device id and attach it to its chardevs. Without an id the
    /// device is named `device[N]` as QEMU names anonymous devices.
    pub fn add_device(
        &mut self,
        id: Option<&str>,
        driver: &'static str,
        chardevs: &[String],
    ) -> Result<String, DeviceReject> {
        let anonymous = id.is_none();
        let id = match id {
            Some(id) if !id_wellformed(id) => return Err(DeviceReject::BadId),
            Some(id) if self.devices.contains_key(id) => return Err(DeviceReject::Duplicate(id.to_owned())),
            Some(id) => id.to_owned(),
            None => {
                let mut n = self.devices.len();
                loop {
                    let candidate = format!("device[{n}]");
                    if !self.devices.contains_key(&candidate) {
                        break candidate;
                    }
                    n += 1;
                }
            }
        };
        for (i, c) in chardevs.iter().enumerate() {
            match self.chardevs.get(c) {
                Some(s) if matches!(s.state, State::Live(_)) => {
                    // The same chardev twice needs room for two.
                    let twice = chardevs[..i].iter().filter(|x| *x == c).count();
                    if s.holders.len() + twice >= s.info.max_ports {
                        return Err(DeviceReject::ChardevInUse(i));
                    }
                }
                _ => return Err(DeviceReject::NoChardev(i)),
            }
        }
        for c in chardevs {
            if let Some(s) = self.chardevs.get_mut(c) {
                s.holders.push((Holder::Device(id.clone()), None));
            }
        }
        self.devices.insert(
            id.clone(),
            DeviceEntry {
                driver,
                chardevs: chardevs.to_vec(),
                anonymous,
            },
        );
        Ok(id)
    }

    /// A device.
    pub fn device(&self, id: &str) -> Option<&DeviceEntry> {
        self.devices.get(id)
    }

    /// Remove a device and detach it from its chardevs; returns it with the
    /// ports it used (chardev, port).
    pub fn remove_device(&mut self, id: &str) -> Option<(DeviceEntry, Vec<(String, PortId)>)> {
        let dev = self.devices.remove(id)?;
        let holder = Holder::Device(id.to_owned());
        let mut ports = Vec::new();
        for c in &dev.chardevs {
            if let Some(p) = self.detach(c, &holder) {
                ports.push((c.clone(), p));
            }
        }
        Some((dev, ports))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(key: &str, exclusive: bool) -> Resource {
        Resource {
            key: key.into(),
            exclusive,
        }
    }

    fn live(r: &mut Registry<&'static str>, id: &str, info: KindInfo) {
        let t = r.reserve(id, info).unwrap();
        r.commit(t, "actor").unwrap();
    }

    #[test]
    fn a_reserved_id_is_taken_before_its_backend_exists() {
        let mut r = Registry::<&str>::new();
        let t = r.reserve("a", KindInfo::plain("null")).unwrap();
        assert_eq!(r.reserve("a", KindInfo::plain("null")), Err(Reject::AlreadyExists));
        assert_eq!(r.get("a"), None, "not live yet");
        assert_eq!(r.remove("a"), Err(Reject::Busy), "being created is busy");
        r.commit(t, "actor").unwrap();
        assert_eq!(r.get("a"), Some(&"actor"));
        assert_eq!(r.remove("a"), Ok(("actor", vec![])));
        assert_eq!(r.remove("a"), Err(Reject::NotFound));
    }

    #[test]
    fn an_aborted_reservation_frees_the_id_and_its_references() {
        let mut r = Registry::<&str>::new();
        live(&mut r, "base", KindInfo::plain("ringbuf"));
        let mux = KindInfo {
            references: vec!["base".into()],
            ..KindInfo::plain("mux")
        };
        let t = r.reserve("m", mux.clone()).unwrap();
        assert_eq!(r.remove("base"), Err(Reject::Busy), "the base is held from the start");
        r.abort(t);
        assert!(r.reserve("m", KindInfo::plain("null")).is_ok());
        assert_eq!(r.holders("base"), vec![]);
    }

    #[test]
    fn references_decide_busy_and_removal_frees_them() {
        let mut r = Registry::<&str>::new();
        live(&mut r, "base", KindInfo::plain("ringbuf"));
        let mux = KindInfo {
            references: vec!["base".into()],
            max_ports: 4,
            hotswap: false,
            ..KindInfo::plain("mux")
        };
        live(&mut r, "m", mux.clone());
        r.set_port("base", &Holder::Chardev("m".into()), 3);
        assert_eq!(
            r.reserve("m2", mux.clone()),
            Err(Reject::RefInUse {
                id: "base".into(),
                kind: "ringbuf",
                max: 1
            })
        );
        assert_eq!(
            r.reserve(
                "m3",
                KindInfo {
                    references: vec!["nope".into()],
                    ..mux.clone()
                }
            ),
            Err(Reject::RefMissing("nope".into()))
        );
        assert_eq!(r.remove("base"), Err(Reject::Busy));
        assert_eq!(
            r.begin_change("base", KindInfo::plain("null")),
            Err(Reject::HotswapUnsupported),
            "a mux cannot follow a swap of its base"
        );
        assert_eq!(
            r.begin_change("m", KindInfo::plain("null")),
            Err(Reject::NotHotswappable)
        );
        // A chardev with no frontend may become a mux (QEMU's easy case),
        // over anything but itself; it then holds its base.
        live(&mut r, "n", KindInfo::plain("null"));
        live(&mut r, "b2", KindInfo::plain("null"));
        let over = |base: &str| KindInfo {
            references: vec![base.into()],
            ..mux.clone()
        };
        assert_eq!(r.begin_change("n", over("n")), Err(Reject::RefMissing("n".into())));
        assert_eq!(
            r.begin_change("n", over("nope")),
            Err(Reject::RefMissing("nope".into()))
        );
        let lease = r.begin_change("n", over("b2")).unwrap();
        assert_eq!(r.holders("b2"), vec![Holder::Chardev("n".into())]);
        assert_eq!(r.fail_change(lease), vec![], "no port was made");
        assert_eq!(r.holders("b2"), vec![], "a failed change lets go of the base");
        let lease = r.begin_change("n", over("b2")).unwrap();
        assert_eq!(r.finish_change(lease, Some("mux")), Ok(Some("actor")));
        assert_eq!(r.remove("b2"), Err(Reject::Busy), "the base is busy");
        r.attach("n", Holder::Library(7)).unwrap();
        assert_eq!(
            r.begin_change("n", over("b2")),
            Err(Reject::NotHotswappable),
            "the mux is not changed"
        );
        for i in 0..4 {
            r.attach("m", Holder::Library(i)).unwrap();
        }
        assert_eq!(r.attach("m", Holder::Library(9)), Err(AttachReject::Full { max: 4 }));
        assert_eq!(r.remove("m"), Err(Reject::Busy));
        for i in 0..4 {
            r.detach("m", &Holder::Library(i));
        }
        assert_eq!(
            r.remove("m"),
            Ok(("actor", vec![("base".to_owned(), 3)])),
            "a mux with no frontend can go, and lets go of its base"
        );
        assert_eq!(
            r.remove("base").map(|(c, _)| c),
            Ok("actor"),
            "and its base is free again"
        );
    }

    #[test]
    fn a_change_is_exclusive_and_lends_shared_resources() {
        let mut r = Registry::<&str>::new();
        let pty = KindInfo {
            resources: vec![res("pty:/tmp/l", true)],
            ..KindInfo::plain("pty")
        };
        live(&mut r, "p", pty.clone());
        r.attach("p", Holder::Device("d".into())).unwrap();
        let lease = r.begin_change("p", pty.clone()).unwrap();
        assert_eq!(lease.lent, vec!["pty:/tmp/l".to_owned()]);
        assert_eq!(r.begin_change("p", pty.clone()), Err(Reject::Busy));
        assert_eq!(r.remove("p"), Err(Reject::Busy));
        assert_eq!(
            r.reserve("q", pty.clone()),
            Err(Reject::ResourceLent(res("pty:/tmp/l", true))),
            "a lent resource is off limits"
        );
        let gen_before = r.generation_of("p").unwrap();
        assert_eq!(
            r.finish_change(lease, None),
            Ok(None),
            "a failed change changes nothing"
        );
        assert_eq!(r.generation_of("p"), Some(gen_before));
        let lease = r.begin_change("p", KindInfo::plain("null")).unwrap();
        assert!(lease.lent.is_empty());
        assert_eq!(r.finish_change(lease, Some("new")), Ok(Some("actor")));
        assert_eq!(r.get("p"), Some(&"new"));
        assert_eq!(r.info("p").unwrap().kind, "null");
        assert_eq!(r.holders("p"), vec![Holder::Device("d".into())], "users stay");
        assert!(r.reserve("q", pty).is_ok(), "the resource is free again");
    }

    #[test]
    fn a_late_gone_report_never_removes_a_successor() {
        let mut r = Registry::<&str>::new();
        live(&mut r, "a", KindInfo::plain("null"));
        let old = r.generation_of("a").unwrap();
        let lease = r.begin_change("a", KindInfo::plain("ringbuf")).unwrap();
        r.finish_change(lease, Some("new")).unwrap();
        assert_eq!(r.gone("a", old), None);
        assert_eq!(r.get("a"), Some(&"new"));
        let now = r.generation_of("a").unwrap();
        assert_eq!(r.gone("a", now).map(|g| g.kept), Some("new"));
        assert_eq!(r.get("a"), None);
    }

    #[test]
    fn devices_follow_qemus_id_rules_and_hold_their_chardevs() {
        let mut r = Registry::<&str>::new();
        live(&mut r, "c", KindInfo::plain("null"));
        assert_eq!(
            r.add_device(Some("1x"), "echo", &["c".into()]),
            Err(DeviceReject::BadId)
        );
        assert_eq!(
            r.add_device(Some("e"), "echo", &["nope".into()]),
            Err(DeviceReject::NoChardev(0))
        );
        assert_eq!(r.add_device(Some("e"), "echo", &["c".into()]), Ok("e".into()));
        assert_eq!(
            r.add_device(Some("e"), "echo", &["c".into()]),
            Err(DeviceReject::Duplicate("e".into()))
        );
        assert_eq!(
            r.add_device(None, "echo", &["c".into()]),
            Err(DeviceReject::ChardevInUse(0))
        );
        r.set_port("c", &Holder::Device("e".into()), 7);
        assert_eq!(r.remove("c"), Err(Reject::Busy));
        let (dev, ports) = r.remove_device("e").unwrap();
        assert_eq!((dev.driver, ports), ("echo", vec![("c".to_owned(), 7)]));
        assert_eq!(r.add_device(None, "port", &["c".into()]), Ok("device[0]".into()));
        assert!(r.device("device[0]").unwrap().anonymous);
    }

    #[test]
    fn live_chardevs_are_listed_in_creation_order() {
        let mut r = Registry::<&str>::new();
        for id in ["z", "a", "m"] {
            live(&mut r, id, KindInfo::plain("null"));
        }
        let _pending = r.reserve("p", KindInfo::plain("null")).unwrap();
        let ids: Vec<&str> = r.live().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec!["z", "a", "m"]);
    }

    #[test]
    fn wellformed_ids_are_qemus() {
        assert!(id_wellformed("a-b.c_1"));
        assert!(!id_wellformed("1a"));
        assert!(!id_wellformed(""));
        assert!(!id_wellformed("a b"));
    }
}
