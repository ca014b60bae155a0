//! A client certificate's subject, read from DER as tls-authz reads it.
#![no_main]
use chardevd::internals::dn::subject_dn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = subject_dn(data);
});
