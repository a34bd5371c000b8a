//! `warden app run --sim [DIR]`: one app on the simulated board, in the full sandbox, with its
//! log on the terminal — no device needed.
//!
//! It builds the project (`warden app build`), makes throw-away development keys and a trust
//! store, packs and signs the app with its manifest unchanged, starts the real supervisor
//! (`wardend`, beside this binary) on the simulated board with its state in a scratch
//! directory, installs the app there, and prints its log as it grows — until the app exits,
//! `--for` seconds pass, or Ctrl-C. Then it stops the supervisor (which stops the app and
//! unmounts its storage) and removes the scratch directory. Like the supervisor, it needs root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use warden_policy::keys::{KeyRole, PrivateKey};
use warden_policy::package::{self, Limits, PackRequest, PackageKind, PayloadInput, PayloadRole};
use warden_policy::trust::TrustStore;

use crate::build::{Project, Sdk};
use crate::cli::AppRunArgs;
use crate::package_cmd::FilePayload;
use crate::{client, output};

/// The simulated board's file, relative to a Warden checkout.
const SIM_BOARD: &str = "buildroot-overlay/board/warden-sim/board.json";
/// How long the supervisor gets to open its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one long poll of the log waits for a new line.
const POLL_MS: u64 = 500;

pub(crate) fn run(args: &AppRunArgs) -> Result<()> {
    if !args.sim {
        bail!(
            "`warden app run` runs an app on the simulated board and needs --sim; on a device, \
             pack the app and use `warden device sideload`"
        );
    }
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "the supervisor and its sandbox (namespaces, cgroups, a uid per app) need root: \
             run `warden app run --sim` as root"
        );
    }
    let project = Project::open(&args.dir)?;
    let sdk = Sdk::locate(args.sdk.as_deref())?;
    let bin_dir = std::env::current_exe()
        .context("locating the warden binary")?
        .parent()
        .map(Path::to_path_buf)
        .context("the warden binary has no directory")?;
    let board = match &args.board {
        Some(board) => board.clone(),
        None => sdk.checkout()?.join(SIM_BOARD),
    };
    let scratch = tempfile::Builder::new()
        .prefix("warden-run-")
        .tempdir()
        .context("creating a scratch directory")?;
    let wasm = crate::build::build(
        &project.dir,
        Some(&scratch.path().join("app.wasm")),
        Some(&sdk.root),
    )?;
    let (package, trust) = sign(&project, &wasm, scratch.path())?;

    // Ctrl-C reaches only this process (the supervisor runs in its own process group), which
    // then stops the supervisor in order.
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupted))
        .context("watching for Ctrl-C")?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&interrupted))
        .context("watching for SIGTERM")?;

    let socket = scratch.path().join("control.sock");
    let mut wardend = Command::new(bin_dir.join("wardend"));
    wardend
        .arg("--state")
        .arg(scratch.path().join("state"))
        .arg("--board")
        .arg(&board)
        .arg("--trust")
        .arg(&trust)
        .arg("--socket")
        .arg(&socket)
        .arg("--worker")
        .arg(bin_dir.join("warden-worker"))
        .arg("--cgroup-parent")
        .arg(format!("warden-run-{}", std::process::id()));
    if let Some(hosts) = &args.hosts {
        let hosts = std::path::absolute(hosts).with_context(|| format!("{}", hosts.display()))?;
        wardend.arg("--hosts").arg(hosts);
    }
    std::os::unix::process::CommandExt::process_group(&mut wardend, 0);
    output::line(format!(
        "==> starting wardend on the simulated board ({})",
        board.display()
    ));
    let supervisor = Supervisor {
        child: wardend
            .spawn()
            .with_context(|| format!("starting {}", bin_dir.join("wardend").display()))?,
    };
    wait_for_socket(&socket, &interrupted)?;
    let id = project.manifest.component_id.to_string();
    install(&socket, &package)?;
    output::line(format!(
        "==> {} ({id}) installed and started; its log follows ({})",
        project.name(),
        match args.seconds {
            Some(s) => format!("for {s} s, or until it exits or Ctrl-C"),
            None => "until it exits or Ctrl-C".into(),
        }
    ));
    output::line(format!(
        "    the board: warden sim --socket {} show",
        socket.display()
    ));
    let deadline = args
        .seconds
        .map(|s| Instant::now() + Duration::from_secs(s));
    let end = follow(&socket, &id, deadline, &interrupted)?;
    drop(supervisor);
    drop(scratch);
    match end {
        End::Exited => {
            output::line("==> the app exited with status 0");
            Ok(())
        }
        End::Stopped(why) => {
            output::line(format!("==> stopped: {why}"));
            Ok(())
        }
        End::Failed(report) => bail!("the app failed: {report}"),
    }
}

/// The supervisor child, stopped with SIGTERM (it stops every app and unmounts their storage)
/// and waited for however `run` ends.
struct Supervisor {
    child: Child,
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Development keys, a trust store that honours them, and the signed package; all in `dir`.
fn sign(project: &Project, wasm: &Path, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let root = PrivateKey::generate().context("generating a root key")?;
    let app = PrivateKey::generate().context("generating an app key")?;
    let trust = TrustStore::init(&root, "warden app run --sim (throw-away)")?;
    let trust = TrustStore::add_key(
        trust.as_bytes(),
        &root,
        app.public_key(),
        KeyRole::App,
        "warden app run --sim (throw-away)",
    )?;
    let trust_path = dir.join("trust.json");
    std::fs::write(&trust_path, trust)?;
    let manifest_path = project.dir.join("app_manifest.json");
    let manifest_text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("reading {}", manifest_path.display()))?;
    let code = FilePayload(wasm.to_path_buf());
    let request = PackRequest {
        kind: PackageKind::App,
        manifest_text: &manifest_text,
        version: 1,
        payloads: vec![PayloadInput {
            name: project.manifest.entry_payload_name().to_owned(),
            role: PayloadRole::Entry,
            target: None,
            engine: None,
            source: &code,
        }],
        limits: Limits::default(),
    };
    let package_path = dir.join("app.wpkg");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&package_path)?);
    package::pack(&request, &app, &mut out).context("packing the app")?;
    std::io::Write::flush(&mut out)?;
    Ok((package_path, trust_path))
}

fn wait_for_socket(socket: &Path, interrupted: &AtomicBool) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if interrupted.load(Ordering::Relaxed) {
            bail!("interrupted while wardend was starting");
        }
        if Instant::now() > deadline {
            bail!(
                "wardend did not open its control socket within {} s (its messages are above)",
                START_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn install(socket: &Path, package: &Path) -> Result<()> {
    let mut file = std::fs::File::open(package)?;
    let len = file.metadata()?.len();
    output::line("==> installing (verified, then compiled in a confined worker)");
    let (status, value) = client::request(socket, "POST", "/images", Some(&mut file), len)?;
    client::checked(status, value)?;
    Ok(())
}

/// How following the app ended.
enum End {
    /// The app exited with status 0.
    Exited,
    /// Ctrl-C, or `--for` ran out, with the app still running.
    Stopped(String),
    /// The app failed and will not be restarted, with the supervisor's report.
    Failed(String),
}

/// Prints the app's log as it grows, and watches its state.
fn follow(
    socket: &Path,
    id: &str,
    deadline: Option<Instant>,
    interrupted: &AtomicBool,
) -> Result<End> {
    let mut after = 0u64;
    let mut restarts = 0;
    loop {
        let logs = client::call(
            socket,
            "GET",
            &format!("/apps/{id}/logs?after={after}&wait_ms={POLL_MS}"),
        )?;
        for line in logs["lines"].as_array().into_iter().flatten() {
            after = after.max(line["seq"].as_u64().unwrap_or(after));
            let stream = line["stream"].as_str().unwrap_or("-");
            let text = line["text"].as_str().unwrap_or_default();
            output::line(format!("[{stream}] {text}"));
        }
        let app = client::call(socket, "GET", &format!("/apps/{id}"))?;
        let count = app["restarts"].as_u64().unwrap_or(0);
        if count > restarts {
            restarts = count;
            output::line(format!(
                "==> the app failed ({}); the supervisor restarts it (restart {count})",
                failure(&app)
            ));
        }
        match app["status"]["state"].as_str() {
            // Its last lines may have arrived with the exit: one more read, then done.
            Some("exited") if logs["lines"].as_array().is_some_and(Vec::is_empty) => {
                return Ok(End::Exited);
            }
            Some("quarantined") => return Ok(End::Failed(failure(&app))),
            _ => {}
        }
        if interrupted.load(Ordering::Relaxed) {
            return Ok(End::Stopped("Ctrl-C".into()));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(End::Stopped(
                "--for ran out; the app was still running".into(),
            ));
        }
    }
}

fn failure(app: &Value) -> String {
    app["last_failure"]
        .as_str()
        .unwrap_or("no report")
        .to_owned()
}
