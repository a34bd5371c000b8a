//! Developer workflows, so the README needs two commands and CI needs one:
//!
//! - `cargo xtask demo [--once]` — the main job: build the sample app, make development keys and
//!   a trust store, pack, sign, inspect and verify it, show a tampered copy refused, and resolve
//!   its manifest against the simulated board.
//! - `cargo xtask test` — everything CI checks: formatting, clippy, every test, the demo, and a
//!   short fuzzing pass. Installs what a fresh machine lacks first.
//! - `cargo xtask fuzz [--seconds N] [TARGET...]` — run fuzz targets for a bounded time.
//! - `cargo xtask bench [package|runtime|devices|network|intercore|samples]` — measure and write
//!   `docs/benchmarks.md`.
//! - `cargo xtask cross` — build `wardend` and the Pulley worker for armv7 and run precompiled
//!   samples with it under qemu-arm (also part of `test`).
//! - `cargo xtask firmware` — build the real-time firmware samples (`sample-apps/rt-echo-*`)
//!   into `target/firmware/` (`src/firmware.rs`).
//! - `cargo xtask wit [--out DIR]` — write the app world's complete WIT tree (default
//!   `target/wit/`) for guest SDK generators (`src/wit.rs`, also the library `warden_wit`).
#![forbid(unsafe_code)]
// A developer tool: its output is the product.
#![allow(clippy::print_stdout)]

mod bench;
mod bench_devices;
mod bench_intercore;
mod bench_network;
mod bench_runtime;
mod bench_samples;
mod cross;
mod demo;
mod device;
mod firmware;
mod fuzz;
mod guests;
mod samples;
mod sdk;
mod setup;
mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root()?;
    match args.first().map(String::as_str) {
        Some("test") => test(&root, &args[1..]),
        Some("demo") => demo::run(&root, &args[1..]),
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        Some("cross") => cross::run(&root, &args[1..]),
        Some("vm") => vm::run(&root, &args[1..]),
        Some("wit") => warden_wit::run(&root, &args[1..]),
        Some("sdk") => sdk::run(&root, &args[1..]),
        Some("samples") => samples::run(&root, &args[1..]),
        Some("firmware") => {
            setup::ensure_firmware_tools(&root)?;
            let (c, rust) = firmware::build_firmware(&root)?;
            println!("{}\n{}", c.display(), rust.display());
            Ok(())
        }
        Some("bench") => {
            setup::ensure_tools(&root)?;
            match args.get(1).map(String::as_str) {
                None => {
                    bench::run(&root)?;
                    bench_runtime::run(&root)?;
                    bench_devices::run(&root)?;
                    bench_network::run(&root)?;
                    bench_intercore::run(&root)?;
                    bench_samples::run(&root)
                }
                Some("package") => bench::run(&root),
                Some("runtime") => bench_runtime::run(&root),
                Some("devices") => bench_devices::run(&root),
                Some("network") => bench_network::run(&root),
                Some("intercore") => bench_intercore::run(&root),
                Some("samples") => bench_samples::run(&root),
                Some(other) => {
                    bail!(
                        "unknown benchmark {other:?}: package, runtime, devices, network, \
                         intercore or samples"
                    )
                }
            }
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  test                 formatting, clippy, all tests, demo, short fuzzing\n  demo [--once]        the main job: the sample fleet live on the simulated board (--once: headless check)\n  fuzz [--seconds N] [TARGET...]   run fuzz targets for N seconds each\n  bench [package|runtime|devices|network|intercore|samples]   measure and write docs/benchmarks.md\n  cross [--write-docs] build wardend + the Pulley worker for armv7, run samples under qemu-arm\n  vm                   the escape suite and wardend with real device drivers on an ARM kernel (QEMU i.MX6UL)\n  wit [--out DIR]      write the app world's WIT tree (default target/wit) for SDK generators\n  sdk                  write the SDK (target/sdk): WIT tree, C bindings, Python and JS tools\n  samples [NAME...]    build the sample apps with `warden app build` into target/samples\n  firmware             build the real-time firmware samples into target/firmware"
            );
            bail!("no command given")
        }
    }
}

/// What CI runs: every check, in the order that fails fastest.
fn test(root: &Path, args: &[String]) -> Result<()> {
    let fuzz_seconds: u64 = match args {
        [] => 10,
        [flag, n] if flag == "--fuzz-seconds" => n.parse().context("--fuzz-seconds N")?,
        _ => bail!("usage: cargo xtask test [--fuzz-seconds N]"),
    };
    setup::ensure_tools(root)?;
    step("formatting", cargo(root).args(["fmt", "--all", "--check"]))?;
    step(
        "clippy",
        cargo(root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // The guest components the device tests run (built before the tests that use them).
    let guests = guests::build_guests(root)?;
    // Every sample app, built from source by `warden app build` (the SDK first).
    samples::build(root, &samples::all())?;
    // The real-time firmware samples `wardend`'s rt_firmware test boots under qemu-system-arm.
    let (rt_echo_c, rt_echo_rust) = firmware::build_firmware(root)?;
    step(
        "device-probe's own unit tests",
        cargo(root).args([
            "test",
            "--locked",
            "--manifest-path",
            "sample-apps/device-probe/Cargo.toml",
            "--target-dir",
            "target/guests",
        ]),
    )?;
    step(
        "tests",
        cargo(root)
            .env("WARDEN_DEVICE_PROBE", &guests.device_probe)
            .env("WARDEN_NET_PROBE", &guests.net_probe)
            .env("WARDEN_RT_ECHO_C", &rt_echo_c)
            .env("WARDEN_RT_ECHO_RUST", &rt_echo_rust)
            .env("WARDEN_SAMPLES", root.join(samples::OUT))
            .env("WARDEN_SDK", root.join(sdk::DIR))
            .args(["test", "--workspace", "--locked"]),
    )?;
    // The end-to-end tests once more with the worker devices run apps in: built without the
    // compiler and statically linked (a different binary, with its own start-up path).
    let run_only = device::build_run_only_worker(root, &root.join("target/debug/warden-worker"))?;
    step(
        "end-to-end tests with the run-only worker",
        cargo(root)
            .env("WARDEN_RUN_ONLY_WORKER", &run_only)
            .env("WARDEN_DEVICE_PROBE", &guests.device_probe)
            .env("WARDEN_NET_PROBE", &guests.net_probe)
            .args([
                "test", "--locked", "-p", "wardend", "--test", "e2e", "--test", "storage",
                "--test", "devices", "--test", "network",
            ]),
    )?;
    // The armv7 (Cortex-A7) build and its run under qemu-arm: a release build of wasmtime
    // for armv7 (about 3 minutes cold on 2 cores, incremental afterwards).
    cross::run(root, &[])?;
    vm::run(root, &[])?;
    demo::run(root, &["--once".to_owned()])?;
    if fuzz_seconds > 0 {
        fuzz::run(root, &["--seconds".to_owned(), fuzz_seconds.to_string()])?;
    }
    println!("\nxtask test: every check passed");
    Ok(())
}

/// The repository root: the parent of this crate's directory.
fn repo_root() -> Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

/// `cargo` run from the repository root, with the toolchain the root pins.
/// Where cargo builds: `$CARGO_TARGET_DIR`, or `target/` in the repository.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn cargo(root: &Path) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root);
    cmd
}

/// Runs one named step and fails with its name if it fails.
fn step(name: &str, cmd: &mut Command) -> Result<()> {
    println!("\n==> {name}: {}", render(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("{name}: could not start {}", render(cmd)))?;
    if !status.success() {
        bail!("{name} failed ({status}): {}", render(cmd));
    }
    Ok(())
}

fn render(cmd: &Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}
