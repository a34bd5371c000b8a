//! Errors of the supervisor library: one type per operation, each naming what failed.

use std::path::Path;

/// The state directory could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{what} is damaged: {reason}")]
    Corrupt { what: String, reason: String },
}

impl StateError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        StateError::Io {
            action,
            path: path.display().to_string(),
            source,
        }
    }
}
