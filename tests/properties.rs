//! Property tests over the pure cores with arbitrary (hostile) input: no
//! panics, bounded work, and the invariants the rest of the system relies on.
use chardevd::internals::json::framer::Framer;
use chardevd::internals::json::{qemu_lossy_utf8, Json};
use chardevd::internals::request::parse_request;
use chardevd::internals::ring::Ring;
use chardevd::internals::ringbuf::qemu_base64_decode;
use chardevd::internals::schema::schema;
use proptest::prelude::*;

/// Bytes biased towards JSON syntax, so the parser's deep paths get exercised.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let atoms = prop_oneof![
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b":".to_vec()),
        Just(b",".to_vec()),
        Just(b"\"execute\"".to_vec()),
        Just(b"\"arguments\"".to_vec()),
        Just(b"\"id\"".to_vec()),
        Just(b"'x\\''".to_vec()),
        Just(b"\"\\u00e9\\ud83d\\ude00\"".to_vec()),
        Just(b"\"\\ud800\"".to_vec()),
        Just(b"true".to_vec()),
        Just(b"null".to_vec()),
        Just(b"-0".to_vec()),
        Just(b"1.5e3".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        Just(b" ".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..4),
    ];
    proptest::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_framer_never_panics_and_its_output_always_serializes(input in jsonish(), cut in 0usize..64) {
        let mut f = Framer::with_max_token_size(4096);
        let mut out = Vec::new();
        let cut = cut.min(input.len());
        f.feed(&input[..cut], &mut out);
        f.feed(&input[cut..], &mut out);
        for m in out {
            match m {
                Ok(v) => {
                    let text = v.to_qemu_string();
                    prop_assert!(text.is_ascii(), "output is ASCII only");
                    // A value goes through request checks and, if shaped
                    // like a request, through the schema, without panicking.
                    if let Ok(req) = parse_request(v, true) {
                        if schema().has_command(&req.name) {
                            let _ = schema().check_args(&req.name, &req.args, req.name == "device_add");
                        }
                    }
                }
                Err(desc) => prop_assert!(!desc.is_empty()),
            }
        }
    }

    #[test]
    fn written_text_is_a_fixed_point_of_parse_and_write(input in jsonish()) {
        let mut out = Vec::new();
        Framer::new().feed(&input, &mut out);
        for v in out.into_iter().flatten() {
            // Doubles may not survive %.17g text exactly as NaN/inf, skip those.
            let text = v.to_qemu_string();
            if text.contains("inf") || text.contains("nan") {
                continue;
            }
            let mut again = Vec::new();
            Framer::new().feed(format!("{text} ").as_bytes(), &mut again);
            prop_assert_eq!(again.len(), 1);
            // Text is a fixed point (1500.0 prints as 1500 and comes back an integer, as in QEMU).
            prop_assert_eq!(again.remove(0).expect("re-parse").to_qemu_string(), text);
        }
    }

    #[test]
    fn ring_reads_return_exactly_what_was_kept(ops in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..50), 0usize..40), 0..40), shift in 0u32..7) {
        let size = 1usize << shift;
        let mut ring = Ring::new(size);
        let mut model: std::collections::VecDeque<u8> = Default::default();
        for (write, data, n) in ops {
            if write {
                ring.write(&data);
                model.extend(data);
                while model.len() > size {
                    model.pop_front();
                }
            } else {
                let got = ring.read(n);
                let want: Vec<u8> = model.drain(..n.min(model.len())).collect();
                prop_assert_eq!(got, want);
            }
            prop_assert!(ring.len() <= size);
        }
    }

    #[test]
    fn utf8_ring_reads_always_progress_and_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), n in 1usize..16) {
        let mut ring = Ring::new(256);
        ring.write(&data);
        let mut text = String::new();
        let mut rounds = 0;
        while !ring.is_empty() {
            let before = ring.len();
            text.push_str(&ring.read_utf8(n));
            prop_assert!(ring.len() < before, "every read takes something");
            rounds += 1;
            prop_assert!(rounds <= data.len());
        }
        // Whole data read in pieces decodes as QEMU decodes it in one go,
        // except that NUL stays NUL (QEMU's C string would stop there).
        prop_assert_eq!(text, qemu_lossy_utf8(&data));
    }

    #[test]
    fn base64_decoding_never_panics(s in "[A-Za-z0-9+/=\n ]{0,64}") {
        let _ = qemu_base64_decode(&s);
    }

    #[test]
    fn option_strings_never_panic(s in "[a-z=,:/0-9KMG.]{0,40}") {
        let _ = chardevd::internals::config::parse_chardev(&s);
        let _ = chardevd::internals::config::parse_qmp(&s);
        let _ = chardevd::internals::config::parse_device(&s);
    }
}

#[test]
fn a_wide_object_costs_linear_work() {
    // 200k members: a quadratic duplicate check would take minutes.
    let mut s = String::from("{");
    for i in 0..200_000 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"k{i}\":{i}"));
    }
    s.push('}');
    let mut out = Vec::new();
    Framer::new().feed(s.as_bytes(), &mut out);
    assert!(matches!(&out[0], Ok(Json::Object(m)) if m.len() == 200_000));
}
