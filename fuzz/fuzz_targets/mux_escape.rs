//! A mux's escape machine (`C-a` and its commands), any bytes.
#![no_main]
use chardevd::internals::mux::Escape;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((esc, rest)) = data.split_first() else { return };
    let mut e = Escape::new(*esc);
    let mut out = Vec::new();
    e.feed(rest, &mut out);
    for &b in rest.iter().take(64) {
        let _ = e.step(b);
    }
});
