//! The Python part of the SDK directory (see `mod.rs`): `python/venv/`, a virtual environment
//! with componentize-py at a pinned version (what `warden app build` runs for a Python app),
//! and `python/bindings/`, the Python modules componentize-py generates from the app world, for
//! editors and type checkers (apps never ship them: componentize-py generates the real ones
//! while it builds).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The componentize-py release apps are built with. It bundles its own CPython (3.14 in this
/// release), so the host's Python only runs pip.
const COMPONENTIZE_PY: &str = "0.25.1";

/// The world every app targets (`host-api/wit-app/app.wit`).
const WORLD: &str = "warden:app/app";

/// Makes `sdk/python/venv` with componentize-py [`COMPONENTIZE_PY`] (nothing to do when that
/// exact version is there) and writes the bindings to `sdk/python/bindings` (nothing to do when
/// they were generated from the same WIT by the same version).
pub(super) fn ensure(_root: &Path, sdk: &Path) -> Result<()> {
    let dir = sdk.join("python");
    let venv = dir.join("venv");
    let tool = venv.join("bin/componentize-py");
    if installed_version(&tool).as_deref() != Some(COMPONENTIZE_PY) {
        println!(
            "\n==> SDK: componentize-py {COMPONENTIZE_PY} in {}",
            venv.display()
        );
        make_venv(&venv)?;
        let status = Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
                &format!("componentize-py=={COMPONENTIZE_PY}"),
            ])
            .status()
            .context("running pip in the SDK's Python virtual environment")?;
        if !status.success() {
            bail!(
                "`pip install componentize-py=={COMPONENTIZE_PY}` into {} failed ({status})",
                venv.display()
            );
        }
        match installed_version(&tool) {
            Some(v) if v == COMPONENTIZE_PY => {}
            other => bail!(
                "after installing componentize-py {COMPONENTIZE_PY}, {} reports {other:?}",
                tool.display()
            ),
        }
    }
    write_bindings(&tool, &sdk.join("wit"), &dir.join("bindings"))
}

/// The version `componentize-py --version` prints, if it runs.
fn installed_version(tool: &Path) -> Option<String> {
    let out = Command::new(tool).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    // "componentize-py 0.25.1"
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(str::to_owned)
}

/// `python3 -m venv venv`, after making sure Python and its `venv` module are there (Debian
/// ships `venv`'s pip bootstrap, `ensurepip`, separately, in `python3-venv`). A venv whose
/// Python no longer runs (the host's Python was replaced) is made again.
fn make_venv(venv: &Path) -> Result<()> {
    let python = venv.join("bin/python");
    let works = Command::new(&python)
        .args(["-m", "pip", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Ok(());
    }
    crate::setup::ensure_commands(&[("python3", "python3")])?;
    if !python_has_venv() {
        crate::setup::apt_install(&["python3-venv"])?;
        if !python_has_venv() {
            bail!(
                "`python3` ({}) cannot make virtual environments: its `venv` and `ensurepip` \
                 modules are missing, and installing Debian's python3-venv did not help (is \
                 `python3` on PATH another Python than Debian's?)",
                which_python3().display()
            );
        }
    }
    if venv.exists() {
        std::fs::remove_dir_all(venv).with_context(|| {
            format!("removing the broken virtual environment {}", venv.display())
        })?;
    }
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .context("running python3 -m venv")?;
    if !status.success() {
        bail!("`python3 -m venv {}` failed ({status})", venv.display());
    }
    Ok(())
}

fn python_has_venv() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn which_python3() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("python3"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// `componentize-py -d WIT -w warden:app/app bindings OUT`, unless `OUT/.generated-from` says
/// it was made by this version from the same WIT. Written beside `OUT` first and then moved in,
/// so an interrupted run never leaves half a tree that looks current.
fn write_bindings(tool: &Path, wit: &Path, out: &Path) -> Result<()> {
    let stamp = format!(
        "componentize-py {COMPONENTIZE_PY}, WIT {:016x}\n",
        tree_hash(wit)?
    );
    let stamp_path = out.join(".generated-from");
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    println!("\n==> SDK: Python bindings in {}", out.display());
    let fresh = out.with_extension("new");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).with_context(|| format!("removing {}", fresh.display()))?;
    }
    let status = Command::new(tool)
        .arg("-d")
        .arg(wit)
        .args(["-w", WORLD, "bindings"])
        .arg(&fresh)
        .status()
        .with_context(|| format!("running {}", tool.display()))?;
    if !status.success() {
        bail!(
            "`{} -d {} -w {WORLD} bindings {}` failed ({status})",
            tool.display(),
            wit.display(),
            fresh.display()
        );
    }
    std::fs::write(fresh.join(".generated-from"), &stamp)?;
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("removing {}", out.display()))?;
    }
    std::fs::rename(&fresh, out)
        .with_context(|| format!("moving {} to {}", fresh.display(), out.display()))?;
    Ok(())
}

/// A hash of every file under `dir` (paths and contents, in sorted order): whether the WIT
/// changed since the bindings were generated. Only compared with the hash the same xtask
/// wrote, so std's hasher (stable within one toolchain) is enough.
fn tree_hash(dir: &Path) -> Result<u64> {
    fn files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                files(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut all = Vec::new();
    files(dir, &mut all)?;
    all.sort();
    let mut hasher = std::hash::DefaultHasher::new();
    for path in all {
        path.strip_prefix(dir).unwrap_or(&path).hash(&mut hasher);
        std::fs::read(&path)
            .with_context(|| format!("reading {}", path.display()))?
            .hash(&mut hasher);
    }
    Ok(hasher.finish())
}
