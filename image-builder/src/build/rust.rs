//! Building a Rust app: `cargo build --release --target wasm32-wasip2`, which makes a component
//! (WASI from Rust's `std`, `warden:device` from the `warden-sdk` crate's bindings).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Progress, Project, Sdk};

/// The files `warden app new --lang rust` writes (see `Language::template`).
pub(super) const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/rust/Cargo.toml"),
    ),
    (".gitignore", "/target\n/build\n"),
    ("src/main.rs", include_str!("../../templates/rust/main.rs")),
    (
        "app_manifest.json",
        include_str!("../../templates/app_manifest.json"),
    ),
];

/// The Rust target apps are built for.
const TARGET: &str = "wasm32-wasip2";

/// Builds `project` into `out` (an absolute path whose directory exists).
pub(super) fn build(
    project: &Project,
    _sdk: &Sdk,
    out: &Path,
    progress: &mut Progress,
) -> Result<()> {
    let manifest = project.dir.join("Cargo.toml");
    let binary = binary_name(&manifest)?;
    // A shared target directory (as `cargo xtask samples` sets) is honoured; otherwise the
    // project's own.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| project.dir.join("target"), PathBuf::from);
    let mut cargo = Command::new(cargo_program());
    cargo
        .args(["build", "--release", "--target", TARGET, "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    // A committed lock file is what the app was tested with: build exactly that.
    if project.dir.join("Cargo.lock").is_file() {
        cargo.arg("--locked");
    }
    progress.run(&format!("cargo build ({TARGET} component)"), &mut cargo)?;
    let built = target_dir.join(format!("{TARGET}/release/{binary}.wasm"));
    std::fs::copy(&built, out)
        .with_context(|| format!("copying {} to {}", built.display(), out.display()))?;
    Ok(())
}

/// `$CARGO` when run under cargo (the toolchain the caller chose), else `cargo`.
fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// The name of the package's one binary target, from `cargo metadata`.
fn binary_name(manifest: &Path) -> Result<String> {
    let out = Command::new(cargo_program())
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed for {}: {}",
            manifest.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("reading cargo metadata's answer")?;
    let bins: Vec<&str> = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter(|t| {
            t["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
        })
        .filter_map(|t| t["name"].as_str())
        .collect();
    match bins.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!(
            "{} has no binary target: an app is a program (src/main.rs)",
            manifest.display()
        ),
        several => bail!(
            "{} has several binary targets ({}): an app is one program",
            manifest.display(),
            several.join(", ")
        ),
    }
}
