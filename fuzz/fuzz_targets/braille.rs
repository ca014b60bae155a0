//! The braille backend's two decoders: Baum packets from the guest (any
//! size of display) and BrlAPI packets from the server.
#![no_main]
use chardevd::internals::braille::Baum;
use chardevd::internals::brlapi::{display_size, key_code, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let half = rest.len() / 2;
    let mut baum = Baum::new();
    baum.set_size(u32::from(size & 0x7f), u32::from(size >> 7) + 1);
    for chunk in rest[..half].chunks(usize::from(size % 17) + 1) {
        let _ = baum.write(chunk);
        let n = baum.cells();
        let _ = baum.take(n);
    }
    let mut d = Decoder::default();
    d.feed(&rest[half..]);
    while let Some(p) = d.next_packet() {
        let Ok(p) = p else { break };
        let _ = display_size(&p.payload);
        let _ = key_code(&p.payload);
    }
});
