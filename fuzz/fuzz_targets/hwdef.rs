//! The hardware-definition reader never panics, every refusal carries an error, and a set built
//! from the input (importing the simulated board's definitions) loads or is refused cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_policy::hwdef::{HardwareDefinition, HwdefSet, MemorySource, SetLimits};

const CHIP: &[u8] = include_bytes!(
    "../../buildroot-overlay/board/warden-sim/hardware-definitions/warden_sim_chip.json"
);

fuzz_target!(|data: &[u8]| {
    if let Err(e) = HardwareDefinition::parse("fuzz.json", data) {
        assert!(
            e.reports.iter().any(|r| r.has_errors()),
            "refused without an error"
        );
        return;
    }
    let source = MemorySource::new()
        .with("fuzz.json", data)
        .with("warden_sim_chip.json", CHIP);
    let _ = HwdefSet::load(&source, None, &["fuzz.json"], SetLimits::default());
});
