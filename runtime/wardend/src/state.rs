//! The device state directory, reached only through a `cap-std` directory handle: no name that
//! comes from a package or a request can reach outside it (`..`, absolute paths and symlinks
//! leading out are refused by cap-std's resolution).
//!
//! ```text
//! STATE/
//!   index.json          the one commit point: installed apps, rollback records, uids
//!   store/<sha256>/     one verified, immutable install per signed header
//!     meta.json         header, manifest text, code digest
//!     payloads/...      the package's payloads
//!     code.cwasm        the precompiled code the worker loads (digest in the index)
//!   staging/<tmp>/      an install in progress; removed at start-up
//!   storage/<id>.img    each app's MutableStorage: its own ext4 image (see `storage`)
//!   storage/<id>.json   the quota that image is configured for
//!   storage/<id>/       where it is mounted (a plain directory where mounting is impossible)
//!   reports/<seq>.json  failure reports, bounded
//!   updates/updates.json  staged updates, deferrals, recent outcomes (see `updates`)
//!   updates/<id>.wpkg   a staged update's package
//! ```
//!
//! **Atomicity**: an install writes everything under `staging/`, fsyncs it, renames it into
//! `store/`, then replaces `index.json` by write-temp + fsync + rename + fsync of the directory.
//! A crash before the rename of the index leaves the old index (and a stray store or staging
//! directory that start-up removes); after it, the new one. Nothing reads a store directory
//! the index does not name.

use std::io::{Read, Write};
use std::path::Path;

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use crate::error::StateError;

pub(crate) const INDEX: &str = "index.json";
pub(crate) const STORE: &str = "store";
pub(crate) const STAGING: &str = "staging";
pub(crate) const STORAGE: &str = "storage";
pub(crate) const REPORTS: &str = "reports";

/// The state directory.
#[derive(Debug)]
pub struct StateDir {
    root: Dir,
    path: std::path::PathBuf,
}

impl StateDir {
    /// Opens (creating if needed) the state directory at `path`, with its subdirectories.
    pub fn open(path: &Path) -> Result<StateDir, StateError> {
        std::fs::create_dir_all(path).map_err(|e| StateError::io("create", path, e))?;
        let root = Dir::open_ambient_dir(path, ambient_authority())
            .map_err(|e| StateError::io("open", path, e))?;
        for sub in [STORE, STAGING, STORAGE, REPORTS] {
            root.create_dir_all(sub)
                .map_err(|e| StateError::io("create", &path.join(sub), e))?;
        }
        Ok(StateDir {
            root,
            path: path.to_path_buf(),
        })
    }

    /// The directory's path, for messages only; all access goes through the handle.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn dir(&self, sub: &str) -> Result<Dir, StateError> {
        self.root
            .open_dir(sub)
            .map_err(|e| StateError::io("open", &self.path.join(sub), e))
    }

    pub(crate) fn root(&self) -> &Dir {
        &self.root
    }

    /// Reads a file of at most `limit` bytes.
    pub(crate) fn read_bounded(
        &self,
        dir: &Dir,
        name: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, StateError> {
        let file = match dir.open(name) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::io("open", &self.path.join(name), e)),
        };
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| StateError::io("read", &self.path.join(name), e))?;
        if bytes.len() as u64 > limit {
            return Err(StateError::TooLarge {
                what: name.to_owned(),
                limit,
            });
        }
        Ok(Some(bytes))
    }
}

/// Replaces `name` in `dir` atomically: a crash leaves the old content or the new, never a mix.
pub(crate) fn write_atomic(dir: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = format!(".{name}.tmp-{}", std::process::id());
    {
        let mut file = dir.open_with(
            &tmp,
            OpenOptions::new().write(true).create(true).truncate(true),
        )?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    dir.rename(&tmp, dir, name)?;
    sync_dir(dir)
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Dir) -> std::io::Result<()> {
    dir.open(".")?.sync_all()
}

/// Writes `bytes` to a new file `name` and makes it durable.
pub(crate) fn write_new(dir: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = dir.open_with(name, OpenOptions::new().write(true).create_new(true))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Fsyncs every file and directory below `dir`, depth first, so a later rename of `dir`
/// publishes only durable content.
pub(crate) fn sync_tree(dir: &Dir) -> std::io::Result<()> {
    for entry in dir.entries()? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            sync_tree(&entry.open_dir()?)?;
        } else {
            entry.open()?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// A fresh, unique name for a staging directory.
pub(crate) fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{n}-{nanos:08x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        write_atomic(state.root(), "x.json", b"one").unwrap();
        write_atomic(state.root(), "x.json", b"two").unwrap();
        assert_eq!(std::fs::read(tmp.path().join("x.json")).unwrap(), b"two");
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn names_cannot_escape_the_state_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let inner = tmp.path().join("state");
        let state = StateDir::open(&inner).unwrap();
        std::fs::write(tmp.path().join("secret"), b"x").unwrap();
        assert!(state.root().open("../secret").is_err());
        assert!(state.root().open("/etc/passwd").is_err());
        std::os::unix::fs::symlink("../secret", inner.join("link")).unwrap();
        assert!(state.root().open("link").is_err(), "a symlink led outside");
    }

    #[test]
    fn bounded_reads_refuse_large_files() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        write_atomic(state.root(), "big", &[0u8; 100]).unwrap();
        assert!(state.read_bounded(state.root(), "big", 10).is_err());
        assert_eq!(
            state
                .read_bounded(state.root(), "big", 100)
                .unwrap()
                .unwrap()
                .len(),
            100
        );
        assert!(
            state
                .read_bounded(state.root(), "none", 10)
                .unwrap()
                .is_none()
        );
    }
}
