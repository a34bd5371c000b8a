//! `index.json`: what is installed, the highest version seen per component, app uids, and the
//! real-time core each real-time app holds. It is the single commit point of every install and
//! uninstall.

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

/// A real-time app's firmware and the core it was assigned at install.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareEntry {
    /// The real-time core (`RealTimeCores[].Name`) it runs on; one app per core.
    pub core: String,
    /// The ELF inside the app's store directory.
    pub file: String,
    /// Lower-case hex SHA-256 the file must have when it is loaded.
    pub sha256: String,
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
    /// The firmware and its core; only for real-time apps. Absent in index files written
    /// before real-time apps could be installed, which therefore still read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareEntry>,
    pub uid: u32,
    /// Started when the supervisor starts.
    pub autostart: bool,
    /// Unix seconds.
    pub installed_at: u64,
}

impl InstalledEntry {
    /// Whether there is something to run: code for a worker, or firmware for a core.
    pub fn runnable(&self) -> bool {
        self.code.is_some() || self.firmware.is_some()
    }
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

    /// The cores real-time apps hold, for [`warden_policy::install::assign_core`].
    pub fn core_holders(&self) -> Vec<warden_policy::install::CoreHolder> {
        self.apps
            .iter()
            .filter_map(|(id, app)| {
                Some(warden_policy::install::CoreHolder {
                    core: app.firmware.as_ref()?.core.clone(),
                    app: id.parse().ok()?,
                    name: app.name.clone(),
                })
            })
            .collect()
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// An entry as index files were written before real-time apps: no `firmware` key.
    const OLD: &str = r#"{"format": 1, "apps": {"6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b": {
        "name": "t", "version": 1, "kind": "app", "store": "ab", "uid": 200000,
        "code": {"file": "code.cwasm", "sha256": "cd", "kind": "component"},
        "autostart": true, "installed_at": 1}}, "rollback": {}, "next_uid": 200001}"#;

    #[test]
    fn an_index_without_firmware_entries_still_reads_and_writes_none() {
        let index: Index = serde_json::from_str(OLD).unwrap();
        let app = &index.apps["6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b"];
        assert_eq!(app.firmware, None);
        assert!(app.runnable());
        assert!(
            !serde_json::to_string(&index).unwrap().contains("firmware"),
            "an app without firmware is written as before"
        );
        assert!(index.core_holders().is_empty());
    }

    #[test]
    fn a_real_time_app_records_its_core_and_firmware() {
        let mut index: Index = serde_json::from_str(OLD).unwrap();
        let mut rt = index.apps["6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b"].clone();
        rt.kind = "rtcore".into();
        rt.code = None;
        rt.firmware = Some(FirmwareEntry {
            core: "rt0".into(),
            file: "payloads/bin/fw.elf".into(),
            sha256: "ef".into(),
        });
        index
            .apps
            .insert("7b1d2f9a-4c3e-4f60-8b8c-2d3e4f5a6b7c".into(), rt);
        let again: Index = serde_json::from_slice(&serde_json::to_vec(&index).unwrap()).unwrap();
        assert_eq!(again, index);
        let holders = index.core_holders();
        assert_eq!(holders.len(), 1);
        assert_eq!(holders[0].core, "rt0");
        assert_eq!(
            holders[0].app.to_string(),
            "7b1d2f9a-4c3e-4f60-8b8c-2d3e4f5a6b7c"
        );
    }
}
