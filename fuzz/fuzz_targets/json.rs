//! The position-keeping JSON reader never panics, and whatever it accepts `serde_json` accepts
//! too (it may refuse more: duplicate keys, depth), except numbers beyond `f64`'s range, which
//! it keeps as text and `serde_json` refuses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_policy::json::{Limits, parse};

fuzz_target!(|data: &[u8]| {
    if parse(data, Limits::default()).is_ok() {
        let text = std::str::from_utf8(data).expect("accepted input is UTF-8");
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
            assert!(
                e.to_string().contains("number out of range"),
                "accepted a document serde_json refuses: {e}"
            );
        }
    }
});
