//! The real-time firmware samples, built into `target/firmware/`: `sample-apps/rt-echo-c`
//! (arm-none-eabi-gcc + newlib) and `sample-apps/rt-echo-rust` (`no_std`,
//! `thumbv7em-none-eabihf`), both for the emulated Cortex-M4 (`mps2-an386`).
//!
//! `cargo xtask test` builds them and hands their paths to the tests as `WARDEN_RT_ECHO_C`
//! and `WARDEN_RT_ECHO_RUST`; `runtime/wardend/tests/rt_firmware.rs` includes this file to
//! build them itself when those are not set, so it depends on `std` and `anyhow` only.
//! The tools come from `setup::ensure_firmware_tools`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The Rust firmware's target.
pub(crate) const RUST_TARGET: &str = "thumbv7em-none-eabihf";

/// Where the firmware goes, relative to the repository root.
const OUT_DIR: &str = "target/firmware";

/// The C sample's compiler flags: the M4 with its single-precision FPU and the hard-float ABI
/// (the Rust target's), newlib-nano for `memcpy` and friends, no C start files (the sample
/// has its own vector table and reset handler), unused sections dropped.
const C_FLAGS: &[&str] = &[
    "-mcpu=cortex-m4",
    "-mthumb",
    "-mfloat-abi=hard",
    "-mfpu=fpv4-sp-d16",
    "-O2",
    "-g",
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffunction-sections",
    "-fdata-sections",
    "-nostartfiles",
    "--specs=nano.specs",
    "-Wl,--gc-sections",
];

/// Builds both samples; returns the C and the Rust ELF.
pub(crate) fn build_firmware(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let out = root.join(OUT_DIR);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    Ok((build_c(root, &out)?, build_rust(root, &out)?))
}

fn build_c(root: &Path, out: &Path) -> Result<PathBuf> {
    let dir = root.join("sample-apps/rt-echo-c");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(dir.join("src"))
        .with_context(|| format!("reading {}", dir.join("src").display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    let elf = out.join("rt-echo-c.elf");
    let mut cmd = Command::new("arm-none-eabi-gcc");
    cmd.args(C_FLAGS)
        .arg("-T")
        .arg(dir.join("mps2-an386.ld"))
        .arg(format!("-Wl,-Map={}", out.join("rt-echo-c.map").display()))
        .args(&sources)
        .arg("-o")
        .arg(&elf);
    run(
        "build the rt-echo-c firmware (C -> Cortex-M4 ELF)",
        &mut cmd,
        "arm-none-eabi-gcc comes from Debian's gcc-arm-none-eabi and libnewlib-arm-none-eabi \
         (`cargo xtask firmware` installs them)",
    )?;
    Ok(elf)
}

fn build_rust(root: &Path, out: &Path) -> Result<PathBuf> {
    let manifest = root.join("sample-apps/rt-echo-rust/Cargo.toml");
    let target_dir = out.join("rust");
    let mut cmd = if rustup_has_target(root) {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(root).arg("build");
        cmd
    } else if Path::new("/usr/bin/cargo").exists() {
        // rustup could not add the target: Debian's rustc-web builds `core` from
        // rust-web-src, and lld links (Debian's rustc has no rust-lld).
        let mut cmd = Command::new("/usr/bin/cargo");
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.current_dir(root)
            .env("PATH", format!("/usr/bin:{path}"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_THUMBV7EM_NONE_EABIHF_LINKER", "ld.lld-19")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO")
            .env_remove("RUSTC")
            .args(["build", "-Zbuild-std=core"]);
        cmd
    } else {
        bail!(
            "no Rust toolchain for {RUST_TARGET}: `rustup target add {RUST_TARGET}`, or Debian's \
             cargo-web, rustc-web, rust-web-src and lld-19 (`cargo xtask firmware` sets either up)"
        );
    };
    cmd.args([
        "--release",
        "--locked",
        "--target",
        RUST_TARGET,
        "--manifest-path",
    ])
    .arg(&manifest)
    .arg("--target-dir")
    .arg(&target_dir);
    run(
        "build the rt-echo-rust firmware (Rust no_std -> Cortex-M4 ELF)",
        &mut cmd,
        "see sample-apps/rt-echo-rust/README.md",
    )?;
    let built = target_dir.join(RUST_TARGET).join("release/rt-echo-rust");
    let elf = out.join("rt-echo-rust.elf");
    std::fs::copy(&built, &elf)
        .with_context(|| format!("copying {} to {}", built.display(), elf.display()))?;
    Ok(elf)
}

/// Whether the toolchain `root` pins has the firmware's standard library.
fn rustup_has_target(root: &Path) -> bool {
    Command::new("rustup")
        .current_dir(root)
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == RUST_TARGET)
        })
}

/// Runs `cmd`, its output going to the console; fails naming the step and `hint`.
fn run(name: &str, cmd: &mut Command, hint: &str) -> Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("\n==> {name}: {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("{name}: could not start {shown} ({hint})"))?;
    if !status.success() {
        bail!("{name} failed ({status}): {shown}");
    }
    Ok(())
}
