//! QMP input as a session takes it: the framer (QEMU's JSON streamer and
//! parser), the request's shape, its arguments against the schema, then
//! the command built from them (nothing runs). Any bytes, in any chunks.
#![no_main]
use chardevd::internals::json::framer::Framer;
use chardevd::internals::{commands, request, schema};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut framer = Framer::with_max_token_size(64 << 10);
    let mut out = Vec::new();
    // The first byte picks where the input is cut.
    let (cut, rest) = data.split_first().map_or((1, data), |(c, r)| (usize::from(*c) + 1, r));
    for chunk in rest.chunks(cut) {
        framer.feed(chunk, &mut out);
    }
    for message in out {
        let Ok(value) = message else { continue };
        let Ok(req) = request::parse_request(value, true) else {
            continue;
        };
        let device_add = req.name == "device_add";
        if schema::schema().check_args(&req.name, &req.args, device_add).is_ok() {
            let _ = commands::parse_only(&req.name, &req.args);
        }
    }
});
