#![allow(clippy::unwrap_used)]
//! The blinky sample in two languages under one manifest (`sample-apps/blinky/app_manifest.json`,
//! unchanged): the Rust build (`sample-apps/blinky`) and the Python build
//! (`sample-apps/blinky-py`) each run under a real `wardend` on the simulated board. Both blink
//! the LED, move to the next rate on each press of the button, and log the same lines; without
//! the Gpio capability both fail the same way. Needs root, like the supervisor itself.

mod common;

use std::time::{Duration, Instant};

use common::daemon::{Daemon, require_root};
use common::samples::{component_id, manifest, pack, wasm};
use common::{Fixture, fixture};

/// The two builds of the app: (sample directory, language).
const BUILDS: [(&str, &str); 2] = [("blinky", "Rust"), ("blinky-py", "Python")];

/// What the app logs when it starts.
const STARTED: &str =
    "[info] blinky: blinking SAMPLE_LED every 500 ms; press SAMPLE_BUTTON_1 to change the rate";

/// Installs (and so starts) `code` under `manifest`; the app's id.
fn install(d: &Daemon, f: &Fixture, manifest: &str, code: &[u8], what: &str) -> String {
    let started = Instant::now();
    let (status, body) = d.call("POST", "/images", &pack(f, manifest, 1, code));
    assert_eq!(status, 201, "installing {what}: {body}");
    eprintln!(
        "{what}: installed (and compiled) in {:?}",
        started.elapsed()
    );
    component_id(manifest)
}

/// The lines the app itself wrote (stdout and stderr), without the supervisor's.
fn app_lines(d: &Daemon, id: &str) -> Vec<String> {
    let (_, body) = d.call("GET", &format!("/apps/{id}/logs"), b"");
    body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["stream"] != "supervisor")
        .map(|l| l["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Every log line, the supervisor's included, for failure messages.
fn all_lines(d: &Daemon, id: &str) -> String {
    let (_, body) = d.call("GET", &format!("/apps/{id}/logs"), b"");
    body["lines"].to_string()
}

fn wait_app_line(d: &Daemon, id: &str, line: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !app_lines(d, id).iter().any(|l| l == line) {
        assert!(
            Instant::now() < deadline,
            "{what}: no line {line:?} in the log: {}",
            all_lines(d, id)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn led_level(d: &Daemon) -> String {
    let (status, body) = d.call("GET", "/sim/gpio/SAMPLE_LED", b"");
    assert_eq!(status, 200, "{body}");
    body["level"].as_str().unwrap().to_owned()
}

/// Samples the LED until it has been seen both high and low.
fn see_blinking(d: &Daemon, id: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut high, mut low) = (false, false);
    while !(high && low) {
        assert!(
            Instant::now() < deadline,
            "{what}: SAMPLE_LED not seen both high ({high}) and low ({low}): {}",
            all_lines(d, id)
        );
        match led_level(d).as_str() {
            "high" => high = true,
            "low" => low = true,
            other => panic!("level {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A press of SAMPLE_BUTTON_1: pressed (low), then released (high), as a finger does.
fn press(d: &Daemon) {
    for level in ["low", "high"] {
        let (status, body) = d.call(
            "POST",
            &format!("/sim/gpio/SAMPLE_BUTTON_1?level={level}"),
            b"",
        );
        assert_eq!(status, 200, "driving SAMPLE_BUTTON_1 {level}: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs one build through the scenario; the app's log lines.
fn blink_and_press(sample: &str, language: &str) -> Vec<String> {
    let what = format!("{sample} ({language})");
    let f = fixture();
    let d = Daemon::start(&f);
    let id = install(&d, &f, &manifest("blinky"), &wasm(sample), &what);
    wait_app_line(&d, &id, STARTED, &what);
    see_blinking(&d, &id, &what);
    press(&d);
    wait_app_line(
        &d,
        &id,
        "[info] blinky: SAMPLE_BUTTON_1 pressed: blinking every 250 ms",
        &what,
    );
    press(&d);
    wait_app_line(
        &d,
        &id,
        "[info] blinky: SAMPLE_BUTTON_1 pressed: blinking every 125 ms",
        &what,
    );
    // Still blinking, at the new rate, and still running.
    see_blinking(&d, &id, &what);
    let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
    assert_eq!(app["status"]["state"], "running", "{what}: {app}");
    eprintln!("{what}: memory {} bytes", app["memory_bytes"]);
    let lines = app_lines(&d, &id);
    d.kill();
    lines
}

#[test]
fn blinky_in_rust_and_in_python_blink_change_rate_and_log_the_same_lines() {
    require_root("the supervisor");
    let [rust, python] = BUILDS.map(|(sample, language)| blink_and_press(sample, language));
    assert_eq!(
        rust,
        [
            STARTED,
            "[info] blinky: SAMPLE_BUTTON_1 pressed: blinking every 250 ms",
            "[info] blinky: SAMPLE_BUTTON_1 pressed: blinking every 125 ms",
        ]
    );
    assert_eq!(
        python, rust,
        "the Python build logged other lines than the Rust build"
    );
}

/// Runs one build under a manifest without the Gpio capability until its first failure; the
/// app's log lines and its view (`GET /apps/{id}`).
fn fail_without_gpio(sample: &str, language: &str) -> (Vec<String>, serde_json::Value) {
    let what = format!("{sample} ({language})");
    let with_gpio = manifest("blinky");
    let without_gpio = with_gpio.replace(r#""Gpio": [ "$SAMPLE_LED", "$SAMPLE_BUTTON_1" ]"#, "");
    assert_ne!(
        without_gpio, with_gpio,
        "the blinky manifest's Gpio line changed"
    );
    let f = fixture();
    let d = Daemon::start(&f);
    let id = install(&d, &f, &without_gpio, &wasm(sample), &what);
    let deadline = Instant::now() + Duration::from_secs(60);
    let app = loop {
        let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
        if app["status"]["state"] == "backoff" {
            break app;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: did not fail: {app} {}",
            all_lines(&d, &id)
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = app_lines(&d, &id);
    d.kill();
    (lines, app)
}

#[test]
fn blinky_in_rust_and_in_python_fail_the_same_way_without_the_gpio_capability() {
    require_root("the supervisor");
    let [(rust_lines, rust_app), (python_lines, python_app)] =
        BUILDS.map(|(sample, language)| fail_without_gpio(sample, language));
    // The first device call is refused: the app logs why and exits with status 1.
    assert_eq!(
        rust_lines,
        [
            "[error] blinky: stopped: Error::NotGranted(\"this app's manifest grants it no \
          peripheral, network access or device service\")"
        ]
    );
    assert_eq!(python_lines, rust_lines);
    for app in [&rust_app, &python_app] {
        assert!(
            app["last_failure"]
                .as_str()
                .is_some_and(|f| f.starts_with("exit code 1")),
            "{app}"
        );
    }
    assert_eq!(python_app["last_failure"], rust_app["last_failure"]);
    assert_eq!(python_app["restarts"], rust_app["restarts"]);
}
