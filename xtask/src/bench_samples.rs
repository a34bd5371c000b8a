//! `cargo xtask bench samples`: what each app language costs, one sample per language built and
//! run the way a developer does it — build time (`warden app build`, cold), the `.wasm` size,
//! the size of the code the device compiled from it, the start time (start request → the app's
//! first line in its log, full sandbox) and the memory of its worker once the app idles.
//!
//! The languages are measured side by side in one run, on one supervisor, one app at a time,
//! with the Rust app as the reference each other language is compared with. The Python sample
//! is the Rust one (`blinky`) written again (`blinky-py`), so that pair differs only in the
//! language.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::Spread;
use crate::bench_runtime::{ProcMemory, proc_memory};
use crate::device::{Api, Daemon, Scratch, Warden};

const START: &str = "<!-- bench:samples -->";
const END: &str = "<!-- /bench:samples -->";
/// Start-time rounds per app (after one warm-up).
const ROUNDS: usize = 5;
/// How long an app idles before its memory is read.
const SETTLE: Duration = Duration::from_secs(2);

/// One sample per language: (language, sample).
const LANGUAGES: [(&str, &str); 5] = [
    ("Rust", "blinky"),
    ("C", "uart-echo"),
    ("Python", "blinky-py"),
    ("JavaScript", "telemetry"),
    ("AssemblyScript", "heartbeat"),
];

struct Row {
    language: &'static str,
    sample: &'static str,
    build: Duration,
    wasm_bytes: u64,
    code_bytes: u64,
    /// Start request to first line, ms.
    start: Spread,
    memory: ProcMemory,
}

pub(crate) fn run(root: &Path) -> Result<()> {
    crate::device::build_release(root)?;
    let names: Vec<&str> = LANGUAGES.iter().map(|(_, s)| *s).collect();
    // The SDK and every tool first, so the timed builds below measure building, not installing.
    crate::samples::build(root, &names)?;
    let _ = Command::new("sync").status();

    let scratch = Scratch::new("bench-samples")?;
    let dir = scratch.path();
    let bin_dir = root.join("target/release");
    let warden = Warden {
        bin: bin_dir.join("warden"),
        verbose: false,
    };
    let mut builds = Vec::new();
    for (language, sample) in LANGUAGES {
        println!("==> cold build of {sample} ({language})");
        builds.push(cold_build(root, &warden.bin, dir, sample)?);
    }
    let (app_key, trust) = warden.keys_and_trust(dir)?;
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 telemetry.warden.test elsewhere.warden.test\n",
    )?;
    let mut daemon = Daemon::command(root, &bin_dir, dir, &trust, None);
    daemon.arg("--hosts").arg(&hosts);
    let daemon = Daemon::start(daemon, dir)?;
    let api = Api {
        socket: daemon.socket.clone(),
    };
    let mut rows = Vec::new();
    for ((language, sample), (build, wasm)) in LANGUAGES.into_iter().zip(builds) {
        println!("==> {sample} ({language}) on the device");
        let manifest = root
            .join("sample-apps")
            .join(sample)
            .join("app_manifest.json");
        let id = component_id(&manifest)?;
        let package = dir.join(format!("{sample}.wpkg"));
        warden.pack(&manifest, &wasm, &app_key, 1, &package)?;
        let before = store_dirs(&dir.join("state"))?;
        api.sideload(&package)?;
        api.wait_state(&id, &["running"])?;
        let code_bytes = code_size(&dir.join("state"), &before, sample)?;
        let mut start = Vec::new();
        let mut memory = None;
        for round in 0..=ROUNDS {
            api.call("POST", &format!("/apps/{id}/stop"))?;
            api.wait_state(&id, &["stopped"])?;
            // The first line the app itself writes, on any stream.
            let (took, _) =
                api.start_until_line(&id, api.last_seq(&id)?, |stream| stream != "supervisor")?;
            if round > 0 {
                start.push(took.as_secs_f64() * 1000.0);
            }
            if round == ROUNDS {
                std::thread::sleep(SETTLE);
                memory = Some(proc_memory(api.running_pid(&id)?)?);
            }
        }
        api.call("DELETE", &format!("/apps/{id}?storage=wipe"))?;
        rows.push(Row {
            language,
            sample,
            build,
            wasm_bytes: std::fs::metadata(&wasm)?.len(),
            code_bytes,
            start: Spread::of(start)?,
            memory: memory.context("no memory reading")?,
        });
    }
    drop(daemon);
    let section = render(&rows);
    println!("\n{section}");
    crate::bench::write_section(root, START, END, &section)
}

/// Builds `sample` with `warden app build` from nothing cached that belongs to the app (Rust:
/// a fresh target directory; the other languages keep no cache between builds).
fn cold_build(root: &Path, warden: &Path, dir: &Path, sample: &str) -> Result<(Duration, PathBuf)> {
    let out = dir.join(format!("{sample}.wasm"));
    let target = dir.join(format!("target-{sample}"));
    let started = Instant::now();
    let status = Command::new(warden)
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .args(["app", "build"])
        .arg(root.join("sample-apps").join(sample))
        .arg("-o")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .context("running warden app build")?;
    let took = started.elapsed();
    if !status.success() {
        bail!("warden app build {sample} failed ({status})");
    }
    let _ = std::fs::remove_dir_all(&target);
    Ok((took, out))
}

fn component_id(manifest: &Path) -> Result<String> {
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest)?)?;
    value["ComponentId"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{} has no ComponentId", manifest.display()))
}

/// The app store directories under `STATE/store/` (one per installed package).
fn store_dirs(state: &Path) -> Result<Vec<PathBuf>> {
    let store = state.join("store");
    if !store.exists() {
        return Ok(Vec::new());
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(&store).with_context(|| format!("{}", store.display()))? {
        dirs.push(entry?.path());
    }
    Ok(dirs)
}

/// The size of the code the device compiled at install: `code.cwasm` in the store directory
/// the install added (wardend's `install::CODE_FILE`).
fn code_size(state: &Path, before: &[PathBuf], sample: &str) -> Result<u64> {
    let added: Vec<PathBuf> = store_dirs(state)?
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    match added.as_slice() {
        [dir] => {
            let code = dir.join("code.cwasm");
            Ok(std::fs::metadata(&code)
                .with_context(|| format!("{} (compiled {sample})", code.display()))?
                .len())
        }
        other => bail!(
            "installing {sample} added {} store directories, not one",
            other.len()
        ),
    }
}

fn render(rows: &[Row]) -> String {
    let (model, cores, _) = crate::bench::cpu();
    let reference = &rows[0];
    let ratio = |a: f64, b: f64| match a / b {
        r if !r.is_finite() => "-".to_owned(),
        r if r < 0.1 => format!("{r:.2}×"),
        r if r < 10.0 => format!("{r:.1}×"),
        r => format!("{r:.0}×"),
    };
    let mut out = format!(
        "{START}\n## Apps per language (`cargo xtask bench samples`)\n\nMeasured on {} ({} logical CPUs). Built and run as a \
         developer does: `warden app build` (cold: nothing of the app cached), installed on \
         `wardend` (release build, simulated board, full sandbox), one app at a time. Start: the \
         start request to the app's first log line, median of {ROUNDS} (min–max). Memory: the \
         worker's `/proc/PID/smaps_rollup` {} s after its start (RSS / PSS). × is against the \
         Rust app.\n\n\
         | language | sample | build | `.wasm` | compiled code | start | worker memory (RSS / PSS) |\n\
         |---|---|---|---|---|---|---|\n",
        model,
        cores,
        SETTLE.as_secs()
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | `{}` | {:.1} s ({}) | {} KiB ({}) | {} KiB ({}) | {:.0} ms ({:.0}–{:.0}; {}) | {:.1} / {:.1} MiB ({}) |\n",
            r.language,
            r.sample,
            r.build.as_secs_f64(),
            ratio(r.build.as_secs_f64(), reference.build.as_secs_f64()),
            r.wasm_bytes.div_ceil(1024),
            ratio(r.wasm_bytes as f64, reference.wasm_bytes as f64),
            r.code_bytes.div_ceil(1024),
            ratio(r.code_bytes as f64, reference.code_bytes as f64),
            r.start.median,
            r.start.min,
            r.start.max,
            ratio(r.start.median, reference.start.median),
            r.memory.rss as f64 / 1024.0,
            r.memory.pss as f64 / 1024.0,
            ratio(r.memory.pss as f64, reference.memory.pss as f64),
        ));
    }
    out.push_str(&format!(
        "\nPython and JavaScript apps carry their interpreter (CPython; SpiderMonkey in \
         StarlingMonkey) inside every component: that is their size, their compiled code, \
         their start and most of their memory. Rust, C and AssemblyScript compile the app \
         alone. Load average before the run: {}.\n{END}",
        crate::bench::load_average()
    ));
    out
}
