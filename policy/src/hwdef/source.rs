//! Where hardware-definition files come from.
//!
//! The policy crate does no I/O: the set loader asks a [`HwdefSource`] for each file by the path
//! an `Imports` entry writes. The device and the CLI implement it over directories (the importing
//! file's directory first, then search directories, like the Azure Sphere SDK); tests use the
//! in-memory [`MemorySource`].

use std::collections::BTreeMap;

/// One file handed out by a source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// A stable name for the file (e.g. its canonical path). Two imports that reach the same
    /// file must get the same id: cycles and shared imports are recognised by it, and messages
    /// name files by it.
    pub id: String,
    pub bytes: Vec<u8>,
}

/// Why a source could not hand out a file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("cannot find `{path}` (searched {})", searched.join(", "))]
    NotFound { path: String, searched: Vec<String> },
    #[error("`{id}` is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge { id: String, size: u64, limit: usize },
    #[error("`{path}` is not an acceptable import path: {reason}")]
    BadPath { path: String, reason: String },
    #[error("cannot read `{id}`: {message}")]
    Unreadable { id: String, message: String },
}

/// Hands out hardware-definition (and board) files by the path their importer wrote.
pub trait HwdefSource {
    /// Opens `path` as written by the file `from` (an id this source handed out earlier), or as
    /// given by the caller when `from` is `None`. Must refuse files larger than `max_bytes`
    /// before reading them whole.
    fn open(
        &self,
        from: Option<&str>,
        path: &str,
        max_bytes: usize,
    ) -> Result<SourceFile, SourceError>;
}

/// Files held in memory, named by `/`-separated paths. A relative import is looked up next to
/// its importer first, then in each search directory in order, then from the root.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    files: BTreeMap<String, Vec<u8>>,
    search: Vec<String>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    pub fn insert(&mut self, path: &str, bytes: impl Into<Vec<u8>>) {
        self.files.insert(normalize(path), bytes.into());
    }

    /// Adds a search directory, builder style.
    pub fn with_search_dir(mut self, dir: &str) -> Self {
        self.search.push(normalize(dir));
        self
    }

    /// Adds a file, builder style.
    pub fn with(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.insert(path, bytes);
        self
    }
}

impl HwdefSource for MemorySource {
    fn open(
        &self,
        from: Option<&str>,
        path: &str,
        max_bytes: usize,
    ) -> Result<SourceFile, SourceError> {
        let mut searched = Vec::new();
        if let Some(from) = from {
            searched.push(normalize(&format!("{}/{path}", parent(from))));
        }
        for dir in &self.search {
            searched.push(normalize(&format!("{dir}/{path}")));
        }
        searched.push(normalize(path));
        for candidate in &searched {
            if let Some(bytes) = self.files.get(candidate) {
                if bytes.len() > max_bytes {
                    return Err(SourceError::TooLarge {
                        id: candidate.clone(),
                        size: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                        limit: max_bytes,
                    });
                }
                return Ok(SourceFile {
                    id: candidate.clone(),
                    bytes: bytes.clone(),
                });
            }
        }
        searched.dedup();
        Err(SourceError::NotFound {
            path: path.to_owned(),
            searched,
        })
    }
}

/// The directory part of a `/`-separated path (empty for a bare file name).
fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Removes empty and `.` segments and folds `..` lexically.
fn normalize(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|s| *s != "..") {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_found_next_to_the_importer_first() {
        let src = MemorySource::new()
            .with("a.json", "top")
            .with("boards/a.json", "board")
            .with("boards/b.json", "b");
        let f = src.open(Some("boards/b.json"), "a.json", 100).unwrap();
        assert_eq!(f.id, "boards/a.json");
        let f = src.open(Some("b.json"), "a.json", 100).unwrap();
        assert_eq!(f.id, "a.json");
        let f = src.open(Some("boards/b.json"), "../a.json", 100).unwrap();
        assert_eq!(f.id, "a.json");
        assert!(matches!(
            src.open(None, "a.json", 2),
            Err(SourceError::TooLarge { .. })
        ));
        assert!(matches!(
            src.open(Some("boards/b.json"), "c.json", 100),
            Err(SourceError::NotFound { searched, .. }) if searched.len() == 2
        ));
    }
}
