//! Building a JavaScript app: `node <sdk>/js/build.mjs`, which runs ComponentizeJS (the
//! StarlingMonkey engine with the app's `app.js` pre-initialised in it) against the app world's
//! WIT tree and writes a component. The engine and its tools are the SDK's `js/node_modules`,
//! pinned by `host-api/sdk/js/package-lock.json`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use super::{Progress, Project, Sdk};

/// The files `warden app new --lang js` writes (see `Language::template`).
pub(super) const TEMPLATE: &[(&str, &str)] = &[
    ("app.js", include_str!("../../templates/js/app.js")),
    ("README.md", include_str!("../../templates/js/README.md")),
    (".gitignore", "/build\n"),
    (
        "app_manifest.json",
        include_str!("../../templates/app_manifest.json"),
    ),
];

/// Builds `project` into `out` (an absolute path whose directory exists).
pub(super) fn build(
    project: &Project,
    sdk: &Sdk,
    out: &Path,
    progress: &mut Progress,
) -> Result<()> {
    let js = sdk_js(
        sdk,
        &[
            "build.mjs",
            "node_modules/@bytecodealliance/componentize-js",
        ],
    )?;
    let wit = sdk.wit()?;
    let mut node = Command::new(node(sdk)?);
    node.current_dir(&project.dir)
        .arg(js.join("build.mjs"))
        .arg("--source")
        .arg(project.dir.join("app.js"))
        .arg("--wit")
        .arg(&wit)
        .arg("--world")
        .arg("warden:app/app")
        .arg("--out")
        .arg(out);
    progress.run("componentize-js (JavaScript component)", &mut node)
}

/// The SDK's `js/` directory, which must hold each of `needed` (relative to it): what `cargo
/// xtask sdk` installs there.
pub(super) fn sdk_js(sdk: &Sdk, needed: &[&str]) -> Result<PathBuf> {
    for file in needed {
        sdk.file(&format!("js/{file}"), "JavaScript tools installed")?;
    }
    sdk.dir("js")
}

/// The Node.js the SDK's tools run on: the SDK's own `bin/node` (which `cargo xtask sdk`
/// installs where the machine's is older than 20), else `node` on `PATH`.
pub(super) fn node(sdk: &Sdk) -> Result<PathBuf> {
    let own = sdk.root.join("bin/node");
    if own.is_file() {
        return Ok(own);
    }
    match super::on_path("node") {
        Some(node) => Ok(node),
        None => bail!(
            "node is not on PATH: JavaScript and AssemblyScript apps are built with Node.js 20 \
             or newer (`cargo xtask sdk` installs it)"
        ),
    }
}
