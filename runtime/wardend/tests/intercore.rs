//! Inter-core channels end to end: the real firmware samples (`sample-apps/rt-echo-c`,
//! `sample-apps/rt-echo-rust`) run on the simulated board's emulated Cortex-M4 (`rt0`, QEMU
//! `mps2-an386`) under `wardend`; a real guest component (`sample-apps/device-probe`) in a
//! confined worker opens a channel to them through the broker and the supervisor's bridge, and
//! the tests assert what comes back — and what is refused: a channel not declared on both
//! sides, to an app that is not a real-time app, to one that does not run. Needs root.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::daemon::{Daemon, require_root};
use common::guest::{self, stdout, wait_line};
use common::rtcore::{RtFixture, firmware_samples, pack_rt_as, rt_fixture, sample_manifest};
use common::{Fixture, pack_code};

/// The A7 app both firmware samples list in their `AllowedApplicationConnections`.
const PROBE: &str = "7c0d1e2f-3a4b-4c5d-8e6f-708192a3b4c5";

/// Installs (and starts) the probe as `version` with `capabilities` running `steps`.
fn probe(d: &Daemon, f: &Fixture, version: u64, capabilities: &str, steps: &[&str]) {
    let manifest = guest::manifest(PROBE, capabilities, steps);
    let (status, body) = d.call(
        "POST",
        "/images",
        &pack_code(f, &manifest, version, guest::device_probe(), None),
    );
    assert_eq!(status, 201, "{body}");
}

/// Installs a firmware sample and waits for it to run; its component id.
fn install_sample(d: &Daemon, rt: &RtFixture, sample: &str, elf: &std::path::Path) -> String {
    let (text, id, entry) = sample_manifest(sample);
    let package = pack_rt_as(&rt.rt_key, &text, 1, &std::fs::read(elf).unwrap(), &entry);
    let (status, body) = d.call("POST", "/images", &package);
    assert_eq!(status, 201, "{sample}: {body}");
    d.wait_for(&format!("{sample} to run"), |d| {
        guest::state(d, &id) == "running"
    });
    id
}

fn uninstall(d: &Daemon, id: &str) {
    let (status, body) = d.call("DELETE", &format!("/apps/{id}?storage=wipe"), b"");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn an_app_talks_to_each_firmware_sample_through_its_channel() {
    require_root("the supervisor, and QEMU in new namespaces");
    let rt = rt_fixture();
    let d = Daemon::start(&rt.f);
    let longest = "x".repeat(496);
    for (version, (sample, elf)) in (1..).zip(firmware_samples()) {
        let id = install_sample(&d, &rt, sample, &elf);
        let send_longest = format!("intercore-send {id} {longest}");
        probe(
            &d,
            &rt.f,
            version,
            &format!(r#"{{"AllowedApplicationConnections": ["{id}"]}}"#),
            &[
                &format!("intercore-max {id}"),
                &format!("intercore-send {id} hello from the A7"),
                &format!("intercore-recv {id} 10000"),
                &send_longest,
                &format!("intercore-recv {id} 10000"),
                &format!("intercore-send {id} {}", "y".repeat(497)),
                &format!("intercore-recv {id} 200"),
            ],
        );
        let lines = guest::wait_exit(&d, PROBE);
        assert_eq!(
            lines,
            [
                "intercore-max ok 496".to_owned(),
                "intercore-send ok".to_owned(),
                "intercore-recv ok \"hello from the A7\"".to_owned(),
                "intercore-send ok".to_owned(),
                format!("intercore-recv ok \"{longest}\""),
                lines[5].clone(),
                "intercore-recv ok timeout".to_owned(),
            ],
            "{sample}"
        );
        assert!(
            lines[5].starts_with("intercore-send error invalid-argument"),
            "{sample}: {lines:?}"
        );
        uninstall(&d, PROBE);
        uninstall(&d, &id);
    }
    d.kill();
}

#[test]
fn a_flood_from_the_firmware_leaves_the_supervisor_answering() {
    require_root("the supervisor, and QEMU in new namespaces");
    let rt = rt_fixture();
    let d = Daemon::start(&rt.f);
    let [(sample, elf), _] = firmware_samples();
    let id = install_sample(&d, &rt, sample, &elf);
    // The app asks for 10,000 messages, reads three, then sleeps without reading.
    probe(
        &d,
        &rt.f,
        1,
        &format!(r#"{{"AllowedApplicationConnections": ["{id}"]}}"#),
        &[
            &format!("intercore-send {id} flood:10000"),
            &format!("intercore-recv {id} 10000"),
            &format!("intercore-recv {id} 10000"),
            &format!("intercore-recv {id} 10000"),
            "sleep 60000",
        ],
    );
    assert_eq!(wait_line(&d, PROBE, "intercore-send"), "intercore-send ok");
    // While the firmware floods, every control request is answered promptly.
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(2) {
        let asked = Instant::now();
        let (status, _) = d.call("GET", "/status", b"");
        assert_eq!(status, 200);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "GET /status took {:?} during the flood",
            asked.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    d.wait_for("three messages", |d| {
        stdout(d, PROBE)
            .iter()
            .filter(|l| l.starts_with("intercore-recv"))
            .count()
            == 3
    });
    let received: Vec<String> = stdout(&d, PROBE)
        .into_iter()
        .filter(|l| l.starts_with("intercore-recv"))
        .collect();
    assert_eq!(
        received,
        [
            "intercore-recv ok \"n:0\"",
            "intercore-recv ok \"n:1\"",
            "intercore-recv ok \"n:2\""
        ]
    );
    // The real-time app and the supervisor are fine; the app still runs.
    assert_eq!(guest::state(&d, &id), "running");
    assert_eq!(guest::state(&d, PROBE), "running");
    d.kill();
}

#[test]
fn a_channel_not_declared_on_both_sides_or_to_no_running_real_time_app_is_refused() {
    require_root("the supervisor, and QEMU in new namespaces");
    let rt = rt_fixture();
    let d = Daemon::start(&rt.f);
    let [(sample, elf), _] = firmware_samples();
    let (_, id, _) = sample_manifest(sample);

    // Not in this app's manifest: refused in the broker (the app has one, for its power right).
    probe(
        &d,
        &rt.f,
        1,
        r#"{"PowerControls": ["SetPowerProfile"]}"#,
        &[&format!("intercore-send {id} hi")],
    );
    let lines = guest::wait_exit(&d, PROBE);
    assert!(
        lines[0].starts_with("intercore-send error not-granted")
            && lines[0].contains("AllowedApplicationConnections"),
        "{lines:?}"
    );
    uninstall(&d, PROBE);
    let id = install_sample(&d, &rt, sample, &elf);
    // The firmware lists the probe; a probe that does not list it back is refused at install.
    let manifest = guest::manifest(PROBE, "{}", &["sleep 1"]);
    let (status, body) = d.call(
        "POST",
        "/images",
        &pack_code(&rt.f, &manifest, 2, guest::device_probe(), None),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("both sides must list each other"),
        "{body}"
    );

    // This app lists a component the firmware sample does not list back: refused at install
    // when that component is installed and does not list it...
    let other = "1d7c804f-ae32-4b5c-9011-6f1c3e8d2b22";
    let manifest = guest::manifest(
        other,
        &format!(r#"{{"AllowedApplicationConnections": ["{id}"]}}"#),
        &["sleep 1"],
    );
    let (status, body) = d.call(
        "POST",
        "/images",
        &pack_code(&rt.f, &manifest, 1, guest::device_probe(), None),
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("does not list this app"),
        "{body}"
    );

    // ...and a listed peer that is not a real-time app, or one that is stopped, at open.
    let a7_peer = "2e8d9150-bf43-4c6d-a122-7a2d4f9e3c33";
    let manifest = guest::manifest(
        a7_peer,
        &format!(r#"{{"AllowedApplicationConnections": ["{PROBE}"]}}"#),
        &["sleep 60000"],
    );
    let (status, body) = d.call(
        "POST",
        "/images",
        &pack_code(&rt.f, &manifest, 1, guest::device_probe(), None),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = d.call("POST", &format!("/apps/{id}/stop"), b"");
    assert_eq!(status, 200, "{body}");
    probe(
        &d,
        &rt.f,
        3,
        &format!(r#"{{"AllowedApplicationConnections": ["{id}", "{a7_peer}"]}}"#),
        &[
            &format!("intercore-send {a7_peer} hi"),
            &format!("intercore-send {id} hi"),
        ],
    );
    let lines = guest::wait_exit(&d, PROBE);
    assert!(
        lines[0].starts_with("intercore-send error not-granted")
            && lines[0].contains("not a real-time app"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("intercore-send error io") && lines[1].contains("not running"),
        "{lines:?}"
    );
    d.kill();
}
