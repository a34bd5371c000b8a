//! Building an AssemblyScript app: `asc` with AssemblyScript's WASI shim, which makes a WASI
//! preview-1 core module (`_start`, `wasi_snapshot_preview1` imports). The worker runs such a
//! module with preview 1 and nothing else: no device interfaces, no network (see
//! docs/api/world.md). The compiler and the shim are the SDK's `js/node_modules`.

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use super::javascript::{node, sdk_js};
use super::{Progress, Project, Sdk};

/// The files `warden app new --lang assemblyscript` writes (see `Language::template`). The
/// manifest is its own: a preview-1 module cannot use a peripheral, so it asks for none.
pub(super) const TEMPLATE: &[(&str, &str)] = &[
    (
        "assembly/index.ts",
        include_str!("../../templates/assemblyscript/index.ts"),
    ),
    (
        "README.md",
        include_str!("../../templates/assemblyscript/README.md"),
    ),
    (".gitignore", "/build\n"),
    (
        "app_manifest.json",
        include_str!("../../templates/assemblyscript/app_manifest.json"),
    ),
];

/// The compiler, relative to the SDK's `js/`.
const ASC: &str = "node_modules/assemblyscript/bin/asc.js";

/// The WASI shim's configuration, relative to the SDK's `js/`.
const WASI_SHIM_CONFIG: &str = "node_modules/@assemblyscript/wasi-shim/asconfig.json";

/// Builds `project` into `out` (an absolute path whose directory exists).
pub(super) fn build(
    project: &Project,
    sdk: &Sdk,
    out: &Path,
    progress: &mut Progress,
) -> Result<()> {
    let js = sdk_js(sdk, &[ASC, WASI_SHIM_CONFIG])?;
    // `node asc.js` rather than `.bin/asc`: the same program, without relying on the
    // `#!/usr/bin/env node` line finding the node we checked. asc runs in the SDK's `js/` with
    // the shim's configuration named relative to it: given an absolute `--config`, asc 0.28
    // resolves the shim's `lib` directory wrongly and fails with "Element 'wasi_abort' not
    // found". The source and the output are absolute, so the project can be anywhere.
    let mut asc = Command::new(node(sdk)?);
    asc.current_dir(&js)
        .arg(ASC)
        .arg(project.dir.join("assembly/index.ts"))
        .arg("--config")
        .arg(WASI_SHIM_CONFIG)
        .arg("-O3")
        .arg("-o")
        .arg(out);
    progress.run("asc (AssemblyScript, WASI preview-1 module)", &mut asc)
}
