//! Reading inputs with a size bound, and writing outputs atomically.
//!
//! Every output is written to a temporary file in the destination directory (created mode 0600),
//! flushed to disk, given its final mode, and then renamed into place: with `force` the rename
//! replaces an existing file; without it the rename refuses to (Linux `RENAME_NOREPLACE`, or a
//! link-and-unlink elsewhere), so an existing key is never overwritten even by a racing
//! process. A failed command leaves no partial file behind.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// Who may read a file the tool writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 0600: private keys.
    Private,
    /// 0644: public keys, trust files, tokens, packages.
    Public,
}

impl Mode {
    fn bits(self) -> u32 {
        match self {
            Mode::Private => 0o600,
            Mode::Public => 0o644,
        }
    }
}

/// Reads a whole file of at most `max` bytes; `what` names it in errors.
pub(crate) fn read_bounded(path: &Path, max: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let file =
        fs::File::open(path).with_context(|| format!("cannot open {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() > max {
        bail!(
            "{what} {} is larger than the limit of {max} bytes",
            path.display()
        );
    }
    Ok(bytes)
}

/// Reads a UTF-8 text file of at most `max` bytes.
pub(crate) fn read_text(path: &Path, max: usize, what: &str) -> anyhow::Result<String> {
    let bytes = read_bounded(path, max, what)?;
    String::from_utf8(bytes).with_context(|| format!("{what} {} is not UTF-8", path.display()))
}

/// Refuses early, before any work, if `path` exists and `force` is not set.
pub(crate) fn refuse_existing(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && fs::symlink_metadata(path).is_ok() {
        bail!(
            "{} already exists; refusing to overwrite it (use --force to replace it)",
            path.display()
        );
    }
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes a file atomically through `fill`; see the module comment.
pub(crate) fn write_atomic(
    path: &Path,
    mode: Mode,
    force: bool,
    fill: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    refuse_existing(path, force)?;
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".warden-")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut out)?;
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode.bits()))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    let persisted = if force {
        tmp.persist(path).map(|_| ())
    } else {
        tmp.persist_noclobber(path).map(|_| ())
    };
    persisted.map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists; refusing to overwrite it (use --force to replace it)",
                path.display()
            )
        } else {
            anyhow::Error::new(e.error).context(format!("cannot write {}", path.display()))
        }
    })
}

/// Writes `bytes` atomically to `path`.
pub(crate) fn write_bytes(
    path: &Path,
    bytes: &[u8],
    mode: Mode,
    force: bool,
) -> anyhow::Result<()> {
    write_atomic(path, mode, force, |out| {
        out.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))
    })
}
