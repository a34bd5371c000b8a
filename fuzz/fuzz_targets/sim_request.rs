//! The simulated board's request decoder and bounds check never panic, and what they accept is
//! within the documented bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_ipc::sim::{BusOp, MAX_OPS, MAX_TRANSFER, SimRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<SimRequest>(data) else {
        return;
    };
    if request.validate().is_err() {
        return;
    }
    if let SimRequest::I2c { ops, .. } | SimRequest::Spi { ops } = &request {
        assert!(!ops.is_empty() && ops.len() <= MAX_OPS);
        for op in ops {
            if let BusOp::Write(b) | BusOp::Transfer(b) = op {
                assert!(b.len() <= MAX_TRANSFER);
            }
        }
    }
});
