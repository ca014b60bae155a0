//! Generative differential test: seeded random QMP input, sent to real QEMU
//! 10.0.2 and to chardevd in lock step, replies compared byte for byte.
//!
//! The generator writes well-formed commands with random, missing, extra and
//! wrong-typed arguments (backends of the kinds null, ringbuf, memory,
//! file, mux and hub over chardevs of its pool, and unknown ones); random JSON `id`s (escapes, non-ASCII, surrogates,
//! U+0000 in strings and keys, big and odd numbers, nesting); QEMU's dialect
//! (single quotes, whitespace and newlines between tokens, several commands
//! per packet); and byte-level mutations of all that (raw NUL, control
//! bytes, 0xFF, invalid UTF-8, cut and doubled text). After each case a 0xFF
//! byte resets both parsers (QEMU's documented reset) and a sync command
//! marks the end of the replies.
//!
//! Normalised as the README's differences allow: the `package` string, pty
//! numbers, the per-server scratch directory, `query-chardev` rows sorted
//! (QEMU's own `compat_monitor0` left out), the lists of backends and
//! commands (chardevd lists its own), and chardev-change's atomicity: after
//! a case that changed a chardev, it is removed from both servers (QEMU
//! deletes a chardev whose change failed; chardevd keeps the old one), and
//! the order of replies in a case with `exec-oob` (QEMU's depends on its
//! threads).
//! The generator keeps away from the other listed differences: it never
//! writes U+0000 into a ring (difference 2), reads rings that may hold
//! non-ASCII bytes only as base64 (difference 2) and never asks for a ring
//! of size 0, a negative size or one above 1 GiB (difference 3).
//!
//! `CHARDEVD_GEN_CASES` (default 300) cases are run with the fixed seed 1
//! and as many with a fresh seed, printed so a failure can be replayed with
//! `CHARDEVD_GEN_SEED`. A divergence prints the input and both replies.
mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const SYNC: &str = r#"{"execute":"query-version","id":"__sync__"}"#;
const DIR: &str = "@DIR@";

/// SplitMix64: small, seedable, good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// What a string may hold.
#[derive(Clone, Copy, PartialEq)]
enum Text {
    /// Anything, U+0000 and invalid escapes included.
    Any,
    /// No U+0000 (ring data: difference 2).
    NoNul,
    /// Printable ASCII and plain escapes only (rings read as utf8).
    Ascii,
}

struct Gen {
    rng: Rng,
}

impl Gen {
    fn ws(&mut self) -> &'static str {
        if self.rng.chance(70) {
            ""
        } else {
            self.rng.pick(&[" ", "\n", "\t", "\r\n", "  ", " \n "])
        }
    }

    /// A string literal's body pieces, in JSON source form.
    fn piece(&mut self, text: Text, quote: char) -> String {
        let ascii = [
            "a", "Z", "q", "0", "9", " ", "-", "_", ".", ":", "/", "ringbuf", "id", "x y",
        ];
        let plain_escapes = [
            "\\n", "\\t", "\\/", "\\\\", "\\\"", "\\u0041", "\\r", "\\b", "\\f", "\\u007e",
        ];
        let rich = [
            "\\u00e9",
            "\\u263A",
            "\\uD83D\\uDE00",
            "\\u001F",
            "\\u007F",
            "\\u0001",
            "é",
            "☺",
            "😀",
            "\u{FFFD}",
            "\\uFFFD",
            "\\u20AC",
        ];
        let bad = [
            "\\uD800",
            "\\uDC00",
            "\\uFFFE",
            "\\uFDD0",
            "\\x",
            "\\u12",
            "\\U0041",
            "\\uD800\\u0041",
            "\\uDBFF\\uDBFF",
        ];
        match (text, self.rng.below(100)) {
            (_, 0..=54) => self.rng.pick(&ascii).to_owned(),
            (_, 55..=69) => self.rng.pick(&plain_escapes).to_owned(),
            (Text::Ascii, _) => self.rng.pick(&ascii).to_owned(),
            (_, 70..=84) => self.rng.pick(&rich).to_owned(),
            (_, 85..=89) => self.rng.pick(&bad).to_owned(),
            (_, 90..=93) if quote == '\'' => self.rng.pick(&["\"", "\\'"]).to_owned(),
            (_, 90..=93) => "'".to_owned(),
            (Text::Any, _) => self.rng.pick(&["\\u0000", "\\u0000\\u0000", "a\\u0000"]).to_owned(),
            (Text::NoNul, _) => self.rng.pick(&rich).to_owned(),
        }
    }

    fn quote(&mut self) -> char {
        if self.rng.chance(15) {
            '\''
        } else {
            '"'
        }
    }

    fn string(&mut self, text: Text, max_pieces: usize) -> String {
        let q = self.quote();
        let n = self.rng.below(max_pieces + 1);
        let body: String = (0..n).map(|_| self.piece(text, q)).collect();
        format!("{q}{body}{q}")
    }

    /// A literal for a known string value (command names, keys).
    fn lit(&mut self, s: &str) -> String {
        let q = self.quote();
        format!("{q}{s}{q}")
    }

    fn number(&mut self) -> String {
        self.rng
            .pick(&[
                "0",
                "1",
                "-1",
                "42",
                "-0",
                "1.5",
                "0.1",
                "1e3",
                "1E+2",
                "-2.5e-3",
                "1.5e300",
                "1e400",
                "-1e400",
                "9223372036854775807",
                "9223372036854775808",
                "-9223372036854775808",
                "-9223372036854775809",
                "18446744073709551615",
                "18446744073709551616",
                "123456789012345678901234567890",
                "4096",
                "65536",
                "3",
                "0.0",
                "100000000000000000000.0",
            ])
            .to_owned()
    }

    /// Any JSON value (for `id`s and wrong-typed arguments).
    fn value(&mut self, depth: usize) -> String {
        let k = if depth >= 3 {
            self.rng.below(4)
        } else {
            self.rng.below(7)
        };
        match k {
            0 => self.number(),
            1 => self.string(Text::Any, 5),
            2 => self.rng.pick(&["true", "false", "null"]).to_owned(),
            3 => self.string(Text::Any, 2),
            4 | 5 => {
                let n = self.rng.below(5);
                let mut members = Vec::new();
                for _ in 0..n {
                    let key = if self.rng.chance(20) {
                        let k = self.rng.pick(&["a", "b", "__", "id", "A", "ab", "ba"]);
                        self.lit(k)
                    } else {
                        self.string(Text::Any, 3)
                    };
                    let v = self.value(depth + 1);
                    members.push(format!("{key}{}:{}{v}", self.ws(), self.ws()));
                }
                format!("{{{}}}", members.join(","))
            }
            _ => {
                let n = self.rng.below(4);
                let items: Vec<String> = (0..n).map(|_| self.value(depth + 1)).collect();
                format!("[{}]", items.join(","))
            }
        }
    }

    fn pool_id(&mut self) -> (String, bool) {
        // a*: rings that only ever hold printable ASCII; b*: anything.
        let ascii = self.rng.chance(50);
        let id = format!("{}{}", if ascii { 'a' } else { 'b' }, self.rng.below(4));
        (id, ascii)
    }

    /// A chardev id: mostly from the pool, sometimes odd.
    fn id_value(&mut self) -> (String, Option<String>, bool) {
        if self.rng.chance(80) {
            let (id, ascii) = self.pool_id();
            (self.lit(&id), Some(id), ascii)
        } else if self.rng.chance(50) {
            let mut s = self.string(Text::Any, 3);
            // Never a pool id by chance (a* rings hold ASCII only).
            if s.len() == 4 && (s.as_bytes()[1] == b'a' || s.as_bytes()[1] == b'b') {
                s.insert(3, 'x');
            }
            (s, None, false)
        } else {
            (self.value(2), None, false)
        }
    }

    /// A chardev a mux or hub refers to: a pool id, or something odd.
    fn ref_value(&mut self) -> String {
        if self.rng.chance(85) {
            let (id, _) = self.pool_id();
            self.lit(&id)
        } else if self.rng.chance(50) {
            self.string(Text::Ascii, 2)
        } else {
            self.value(1)
        }
    }

    fn size_value(&mut self, for_ring_create: bool) -> String {
        if for_ring_create {
            self.rng
                .pick(&[
                    "1", "2", "16", "4096", "65536", "3", "100", "65535", "1024", "\"64\"", "1.0", "true",
                ])
                .to_owned()
        } else {
            self.rng
                .pick(&[
                    "1",
                    "2",
                    "3",
                    "7",
                    "100",
                    "4096",
                    "65536",
                    "0",
                    "-1",
                    "9223372036854775807",
                    "18446744073709551615",
                    "1e3",
                    "\"8\"",
                    "null",
                ])
                .to_owned()
        }
    }

    fn path(&mut self) -> String {
        let q = self.quote();
        let name = self
            .rng
            .pick(&["f0", "f1", "log0", "dir/x", "a\\u0000b", "\\u00e9t\\u00e9", ""]);
        match self.rng.below(10) {
            0 => format!("{q}{DIR}/{q}"),
            1 => format!("{q}{DIR}/none/x{q}"),
            _ => format!("{q}{DIR}/{name}{q}"),
        }
    }

    fn object(&mut self, members: Vec<(String, String)>) -> String {
        let mut members = members;
        // Shuffle, sometimes drop one, sometimes add a stranger.
        for i in (1..members.len()).rev() {
            let j = self.rng.below(i + 1);
            members.swap(i, j);
        }
        if !members.is_empty() && self.rng.chance(8) {
            let i = self.rng.below(members.len());
            members.remove(i);
        }
        if self.rng.chance(6) {
            let k = self.string(Text::Any, 2);
            let v = self.value(2);
            members.push((k, v));
        }
        let parts: Vec<String> = members
            .into_iter()
            .map(|(k, v)| {
                let (a, b, c, d) = (self.ws(), self.ws(), self.ws(), self.ws());
                format!("{a}{k}{b}:{c}{v}{d}")
            })
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    fn backend(&mut self) -> String {
        let kinds = [
            "null", "ringbuf", "memory", "file", "bogus", "null", "ringbuf", "mux", "hub", "mux",
        ];
        let kind = self.rng.pick(&kinds);
        let mut data: Vec<(String, String)> = Vec::new();
        match kind {
            // Over chardevs of the pool (or odd names): a mux's base, a
            // hub's inputs, in use, missing, repeated, too many.
            "mux" if self.rng.chance(95) => {
                let base = self.ref_value();
                data.push((self.lit("chardev"), base));
            }
            "hub" if self.rng.chance(95) => {
                let n = self.rng.below(6);
                let ids: Vec<String> = (0..n).map(|_| self.ref_value()).collect();
                let list = format!("[{}]", ids.join(","));
                data.push((self.lit("chardevs"), list));
            }
            "ringbuf" | "memory" if self.rng.chance(80) => {
                data.push((self.lit("size"), self.size_value(true)));
            }
            "file" => {
                data.push((self.lit("out"), self.path()));
                if self.rng.chance(20) {
                    data.push((self.lit("in"), self.path()));
                }
                if self.rng.chance(30) {
                    let b = self.rng.pick(&["true", "false", "1"]).to_owned();
                    data.push((self.lit("append"), b));
                }
            }
            _ => {}
        }
        if self.rng.chance(15) {
            data.push((self.lit("logfile"), self.path()));
            if self.rng.chance(50) {
                let b = self.rng.pick(&["true", "false"]).to_owned();
                data.push((self.lit("logappend"), b));
            }
        }
        let data = if self.rng.chance(5) {
            self.value(2)
        } else {
            self.object(data)
        };
        let ty = if self.rng.chance(5) {
            self.value(2)
        } else {
            self.lit(kind)
        };
        let (t, d) = (self.lit("type"), self.lit("data"));
        self.object(vec![(t, ty), (d, data)])
    }

    /// One command; `changed` collects the id literals chardev-change used.
    fn command(&mut self, changed: &mut Vec<String>) -> String {
        let names = [
            "query-chardev",
            "query-chardev-backends",
            "ringbuf-write",
            "ringbuf-read",
            "ringbuf-write",
            "ringbuf-read",
            "chardev-add",
            "chardev-add",
            "chardev-change",
            "chardev-remove",
            "chardev-send-break",
            "query-version",
            "qmp_capabilities",
            "x-gen-nosuch",
        ];
        let name = self.rng.pick(&names);
        let mut args: Vec<(String, String)> = Vec::new();
        match name {
            "ringbuf-write" => {
                let (dev, pool, ascii) = self.id_value();
                args.push((self.lit("device"), dev));
                let base64 = self.rng.chance(40);
                let text = if pool.is_some() && ascii {
                    Text::Ascii
                } else {
                    Text::NoNul
                };
                let data = if base64 {
                    let q = self.quote();
                    let b = if text == Text::Ascii {
                        self.rng
                            .pick(&["", "QUJD", "aGVsbG8=", "eA==", "eHl6", "QUJDRA", "QU=JD", "Q\\nUJD"])
                    } else {
                        self.rng.pick(&[
                            "", "/w==", "wIA=", "AAEC", "7aCA", "gA", "4pi6", "$$", "QUJD====", "Zm9v\\n",
                        ])
                    };
                    format!("{q}{b}{q}")
                } else if self.rng.chance(5) {
                    // Wrong-typed, never a string (it could hold U+0000).
                    self.rng
                        .pick(&["1", "null", "true", "[]", "{}", "[\"a\"]", "1.5"])
                        .to_owned()
                } else {
                    self.string(text, 6)
                };
                args.push((self.lit("data"), data));
                if base64 {
                    args.push((self.lit("format"), self.lit("base64")));
                } else if self.rng.chance(30) {
                    let f = self.rng.pick(&["utf8", "utf8", "UTF8", "base32"]);
                    args.push((self.lit("format"), self.lit(f)));
                }
            }
            "ringbuf-read" => {
                let (dev, pool, ascii) = self.id_value();
                args.push((self.lit("device"), dev));
                args.push((self.lit("size"), self.size_value(false)));
                let utf8_ok = pool.is_some() && ascii;
                let f = if utf8_ok {
                    self.rng.pick(&["utf8", "base64", "base64", "bogus"])
                } else {
                    "base64"
                };
                if f != "utf8" || self.rng.chance(50) {
                    args.push((self.lit("format"), self.lit(f)));
                }
            }
            "chardev-add" | "chardev-change" => {
                let (id, _, _) = self.id_value();
                if name == "chardev-change" {
                    changed.push(id.clone());
                }
                args.push((self.lit("id"), id));
                args.push((self.lit("backend"), self.backend()));
            }
            "chardev-remove" | "chardev-send-break" => {
                let (id, _, _) = self.id_value();
                args.push((self.lit("id"), id));
            }
            "qmp_capabilities" => {
                if self.rng.chance(30) {
                    let e = self.rng.pick(&["[\"oob\"]", "[]", "\"oob\"", "[\"nope\"]"]).to_owned();
                    args.push((self.lit("enable"), e));
                }
            }
            _ => {
                if self.rng.chance(10) {
                    let (k, v) = (self.string(Text::Any, 2), self.value(1));
                    args.push((k, v));
                }
            }
        }
        let mut members = Vec::new();
        let exec = if self.rng.chance(4) { "exec-oob" } else { "execute" };
        let name_v = if self.rng.chance(3) {
            self.value(1)
        } else {
            self.lit(name)
        };
        members.push((self.lit(exec), name_v));
        if !args.is_empty() || self.rng.chance(10) {
            let a = if self.rng.chance(3) {
                self.value(1)
            } else {
                self.object(args)
            };
            members.push((self.lit("arguments"), a));
        }
        if self.rng.chance(70) {
            members.push((self.lit("id"), self.value(0)));
        }
        if self.rng.chance(3) {
            let k = self.rng.pick(&["control", "extra", "execute"]);
            let (k, v) = (self.lit(k), self.value(1));
            members.push((k, v));
        }
        self.object(members)
    }

    fn mutate(&mut self, text: &mut Vec<u8>) {
        let bytes: &[u8] = &[
            0x00, 0x01, 0x1f, 0x7f, 0xff, 0xfe, 0xc0, 0x80, 0xe2, b'{', b'}', b'[', b']', b'"', b'\'', b':', b',',
            b'\\', b'\n', b'a', b'0', b'-', b'.', b'e',
        ];
        for _ in 0..1 + self.rng.below(3) {
            if text.is_empty() {
                return;
            }
            let at = self.rng.below(text.len());
            match self.rng.below(5) {
                0 => {
                    text.remove(at);
                }
                1 => text.insert(at, bytes[self.rng.below(bytes.len())]),
                2 => text[at] = bytes[self.rng.below(bytes.len())],
                3 => {
                    let end = (at + 1 + self.rng.below(12)).min(text.len());
                    let copy = text[at..end].to_vec();
                    text.splice(at..at, copy);
                }
                _ => text.truncate(at),
            }
        }
    }

    /// One case: a packet of one to four commands, maybe mutated.
    fn case(&mut self) -> (Vec<u8>, Vec<String>) {
        let mut changed = Vec::new();
        let most = if self.rng.chance(20) { 4 } else { 1 };
        let n = 1 + self.rng.below(most);
        let mut text = Vec::new();
        for i in 0..n {
            if i > 0 {
                text.extend_from_slice(self.rng.pick(&[" ", "\n", "", "\r\n"]).as_bytes());
            }
            text.extend_from_slice(self.command(&mut changed).as_bytes());
            if !changed.is_empty() {
                // A change ends the case: the chardev is removed from both
                // before anything can look at it (difference 1).
                break;
            }
        }
        if self.rng.chance(18) {
            let before = text.clone();
            self.mutate(&mut text);
            // A mutation must not make a U+0000 that a ring write could take
            // (`\u0001` -> `\u0000`, or C0 80 spelt out): difference 2.
            let nuls = |t: &[u8]| {
                t.windows(6).filter(|w| w.eq_ignore_ascii_case(b"\\u0000")).count()
                    + t.windows(2).filter(|w| w == b"\xc0\x80").count()
            };
            if nuls(&text) > nuls(&before) && text.windows(7).any(|w| w == b"ringbuf") {
                text = before.clone();
            }
            // Nor a path outside the scratch directory.
            let dirs = |t: &[u8]| {
                t.windows(DIR.len() + 1)
                    .filter(|w| &w[..DIR.len()] == DIR.as_bytes() && w[DIR.len()] == b'/')
                    .count()
            };
            if dirs(&text) < dirs(&before) {
                text = before;
            }
        }
        (text, changed)
    }
}

/// One server under test: its QMP socket and its scratch directory.
struct Peer {
    name: &'static str,
    server: Server,
    dir: tempfile::TempDir,
    client: Option<Client>,
}

impl Peer {
    fn new(name: &'static str, server: Server) -> Peer {
        Peer {
            name,
            server,
            dir: tempfile::tempdir().expect("tempdir"),
            client: None,
        }
    }

    /// Why the server is gone, if it is.
    fn exited(&mut self) -> Option<String> {
        match self.server.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited: {status}", self.name)),
            _ => None,
        }
    }

    fn dir(&self) -> String {
        self.dir.path().display().to_string()
    }

    /// A new session: the greeting, and negotiation unless `raw`.
    fn session(&mut self, raw: bool) -> Vec<String> {
        // QEMU serves one client per socket: close the previous one first.
        if let Some(c) = self.client.take() {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
            drop(c);
            std::thread::sleep(Duration::from_millis(2));
        }
        // QEMU's listener has a backlog of one: retry a refused connect.
        let mut tries = 0;
        let mut c = loop {
            match Client::try_connect(&self.server.socket) {
                Ok(c) => break c,
                Err(e) if tries < 200 && self.exited().is_none() => {
                    tries += 1;
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    let why = self.exited();
                    panic!("{}: cannot connect: {e}; {why:?}", self.name)
                }
            }
        };
        let mut lines = vec![c.line()];
        if !raw {
            lines.push(c.cmd(r#"{"execute":"qmp_capabilities"}"#));
        }
        self.client = Some(c);
        lines.into_iter().map(|l| self.normalize(&l)).collect()
    }

    /// Send a case, then the parser reset and the sync; the replies.
    fn exchange(&mut self, case: &[u8]) -> Vec<String> {
        let dir = self.dir();
        let text = replace_bytes(case, DIR.as_bytes(), dir.as_bytes());
        let c = self.client.as_mut().expect("a session");
        c.send(&text);
        c.send(b"\n\xff\n");
        c.send(SYNC.as_bytes());
        c.send(b"\n");
        let mut replies = Vec::new();
        loop {
            match c.try_line(Duration::from_secs(5)) {
                Some(l) if l.contains("\"id\": \"__sync__\"") => break,
                Some(l) => replies.push(l),
                None => {
                    replies.push("<no sync reply>".to_owned());
                    self.client = None;
                    break;
                }
            }
        }
        replies.into_iter().map(|l| self.normalize(&l)).collect()
    }

    fn normalize(&self, line: &str) -> String {
        let s = mask_package_and_pts(&line.replace(&self.dir(), DIR));
        if s.contains("\"return\": [") {
            // QEMU prints infinite and NaN numbers as C does (`-inf`): quote
            // them so the line parses.
            let mut parsable = s.clone();
            for lead in [": ", "[", ", "] {
                for bad in ["-inf", "inf", "-nan", "nan"] {
                    parsable = parsable.replace(&format!("{lead}{bad}"), &format!("{lead}\"{bad}\""));
                }
            }
            if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&parsable) {
                if let Some(serde_json::Value::Array(rows)) = v.get_mut("return") {
                    if rows.iter().all(|r| r.get("label").is_some()) {
                        rows.retain(|r| r.get("label").and_then(|l| l.as_str()) != Some("compat_monitor0"));
                        rows.sort_by_key(|r| r.to_string());
                        return format!("sorted:{v}");
                    }
                    if rows.iter().all(|r| r.get("name").is_some()) && !rows.is_empty() {
                        if let Some(o) = v.as_object_mut() {
                            o.insert("return".into(), serde_json::Value::String("<names>".into()));
                        }
                        return format!("names:{v}");
                    }
                }
            }
        }
        s
    }
}

fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// Where two reply lists part: the first differing reply of each, around
/// the first character that differs (replies can be long).
fn first_difference(q: &[String], o: &[String]) -> String {
    let i = (0..q.len().max(o.len())).find(|&i| q.get(i) != o.get(i)).unwrap_or(0);
    let none = String::from("<none>");
    let (a, b) = (q.get(i).unwrap_or(&none), o.get(i).unwrap_or(&none));
    let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let window = |s: &str| {
        let mut from = at.saturating_sub(160);
        while !s.is_char_boundary(from) {
            from -= 1;
        }
        let mut to = (at + 160).min(s.len());
        while !s.is_char_boundary(to) {
            to += 1;
        }
        format!(
            "{}{}{}",
            if from > 0 { "..." } else { "" },
            &s[from..to],
            if to < s.len() { "..." } else { "" }
        )
    };
    format!(
        "  reply {} of {} / {}:\n  qemu:     {}\n  chardevd: {}",
        i + 1,
        q.len(),
        o.len(),
        window(a),
        window(b)
    )
}

fn show(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| match b {
            b'\n' => "\\n".to_owned(),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        })
        .collect()
}

/// Run `cases` cases from `seed` against both; the divergences.
/// QEMU's assertion when a read holds more requests than its queue takes
/// (README difference 41): it aborts; chardevd answers them all.
const QUEUE_ABORT: &str = "Assertion `mon->qmp_requests->length < QMP_REQ_QUEUE_LEN_MAX' failed";

/// A fresh pair of servers; QEMU's stderr goes to `log`.
fn servers(bin: &Path, log: &Path) -> (Peer, Peer) {
    let err = std::fs::File::create(log).expect("QEMU's stderr file");
    (
        Peer::new("QEMU", qemu_with_stderr(bin, err.into())),
        Peer::new("chardevd", chardevd(&[])),
    )
}

/// What the run found.
#[derive(Default)]
struct Outcome {
    diffs: Vec<String>,
    /// Cases where QEMU aborted on its request queue assertion.
    qemu_aborts: Vec<String>,
}

/// Run `cases` cases from `seed` against both.
fn run(seed: u64, cases: usize, bin: &Path) -> Outcome {
    let logs = tempfile::tempdir().expect("tempdir");
    let log = logs.path().join("qemu.stderr");
    let (mut qemu, mut ours) = servers(bin, &log);
    let mut out = Outcome::default();
    let diffs = &mut out.diffs;
    let mut g = Gen { rng: Rng(seed) };
    let mut fresh = true;
    let mut last = Vec::new();
    for n in 0..cases {
        if qemu.exited().is_some() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(QUEUE_ABORT) && ours.exited().is_none() {
                // QEMU's known abort: chardevd answered; start both afresh.
                out.qemu_aborts
                    .push(format!("case {} of seed {seed}: {}", n - 1, show(&last)));
                (qemu, ours) = servers(bin, &log);
                fresh = true;
            }
        }
        if let Some(why) = qemu.exited().or_else(|| ours.exited()) {
            diffs.push(format!(
                "after case {} of seed {seed}: {why}\n  last input: {}",
                n.saturating_sub(1),
                show(&last)
            ));
            return out;
        }
        if fresh || g.rng.chance(8) || qemu.client.is_none() || ours.client.is_none() {
            let raw = g.rng.chance(10);
            let (q, o) = (qemu.session(raw), ours.session(raw));
            if q != o {
                diffs.push(format!(
                    "case {n} (session start)\n  qemu:     {q:?}\n  chardevd: {o:?}"
                ));
            }
        }
        let (case, changed) = g.case();
        last = case.clone();
        let (mut q, mut o) = (qemu.exchange(&case), ours.exchange(&case));
        if case.windows(8).any(|w| w == b"exec-oob") {
            // With oob on, QEMU's reply to an exec-oob request may come
            // before those of in-band requests sent earlier, or not,
            // depending on its threads (difference 42): compare as sets.
            q.sort();
            o.sort();
        }
        let aborted = qemu.client.is_none() && q.last().is_some_and(|l| l == "<no sync reply>") && {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::read_to_string(&log).unwrap_or_default().contains(QUEUE_ABORT)
        };
        if q != o && !aborted {
            diffs.push(format!(
                "case {n} of seed {seed}\n  input:    {}\n{}",
                show(&case),
                first_difference(&q, &o)
            ));
        }
        if !changed.is_empty() && qemu.client.is_some() && ours.client.is_some() {
            // QEMU deletes a chardev whose change failed (difference 1): remove
            // what the case changed from both, replies unread.
            for id in changed {
                let rm = format!(r#"{{"execute":"chardev-remove","arguments":{{"id":{id}}}}}"#);
                qemu.exchange(rm.as_bytes());
                ours.exchange(rm.as_bytes());
            }
        }
        fresh = qemu.client.is_none() || ours.client.is_none();
    }
    out
}

#[test]
fn generated_qmp_input_gets_qemus_replies() {
    let Some(bin) = qemu_binary() else {
        require("QEMU 10.0 (qemu-system-x86_64)", false);
        return;
    };
    let cases: usize = std::env::var("CHARDEVD_GEN_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let fresh_seed = std::env::var("CHARDEVD_GEN_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(2, |d| d.as_nanos() as u64 | 2)
        });
    let mut all = Vec::new();
    for seed in [1, fresh_seed] {
        eprintln!("generative differential: seed {seed}, {cases} cases (replay: CHARDEVD_GEN_SEED={seed})");
        let out = run(seed, cases, &bin);
        eprintln!(
            "seed {seed}: {} of {cases} cases differ; QEMU aborted on its request queue {} times \
             (chardevd answered every request)",
            out.diffs.len(),
            out.qemu_aborts.len()
        );
        for d in out.diffs.iter().take(10).chain(out.qemu_aborts.iter().take(3)) {
            eprintln!("{d}");
        }
        all.extend(out.diffs);
    }
    assert!(
        all.is_empty(),
        "{} cases differ from QEMU:\n{}",
        all.len(),
        all.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
    );
}
