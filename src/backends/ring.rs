//! The ring buffer core behind `ringbuf` and `memory` (pure, no I/O).
//!
//! Writes never fail: when more bytes arrive than fit, the oldest are
//! overwritten. Reads are destructive. [`Ring::read_utf8`] does better than
//! QEMU's documented utf8 bug: it never stops at NUL and never splits a
//! character (see the README's "differences from QEMU").
use crate::json::{expected_len, next_sequence};
use std::collections::VecDeque;

/// QEMU's default ring size.
pub const DEFAULT_RING_SIZE: usize = 65536;

/// A power-of-two byte ring that overwrites its oldest bytes.
#[derive(Debug, Clone)]
pub struct Ring {
    buf: VecDeque<u8>,
    size: usize,
    overwritten: u64,
}

impl Ring {
    /// A ring of `size` bytes; `size` must be a power of two.
    pub fn new(size: usize) -> Ring {
        debug_assert!(size.is_power_of_two());
        Ring {
            buf: VecDeque::with_capacity(size.min(DEFAULT_RING_SIZE)),
            size,
            overwritten: 0,
        }
    }

    /// Capacity in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Append bytes, dropping the oldest when full. Returns how many bytes of
    /// older data were overwritten.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let data = if data.len() > self.size {
            // The head of a write larger than the ring never lands.
            self.overwritten += (data.len() - self.size) as u64;
            &data[data.len() - self.size..]
        } else {
            data
        };
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.size);
        self.buf.drain(..overflow);
        self.buf.extend(data);
        self.overwritten += overflow as u64;
        overflow
    }

    /// Bytes overwritten (or never landed) before anyone read them, in all.
    pub fn overwritten(&self) -> u64 {
        self.overwritten
    }

    /// Take up to `n` bytes.
    pub fn read(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.buf.len());
        let (a, b) = self.buf.as_slices();
        let from_a = n.min(a.len());
        let mut out = Vec::with_capacity(n);
        out.extend_from_slice(&a[..from_a]);
        out.extend_from_slice(&b[..n - from_a]);
        self.buf.drain(..n);
        out
    }

    /// Take up to `n` bytes as text, whole characters only.
    ///
    /// Each valid character or malformed sequence (one U+FFFD, QEMU's grouping)
    /// is taken whole. A sequence that would cross `n`, or that is incomplete
    /// at the end of the data, stays for the next read, unless it is the first
    /// of this read, which is then returned whole (so every read with data
    /// makes progress). NUL bytes come back as U+0000.
    pub fn read_utf8(&mut self, n: usize) -> String {
        if n == 0 {
            return String::new();
        }
        let bytes = self.buf.make_contiguous();
        let limit = n.min(bytes.len());
        let mut out = String::with_capacity(limit);
        let mut pos = 0;
        while pos < bytes.len() {
            if bytes[pos] < 0x80 {
                // A run of ASCII (NUL included) is whole characters: copied at once.
                let run = crate::json::run_until(&bytes[pos..limit], |b| b >= 0x80);
                out.push_str(std::str::from_utf8(&bytes[pos..pos + run]).unwrap_or_default());
                pos += run;
                if pos >= n {
                    break;
                }
                continue;
            }
            let (len, ch) = next_sequence(&bytes[pos..]);
            let first = pos == 0;
            let incomplete_at_end = ch.is_none() && pos + len == bytes.len() && len < expected_len(bytes[pos]);
            if !first && (pos + len > n || incomplete_at_end) {
                break;
            }
            out.push(ch.unwrap_or('\u{FFFD}'));
            pos += len;
            if pos >= n {
                break;
            }
        }
        self.buf.drain(..pos);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrites_oldest_like_qemu_test_char() {
        let mut r = Ring::new(2);
        r.write(b"buff");
        assert_eq!(r.read(4), b"ff");
        assert_eq!(r.read(4), b"");
        assert_eq!(r.overwritten(), 2, "the head never landed");
        r.write(b"a");
        r.write(b"bc");
        assert_eq!(r.overwritten(), 3, "'a' was overwritten");
        assert_eq!(r.read(4), b"bc");
    }

    #[test]
    fn utf8_reads_keep_nul_and_never_split_characters() {
        let mut r = Ring::new(64);
        r.write(b"a\0b");
        assert_eq!(r.read_utf8(10), "a\0b");
        r.write("xé".as_bytes());
        assert_eq!(r.read_utf8(2), "x");
        assert_eq!(r.read_utf8(1), "é");
        r.write(b"\xff\xc0\xaf!");
        assert_eq!(r.read_utf8(10), "\u{FFFD}\u{FFFD}!");
    }

    #[test]
    fn an_incomplete_tail_waits_unless_it_comes_first() {
        let mut r = Ring::new(64);
        r.write(b"a\xe2\x82");
        assert_eq!(r.read_utf8(10), "a");
        assert_eq!(r.len(), 2);
        assert_eq!(r.read_utf8(10), "\u{FFFD}");
        assert!(r.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn ring_keeps_the_newest_bytes(chunks in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..40), 0..20), shift in 0u32..6) {
            let size = 1usize << shift;
            let mut r = Ring::new(size);
            let mut all = Vec::new();
            for c in &chunks { r.write(c); all.extend_from_slice(c); }
            let expect = &all[all.len().saturating_sub(size)..];
            proptest::prop_assert_eq!(r.read(usize::MAX), expect.to_vec());
        }

        #[test]
        fn utf8_reads_of_valid_text_reassemble_it(s in "\\PC{0,40}", n in 1usize..8) {
            let mut r = Ring::new(256);
            r.write(s.as_bytes());
            let mut got = String::new();
            while !r.is_empty() { got.push_str(&r.read_utf8(n)); }
            proptest::prop_assert_eq!(got, s);
        }
    }
}
