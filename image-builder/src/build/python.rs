//! Building a Python app: componentize-py (from the SDK's virtual environment) turns the
//! project's `app.py`, with its imports and a CPython interpreter, into a component of the app
//! world. The bindings it imports (`wit_world`) are generated from the WIT while it builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use super::{Progress, Project, Sdk};

/// The files `warden app new --lang python` writes (see `Language::template`).
pub(super) const TEMPLATE: &[(&str, &str)] = &[
    ("app.py", include_str!("../../templates/python/app.py")),
    // componentize-py imports the app while it builds, which leaves `__pycache__/` beside it.
    (".gitignore", "/build\n__pycache__/\n"),
    (
        "app_manifest.json",
        include_str!("../../templates/app_manifest.json"),
    ),
];

/// The Python module componentize-py wraps: `app.py` (the project's marker).
const APP_MODULE: &str = "app";

/// The world every app targets.
const WORLD: &str = "warden:app/app";

/// Builds `project` into `out` (an absolute path whose directory exists).
pub(super) fn build(
    project: &Project,
    sdk: &Sdk,
    out: &Path,
    progress: &mut Progress,
) -> Result<()> {
    let tool = componentize_py(sdk)?;
    let wit = sdk.wit()?;
    let mut cmd = Command::new(&tool);
    cmd.arg("-d")
        .arg(&wit)
        .args(["-w", WORLD, "componentize", APP_MODULE, "-p"])
        .arg(&project.dir)
        .arg("-o")
        .arg(out);
    progress.run("componentize-py (Python component)", &mut cmd)
}

/// The SDK's componentize-py, which must be there.
fn componentize_py(sdk: &Sdk) -> Result<PathBuf> {
    sdk.file("python/venv/bin/componentize-py", "componentize-py")
}
