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
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

use crate::{cargo, render, step};

const SAMPLE: &str = "sample-apps/hello";
const BOARD: &str = "buildroot-overlay/board/warden-sim/board.json";

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
    let wasm = guest_target.join("wasm32-wasip2/release/hello.wasm");

    let scratch = Scratch::new()?;
    let dir = scratch.path();
    let warden = Warden {
        bin: root.join("target/debug/warden"),
    };
    let keys = dir.join("keys");
    let trust = dir.join("trust.json");
    let package = dir.join("hello-1.wpkg");
    let manifest = root.join(SAMPLE).join("app_manifest.json");

    warden.ok("make a root key", |c| {
        c.args(["keys", "new", "--role", "root", "-o"]).arg(&keys);
    })?;
    warden.ok("make an app-signing key", |c| {
        c.args(["keys", "new", "--role", "app", "-o"]).arg(&keys);
    })?;
    warden.ok("create a trust store signed by the root key", |c| {
        c.args(["trust", "init", "--root-key"])
            .arg(keys.join("root.key.pem"))
            .arg("-o")
            .arg(&trust);
    })?;
    warden.ok("trust the app key for the `app` role", |c| {
        c.args(["trust", "add", "--trust"])
            .arg(&trust)
            .arg("--root-key")
            .arg(keys.join("root.key.pem"))
            .arg("--key")
            .arg(keys.join("app.pub.pem"))
            .args(["--role", "app"]);
    })?;
    warden.ok("pack and sign the app (manifest unchanged)", |c| {
        c.args(["app", "pack", "--manifest"])
            .arg(&manifest)
            .arg("--wasm")
            .arg(&wasm)
            .arg("--key")
            .arg(keys.join("app.key.pem"))
            .args(["--version", "1", "-o"])
            .arg(&package);
    })?;
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

    warden.ok(
        "resolve the manifest's $NAMEs on the simulated board",
        |c| {
            c.args(["hwdef", "check"])
                .arg(root.join(BOARD))
                .arg("--manifest")
                .arg(&manifest);
        },
    )?;

    run_on_device(root, &warden, dir, &trust, &package)?;

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
) -> Result<()> {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        bail!(
            "the device part of the demo starts the real supervisor and sandbox (namespaces, \
             cgroups, per-app uids), which needs root: run it as root"
        );
    }
    let socket = dir.join("control.sock");
    let mut daemon = Command::new(root.join("target/debug/wardend"));
    daemon
        .arg("--state")
        .arg(dir.join("state"))
        .arg("--board")
        .arg(root.join(BOARD))
        .arg("--trust")
        .arg(trust)
        .arg("--socket")
        .arg(&socket)
        .arg("--worker")
        .arg(root.join("target/debug/warden-worker"))
        .args(["--cgroup-parent", "warden-demo"]);
    println!(
        "\n==> start the supervisor on the simulated board\n$ {}",
        render(&daemon)
    );
    let child = daemon.spawn().context("starting wardend")?;
    let daemon = Daemon(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if std::time::Instant::now() > deadline {
            bail!("wardend did not open its control socket");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
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

/// The supervisor, stopped (SIGTERM, then waited for) when the demo ends, however it ends.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.wait();
    }
}

struct Warden {
    bin: PathBuf,
}

impl Warden {
    fn command(&self, build: impl FnOnce(&mut Command)) -> Command {
        let mut cmd = Command::new(&self.bin);
        build(&mut cmd);
        cmd
    }

    fn output(&self, what: &str, cmd: &mut Command) -> Result<Output> {
        println!("\n==> {what}\n$ {}", render(cmd));
        let out = cmd
            .output()
            .with_context(|| format!("could not start {}", self.bin.display()))?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        Ok(out)
    }

    /// Runs a step that must succeed.
    fn ok(&self, what: &str, build: impl FnOnce(&mut Command)) -> Result<()> {
        let out = self.output(what, &mut self.command(build))?;
        if !out.status.success() {
            bail!("demo step failed: {what} ({})", out.status);
        }
        Ok(())
    }

    /// Runs a step that must be refused with an error message.
    fn refused(&self, what: &str, build: impl FnOnce(&mut Command)) -> Result<()> {
        let out = self.output(what, &mut self.command(build))?;
        if out.status.success() {
            bail!("demo step should have been refused but succeeded: {what}");
        }
        if out.stderr.is_empty() {
            bail!("demo step was refused without saying why: {what}");
        }
        println!("(refused, as it must be)");
        Ok(())
    }
}

/// A scratch directory removed when the demo ends, however it ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("warden-demo-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
