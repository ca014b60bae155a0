//! Property tests of the device models' input parsers (testdev's command
//! lines, the Wacom tablet's commands, the serial mouse's packets, the Baum
//! braille protocol) with
//! arbitrary input cut at arbitrary points: no panics, bounded buffers,
//! and a stream cut anywhere gives what the uncut stream gives.
use chardevd::commands::{Axis, Button, InputEvent};
#[cfg(feature = "braille")]
use chardevd::internals::braille::{Baum, Display};
use chardevd::internals::msmouse::{power_up_bytes, Mouse};
use chardevd::internals::testdev::{Command, Parser};
use chardevd::internals::wctablet::{Tablet, FULL_CONFIG, OUT_MAX};
mod common;

use common::cut;
use proptest::prelude::*;

/// Bytes biased towards testdev's alphabet: blanks, digits, command letters.
fn testdevish() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b" \t\r\n0123456789".to_vec()),
        2 => prop::sample::select(b"beiq".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..400)
}

fn commands(parts: &[Vec<u8>]) -> Vec<Command> {
    let mut p = Parser::default();
    parts.iter().flat_map(|part| p.feed(part)).collect()
}

/// Bytes biased towards the tablet's commands.
fn tabletish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            b"~#".to_vec(),
            b"RE\r".to_vec(),
            b"ST\r".to_vec(),
            b"SP\r".to_vec(),
            b"TS".to_vec(),
            b"@".to_vec(),
            b"\r".to_vec(),
            b"\n".to_vec(),
            vec![0],
        ]),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop::collection::vec(piece, 0..80).prop_map(|v| v.concat())
}

/// Events a mouse or a tablet gets, with syncs between batches.
#[derive(Debug, Clone)]
enum Step {
    Event(InputEvent),
    Sync,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let axis = prop_oneof![Just(Axis::X), Just(Axis::Y)];
    let button = prop_oneof![
        Just(Button::Left),
        Just(Button::Middle),
        Just(Button::Right),
        Just(Button::Other)
    ];
    let step = prop_oneof![
        (axis.clone(), any::<i64>()).prop_map(|(axis, value)| Step::Event(InputEvent::Rel { axis, value })),
        (axis, 0i64..0x8000).prop_map(|(axis, value)| Step::Event(InputEvent::Abs { axis, value })),
        (button, any::<bool>()).prop_map(|(button, down)| Step::Event(InputEvent::Btn { button, down })),
        Just(Step::Sync),
    ];
    prop::collection::vec(step, 0..120)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn testdev_commands_do_not_depend_on_read_boundaries(input in testdevish(), cuts in prop::collection::vec(any::<usize>(), 0..10)) {
        let whole = commands(std::slice::from_ref(&input));
        prop_assert_eq!(&commands(&cut(&input, &cuts)), &whole);
        // A command is the first non-blank after the number (a digit
        // there is a command, as in QEMU), so never more than non-blanks.
        let blank = |c: &u8| b" \t\n\r\x0b\x0c".contains(c);
        prop_assert!(whole.len() <= input.iter().filter(|c| !blank(c)).count());
        for c in &whole {
            prop_assert!(!blank(&c.cmd));
        }
    }

    #[test]
    fn testdev_never_stalls_on_a_full_buffer(blanks in 0usize..100, digits in 0usize..100) {
        // QEMU hangs on 32 bytes without a command (blanks, then digits);
        // chardevd drops them and still parses what comes after.
        prop_assume!(blanks + digits >= 32);
        let junk = [vec![b' '; blanks], vec![b'9'; digits]].concat();
        let mut p = Parser::default();
        prop_assert!(p.feed(&junk).is_empty());
        let after = p.feed(b" 7q");
        prop_assert!(!after.is_empty());
        prop_assert_eq!(after.last().map(|c| c.cmd), Some(b'q'));
    }

    #[test]
    fn tablet_replies_do_not_depend_on_write_boundaries(input in tabletish(), cuts in prop::collection::vec(any::<usize>(), 0..10), take in 1usize..600) {
        let run = |parts: Vec<Vec<u8>>| {
            let mut t = Tablet::new();
            prop_assert_eq!(t.take(usize::MAX), FULL_CONFIG.to_vec());
            t.set_speed(9600);
            let mut out = Vec::new();
            for p in parts {
                t.write(&p);
                // The frontend reads in pieces of its own size.
                let got = t.take(take);
                prop_assert!(got.len() <= take.min(OUT_MAX));
                out.extend(got);
            }
            out.extend(t.take(usize::MAX));
            Ok(out)
        };
        let whole = run(vec![input.clone()])?;
        let cut_up = run(cut(&input, &cuts))?;
        // Read boundaries only matter once the 512-byte out buffer fills
        // (the longest reply is 18 bytes).
        if whole.len() + 18 <= OUT_MAX {
            prop_assert_eq!(cut_up, whole);
        }
    }

    #[test]
    fn tablet_answers_every_command_after_any_junk(junk in prop::collection::vec(1u8..=255, 0..300)) {
        // Whatever came before (but a NUL, which hides the rest of the
        // buffer as in QEMU's C string), a fresh line with a command is
        // answered (QEMU's full buffer stays full; chardevd's starts again).
        let mut t = Tablet::new();
        t.set_speed(9600);
        t.write(&junk);
        t.take(usize::MAX);
        t.write(b"\r~#");
        let out = t.take(usize::MAX);
        prop_assert!(out.ends_with(b"~#CT-0045R,V1.3-5,"), "{:?}", String::from_utf8_lossy(&out));
    }

    #[test]
    fn mouse_packets_are_well_formed_and_bounded(steps in steps(), reads in prop::collection::vec(1usize..80, 1..8)) {
        let mut m = Mouse::default();
        m.set_tiocm(0x002 | 0x004); // DTR | RTS: power up
        let mut out = m.take(usize::MAX);
        for (i, s) in steps.iter().enumerate() {
            match s {
                Step::Event(e) => m.event(e),
                Step::Sync => m.sync(),
            }
            let got = m.take(reads[i % reads.len()]);
            out.extend(got);
            let rest = m.take(usize::MAX);
            prop_assert!(rest.len() <= 64, "the fifo holds 64 bytes");
            out.extend(rest);
        }
        let pnp = power_up_bytes();
        prop_assert!(out.starts_with(&pnp));
        // After the PnP id: packets of 3 or 4 bytes, each led by a byte
        // with bit 6 set, followed by bytes with it clear; a 4th byte is
        // the middle button (0x20 or 0).
        let mut i = pnp.len();
        while i < out.len() {
            prop_assert!(out[i] & 0x40 != 0, "packet start at {}: {:02x}", i, out[i]);
            prop_assert!(i + 3 <= out.len());
            prop_assert!(out[i + 1] & 0x40 == 0 && out[i + 2] & 0x40 == 0);
            i += 3;
            if i < out.len() && out[i] & 0x40 == 0 {
                prop_assert!(out[i] == 0x20 || out[i] == 0);
                i += 1;
            }
        }
    }
}

#[test]
fn a_nul_hides_the_tablets_buffer_until_it_starts_again() {
    let mut t = Tablet::new();
    t.set_speed(9600);
    t.take(usize::MAX);
    t.write(b"x\0\r~#");
    assert!(t.take(usize::MAX).is_empty(), "QEMU's strchr stops at the NUL");
    // 99 bytes later the buffer starts again with the byte that overflowed.
    t.write(&[b'@'; 99 - 5]);
    t.write(b"~#");
    assert_eq!(t.take(usize::MAX), b"~#CT-0045R,V1.3-5,");
}

#[test]
fn mouse_moves_decode_to_the_sum_of_the_events() {
    let mut m = Mouse::default();
    m.set_tiocm(0x004);
    m.take(usize::MAX);
    for (dx, dy) in [(5i64, -3i64), (-60, 20), (100, -100)] {
        m.event(&InputEvent::Rel {
            axis: Axis::X,
            value: dx,
        });
        m.event(&InputEvent::Rel {
            axis: Axis::Y,
            value: dy,
        });
        m.event(&InputEvent::Rel {
            axis: Axis::X,
            value: 1,
        });
        m.sync();
        let p = m.take(usize::MAX);
        assert_eq!(p.len(), 3);
        let x = (((p[0] & 0x03) << 6) | p[1]) as i8;
        let y = (((p[0] & 0x0c) << 4) | p[2]) as i8;
        assert_eq!((x as i64, y as i64), (dx + 1, dy));
    }
}

/// Bytes biased towards the Baum protocol: ESC, its requests, dots.
#[cfg(feature = "braille")]
fn baumish() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => Just(0x1bu8),
        3 => prop::sample::select(vec![0x01u8, 0x05, 0x08, 0x12, 0x15, 0x84, 0x8a, 0x77]),
        4 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..600)
}

#[cfg(feature = "braille")]
fn baum_run(parts: &[Vec<u8>], cells: u32) -> (Vec<Display>, Vec<u8>, u64) {
    let mut b = Baum::new();
    b.set_size(cells, 1);
    let mut shown = Vec::new();
    let mut out = Vec::new();
    for p in parts {
        shown.extend(b.write(p));
        out.extend(b.take(usize::MAX));
    }
    (shown, out, b.dropped())
}

#[cfg(feature = "braille")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn baum_packets_do_not_depend_on_write_boundaries(input in baumish(), cuts in prop::collection::vec(any::<usize>(), 0..10), cells in 0u32..100) {
        let whole = baum_run(std::slice::from_ref(&input), cells);
        let cut_up = baum_run(&cut(&input, &cuts), cells);
        prop_assert_eq!(&cut_up.0, &whole.0);
        // Replies match unless the 256-byte queue overflowed (the whole
        // input in one write answered by more than the frontend could hold).
        if whole.2 == 0 {
            prop_assert_eq!(&cut_up.1, &whole.1);
        }
        // Every display write has the display's width (at most 84 cells),
        // its text is printable, its cursor within it.
        let width = cells.min(84) as usize;
        for d in &whole.0 {
            prop_assert_eq!(d.cells.len(), width);
            prop_assert_eq!(d.text.len(), width);
            prop_assert!(d.text.iter().all(|c| (0x20..0x7f).contains(c)));
            prop_assert!(d.cursor as usize <= width);
        }
        // Replies are whole packets: ESC-led, ESC doubled inside.
        let out = &whole.1;
        prop_assert!(out.is_empty() || out[0] == 0x1b);
    }

    #[test]
    fn baum_keys_always_come_in_press_release_pairs(codes in prop::collection::vec(any::<u64>(), 0..50)) {
        let mut b = Baum::new();
        b.set_size(40, 1);
        let mut out = Vec::new();
        for c in &codes {
            b.key(*c);
            let got = b.take(usize::MAX);
            // Nothing, or a press and a release of the same kind of key.
            if !got.is_empty() {
                prop_assert_eq!(got[0], 0x1b);
                let half = got.len() / 2;
                prop_assert_eq!(got[half], 0x1b);
                prop_assert_eq!(got[1], got[half + 1]);
                prop_assert!(got[half + 2..].iter().all(|b| *b == 0));
            }
            out.extend(got);
        }
    }
}

#[cfg(feature = "braille")]
proptest! {
    #[test]
    fn brlapi_packets_decode_the_same_however_cut(payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8), junk in prop::collection::vec(any::<u8>(), 0..64), cuts in prop::collection::vec(any::<usize>(), 0..8)) {
        use chardevd::internals::brlapi::{encode, Decoder};
        let mut wire: Vec<u8> = payloads.iter().enumerate().flat_map(|(i, p)| encode(b'a' as u32 + i as u32, p)).collect();
        wire.extend(&junk);
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for part in cut(&wire, &cuts) {
            d.feed(&part);
            while let Some(Ok(p)) = d.next_packet() {
                got.push(p);
            }
        }
        // Every packet sent comes out whole and in order (then whatever the
        // junk makes, never a panic).
        prop_assert!(got.len() >= payloads.len());
        for (i, p) in payloads.iter().enumerate() {
            prop_assert_eq!(&got[i].payload, p);
            prop_assert_eq!(got[i].ty, b'a' as u32 + i as u32);
        }
    }
}
