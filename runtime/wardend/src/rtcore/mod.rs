//! The real-time core manager's run-time half: loading a real-time app's verified firmware onto
//! its core, starting and stopping it, and learning how it ended. (Installing it — the core
//! assignment and the firmware check — is in [`crate::install`].)
//!
//! One [`CoreBackend`] per core of the board file (`RealTimeCores`):
//!
//! * [`RemoteprocCore`]: a Linux remoteproc instance, driven through sysfs
//!   (`<root>/<instance>/{firmware,state}`), the firmware copied into the kernel's firmware
//!   directory under a content-addressed name;
//! * [`EmulatedCore`]: a QEMU machine (`qemu-system-arm -M <machine>`), started through the
//!   worker spawner (`warden_sandbox::spawn`: its own namespaces, killed with its supervisor),
//!   its UART0 connected to a socket the supervisor holds.
//!
//! The supervisor runs a real-time app like any other: one monitor thread, the same restart
//! policy, backoff, quarantine and failure reports. [`CoreRun`] is what lets it: a started
//! firmware seen as a [`RunningWorker`]. See `docs/rtcore.md`.

mod emulated;
mod remoteproc;

use std::collections::BTreeMap;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use warden_policy::board::{Board, CoreBacking};

use crate::reports::FailureKind;
use crate::supervisor::{End, RunningWorker};

pub use emulated::{EmulatedCore, qemu_args};
pub use remoteproc::{RealSysfs, RemoteprocCore, Sysfs};

/// One start of a firmware on a core, as [`CoreBackend::load_and_start`] returns it: a later
/// start never answers for an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Run(pub u64);

/// How a run of a firmware ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreEnd {
    /// Stopped by the supervisor ([`CoreBackend::stop`], or a later start).
    Stopped,
    /// It ended by itself, successfully (an emulator whose firmware exited with status 0).
    Exited,
    /// It crashed: remoteproc reported `crashed`, the core went down without a stop, or the
    /// emulator ended with a failure status (the firmware's fault handler) or a signal.
    Crashed {
        /// The emulator's exit status, when there is one.
        code: Option<i32>,
        /// The signal that ended the emulator, when one did.
        signal: Option<i32>,
        /// What happened, naming the core and the file or process.
        detail: String,
    },
}

/// Why a core could not be driven.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    #[error("core `{core}`: cannot {what} {path}: {source}")]
    Io {
        core: String,
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("core `{core}`: {path} stayed busy (EBUSY) after the core was stopped")]
    Busy { core: String, path: PathBuf },
    #[error("core `{core}`: the firmware {path} does not have the content its name says ({name})")]
    Content {
        core: String,
        path: PathBuf,
        name: String,
    },
    #[error("core `{core}`: cannot start the emulator {program}: {reason}")]
    Emulator {
        core: String,
        program: PathBuf,
        reason: String,
    },
}

/// A real-time core: loads firmware, starts and stops it, and says how a run ended.
pub trait CoreBackend: Send + Sync + std::fmt::Debug {
    /// The core's name in the board file.
    fn core(&self) -> &str;

    /// Loads `firmware` (an ELF the device verified: its package signature and digest, and the
    /// firmware check against this core's memory) and starts it. `content_name` is its
    /// content-addressed name ([`content_name`]). A firmware running on the core is stopped
    /// first.
    fn load_and_start(&self, firmware: &Path, content_name: &str) -> Result<Run, CoreError>;

    /// Stops the core, whatever it runs; stopping a core that runs nothing is not an error.
    fn stop(&self) -> Result<(), CoreError>;

    /// Stops the core if it still runs `run`; a run that ended or that a later start replaced
    /// is left alone (a late stop from one generation of an app's monitor must not stop the
    /// next generation's firmware).
    fn stop_run(&self, run: Run) -> Result<(), CoreError>;

    /// Blocks until `run` ended, and says how. A run stopped, or replaced by a later start,
    /// ended [`CoreEnd::Stopped`].
    fn wait(&self, run: Run) -> CoreEnd;

    /// The process that is the core (an emulator), while it runs.
    fn pid(&self) -> Option<u32>;

    /// The core's serial stream (the emulator's UART0), while it runs: where the supervisor
    /// bridges inter-core messages (`docs/formats/intercore.md`). `None` for remoteproc, whose
    /// messages go through rpmsg devices instead.
    fn serial(&self) -> Option<UnixStream>;

    /// A message channel to the running firmware's inter-core service, with this side's
    /// endpoint address `src`: an rpmsg endpoint on a remoteproc core. `None` where the core
    /// has no such thing (an emulated core, whose channels the supervisor bridges over its
    /// serial line instead).
    fn open_channel(
        &self,
        src: u32,
    ) -> Option<Result<std::os::fd::OwnedFd, warden_ipc::broker::Denial>> {
        let _ = src;
        None
    }

    /// Removes what [`CoreBackend::load_and_start`] left outside the device state for
    /// `content_name` (the copy in the firmware directory), at uninstall or after an update.
    fn remove_firmware(&self, content_name: &str) -> Result<(), CoreError>;
}

/// A backend's runs: the number of the next, the one the supervisor started and has not
/// stopped (`A`: what the backend keeps of it), and how the latest one ended.
#[derive(Debug)]
struct Runs<A> {
    next: u64,
    active: Option<A>,
    ended: Option<(Run, CoreEnd)>,
}

impl<A> Default for Runs<A> {
    fn default() -> Self {
        Runs {
            next: 0,
            active: None,
            ended: None,
        }
    }
}

impl<A> Runs<A> {
    /// How `run` ended: as recorded, or stopped (a run that a later start replaced).
    fn end_of(&self, run: Run) -> CoreEnd {
        match &self.ended {
            Some((r, end)) if *r == run => end.clone(),
            _ => CoreEnd::Stopped,
        }
    }
}

/// The content-addressed name a firmware is loaded under: `warden-<first 16 hex digits of its
/// SHA-256>.elf`.
pub fn content_name(sha256_hex: &str) -> String {
    format!("warden-{}.elf", sha256_hex.get(..16).unwrap_or(sha256_hex))
}

/// Where the real-time core backends find what they drive (`wardend --remoteproc-root`,
/// `--firmware-dir`, `--qemu`).
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// The remoteproc class directory (`/sys/class/remoteproc`).
    pub remoteproc_root: PathBuf,
    /// The kernel's firmware directory (`/lib/firmware`).
    pub firmware_dir: PathBuf,
    /// The emulator: an absolute path, or a name looked up in `PATH` at each start.
    pub qemu: PathBuf,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            remoteproc_root: "/sys/class/remoteproc".into(),
            firmware_dir: "/lib/firmware".into(),
            qemu: "qemu-system-arm".into(),
        }
    }
}

/// The board's cores, by name.
#[derive(Clone, Debug, Default)]
pub struct Cores {
    cores: BTreeMap<String, Arc<dyn CoreBackend>>,
}

impl Cores {
    /// One backend per core the board lists. Nothing is touched until a core is started.
    pub fn for_board(board: &Board, config: &CoreConfig) -> Cores {
        let cores = board
            .real_time_cores
            .iter()
            .map(|core| {
                let backend: Arc<dyn CoreBackend> = match &core.backing {
                    CoreBacking::Remoteproc(instance) => Arc::new(RemoteprocCore::new(
                        &core.name,
                        &config.remoteproc_root,
                        &config.firmware_dir,
                        instance,
                        Arc::new(RealSysfs),
                    )),
                    CoreBacking::Emulated { machine } => {
                        Arc::new(EmulatedCore::new(&core.name, machine, &config.qemu))
                    }
                };
                (core.name.clone(), backend)
            })
            .collect();
        Cores { cores }
    }

    /// Cores made elsewhere (tests: a remoteproc core over a scripted sysfs).
    pub fn from_backends(backends: impl IntoIterator<Item = Arc<dyn CoreBackend>>) -> Cores {
        Cores {
            cores: backends
                .into_iter()
                .map(|b| (b.core().to_owned(), b))
                .collect(),
        }
    }

    pub fn get(&self, core: &str) -> Option<&Arc<dyn CoreBackend>> {
        self.cores.get(core)
    }

    /// Stops every core (supervisor shutdown); returns the cores that could not be stopped.
    pub fn stop_all(&self) -> Vec<CoreError> {
        self.cores
            .values()
            .filter_map(|core| core.stop().err())
            .collect()
    }
}

/// A started firmware, as the supervisor's monitor sees a worker: it waits for its end, kills
/// it on a stop, and shows its emulator's pid.
#[derive(Debug)]
pub struct CoreRun {
    pub backend: Arc<dyn CoreBackend>,
    pub run: Run,
    /// The inter-core bridge of an emulated core's serial line, alive as long as this run.
    pub bridge: Option<Arc<crate::intercore::Bridge>>,
}

impl RunningWorker for CoreRun {
    /// The emulator's pid; 0 for a remoteproc core, which is no process.
    fn pid(&self) -> u32 {
        self.backend.pid().unwrap_or(0)
    }

    fn kill(&self) {
        // A stop that fails leaves the core as it is; the monitor's wait then reports how it
        // ends, and the failure shows in the log of the next start.
        let _ = self.backend.stop_run(self.run);
    }

    fn wait(&self) -> End {
        let core = self.backend.core().to_owned();
        match self.backend.wait(self.run) {
            CoreEnd::Exited => End::Clean,
            CoreEnd::Stopped => End::Failed {
                failure: FailureKind::Signal { signal: 9 },
                detail: format!("core `{core}` stopped"),
                backtrace: vec![],
            },
            CoreEnd::Crashed {
                code,
                signal,
                detail,
            } => End::Failed {
                failure: match (code, signal) {
                    (Some(code), _) => FailureKind::Exit { code },
                    (None, Some(signal)) => FailureKind::Signal { signal },
                    (None, None) => FailureKind::WorkerFailed {
                        stage: format!("core `{core}` crashed"),
                    },
                },
                detail,
                backtrace: vec![],
            },
        }
    }

    fn memory_bytes(&self) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_name_is_the_first_16_hex_digits_of_the_digest() {
        assert_eq!(
            content_name("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            "warden-0123456789abcdef.elf"
        );
    }
}
