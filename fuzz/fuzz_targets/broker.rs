//! The broker's decoder and decisions never panic: any packet a worker can send either fails to
//! decode (answered `invalid-argument`) or is validated and authorised against a real app's
//! grants on the simulated board, ending in a grant of the asked kind or a denial.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_ipc::broker::{BrokerRequest, Denial};
use warden_policy::hwdef::HwdefSet;
use warden_policy::install::{Device, Grant, resolve};
use warden_policy::manifest::Manifest;

fn device() -> &'static (Vec<Grant>, HwdefSet) {
    static DEVICE: OnceLock<(Vec<Grant>, HwdefSet)> = OnceLock::new();
    DEVICE.get_or_init(|| {
        let board = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../buildroot-overlay/board/warden-sim/board.json"
        );
        let (board, hwdefs) =
            wardend::device::load_board(std::path::Path::new(board)).expect("the sim board");
        let manifest = Manifest::parse(
            "fuzz",
            br#"{"SchemaVersion": 1, "Name": "f", "ComponentId": "6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b",
                 "EntryPoint": "/bin/app.wasm", "ApplicationType": "Default",
                 "Capabilities": {"Gpio": ["$SAMPLE_LED", "$SAMPLE_BUTTON_1"], "Uart": ["$SAMPLE_UART"],
                                  "I2cMaster": ["$SAMPLE_LSM6DS3_I2C"], "Adc": ["$SAMPLE_POTENTIOMETER_ADC_CONTROLLER"]}}"#,
        )
        .expect("the fuzz manifest");
        let grants = resolve(
            "fuzz",
            &manifest,
            &Device {
                hwdefs: &hwdefs,
                board: &board,
                installed: &[],
            },
        )
        .expect("the fuzz manifest resolves")
        .grants;
        (grants, hwdefs)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<BrokerRequest>(data) else {
        return;
    };
    if request.validate().is_err() {
        return;
    }
    let (grants, hwdefs) = device();
    match wardend::broker::authorize(grants, hwdefs, &request.open) {
        Ok(grant) => assert_eq!(grant.capability.name(), request.open.capability()),
        Err(Denial::NotGranted(m) | Denial::UnknownName(m)) => assert!(!m.is_empty()),
        Err(other) => panic!("authorize answered {other:?}"),
    }
});
