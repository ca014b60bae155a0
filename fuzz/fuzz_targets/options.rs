//! The command line's option parser: `-chardev`, `-object`, `-device`,
//! `-qmp`, `-mon` (QEMU's `key=value,...` syntax with its escapes, then
//! each option's own checks and the backend built from them).
#![no_main]
use chardevd::internals::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, text)) = data.split_first() else {
        return;
    };
    let s = String::from_utf8_lossy(text);
    match which % 6 {
        0 => drop(config::parse_chardev(&s)),
        1 => drop(config::parse_object(&s)),
        2 => drop(config::parse_device(&s)),
        3 => drop(config::parse_qmp(&s)),
        4 => drop(config::parse_mon(&s)),
        _ => drop(config::parse_qmp_target(&s, 0)),
    }
});
