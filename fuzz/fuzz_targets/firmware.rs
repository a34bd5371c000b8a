//! The real-time firmware check never panics: any bytes are either refused with an error or
//! accepted as an ARM executable whose every loaded segment lies in the core's memory and
//! whose resource table was read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_policy::board::MemoryRegion;
use warden_policy::firmware::check;

fuzz_target!(|data: &[u8]| {
    let regions = [
        MemoryRegion {
            name: "FLASH".into(),
            origin: 0,
            size: 4 << 20,
        },
        MemoryRegion {
            name: "SRAM".into(),
            origin: 0x2000_0000,
            size: 64 * 1024,
        },
    ];
    match check(data, "m4", &regions) {
        Ok(firmware) => {
            assert!(!firmware.segments.is_empty());
            for s in &firmware.segments {
                assert!(
                    regions.iter().any(|r| r.contains(s.address, s.size)),
                    "{s:?} accepted outside the memory"
                );
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
