//! Building a c app (see the table in `mod.rs`).

use std::path::Path;

use anyhow::{Result, bail};

use super::{Progress, Project, Sdk};

/// The files `warden app new --lang ...` writes (see `Language::template`).
pub(super) const TEMPLATE: &[(&str, &str)] = &[];

/// Builds `project` into `out` (an absolute path whose directory exists).
pub(super) fn build(
    project: &Project,
    sdk: &Sdk,
    out: &Path,
    progress: &mut Progress,
) -> Result<()> {
    let _ = (project, sdk, out, progress);
    bail!("building c apps is not implemented yet")
}
