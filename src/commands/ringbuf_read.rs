//! `ringbuf-read`: take bytes from a ring chardev (the read is destructive).
use super::{Args, Command, Request};
use crate::api::execute::{offload, Executor};
use crate::chardev::lock_ring;
use crate::error::Error;
use crate::json::Json;
use crate::runtime::Handle;
use base64::Engine as _;
use bytes::Bytes;

/// QMP's `DataFormat`: how a read is taken and rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataFormat {
    /// Text: whole characters only (one cut by `size` stays in the ring,
    /// unless it is the first of the read), invalid sequences as U+FFFD
    /// exactly where QEMU puts them (README difference 2).
    #[default]
    Utf8,
    /// The ring's bytes as they are (QMP renders them in base64).
    Base64,
}

/// `ringbuf-read`: take (destructively) up to `size` bytes from a ring
/// chardev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingbufRead {
    /// The ring chardev.
    pub device: String,
    /// The most bytes to take (must be positive).
    pub size: i64,
    /// How to take them.
    pub format: DataFormat,
}

/// What a ring read took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RingData {
    /// The ring's bytes ([`DataFormat::Base64`]).
    Bytes(Bytes),
    /// Whole characters, invalid sequences replaced ([`DataFormat::Utf8`]).
    Text(String),
}

impl RingData {
    /// The bytes taken (a text's UTF-8).
    pub fn into_bytes(self) -> Bytes {
        match self {
            RingData::Bytes(b) => b,
            RingData::Text(t) => Bytes::from(t.into_bytes()),
        }
    }
}

impl Request for RingbufRead {
    const NAME: &'static str = "ringbuf-read";
    type Output = RingData;

    #[allow(private_interfaces)]
    async fn execute(self, exec: &Executor) -> Result<RingData, Error> {
        let ring = exec.ring(&self.device)?;
        if self.size <= 0 {
            return Err(Error::SizeNotPositive);
        }
        // A read takes at most `Limits::max_read` (the rest stays for the
        // next one): a 1 GiB ring read at once would build a reply of GiBs.
        let size = usize::try_from(self.size)
            .unwrap_or(usize::MAX)
            .min(exec.limits().max_read);
        let utf8 = self.format == DataFormat::Utf8;
        // Taken under the lock, off the arbiter when big.
        let big = lock_ring(&ring).len().min(size);
        Ok(offload(big, move || {
            let mut r = lock_ring(&ring);
            if utf8 {
                RingData::Text(r.read_utf8(size))
            } else {
                RingData::Bytes(Bytes::from(r.read(size)))
            }
        })
        .await)
    }
}

impl Command for RingbufRead {
    fn from_qmp(args: &Args<'_>) -> Result<Self, Error> {
        Ok(RingbufRead {
            device: args.string("device"),
            size: args.opt_int("size").unwrap_or(0),
            format: match args.get("format").and_then(Json::as_str) {
                Some("base64") => DataFormat::Base64,
                _ => DataFormat::Utf8,
            },
        })
    }

    fn to_qmp(data: RingData) -> Json {
        match data {
            RingData::Text(t) => Json::Str(t),
            RingData::Bytes(b) => Json::Str(base64::engine::general_purpose::STANDARD.encode(b)),
        }
    }

    fn output_size(data: &RingData) -> usize {
        match data {
            RingData::Text(t) => t.len(),
            RingData::Bytes(b) => b.len() * 4 / 3,
        }
    }
}

impl Handle {
    /// `ringbuf-read` of at most `size` bytes, as they are in the ring.
    pub async fn ringbuf_read(&self, device: &str, size: i64) -> Result<Bytes, Error> {
        let data = self
            .run(RingbufRead {
                device: device.into(),
                size,
                format: DataFormat::Base64,
            })
            .await?;
        Ok(data.into_bytes())
    }

    /// `ringbuf-read` in QMP's utf8 format: at most `size` bytes of whole
    /// characters, invalid sequences replaced (see [`DataFormat::Utf8`]).
    pub async fn ringbuf_read_text(&self, device: &str, size: i64) -> Result<String, Error> {
        match self
            .run(RingbufRead {
                device: device.into(),
                size,
                format: DataFormat::Utf8,
            })
            .await?
        {
            RingData::Text(t) => Ok(t),
            // A utf8 read always yields text; bytes would be valid UTF-8 too.
            RingData::Bytes(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        }
    }
}
