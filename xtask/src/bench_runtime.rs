//! `cargo xtask bench`, runtime part: in one run, side by side on the same machine —
//!
//! - warden cold start: `POST /apps/{id}/start` on the control socket until the app's first
//!   stdout line reaches its log (a long poll of `logs?wait_ms=`), full sandbox, app precompiled
//!   at install;
//! - `wasmtime run --allow-precompiled` of the same app, compiled by `wasmtime compile`, from
//!   spawn until its first stdout line (the wasmtime CLI is installed by this command);
//! - `bwrap --unshare-all` of `/bin/true`, and `/bin/true` alone, spawn to exit;
//! - the private memory (USS) of an idle worker, the supervisor's RSS, and its descriptors and
//!   RSS after 1000 start/stop cycles of that idle app.
//!
//! Written to the `## Runtime` section of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::device::{Api, Daemon, Scratch, Warden};
use crate::step;

const START: &str = "<!-- bench:runtime -->";
const END: &str = "<!-- /bench:runtime -->";

/// Timed runs per measurement (after one warm-up).
const RUNS: usize = 101;
/// Start/stop cycles for the leak check.
const CYCLES: usize = 1000;

/// The wasmtime CLI that matches the engine the workers link.
const WASMTIME_CLI: &str = "48.0.8";

const HELLO_ID: &str = "6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b";
/// The idle app, installed under four ids: with one worker alone, every page of the worker
/// binary it touched counts as its own ("unique"); with four, what they share is shared.
const IDLE_IDS: [&str; 4] = [
    "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
    "1f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
    "2f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
    "3f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0",
];
const IDLE_ID: &str = IDLE_IDS[0];

/// A WASI preview-1 command that says "ready" and then sleeps, an hour at a time, forever: the
/// idle app whose worker's memory is measured and which is started and stopped 1000 times.
const IDLE_APP: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ready\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    ;; one subscription at 64: tag 0 (clock) at 72, clock id 1 (monotonic) at 80,
    ;; timeout (ns, relative) at 88
    (i32.store8 (i32.const 72) (i32.const 0))
    (i32.store (i32.const 80) (i32.const 1))
    (i64.store (i32.const 88) (i64.const 3600000000000))
    (loop $sleep
      (drop (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160)))
      (br $sleep))))"#;

/// Median and spread of a set of timings.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: Duration,
    p10: Duration,
    p90: Duration,
}

impl Spread {
    fn of(mut times: Vec<Duration>) -> Result<Spread> {
        if times.is_empty() {
            bail!("no timings");
        }
        times.sort_unstable();
        let at = |q: usize| times[(times.len() - 1) * q / 100];
        Ok(Spread {
            median: at(50),
            p10: at(10),
            p90: at(90),
        })
    }

    fn render(&self) -> String {
        format!(
            "{} ({}–{})",
            ms(self.median),
            ms(self.p10).trim_end_matches(" ms"),
            ms(self.p90)
        )
    }
}

/// What one run measured.
#[derive(Debug)]
struct Measured {
    warden: Spread,
    wasmtime: Spread,
    wasmtime_exit: Spread,
    bwrap: Spread,
    true_alone: Spread,
    /// One per concurrently idle worker.
    worker: Vec<ProcMemory>,
    supervisor_before: Supervisor,
    supervisor_after: Supervisor,
    cycle: Spread,
    hello_wasm: u64,
    worker_syscalls: usize,
    wasmtime_version: String,
    bwrap_version: String,
}

/// A process's memory, from `/proc/PID/smaps_rollup`, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcMemory {
    pub(crate) rss: u64,
    pub(crate) pss: u64,
    pub(crate) uss: u64,
}

#[derive(Debug, Clone, Copy)]
struct Supervisor {
    rss_kib: u64,
    fds: usize,
    threads: usize,
}

pub(crate) fn run(root: &Path) -> Result<()> {
    crate::setup::ensure_rust_targets(root)?;
    crate::setup::ensure_commands(&[("bwrap", "bubblewrap")])?;
    let wasmtime = ensure_wasmtime_cli(root)?;
    crate::device::build_release(root)?;
    let run_only =
        crate::device::build_run_only_worker(root, &root.join("target/release/warden-worker"))?;
    let hello = crate::guests::build_guest(root, "hello")?;
    // Freshly written binaries are dirty page cache; written back, they count as shared, clean
    // file pages and not as anybody's private memory.
    let _ = Command::new("sync").status();

    let scratch = Scratch::new("bench")?;
    let dir = scratch.path();
    let bin_dir = root.join("target/release");
    let warden = Warden {
        bin: bin_dir.join("warden"),
        verbose: false,
    };
    let (app_key, trust) = warden.keys_and_trust(dir)?;
    let hello_pkg = dir.join("hello.wpkg");
    warden.pack(
        &root.join("sample-apps/hello/app_manifest.json"),
        &hello,
        &app_key,
        1,
        &hello_pkg,
    )?;
    let idle_wasm = dir.join("idle.wasm");
    std::fs::write(&idle_wasm, wat::parse_str(IDLE_APP)?)?;
    let mut idle_pkgs = Vec::new();
    for (n, id) in IDLE_IDS.iter().enumerate() {
        let manifest = dir.join(format!("idle{n}_manifest.json"));
        std::fs::write(
            &manifest,
            format!(
                r#"{{"SchemaVersion": 1, "Name": "idle{n}", "ComponentId": "{id}",
                    "EntryPoint": "/bin/idle.wasm", "CmdArgs": [], "Capabilities": {{}},
                    "ApplicationType": "Default"}}"#
            ),
        )?;
        let package = dir.join(format!("idle{n}.wpkg"));
        warden.pack(&manifest, &idle_wasm, &app_key, 1, &package)?;
        idle_pkgs.push(package);
    }

    let daemon = Daemon::start(
        Daemon::command(root, &bin_dir, dir, &trust, Some(&run_only)),
        dir,
    )?;
    let api = Api {
        socket: daemon.socket.clone(),
    };
    // A sideload starts the app: let hello finish and stop the idle app before measuring.
    api.sideload(&hello_pkg)?;
    api.wait_state(HELLO_ID, &["exited"])?;
    for (id, package) in IDLE_IDS.iter().zip(&idle_pkgs) {
        api.sideload(package)?;
        api.call("POST", &format!("/apps/{id}/stop"))?;
        api.wait_state(id, &["stopped"])?;
    }
    let status = api.call("GET", "/status")?;
    let worker_syscalls = status["seccomp"]["worker"]
        .as_array()
        .map(Vec::len)
        .with_context(|| format!("no seccomp profile in the status: {status}"))?;

    let cwasm = dir.join("hello.cwasm");
    let status = Command::new(&wasmtime)
        .arg("compile")
        .arg(&hello)
        .arg("-o")
        .arg(&cwasm)
        .status()
        .context("wasmtime compile")?;
    if !status.success() {
        bail!("wasmtime compile failed ({status})");
    }
    // Interleaved, one of each per round, so that whatever else the machine does in the
    // meantime weighs on both alike.
    println!("==> (a) warden cold start and (b) wasmtime run --allow-precompiled, {RUNS} rounds");
    let mut after = api.last_seq(HELLO_ID)?;
    let mut times = Vec::with_capacity(RUNS);
    let mut first = Vec::with_capacity(RUNS);
    let mut exit = Vec::with_capacity(RUNS);
    for run in 0..=RUNS {
        let (elapsed, seq) = api.cold_start(HELLO_ID, after)?;
        after = seq;
        api.wait_state(HELLO_ID, &["exited"])?;
        let (to_line, to_exit) = first_line_and_exit(
            Command::new(&wasmtime)
                .args(["run", "--allow-precompiled"])
                .arg(&cwasm)
                .args(["--greeting", "world"]),
        )?;
        if run > 0 {
            times.push(elapsed);
            first.push(to_line);
            exit.push(to_exit);
        }
    }
    let warden_start = Spread::of(times)?;

    println!("==> (c) bwrap --unshare-all /bin/true and /bin/true, {RUNS} runs each");
    let bwrap = spawn_to_exit(Command::new("bwrap").args([
        "--unshare-all",
        "--ro-bind",
        "/",
        "/",
        "/bin/true",
    ]))?;
    let true_alone = spawn_to_exit(&mut Command::new("/bin/true"))?;

    println!("==> idle worker memory, supervisor memory, {CYCLES} start/stop cycles");
    let supervisor_before = supervisor(daemon.pid())?;
    let mut workers = Vec::new();
    for id in IDLE_IDS {
        api.cold_start(id, api.last_seq(id)?)?;
        workers.push(api.running_pid(id)?);
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut worker = Vec::new();
    for pid in workers {
        worker.push(proc_memory(pid)?);
    }
    for id in IDLE_IDS {
        api.call("POST", &format!("/apps/{id}/stop"))?;
        api.wait_state(id, &["stopped"])?;
    }
    let mut idle_after = api.last_seq(IDLE_ID)?;
    let mut cycle_times = Vec::with_capacity(CYCLES);
    for _ in 0..CYCLES {
        let started = Instant::now();
        let (_, seq) = api.cold_start(IDLE_ID, idle_after)?;
        idle_after = seq;
        api.call("POST", &format!("/apps/{IDLE_ID}/stop"))?;
        api.wait_state(IDLE_ID, &["stopped"])?;
        cycle_times.push(started.elapsed());
    }
    // Connection threads end a moment after their answer (lingering close): let them.
    let mut supervisor_after = supervisor(daemon.pid())?;
    for _ in 0..50 {
        if supervisor_after.threads <= supervisor_before.threads
            && supervisor_after.fds <= supervisor_before.fds
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        supervisor_after = supervisor(daemon.pid())?;
    }
    if supervisor_after.threads > supervisor_before.threads
        || supervisor_after.fds > supervisor_before.fds
    {
        println!(
            "supervisor after the cycles: threads {:?}, descriptors {:?}",
            names(&format!("/proc/{}/task", daemon.pid()), "comm"),
            names(&format!("/proc/{}/fd", daemon.pid()), ""),
        );
    }
    drop(daemon);

    let measured = Measured {
        warden: warden_start,
        wasmtime: Spread::of(first)?,
        wasmtime_exit: Spread::of(exit)?,
        bwrap,
        true_alone,
        worker,
        supervisor_before,
        supervisor_after,
        cycle: Spread::of(cycle_times)?,
        hello_wasm: std::fs::metadata(&hello)?.len(),
        worker_syscalls,
        wasmtime_version: crate::bench::first_line(&wasmtime.to_string_lossy(), &["--version"]),
        bwrap_version: crate::bench::first_line("bwrap", &["--version"]),
    };
    let section = render(&measured)?;
    println!("\n{section}");
    crate::bench::write_section(root, START, END, &section)
}

/// Time from spawn to the first stdout line, and to exit (which must be a success).
fn first_line_and_exit(cmd: &mut Command) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("could not run {cmd:?}"))?;
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let to_line = started.elapsed();
    let status = child.wait()?;
    let to_exit = started.elapsed();
    if !status.success() || line.is_empty() {
        bail!("{cmd:?} failed ({status}) or printed nothing");
    }
    Ok((to_line, to_exit))
}

/// Spawn-to-exit times of `cmd`, after one warm-up; every run must succeed.
fn spawn_to_exit(cmd: &mut Command) -> Result<Spread> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    Spread::of(crate::bench::wall_times(cmd, RUNS)?)
}

pub(crate) fn proc_memory(pid: u32) -> Result<ProcMemory> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcMemory {
        rss: field("Rss:"),
        pss: field("Pss:"),
        uss: field("Private_Clean:") + field("Private_Dirty:"),
    })
}

fn supervisor(pid: u32) -> Result<Supervisor> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok(Supervisor {
        rss_kib: field("VmRSS:"),
        fds,
        threads: usize::try_from(field("Threads:")).unwrap_or(0),
    })
}

/// What each entry of a `/proc` directory is: its `file` (a thread's `comm`), or where the
/// link points (a descriptor).
fn names(dir: &str, file: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .map(|e| {
            let path = e.path();
            if file.is_empty() {
                std::fs::read_link(&path)
                    .map_or_else(|e| e.to_string(), |t| t.display().to_string())
            } else {
                std::fs::read_to_string(path.join(file))
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            }
        })
        .collect()
}

/// Installs the wasmtime CLI into `target/tools` once (about 7 minutes on 2 cores).
pub(crate) fn ensure_wasmtime_cli(root: &Path) -> Result<PathBuf> {
    let tools = root.join("target/tools");
    let bin = tools.join("bin/wasmtime");
    let matches = Command::new(&bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(WASMTIME_CLI));
    if !matches {
        step(
            "install the wasmtime CLI (the peer of the cold-start benchmark)",
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(root)
                .args(["install", "--locked", "--root"])
                .arg(&tools)
                .arg(format!("wasmtime-cli@{WASMTIME_CLI}")),
        )?;
    }
    Ok(bin)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn mib(kib: u64) -> String {
    format!("{:.2} MiB", kib as f64 / 1024.0)
}

fn render(m: &Measured) -> Result<String> {
    let (model, cores, _) = crate::bench::cpu();
    let date = crate::bench::first_line("date", &["-u", "+%Y-%m-%d"]);
    let kernel = crate::bench::first_line("uname", &["-r"]);
    let mut s = String::new();
    writeln!(s, "{START}")?;
    writeln!(s, "## Runtime: cold start, memory, leaks\n")?;
    writeln!(
        s,
        "Measured by `cargo xtask bench` on {date}: {model} ({cores} logical CPUs), kernel \
         {kernel}, release builds. The app is `sample-apps/hello` (a Rust wasm32-wasip2 \
         component, {} KiB) that prints one line and exits; both runtimes run it precompiled. \
         Times are medians of {RUNS} runs after one warm-up, with the 10th–90th percentile \
         range in brackets; (a) and (b) alternate, one of each per round.\n",
        m.hello_wasm / 1024
    )?;
    writeln!(s, "| what | time |")?;
    writeln!(s, "|---|---:|")?;
    writeln!(
        s,
        "| (a) warden: `POST /apps/{{id}}/start` → first stdout line in the app's log, full \
         sandbox | {} |",
        m.warden.render()
    )?;
    writeln!(
        s,
        "| (b) `wasmtime run --allow-precompiled hello.cwasm`: spawn → first stdout line | {} |",
        m.wasmtime.render()
    )?;
    writeln!(
        s,
        "| (b′) the same, spawn → exit | {} |",
        m.wasmtime_exit.render()
    )?;
    writeln!(
        s,
        "| (c) `bwrap --unshare-all --ro-bind / / /bin/true`: spawn → exit | {} |",
        m.bwrap.render()
    )?;
    writeln!(
        s,
        "| `/bin/true`: spawn → exit | {} |",
        m.true_alone.render()
    )?;
    writeln!(
        s,
        "| one start/stop cycle of the idle app over the API ({CYCLES} cycles) | {} |",
        m.cycle.render()
    )?;
    writeln!(s)?;
    writeln!(s, "| memory and descriptors | value |")?;
    writeln!(s, "|---|---:|")?;
    let worst = m.worker.iter().map(|w| w.uss).max().unwrap_or(0);
    writeln!(
        s,
        "| idle worker, one of {} running at once: USS (private clean + dirty), each | {} |",
        m.worker.len(),
        m.worker
            .iter()
            .map(|w| mib(w.uss))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        s,
        "| idle worker: PSS / RSS, each | {} |",
        m.worker
            .iter()
            .map(|w| format!("{} / {}", mib(w.pss), mib(w.rss)))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        s,
        "| supervisor RSS, {} apps installed, before the cycles | {} |",
        IDLE_IDS.len() + 1,
        mib(m.supervisor_before.rss_kib)
    )?;
    writeln!(
        s,
        "| supervisor RSS after {CYCLES} start/stop cycles | {} |",
        mib(m.supervisor_after.rss_kib)
    )?;
    writeln!(
        s,
        "| supervisor descriptors before → after the cycles | {} → {} |",
        m.supervisor_before.fds, m.supervisor_after.fds
    )?;
    writeln!(
        s,
        "| supervisor threads before → after the cycles | {} → {} |",
        m.supervisor_before.threads, m.supervisor_after.threads
    )?;
    writeln!(
        s,
        "| seccomp allow-list of an app worker (`worker` profile, this build) | {} syscalls |",
        m.worker_syscalls
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "- (a) is measured from outside, as a user sees it: the benchmark sends the start \
         request on the control socket and long-polls `GET /apps/{{id}}/logs?wait_ms=` until the \
         app's stdout line arrives. It includes the HTTP exchange, the per-app cgroup, a \
         `clone` into new mount/pid/ipc/uts/net namespaces + `execve` of the worker, the whole \
         confinement (empty root, rlimits, uid/caps, no_new_privs, landlock, seccomp), the \
         digest check of the code, loading, instantiating and running to the first line, and \
         the log pipe back to the supervisor. Apps run in the worker devices run: \
         `warden-worker` built without the compiler (no Cranelift), statically linked \
         (static-pie), in the `run-only` profile; the release build with Cranelift compiled \
         them at install (`wardend --worker … --compiler …`)."
    )?;
    writeln!(
        s,
        "- (b) is {}, installed by this command; `wasmtime compile` made the `.cwasm`. No \
         sandbox. (c) is {}.",
        m.wasmtime_version, m.bwrap_version
    )?;
    writeln!(
        s,
        "- The idle app is a WASI preview-1 module that prints `ready` and sleeps in \
         `poll_oneoff`, installed under {} ids and running at once (alone, a worker would count \
         every page of the shared worker binary it touched as its own); each worker's memory \
         is read from `/proc/PID/smaps_rollup` 300 ms after its line arrived. The cycles start \
         one of them, wait for `ready`, stop it and wait for the supervisor to report it \
         stopped; the supervisor's descriptors and threads are read once its connection \
         threads have ended (at most 1 s).",
        IDLE_IDS.len()
    )?;
    writeln!(
        s,
        "- Target: sandboxed cold start ≤ `wasmtime run` of the same precompiled app: {} vs {} \
         ({}).",
        ms(m.warden.median),
        ms(m.wasmtime.median),
        crate::bench::met(m.warden.median <= m.wasmtime.median)
    )?;
    writeln!(
        s,
        "- Target: idle worker USS ≤ 1 MiB: at most {} ({}).",
        mib(worst),
        crate::bench::met(worst <= 1024)
    )?;
    writeln!(
        s,
        "- Target: supervisor RSS ≤ 8 MiB: {} after the cycles ({}).",
        mib(m.supervisor_after.rss_kib),
        crate::bench::met(m.supervisor_after.rss_kib.max(m.supervisor_before.rss_kib) <= 8 * 1024)
    )?;
    writeln!(
        s,
        "- Target: zero descriptors leaked after {CYCLES} cycles: {} ({}).",
        m.supervisor_after.fds as i64 - m.supervisor_before.fds as i64,
        crate::bench::met(m.supervisor_after.fds <= m.supervisor_before.fds)
    )?;
    writeln!(
        s,
        "- Target: an app worker's steady-state allow-list ≤ 16 syscalls: {} ({}).",
        m.worker_syscalls,
        crate::bench::met(m.worker_syscalls <= 16)
    )?;
    write!(s, "{END}")?;
    Ok(s)
}
