//! QEMU's JSON value model and writer.
//!
//! QMP speaks a JSON dialect with QEMU's own number model (an integer is an
//! `int64` if it fits, else a `uint64`, else a double) and QEMU's own output
//! format (`{"a": 1, "b": [1, 2]}`, ASCII only, `\uXXXX` with upper-case hex,
//! doubles as `%.17g`). [`Json`] keeps object members in input order so that
//! replies and echoed ids come back exactly as QEMU would print them.
//!
//! [`framer`] is QEMU's JSON lexer, streamer and parser (the input side).
//! Pure: no I/O, no actix, no tokio.

pub mod framer;

use std::fmt::Write as _;

/// A JSON value as QEMU's QObject model holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer that fits `int64`.
    Int(i64),
    /// A non-negative integer above `int64::MAX` that fits `uint64`.
    UInt(u64),
    /// Any other number.
    Double(f64),
    /// A string. QEMU strings may hold U+0000 (it travels as `C0 80` inside QEMU).
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, members in input order (keys are unique: the parser rejects duplicates).
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Build an object from `(key, value)` pairs.
    pub fn object<K: Into<String>>(members: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Object(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An empty object, `{}`.
    pub fn empty_object() -> Json {
        Json::Object(Vec::new())
    }

    /// Shorthand for a string value.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// Look up an object member.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Object members, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Serialize the way QEMU's JSON writer does (compact form).
    pub fn to_qemu_string(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self);
        out
    }

    /// Serialize the way QEMU's JSON writer does with `pretty` (a QMP
    /// monitor's `pretty=on`): each member and element on a line of its
    /// own, indented 4 spaces a level; `\n` line ends, no final newline.
    ///
    /// ```
    /// use chardevd::internals::json::Json;
    /// let v = Json::object([("return", Json::empty_object()), ("id", Json::Int(1))]);
    /// assert_eq!(v.to_qemu_pretty(), "{\n    \"return\": {\n    },\n    \"id\": 1\n}");
    /// ```
    pub fn to_qemu_pretty(&self) -> String {
        let mut out = String::new();
        write_pretty(&mut out, self, 0);
        out
    }

    /// Convert to a `serde_json::Value` (for typed deserialization).
    pub fn to_serde(&self) -> serde_json::Value {
        use serde_json::Value as V;
        match self {
            Json::Null => V::Null,
            Json::Bool(b) => V::Bool(*b),
            Json::Int(i) => V::from(*i),
            Json::UInt(u) => V::from(*u),
            Json::Double(d) => serde_json::Number::from_f64(*d).map_or(V::Null, V::Number),
            Json::Str(s) => V::String(s.clone()),
            Json::Array(a) => V::Array(a.iter().map(Json::to_serde).collect()),
            Json::Object(m) => V::Object(m.iter().map(|(k, v)| (k.clone(), v.to_serde())).collect()),
        }
    }

    /// Convert from a `serde_json::Value` (object key order follows serde_json's map).
    pub fn from_serde(v: &serde_json::Value) -> Json {
        use serde_json::Value as V;
        match v {
            V::Null => Json::Null,
            V::Bool(b) => Json::Bool(*b),
            V::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Json::Int(i)
                } else if let Some(u) = n.as_u64() {
                    Json::UInt(u)
                } else {
                    Json::Double(n.as_f64().unwrap_or(0.0))
                }
            }
            V::String(s) => Json::Str(s.clone()),
            V::Array(a) => Json::Array(a.iter().map(Json::from_serde).collect()),
            V::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), Json::from_serde(v))).collect()),
        }
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::Str(s.to_owned())
    }
}
impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::Str(s)
    }
}
impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}
impl From<i64> for Json {
    fn from(i: i64) -> Json {
        Json::Int(i)
    }
}

fn write_value(out: &mut String, v: &Json) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Json::UInt(u) => {
            let _ = write!(out, "{u}");
        }
        Json::Double(d) => out.push_str(&format_g17(*d)),
        Json::Str(s) => write_string(out, s),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, item)) in qdict_order(members).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn indent(out: &mut String, level: usize) {
    out.push('\n');
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn write_pretty(out: &mut String, v: &Json, level: usize) {
    match v {
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_pretty(out, item, level + 1);
            }
            indent(out, level);
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, item)) in qdict_order(members).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_string(out, k);
                out.push_str(": ");
                write_pretty(out, item, level + 1);
            }
            indent(out, level);
            out.push('}');
        }
        scalar => write_value(out, scalar),
    }
}

/// QDict's hash: the bucket (of 512) a key lands in.
/// The bytes of `s` as QEMU holds the string: a C string in modified
/// UTF-8, where U+0000 is the two bytes `C0 80` (they count in lengths and
/// hashes).
pub fn c_bytes(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().flat_map(|b| match b {
        0 => [0xc0, 0x80].into_iter().take(2),
        b => [b, 0].into_iter().take(1),
    })
}

fn qdict_bucket(key: &str) -> u32 {
    let len = c_bytes(key).count();
    let mut v = 0x238F_13AFu32.wrapping_mul(len as u32);
    for (i, b) in c_bytes(key).enumerate() {
        v = v.wrapping_add((b as u32) << ((i * 5) % 24));
    }
    1_103_515_243u32.wrapping_mul(v).wrapping_add(12345) % 512
}

/// The order in which QEMU prints an object's members: QDict bucket order,
/// and within a bucket the member inserted last first. Members are given in
/// insertion order (input order for parsed objects, schema order for replies).
pub fn qdict_order(members: &[(String, Json)]) -> Vec<&(String, Json)> {
    let mut keyed: Vec<(u32, usize, &(String, Json))> = members
        .iter()
        .enumerate()
        .map(|(i, m)| (qdict_bucket(&m.0), i, m))
        .collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    keyed.into_iter().map(|(_, _, m)| m).collect()
}

/// The length of the run at the start of `data` with no byte for which
/// `special` holds: 32 bytes at a time with a branch-free fold (vector code),
/// then byte by byte.
#[inline(always)]
pub(crate) fn run_until(data: &[u8], special: impl Fn(u8) -> bool) -> usize {
    let mut i = 0;
    for chunk in data.chunks_exact(32) {
        if chunk.iter().fold(false, |acc, &b| acc | special(b)) {
            break;
        }
        i += 32;
    }
    i + data[i..].iter().position(|&b| special(b)).unwrap_or(data.len() - i)
}

/// Write a JSON string literal as QEMU does: ASCII only, `\uXXXX` in upper-case
/// hex for control characters, DEL and everything outside ASCII (as surrogate
/// pairs above the BMP).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    while !rest.is_empty() {
        // Printable ASCII other than `"` and `\` goes out as it is, a run at a time.
        let run = run_until(rest.as_bytes(), |b| {
            (b.wrapping_sub(0x20) >= 0x5f) | (b == b'"') | (b == b'\\')
        });
        out.push_str(&rest[..run]);
        rest = &rest[run..];
        let Some(c) = rest.chars().next() else { break };
        rest = &rest[c.len_utf8()..];
        write_char(out, c);
    }
    out.push('"');
}

fn write_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 || (c as u32) >= 0x7f => {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            let mut buf = [0u16; 2];
            for &unit in c.encode_utf16(&mut buf).iter() {
                out.push_str("\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((unit >> shift) & 0xf) as usize] as char);
                }
            }
        }
        c => out.push(c),
    }
}

/// Format a double as C's `printf("%.17g")` does.
pub fn format_g17(d: f64) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if d.is_infinite() {
        return if d < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    const P: i32 = 17;
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Scientific form with P significant digits gives the rounded exponent.
    let sci = format!("{:.*e}", (P - 1) as usize, d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..P).contains(&exp) {
        let m = strip_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (P - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, d)).to_owned()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Decode bytes the way QEMU's JSON writer does when it prints a C string that
/// may hold invalid UTF-8: each malformed sequence becomes one U+FFFD, the
/// sequence length being taken from the lead byte (see [`next_sequence`]).
pub fn qemu_lossy_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let (len, cp) = next_sequence(&bytes[i..]);
        out.push(cp.unwrap_or('\u{FFFD}'));
        i += len;
    }
    out
}

/// The sequence length a lead byte announces (1 for ASCII and invalid leads).
pub fn expected_len(lead: u8) -> usize {
    match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        0xf8..=0xfb => 5,
        0xfc..=0xfd => 6,
        _ => 1,
    }
}

/// One step of QEMU's modified-UTF-8 decoder (`mod_utf8_codepoint`).
///
/// Returns the number of bytes the step consumes and the character, or `None`
/// for a malformed sequence. The expected length comes from the lead byte; a
/// sequence stops early at the first byte that is not a continuation byte (or
/// at the end of the input). Overlong forms, surrogates, code points above
/// U+10FFFF and the noncharacters U+xFFFE/U+xFFFF and U+FDD0..U+FDEF are
/// malformed; the two-byte `C0 80` is U+0000, as in modified UTF-8.
pub fn next_sequence(b: &[u8]) -> (usize, Option<char>) {
    let Some(&lead) = b.first() else {
        return (0, None);
    };
    let (len, init) = match lead {
        0x00..=0x7f => return (1, Some(lead as char)),
        0xc0..=0xdf => (2, (lead & 0x1f) as u32),
        0xe0..=0xef => (3, (lead & 0x0f) as u32),
        0xf0..=0xf7 => (4, (lead & 0x07) as u32),
        0xf8..=0xfb => (5, (lead & 0x03) as u32),
        0xfc..=0xfd => (6, (lead & 0x01) as u32),
        _ => return (1, None),
    };
    let mut cp = init;
    for i in 1..len {
        match b.get(i) {
            Some(&c) if c & 0xc0 == 0x80 => cp = (cp << 6) | (c & 0x3f) as u32,
            _ => return (i, None),
        }
    }
    if lead == 0xc0 && b[1] == 0x80 {
        return (2, Some('\0'));
    }
    let min = match len {
        2 => 0x80,
        3 => 0x800,
        4 => 0x10000,
        5 => 0x20_0000,
        _ => 0x400_0000,
    };
    let nonchar = (cp & 0xfffe) == 0xfffe || (0xfdd0..=0xfdef).contains(&cp);
    if cp < min || cp > 0x10ffff || (0xd800..=0xdfff).contains(&cp) || nonchar {
        return (len, None);
    }
    (len, char::from_u32(cp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_with_u0000_hash_as_qemus_c0_80() {
        // The order QEMU 10.0.2 echoes this id in.
        let keys = ["\u{0}", "__", "\u{1}A\u{D7FF}\u{0}\u{263A}", "a", "b\u{0}"];
        let members: Vec<(String, Json)> = keys.iter().map(|k| (k.to_string(), Json::Null)).collect();
        let order: Vec<&str> = qdict_order(&members).iter().map(|m| m.0.as_str()).collect();
        assert_eq!(order, ["\u{0}", "__", "a", "b\u{0}", "\u{1}A\u{D7FF}\u{0}\u{263A}"]);
        assert_eq!(c_bytes("a\u{0}b").collect::<Vec<u8>>(), b"a\xc0\x80b");
    }

    #[test]
    fn writer_matches_qemu_spacing_and_escapes() {
        let v = Json::Array(vec![
            Json::str("é😀\u{7f}\u{1}\n/"),
            Json::Array(vec![Json::Bool(true), Json::Null]),
            Json::object([("c", Json::Int(1))]),
        ]);
        assert_eq!(
            v.to_qemu_string(),
            r#"["\u00E9\uD83D\uDE00\u007F\u0001\n/", [true, null], {"c": 1}]"#
        );
    }

    #[test]
    fn members_come_out_in_qdict_order() {
        let version = Json::object([
            ("major", Json::Int(10)),
            ("minor", Json::Int(0)),
            ("micro", Json::Int(2)),
        ]);
        assert_eq!(version.to_qemu_string(), r#"{"micro": 2, "minor": 0, "major": 10}"#);
        let ok = Json::object([("id", Json::Int(1)), ("return", Json::empty_object())]);
        assert_eq!(ok.to_qemu_string(), r#"{"return": {}, "id": 1}"#);
        let err = Json::object([("error", Json::Null), ("id", Json::Int(1))]);
        assert_eq!(err.to_qemu_string(), r#"{"id": 1, "error": null}"#);
    }

    #[test]
    fn doubles_print_like_percent_17g() {
        assert_eq!(format_g17(1500.0), "1500");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(1.5), "1.5");
        assert_eq!(format_g17(1e17), "1e+17");
        assert_eq!(format_g17(1e16), "10000000000000000");
        assert_eq!(format_g17(1.25e-5), "1.2500000000000001e-05");
        assert_eq!(format_g17(0.0001), "0.0001");
        assert_eq!(format_g17(f64::INFINITY), "inf");
        assert_eq!(format_g17(-2.5), "-2.5");
    }

    #[test]
    fn malformed_sequences_become_one_replacement_each() {
        assert_eq!(qemu_lossy_utf8(b"\xc0\xaf"), "\u{FFFD}");
        assert_eq!(qemu_lossy_utf8(b"\xed\xa0\x80"), "\u{FFFD}");
        assert_eq!(qemu_lossy_utf8(b"\xf4\x90\x80\x80"), "\u{FFFD}");
        assert_eq!(qemu_lossy_utf8(b"\xe2\x82"), "\u{FFFD}");
        assert_eq!(qemu_lossy_utf8(b"\xe2\x82a"), "\u{FFFD}a");
        assert_eq!(qemu_lossy_utf8(b"\xff\xfe"), "\u{FFFD}\u{FFFD}");
        assert_eq!(qemu_lossy_utf8(b"a\xc0\x80b"), "a\0b");
        assert_eq!(qemu_lossy_utf8("é😀".as_bytes()), "é😀");
    }
}
