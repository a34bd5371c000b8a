//! The real-time core manager: real-time apps installed through `POST /images`, assigned a
//! core, their firmware checked, loaded and lifecycle-managed on an emulated core (QEMU
//! `mps2-an386`, the simulated board's `rt0`) and on a remoteproc core (a sysfs tree of plain
//! files, and a scripted one for the kernel's answers).
//!
//! The firmware is real: `tests/fixtures/rtcore/firmware.c`, built here with
//! arm-none-eabi-gcc (a missing compiler fails the test, never skips it), and the firmware
//! samples (`sample-apps/rt-echo-c`, `sample-apps/rt-echo-rust`: `WARDEN_RT_ECHO_C` and
//! `WARDEN_RT_ECHO_RUST`, or built here by xtask's own build code). The tests that start
//! `wardend` or QEMU need root, like the supervisor itself.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::daemon::{Daemon, Options, require_root};
use common::rtcore::{RtFixture, firmware_samples, pack_rt, pack_rt_as, rt_fixture, rt_manifest};
use common::{APP_A, FakeCompiler, Fixture, Script, manifest, pack_code, repo, wait_for};
use serde_json::Value;
use warden_policy::keys::PrivateKey;
use wardend::reports::FailureKind;
use wardend::rtcore::{
    CoreBackend, CoreEnd, Cores, EmulatedCore, RemoteprocCore, Run, Sysfs, content_name,
};
use wardend::supervisor::{RestartPolicy, Status, Supervisor};

const RT_A: &str = "0c6b7f3e-9d21-4a4b-8f00-5e0b2d7c1a11";
const RT_B: &str = "1d7c804f-ae32-4b5c-9011-6f1c3e8d2b22";

/// Builds `tests/fixtures/rtcore/firmware.c` with `defines`, linked at `base`.
fn firmware(defines: &[&str], base: u32) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rtcore");
    let out = tempfile::tempdir().unwrap();
    let elf = out.path().join("fw.elf");
    let built = Command::new("arm-none-eabi-gcc")
        .args([
            "-mcpu=cortex-m4",
            "-mthumb",
            "-Os",
            "-nostdlib",
            "-ffreestanding",
            "-Wall",
            "-Werror",
        ])
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg("-T")
        .arg(dir.join("firmware.ld"))
        .arg(format!("-Wl,--defsym=FW_BASE={base:#x}"))
        .arg("-o")
        .arg(&elf)
        .arg(dir.join("firmware.c"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "arm-none-eabi-gcc builds the test firmware and cannot run ({e}); install it \
                 (Debian: gcc-arm-none-eabi)"
            )
        });
    assert!(
        built.status.success(),
        "building the test firmware: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::read(&elf).unwrap()
}

/// Greets on UART0, then echoes; sleeps in between.
fn good_firmware() -> Vec<u8> {
    firmware(&[], 0)
}

/// The pids of QEMU processes whose command line mentions `marker` (a test's own directory).
fn qemu_pids(marker: &Path) -> Vec<u32> {
    let marker = marker.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("qemu-system-arm") && cmdline.contains(&marker) {
            pids.push(pid);
        }
    }
    pids
}

fn app(d: &Daemon, id: &str) -> Value {
    d.call("GET", &format!("/apps/{id}"), b"").1
}

fn state_of(d: &Daemon, id: &str) -> String {
    app(d, id)["status"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn refused(d: &Daemon, package: &[u8]) -> String {
    let (status, body) = d.call("POST", "/images", package);
    assert_eq!(status, 422, "{body}");
    body["error"].as_str().unwrap().to_owned()
}

fn installed(d: &Daemon, package: &[u8]) -> Value {
    let (status, body) = d.call("POST", "/images", package);
    assert_eq!(status, 201, "{body}");
    body
}

fn uninstall(d: &Daemon, id: &str) {
    let (status, body) = d.call("DELETE", &format!("/apps/{id}?storage=wipe"), b"");
    assert_eq!(status, 200, "{body}");
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_rt_app_runs_on_rt0_and_is_stopped_started_updated_and_uninstalled() {
    require_root("wardend runs QEMU in new namespaces, as root");
    let RtFixture { f, rt_key } = rt_fixture();
    let d = Daemon::start(&f);
    let fw = good_firmware();
    let v1 = pack_rt(&rt_key, &rt_manifest(RT_A, "echo", ""), 1, &fw);

    let body = installed(&d, &v1);
    assert_eq!(body["decision"], "first install");
    d.wait_for("the core to run", |d| state_of(d, RT_A) == "running");
    let view = app(&d, RT_A);
    assert_eq!(view["kind"], "rtcore");
    assert_eq!(view["core"], "rt0");
    let pid = view["status"]["pid"].as_u64().unwrap() as u32;
    assert_eq!(qemu_pids(&f.state_path), [pid], "QEMU runs the stored ELF");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains("-M mps2-an386 -nographic"), "{cmdline}");
    assert!(cmdline.contains("payloads/bin/fw.elf"), "{cmdline}");
    let name = content_name(&hex_sha256(&fw));
    assert!(
        d.logs(RT_A)
            .iter()
            .any(|l| l.starts_with(&format!("core `rt0`: {name} started (emulator pid {pid})"))),
        "{:?}",
        d.logs(RT_A)
    );
    let (_, apps) = d.call("GET", "/apps", b"");
    assert_eq!(apps[0]["core"], "rt0", "{apps}");

    // Stop and start through the API.
    let (status, stopped) = d.call("POST", &format!("/apps/{RT_A}/stop"), b"");
    assert_eq!(
        (status, stopped["status"]["state"].as_str()),
        (200, Some("stopped"))
    );
    assert_eq!(
        qemu_pids(&f.state_path),
        Vec::<u32>::new(),
        "a stop ends QEMU"
    );
    let (status, _) = d.call("POST", &format!("/apps/{RT_A}/start"), b"");
    assert_eq!(status, 200);
    d.wait_for("the core to run again", |d| state_of(d, RT_A) == "running");
    let again = app(&d, RT_A)["status"]["pid"].as_u64().unwrap() as u32;
    assert_ne!(again, pid);
    assert_eq!(qemu_pids(&f.state_path), [again]);

    // The same package again changes nothing.
    assert_eq!(
        installed(&d, &v1)["decision"],
        "reinstall (already installed, nothing changed)"
    );

    // A tampered package, one signed by an app key, an older version: refused, nothing changed.
    let mut tampered = v1.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let e = refused(&d, &tampered);
    assert!(e.starts_with("package refused:"), "{e}");
    assert!(e.contains("bin/fw.elf"), "{e}");
    let by_app_key = pack_rt(&f.app_key, &rt_manifest(RT_A, "echo", ""), 5, &fw);
    let e = refused(&d, &by_app_key);
    assert!(e.contains("wrong key role"), "{e}");
    assert!(e.contains("has role app, but rtcore"), "{e}");

    // An update keeps its core and runs the new firmware; the old version is then refused.
    let fw2 = firmware(&["VERSION_TWO"], 0);
    let v2 = pack_rt(&rt_key, &rt_manifest(RT_A, "echo", ""), 2, &fw2);
    assert_eq!(installed(&d, &v2)["decision"], "upgrade from 1");
    d.wait_for("the update to run", |d| {
        app(d, RT_A)["version"] == 2 && state_of(d, RT_A) == "running"
    });
    assert_eq!(app(&d, RT_A)["core"], "rt0");
    assert_eq!(qemu_pids(&f.state_path).len(), 1, "the old QEMU is gone");
    let e = refused(&d, &v1);
    assert!(e.starts_with("rollback refused:"), "{e}");
    assert_eq!(app(&d, RT_A)["version"], 2);

    uninstall(&d, RT_A);
    assert_eq!(
        qemu_pids(&f.state_path),
        Vec::<u32>::new(),
        "no QEMU is left"
    );
    assert_eq!(d.call("GET", "/apps", b"").1, serde_json::json!([]));
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn a_taken_core_and_firmware_outside_the_cores_memory_are_refused_with_the_reason() {
    require_root("wardend runs QEMU in new namespaces, as root");
    let RtFixture { f, rt_key } = rt_fixture();
    let d = Daemon::start(&f);
    let fw = good_firmware();
    installed(
        &d,
        &pack_rt(&rt_key, &rt_manifest(RT_A, "echo", ""), 1, &fw),
    );

    let e = refused(
        &d,
        &pack_rt(&rt_key, &rt_manifest(RT_B, "second", ""), 1, &fw),
    );
    assert_eq!(
        e,
        format!(
            "no real-time core: every real-time core is taken: `rt0` by app `echo` ({RT_A}); a \
             core runs one real-time app"
        )
    );
    let wired = rt_manifest(RT_B, "second", r#""ExternalInterrupt": ["EINT0"]"#);
    let e = refused(&d, &pack_rt(&rt_key, &wired, 1, &fw));
    assert_eq!(
        e,
        format!(
            "no real-time core: `SIM_EINT0` is wired to real-time core `rt0` only, and `rt0` \
             runs real-time app `echo` ({RT_A}); a core runs one real-time app"
        )
    );
    uninstall(&d, RT_A);

    let outside = firmware(&[], 0x1000_0000);
    let e = refused(
        &d,
        &pack_rt(&rt_key, &rt_manifest(RT_B, "second", ""), 1, &outside),
    );
    assert!(
        e.starts_with("firmware refused for real-time core `rt0`: segment 0 (0x10000000, "),
        "{e}"
    );
    assert!(
        e.ends_with(
            "bytes) lies outside the memory of core `rt0` (SSRAM1 0x00000000+4096 KiB, SSRAM23 \
             0x20000000+4096 KiB)"
        ),
        "{e}"
    );
    assert_eq!(d.call("GET", "/apps", b"").1, serde_json::json!([]));
    // The refused app's id is free, and the core too.
    installed(
        &d,
        &pack_rt(&rt_key, &rt_manifest(RT_B, "second", ""), 1, &fw),
    );
    d.wait_for("the second app to run", |d| state_of(d, RT_B) == "running");
    assert_eq!(app(&d, RT_B)["core"], "rt0");
    uninstall(&d, RT_B);
    assert_eq!(qemu_pids(&f.state_path), Vec::<u32>::new());
}

/// A preview-1 command that returns at once.
fn a7_module() -> Vec<u8> {
    wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap()
}

#[test]
fn an_a7_app_and_an_m4_app_cannot_claim_one_pin_in_either_order() {
    require_root("wardend compiles and runs apps confined, as root");
    let RtFixture { f, rt_key } = rt_fixture();
    let d = Daemon::start(&f);
    // `$SAMPLE_LED` and the raw chip value 0 both resolve to SIM_GPIO0.
    let a7 = pack_code(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, &a7_module(), None);
    let m4 = pack_rt(
        &rt_key,
        &rt_manifest(RT_A, "m4pins", r#""Gpio": [0]"#),
        1,
        &good_firmware(),
    );

    installed(&d, &a7);
    let e = refused(&d, &m4);
    assert!(
        e.contains(&format!(
            "`0` (`SIM_GPIO0`) is already owned by app `t` ({APP_A}) as `$SAMPLE_LED`"
        )),
        "{e}"
    );
    uninstall(&d, APP_A);

    installed(&d, &m4);
    let e = refused(&d, &a7);
    assert!(
        e.contains(&format!(
            "`$SAMPLE_LED` (`SIM_GPIO0`) is already owned by app `m4pins` ({RT_A}) as `0`"
        )),
        "{e}"
    );
    uninstall(&d, RT_A);
    assert_eq!(qemu_pids(&f.state_path), Vec::<u32>::new());
}

#[test]
fn a_faulting_firmware_is_reported_and_restarted_and_qemu_ends_with_wardend() {
    require_root("wardend runs QEMU in new namespaces, as root");
    let RtFixture { f, rt_key } = rt_fixture();
    let d = Daemon::start(&f);
    let faulting = firmware(&["FAULT"], 0);
    installed(
        &d,
        &pack_rt(&rt_key, &rt_manifest(RT_A, "faulty", ""), 1, &faulting),
    );
    d.wait_for("a restart after the fault", |d| {
        app(d, RT_A)["restarts"].as_u64() >= Some(1)
    });
    let (_, reports) = d.call("GET", &format!("/reports?app={RT_A}"), b"");
    let report = reports.as_array().unwrap().last().unwrap().clone();
    assert_eq!(report["failure"]["kind"], "exit", "{report}");
    assert_eq!(report["failure"]["code"], 1, "{report}");
    assert!(
        report["detail"]
            .as_str()
            .unwrap()
            .starts_with("core `rt0`: the emulator exited with status 1"),
        "{report}"
    );
    assert_eq!(report["action"], "restart in 1000 ms", "{report}");
    assert!(
        app(&d, RT_A)["last_failure"]
            .as_str()
            .unwrap()
            .starts_with("exit code 1: core `rt0`"),
    );

    // A good version replaces it; wardend killed outright takes QEMU with it.
    installed(
        &d,
        &pack_rt(
            &rt_key,
            &rt_manifest(RT_A, "faulty", ""),
            2,
            &good_firmware(),
        ),
    );
    d.wait_for("the good version to run", |d| {
        app(d, RT_A)["version"] == 2 && state_of(d, RT_A) == "running"
    });
    assert_eq!(qemu_pids(&f.state_path).len(), 1);
    d.kill();
    wait_until("QEMU to die with wardend", Duration::from_secs(10), || {
        qemu_pids(&f.state_path).is_empty()
    });

    // At the next start it runs again (autostart), and a clean shutdown stops it.
    let d = Daemon::start(&f);
    d.wait_for("autostart on rt0", |d| state_of(d, RT_A) == "running");
    assert_eq!(qemu_pids(&f.state_path).len(), 1);
    d.terminate();
    assert_eq!(qemu_pids(&f.state_path), Vec::<u32>::new());
}

/// A copy of the simulated board whose `rt0` is the remoteproc instance `remoteproc0`.
fn remoteproc_board(dir: &Path) -> PathBuf {
    remoteproc_board_with(dir, "")
}

/// [`remoteproc_board`] with `extra` (`, "Key": value`) added to `rt0`.
fn remoteproc_board_with(dir: &Path, extra: &str) -> PathBuf {
    let sim = repo().join("buildroot-overlay/board/warden-sim");
    std::fs::create_dir_all(dir.join("hardware-definitions")).unwrap();
    for entry in std::fs::read_dir(sim.join("hardware-definitions")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.join("hardware-definitions").join(entry.file_name()),
        )
        .unwrap();
    }
    let board = std::fs::read_to_string(sim.join("board.json")).unwrap();
    let emulated = r#""Emulated": {"Machine": "mps2-an386"}"#;
    assert!(board.contains(emulated));
    std::fs::write(
        dir.join("board.json"),
        board.replace(emulated, &format!(r#""Remoteproc": "remoteproc0"{extra}"#)),
    )
    .unwrap();
    dir.join("board.json")
}

/// `wardend` on a remoteproc board whose `rt0` has `restart` (`, "Restart": {...}`), with the
/// test firmware installed and running; the daemon and the fake sysfs `remoteproc0`.
fn running_on_remoteproc(f: &Fixture, rt_key: &PrivateKey, restart: &str) -> (Daemon, PathBuf) {
    let board = remoteproc_board_with(&f.tmp.path().join("board"), restart);
    let sys = f.tmp.path().join("sys");
    std::fs::create_dir_all(sys.join("remoteproc0")).unwrap();
    std::fs::write(sys.join("remoteproc0/firmware"), "rproc-m4-fw\n").unwrap();
    std::fs::write(sys.join("remoteproc0/state"), "offline\n").unwrap();
    let d = Daemon::start_with(
        f,
        &Options {
            board: Some(board),
            args: vec![
                "--remoteproc-root".into(),
                sys.clone().into(),
                "--firmware-dir".into(),
                f.tmp.path().join("lib-firmware").into(),
            ],
            ..Options::default()
        },
    );
    installed(
        &d,
        &pack_rt(rt_key, &rt_manifest(RT_A, "m4", ""), 1, &good_firmware()),
    );
    d.wait_for("the core to run", |d| state_of(d, RT_A) == "running");
    (d, sys.join("remoteproc0"))
}

#[test]
fn the_board_sets_how_a_crashed_core_is_restarted() {
    require_root("wardend runs as root");
    // Its own backoff: the restart comes after the board's 200 ms, not the default 1000.
    let RtFixture { f, rt_key } = rt_fixture();
    let (d, rproc) = running_on_remoteproc(
        &f,
        &rt_key,
        r#", "Restart": {"InitialBackoffMs": 200, "QuarantineAfter": 2, "WithinS": 600}"#,
    );
    std::fs::write(rproc.join("state"), "crashed\n").unwrap();
    d.wait_for("the restart", |d| {
        app(d, RT_A)["restarts"] == 1 && state_of(d, RT_A) == "running"
    });
    let (_, reports) = d.call("GET", &format!("/reports?app={RT_A}"), b"");
    assert_eq!(reports[0]["action"], "restart in 200 ms", "{reports}");
    // The board's second crash within its window quarantines, not the default fifth.
    std::fs::write(rproc.join("state"), "crashed\n").unwrap();
    d.wait_for("quarantine", |d| state_of(d, RT_A) == "quarantined");
    let (_, reports) = d.call("GET", &format!("/reports?app={RT_A}"), b"");
    assert_eq!(reports[0]["failure"]["kind"], "crash_loop", "{reports}");
    drop(d);

    // `OnCrash: Stop`: one report, and the core stays down until started.
    let RtFixture { f, rt_key } = rt_fixture();
    let (d, rproc) = running_on_remoteproc(&f, &rt_key, r#", "Restart": {"OnCrash": "Stop"}"#);
    std::fs::write(rproc.join("state"), "crashed\n").unwrap();
    d.wait_for("the core to stay stopped", |d| {
        state_of(d, RT_A) == "quarantined"
    });
    std::thread::sleep(Duration::from_millis(1500));
    let view = app(&d, RT_A);
    assert_eq!(
        (view["status"]["state"].as_str(), view["restarts"].as_u64()),
        (Some("quarantined"), Some(0)),
        "{view}"
    );
    let (_, reports) = d.call("GET", &format!("/reports?app={RT_A}"), b"");
    assert_eq!(reports.as_array().unwrap().len(), 1, "{reports}");
    assert_eq!(
        reports[0]["action"],
        "stopped: the board's policy for core `rt0` is OnCrash Stop; start it explicitly"
    );
    let (status, body) = d.call("POST", &format!("/apps/{RT_A}/start"), b"");
    assert_eq!(status, 200, "{body}");
    d.wait_for("the core to run again", |d| state_of(d, RT_A) == "running");
}

#[test]
fn a_remoteproc_core_is_driven_through_its_sysfs_files() {
    require_root("wardend runs as root");
    let RtFixture { f, rt_key } = rt_fixture();
    let board = remoteproc_board(&f.tmp.path().join("board"));
    let sys = f.tmp.path().join("sys");
    let fw_dir = f.tmp.path().join("lib-firmware");
    std::fs::create_dir_all(sys.join("remoteproc0")).unwrap();
    std::fs::write(sys.join("remoteproc0/firmware"), "rproc-m4-fw\n").unwrap();
    std::fs::write(sys.join("remoteproc0/state"), "offline\n").unwrap();
    let read = |file: &str| std::fs::read_to_string(sys.join("remoteproc0").join(file)).unwrap();
    let d = Daemon::start_with(
        &f,
        &Options {
            board: Some(board),
            args: vec![
                "--remoteproc-root".into(),
                sys.clone().into(),
                "--firmware-dir".into(),
                fw_dir.clone().into(),
            ],
            ..Options::default()
        },
    );
    let fw = good_firmware();
    let name = content_name(&hex_sha256(&fw));
    installed(&d, &pack_rt(&rt_key, &rt_manifest(RT_A, "m4", ""), 1, &fw));
    d.wait_for("the core to run", |d| state_of(d, RT_A) == "running");
    assert_eq!(
        (read("firmware"), read("state")),
        (name.clone(), "start".into())
    );
    assert_eq!(std::fs::read(fw_dir.join(&name)).unwrap(), fw);
    let view = app(&d, RT_A);
    assert_eq!(view["core"], "rt0");
    assert_eq!(
        view["status"],
        serde_json::json!({"state": "running"}),
        "no pid"
    );

    // The kernel reports a crash: a failure report, and a restart after the backoff.
    std::fs::write(sys.join("remoteproc0/state"), "crashed\n").unwrap();
    d.wait_for("the restart", |d| {
        app(d, RT_A)["restarts"] == 1 && state_of(d, RT_A) == "running"
    });
    assert_eq!(
        (read("firmware"), read("state")),
        (name.clone(), "start".into())
    );
    let (_, reports) = d.call("GET", &format!("/reports?app={RT_A}"), b"");
    let report = &reports[0];
    assert_eq!(report["failure"]["kind"], "worker_failed", "{report}");
    assert_eq!(report["failure"]["stage"], "core `rt0` crashed", "{report}");
    assert_eq!(
        report["detail"],
        format!(
            "core `rt0`: {} says `crashed`",
            sys.join("remoteproc0/state").display()
        )
    );
    assert_eq!(report["action"], "restart in 1000 ms");

    let (status, _) = d.call("POST", &format!("/apps/{RT_A}/stop"), b"");
    assert_eq!((status, read("state")), (200, "stop".into()));
    let (status, _) = d.call("POST", &format!("/apps/{RT_A}/start"), b"");
    assert_eq!(status, 200);
    d.wait_for("the core to run", |d| state_of(d, RT_A) == "running");
    assert_eq!(read("state"), "start");

    // An update loads the new firmware on the same core; the old copy goes.
    let fw2 = firmware(&["VERSION_TWO"], 0);
    let name2 = content_name(&hex_sha256(&fw2));
    installed(&d, &pack_rt(&rt_key, &rt_manifest(RT_A, "m4", ""), 2, &fw2));
    d.wait_for("the update to run", |d| {
        app(d, RT_A)["version"] == 2 && state_of(d, RT_A) == "running"
    });
    assert_eq!(
        (read("firmware"), read("state")),
        (name2.clone(), "start".into())
    );
    assert_eq!(app(&d, RT_A)["core"], "rt0");
    assert!(!fw_dir.join(&name).exists(), "the old copy is removed");

    uninstall(&d, RT_A);
    assert_eq!(read("state"), "stop");
    assert!(
        !fw_dir.join(&name2).exists(),
        "uninstall removes the firmware copy"
    );
}

/// The kernel's side of a remoteproc instance, scripted: `state` moves as the kernel moves it
/// (`start` → `running`, `stop` → `offline`), and every write is recorded.
#[derive(Debug)]
struct Kernel {
    state: Mutex<String>,
    writes: Mutex<VecDeque<(String, String)>>,
}

impl Kernel {
    fn writes(&self) -> Vec<(String, String)> {
        self.writes.lock().unwrap().drain(..).collect()
    }
}

fn w(file: &str, value: &str) -> (String, String) {
    (file.into(), value.into())
}

impl Sysfs for Kernel {
    fn read(&self, _: &Path) -> std::io::Result<String> {
        Ok(format!("{}\n", self.state.lock().unwrap()))
    }

    fn write(&self, path: &Path, value: &str) -> std::io::Result<()> {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        match (file.as_str(), value) {
            ("state", "start") => *self.state.lock().unwrap() = "running".into(),
            ("state", "stop") => *self.state.lock().unwrap() = "offline".into(),
            _ => {}
        }
        self.writes.lock().unwrap().push_back((file, value.into()));
        Ok(())
    }
}

#[test]
fn the_supervisor_restarts_a_crashed_remoteproc_core_with_the_exact_writes() {
    let RtFixture { f, rt_key } = rt_fixture();
    let Fixture {
        tmp,
        state,
        state_path,
        device,
        ..
    } = f;
    let kernel = Arc::new(Kernel {
        state: Mutex::new("offline".into()),
        writes: Mutex::new(VecDeque::new()),
    });
    let fw_dir = tmp.path().join("lib-firmware");
    let core: Arc<dyn CoreBackend> = Arc::new(
        RemoteprocCore::new(
            "rt0",
            &tmp.path().join("sys"),
            &fw_dir,
            "remoteproc0",
            kernel.clone(),
        )
        .with_poll(Duration::from_millis(10)),
    );
    let sup = Supervisor::open_with_cores(
        state,
        device,
        Box::new(FakeCompiler::new()),
        Box::new(Script::default()),
        Cores::from_backends([core]),
        RestartPolicy {
            initial_backoff: Duration::from_millis(10),
            ..RestartPolicy::default()
        },
        64,
    )
    .unwrap();
    let fw = good_firmware();
    let name = content_name(&hex_sha256(&fw));
    sup.install(&pack_rt(&rt_key, &rt_manifest(RT_A, "m4", ""), 1, &fw)[..])
        .unwrap();
    let running = || matches!(sup.app(RT_A).unwrap().status, Status::Running { pid: None });
    wait_for("the core to run", running);
    assert_eq!(kernel.writes(), [w("firmware", &name), w("state", "start")]);
    assert_eq!(sup.app(RT_A).unwrap().core.as_deref(), Some("rt0"));

    *kernel.state.lock().unwrap() = "crashed".into();
    wait_for("the restart", || {
        sup.app(RT_A).unwrap().restarts == 1 && running()
    });
    assert_eq!(
        kernel.writes(),
        [
            w("state", "stop"),
            w("firmware", &name),
            w("state", "start")
        ],
        "a crashed core is stopped, given its firmware again and started"
    );
    let reports = sup.reports().list(Some(RT_A), 10);
    assert_eq!(reports.len(), 1);
    assert_eq!(
        reports[0].failure,
        FailureKind::WorkerFailed {
            stage: "core `rt0` crashed".into()
        }
    );
    assert!(reports[0].detail.ends_with("says `crashed`"), "{reports:?}");
    assert_eq!(reports[0].action, "restart in 10 ms");

    sup.stop(RT_A).unwrap();
    assert_eq!(kernel.writes(), [w("state", "stop")]);

    // A stored firmware that changed since its install is not loaded.
    let store = std::fs::read_dir(state_path.join("store"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(store.join("payloads/bin/fw.elf"), b"\x7fELF changed").unwrap();
    sup.start(RT_A).unwrap();
    wait_for("the refusal", || {
        sup.reports().list(Some(RT_A), 10).len() >= 2
    });
    let refusal = &sup.reports().list(Some(RT_A), 10)[0];
    assert_eq!(refusal.failure, FailureKind::LoadRefused, "{refusal:?}");
    assert!(
        refusal.detail.contains("recorded at install"),
        "{refusal:?}"
    );
    sup.stop(RT_A).unwrap();
    assert_eq!(kernel.writes(), [], "nothing reached the core");

    sup.uninstall(RT_A, true).unwrap();
    assert_eq!(kernel.writes(), [], "a stopped core is not stopped again");
    assert!(!fw_dir.join(&name).exists());
}

#[test]
fn the_emulated_core_runs_the_firmware_with_its_uart_on_the_serial_socket() {
    require_root("QEMU is started in new namespaces, as root");
    let tmp = tempfile::tempdir().unwrap();
    let elf = |name: &str, bytes: Vec<u8>| {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let good = elf("good.elf", good_firmware());
    let core = EmulatedCore::new("rt0", "mps2-an386", Path::new("qemu-system-arm"));
    let run = core.load_and_start(&good, "warden-good.elf").unwrap();
    let mut serial = core.serial().unwrap();
    serial
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = Vec::new();
    while !greeting.ends_with(b"\n") {
        let mut byte = [0u8];
        serial.read_exact(&mut byte).unwrap();
        greeting.push(byte[0]);
    }
    assert_eq!(greeting, b"warden rt fixture\n");
    serial.write_all(b"ping").unwrap();
    let mut echo = [0u8; 4];
    serial.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping");
    let pid = core.pid().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    core.stop_run(Run(run.0 + 1)).unwrap();
    assert_eq!(
        core.pid(),
        Some(pid),
        "a stop of another run leaves this one"
    );
    core.stop().unwrap();
    assert_eq!(core.wait(run), CoreEnd::Stopped);
    assert_eq!(core.pid(), None);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "a stop reaps QEMU"
    );

    let faulting = elf("fault.elf", firmware(&["FAULT"], 0));
    let run = core.load_and_start(&faulting, "warden-fault.elf").unwrap();
    match core.wait(run) {
        CoreEnd::Crashed { code, detail, .. } => {
            assert_eq!(code, Some(1), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    let exiting = elf("exit.elf", firmware(&["EXIT"], 0));
    let run = core.load_and_start(&exiting, "warden-exit.elf").unwrap();
    assert_eq!(core.wait(run), CoreEnd::Exited);
}

/// The C and the Rust firmware sample.

#[test]
fn the_firmware_samples_install_and_run_on_rt0() {
    require_root("wardend runs QEMU in new namespaces, as root");
    let RtFixture { f, rt_key } = rt_fixture();
    let d = Daemon::start(&f);
    for (sample, elf) in firmware_samples() {
        let manifest_text = std::fs::read_to_string(
            repo()
                .join("sample-apps")
                .join(sample)
                .join("app_manifest.json"),
        )
        .unwrap();
        let manifest: Value = serde_json::from_str(&manifest_text).unwrap();
        let id = manifest["ComponentId"].as_str().unwrap();
        let entry = manifest["EntryPoint"]
            .as_str()
            .unwrap()
            .trim_start_matches('/');
        let package = pack_rt_as(
            &rt_key,
            &manifest_text,
            1,
            &std::fs::read(&elf).unwrap(),
            entry,
        );
        let body = installed(&d, &package);
        assert!(
            body["warnings"][0]
                .as_str()
                .unwrap()
                .contains("the channel stays closed"),
            "{sample}: {body}"
        );
        d.wait_for("the sample to run", |d| state_of(d, id) == "running");
        std::thread::sleep(Duration::from_millis(500));
        let view = app(&d, id);
        assert_eq!(
            (view["status"]["state"].as_str(), view["restarts"].as_u64()),
            (Some("running"), Some(0)),
            "{sample}: {view}"
        );
        assert_eq!(view["core"], "rt0");
        assert_eq!(qemu_pids(&f.state_path).len(), 1, "{sample}");
        uninstall(&d, id);
        assert_eq!(qemu_pids(&f.state_path), Vec::<u32>::new(), "{sample}");
    }
}
