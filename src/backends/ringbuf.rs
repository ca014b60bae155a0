//! `ringbuf` and `memory`: frontend output goes into a fixed-size ring that
//! `ringbuf-read` drains; `ringbuf-write` appends to the same ring. `memory`
//! is QEMU's deprecated alias (its filename is `memory`). The ring is these
//! kinds' capability ([`RingOps`]); no other kind carries ring operations.
use super::ring::{Ring, DEFAULT_RING_SIZE};
use super::{from_data, BackendConfig, Facts, Kind, OpenContext, Opened};
use crate::chardev::{lock_ring, Backend, Input, Output, RingOps, SharedRing};
use crate::error::{BackendError, Error};
use crate::options::Opts;
use crate::registry::KindInfo;
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::task::{Context, Poll};

/// The `ringbuf` kind.
pub(crate) const RINGBUF: Kind = Kind {
    name: "ringbuf",
    aliases: &[],
    from_qmp: from_data::<Ringbuf>,
    from_cli: from_cli::<Ringbuf>,
    syntax: "-chardev ringbuf,id=ID[,size=SIZE]\t(SIZE a power of two, default 64K)",
    facts: Facts::NONE,
};

/// The `memory` kind.
pub(crate) const MEMORY: Kind = Kind {
    name: "memory",
    aliases: &[],
    from_qmp: from_data::<Memory>,
    from_cli: from_cli::<Memory>,
    syntax: "-chardev memory,id=ID[,size=SIZE]\t(deprecated alias of ringbuf)",
    facts: Facts::NONE,
};

fn from_cli<T: RingKind>(opts: &mut Opts) -> Result<Box<dyn BackendConfig>, String> {
    // As in QEMU, size=0 on the command line means the default.
    let size = opts.take_size("size")?.filter(|s| *s != 0);
    Ok(Box::new(T::with_size(size)))
}

/// The largest ring accepted (1 GiB). QEMU allocates the ring up front and
/// aborts when that fails; chardevd refuses instead.
pub const MAX_RING_SIZE: i64 = 1 << 30;

/// Check a requested size as QEMU does, but also refuse 0, negatives and
/// sizes above [`MAX_RING_SIZE`] (QEMU accepts 0 and then crashes).
pub fn ring_size(size: Option<i64>) -> Result<usize, BackendError> {
    match size {
        None => Ok(DEFAULT_RING_SIZE),
        Some(s) if s > 0 && (s & (s - 1)) == 0 && s <= MAX_RING_SIZE => Ok(s as usize),
        Some(s) if s > MAX_RING_SIZE && (s & (s - 1)) == 0 => Err(BackendError::RingTooBig(MAX_RING_SIZE)),
        Some(_) => Err(BackendError::RingSize),
    }
}

/// `ringbuf` options (`ChardevRingbuf`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ringbuf {
    /// Ring size in bytes (a power of two; default 65536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

/// `memory` options: the same as [`Ringbuf`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Ring size in bytes (a power of two; default 65536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
}

/// The two ring kinds.
pub trait RingKind: serde::de::DeserializeOwned + fmt::Debug + Send + 'static {
    /// QEMU's name.
    const NAME: &'static str;
    /// The options with this size.
    fn with_size(size: Option<i64>) -> Self;
    /// The size asked for.
    fn size(&self) -> Option<i64>;
}

impl RingKind for Ringbuf {
    const NAME: &'static str = "ringbuf";
    fn with_size(size: Option<i64>) -> Self {
        Ringbuf { size }
    }
    fn size(&self) -> Option<i64> {
        self.size
    }
}

impl RingKind for Memory {
    const NAME: &'static str = "memory";
    fn with_size(size: Option<i64>) -> Self {
        Memory { size }
    }
    fn size(&self) -> Option<i64> {
        self.size
    }
}

impl<T: RingKind> BackendConfig for T {
    fn kind(&self) -> &'static str {
        T::NAME
    }

    fn info(&self) -> KindInfo {
        KindInfo::plain(T::NAME)
    }

    fn open(self: Box<Self>, _cx: OpenContext) -> LocalBoxFuture<'static, Result<Opened, BackendError>> {
        let size = self.size();
        Box::pin(async move {
            let size = ring_size(size)?;
            Ok(Opened::open(RingBackend {
                ring: std::sync::Arc::new(std::sync::Mutex::new(Ring::new(size))),
                kind: T::NAME,
            }))
        })
    }
}

/// The run-time side: frontend output goes into the ring (and the log).
#[derive(Debug)]
struct RingBackend {
    ring: SharedRing,
    kind: &'static str,
}

impl Backend for RingBackend {
    fn poll_input(&mut self, _cx: &mut Context<'_>, _room: usize) -> Poll<Input> {
        Poll::Pending
    }

    fn poll_output(&mut self, _cx: &mut Context<'_>, data: &[u8]) -> Poll<Output> {
        lock_ring(&self.ring).write(data);
        Poll::Ready(Output::Written(data.len()))
    }

    fn filename(&self) -> String {
        self.kind.into()
    }

    fn ring(&self) -> Option<SharedRing> {
        Some(self.ring.clone())
    }
}

impl RingOps for Ring {
    fn write(&mut self, data: &[u8]) {
        Ring::write(self, data);
    }
    fn read(&mut self, n: usize) -> Vec<u8> {
        Ring::read(self, n)
    }
    fn read_utf8(&mut self, n: usize) -> String {
        Ring::read_utf8(self, n)
    }
    fn len(&self) -> usize {
        Ring::len(self)
    }
    fn overwritten(&self) -> u64 {
        Ring::overwritten(self)
    }
}

/// Decode base64 as QEMU does (`qbase64_decode`): only `A-Za-z0-9+/=` and
/// newlines are allowed, and decoding is glib-lenient (a trailing partial
/// quantum is dropped; `=` counts as a zero digit that suppresses its byte).
///
/// Canonical input (what every encoder writes: the alphabet, `=` padding to a
/// multiple of 4, zero trailing bits) is decoded by the `base64` crate's fast
/// path, which gives glib's result for it; anything else takes the lenient
/// path below.
pub fn qemu_base64_decode(s: &str) -> Result<Vec<u8>, Error> {
    use base64::Engine as _;
    if let Ok(v) = base64::engine::general_purpose::STANDARD.decode(s) {
        return Ok(v);
    }
    qemu_base64_decode_lenient(s)
}

fn qemu_base64_decode_lenient(s: &str) -> Result<Vec<u8>, Error> {
    let valid = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'\n');
    if !s.bytes().all(valid) {
        return Err(Error::Base64Invalid);
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut v, mut n) = (0u32, 0);
    let mut last = [0u8; 2];
    for c in s.bytes() {
        let rank = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => 0,
            _ => continue,
        };
        last = [c, last[0]];
        v = (v << 6) | rank as u32;
        n += 1;
        if n == 4 {
            out.push((v >> 16) as u8);
            if last[1] != b'=' {
                out.push((v >> 8) as u8);
            }
            if last[0] != b'=' {
                out.push(v as u8);
            }
            n = 0;
            v = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_glib_lenient() {
        assert_eq!(qemu_base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(qemu_base64_decode("abc").unwrap(), b"");
        assert_eq!(qemu_base64_decode("YW=Jj").unwrap(), b"a\t");
        assert_eq!(qemu_base64_decode("====").unwrap(), b"\0");
        assert_eq!(qemu_base64_decode("aGVs\nbG8=").unwrap(), b"hello");
        assert!(qemu_base64_decode("a b").is_err());
        assert_eq!(qemu_base64_decode("YQ==").unwrap(), b"a");
        // Nonzero trailing bits: the crate refuses, glib drops them.
        assert_eq!(qemu_base64_decode("YR==").unwrap(), b"a");
        assert_eq!(qemu_base64_decode("").unwrap(), b"");
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_the_lenient_one(s in "[A-Za-z0-9+/=\\n]{0,40}") {
            proptest::prop_assert_eq!(qemu_base64_decode(&s).ok(), qemu_base64_decode_lenient(&s).ok());
        }

        #[test]
        fn encoded_bytes_decode_back(data in proptest::collection::vec(proptest::num::u8::ANY, 0..100)) {
            use base64::Engine as _;
            let s = base64::engine::general_purpose::STANDARD.encode(&data);
            proptest::prop_assert_eq!(qemu_base64_decode_lenient(&s).unwrap(), data);
        }
    }

    #[test]
    fn ring_sizes_must_be_positive_powers_of_two() {
        assert_eq!(ring_size(None), Ok(65536));
        assert_eq!(ring_size(Some(2)), Ok(2));
        assert_eq!(ring_size(Some(0)), Err(BackendError::RingSize));
        assert!(ring_size(Some(5)).is_err());
        assert!(ring_size(Some(-4)).is_err());
        assert!(ring_size(Some(1 << 40)).is_err());
    }
}
