//! `cargo xtask sdk`: the SDK directory `target/sdk/` that `warden app build` takes every
//! language's tools and generated bindings from (its layout is documented on `Sdk` in
//! `image-builder/src/build/mod.rs`). Everything in it is generated from the WIT or installed
//! at a pinned version; nothing in it is committed. Each step does nothing when its output is
//! already there and current.

mod c;
mod javascript;
mod python;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The SDK directory, relative to the repository root.
pub(crate) const DIR: &str = "target/sdk";

/// Makes (or brings up to date) the whole SDK and returns its directory.
pub(crate) fn ensure(root: &Path) -> Result<PathBuf> {
    // Rust apps build with the pinned toolchain's wasm32-wasip2 target.
    crate::setup::ensure_rust_targets(root)?;
    let sdk = root.join(DIR);
    std::fs::create_dir_all(&sdk).with_context(|| format!("creating {}", sdk.display()))?;
    println!(
        "\n==> SDK: the app world's WIT tree in {}/wit",
        sdk.display()
    );
    let sources = warden_wit::Sources::locate(root)?;
    warden_wit::materialise(&sources, &sdk.join("wit"))?;
    copy_component_linker(root, &sdk)?;
    c::ensure(root, &sdk)?;
    python::ensure(root, &sdk)?;
    javascript::ensure(root, &sdk)?;
    Ok(sdk)
}

/// `cargo xtask sdk`.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("usage: cargo xtask sdk");
    }
    let sdk = ensure(root)?;
    println!("\nthe SDK is in {}", sdk.display());
    Ok(())
}

/// Copies `wasm-component-ld` (the linker that turns a core module into a component, shipped
/// in the pinned toolchain's sysroot) to `bin/`, so `warden app build` needs no rustup.
fn copy_component_linker(root: &Path, sdk: &Path) -> Result<()> {
    let out = std::process::Command::new("rustc")
        .current_dir(root)
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc --print sysroot")?;
    if !out.status.success() {
        bail!("rustc --print sysroot failed");
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let linker = sysroot.join("lib/rustlib/x86_64-unknown-linux-gnu/bin/wasm-component-ld");
    if !linker.is_file() {
        bail!(
            "the toolchain has no wasm-component-ld ({} is missing); `cargo install \
             wasm-component-ld` and copy it to {}/bin/",
            linker.display(),
            sdk.display()
        );
    }
    let bin = sdk.join("bin");
    std::fs::create_dir_all(&bin)?;
    let target = bin.join("wasm-component-ld");
    std::fs::copy(&linker, &target)
        .with_context(|| format!("copying {} to {}", linker.display(), target.display()))?;
    Ok(())
}
