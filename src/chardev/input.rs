//! Input events (QEMU's `ui.json` `InputEvent`), the input handlers of the
//! device kinds (msmouse, wctablet, vc), and how a key becomes the bytes a
//! terminal sends.
//!
//! QEMU's input core routes each event of `input-send-event` to the first
//! handler (in registration order) whose mask has the event's type, then
//! calls `sync` on every handler that got events. The supervisor does the
//! routing; a kind only sees its own events ([`crate::chardev::Backend::input`]).
use crate::json::Json;

/// `InputEventKind` bits (QEMU's `INPUT_EVENT_MASK_*`).
pub mod mask {
    /// `key`.
    pub const KEY: u8 = 1 << 0;
    /// `btn`.
    pub const BTN: u8 = 1 << 1;
    /// `rel`.
    pub const REL: u8 = 1 << 2;
    /// `abs`.
    pub const ABS: u8 = 1 << 3;
    /// `mtt`.
    pub const MTT: u8 = 1 << 4;
}

/// What a kind registers with the input core (QEMU's `QemuInputHandler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputHandler {
    /// QEMU's handler name (`query-mice` shows it).
    pub name: &'static str,
    /// Which event types it takes ([`mask`]).
    pub mask: u8,
}

/// A row of `query-mice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MouseInfo {
    /// The handler's name.
    pub name: String,
    /// Its index (QEMU counts handlers from 1).
    pub index: i64,
    /// Whether it gets pointer events now.
    pub current: bool,
    /// Whether it takes absolute positions.
    pub absolute: bool,
}

/// A mouse button (QEMU's `InputButton`; the ones the device kinds use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    /// The left (first) button.
    Left,
    /// The middle (third) button.
    Middle,
    /// The right (second) button.
    Right,
    /// Any other (`wheel-up`, `side`, `touch`, ...): no kind here uses them.
    Other,
}

/// A pointer axis (QEMU's `InputAxis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// The horizontal axis.
    X,
    /// The vertical axis.
    Y,
}

/// One input event (QEMU's `InputEvent`), as `input-send-event` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// `key`: a QKeyCode name (numbers are turned into names as QEMU does).
    Key {
        /// The qcode (`a`, `shift`, `ret`, ...).
        qcode: String,
        /// Pressed or released.
        down: bool,
    },
    /// `btn`: a button pressed or released.
    Btn {
        /// The button pressed or released.
        button: Button,
        /// Pressed or released.
        down: bool,
    },
    /// `rel`: a relative move.
    Rel {
        /// The axis moved along.
        axis: Axis,
        /// How far (signed, in the device's units).
        value: i64,
    },
    /// `abs`: an absolute position (0 to 0x7fff).
    Abs {
        /// The axis of the position.
        axis: Axis,
        /// The position on it (0 to 0x7fff).
        value: i64,
    },
    /// `mtt`: multi-touch (no kind here takes it).
    Mtt,
}

impl InputEvent {
    /// Its `mask` bit.
    pub fn mask(&self) -> u8 {
        match self {
            InputEvent::Key { .. } => mask::KEY,
            InputEvent::Btn { .. } => mask::BTN,
            InputEvent::Rel { .. } => mask::REL,
            InputEvent::Abs { .. } => mask::ABS,
            InputEvent::Mtt => mask::MTT,
        }
    }

    /// QEMU's `InputEventKind` name.
    pub fn kind_name(&self) -> &'static str {
        match self {
            InputEvent::Key { .. } => "key",
            InputEvent::Btn { .. } => "btn",
            InputEvent::Rel { .. } => "rel",
            InputEvent::Abs { .. } => "abs",
            InputEvent::Mtt => "mtt",
        }
    }

    /// From QMP's `{"type": ..., "data": {...}}` (already schema-checked).
    pub fn from_qmp(v: &Json) -> InputEvent {
        let data = v.get("data");
        let field = |k: &str| data.and_then(|d| d.get(k));
        let down = matches!(field("down"), Some(Json::Bool(true)));
        let axis = || match field("axis").and_then(Json::as_str) {
            Some("y") => Axis::Y,
            _ => Axis::X,
        };
        let value = || field("value").map(int).unwrap_or(0);
        match v.get("type").and_then(Json::as_str) {
            Some("key") => InputEvent::Key {
                qcode: field("key").map(key_value).unwrap_or_default(),
                down,
            },
            Some("btn") => InputEvent::Btn {
                button: match field("button").and_then(Json::as_str) {
                    Some("left") => Button::Left,
                    Some("middle") => Button::Middle,
                    Some("right") => Button::Right,
                    _ => Button::Other,
                },
                down,
            },
            Some("rel") => InputEvent::Rel {
                axis: axis(),
                value: value(),
            },
            Some("abs") => InputEvent::Abs {
                axis: axis(),
                value: value(),
            },
            _ => InputEvent::Mtt,
        }
    }
}

fn int(v: &Json) -> i64 {
    match v {
        Json::Int(i) => *i,
        Json::UInt(u) => *u as i64,
        _ => 0,
    }
}

/// QEMU 10.0.2's `QKeyCode` names, in its order (a test holds them against
/// the served schema).
pub const QCODES: &[&str] = &[
    "unmapped",
    "shift",
    "shift_r",
    "alt",
    "alt_r",
    "ctrl",
    "ctrl_r",
    "menu",
    "esc",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "0",
    "minus",
    "equal",
    "backspace",
    "tab",
    "q",
    "w",
    "e",
    "r",
    "t",
    "y",
    "u",
    "i",
    "o",
    "p",
    "bracket_left",
    "bracket_right",
    "ret",
    "a",
    "s",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "semicolon",
    "apostrophe",
    "grave_accent",
    "backslash",
    "z",
    "x",
    "c",
    "v",
    "b",
    "n",
    "m",
    "comma",
    "dot",
    "slash",
    "asterisk",
    "spc",
    "caps_lock",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
    "f7",
    "f8",
    "f9",
    "f10",
    "num_lock",
    "scroll_lock",
    "kp_divide",
    "kp_multiply",
    "kp_subtract",
    "kp_add",
    "kp_enter",
    "kp_decimal",
    "sysrq",
    "kp_0",
    "kp_1",
    "kp_2",
    "kp_3",
    "kp_4",
    "kp_5",
    "kp_6",
    "kp_7",
    "kp_8",
    "kp_9",
    "less",
    "f11",
    "f12",
    "print",
    "home",
    "pgup",
    "pgdn",
    "end",
    "left",
    "up",
    "down",
    "right",
    "insert",
    "delete",
    "stop",
    "again",
    "props",
    "undo",
    "front",
    "copy",
    "open",
    "paste",
    "find",
    "cut",
    "lf",
    "help",
    "meta_l",
    "meta_r",
    "compose",
    "pause",
    "ro",
    "hiragana",
    "henkan",
    "yen",
    "muhenkan",
    "katakanahiragana",
    "kp_comma",
    "kp_equals",
    "power",
    "sleep",
    "wake",
    "audionext",
    "audioprev",
    "audiostop",
    "audioplay",
    "audiomute",
    "volumeup",
    "volumedown",
    "mediaselect",
    "mail",
    "calculator",
    "computer",
    "ac_home",
    "ac_back",
    "ac_forward",
    "ac_refresh",
    "ac_bookmarks",
    "lang1",
    "lang2",
    "f13",
    "f14",
    "f15",
    "f16",
    "f17",
    "f18",
    "f19",
    "f20",
    "f21",
    "f22",
    "f23",
    "f24",
];

/// Whether `name` is one of QEMU's key codes.
pub fn is_qcode(name: &str) -> bool {
    QCODES.contains(&name)
}

/// A `KeyValue` (`{"type": "qcode", "data": "a"}` or `{"type": "number",
/// "data": 30}`) as a qcode name; unknown numbers are `unmapped`, as in QEMU.
pub fn key_value(v: &Json) -> String {
    let data = v.get("data");
    match v.get("type").and_then(Json::as_str) {
        Some("number") => number_to_qcode(data.map(int).unwrap_or(0)).to_owned(),
        _ => data.and_then(Json::as_str).unwrap_or("unmapped").to_owned(),
    }
}

/// QEMU's `qemu_input_key_number_to_qcode` for the keys a terminal has
/// (QEMU's "qnum" numbering: PC scancode set 1, `0xe0`-prefixed codes with
/// the high bit set).
pub fn number_to_qcode(n: i64) -> &'static str {
    const SET1: [&str; 0x3a] = [
        "unmapped",
        "esc",
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
        "7",
        "8",
        "9",
        "0",
        "minus",
        "equal",
        "backspace",
        "tab",
        "q",
        "w",
        "e",
        "r",
        "t",
        "y",
        "u",
        "i",
        "o",
        "p",
        "bracket_left",
        "bracket_right",
        "ret",
        "ctrl",
        "a",
        "s",
        "d",
        "f",
        "g",
        "h",
        "j",
        "k",
        "l",
        "semicolon",
        "apostrophe",
        "grave_accent",
        "shift",
        "backslash",
        "z",
        "x",
        "c",
        "v",
        "b",
        "n",
        "m",
        "comma",
        "dot",
        "slash",
        "shift_r",
        "kp_multiply",
        "alt",
        "spc",
    ];
    match n {
        0..=0x39 => SET1[n as usize],
        0x3a => "caps_lock",
        0x9c => "kp_enter",
        0x9d => "ctrl_r",
        0xb8 => "alt_r",
        0xc7 => "home",
        0xc8 => "up",
        0xc9 => "pgup",
        0xcb => "left",
        0xcd => "right",
        0xcf => "end",
        0xd0 => "down",
        0xd1 => "pgdn",
        0xd2 => "insert",
        0xd3 => "delete",
        _ => "unmapped",
    }
}

/// Modifier state and key-to-bytes translation of a text console (US
/// layout): what QEMU's UI hands its vc as keysyms, and the vc's
/// `qemu_text_console_handle_keysym` turns into bytes.
#[derive(Debug, Default, Clone)]
pub struct Keyboard {
    shift: bool,
    ctrl: bool,
    caps: bool,
}

impl Keyboard {
    /// A key event; returns the bytes the terminal sends for it.
    pub fn key(&mut self, qcode: &str, down: bool) -> Vec<u8> {
        match qcode {
            "shift" | "shift_r" => {
                self.shift = down;
                return Vec::new();
            }
            "ctrl" | "ctrl_r" => {
                self.ctrl = down;
                return Vec::new();
            }
            "caps_lock" => {
                if down {
                    self.caps = !self.caps;
                }
                return Vec::new();
            }
            _ if !down => return Vec::new(),
            _ => {}
        }
        // QEMU_KEY_ESC1(n): ESC [ n ~; QEMU_KEY_UP etc.: ESC [ A.
        let esc = |tail: &str| format!("\x1b[{tail}").into_bytes();
        match qcode {
            "up" => return esc("A"),
            "down" => return esc("B"),
            "right" => return esc("C"),
            "left" => return esc("D"),
            "home" => return esc("1~"),
            "insert" => return esc("2~"),
            "delete" => return esc("3~"),
            "end" => return esc("4~"),
            "pgup" => return esc("5~"),
            "pgdn" => return esc("6~"),
            _ => {}
        }
        let Some((plain, shifted)) = us_layout(qcode) else {
            return Vec::new();
        };
        let letter = plain.is_ascii_lowercase();
        let upper = if letter { self.shift ^ self.caps } else { self.shift };
        let c = if upper { shifted } else { plain };
        if self.ctrl {
            return match c {
                b'a'..=b'z' | b'A'..=b'Z' => vec![c & 0x1f],
                b'@' | b' ' | b'2' => vec![0],
                b'[' | b'3' => vec![0x1b],
                b'\\' | b'4' => vec![0x1c],
                b']' | b'5' => vec![0x1d],
                b'^' | b'6' => vec![0x1e],
                b'_' | b'7' | b'/' => vec![0x1f],
                b'?' | b'8' => vec![0x7f],
                other => vec![other],
            };
        }
        vec![c]
    }
}

/// The characters of a qcode on a US keyboard, without and with shift.
fn us_layout(qcode: &str) -> Option<(u8, u8)> {
    if qcode.len() == 1 {
        let c = qcode.as_bytes()[0];
        if c.is_ascii_lowercase() {
            return Some((c, c.to_ascii_uppercase()));
        }
        if c.is_ascii_digit() {
            return Some((c, b")!@#$%^&*("[(c - b'0') as usize]));
        }
    }
    Some(match qcode {
        "spc" => (b' ', b' '),
        "ret" | "kp_enter" => (b'\r', b'\r'),
        "tab" => (b'\t', b'\t'),
        // QEMU_KEY_BACKSPACE is DEL.
        "backspace" => (0x7f, 0x7f),
        "esc" => (0x1b, 0x1b),
        "minus" => (b'-', b'_'),
        "equal" => (b'=', b'+'),
        "bracket_left" => (b'[', b'{'),
        "bracket_right" => (b']', b'}'),
        "backslash" => (b'\\', b'|'),
        "semicolon" => (b';', b':'),
        "apostrophe" => (b'\'', b'"'),
        "grave_accent" => (b'`', b'~'),
        "comma" => (b',', b'<'),
        "dot" => (b'.', b'>'),
        "slash" => (b'/', b'?'),
        "kp_multiply" => (b'*', b'*'),
        "kp_add" => (b'+', b'+'),
        "kp_subtract" => (b'-', b'-'),
        "kp_divide" => (b'/', b'/'),
        "kp_decimal" => (b'.', b'.'),
        _ => {
            let d = qcode.strip_prefix("kp_")?;
            let c = *d.as_bytes().first()?;
            if d.len() == 1 && c.is_ascii_digit() {
                (c, c)
            } else {
                return None;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_codes_are_the_served_schemas() {
        let schema: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../qmp/schema.json")).expect("the schema");
        let values = schema
            .iter()
            .find(|e| e["values"].as_array().is_some_and(|v| v.iter().any(|x| x == "shift_r")))
            .and_then(|e| e["values"].as_array())
            .expect("QKeyCode");
        let names: Vec<&str> = values.iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(names, QCODES);
    }

    fn typed(keys: &[(&str, bool)]) -> Vec<u8> {
        let mut k = Keyboard::default();
        keys.iter().flat_map(|(q, d)| k.key(q, *d)).collect()
    }

    #[test]
    fn keys_become_terminal_bytes() {
        assert_eq!(typed(&[("h", true), ("h", false), ("i", true)]), b"hi");
        assert_eq!(
            typed(&[("shift", true), ("a", true), ("1", true), ("shift", false), ("a", true)]),
            b"A!a"
        );
        assert_eq!(typed(&[("ctrl", true), ("c", true)]), b"\x03");
        assert_eq!(
            typed(&[("up", true), ("pgdn", true), ("ret", true)]),
            b"\x1b[A\x1b[6~\r"
        );
        assert_eq!(
            typed(&[("caps_lock", true), ("caps_lock", false), ("q", true), ("1", true)]),
            b"Q1"
        );
        assert_eq!(typed(&[("backspace", true), ("kp_7", true), ("f1", true)]), b"\x7f7");
    }

    #[test]
    fn numbers_are_qemus_qnum_codes() {
        assert_eq!(number_to_qcode(0x1e), "a");
        assert_eq!(number_to_qcode(0x1c), "ret");
        assert_eq!(number_to_qcode(0xc8), "up");
        assert_eq!(number_to_qcode(99999), "unmapped");
    }
}
