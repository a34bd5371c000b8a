//! The c part of the SDK directory (see `mod.rs`).

use std::path::Path;

use anyhow::Result;

/// Installs what c apps are built with and writes their generated bindings into `sdk`.
pub(super) fn ensure(root: &Path, sdk: &Path) -> Result<()> {
    let _ = (root, sdk);
    Ok(())
}
