//! QEMU's input core as a table: the input handlers the device kinds
//! register (msmouse, wctablet, vc), in registration order, and how events
//! are routed to them (`input-send-event`, `send-key`, `query-mice`). Pure:
//! the caller says which chardevs are live and sends the batches.
use crate::chardev::input::{mask, InputEvent, InputHandler, MouseInfo};
use crate::error::{DeviceError, Error};

/// A registered handler (QEMU's `QemuInputHandlerState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputEntry {
    /// QEMU's handler index (from 1, never reused).
    pub index: i64,
    /// The chardev that registered it.
    pub chardev: String,
    /// What it takes.
    pub handler: InputHandler,
}

/// The handlers, in registration order.
#[derive(Debug)]
pub struct InputHandlers {
    entries: Vec<InputEntry>,
    next_index: i64,
}

impl Default for InputHandlers {
    fn default() -> Self {
        InputHandlers {
            entries: Vec::new(),
            next_index: 1,
        }
    }
}

/// Events for one chardev's handler, in order.
pub type Batch = (String, Vec<InputEvent>);

impl InputHandlers {
    /// `chardev` now has `handler` (a chardev added or changed; `None`: it
    /// has none, or it is gone). A new registration goes last, with a new index.
    pub fn register(&mut self, chardev: &str, handler: Option<InputHandler>) {
        self.entries.retain(|e| e.chardev != chardev);
        if let Some(handler) = handler {
            self.entries.push(InputEntry {
                index: self.next_index,
                chardev: chardev.to_owned(),
                handler,
            });
            self.next_index += 1;
        }
    }

    /// Whether `chardev` registered a handler (it is a console to route to).
    pub fn has(&self, chardev: &str) -> bool {
        self.entries.iter().any(|e| e.chardev == chardev)
    }

    /// QEMU's `qemu_input_find_handler`: the console's own handler first,
    /// then the first registered that takes the event type.
    pub fn target(&self, mask: u8, console: Option<&str>, live: impl Fn(&str) -> bool) -> Option<&InputEntry> {
        let takes = |e: &&InputEntry| e.handler.mask & mask != 0 && live(&e.chardev);
        console
            .and_then(|c| self.entries.iter().filter(|e| e.chardev == c).find(takes))
            .or_else(|| self.entries.iter().find(takes))
    }

    /// `input-send-event`, checked in QEMU's order (the console, its head,
    /// then a handler for every event) before anything is sent: the batches
    /// per chardev, in first-use order.
    pub fn route(
        &self,
        device: Option<&str>,
        head: Option<i64>,
        events: &[InputEvent],
        live: impl Fn(&str) -> bool,
    ) -> Result<Vec<Batch>, Error> {
        if let Some(dev) = device {
            if !(self.has(dev) && live(dev)) {
                return Err(DeviceError::NotFound(dev.to_owned()).into());
            }
            let head = head.unwrap_or(0);
            if head != 0 {
                return Err(DeviceError::NotBound {
                    device: dev.to_owned(),
                    head,
                }
                .into());
            }
        }
        let mut batches: Vec<Batch> = Vec::new();
        for ev in events {
            let Some(t) = self.target(ev.mask(), device, &live) else {
                return Err(Error::NoInputHandler(ev.kind_name()));
            };
            match batches.iter_mut().find(|(c, _)| *c == t.chardev) {
                Some((_, b)) => b.push(ev.clone()),
                None => batches.push((t.chardev.clone(), vec![ev.clone()])),
            }
        }
        Ok(batches)
    }

    /// `send-key`: the keys pressed in order and released in reverse, for
    /// the first key handler (none: QEMU drops them silently).
    pub fn keys(&self, keys: &[String], live: impl Fn(&str) -> bool) -> Option<Batch> {
        let t = self.target(mask::KEY, None, live)?;
        let down = keys.iter().map(|k| InputEvent::Key {
            qcode: k.clone(),
            down: true,
        });
        let up = keys.iter().rev().map(|k| InputEvent::Key {
            qcode: k.clone(),
            down: false,
        });
        Some((t.chardev.clone(), down.chain(up).collect()))
    }

    /// `query-mice`: the pointer handlers, newest first (QEMU prepends), the
    /// one that gets pointer events now marked current.
    pub fn mice(&self, live: impl Fn(&str) -> bool) -> Vec<MouseInfo> {
        let pointer = mask::REL | mask::ABS;
        let current = self.target(pointer, None, &live).map(|e| e.index);
        self.entries
            .iter()
            .rev()
            .filter(|e| e.handler.mask & pointer != 0 && live(&e.chardev))
            .map(|e| MouseInfo {
                name: e.handler.name.to_owned(),
                index: e.index,
                current: Some(e.index) == current,
                absolute: e.handler.mask & mask::ABS != 0,
            })
            .collect()
    }

    /// The first registered chardev that `pred` accepts (the first vc, for
    /// a screen dump without a device).
    pub fn first(&self, pred: impl Fn(&str) -> bool) -> Option<&str> {
        self.entries.iter().map(|e| e.chardev.as_str()).find(|c| pred(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUSE: InputHandler = InputHandler {
        name: "QEMU Microsoft Mouse",
        mask: mask::BTN | mask::REL,
    };
    const TABLET: InputHandler = InputHandler {
        name: "QEMU Wacom Pen Tablet",
        mask: mask::BTN | mask::ABS,
    };
    const KEYS: InputHandler = InputHandler {
        name: "vc",
        mask: mask::KEY,
    };

    fn key(q: &str, down: bool) -> InputEvent {
        InputEvent::Key { qcode: q.into(), down }
    }

    #[test]
    fn events_go_to_the_first_handler_that_takes_their_type_or_to_the_console_first() {
        let mut t = InputHandlers::default();
        t.register("m", Some(MOUSE));
        t.register("t", Some(TABLET));
        let btn = InputEvent::Btn {
            button: crate::chardev::input::Button::Left,
            down: true,
        };
        let all = |_: &str| true;
        assert_eq!(
            t.route(None, None, std::slice::from_ref(&btn), all).unwrap(),
            vec![("m".into(), vec![btn.clone()])]
        );
        assert_eq!(
            t.route(Some("t"), None, std::slice::from_ref(&btn), all).unwrap()[0].0,
            "t"
        );
        assert_eq!(
            t.route(None, None, std::slice::from_ref(&btn), |c| c != "m").unwrap()[0].0,
            "t",
            "a chardev that is gone is skipped"
        );
    }

    #[test]
    fn routing_fails_before_anything_is_sent_in_qemus_order() {
        let mut t = InputHandlers::default();
        t.register("m", Some(MOUSE));
        let all = |_: &str| true;
        assert_eq!(
            t.route(Some("x"), Some(1), &[], all).unwrap_err().to_string(),
            "Device 'x' not found"
        );
        assert_eq!(
            t.route(Some("m"), Some(1), &[], all).unwrap_err().to_string(),
            "Device m (head 1) is not bound to a QemuConsole"
        );
        assert_eq!(
            t.route(None, None, &[key("a", true)], all).unwrap_err().to_string(),
            "Input handler not found for event type key"
        );
    }

    #[test]
    fn keys_are_pressed_in_order_and_released_in_reverse() {
        let mut t = InputHandlers::default();
        assert_eq!(t.keys(&["a".into()], |_| true), None, "no key handler: dropped");
        t.register("vc", Some(KEYS));
        let (c, evs) = t.keys(&["ctrl".into(), "c".into()], |_| true).unwrap();
        assert_eq!(c, "vc");
        assert_eq!(
            evs,
            vec![key("ctrl", true), key("c", true), key("c", false), key("ctrl", false)]
        );
    }

    #[test]
    fn mice_are_listed_newest_first_with_a_fresh_index_after_a_change() {
        let mut t = InputHandlers::default();
        t.register("m", Some(MOUSE));
        t.register("t", Some(TABLET));
        t.register("m", Some(MOUSE));
        let mice = t.mice(|_| true);
        assert_eq!(
            mice.iter().map(|m| (m.index, m.current)).collect::<Vec<_>>(),
            vec![(3, false), (2, true)],
            "re-registering moves the mouse last with index 3"
        );
        t.register("t", None);
        assert_eq!(t.mice(|_| true)[0].index, 3);
        assert!(t.mice(|_| true)[0].current);
        assert_eq!(t.first(|c| c == "m"), Some("m"));
    }
}
