//! The `intercore` sample (`sample-apps/intercore`, Rust) with each echo firmware sample on
//! the simulated board's emulated Cortex-M4, every package with its own unchanged manifest:
//! the app finds the running firmware among its `CmdArgs`, and its pings come back. Started
//! before the firmware, it waits for it; when the firmware is removed it says so and keeps
//! looking. Needs root.
#![allow(clippy::unwrap_used)]

mod common;

use common::daemon::{Daemon, require_root};
use common::guest::{self, stdout, wait_line};
use common::rtcore::{firmware_samples, pack_rt_as, rt_fixture, sample_manifest};
use common::samples;

#[test]
fn the_intercore_sample_pings_each_firmware_sample() {
    require_root("the supervisor, and QEMU in new namespaces");
    let rt = rt_fixture();
    let d = Daemon::start(&rt.f);
    let manifest = samples::manifest("intercore");
    // The app first, with no firmware yet: it waits, and says why.
    let app = samples::install(&d, &rt.f, "intercore", &manifest);
    d.wait_for("the app to report no peer", |d| {
        d.logs(&app)
            .iter()
            .any(|l| l.contains("no real-time app to talk to yet"))
    });
    for (sample, elf) in firmware_samples() {
        let (text, id, entry) = sample_manifest(sample);
        let package = pack_rt_as(&rt.rt_key, &text, 1, &std::fs::read(&elf).unwrap(), &entry);
        let (status, body) = d.call("POST", "/images", &package);
        assert_eq!(status, 201, "{sample}: {body}");
        d.wait_for(&format!("a channel to {sample}"), |d| {
            d.logs(&app)
                .iter()
                .any(|l| l.contains(&format!("channel open to {id}")))
        });
        // Three echoes in a row from this firmware.
        let first = stdout(&d, &app).len();
        d.wait_for(&format!("three echoes from {sample}"), |d| {
            stdout(d, &app)[first..]
                .iter()
                .filter(|l| l.contains(": echo in "))
                .count()
                >= 3
        });
        let line = wait_line(&d, &app, "ping ");
        assert!(line.starts_with("ping "), "{line}");
        // Removing the firmware closes the channel; the app logs it and keeps running.
        let (status, body) = d.call("DELETE", &format!("/apps/{id}?storage=wipe"), b"");
        assert_eq!(status, 200, "{body}");
        d.wait_for(&format!("the app to see {sample} gone"), |d| {
            d.logs(&app)
                .iter()
                .any(|l| l.contains(&format!("channel to {id} closed")))
        });
        assert_eq!(guest::state(&d, &app), "running");
    }
}
