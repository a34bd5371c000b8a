//! Installs what a fresh machine lacks, so `cargo xtask test` and `cargo xtask demo` are the only
//! set-up a developer or CI needs. Each step checks first and does nothing when the tool is there.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Rust targets the guests and firmware are built for.
const RUST_TARGETS: &[&str] = &["wasm32-wasip2"];

/// cargo-fuzz, pinned so a new release cannot change what CI runs.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

pub(crate) fn ensure_tools(root: &Path) -> Result<()> {
    ensure_rust_targets(root)?;
    ensure_firmware_tools(root)?;
    ensure_cargo_fuzz()?;
    ensure_commands(&[
        ("openssl", "openssl"),
        ("sha256sum", "coreutils"),
        // Each app's storage is a loop-mounted ext4 image (`wardend`'s storage module); without
        // these it falls back to a plain directory and the quota tests fail.
        ("mke2fs", "e2fsprogs"),
        ("tune2fs", "e2fsprogs"),
        ("e2fsck", "e2fsprogs"),
        ("resize2fs", "e2fsprogs"),
        ("mount", "mount"),
        ("umount", "mount"),
    ])
}

/// Adds the Rust targets to the pinned toolchain (rustup reads `rust-toolchain.toml` from `root`).
pub(crate) fn ensure_rust_targets(root: &Path) -> Result<()> {
    let installed = Command::new("rustup")
        .current_dir(root)
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to add the wasm32 targets")?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    for target in RUST_TARGETS {
        if installed.lines().any(|l| l.trim() == *target) {
            continue;
        }
        println!("==> adding Rust target {target}");
        let status = Command::new("rustup")
            .current_dir(root)
            .args(["target", "add", target])
            .status()?;
        if !status.success() {
            bail!(
                "`rustup target add {target}` failed. Without rustup's target the guests need \
                 Debian's rustc-web + rust-web-src, wasi-libc, lld-19 and -Zbuild-std (the \
                 firmware build falls back to that by itself; the wasm guests do not yet)"
            );
        }
    }
    Ok(())
}

/// What the real-time firmware samples need (`firmware.rs`): the bare-metal Arm GCC with
/// newlib (the C sample), qemu-system-arm (their tests boot them on `mps2-an386`), and the
/// `thumbv7em-none-eabihf` Rust target, or where rustup cannot add it, Debian's rustc-web with
/// its library sources for `-Zbuild-std=core` and lld to link (the team's toolchain notes, §7).
pub(crate) fn ensure_firmware_tools(root: &Path) -> Result<()> {
    ensure_commands(&[
        ("arm-none-eabi-gcc", "gcc-arm-none-eabi"),
        ("qemu-system-arm", "qemu-system-arm"),
    ])?;
    ensure_files(&[(
        "/usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard/libc_nano.a",
        "libnewlib-arm-none-eabi",
    )])?;
    let target = crate::firmware::RUST_TARGET;
    let installed = rustup_has_target(root, target);
    if installed {
        return Ok(());
    }
    println!("==> adding Rust target {target}");
    let added = rustup_add_target(root, target);
    if added {
        return Ok(());
    }
    println!("==> rustup could not add {target}: falling back to Debian rustc-web -Zbuild-std");
    ensure_files(&[
        ("/usr/bin/cargo", "cargo-web"),
        ("/usr/bin/rustc", "rustc-web"),
        ("/usr/lib/rustlib/src/rust/library", "rust-web-src"),
        ("/usr/bin/ld.lld-19", "lld-19"),
    ])
}

fn ensure_cargo_fuzz() -> Result<()> {
    let ok = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Ok(());
    }
    println!("==> installing cargo-fuzz {CARGO_FUZZ_VERSION}");
    let status = Command::new("cargo")
        .args([
            "install",
            "--locked",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
        ])
        .status()?;
    if !status.success() {
        bail!("installing cargo-fuzz failed");
    }
    Ok(())
}

/// How the armv7 binaries are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArmToolchain {
    /// The pinned toolchain with rustup's `armv7-unknown-linux-gnueabihf` standard library.
    Rustup,
    /// rustup could not add the target: Debian's rustc-web with `-Zbuild-std` (the recipe in
    /// the team's toolchain notes, §6); it builds the standard library from rust-web-src.
    DebianBuildStd,
}

/// What `cargo xtask cross` needs: the armv7 Rust target (or Debian's rustc-web fallback), the
/// cross linker and armhf libc (with the kernel's ARM headers), and qemu-user.
pub(crate) fn ensure_cross_tools(root: &Path) -> Result<ArmToolchain> {
    ensure_commands(&[
        ("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf"),
        ("arm-linux-gnueabihf-strip", "binutils-arm-linux-gnueabihf"),
        ("qemu-arm", "qemu-user"),
    ])?;
    ensure_files(&[
        (
            "/usr/arm-linux-gnueabihf/lib/libc.so.6",
            "libc6-armhf-cross",
        ),
        (
            "/usr/arm-linux-gnueabihf/include/asm/unistd-eabi.h",
            "libc6-dev-armhf-cross",
        ),
    ])?;
    let target = crate::cross::TARGET;
    let installed = rustup_has_target(root, target);
    if installed {
        return Ok(ArmToolchain::Rustup);
    }
    println!("==> adding Rust target {target}");
    let added = rustup_add_target(root, target);
    if added {
        return Ok(ArmToolchain::Rustup);
    }
    println!("==> rustup could not add {target}: falling back to Debian rustc-web -Zbuild-std");
    ensure_files(&[
        ("/usr/bin/cargo", "cargo-web"),
        ("/usr/bin/rustc", "rustc-web"),
        ("/usr/lib/rustlib/src/rust/library", "rust-web-src"),
    ])?;
    Ok(ArmToolchain::DebianBuildStd)
}

/// Installs Debian packages for files that are missing.
pub(crate) fn ensure_files(files: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = files
        .iter()
        .filter(|(path, _)| !Path::new(path).exists())
        .map(|(_, package)| *package)
        .collect();
    apt_install(&missing)
}

/// Installs Debian packages for commands that are missing.
pub(crate) fn ensure_commands(commands: &[(&str, &str)]) -> Result<()> {
    let mut missing: Vec<&str> = commands
        .iter()
        .filter(|(cmd, _)| !command_exists(cmd))
        .map(|(_, package)| *package)
        .collect();
    missing.sort_unstable();
    missing.dedup();
    apt_install(&missing)
}

pub(crate) fn apt_install(missing: &[&str]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    println!("==> installing Debian packages: {}", missing.join(" "));
    apt_update()?;
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(missing)
        .status()?;
    if !status.success() {
        bail!("apt-get install {} failed", missing.join(" "));
    }
    Ok(())
}

/// `apt-get update`. A failed index (a mirror caught mid-sync, seen here on the security
/// archive's armhf list) is reported, not fatal: what is then still missing fails the install
/// or lookup that needs it, by name.
pub(crate) fn apt_update() -> Result<()> {
    let update = Command::new("apt-get").args(["update", "-q"]).status()?;
    if !update.success() {
        println!(
            "==> warning: apt-get update did not fetch every index ({update}); going on with \
             the indexes it has"
        );
    }
    Ok(())
}

pub(crate) fn command_exists(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(cmd).is_file()))
}

/// Whether the toolchain `root` pins has `target`'s standard library.
fn rustup_has_target(root: &Path, target: &str) -> bool {
    Command::new("rustup")
        .current_dir(root)
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == target)
        })
}

/// `rustup target add target`; whether it worked.
fn rustup_add_target(root: &Path, target: &str) -> bool {
    Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", target])
        .status()
        .is_ok_and(|s| s.success())
}
