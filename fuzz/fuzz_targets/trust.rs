//! Trust files and signed envelopes (trust lists, unlock tokens) are read without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_policy::envelope::Envelope;
use warden_policy::trust::{TrustStore, UnlockToken};

fuzz_target!(|data: &[u8]| {
    let _ = TrustStore::from_json(data);
    let _ = Envelope::from_json(data);
    let _ = UnlockToken::from_json(data);
});
