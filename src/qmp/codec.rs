//! The QMP input codec: [`Framer`] behind tokio-util's `Decoder`, so a session
//! reads `FramedRead<socket, QmpCodec>` as a stream of messages.
//!
//! It parses only up to the next message: what follows stays in the read
//! buffer (bounded by one read) until the session asks for it, so a read
//! full of garbage costs one error at a time, not one per byte at once.
use crate::json::framer::{Framer, InputBudget, Message};
use bytes::{Buf, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
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

    /// The same, charging partly received messages to `budget`.
    pub fn with_budget(max_message: usize, budget: Arc<InputBudget>) -> Self {
        QmpCodec {
            framer: Framer::with_budget(max_message, budget),
            ..Self::new(max_message)
        }
    }
}

impl Decoder for QmpCodec {
    type Item = Message;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, std::io::Error> {
        if self.ready.is_empty() && !src.is_empty() {
            // The framer keeps partial messages itself; it stops at the
            // first message, the rest waits in `src`.
            let taken = self.framer.feed_until(src, &mut self.scratch);
            src.advance(taken);
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
        assert!(buf.is_empty(), "a partial message is the framer's");
        buf.extend_from_slice(br#":2} {]"#);
        assert!(c.decode(&mut buf).unwrap().unwrap().is_ok());
        assert_eq!(
            c.decode(&mut buf).unwrap().unwrap().unwrap_err(),
            "JSON parse error, expecting value"
        );
        assert!(c.decode(&mut buf).unwrap().is_none());
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    #[test]
    fn a_read_full_of_garbage_is_parsed_one_error_at_a_time() {
        let mut c = QmpCodec::new(1 << 20);
        let mut buf = BytesMut::from(&b"]".repeat(256 << 10)[..]);
        let first = c.decode(&mut buf).unwrap().unwrap();
        assert!(first.is_err());
        assert_eq!(buf.len(), (256 << 10) - 1, "the rest waits, unparsed");
        assert!(c.ready.len() <= 1 && c.scratch.capacity() < 64);
    }

    #[test]
    fn messages_of_every_session_share_one_input_budget() {
        let budget = InputBudget::new(3 << 20);
        let mut a = QmpCodec::with_budget(64 << 20, budget.clone());
        let mut b = QmpCodec::with_budget(64 << 20, budget.clone());
        let big = |n: usize| {
            let mut v = br#"{"execute":"x","arguments":{"s":""#.to_vec();
            v.extend(std::iter::repeat_n(b'A', n));
            BytesMut::from(&v[..])
        };
        assert!(a.decode(&mut big(2 << 20)).unwrap().is_none(), "a holds 2 MiB");
        let err = b.decode(&mut big(2 << 20)).unwrap().unwrap().unwrap_err();
        assert_eq!(err, crate::json::framer::BUDGET_EXCEEDED, "b would pass the 3 MiB");
        drop(a);
        assert_eq!(budget.used(), 0, "what a held is given back");
    }
}
