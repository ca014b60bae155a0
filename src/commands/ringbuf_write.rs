//! `ringbuf-write`: append to a ring chardev (`ringbuf`, `memory`); the
//! oldest bytes are overwritten when it is full.
use super::{Args, Command, Request};
use crate::api::execute::{offload, Executor};
use crate::backends::ringbuf::qemu_base64_decode;
use crate::chardev::lock_ring;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;
use bytes::Bytes;

/// What `ringbuf-write` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Bytes (QMP's utf8 format gives the text's bytes; U+0000 is 0x00).
    Bytes(Bytes),
    /// QMP's base64 format, decoded as QEMU decodes it (glib-lenient) once
    /// the ring is found: a bad encoding to a missing chardev reports the
    /// chardev, as QEMU does.
    Base64(String),
}

impl Payload {
    fn len(&self) -> usize {
        match self {
            Payload::Bytes(b) => b.len(),
            Payload::Base64(s) => s.len(),
        }
    }
}

/// `ringbuf-write`: append bytes to a ring chardev, overwriting its
/// oldest bytes when full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingbufWrite {
    /// The ring chardev.
    pub device: String,
    /// What to write.
    pub data: Payload,
}

impl Request for RingbufWrite {
    const NAME: &'static str = "ringbuf-write";
    type Output = ();

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<(), Error> {
        // Written under the ring's lock right here (no message to its
        // actor); big payloads are decoded off the arbiter.
        let ring = exec.ring(&self.device)?;
        let data = self.data;
        offload(data.len(), move || {
            match data {
                Payload::Bytes(b) => lock_ring(&ring).write(&b),
                Payload::Base64(s) => lock_ring(&ring).write(&qemu_base64_decode(&s)?),
            }
            Ok(())
        })
        .await
    }
}

impl Command for RingbufWrite {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        let data = args.string("data");
        Ok(RingbufWrite {
            device: args.string("device"),
            data: match args.get("format").and_then(Json::as_str) {
                Some("base64") => Payload::Base64(data),
                _ => Payload::Bytes(Bytes::from(data.into_bytes())),
            },
        })
    }

    fn to_qmp(_: ()) -> Json {
        Json::empty_object()
    }
}

impl Handle {
    /// `ringbuf-write` of bytes to a ring chardev (the oldest bytes are
    /// overwritten when it is full).
    pub async fn ringbuf_write(&self, device: &str, data: &[u8]) -> Result<(), Error> {
        self.run(RingbufWrite {
            device: device.into(),
            data: Payload::Bytes(Bytes::copy_from_slice(data)),
        })
        .await
    }
}
