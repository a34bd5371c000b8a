//! The manifest reader never panics; every refusal carries at least one error, and every
//! accepted manifest has a usable entry payload name.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_policy::manifest::Manifest;

fuzz_target!(|data: &[u8]| {
    match Manifest::parse("fuzz", data) {
        Ok(m) => assert!(!m.entry_payload_name().is_empty()),
        Err(e) => assert!(e.report.has_errors(), "refused without an error: {e}"),
    }
});
