//! Property tests of the I/O-free codecs (the socket backend's telnet and
//! tn3270 input filter, websocket handshake and frame decoder, the DN of a
//! certificate; the mux's escape machine and line stamps) with arbitrary input and arbitrary read boundaries: no
//! panics, output never larger than input, and a stream cut anywhere gives
//! what the uncut stream gives.
use chardevd::internals::dn::subject_dn_bytes;
use chardevd::internals::mux::{Decoded, Escape, MuxCommand, Stamps};
use chardevd::internals::telnet::{Filter, Piece};
use chardevd::internals::websocket::{self, Decoder, Handshake};
mod common;

use common::cut;
use proptest::prelude::*;

/// Bytes biased towards telnet commands.
fn telnetish() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => Just(0xffu8),
        2 => prop::sample::select(vec![0xf0u8, 0xf1, 0xf3, 0xf4, 0xef, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0x00, 0x18, 0x19]),
        4 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..200)
}

/// Pieces with adjacent data merged (read boundaries only split data).
fn filtered(tn3270: bool, parts: &[Vec<u8>]) -> Vec<Piece> {
    let mut f = Filter::new(tn3270);
    let mut out = Vec::new();
    for p in parts {
        f.feed(p, &mut out);
    }
    let mut merged: Vec<Piece> = Vec::new();
    for piece in out {
        match (merged.last_mut(), piece) {
            (Some(Piece::Data(a)), Piece::Data(b)) => a.extend_from_slice(&b),
            (_, p) => merged.push(p),
        }
    }
    merged
}

fn sha1(data: &[u8]) -> [u8; 20] {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
    d.as_ref().try_into().unwrap()
}

/// One client frame: opcode, FIN, payload, mask.
fn frame(op: u8, fin: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | op];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 65536 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

#[derive(Debug, Clone)]
enum Msg {
    /// A binary message in this many fragments.
    Binary(Vec<u8>, usize),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        4 => (prop::collection::vec(any::<u8>(), 0..300), 1usize..4).prop_map(|(p, n)| Msg::Binary(p, n)),
        1 => prop::collection::vec(any::<u8>(), 0..125).prop_map(Msg::Ping),
        1 => prop::collection::vec(any::<u8>(), 0..125).prop_map(Msg::Pong),
    ]
}

fn decode(parts: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>, Option<websocket::Closing>) {
    let mut d = Decoder::new();
    let (mut data, mut reply) = (Vec::new(), Vec::new());
    let mut closed = None;
    for p in parts {
        if let Err(c) = d.feed(p, &mut data, &mut reply) {
            closed = Some(c);
        }
    }
    (data, reply, closed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn telnet_filtering_does_not_depend_on_read_boundaries(
        input in telnetish(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        tn3270 in any::<bool>(),
    ) {
        let whole = filtered(tn3270, std::slice::from_ref(&input));
        prop_assert_eq!(&filtered(tn3270, &cut(&input, &cuts)), &whole);
        let one_by_one: Vec<Vec<u8>> = input.chunks(1).map(<[u8]>::to_vec).collect();
        prop_assert_eq!(&filtered(tn3270, &one_by_one), &whole);
        let data: usize = whole.iter().map(|p| match p { Piece::Data(d) => d.len(), Piece::Break => 2 }).sum();
        prop_assert!(data <= input.len(), "filtered output is never larger than its input");
        // Bytes without IAC pass untouched.
        let plain: Vec<u8> = input.iter().copied().filter(|&b| b != 0xff).collect();
        let expect: Vec<Piece> = if plain.is_empty() { vec![] } else { vec![Piece::Data(plain.clone())] };
        prop_assert_eq!(filtered(tn3270, &[plain]), expect);
    }

    #[test]
    fn websocket_frames_decode_the_same_however_they_are_cut(
        msgs in prop::collection::vec(msg(), 0..8),
        mask in any::<[u8; 4]>(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for m in &msgs {
            match m {
                Msg::Binary(p, n) => {
                    want.extend_from_slice(p);
                    let size = p.len().div_ceil(*n).max(1);
                    let chunks: Vec<&[u8]> = if p.is_empty() { vec![&p[..]] } else { p.chunks(size).collect() };
                    for (i, c) in chunks.iter().enumerate() {
                        let op = if i == 0 { 2 } else { 0 };
                        stream.extend(frame(op, i + 1 == chunks.len(), c, mask));
                    }
                }
                Msg::Ping(p) => stream.extend(frame(9, true, p, mask)),
                Msg::Pong(p) => stream.extend(frame(10, true, p, mask)),
            }
        }
        let whole = decode(&[stream.clone()]);
        prop_assert_eq!(&whole.0, &want, "binary payloads arrive as one byte stream");
        prop_assert!(whole.2.is_none(), "valid frames never close: {:?}", whole.2);
        let pings = msgs.iter().filter(|m| matches!(m, Msg::Ping(_))).count();
        let pongs = whole.1.iter().filter(|&&b| b == 0x8a).count();
        prop_assert!(pongs >= pings, "every ping is answered");
        prop_assert_eq!(decode(&cut(&stream, &cuts)), whole);
    }

    #[test]
    fn websocket_decoding_of_arbitrary_bytes_never_panics(
        input in prop::collection::vec(any::<u8>(), 0..400),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let (data, reply, _) = decode(&cut(&input, &cuts));
        prop_assert!(data.len() <= input.len());
        // Replies are pongs (at most the pings' payloads) and one close frame.
        prop_assert!(reply.len() <= input.len() + 64);
    }

    #[test]
    fn the_websocket_handshake_never_panics_and_waits_for_the_end_of_the_head(
        head in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let valid = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let _ = websocket::handshake(&head, "Tue, 01 Dec 2026 21:31:31 GMT", sha1);
        for i in 0..valid.len() {
            prop_assert_eq!(websocket::handshake(&valid[..i], "d", sha1), Handshake::Incomplete);
        }
        let mut more = valid.to_vec();
        more.extend_from_slice(&head);
        match websocket::handshake(&more, "d", sha1) {
            Handshake::Accept { consumed, .. } => prop_assert_eq!(consumed, valid.len()),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn a_certificates_dn_never_panics_on_arbitrary_der(
        der in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let _ = subject_dn_bytes(&der);
        // A DER-shaped prefix makes the parser go deeper.
        let mut shaped = vec![0x30, 0x82, (der.len() >> 8) as u8, der.len() as u8];
        shaped.extend_from_slice(&der);
        let _ = subject_dn_bytes(&shaped);
    }
}

/// Bytes biased towards the mux's escape character and its commands.
fn muxish() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => Just(0x01u8),
        3 => prop::sample::select(b"hx?sbctz\n".to_vec()),
        3 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..300)
}

fn escaped(parts: &[Vec<u8>]) -> Vec<Decoded> {
    let mut e = Escape::new(0x01);
    let mut out = Vec::new();
    for p in parts {
        e.feed(p, &mut out);
    }
    out
}

proptest! {
    #[test]
    fn mux_escapes_do_not_depend_on_read_boundaries(input in muxish(), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let whole = escaped(std::slice::from_ref(&input));
        prop_assert_eq!(escaped(&cut(&input, &cuts)), whole.clone());
        // Data never grows, and every escape byte is accounted for: each
        // C-a is swallowed, starts a command, or is data as C-a C-a.
        let data: usize = whole.iter().map(|d| match d { Decoded::Data(v) => v.len(), _ => 0 }).sum();
        prop_assert!(data <= input.len());
        let commands = whole.iter().filter(|d| matches!(d, Decoded::Command(_))).count();
        let escapes = input.iter().filter(|b| **b == 0x01).count();
        prop_assert!(commands <= escapes);
    }

    #[test]
    fn input_without_the_escape_passes_through(input in prop::collection::vec(any::<u8>().prop_filter("no C-a", |b| *b != 1), 0..300)) {
        let out = escaped(std::slice::from_ref(&input));
        if input.is_empty() {
            prop_assert!(out.is_empty());
        } else {
            prop_assert_eq!(out, vec![Decoded::Data(input)]);
        }
    }

    #[test]
    fn line_stamps_do_not_depend_on_write_boundaries(input in prop::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..300), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        let stamp = |parts: &[Vec<u8>]| {
            let mut s = Stamps::default();
            s.toggle();
            let mut out = Vec::new();
            for p in parts {
                // A fixed clock: only the boundaries change.
                s.apply(p, 1234, &mut out);
            }
            out
        };
        let whole = stamp(std::slice::from_ref(&input));
        prop_assert_eq!(stamp(&cut(&input, &cuts)), whole.clone());
        let lines = input.iter().filter(|b| **b == b'\n').count();
        let trailing = usize::from(input.last() == Some(&b'\n'));
        prop_assert_eq!(whole.len(), input.len() + 15 * (lines - trailing));
    }
}

#[test]
fn every_mux_command_letter_is_qemus() {
    let mut out = Vec::new();
    Escape::new(1).feed(b"\x01h\x01?\x01x\x01s\x01b\x01c\x01t", &mut out);
    use MuxCommand::*;
    let want = [Help, Help, Exit, Save, Break, Switch, Timestamps];
    assert_eq!(out, want.iter().map(|c| Decoded::Command(*c)).collect::<Vec<_>>());
}
