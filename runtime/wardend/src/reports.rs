//! Failure reports: every end of a worker that was not a clean exit, classified, persisted in a
//! bounded store that survives a supervisor restart.

use std::sync::Mutex;

use cap_std::fs::Dir;
use serde::{Deserialize, Serialize};
use warden_ipc::Frame;

use crate::error::StateError;
use crate::state::{self, REPORTS, StateDir};

/// Largest accepted report file.
const MAX_REPORT_BYTES: u64 = 256 * 1024;

/// How a worker ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FailureKind {
    /// The app exited with a non-zero code.
    Exit { code: i32 },
    /// A WebAssembly trap.
    Trap { trap: String },
    /// The worker was killed by seccomp (SIGSYS): it attempted a forbidden system call.
    SecurityViolation { signal: i32 },
    /// The kernel killed the worker for exceeding its cgroup memory limit.
    OutOfMemory,
    /// The app hit its WebAssembly memory limit.
    MemoryLimit { limit_bytes: u64 },
    /// The app ran WebAssembly longer than its watchdog allows without yielding.
    Watchdog { watchdog_ms: u64 },
    /// Killed by another signal.
    Signal { signal: i32 },
    /// The code was refused before it ran (digest mismatch, foreign artefact).
    LoadRefused,
    /// The worker could not confine itself or start the app.
    WorkerFailed { stage: String },
    /// Too many failures in a short time: the app is quarantined until started explicitly.
    CrashLoop { failures: u32, window_secs: u64 },
}

/// One report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureReport {
    /// Increasing, unique per device.
    pub seq: u64,
    /// Unix seconds.
    pub time: u64,
    /// Component id.
    pub app: String,
    pub name: String,
    pub version: u64,
    pub failure: FailureKind,
    /// Human-readable detail (trap message, error text).
    pub detail: String,
    /// WebAssembly backtrace, innermost frame first, when there is one.
    pub backtrace: Vec<Frame>,
    /// What the supervisor did next ("restart in 2s", "quarantined", "none").
    pub action: String,
}

/// The store: one file per report, the oldest removed beyond `capacity`.
#[derive(Debug)]
pub struct ReportStore {
    dir: Dir,
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    next_seq: u64,
    /// Sequence numbers on disk, oldest first.
    seqs: Vec<u64>,
}

fn file_name(seq: u64) -> String {
    format!("{seq:016}.json")
}

impl ReportStore {
    /// Opens the store, trimming it to `capacity` and removing partial writes.
    pub fn open(state: &StateDir, capacity: usize) -> Result<ReportStore, StateError> {
        let dir = state.dir(REPORTS)?;
        let mut seqs = Vec::new();
        let entries = dir
            .entries()
            .map_err(|e| StateError::io("list", &state.path().join(REPORTS), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            match name
                .strip_suffix(".json")
                .and_then(|stem| stem.parse::<u64>().ok())
            {
                Some(seq) => seqs.push(seq),
                // Temp files of an interrupted write, and anything else, go.
                None => {
                    let _ = dir.remove_file(&name);
                }
            }
        }
        seqs.sort_unstable();
        let store = ReportStore {
            dir,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                next_seq: seqs.last().map_or(1, |s| s + 1),
                seqs,
            }),
        };
        store.trim(&mut store.lock());
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn trim(&self, inner: &mut Inner) {
        while inner.seqs.len() > self.capacity {
            let oldest = inner.seqs.remove(0);
            let _ = self.dir.remove_file(file_name(oldest));
        }
    }

    /// Records a report (its `seq` is assigned here) and returns it.
    pub fn add(&self, mut report: FailureReport) -> Result<FailureReport, StateError> {
        let mut inner = self.lock();
        report.seq = inner.next_seq;
        let bytes = serde_json::to_vec_pretty(&report).map_err(|e| StateError::Corrupt {
            what: "report".into(),
            reason: e.to_string(),
        })?;
        state::write_atomic(&self.dir, &file_name(report.seq), &bytes)
            .map_err(|e| StateError::io("write", std::path::Path::new(REPORTS), e))?;
        inner.next_seq += 1;
        inner.seqs.push(report.seq);
        self.trim(&mut inner);
        Ok(report)
    }

    /// The newest reports first, at most `limit`, optionally only one app's.
    pub fn list(&self, app: Option<&str>, limit: usize) -> Vec<FailureReport> {
        let seqs: Vec<u64> = self.lock().seqs.iter().rev().copied().collect();
        let mut out = Vec::new();
        for seq in seqs {
            if out.len() >= limit {
                break;
            }
            let Some(report) = self.read(seq) else {
                continue;
            };
            if app.is_none_or(|a| a == report.app) {
                out.push(report);
            }
        }
        out
    }

    fn read(&self, seq: u64) -> Option<FailureReport> {
        use std::io::Read;
        let mut bytes = Vec::new();
        self.dir
            .open(file_name(seq))
            .ok()?
            .take(MAX_REPORT_BYTES)
            .read_to_end(&mut bytes)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(app: &str) -> FailureReport {
        FailureReport {
            seq: 0,
            time: 1,
            app: app.into(),
            name: "t".into(),
            version: 1,
            failure: FailureKind::Watchdog { watchdog_ms: 100 },
            detail: String::new(),
            backtrace: vec![],
            action: "none".into(),
        }
    }

    #[test]
    fn the_store_is_bounded_and_survives_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let store = ReportStore::open(&state, 3).unwrap();
        for i in 0..5 {
            store
                .add(report(if i % 2 == 0 { "a" } else { "b" }))
                .unwrap();
        }
        let all = store.list(None, 100);
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5, 4, 3]);
        assert_eq!(
            std::fs::read_dir(tmp.path().join(REPORTS)).unwrap().count(),
            3
        );
        drop(store);

        // A partial write from a crash is cleaned up, numbering continues.
        std::fs::write(tmp.path().join(REPORTS).join(".x.tmp-1"), b"{").unwrap();
        let store = ReportStore::open(&state, 3).unwrap();
        let added = store.add(report("a")).unwrap();
        assert_eq!(added.seq, 6);
        assert_eq!(
            store
                .list(Some("a"), 10)
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>(),
            vec![6, 5]
        );
        assert_eq!(
            std::fs::read_dir(tmp.path().join(REPORTS)).unwrap().count(),
            3
        );
    }
}
