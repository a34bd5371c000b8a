//! `cargo xtask cross`: the armv7 (Cortex-A7, 32-bit) build, proven under qemu-arm.
//!
//! 1. Installs what it needs (the Rust target, Debian's cross gcc + armhf libc, qemu-user).
//! 2. Checks our ARM seccomp syscall table against the kernel's headers, and runs the sandbox's
//!    seccomp unit tests *as an armv7 program* under qemu-arm (the build target's own profiles
//!    compiled by our BPF generator).
//! 3. Builds `wardend` and the run-only `warden-worker` (no Cranelift: Pulley only) for
//!    `armv7-unknown-linux-gnueabihf`, `--release`, with the engine fingerprint the host
//!    computes for `pulley32` built in.
//! 4. Precompiles two samples for `pulley32` with the host's worker (`warden-worker precompile`):
//!    a tiny WASI preview-1 module written here, and the `sample-apps/hello` component.
//! 5. Runs both under `qemu-arm` through the worker's real execution path (the `emulated_run`
//!    example: `Prepared::new` + `Prepared::run`, without the sandbox, which qemu-user cannot
//!    apply) and checks their output; checks the armv7 worker's fingerprint equals the host's.
//! 6. Prints the binary sizes and the run times; `--write-docs` also writes them to the
//!    `armv7 (Pulley)` section of docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::setup::ArmToolchain;
use crate::{cargo, render, step};

pub(crate) const TARGET: &str = "armv7-unknown-linux-gnueabihf";
/// The sysroot qemu-arm loads the armhf dynamic loader and libc from.
const SYSROOT: &str = "/usr/arm-linux-gnueabihf";
/// wasmtime's target for the armv7 devices' engine.
const PULLEY: &str = "pulley32";
const HELLO: &str = "sample-apps/hello";
/// What the preview-1 sample prints.
const MODULE_GREETING: &str = "hello from a preview-1 module on pulley32";

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let write_docs = match args {
        [] => false,
        [flag] if flag == "--write-docs" => true,
        _ => bail!("usage: cargo xtask cross [--write-docs]"),
    };
    let toolchain = crate::setup::ensure_cross_tools(root)?;
    let qemu_runner = format!("qemu-arm -L {SYSROOT}");

    step(
        "our ARM syscall table against the kernel's asm/unistd-eabi.h",
        cargo(root).args([
            "test",
            "--locked",
            "-p",
            "warden-sandbox",
            "--lib",
            "arm_table_matches_the_kernel_headers",
            "--",
            "--ignored",
        ]),
    )?;
    step(
        "the sandbox's seccomp tests as an armv7 program under qemu-arm",
        arm_cargo(root, toolchain, "test")
            .env(
                "CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER",
                &qemu_runner,
            )
            .args([
                "--locked",
                "-p",
                "warden-sandbox",
                "--lib",
                "--target",
                TARGET,
                "seccomp",
            ]),
    )?;

    let (host_worker, fingerprint) = host_precompiler(root)?;
    println!("    pulley32 engine: {fingerprint}");

    let build_started = Instant::now();
    let out = build_device(root, toolchain, &fingerprint)?;
    let build_time = build_started.elapsed();
    let arm_worker = out.join("warden-worker");
    let arm_wardend = out.join("wardend");
    let emulated_run = out.join("examples/emulated_run");

    let arm_fingerprint = output(qemu(&arm_worker).arg("fingerprint"))?;
    if arm_fingerprint != fingerprint {
        bail!(
            "the armv7 worker says its engine is {arm_fingerprint}, the host computed {fingerprint}"
        );
    }
    println!("    the armv7 worker's fingerprint matches: {arm_fingerprint}");
    let help = output(qemu(&arm_wardend).arg("--help"))?;
    if !help.contains("Usage") {
        bail!("wardend --help under qemu-arm printed no usage:\n{help}");
    }
    println!("    wardend runs under qemu-arm (--help)");

    // The samples.
    step(
        "build the sample app (Rust -> wasm32-wasip2 component)",
        cargo(root)
            .args([
                "build",
                "--locked",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(root.join(HELLO).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(root.join("target/guests")),
    )?;
    let scratch = root.join("target/cross");
    std::fs::create_dir_all(&scratch)?;
    let module = scratch.join("hello-p1.wasm");
    std::fs::write(&module, hello_module(MODULE_GREETING))?;
    let samples = [
        Sample {
            name: "preview-1 module (written by xtask)",
            wasm: module,
            kind: "module",
            expect: MODULE_GREETING,
        },
        Sample {
            name: "sample-apps/hello component",
            wasm: root.join("target/guests/wasm32-wasip2/release/hello.wasm"),
            kind: "component",
            expect: "hello from a Warden app",
        },
    ];
    let mut runs = Vec::new();
    for sample in &samples {
        let cwasm = scratch.join(format!("{}.pulley32.cwasm", sample.kind));
        let line = output(
            Command::new(&host_worker)
                .args(["precompile", PULLEY])
                .arg(&sample.wasm)
                .arg(&cwasm),
        )?;
        let (sha256, engine) = line
            .split_once(' ')
            .context("precompile printed no digest")?;
        if engine != fingerprint {
            bail!("precompiled for {engine}, expected {fingerprint}");
        }
        // RUNS runs; the one with the median wall time is reported.
        let mut measured = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let run = qemu(&emulated_run)
                .arg("--under-emulation")
                .arg(&cwasm)
                .args([sha256, sample.kind])
                .output()
                .context("cannot run qemu-arm")?;
            let wall = started.elapsed();
            let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&run.stderr);
            if !run.status.success() || !stdout.contains(sample.expect) {
                bail!(
                    "{} under qemu-arm: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
                    sample.name,
                    run.status
                );
            }
            let timings = stderr
                .lines()
                .find_map(|l| l.strip_prefix("emulated_run: prepare"))
                .map(|t| format!("prepare{t}"))
                .unwrap_or_default();
            measured.push((wall, timings, stdout));
        }
        measured.sort_by_key(|(wall, _, _)| *wall);
        let (wall, timings, stdout) = measured.swap_remove(RUNS / 2);
        println!("    {}: {}", sample.name, stdout.trim());
        runs.push(Run {
            name: sample.name,
            artefact: std::fs::metadata(&cwasm)?.len(),
            wall,
            timings,
        });
    }

    // Sizes: as built (line tables kept, as the workspace's release profile says) and stripped.
    let mut sizes = Vec::new();
    for (name, path) in [("wardend", &arm_wardend), ("warden-worker", &arm_worker)] {
        let stripped = scratch.join(format!("{name}.stripped"));
        let status = Command::new("arm-linux-gnueabihf-strip")
            .arg("-o")
            .arg(&stripped)
            .arg(path)
            .status()?;
        if !status.success() {
            bail!("arm-linux-gnueabihf-strip {} failed", path.display());
        }
        sizes.push((
            name,
            std::fs::metadata(path)?.len(),
            std::fs::metadata(&stripped)?.len(),
        ));
    }

    println!("\n==> armv7 (Pulley): measured by `cargo xtask cross`");
    println!(
        "    release build of wardend + warden-worker for {TARGET}: {:.0} s (incremental if built before)",
        build_time.as_secs_f64()
    );
    for (name, built, stripped) in &sizes {
        println!(
            "    {name:<14} {} as built, {} stripped",
            mib(*built),
            mib(*stripped)
        );
    }
    for run in &runs {
        println!(
            "    {}: {} KiB pulley32 artefact; qemu-arm process wall {:.0} ms (median of {RUNS}); {}",
            run.name,
            run.artefact / 1024,
            ms(run.wall),
            run.timings
        );
    }
    if write_docs {
        crate::bench::write_section(root, DOCS_START, DOCS_END, &render_docs(&sizes, &runs)?)?;
    }
    println!("\nxtask cross: the armv7 build runs both samples under qemu-arm");
    Ok(())
}

/// Builds the host's worker (with Cranelift: it precompiles for devices) and the `warden` CLI
/// (debug), and returns the worker and the `pulley32` engine fingerprint it computes.
pub(crate) fn host_precompiler(root: &Path) -> Result<(PathBuf, String)> {
    step(
        "build the host worker (the precompiler) and the warden CLI",
        cargo(root).args([
            "build",
            "--locked",
            "-p",
            "warden-worker",
            "-p",
            "warden-cli",
        ]),
    )?;
    let worker = crate::target_dir(root).join("debug/warden-worker");
    let fingerprint = output(Command::new(&worker).args(["fingerprint", PULLEY]))?;
    Ok((worker, fingerprint))
}

/// Builds what an armv7 device runs, `--release`: `wardend`, the `warden` CLI, and the
/// run-only (Pulley) worker told the host's engine `fingerprint` (with `emulated_run`, its
/// unconfined runner for qemu-user). Returns the directory they are in.
pub(crate) fn build_device(
    root: &Path,
    toolchain: ArmToolchain,
    fingerprint: &str,
) -> Result<PathBuf> {
    step(
        "build wardend and the warden CLI for armv7",
        arm_cargo(root, toolchain, "build").args([
            "--locked",
            "--release",
            "--target",
            TARGET,
            "-p",
            "wardend",
            "-p",
            "warden-cli",
        ]),
    )?;
    step(
        "build the run-only (Pulley) worker and its emulation runner for armv7",
        arm_cargo(root, toolchain, "build")
            .env("WARDEN_ENGINE_FINGERPRINT", fingerprint)
            .args([
                "--locked",
                "--release",
                "--target",
                TARGET,
                "-p",
                "warden-worker",
                "--no-default-features",
                "--bins",
                "--example",
                "emulated_run",
            ]),
    )?;
    Ok(crate::target_dir(root).join(TARGET).join("release"))
}

/// Runs per sample; the median wall time is reported.
const RUNS: usize = 5;
const DOCS_START: &str = "<!-- bench:armv7 -->";
const DOCS_END: &str = "<!-- /bench:armv7 -->";

struct Run {
    name: &'static str,
    artefact: u64,
    wall: Duration,
    /// `emulated_run`'s own line: "prepare X ms, verify X ms, …, total X ms".
    timings: String,
}

/// The `armv7 (Pulley)` section of docs/benchmarks.md.
fn render_docs(sizes: &[(&str, u64, u64)], runs: &[Run]) -> Result<String> {
    use std::fmt::Write as _;

    let date = output(Command::new("date").args(["-u", "+%Y-%m-%d"]))?;
    let qemu = output(Command::new("qemu-arm").arg("--version"))?;
    let qemu = qemu.lines().next().unwrap_or_default().to_owned();
    let mut s = String::new();
    writeln!(s, "{DOCS_START}")?;
    writeln!(s, "## armv7 (Pulley)\n")?;
    writeln!(
        s,
        "Measured by `cargo xtask cross --write-docs` on {date} on the build host (x86_64, 2 \
         cores) with {qemu} (user-mode emulation of the armv7 binaries: the times show the \
         emulated path on this host, not a Cortex-A7's speed).\n"
    )?;
    writeln!(
        s,
        "| binary (`{TARGET}`, `--release`) | as built (line tables) | stripped |"
    )?;
    writeln!(s, "|---|---:|---:|")?;
    for (name, built, stripped) in sizes {
        let what = if *name == "warden-worker" {
            "`warden-worker` (run-only: Pulley, no Cranelift)".to_owned()
        } else {
            format!("`{name}`")
        };
        writeln!(s, "| {what} | {} | {} |", mib(*built), mib(*stripped))?;
    }
    writeln!(
        s,
        "\n| sample, precompiled for `pulley32` on the host | artefact | qemu-arm process wall \
         (median of {RUNS}) | in the process (`emulated_run`) |"
    )?;
    writeln!(s, "|---|---:|---:|---|")?;
    for run in runs {
        writeln!(
            s,
            "| {} | {} KiB | {:.0} ms | {} |",
            run.name,
            run.artefact / 1024,
            ms(run.wall),
            run.timings
        )?;
    }
    writeln!(
        s,
        "\n- *Process wall*: `qemu-arm -L {SYSROOT} emulated_run --under-emulation …` from start \
         to exit (qemu start-up, dynamic loading, `Prepared::new`, the run).\n\
         - *In the process*: `emulated_run`'s own clock: `Prepared::new` (engine, linkers, \
         runtime), then `Prepared::run_measured`'s steps — digest check, load, instantiate, \
         execute — the worker's real run path without the sandbox (qemu-user cannot confine).\n\
         - *Stripped*: `arm-linux-gnueabihf-strip` of the built binary; the workspace's release \
         profile keeps line tables."
    )?;
    write!(s, "{DOCS_END}")?;
    Ok(s)
}

struct Sample {
    name: &'static str,
    wasm: PathBuf,
    kind: &'static str,
    expect: &'static str,
}

/// `cargo SUBCOMMAND` for the armv7 target: the pinned toolchain, or Debian's rustc-web building
/// the standard library itself when rustup could not add the target.
pub(crate) fn arm_cargo(root: &Path, toolchain: ArmToolchain, subcommand: &str) -> Command {
    match toolchain {
        ArmToolchain::Rustup => {
            let mut cmd = cargo(root);
            cmd.arg(subcommand);
            cmd
        }
        ArmToolchain::DebianBuildStd => {
            let mut cmd = Command::new("/usr/bin/cargo");
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.current_dir(root)
                .env("PATH", format!("/usr/bin:{path}"))
                .env("RUSTC_BOOTSTRAP", "1")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("CARGO")
                .env_remove("RUSTC")
                .args([subcommand, "-Zbuild-std=std,panic_abort"]);
            cmd
        }
    }
}

/// `qemu-arm -L SYSROOT PROGRAM`.
fn qemu(program: &Path) -> Command {
    let mut cmd = Command::new("qemu-arm");
    cmd.args(["-L", SYSROOT]).arg(program);
    cmd
}

/// Runs `cmd`, fails with its stderr if it fails, returns its trimmed stdout.
pub(crate) fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", render(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            render(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A WASI preview-1 command module that writes `text` and a newline to stdout, encoded here
/// byte by byte (xtask has no WebAssembly text parser):
///
/// ```text
/// (module
///   (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
///   (memory (export "memory") 1)
///   (data (i32.const 0) "\08\00\00\00" "<len>\00\00\00" "<text>\n")   ;; iovec at 0, text at 8
///   (func (export "_start") (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 100)))))
/// ```
fn hello_module(text: &str) -> Vec<u8> {
    const I32: u8 = 0x7f;
    let line = format!("{text}\n");
    let len = u32::try_from(line.len()).unwrap_or(u32::MAX);
    let mut data = Vec::new();
    data.extend_from_slice(&8u32.to_le_bytes());
    data.extend_from_slice(&len.to_le_bytes());
    data.extend_from_slice(line.as_bytes());

    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    // type: 0 = (i32 i32 i32 i32) -> i32, 1 = () -> ()
    section(
        &mut wasm,
        1,
        &[&[2, 0x60, 4, I32, I32, I32, I32, 1, I32, 0x60, 0, 0]],
    );
    // import: function 0 = wasi_snapshot_preview1.fd_write, type 0
    section(
        &mut wasm,
        2,
        &[
            &[1],
            &name("wasi_snapshot_preview1"),
            &name("fd_write"),
            &[0, 0],
        ],
    );
    // function: function 1 has type 1
    section(&mut wasm, 3, &[&[1, 1]]);
    // memory: one, at least 1 page
    section(&mut wasm, 5, &[&[1, 0, 1]]);
    // export: "memory" = memory 0, "_start" = function 1
    section(
        &mut wasm,
        7,
        &[&[2], &name("memory"), &[2, 0], &name("_start"), &[0, 1]],
    );
    // code: no locals; i32.const 1, 0, 1, 100; call 0; drop; end
    let body = [
        0, 0x41, 1, 0x41, 0, 0x41, 1, 0x41, 0xe4, 0, 0x10, 0, 0x1a, 0x0b,
    ];
    section(&mut wasm, 10, &[&[1], &leb(body.len()), &body]);
    // data: one active segment in memory 0 at i32.const 0
    section(
        &mut wasm,
        11,
        &[&[1, 0, 0x41, 0, 0x0b], &leb(data.len()), &data],
    );
    wasm
}

fn section(wasm: &mut Vec<u8>, id: u8, parts: &[&[u8]]) {
    let content: Vec<u8> = parts.concat();
    wasm.push(id);
    wasm.extend(leb(content.len()));
    wasm.extend(content);
}

fn name(s: &str) -> Vec<u8> {
    let mut out = leb(s.len());
    out.extend_from_slice(s.as_bytes());
    out
}

/// Unsigned LEB128.
fn leb(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}
