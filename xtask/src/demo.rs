//! `cargo xtask demo`: the main job, end to end with the real `warden` binary.
//!
//! Builds the sample app from source, makes development keys and a root-signed trust store in a
//! scratch directory, packs and signs the app with its unchanged Azure Sphere manifest, inspects
//! and verifies the package, shows a tampered copy refused, and resolves the manifest's
//! `$NAME`s against the simulated board; then starts the real supervisor, `wardend`, on the
//! simulated board in a scratch state directory, sideloads the package over the control API,
//! and shows the app running in its confined worker (its greeting in the app's log). Every step
//! prints the command it runs. `--once` (what CI passes) is the same run with no pauses; the
//! demo exits non-zero if any step misbehaves.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::device::{BOARD, Daemon, Scratch, Warden};
use crate::{cargo, render, step};

const SAMPLE: &str = "sample-apps/hello";

/// Builds the hello sample from source; returns its component.
pub(crate) fn build_hello(root: &Path) -> Result<PathBuf> {
    let guest_target = root.join("target/guests");
    step(
        "build the sample app (Rust -> wasm32-wasip2 component)",
        cargo(root)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(root.join(SAMPLE).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&guest_target),
    )?;
    Ok(guest_target.join("wasm32-wasip2/release/hello.wasm"))
}

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    for arg in args {
        if arg != "--once" {
            bail!("usage: cargo xtask demo [--once]");
        }
    }
    crate::setup::ensure_rust_targets(root)?;
    step(
        "build the warden CLI, the supervisor and the worker",
        cargo(root).args([
            "build",
            "--locked",
            "-p",
            "warden-cli",
            "-p",
            "wardend",
            "-p",
            "warden-worker",
        ]),
    )?;
    let wasm = build_hello(root)?;
    let guests = crate::guests::build_guests(root)?;

    let scratch = Scratch::new("demo")?;
    let dir = scratch.path();
    let warden = Warden {
        bin: root.join("target/debug/warden"),
        verbose: true,
    };
    let package = dir.join("hello-1.wpkg");
    let manifest = root.join(SAMPLE).join("app_manifest.json");
    let (app_key, trust) = warden.keys_and_trust(dir)?;
    warden.pack(&manifest, &wasm, &app_key, 1, &package)?;
    warden.ok("inspect the package", |c| {
        c.args(["app", "inspect"]).arg(&package);
    })?;
    warden.ok("verify it against the trust store", |c| {
        c.args(["app", "verify"])
            .arg(&package)
            .arg("--trust")
            .arg(&trust);
    })?;

    let tampered = dir.join("hello-1-tampered.wpkg");
    let mut bytes = std::fs::read(&package)?;
    let last = bytes.len().checked_sub(1).context("empty package")?;
    bytes[last] ^= 0x01;
    std::fs::write(&tampered, &bytes)?;
    warden.refused("a copy with one payload bit flipped is refused", |c| {
        c.args(["app", "verify"])
            .arg(&tampered)
            .arg("--trust")
            .arg(&trust);
    })?;

    warden.ok("resolve blink's $NAMEs on the simulated board", |c| {
        c.args(["hwdef", "check"])
            .arg(root.join(BOARD))
            .arg("--manifest")
            .arg(root.join("sample-apps/blink/app_manifest.json"));
    })?;

    let blink = dir.join("blink-1.wpkg");
    warden.pack(
        &root.join("sample-apps/blink/app_manifest.json"),
        &guests.blink,
        &app_key,
        1,
        &blink,
    )?;
    run_on_device(root, &warden, dir, &trust, &package, &blink)?;

    println!("\ndemo: every step behaved as expected");
    Ok(())
}

/// Starts `wardend` on the simulated board, sideloads the package, and waits for the app's
/// greeting from its confined worker.
fn run_on_device(
    root: &Path,
    warden: &Warden,
    dir: &Path,
    trust: &Path,
    package: &Path,
    blink: &Path,
) -> Result<()> {
    let bin_dir = root.join("target/debug");
    let daemon = Daemon::command(root, &bin_dir, dir, trust, None);
    println!(
        "\n==> start the supervisor on the simulated board\n$ {}",
        render(&daemon)
    );
    let daemon = Daemon::start(daemon, dir)?;
    let socket = daemon.socket.clone();
    let device = |c: &mut Command| {
        c.arg("device").arg("--socket").arg(&socket);
    };
    warden.ok(
        "sideload the package (verified, compiled in a confined worker)",
        |c| {
            device(c);
            c.arg("sideload").arg(package);
        },
    )?;
    let id = "6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b";
    let greeting = "hello from a Warden app";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let mut logs = warden.command(|c| {
            device(c);
            c.args(["--json", "app", "logs", id]);
        });
        let out = logs.output()?;
        if String::from_utf8_lossy(&out.stdout).contains(greeting) {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("the app's greeting never reached its log");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    warden.ok("the app ran in its sandbox: its log", |c| {
        device(c);
        c.args(["app", "logs", id]);
    })?;
    blink_on_the_simulated_board(warden, &socket, blink)?;
    warden.ok("the apps on the device", |c| {
        device(c);
        c.args(["app", "list"]);
    })?;
    warden.ok("the supervisor's status", |c| {
        device(c);
        c.arg("status");
    })?;
    drop(daemon);
    Ok(())
}

/// The classic first app on the simulated board: sideloaded, it blinks `SAMPLE_LED` (seen from
/// outside through `warden sim`); a press of `SAMPLE_BUTTON_1` makes it blink faster.
fn blink_on_the_simulated_board(warden: &Warden, socket: &Path, blink: &Path) -> Result<()> {
    let id = "b0154c92-95c6-43c8-a04c-de5dcc8857bb";
    let sim = |c: &mut Command| {
        c.arg("sim").arg("--socket").arg(socket);
    };
    let device = |c: &mut Command| {
        c.arg("device").arg("--socket").arg(socket);
    };
    warden.ok(
        "sideload blink: it opens SAMPLE_LED and SAMPLE_BUTTON_1 through the broker",
        |c| {
            device(c);
            c.arg("sideload").arg(blink);
        },
    )?;
    // Watch the LED from outside until it has been seen both on and off.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = (false, false);
    while seen != (true, true) {
        let out = warden
            .command(|c| {
                sim(c);
                c.args(["gpio", "SAMPLE_LED"]);
            })
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        seen.0 |= text.contains("high");
        seen.1 |= text.contains("low");
        if std::time::Instant::now() > deadline {
            bail!("SAMPLE_LED never blinked: {text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    warden.ok("the LED, seen from outside the app", |c| {
        sim(c);
        c.args(["gpio", "SAMPLE_LED"]);
    })?;
    warden.ok("press the button (it idles high, pressed is low)", |c| {
        sim(c);
        c.args(["gpio", "SAMPLE_BUTTON_1", "--drive", "low"]);
    })?;
    warden.ok("release it", |c| {
        sim(c);
        c.args(["gpio", "SAMPLE_BUTTON_1", "--drive", "high"]);
    })?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    warden.ok("blink's log: its rate changed", |c| {
        device(c);
        c.args(["app", "logs", id]);
    })?;
    warden.ok("stop blink", |c| {
        device(c);
        c.args(["app", "stop", id]);
    })?;
    Ok(())
}
