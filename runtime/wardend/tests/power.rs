//! `power` end to end: a real guest component (`sample-apps/device-probe`) in a confined worker
//! under `wardend` on the simulated board asks to reboot, power down and change the power
//! profile through the broker; the tests assert what the board's power rail did (`/sim/power`)
//! and what it did to the whole fleet (every app stopped and started again, with new workers),
//! and what an app without the right `PowerControls` value was refused. Needs root.
#![allow(clippy::unwrap_used)]

mod common;

use common::daemon::{Daemon, require_root};
use common::guest::{self, stdout, wait_line};
use common::{Fixture, fixture};

const PROBE: &str = "0b7e6a52-3c1d-4e8f-9a2b-6c5d4e3f2a10";
const BYSTANDER: &str = "7f1e2d3c-4b5a-4968-8776-655443322110";

fn start(d: &Daemon, f: &Fixture, id: &str, capabilities: &str, steps: &[&str]) {
    guest::start(d, f, guest::device_probe(), id, capabilities, steps);
}

fn power(d: &Daemon) -> serde_json::Value {
    let (status, body) = d.call("GET", "/sim/power", b"");
    assert_eq!(status, 200, "{body}");
    body
}

/// The pid of the app's running worker, once it runs.
fn running_pid(d: &Daemon, id: &str) -> u64 {
    let mut pid = 0;
    d.wait_for(&format!("{id} to run"), |d| {
        let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
        pid = app["status"]["pid"].as_u64().unwrap_or(0);
        app["status"]["state"] == "running" && pid != 0
    });
    pid
}

/// An app that asks for `action` when the board's button is pressed, and a bystander that
/// only sleeps; both running, the button idle.
fn fleet(d: &Daemon, f: &Fixture, control: &str, action: &str) -> (u64, u64) {
    start(
        d,
        f,
        PROBE,
        &format!(r#"{{"Gpio": ["$SAMPLE_BUTTON_1"], "PowerControls": ["{control}"]}}"#),
        &[
            "gpio-in SAMPLE_BUTTON_1",
            "gpio-wait SAMPLE_BUTTON_1 falling 60000",
            action,
            "sleep 60000",
        ],
    );
    start(d, f, BYSTANDER, "{}", &["sleep 60000"]);
    let pids = (running_pid(d, PROBE), running_pid(d, BYSTANDER));
    assert_eq!(wait_line(d, PROBE, "gpio-in"), "gpio-in ok high");
    // The edge wait begins right after the first step's line.
    std::thread::sleep(std::time::Duration::from_millis(300));
    pids
}

fn press(d: &Daemon) {
    let (status, body) = d.call("POST", "/sim/gpio/SAMPLE_BUTTON_1?level=low", b"");
    assert_eq!(status, 200, "{body}");
    let (status, body) = d.call("POST", "/sim/gpio/SAMPLE_BUTTON_1?level=high", b"");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_reboot_restarts_every_app_on_the_simulated_board() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    let (probe_pid, bystander_pid) = fleet(&d, &f, "ForceReboot", "power-reboot");
    assert_eq!(power(&d)["reboots"], 0);
    press(&d);
    // The app sees its call succeed before the board goes down.
    assert_eq!(wait_line(&d, PROBE, "power-reboot"), "power-reboot ok");
    d.wait_for("the reboot", |d| power(d)["reboots"] == 1);
    let view = power(&d);
    assert_eq!(view["state"], "on", "{view}");
    assert_eq!(view["requests"][0]["app"], PROBE, "{view}");
    assert_eq!(view["requests"][0]["action"]["action"], "reboot", "{view}");
    // Both apps run again, each in a new worker: the rebooting app waits for the button anew.
    let after = (running_pid(&d, PROBE), running_pid(&d, BYSTANDER));
    assert_ne!(after.0, probe_pid);
    assert_ne!(after.1, bystander_pid);
    d.wait_for("the probe's second run", |d| {
        stdout(d, PROBE)
            .iter()
            .filter(|l| *l == "gpio-in ok high")
            .count()
            == 2
    });
    assert_eq!(power(&d)["reboots"], 1, "no second reboot without a press");
    d.kill();
}

#[test]
fn a_power_down_stops_the_fleet_until_the_board_wakes() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    let (_, bystander_pid) = fleet(&d, &f, "ForcePowerDown", "power-down 3600");
    press(&d);
    assert_eq!(wait_line(&d, PROBE, "power-down"), "power-down ok");
    d.wait_for("the board to power down", |d| power(d)["state"] == "off");
    let off = power(&d);
    let wakes_in = off["wakes_in_s"].as_u64().unwrap();
    assert!((3500..=3600).contains(&wakes_in), "{off}");
    d.wait_for("every app to stop", |d| {
        guest::state(d, PROBE) == "stopped" && guest::state(d, BYSTANDER) == "stopped"
    });
    // The power button wakes it before the alarm; the fleet boots.
    let (status, body) = d.call("POST", "/sim/power/wake", b"");
    assert_eq!(status, 200, "{body}");
    d.wait_for("the board to boot", |d| power(d)["state"] == "on");
    assert_eq!(power(&d)["power_downs"], 1);
    assert_ne!(running_pid(&d, BYSTANDER), bystander_pid);
    running_pid(&d, PROBE);
    let (status, body) = d.call("POST", "/sim/power/wake", b"");
    assert_eq!(status, 409, "waking a board that is on: {body}");
    d.kill();
}

#[test]
fn each_power_action_needs_its_own_control_and_the_profile_is_recorded() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    start(
        &d,
        &f,
        PROBE,
        r#"{"PowerControls": ["SetPowerProfile"]}"#,
        &[
            "power-reboot",
            "power-down 60",
            "power-down 0",
            "power-profile high-performance",
            "power-profile power-saver",
        ],
    );
    let lines = guest::wait_exit(&d, PROBE);
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(
        lines[0].starts_with("power-reboot error not-granted") && lines[0].contains("ForceReboot"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("power-down error not-granted") && lines[1].contains("ForcePowerDown"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("power-down error invalid-argument"),
        "{lines:?}"
    );
    assert_eq!(lines[3], "power-profile ok");
    assert_eq!(lines[4], "power-profile ok");
    let view = power(&d);
    assert_eq!(view["profile"], "power_saver", "{view}");
    assert_eq!(view["requests"].as_array().unwrap().len(), 2, "{view}");
    assert_eq!(
        (view["reboots"].as_u64(), view["state"].as_str()),
        (Some(0), Some("on"))
    );

    // No PowerControls at all: every call is refused in the app, nothing reaches the board.
    start(
        &d,
        &f,
        BYSTANDER,
        "{}",
        &["power-reboot", "power-profile balanced"],
    );
    let lines = guest::wait_exit(&d, BYSTANDER);
    assert!(
        lines.iter().all(|l| l.contains("error not-granted")),
        "{lines:?}"
    );
    assert_eq!(power(&d)["requests"].as_array().unwrap().len(), 2);
    d.kill();
}
