//! The QMP input codec: [`Framer`] behind tokio-util's `Decoder`, so a session
//! reads `FramedRead<socket, QmpCodec>` as a stream of messages.
use crate::json::framer::{Framer, Message};
use bytes::BytesMut;
use std::collections::VecDeque;
use tokio_util::codec::Decoder;

/// Decodes QMP messages (values or QEMU's parse-error texts) from bytes.
#[derive(Debug)]
pub struct QmpCodec {
    framer: Framer,
    ready: VecDeque<Message>,
    scratch: Vec<Message>,
}

impl QmpCodec {
    /// A codec whose messages may be up to `max_message` bytes (QEMU: 64 MiB).
    pub fn new(max_message: usize) -> Self {
        QmpCodec {
            framer: Framer::with_max_token_size(max_message),
            ready: VecDeque::new(),
            scratch: Vec::new(),
        }
    }
}

impl Decoder for QmpCodec {
    type Item = Message;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, std::io::Error> {
        if !src.is_empty() {
            // The framer keeps partial messages itself: consume everything.
            self.framer.feed(src, &mut self.scratch);
            src.clear();
            self.ready.extend(self.scratch.drain(..));
        }
        Ok(self.ready.pop_front())
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Message>, std::io::Error> {
        // QEMU never flushes its parser: an unfinished message is dropped.
        self.decode(src)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_out_one_at_a_time_across_chunks() {
        let mut c = QmpCodec::new(1 << 20);
        let mut buf = BytesMut::from(&br#"{"a":1}{"b""#[..]);
        assert!(c.decode(&mut buf).unwrap().is_some());
        assert!(c.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(br#":2} {]"#);
        assert!(c.decode(&mut buf).unwrap().unwrap().is_ok());
        assert_eq!(
            c.decode(&mut buf).unwrap().unwrap().unwrap_err(),
            "JSON parse error, expecting value"
        );
        assert!(c.decode(&mut buf).unwrap().is_none());
    }
}
