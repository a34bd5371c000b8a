//! A scratch device on this machine, shared by the demo and the benchmarks: a scratch
//! directory, the `warden` CLI runner, development keys with a root-signed trust store, and
//! `wardend` on the simulated board, stopped however the caller ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use warden_cli::client;

use crate::render;

/// The simulated board every local run uses.
pub(crate) const BOARD: &str = "buildroot-overlay/board/warden-sim/board.json";

/// A scratch directory removed when dropped, however the run ends.
#[derive(Debug)]
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("warden-{name}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the `warden` CLI; `verbose` prints each step and its output (the demo), otherwise
/// output is shown only when a step fails.
#[derive(Debug)]
pub(crate) struct Warden {
    pub(crate) bin: PathBuf,
    pub(crate) verbose: bool,
}

impl Warden {
    pub(crate) fn command(&self, build: impl FnOnce(&mut Command)) -> Command {
        let mut cmd = Command::new(&self.bin);
        build(&mut cmd);
        cmd
    }

    fn output(&self, what: &str, cmd: &mut Command) -> Result<Output> {
        if self.verbose {
            println!("\n==> {what}\n$ {}", render(cmd));
        }
        let out = cmd
            .output()
            .with_context(|| format!("could not start {}", self.bin.display()))?;
        if self.verbose {
            print!("{}", String::from_utf8_lossy(&out.stdout));
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(out)
    }

    /// Runs a step that must succeed.
    pub(crate) fn ok(&self, what: &str, build: impl FnOnce(&mut Command)) -> Result<()> {
        let mut cmd = self.command(build);
        let out = self.output(what, &mut cmd)?;
        if !out.status.success() {
            bail!(
                "step failed: {what} ({}): {}\n{}",
                out.status,
                render(&cmd),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Runs a step that must be refused with an error message.
    pub(crate) fn refused(&self, what: &str, build: impl FnOnce(&mut Command)) -> Result<()> {
        let out = self.output(what, &mut self.command(build))?;
        if out.status.success() {
            bail!("step should have been refused but succeeded: {what}");
        }
        if out.stderr.is_empty() {
            bail!("step was refused without saying why: {what}");
        }
        if self.verbose {
            println!("(refused, as it must be)");
        }
        Ok(())
    }

    /// Makes a root key and an app-signing key in `dir/keys`, and a trust store `dir/trust.json`
    /// signed by the root key that trusts the app key for the `app` role. Returns the app key.
    pub(crate) fn keys_and_trust(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        let keys = dir.join("keys");
        let trust = dir.join("trust.json");
        self.ok("make a root key", |c| {
            c.args(["keys", "new", "--role", "root", "-o"]).arg(&keys);
        })?;
        self.ok("make an app-signing key", |c| {
            c.args(["keys", "new", "--role", "app", "-o"]).arg(&keys);
        })?;
        self.ok("create a trust store signed by the root key", |c| {
            c.args(["trust", "init", "--root-key"])
                .arg(keys.join("root.key.pem"))
                .arg("-o")
                .arg(&trust);
        })?;
        self.ok("trust the app key for the `app` role", |c| {
            c.args(["trust", "add", "--trust"])
                .arg(&trust)
                .arg("--root-key")
                .arg(keys.join("root.key.pem"))
                .arg("--key")
                .arg(keys.join("app.pub.pem"))
                .args(["--role", "app"]);
        })?;
        Ok((keys.join("app.key.pem"), trust))
    }

    /// Packs and signs `wasm` with its manifest as version `version`.
    pub(crate) fn pack(
        &self,
        manifest: &Path,
        wasm: &Path,
        key: &Path,
        version: u64,
        out: &Path,
    ) -> Result<()> {
        self.ok("pack and sign the app (manifest unchanged)", |c| {
            c.args(["app", "pack", "--manifest"])
                .arg(manifest)
                .arg("--wasm")
                .arg(wasm)
                .arg("--key")
                .arg(key)
                .args(["--version", &version.to_string(), "-o"])
                .arg(out);
        })
    }
}

/// Builds the supervisor, the worker and the CLI in release mode (`target/release`).
pub(crate) fn build_release(root: &Path) -> Result<()> {
    crate::step(
        "build the supervisor, the worker and the CLI (release)",
        crate::cargo(root).args([
            "build",
            "--release",
            "--locked",
            "-p",
            "wardend",
            "-p",
            "warden-worker",
            "-p",
            "warden-cli",
        ]),
    )
}

/// Builds the worker that devices run apps in: `warden-worker` without the `compile` feature
/// (no Cranelift), statically linked (static-pie: no dynamic loader work at each start, still
/// position independent), in the `run-only` profile for the host triple named explicitly —
/// `target/<host>/run-only/`, never replacing the compiler build of `target/release/`, and the
/// static flag reaches only target code, not build scripts or proc macros. It is told the
/// engine fingerprint of `compiler` (a `warden-worker` with the compiler, built first): a
/// run-only build cannot compute it. Debug and release builds share the fingerprint.
pub(crate) fn build_run_only_worker(root: &Path, compiler: &Path) -> Result<PathBuf> {
    let out = Command::new(compiler)
        .arg("fingerprint")
        .output()
        .with_context(|| format!("running {} fingerprint", compiler.display()))?;
    if !out.status.success() {
        bail!(
            "{} fingerprint failed: {}",
            compiler.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let fingerprint = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let host = host_triple()?;
    // The getrandom crate finds glibc's getrandom() through dlsym, which a static binary
    // cannot do; it would then fall back to opening /dev/random, which the worker's empty root
    // does not have. Named explicitly, it calls getrandom() (a syscall the profile allows).
    let static_flags = "-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\"";
    let rustflags = match std::env::var("RUSTFLAGS") {
        Ok(flags) if !flags.trim().is_empty() => format!("{flags} {static_flags}"),
        _ => static_flags.to_owned(),
    };
    crate::step(
        "build the run-only worker (no compiler, static-pie)",
        crate::cargo(root)
            .env("WARDEN_ENGINE_FINGERPRINT", &fingerprint)
            .env("RUSTFLAGS", rustflags)
            .args([
                "build",
                "--locked",
                "--profile",
                "run-only",
                "--target",
                &host,
                "-p",
                "warden-worker",
                "--no-default-features",
                "--bins",
            ]),
    )?;
    Ok(root
        .join("target")
        .join(host)
        .join("run-only/warden-worker"))
}

/// The triple rustc builds for by default (`rustc -vV`'s `host:`).
fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("rustc -vV named no host triple")
}

/// Whether this process runs as root (the supervisor and its sandbox need it).
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `wardend` on the simulated board, stopped (SIGTERM, then waited for) when dropped.
#[derive(Debug)]
pub(crate) struct Daemon {
    child: Child,
    pub(crate) socket: PathBuf,
}

impl Daemon {
    /// The command that starts `wardend` from `bin_dir` with its state in `dir/state`. Apps
    /// run in `run_only` (a worker built without the compiler, [`build_run_only_worker`]) if
    /// given, and `bin_dir`'s `warden-worker` compiles them; otherwise that one does both.
    pub(crate) fn command(
        root: &Path,
        bin_dir: &Path,
        dir: &Path,
        trust: &Path,
        run_only: Option<&Path>,
    ) -> Command {
        let mut daemon = Command::new(bin_dir.join("wardend"));
        daemon
            .arg("--state")
            .arg(dir.join("state"))
            .arg("--board")
            .arg(root.join(BOARD))
            .arg("--trust")
            .arg(trust)
            .arg("--socket")
            .arg(dir.join("control.sock"))
            .arg("--worker")
            .arg(run_only.map_or_else(|| bin_dir.join("warden-worker"), Path::to_path_buf))
            .arg("--compiler")
            .arg(bin_dir.join("warden-worker"))
            .arg("--cgroup-parent")
            .arg(format!("warden-xtask-{}", std::process::id()));
        daemon
    }

    /// Starts `cmd` (from [`Daemon::command`]) and waits for its control socket.
    pub(crate) fn start(mut cmd: Command, dir: &Path) -> Result<Daemon> {
        if !is_root() {
            bail!(
                "this starts the real supervisor and sandbox (namespaces, cgroups, per-app \
                 uids), which needs root: run it as root"
            );
        }
        let socket = dir.join("control.sock");
        let child = cmd.spawn().context("starting wardend")?;
        let daemon = Daemon { child, socket };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&daemon.socket).is_err() {
            if Instant::now() > deadline {
                bail!("wardend did not open its control socket");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// The control API, as the benchmarks use it.
pub(crate) struct Api {
    pub(crate) socket: PathBuf,
}

impl Api {
    pub(crate) fn call(&self, method: &str, path: &str) -> Result<Value> {
        client::call(&self.socket, method, path)
    }

    pub(crate) fn sideload(&self, package: &Path) -> Result<()> {
        let mut file = std::fs::File::open(package)?;
        let len = file.metadata()?.len();
        let (status, value) =
            client::request(&self.socket, "POST", "/images", Some(&mut file), len)?;
        client::checked(status, value).map(drop)
    }

    /// Starts `id` and waits for its first stdout line after log sequence `after`; returns the
    /// time from sending the start request to receiving that line, and the line's sequence.
    pub(crate) fn cold_start(&self, id: &str, after: u64) -> Result<(Duration, u64)> {
        self.start_until_line(id, after, |stream| stream == "stdout")
    }

    /// Starts `id` and waits (up to 30 s) for its first line after log sequence `after` on a
    /// stream `counts` accepts; returns the time from sending the start request to receiving
    /// that line, and the line's sequence.
    pub(crate) fn start_until_line(
        &self,
        id: &str,
        mut after: u64,
        counts: impl Fn(&str) -> bool,
    ) -> Result<(Duration, u64)> {
        let started = Instant::now();
        self.call("POST", &format!("/apps/{id}/start"))?;
        let deadline = started + Duration::from_secs(30);
        loop {
            let answer = self.call(
                "GET",
                &format!("/apps/{id}/logs?after={after}&wait_ms=5000"),
            )?;
            for line in answer["lines"].as_array().into_iter().flatten() {
                after = line["seq"].as_u64().unwrap_or(after);
                if line["stream"].as_str().is_some_and(&counts) {
                    return Ok((started.elapsed(), after));
                }
            }
            if Instant::now() > deadline {
                bail!("app {id} printed nothing within 30 s of its start");
            }
        }
    }

    /// The sequence number of the newest line in the app's log.
    pub(crate) fn last_seq(&self, id: &str) -> Result<u64> {
        let answer = self.call("GET", &format!("/apps/{id}/logs"))?;
        Ok(answer["lines"]
            .as_array()
            .and_then(|lines| lines.last())
            .and_then(|line| line["seq"].as_u64())
            .unwrap_or(0))
    }

    pub(crate) fn state(&self, id: &str) -> Result<Value> {
        Ok(self.call("GET", &format!("/apps/{id}"))?["status"].clone())
    }

    pub(crate) fn wait_state(&self, id: &str, states: &[&str]) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.state(id)?;
            if states.iter().any(|s| status["state"] == *s) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("app {id} is {status}, not {states:?}, after 30 s");
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    pub(crate) fn running_pid(&self, id: &str) -> Result<u32> {
        let status = self.state(id)?;
        status["pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .with_context(|| format!("app {id} is {status}, not running"))
    }
}
