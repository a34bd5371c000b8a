//! `cargo xtask samples [NAME...]`: every sample app built from source the way a developer
//! builds an app — `warden app build` — into `target/samples/<name>.wasm`, where the sample
//! tests (`WARDEN_SAMPLES`) and the demo take them from.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::{cargo, step};

/// The sample apps (directories of `sample-apps/`) and their languages, in build order.
pub(crate) const SAMPLES: &[(&str, &str)] = &[
    ("hello", "Rust"),
    ("blinky", "Rust"),
    ("intercore", "Rust"),
    ("uart-echo", "C"),
    ("blinky-py", "Python"),
    ("sensor-logger", "Python"),
    ("telemetry", "JavaScript"),
    ("heartbeat", "AssemblyScript"),
];

/// Where the built samples go, relative to the repository root.
pub(crate) const OUT: &str = "target/samples";

/// Every sample's name.
pub(crate) fn all() -> Vec<&'static str> {
    SAMPLES.iter().map(|(n, _)| *n).collect()
}

/// `cargo xtask samples [NAME...]`.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let names: Vec<&str> = if args.is_empty() {
        all()
    } else {
        args.iter().map(String::as_str).collect()
    };
    let built = build(root, &names)?;
    println!();
    for wasm in built {
        println!("{}", wasm.display());
    }
    Ok(())
}

/// Builds the SDK, the `warden` CLI, and then each of `names` with `warden app build`.
pub(crate) fn build(root: &Path, names: &[&str]) -> Result<Vec<PathBuf>> {
    for name in names {
        if !SAMPLES.iter().any(|(n, _)| n == name) {
            bail!(
                "no sample {name:?}; the samples are {}",
                SAMPLES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    crate::setup::ensure_rust_targets(root)?;
    let sdk = crate::sdk::ensure(root)?;
    step(
        "build the warden CLI",
        cargo(root).args(["build", "--locked", "-p", "warden-cli"]),
    )?;
    let warden = root.join("target/debug/warden");
    let out = root.join(OUT);
    std::fs::create_dir_all(&out)?;
    let mut built = Vec::new();
    for name in names {
        let language = SAMPLES
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, l)| *l);
        let wasm = out.join(format!("{name}.wasm"));
        step(
            &format!("build the {name} sample ({language})"),
            std::process::Command::new(&warden)
                .current_dir(root)
                // Rust samples share one target directory (and so their dependencies' builds).
                .env("CARGO_TARGET_DIR", root.join("target/guests"))
                .args(["app", "build"])
                .arg(root.join("sample-apps").join(name))
                .arg("--sdk")
                .arg(&sdk)
                .arg("-o")
                .arg(&wasm),
        )?;
        built.push(wasm);
    }
    Ok(built)
}
