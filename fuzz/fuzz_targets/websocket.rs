//! The websocket server side: the HTTP upgrade request head, then client
//! frames (masking, fragments, control frames, close), in any chunks.
#![no_main]
use chardevd::internals::websocket::{handshake, Decoder, Handshake};
use libfuzzer_sys::fuzz_target;

fn sha1(_: &[u8]) -> [u8; 20] {
    [7; 20]
}

fuzz_target!(|data: &[u8]| {
    let Some((cut, rest)) = data.split_first() else { return };
    let frames = match handshake(rest, "Thu, 01 Jan 1970 00:00:00 GMT", sha1) {
        Handshake::Accept { consumed, .. } => &rest[consumed..],
        // Frames alone, as if the head had been accepted.
        _ => rest,
    };
    let mut d = Decoder::new();
    let (mut payload, mut reply) = (Vec::new(), Vec::new());
    for chunk in frames.chunks(usize::from(*cut) + 1) {
        if d.feed(chunk, &mut payload, &mut reply).is_err() {
            break;
        }
    }
});
