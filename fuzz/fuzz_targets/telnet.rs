//! The telnet (and tn3270) input filter, fed any bytes in any chunks.
#![no_main]
use chardevd::internals::telnet::{Filter, Piece};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else { return };
    let mut f = Filter::new(mode & 1 == 1);
    let cut = usize::from(mode >> 1) + 1;
    let mut out: Vec<Piece> = Vec::new();
    for chunk in rest.chunks(cut) {
        f.feed(chunk, &mut out);
    }
});
