//! What the supervisor knows about the device it runs on: its trust store, its board file and
//! hardware definitions, its id and development unlock token.

use std::path::{Path, PathBuf};

use warden_policy::board::Board;
use warden_policy::hwdef::{HwdefSet, MemorySource, SetLimits};
use warden_policy::trust::{TrustStore, UnlockToken, VerifyContext};

use crate::file::ReadBounded;

/// Most files read from a board directory.
const MAX_BOARD_FILES: usize = 256;
/// Largest file read from a board directory.
const MAX_BOARD_FILE_BYTES: u64 = 1024 * 1024;
/// Largest trust file or unlock token.
const MAX_TRUST_BYTES: u64 = 1024 * 1024;

/// Why the device configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: more than {MAX_BOARD_FILES} files in the board directory")]
    TooManyFiles { path: PathBuf },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("invalid board:\n{0}")]
    Board(String),
    #[error("invalid trust file {path}: {reason}")]
    Trust { path: PathBuf, reason: String },
    #[error("invalid unlock token {path}: {reason}")]
    Unlock { path: PathBuf, reason: String },
}

/// The device's configuration.
#[derive(Debug)]
pub struct DeviceConfig {
    pub trust: TrustStore,
    pub board: Board,
    pub hwdefs: HwdefSet,
    pub device_id: Option<String>,
    pub unlock: Option<UnlockToken>,
}

impl DeviceConfig {
    /// Loads the board file (with every hardware definition beside it) and the trust file.
    pub fn load(
        board_file: &Path,
        trust_file: &Path,
        device_id: Option<String>,
        unlock_file: Option<&Path>,
    ) -> Result<DeviceConfig, DeviceError> {
        let (board, hwdefs) = load_board(board_file)?;
        let trust_bytes = read_bounded(trust_file, MAX_TRUST_BYTES)?;
        let trust = TrustStore::from_json(&trust_bytes).map_err(|e| DeviceError::Trust {
            path: trust_file.to_path_buf(),
            reason: e.to_string(),
        })?;
        let unlock = match unlock_file {
            Some(path) => {
                let bytes = read_bounded(path, MAX_TRUST_BYTES)?;
                Some(
                    UnlockToken::from_json(&bytes).map_err(|e| DeviceError::Unlock {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        Ok(DeviceConfig {
            trust,
            board,
            hwdefs,
            device_id,
            unlock,
        })
    }

    /// The context packages are verified in, at the current time.
    pub fn verify_context(&self) -> VerifyContext {
        VerifyContext {
            device_id: self.device_id.clone(),
            now: crate::now(),
            unlock: self.unlock.clone(),
        }
    }
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, DeviceError> {
    crate::file::read_bounded(path, limit).map_err(|e| match e {
        ReadBounded::Io(source) => DeviceError::Io {
            path: path.to_path_buf(),
            source,
        },
        ReadBounded::TooLarge => DeviceError::TooLarge {
            path: path.to_path_buf(),
            limit,
        },
    })
}

/// Reads every `.json` file under the board file's directory into memory and loads the board
/// and its hardware-definition set from there, so import resolution is the policy crate's alone.
pub fn load_board(board_file: &Path) -> Result<(Board, HwdefSet), DeviceError> {
    let dir = board_file.parent().unwrap_or(Path::new("."));
    let mut source = MemorySource::new();
    let mut count = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|source| DeviceError::Io {
            path: current.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "json") {
                count += 1;
                if count > MAX_BOARD_FILES {
                    return Err(DeviceError::TooManyFiles {
                        path: dir.to_path_buf(),
                    });
                }
                let bytes = read_bounded(&path, MAX_BOARD_FILE_BYTES)?;
                let relative = path.strip_prefix(dir).unwrap_or(&path);
                source.insert(&relative.to_string_lossy(), bytes);
            }
        }
    }
    let name = board_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Board::load(&source, &name, SetLimits::default()).map_err(|e| {
        let text = e
            .reports
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        DeviceError::Board(text)
    })
}
