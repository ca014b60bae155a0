//! The vc's terminal model, any size (1x1 and up), fed any bytes in any
//! chunks, its screen read after each.
#![no_main]
use chardevd::internals::vc::Terminal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [cols, rows, cut, rest @ ..] = data else { return };
    let mut t = Terminal::new(u16::from(*cols), u16::from(*rows));
    for chunk in rest.chunks(usize::from(*cut) + 1) {
        t.draw(chunk);
        let _ = t.screen();
    }
});
