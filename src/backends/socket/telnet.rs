//! Telnet and tn3270 server side of QEMU 10.0.2's socket chardev (`telnet=on`, `tn3270=on`), without I/O.
//!
//! Two parts:
//! - the bytes the server sends when a client connects ([`TELNET_INIT`], [`TN3270_INIT`]); QEMU never answers
//!   anything the client negotiates, so nothing else is ever sent on the client's behalf, and output data is
//!   **not** IAC-escaped;
//! - the input filter ([`Filter`]), a port of `tcp_chr_process_IAC_bytes` in `chardev/char-socket.c`.
//!
//! Filter rules (byte values in hex; `x`, `y` are any byte):
//!
//! | input | plain telnet | tn3270 |
//! |---|---|---|
//! | `ff ff` | data `ff` | data `ff` |
//! | `ff f3` (BREAK) | [`Piece::Break`] | [`Piece::Break`] |
//! | `ff ef` (EOR), `ff fa` (SB), `ff f0` (SE) | dropped with the byte after (3 bytes) | kept as data `ff ef` etc. |
//! | `ff f4` (IP), `ff f1` (NOP) | dropped with the byte after (3 bytes) | dropped (2 bytes) |
//! | `ff x y` (any other `x`, e.g. DO/WILL + option) | dropped (3 bytes) | dropped (3 bytes) |
//!
//! The third byte of a 3-byte sequence is dropped whatever it is, even `ff`. Subnegotiation is not parsed: after
//! `IAC SB` only one more byte is dropped, and the rest of the subnegotiation reaches the frontend as data (plain
//! telnet); in tn3270 mode `ff fa`, the payload and `ff f0` all reach the frontend.
//!
//! State survives across [`Filter::feed`] calls, so a sequence split across reads at any byte gives the same
//! result as the unsplit input.
//!
//! Differences from QEMU, all deliberate:
//! - **tn3270 split bug fixed.** QEMU writes `buf[j++] = IAC; buf[j++] = buf[i]` in place; when the `IAC` came
//!   in an earlier read and nothing has been dropped yet in this read (`i == j`), the first store overwrites the
//!   EOR/SB/SE byte, so QEMU delivers `ff ff` instead of `ff ef` (measured with HMP's 1-byte reads; by the source,
//!   with longer reads the second store also overwrites the next input byte with `ff`, starting a new IAC sequence).
//!   This filter always delivers `ff ef` / `ff fa` / `ff f0`.
//! - **Break ordering** (read from the source; not observable with `-machine none`). QEMU raises
//!   `CHR_EVENT_BREAK` while scanning a read and delivers the read's surviving data only afterwards, so data that
//!   came *before* the break in the same read reaches the frontend after the break. Here pieces come out in input
//!   order.
//! - **Per-connection state.** QEMU keeps the filter state (`do_telnetopt`) in the chardev and never resets it on
//!   a new connection (read from the source, not measured), so a client that disconnects in the middle of an IAC
//!   sequence makes the next client lose its first byte(s). Make a new [`Filter`] (or call [`Filter::reset`]) for
//!   every connection.

/// What the server sends when a telnet client connects (WILL ECHO, WILL SGA, WILL BINARY, DO BINARY).
pub const TELNET_INIT: [u8; 12] = [
    IAC, WILL, 0x01, // WILL ECHO
    IAC, WILL, 0x03, // WILL SUPPRESS-GO-AHEAD
    IAC, WILL, 0x00, // WILL BINARY
    IAC, DO, 0x00, // DO BINARY
];

/// What it sends for tn3270 (DO EOR, WILL EOR, DO BINARY, WILL BINARY, DO TTYPE, SB TTYPE SEND IAC SE).
pub const TN3270_INIT: [u8; 21] = [
    IAC, DO, 0x19, // DO END-OF-RECORD
    IAC, WILL, 0x19, // WILL END-OF-RECORD
    IAC, DO, 0x00, // DO BINARY
    IAC, WILL, 0x00, // WILL BINARY
    IAC, DO, 0x18, // DO TERMINAL-TYPE
    IAC, SB, 0x18, 0x01, IAC, SE, // SB TERMINAL-TYPE SEND IAC SE
];

/// Interpret As Command.
const IAC: u8 = 0xff;
/// DO (option negotiation).
const DO: u8 = 0xfd;
/// WILL (option negotiation).
const WILL: u8 = 0xfb;
/// Subnegotiation begin.
const SB: u8 = 0xfa;
/// Subnegotiation end.
const SE: u8 = 0xf0;
/// End of record (tn3270).
const EOR: u8 = 0xef;
/// Break.
const BREAK: u8 = 0xf3;
/// Interrupt process.
const IP: u8 = 0xf4;
/// No operation.
const NOP: u8 = 0xf1;

/// One piece of filtered input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Bytes for the frontend (never empty).
    Data(Vec<u8>),
    /// `IAC BREAK` from the client; QEMU raises `CHR_EVENT_BREAK` on the frontend.
    Break,
}

/// Where the filter is inside an IAC sequence (QEMU's `do_telnetopt` 1, 2, 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain data.
    Data,
    /// The previous byte was an `IAC`.
    Iac,
    /// `IAC x` seen; the next byte (the option) is dropped.
    Option,
}

/// QEMU's IAC input filter for one telnet or tn3270 connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// tn3270 rules instead of plain telnet ones.
    tn3270: bool,
    /// Position inside an IAC sequence; carried across `feed` calls.
    state: State,
}

impl Filter {
    /// A filter at the start of a connection; `tn3270` selects the tn3270 rules (`tn3270=on`), otherwise plain
    /// telnet (`telnet=on`).
    #[must_use]
    pub fn new(tn3270: bool) -> Filter {
        Filter {
            tn3270,
            state: State::Data,
        }
    }

    /// Whether this filter uses the tn3270 rules.
    #[must_use]
    pub fn is_tn3270(&self) -> bool {
        self.tn3270
    }

    /// Whether the filter is in the middle of an IAC sequence (the last byte fed was an `IAC` or a command that
    /// takes an option byte).
    #[must_use]
    pub fn in_sequence(&self) -> bool {
        self.state != State::Data
    }

    /// Forget any partial IAC sequence, as for a new connection.
    pub fn reset(&mut self) {
        self.state = State::Data;
    }

    /// Filter `input`; pieces come out in order (data, breaks). State survives across calls (a sequence split
    /// across reads at any byte works).
    ///
    /// New pieces are appended to `out`; what `out` already holds is left alone. Within one call, adjacent data
    /// is merged into one [`Piece::Data`], so a call yields at most one more `Data` piece than it has breaks.
    /// Empty `Data` pieces are never produced.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Piece>) {
        let mut data: Vec<u8> = Vec::with_capacity(input.len());
        let mut rest = input;
        while let Some((&b, tail)) = rest.split_first() {
            if self.state == State::Data && b != IAC {
                // Plain data up to the next IAC is copied at once.
                let run = rest.iter().position(|&c| c == IAC).unwrap_or(rest.len());
                data.extend_from_slice(&rest[..run]);
                rest = &rest[run..];
                continue;
            }
            rest = tail;
            match self.state {
                State::Data => {
                    if b == IAC {
                        self.state = State::Iac;
                    } else {
                        data.push(b);
                    }
                }
                State::Iac => {
                    self.state = State::Data;
                    match b {
                        IAC => data.push(IAC),
                        BREAK => {
                            if !data.is_empty() {
                                out.push(Piece::Data(std::mem::take(&mut data)));
                            }
                            out.push(Piece::Break);
                        }
                        EOR | SB | SE if self.tn3270 => {
                            data.push(IAC);
                            data.push(b);
                        }
                        IP | NOP if self.tn3270 => {}
                        _ => self.state = State::Option,
                    }
                }
                State::Option => self.state = State::Data,
            }
        }
        if !data.is_empty() {
            out.push(Piece::Data(data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds each chunk in turn to a fresh filter and returns all pieces.
    fn run(tn3270: bool, chunks: &[&[u8]]) -> Vec<Piece> {
        let mut f = Filter::new(tn3270);
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out);
        }
        out
    }

    /// Merges adjacent data pieces, so outputs of different chunkings can be compared.
    fn merged(pieces: Vec<Piece>) -> Vec<Piece> {
        let mut out: Vec<Piece> = Vec::new();
        for p in pieces {
            match (out.last_mut(), p) {
                (Some(Piece::Data(prev)), Piece::Data(d)) => prev.extend_from_slice(&d),
                (_, p) => out.push(p),
            }
        }
        out
    }

    fn data(b: &[u8]) -> Piece {
        Piece::Data(b.to_vec())
    }

    #[test]
    fn init_bytes() {
        assert_eq!(
            TELNET_INIT,
            [0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x00]
        );
        assert_eq!(
            TN3270_INIT,
            [
                0xff, 0xfd, 0x19, 0xff, 0xfb, 0x19, 0xff, 0xfd, 0x00, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x18, 0xff, 0xfa,
                0x18, 0x01, 0xff, 0xf0
            ]
        );
    }

    #[test]
    fn telnet_table() {
        // Rows of socket.md section 4, plain telnet.
        let rows: &[(&[u8], &[u8])] = &[
            (b"\xff\xff", b"\xff"),
            (b"x\xff\xfd\x01y", b"xy"),
            (b"x\xff\xfb\x1fy", b"xy"),
            (b"x\xff\xf1yz", b"xz"),
            (b"x\xff\xf4yz", b"xz"),
            (b"x\xff\xfa\x18yz", b"xyz"),
            // Not tn3270: EOR and SE take an option byte like any other command.
            (b"x\xff\xefyz", b"xz"),
            (b"x\xff\xf0yz", b"xz"),
            // The option byte is dropped even when it is IAC.
            (b"x\xff\xfd\xffyz", b"xyz"),
        ];
        for (input, want) in rows {
            assert_eq!(run(false, &[input]), vec![data(want)], "input {input:02x?}");
        }
        assert_eq!(run(false, &[b"x\xff\xf3y"]), vec![data(b"x"), Piece::Break, data(b"y")]);
    }

    #[test]
    fn tn3270_table() {
        let rows: &[(&[u8], &[u8])] = &[
            (b"x\xff\xefy", b"x\xff\xefy"),
            (b"x\xff\xf0y", b"x\xff\xf0y"),
            (b"x\xff\xfa\x18\x00IBM\xff\xf0y", b"x\xff\xfa\x18\x00IBM\xff\xf0y"),
            (b"x\xff\xf1y", b"xy"),
            (b"x\xff\xf4y", b"xy"),
            (b"x\xff\xffy", b"x\xffy"),
            (b"x\xff\xfd\x01y", b"xy"),
            (b"x\xff\xfb\x19y", b"xy"),
        ];
        for (input, want) in rows {
            assert_eq!(run(true, &[input]), vec![data(want)], "input {input:02x?}");
        }
        assert_eq!(run(true, &[b"x\xff\xf3y"]), vec![data(b"x"), Piece::Break, data(b"y")]);
    }

    #[test]
    fn split_cases() {
        for tn3270 in [false, true] {
            assert_eq!(run(tn3270, &[b"q\xff", b"\xffr"]), vec![data(b"q"), data(b"\xffr")]);
            assert_eq!(merged(run(tn3270, &[b"q\xff", b"\xffr"])), vec![data(b"q\xffr")]);
            assert_eq!(
                run(tn3270, &[b"q\xff", b"\xf3r"]),
                vec![data(b"q"), Piece::Break, data(b"r")]
            );
            assert_eq!(run(tn3270, &[b"q\xff\xfd", b"\x01r"]), vec![data(b"q"), data(b"r")]);
        }
        // The QEMU bug case: IAC EOR split, read one byte at a time. QEMU gives ff ff; we give ff ef.
        assert_eq!(
            merged(run(true, &[b"x", b"\xff", b"\xef", b"y"])),
            vec![data(b"x\xff\xefy")]
        );
        assert_eq!(run(true, &[b"\xff", b"\xefy"]), vec![data(b"\xff\xefy")]);
        assert_eq!(run(true, &[b"\xff", b"\xf0"]), vec![data(b"\xff\xf0")]);
    }

    #[test]
    fn state_and_reset() {
        let mut f = Filter::new(false);
        let mut out = Vec::new();
        assert!(!f.is_tn3270());
        f.feed(b"a\xff", &mut out);
        assert!(f.in_sequence());
        f.reset();
        assert!(!f.in_sequence());
        f.feed(b"b", &mut out);
        assert_eq!(out, vec![data(b"a"), data(b"b")]);
        assert!(Filter::new(true).is_tn3270());
    }

    #[test]
    fn merging_and_empty() {
        let mut out = vec![data(b"old")];
        let mut f = Filter::new(false);
        f.feed(b"", &mut out);
        f.feed(b"\xff\xfd\x01", &mut out);
        assert_eq!(out, vec![data(b"old")]);
        f.feed(b"a\xff\xfd\x01b\xff\xffc\xff\xf3\xff\xf3d", &mut out);
        assert_eq!(
            out,
            vec![data(b"old"), data(b"ab\xffc"), Piece::Break, Piece::Break, data(b"d")]
        );
    }

    /// A long input mixing every kind of sequence, plus sequences at the very end.
    fn mixed() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(b"ab");
        v.extend_from_slice(&TELNET_INIT);
        for cmd in 0xeeu8..=0xff {
            v.push(b'<');
            v.push(IAC);
            v.push(cmd);
            v.push(b'o');
            v.push(b'>');
        }
        v.extend_from_slice(b"\xff\xff\xff\xff\xff\xf3\xff\xff\xff\xef\xff\xfa\x18\xff\xf0\xff\xfd\xff\xff\xff");
        v.extend_from_slice(&TN3270_INIT);
        v.extend_from_slice(b"z\xff");
        v
    }

    #[test]
    fn every_split_point_matches_whole() {
        let input = mixed();
        for tn3270 in [false, true] {
            let whole = run(tn3270, &[&input]);
            // One split point anywhere.
            for i in 0..=input.len() {
                let (a, b) = input.split_at(i);
                assert_eq!(merged(run(tn3270, &[a, b])), whole, "tn3270={tn3270} split at {i}");
            }
            // Two split points anywhere.
            for i in 0..=input.len() {
                for j in i..=input.len() {
                    let got = merged(run(tn3270, &[&input[..i], &input[i..j], &input[j..]]));
                    assert_eq!(got, whole, "tn3270={tn3270} split at {i},{j}");
                }
            }
            // One byte at a time (HMP's reads).
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(merged(run(tn3270, &bytes)), whole);
            // Whole-input output is already merged and never has empty data.
            assert_eq!(merged(whole.clone()), whole);
            assert!(whole.iter().all(|p| p != &Piece::Data(Vec::new())));
        }
    }

    #[test]
    fn mixed_expected_output() {
        // Spot-check the whole-input result against the rules, so the split test is not comparing two wrong runs.
        let input = mixed();
        let mut f = Filter::new(false);
        let mut out = Vec::new();
        f.feed(&input, &mut out);
        assert!(f.in_sequence());
        let breaks = out.iter().filter(|p| **p == Piece::Break).count();
        // One IAC BREAK in the command loop, one in the tail.
        assert_eq!(breaks, 2);
        let mut f3 = Filter::new(true);
        let mut out3 = Vec::new();
        f3.feed(b"<\xff\xefo><\xff\xf0o><\xff\xf1o><\xff\xf2o>", &mut out3);
        assert_eq!(out3, vec![data(b"<\xff\xefo><\xff\xf0o><o><>")]);
    }
}
