//! `index.json`: what is installed, the highest version seen per component, and app uids. It
//! is the single commit point of every install and uninstall.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use warden_ipc::CodeKind;
use warden_policy::rollback::RollbackRecord;

use crate::error::StateError;
use crate::state::{self, INDEX, StateDir};

/// Largest accepted index.
const MAX_INDEX_BYTES: u64 = 16 * 1024 * 1024;

/// The first uid handed to an app; each app gets its own, never reused while installed.
pub const APP_UID_BASE: u32 = 200_000;

/// The precompiled code a worker loads for an app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeEntry {
    /// File inside the app's store directory.
    pub file: String,
    /// Lower-case hex SHA-256 the file must have when a worker loads it.
    pub sha256: String,
    pub kind: CodeKind,
}

/// One installed app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledEntry {
    pub name: String,
    pub version: u64,
    /// `app` or `rtcore`.
    pub kind: String,
    /// The store directory: lower-case hex SHA-256 of the signed header.
    pub store: String,
    /// The code to run; `None` for real-time firmware.
    pub code: Option<CodeEntry>,
    pub uid: u32,
    /// Started when the supervisor starts.
    pub autostart: bool,
    /// Unix seconds.
    pub installed_at: u64,
}

/// The whole index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: u32,
    /// By component id (lower-case GUID).
    pub apps: BTreeMap<String, InstalledEntry>,
    /// Highest version seen per component, kept after uninstall so rollback stays refused.
    pub rollback: BTreeMap<String, RollbackRecord>,
    pub next_uid: u32,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            format: 1,
            apps: BTreeMap::new(),
            rollback: BTreeMap::new(),
            next_uid: APP_UID_BASE,
        }
    }
}

impl Index {
    /// Reads the index, or an empty one on a new device.
    pub fn load(state: &StateDir) -> Result<Index, StateError> {
        let Some(bytes) = state.read_bounded(state.root(), INDEX, MAX_INDEX_BYTES)? else {
            return Ok(Index::default());
        };
        let index: Index = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            what: INDEX.into(),
            reason: e.to_string(),
        })?;
        if index.format != 1 {
            return Err(StateError::Corrupt {
                what: INDEX.into(),
                reason: format!("unknown format {}", index.format),
            });
        }
        Ok(index)
    }

    /// Commits the index: after this returns, a crash leaves exactly this content.
    pub fn save(&self, state: &StateDir) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| StateError::Corrupt {
            what: INDEX.into(),
            reason: e.to_string(),
        })?;
        state::write_atomic(state.root(), INDEX, &bytes)
            .map_err(|e| StateError::io("write", &state.path().join(INDEX), e))
    }

    /// A uid for a new app: the component's existing uid on update, else the next free one.
    pub fn uid_for(&mut self, component: &str) -> u32 {
        if let Some(app) = self.apps.get(component) {
            return app.uid;
        }
        let uid = self.next_uid;
        self.next_uid = self.next_uid.saturating_add(1);
        uid
    }
}
