//! The guest apps the end-to-end tests run: built from `sample-apps/` into `target/guests`.
//!
//! - `device-probe` runs the device steps given as its arguments and prints one line per step,
//!   so a test can check what the host grants, refuses and returns (syntax in its `main.rs`).
//! - `net-probe` runs network steps (`std::net`, so `wasi:sockets`) given as its arguments.
//!
//! Each is its own Cargo project (not a member of the host workspace) with a committed
//! `Cargo.lock`, built with `--locked` so a test never runs against dependencies nobody chose.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{cargo, step};

/// The built components.
#[derive(Clone, Debug)]
pub(crate) struct Guests {
    pub(crate) device_probe: PathBuf,
    pub(crate) net_probe: PathBuf,
}

/// Builds every test guest (release, `wasm32-wasip2`, into `target/guests`)
/// and returns their components.
pub(crate) fn build_guests(root: &Path) -> Result<Guests> {
    Ok(Guests {
        device_probe: build_guest(root, "device-probe")?,
        net_probe: build_guest(root, "net-probe")?,
    })
}

/// Builds `sample-apps/<name>` and returns `<name>.wasm`, checked to be a component.
pub(crate) fn build_guest(root: &Path, name: &str) -> Result<PathBuf> {
    let target_dir = root.join("target/guests");
    step(
        &format!("build the {name} guest (Rust -> wasm32-wasip2 component)"),
        cargo(root)
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(root.join("sample-apps").join(name).join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir),
    )?;
    let wasm = target_dir.join(format!("wasm32-wasip2/release/{name}.wasm"));
    check_component(&wasm)?;
    Ok(wasm)
}

/// Fails unless `wasm` is a component: a core module (what a wasip1 build or a changed linker
/// would give) could not import `warden:device`, and the host would refuse it with a less
/// direct message.
fn check_component(wasm: &Path) -> Result<()> {
    // The preamble: `\0asm`, then version 0x0d and layer 1 for a component (a core module has
    // version 1, layer 0).
    const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    let bytes = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    if !bytes.starts_with(&COMPONENT_PREAMBLE) {
        bail!(
            "{} is not a WebAssembly component (preamble {:02x?})",
            wasm.display(),
            &bytes[..bytes.len().min(8)]
        );
    }
    Ok(())
}
