//! `cargo xtask fuzz`: runs each cargo-fuzz target for a bounded time, starting from the seed
//! corpus committed in `fuzz/corpus/<target>/`. New inputs go to a scratch directory, so a short
//! CI run never changes the committed corpus; crashes land in `fuzz/artifacts/<target>/`.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::{cargo, step};

/// Every fuzz target, one per parser of untrusted input.
pub(crate) const TARGETS: &[&str] = &[
    "json",
    "manifest",
    "hwdef",
    "board",
    "package",
    "trust",
    "broker",
    "sim_request",
    "firmware",
    "intercore",
];

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seconds" => {
                seconds = it
                    .next()
                    .context("--seconds needs a number")?
                    .parse()
                    .context("--seconds needs a number")?;
            }
            t if TARGETS.contains(&t) => targets.push(t.to_owned()),
            other => bail!("unknown fuzz target or flag `{other}`; targets: {TARGETS:?}"),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    crate::setup::ensure_rust_targets(root)?;
    let fuzz_dir = root.join("fuzz");
    for target in &targets {
        let seeds = fuzz_dir.join("corpus").join(target);
        let scratch = tempdir(target)?;
        // cargo-fuzz passes -Z flags to rustc; RUSTC_BOOTSTRAP lets the pinned stable toolchain
        // accept them, so fuzzing needs no second toolchain.
        step(
            &format!("fuzz {target} for {seconds}s"),
            cargo(root)
                .current_dir(&fuzz_dir)
                .env("RUSTC_BOOTSTRAP", "1")
                .args(["fuzz", "run", target])
                .arg(&scratch)
                .arg(&seeds)
                .args([
                    "--",
                    &format!("-max_total_time={seconds}"),
                    "-rss_limit_mb=2048",
                    "-max_len=262144",
                ]),
        )?;
        std::fs::remove_dir_all(&scratch).ok();
    }
    Ok(())
}

fn tempdir(target: &str) -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("warden-fuzz-{target}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
