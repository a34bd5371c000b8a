//! `cargo xtask bench network`: does a brokered TCP connection move data as fast as a directly
//! opened one (issue 4's acceptance)? In one run, interleaved round by round:
//!
//! - (a) **warden**: the `net-probe` guest under `wardend`, confined, looks up `sink.test`
//!   through the broker (the supervisor's hosts table), gets the connected socket from the
//!   supervisor and sends through `wasi:sockets` on that descriptor;
//! - (b) **wasmtime run**: the same guest, same step, in `wasmtime run -S inherit-network -S http`,
//!   whose `wasi:sockets` opens the socket itself;
//! - (c) **native**: this process sends the same bytes in the same 64 KiB writes.
//!
//! Each sends [`BYTES`] to a sink on 127.0.0.2 that answers with the count it read; the time
//! is from connected to answered, taken by the sender itself (the guest's own clock for (a)
//! and (b)), so start-up and the connection set-up are not in it.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::device::{Api, Daemon, Scratch, Warden};

const START: &str = "<!-- bench:network -->";
const END: &str = "<!-- /bench:network -->";

/// Bytes per transfer.
const BYTES: u64 = 256 << 20;
/// Rounds after a warm-up round; each runs (a), (b) and (c) once.
const ROUNDS: usize = 11;
/// The probe's component id (`sample-apps/net-probe/app_manifest.json`).
const PROBE_ID: &str = "5d1c0f4e-8a39-4f6b-9c2e-7b3a1e6d40c9";
const SINK_IP: &str = "127.0.0.2";
/// Issue 4's target, read as: the brokered path reaches at least this share of the direct one.
const TARGET_SHARE: f64 = 0.95;

pub(crate) fn run(root: &Path) -> Result<()> {
    crate::setup::ensure_rust_targets(root)?;
    let wasmtime = crate::bench_runtime::ensure_wasmtime_cli(root)?;
    crate::device::build_release(root)?;
    let run_only =
        crate::device::build_run_only_worker(root, &root.join("target/release/warden-worker"))?;
    let probe = crate::guests::build_guest(root, "net-probe")?;

    let sink = TcpListener::bind((SINK_IP, 0)).context("binding the sink")?;
    let port = sink.local_addr()?.port();
    std::thread::spawn(move || serve_sink(&sink));

    let scratch = Scratch::new("bench-network")?;
    let dir = scratch.path();
    let bin_dir = root.join("target/release");
    let warden = Warden {
        bin: bin_dir.join("warden"),
        verbose: false,
    };
    let (app_key, trust) = warden.keys_and_trust(dir)?;
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, format!("{SINK_IP} sink.test\n"))?;
    let manifest = dir.join("app_manifest.json");
    std::fs::write(
        &manifest,
        format!(
            r#"{{"SchemaVersion": 1, "Name": "net-probe", "ComponentId": "{PROBE_ID}",
                "EntryPoint": "/bin/net-probe.wasm",
                "CmdArgs": ["tcp-send sink.test {port} {BYTES}"],
                "Capabilities": {{"AllowedConnections": ["sink.test"]}},
                "ApplicationType": "Default"}}"#
        ),
    )?;
    let package = dir.join("net-probe.wpkg");
    warden.pack(&manifest, &probe, &app_key, 1, &package)?;

    let mut command = Daemon::command(root, &bin_dir, dir, &trust, Some(&run_only));
    command.arg("--hosts").arg(&hosts);
    let daemon = Daemon::start(command, dir)?;
    let api = Api {
        socket: daemon.socket.clone(),
    };

    println!("==> (a) warden, (b) wasmtime run, (c) native: {BYTES} bytes each, {ROUNDS} rounds");
    let mut rounds = Vec::with_capacity(ROUNDS);
    for round in 0..=ROUNDS {
        let brokered = if round == 0 {
            api.sideload(&package)?;
            warden_line(&api, 0)?
        } else {
            let after = api.last_seq(PROBE_ID)?;
            api.call("POST", &format!("/apps/{PROBE_ID}/start"))?;
            warden_line(&api, after)?
        };
        let direct = wasmtime_line(&wasmtime, &probe, port)?;
        let native = native_send(port)?;
        if round > 0 {
            rounds.push([brokered, direct, native]);
        }
    }
    drop(daemon);
    let section = render(
        &rounds,
        &crate::bench::first_line(&wasmtime.to_string_lossy(), &["--version"]),
    )?;
    println!("\n{section}");
    crate::bench::write_section(root, START, END, &section)
}

/// Reads each connection to its end and answers with the count, in decimal.
fn serve_sink(listener: &TcpListener) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { return };
        let mut buf = vec![0; 256 * 1024];
        let mut total = 0u64;
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => total += n as u64,
                Err(_) => return,
            }
        }
        let _ = stream.write_all(total.to_string().as_bytes());
    }
}

/// The probe's `tcp-send ok BYTES MICROS "ANSWER"` line: the transfer time, checked.
fn transfer_time(line: &str) -> Result<Duration> {
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["tcp-send", "ok", bytes, micros, answer]
            if *bytes == BYTES.to_string() && *answer == format!("\"{BYTES}\"") =>
        {
            Ok(Duration::from_micros(micros.parse()?))
        }
        _ => bail!("the probe did not send {BYTES} bytes: {line:?}"),
    }
}

/// Waits for the probe's stdout line after log sequence `after` (its run ends with it).
fn warden_line(api: &Api, mut after: u64) -> Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = api.call(
            "GET",
            &format!("/apps/{PROBE_ID}/logs?after={after}&wait_ms=5000"),
        )?;
        for line in answer["lines"].as_array().into_iter().flatten() {
            after = line["seq"].as_u64().unwrap_or(after);
            if line["stream"] == "stdout" {
                let text = line["text"].as_str().unwrap_or_default();
                let time = transfer_time(text)?;
                api.wait_state(PROBE_ID, &["exited"])?;
                return Ok(time);
            }
        }
        if Instant::now() > deadline {
            bail!("the probe printed nothing within 60 s");
        }
    }
}

fn wasmtime_line(wasmtime: &Path, probe: &Path, port: u16) -> Result<Duration> {
    let output = Command::new(wasmtime)
        .args(["run", "-S", "inherit-network=y", "-S", "http"])
        .arg(probe)
        .arg(format!("tcp-send {SINK_IP} {port} {BYTES}"))
        .output()
        .context("wasmtime run")?;
    if !output.status.success() {
        bail!(
            "wasmtime run failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    transfer_time(String::from_utf8_lossy(&output.stdout).trim())
}

fn native_send(port: u16) -> Result<Duration> {
    let mut stream = TcpStream::connect((SINK_IP, port))?;
    let chunk = vec![0x5a; 64 * 1024];
    let started = Instant::now();
    let mut left = BYTES;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        stream.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let elapsed = started.elapsed();
    if answer != BYTES.to_string() {
        bail!("the sink counted {answer:?} bytes, not {BYTES}");
    }
    Ok(elapsed)
}

fn mib_per_s(d: Duration) -> f64 {
    BYTES as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn render(rounds: &[[Duration; 3]], wasmtime_version: &str) -> Result<String> {
    if rounds.is_empty() {
        bail!("no rounds measured");
    }
    let column = |i: usize| -> Vec<f64> { rounds.iter().map(|r| mib_per_s(r[i])).collect() };
    let spread = |values: Vec<f64>| {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(0.0, f64::max);
        (median(values), lo, hi)
    };
    let shares: Vec<f64> = rounds
        .iter()
        .map(|r| r[1].as_secs_f64() / r[0].as_secs_f64())
        .collect();
    let share = median(shares);
    let (model, cores, _) = crate::bench::cpu();
    let mut s = String::new();
    writeln!(s, "{START}")?;
    writeln!(s, "## Network: a brokered TCP connection")?;
    writeln!(s)?;
    writeln!(
        s,
        "`cargo xtask bench network`, {model}, {cores} cores. {} MiB per transfer over loopback \
         to a sink that counts and answers; {ROUNDS} rounds, the three paths interleaved in each. \
         Time from connected to answered, taken by the sender itself.",
        BYTES >> 20
    )?;
    writeln!(s)?;
    writeln!(s, "| Path | Median MiB/s | Min–max MiB/s |")?;
    writeln!(s, "|---|---:|---:|")?;
    for (i, what) in [
        "(a) warden: `net-probe` confined; lookup and connection by the broker, socket passed",
        "(b) `wasmtime run -S inherit-network -S http`: the same guest opens its own socket",
        "(c) native Rust, 64 KiB `write()`s",
    ]
    .iter()
    .enumerate()
    {
        let (median, lo, hi) = spread(column(i));
        writeln!(s, "| {what} | {median:.0} | {lo:.0}–{hi:.0} |")?;
    }
    writeln!(s)?;
    writeln!(
        s,
        "- Target: a brokered TCP connection moves data as fast as a directly opened one — read \
         as (a) ≥ {:.0} % of (b), per round: median {:.0} % ({}).",
        TARGET_SHARE * 100.0,
        share * 100.0,
        if share >= TARGET_SHARE {
            "met"
        } else {
            "**not met**"
        }
    )?;
    writeln!(s, "- Peer: {wasmtime_version}.")?;
    write!(s, "{END}")?;
    Ok(s)
}
