//! `ringbuf` and `memory`: frontend output goes into a fixed-size ring that
//! `ringbuf-read` drains; `ringbuf-write` appends to the same ring.
use super::logfile::LogFile;
use super::ring::{Ring, DEFAULT_RING_SIZE};
use super::{BackendReply, FrontendEvent, FrontendSink, Started, ToBackend};
use crate::actors::ChardevError;
use crate::qmp::command::DataFormat;
use actix::prelude::*;
use base64::Engine as _;

/// The largest ring accepted (1 GiB). QEMU allocates the ring up front and
/// aborts when that fails; chardevd refuses instead.
pub const MAX_RING_SIZE: i64 = 1 << 30;

/// Check a requested size as QEMU does, but also refuse 0, negatives and
/// sizes above [`MAX_RING_SIZE`] (QEMU accepts 0 and then crashes).
pub fn ring_size(size: Option<i64>) -> Result<usize, String> {
    match size {
        None => Ok(DEFAULT_RING_SIZE),
        Some(s) if s > 0 && (s & (s - 1)) == 0 && s <= MAX_RING_SIZE => Ok(s as usize),
        Some(s) if s > MAX_RING_SIZE && (s & (s - 1)) == 0 => {
            Err(format!("size of ringbuf chardev must be at most {MAX_RING_SIZE}"))
        }
        Some(_) => Err("size of ringbuf chardev must be power of two".into()),
    }
}

/// The ring backend actor.
#[derive(Debug)]
pub struct RingbufBackend {
    ring: Ring,
    log: Option<LogFile>,
    frontend: Option<FrontendSink>,
}

impl RingbufBackend {
    /// Start one; `kind` is `ringbuf` or `memory` (the filename).
    pub fn start_backend(_id: &str, kind: &str, size: usize, log: Option<LogFile>) -> Started {
        let addr = RingbufBackend {
            ring: Ring::new(size),
            log,
            frontend: None,
        }
        .start();
        Started {
            backend: addr.recipient(),
            filename: kind.to_owned(),
            opened: true,
            ringbuf: true,
            pty: None,
        }
    }

    fn notify(&self, ev: FrontendEvent) {
        if let Some(fe) = &self.frontend {
            super::deliver(fe, ev);
        }
    }
}

impl Actor for RingbufBackend {
    type Context = Context<Self>;
}

impl Handler<ToBackend> for RingbufBackend {
    type Result = Result<BackendReply, ChardevError>;

    fn handle(&mut self, msg: ToBackend, ctx: &mut Context<Self>) -> Self::Result {
        match msg {
            ToBackend::Write(b) => {
                self.ring.write(&b);
                if let Some(log) = &mut self.log {
                    log.log(&b);
                }
                Ok(BackendReply::Written(b.len()))
            }
            ToBackend::Attach(sink) => {
                self.frontend = Some(sink);
                self.notify(FrontendEvent::Opened);
                Ok(BackendReply::Done)
            }
            ToBackend::Detach => {
                self.frontend = None;
                Ok(BackendReply::Done)
            }
            ToBackend::Break => {
                self.notify(FrontendEvent::Break);
                Ok(BackendReply::Done)
            }
            ToBackend::RingWrite(data) => {
                self.ring.write(&data);
                Ok(BackendReply::Done)
            }
            ToBackend::RingRead { size: 0, .. } => Ok(BackendReply::Text(String::new())),
            ToBackend::RingRead { size, format } => Ok(BackendReply::Text(match format {
                DataFormat::Utf8 => self.ring.read_utf8(size),
                DataFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(self.ring.read(size)),
            })),
            ToBackend::Ioctl(_) => Err(ChardevError::NotSupported),
            ToBackend::Release | ToBackend::Reacquire => Ok(BackendReply::Done),
            ToBackend::IsOpen => Ok(BackendReply::Value(1)),
            ToBackend::Stop => {
                ctx.stop();
                Ok(BackendReply::Done)
            }
        }
    }
}

/// Decode base64 as QEMU does (`qbase64_decode`): only `A-Za-z0-9+/=` and
/// newlines are allowed, and decoding is glib-lenient (a trailing partial
/// quantum is dropped; `=` counts as a zero digit that suppresses its byte).
pub fn qemu_base64_decode(s: &str) -> Result<Vec<u8>, ChardevError> {
    let valid = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'\n');
    if !s.bytes().all(valid) {
        return Err(ChardevError::Base64Invalid);
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
    }

    #[test]
    fn ring_sizes_must_be_positive_powers_of_two() {
        assert_eq!(ring_size(None), Ok(65536));
        assert_eq!(ring_size(Some(2)), Ok(2));
        assert!(ring_size(Some(0)).is_err());
        assert!(ring_size(Some(5)).is_err());
        assert!(ring_size(Some(-4)).is_err());
        assert!(ring_size(Some(1 << 40)).is_err());
    }
}
