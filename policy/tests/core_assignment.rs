//! Which real-time core a real-time app runs on (`install::assign_core`): one app per core,
//! the core its peripherals are wired to, an update's own core, the first free one in board
//! order; refusals name the cores and their holders.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use warden_policy::board::Board;
use warden_policy::hwdef::{HwdefSet, MemorySource, SetLimits};
use warden_policy::ids::ComponentId;
use warden_policy::install::{self, CoreAssignmentError, CoreHolder, Device, ResolvedApp};
use warden_policy::manifest::Manifest;

const SIM: &str = "buildroot-overlay/board/warden-sim";
const APP: &str = "11111111-2222-4333-8444-555555555555";
const OTHER: &str = "66666666-7777-4888-8999-aaaaaaaaaaaa";
const THIRD: &str = "bbbbbbbb-cccc-4ddd-8eee-ffffffffffff";

/// The simulated board with three cores, `rt0`, `rt1`, `rt2` (all emulated), and its external
/// interrupts wired: EINT0 to `rt0`, EINT1 to `rt1`, EINT2 to any core (`{}`).
fn three_cores() -> (Board, HwdefSet) {
    sim_with(|text| {
        let memory = r#""Memory": [{"Name": "SSRAM1", "Origin": "0x00000000", "SizeKB": 4096}]"#;
        let cores = ["rt0", "rt1", "rt2"]
            .map(|n| {
                format!(r#"{{"Name": "{n}", "Emulated": {{"Machine": "mps2-an386"}}, {memory}}}"#)
            })
            .join(", ");
        let start = text.find(r#""RealTimeCores""#).unwrap();
        let end = start + text[start..].find(r#""Resources""#).unwrap();
        let text = format!(
            "{}\"RealTimeCores\": [{cores}],\n  {}",
            &text[..start],
            &text[end..]
        );
        text.replace(
            r#"{"Peripheral": "SIM_EINT1", "RealTimeCoreOnly": {"Core": "rt0"}}"#,
            r#"{"Peripheral": "SIM_EINT1", "RealTimeCoreOnly": {"Core": "rt1"}}"#,
        )
        .replace(
            r#"{"Peripheral": "SIM_EINT2", "RealTimeCoreOnly": {"Core": "rt0"}}"#,
            r#"{"Peripheral": "SIM_EINT2", "RealTimeCoreOnly": {}}"#,
        )
    })
}

fn sim_with(edit: impl Fn(String) -> String) -> (Board, HwdefSet) {
    let mut src = MemorySource::new();
    for rel in [
        "board.json",
        "hardware-definitions/warden_sim_chip.json",
        "hardware-definitions/warden_sim.json",
        "hardware-definitions/sample_appliance.json",
    ] {
        let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", SIM, rel]
            .iter()
            .collect();
        let mut text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if rel == "board.json" {
            text = edit(text);
        }
        src.insert(&format!("{SIM}/{rel}"), text);
    }
    Board::load(&src, &format!("{SIM}/board.json"), SetLimits::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A real-time app `APP` with these capabilities, resolved on `device`.
fn rt_app(device: &(Board, HwdefSet), caps: &str) -> ResolvedApp {
    let text = format!(
        r#"{{"SchemaVersion": 1, "Name": "fw", "ComponentId": "{APP}", "EntryPoint": "/bin/fw.elf",
            "Capabilities": {{{caps}}}, "ApplicationType": "RealTimeCapable"}}"#
    );
    let manifest = Manifest::parse("app_manifest.json", text.as_bytes()).unwrap();
    install::resolve(
        "app_manifest.json",
        &manifest,
        &Device {
            hwdefs: &device.1,
            board: &device.0,
            installed: &[],
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn holder(core: &str, app: &str, name: &str) -> CoreHolder {
    CoreHolder {
        core: core.into(),
        app: app.parse::<ComponentId>().unwrap(),
        name: name.into(),
    }
}

#[test]
fn an_app_without_wired_peripherals_gets_the_first_free_core_in_board_order() {
    let device = three_cores();
    let app = rt_app(&device, r#""Gpio": [8]"#);
    assert_eq!(install::assign_core(&device.0, &app, &[]).unwrap(), "rt0");
    assert_eq!(
        install::assign_core(&device.0, &app, &[holder("rt0", OTHER, "other")]).unwrap(),
        "rt1"
    );
    assert_eq!(
        install::assign_core(
            &device.0,
            &app,
            &[holder("rt1", THIRD, "third"), holder("rt0", OTHER, "other")]
        )
        .unwrap(),
        "rt2"
    );
    // A peripheral wired to the real-time cores without naming one does not pin the app.
    let any = rt_app(&device, r#""ExternalInterrupt": ["EINT2"]"#);
    assert_eq!(
        install::assign_core(&device.0, &any, &[holder("rt0", OTHER, "other")]).unwrap(),
        "rt1"
    );
}

#[test]
fn a_peripheral_wired_to_one_core_puts_the_app_on_that_core_or_refuses_it() {
    let device = three_cores();
    let app = rt_app(&device, r#""ExternalInterrupt": ["EINT1"], "Gpio": [8]"#);
    assert_eq!(install::assign_core(&device.0, &app, &[]).unwrap(), "rt1");
    // Its own current core does not matter: the wiring does.
    assert_eq!(
        install::assign_core(&device.0, &app, &[holder("rt2", APP, "fw")]).unwrap(),
        "rt1"
    );
    let taken =
        install::assign_core(&device.0, &app, &[holder("rt1", OTHER, "other")]).unwrap_err();
    assert_eq!(
        taken,
        CoreAssignmentError::Taken {
            peripheral: "SIM_EINT1".into(),
            core: "rt1".into(),
            holder: "other".into(),
            holder_id: OTHER.parse().unwrap(),
        }
    );
    assert_eq!(
        taken.to_string(),
        format!(
            "`SIM_EINT1` is wired to real-time core `rt1` only, and `rt1` runs real-time app \
             `other` ({OTHER}); a core runs one real-time app"
        )
    );
    let split = rt_app(&device, r#""ExternalInterrupt": ["EINT0", "EINT1"]"#);
    let e = install::assign_core(&device.0, &split, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the app claims peripherals wired to different real-time cores (`SIM_EINT0` on `rt0`, \
         `SIM_EINT1` on `rt1`); a real-time app runs on one core"
    );
}

#[test]
fn an_update_keeps_its_core() {
    let device = three_cores();
    let app = rt_app(&device, r#""Gpio": [8]"#);
    assert_eq!(
        install::assign_core(
            &device.0,
            &app,
            &[holder("rt2", APP, "fw"), holder("rt0", OTHER, "other")]
        )
        .unwrap(),
        "rt2",
        "not the free rt1"
    );
}

#[test]
fn no_free_core_is_refused_naming_every_core_and_its_holder() {
    let device = three_cores();
    let app = rt_app(&device, r#""Gpio": [8]"#);
    let e = install::assign_core(
        &device.0,
        &app,
        &[
            holder("rt2", THIRD, "third"),
            holder("rt0", OTHER, "other"),
            holder("rt1", OTHER, "other"),
        ],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "every real-time core is taken: `rt0` by app `other` ({OTHER}), `rt1` by app \
             `other` ({OTHER}), `rt2` by app `third` ({THIRD}); a core runs one real-time app"
        )
    );
    // The simulated board's one core, held.
    let sim = sim_with(|t| t);
    let app = rt_app(&sim, r#""Gpio": [8]"#);
    assert!(matches!(
        install::assign_core(&sim.0, &app, &[holder("rt0", OTHER, "other")]),
        Err(CoreAssignmentError::AllTaken { holders }) if holders.contains("`rt0` by app `other`")
    ));
}

#[test]
fn a_board_without_cores_assigns_none() {
    let with = sim_with(|t| t);
    let app = rt_app(&with, r#""Gpio": [8]"#);
    let without = sim_with(|text| {
        let start = text.find(r#""RealTimeCores""#).unwrap();
        let end = start + text[start..].find(r#""Resources""#).unwrap();
        format!("{}{}", &text[..start], &text[end..]).replace(
            r#""RealTimeCoreOnly": {"Core": "rt0"}"#,
            r#""RealTimeCoreOnly": {}"#,
        )
    });
    assert_eq!(
        install::assign_core(&without.0, &app, &[]).unwrap_err(),
        CoreAssignmentError::NoCores {
            board: "warden-sim".into()
        }
    );
}
