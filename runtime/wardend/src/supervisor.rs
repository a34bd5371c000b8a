//! The supervisor's core: installed apps, their workers, restarts, quarantine and reports.
//!
//! Each running app has one monitor thread. It launches the worker, waits for its end, files
//! a failure report for anything but a clean exit, and restarts with exponential backoff. Too
//! many failures within a window quarantine the app until someone starts it explicitly. A stop
//! bumps the app's generation, so a monitor that wakes up after the stop never restarts it.
//!
//! A real-time app runs the same way: its monitor loads the firmware onto the core it was
//! assigned at install ([`crate::rtcore`]) instead of launching a worker, and the started core
//! stands in for the worker ([`crate::rtcore::CoreRun`]).

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use warden_ipc::broker::Denial;
use warden_ipc::{CodeKind, Frame};
use warden_policy::board::{CoreRestart, OnCrash};
use warden_policy::install::InstalledApp;
use warden_policy::manifest::ApplicationType;

use crate::device::DeviceConfig;
use crate::error::StateError;
use crate::index::{FirmwareEntry, Index, InstalledEntry};
use crate::install::{self, Compiler, InstallError, Installed};
use crate::intercore::Bridge;
use crate::logs::{Log, Stream};
use crate::network::NetworkGrant;
use crate::reports::{FailureKind, FailureReport, ReportStore};
use crate::rtcore::{CoreConfig, CoreRun, Cores, content_name};
use crate::state::{STORE, StateDir};
use crate::storage::{StorageError, StorageManager, StorageStatus, Usage};
use crate::system::SystemGrant;

/// Bytes of log text kept per app.
pub const LOG_CAPACITY: usize = 256 * 1024;

/// When and how often a failing app is restarted.
#[derive(Clone, Copy, Debug)]
pub struct RestartPolicy {
    /// Wait before the first restart; doubled after each further consecutive failure.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A run at least this long resets the backoff.
    pub stable_after: Duration,
    /// This many failures within `window` quarantine the app.
    pub quarantine_failures: u32,
    pub window: Duration,
}

impl RestartPolicy {
    /// This policy as the board's `Restart` for a real-time core changes it: each value the
    /// board sets replaces this one's (a backoff ceiling below the first wait is raised to it).
    /// `OnCrash: Stop` is not a number: see [`Supervisor::restart_policy`].
    #[must_use]
    pub fn for_core(self, board: &CoreRestart) -> RestartPolicy {
        let initial_backoff = board
            .initial_backoff_ms
            .map_or(self.initial_backoff, Duration::from_millis);
        RestartPolicy {
            initial_backoff,
            max_backoff: board
                .max_backoff_ms
                .map_or(self.max_backoff, Duration::from_millis)
                .max(initial_backoff),
            quarantine_failures: board.quarantine_after.unwrap_or(self.quarantine_failures),
            window: board.within_s.map_or(self.window, Duration::from_secs),
            ..self
        }
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            quarantine_failures: 5,
            window: Duration::from_secs(300),
        }
    }
}

/// The app's storage, as handed to its worker.
#[derive(Debug)]
pub struct StorageSpec {
    /// The root of the app's own file system (or, where quotas cannot be enforced, its
    /// directory), opened by the supervisor, owned by the app's uid.
    pub dir: File,
    /// The quota in force (see [`crate::storage`]).
    pub quota_bytes: u64,
}

/// Everything a launcher needs to start one app.
#[derive(Debug)]
pub struct LaunchSpec {
    pub app: String,
    pub name: String,
    pub version: u64,
    pub uid: u32,
    /// The precompiled code, opened read-only from the store.
    pub code: File,
    pub code_sha256: String,
    pub kind: CodeKind,
    pub args: Vec<String>,
    pub memory_limit_bytes: u64,
    pub watchdog_ms: u64,
    pub storage: Option<StorageSpec>,
    /// The peripherals its manifest grants (resolved at install); the broker opens only these.
    pub grants: Vec<warden_policy::install::Grant>,
    /// What its manifest allows on the network (`AllowedConnections`, server ports); the
    /// broker looks up, connects and listens only as these allow.
    pub network: NetworkGrant,
    /// The device services its manifest grants (`PowerControls`, update events and
    /// deferrals); the broker answers only these.
    pub system: SystemGrant,
}

/// How a worker ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The app exited with code 0.
    Clean,
    Failed {
        failure: FailureKind,
        detail: String,
        backtrace: Vec<Frame>,
    },
}

/// Starts workers. The real one spawns a confined `warden-worker`; tests may use another.
pub trait Launcher: Send + Sync {
    /// Starts the app; its stdout and stderr go to `log`.
    fn launch(&self, spec: LaunchSpec, log: Log) -> Result<Arc<dyn RunningWorker>, String>;
}

/// A started worker.
pub trait RunningWorker: Send + Sync {
    /// Its process id; 0 when it is no process of its own (a remoteproc core).
    fn pid(&self) -> u32;
    /// Ends the worker at once (SIGKILL).
    fn kill(&self);
    /// Blocks until the worker has ended, and classifies the end.
    fn wait(&self) -> End;
    /// Current memory use, when the launcher can tell (cgroup accounting).
    fn memory_bytes(&self) -> Option<u64>;
}

/// Where an app is in its life.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Status {
    Stopped,
    /// Its worker is being launched.
    Starting,
    Running {
        /// The worker's (or emulated core's) process; absent for a remoteproc core.
        #[serde(skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// Waiting to restart after a failure.
    Backoff {
        restart_in_ms: u64,
    },
    /// Failed too often; starts only when asked.
    Quarantined,
    /// Exited by itself with code 0.
    Exited,
}

/// An app as the API shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AppView {
    pub id: String,
    pub name: String,
    pub version: u64,
    /// `app` (WebAssembly, on the application core) or `rtcore` (a real-time app's firmware).
    pub kind: String,
    /// The real-time core a real-time app runs on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
    pub status: Status,
    pub restarts: u32,
    pub autostart: bool,
    pub uid: u32,
    pub memory_bytes: Option<u64>,
    pub last_failure: Option<String>,
}

/// Why an API operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpError {
    #[error("no app with component id `{0}` is installed")]
    NotInstalled(String),
    #[error("app `{0}` is already running")]
    AlreadyRunning(String),
    #[error("app `{id}` cannot run: {reason}")]
    NotRunnable { id: String, reason: String },
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

#[derive(Debug)]
struct Slot {
    status: Status,
    /// Bumped by every start and stop; a monitor thread serves one generation only.
    generation: u64,
    restarts: u32,
    consecutive_failures: u32,
    failures: VecDeque<Instant>,
    log: Log,
    worker: Option<Arc<dyn RunningWorker>>,
    last_failure: Option<String>,
}

impl std::fmt::Debug for dyn RunningWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunningWorker(pid {})", self.pid())
    }
}

impl Slot {
    fn new() -> Slot {
        Slot {
            status: Status::Stopped,
            generation: 0,
            restarts: 0,
            consecutive_failures: 0,
            failures: VecDeque::new(),
            log: Log::new(LOG_CAPACITY),
            worker: None,
            last_failure: None,
        }
    }
}

struct Shared {
    state: StateDir,
    device: DeviceConfig,
    index: Mutex<Index>,
    /// Installed apps resolved on this device, by component id.
    installed: Mutex<BTreeMap<String, InstalledApp>>,
    reports: ReportStore,
    storage: StorageManager,
    slots: Mutex<BTreeMap<String, Slot>>,
    wake: Condvar,
    compiler: Box<dyn Compiler>,
    launcher: Box<dyn Launcher>,
    /// The board's real-time cores.
    cores: Cores,
    /// The inter-core bridge of each real-time app running on an emulated core, by its id
    /// (held alive by the run; gone when the run ends).
    bridges: Mutex<BTreeMap<String, Weak<Bridge>>>,
    /// The rpmsg endpoints each app's channels on remoteproc cores made (a second descriptor
    /// of each), destroyed when that app's worker ends: the kernel keeps an endpoint's device
    /// until it is destroyed or the core stops.
    endpoints: Mutex<BTreeMap<String, Vec<OwnedFd>>>,
    /// The next A7-side endpoint address of an rpmsg channel.
    next_endpoint: std::sync::atomic::AtomicU32,
    policy: RestartPolicy,
    started: Instant,
    /// Installs and uninstalls run one at a time.
    install_lock: Mutex<()>,
}

/// The supervisor. Cloning shares it.
#[derive(Clone)]
pub struct Supervisor {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("state", &self.shared.state.path())
            .finish_non_exhaustive()
    }
}

/// A handle on the supervisor that does not keep it alive: for the device services (power,
/// updates) that act on the whole fleet but are held by the launcher the supervisor owns.
#[derive(Clone, Debug, Default)]
pub struct WeakSupervisor(std::sync::Weak<Shared>);

impl WeakSupervisor {
    /// The supervisor, while it lives.
    pub fn upgrade(&self) -> Option<Supervisor> {
        self.0.upgrade().map(|shared| Supervisor { shared })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Supervisor {
    /// Opens the device state (recovering from an interrupted install) and starts every app
    /// marked autostart; the board's real-time cores are driven from their default places
    /// ([`CoreConfig::default`]).
    pub fn open(
        state: StateDir,
        device: DeviceConfig,
        compiler: Box<dyn Compiler>,
        launcher: Box<dyn Launcher>,
        policy: RestartPolicy,
        reports_capacity: usize,
    ) -> Result<Supervisor, OpError> {
        let cores = Cores::for_board(&device.board, &CoreConfig::default());
        Supervisor::open_with_cores(
            state,
            device,
            compiler,
            launcher,
            cores,
            policy,
            reports_capacity,
        )
    }

    /// [`Supervisor::open`] with the backends of the board's real-time cores.
    pub fn open_with_cores(
        state: StateDir,
        device: DeviceConfig,
        compiler: Box<dyn Compiler>,
        launcher: Box<dyn Launcher>,
        cores: Cores,
        policy: RestartPolicy,
        reports_capacity: usize,
    ) -> Result<Supervisor, OpError> {
        let index = Index::load(&state)?;
        install::recover(&state, &index)?;
        let reports = ReportStore::open(&state, reports_capacity)?;
        let storage = StorageManager::open(&state)?;
        let installed = install::installed_apps(&state, &index, &device, None)?;
        let installed = installed
            .into_iter()
            .map(|a| (a.manifest.component_id.to_string(), a))
            .collect();
        let slots = index
            .apps
            .keys()
            .map(|id| (id.clone(), Slot::new()))
            .collect();
        let autostart: Vec<String> = index
            .apps
            .iter()
            .filter(|(_, a)| a.autostart && a.runnable())
            .map(|(id, _)| id.clone())
            .collect();
        let supervisor = Supervisor {
            shared: Arc::new(Shared {
                state,
                device,
                index: Mutex::new(index),
                installed: Mutex::new(installed),
                reports,
                storage,
                slots: Mutex::new(slots),
                wake: Condvar::new(),
                compiler,
                launcher,
                cores,
                bridges: Mutex::new(BTreeMap::new()),
                endpoints: Mutex::new(BTreeMap::new()),
                next_endpoint: std::sync::atomic::AtomicU32::new(
                    crate::intercore::FIRST_CHANNEL_ADDRESS,
                ),
                policy,
                started: Instant::now(),
                install_lock: Mutex::new(()),
            }),
        };
        for id in autostart {
            supervisor.start(&id)?;
        }
        Ok(supervisor)
    }

    /// A handle that does not keep the supervisor alive.
    pub fn downgrade(&self) -> WeakSupervisor {
        WeakSupervisor(Arc::downgrade(&self.shared))
    }

    /// Starts every installed app marked autostart that is not running, as a boot does (the
    /// simulated board's reboot). Returns the apps that could not start, and why.
    pub fn boot(&self) -> Vec<(String, OpError)> {
        let autostart: Vec<String> = lock(&self.shared.index)
            .apps
            .iter()
            .filter(|(_, a)| a.autostart && a.runnable())
            .map(|(id, _)| id.clone())
            .collect();
        autostart
            .into_iter()
            .filter_map(|id| match self.start(&id) {
                Ok(_) | Err(OpError::AlreadyRunning(_)) => None,
                Err(e) => Some((id, e)),
            })
            .collect()
    }

    pub fn device(&self) -> &DeviceConfig {
        &self.shared.device
    }

    pub fn uptime(&self) -> Duration {
        self.shared.started.elapsed()
    }

    pub fn reports(&self) -> &ReportStore {
        &self.shared.reports
    }

    /// Whether storage quotas are enforced on this device, and if not, why.
    pub fn storage_status(&self) -> StorageStatus {
        self.shared.storage.status()
    }

    /// Installs a package; an app already running is restarted on its new version.
    pub fn install(&self, reader: impl std::io::Read) -> Result<Installed, OpError> {
        let _serial = lock(&self.shared.install_lock);
        let mut index = lock(&self.shared.index).clone();
        let installed = install::install(
            &self.shared.state,
            &mut index,
            &self.shared.device,
            self.shared.compiler.as_ref(),
            reader,
        )?;
        let apps = install::installed_apps(&self.shared.state, &index, &self.shared.device, None)?;
        // A storage kept at an uninstall may be mounted again; a new quota applies at the
        // start below.
        self.shared.storage.reopen(&installed.component_id);
        let replaced_firmware = lock(&self.shared.index)
            .apps
            .get(&installed.component_id)
            .and_then(|old| old.firmware.clone());
        *lock(&self.shared.index) = index;
        *lock(&self.shared.installed) = apps
            .into_iter()
            .map(|a| (a.manifest.component_id.to_string(), a))
            .collect();
        let was_running = {
            let mut slots = lock(&self.shared.slots);
            let slot = slots
                .entry(installed.component_id.clone())
                .or_insert_with(Slot::new);
            matches!(
                slot.status,
                Status::Starting | Status::Running { .. } | Status::Backoff { .. }
            )
        };
        if was_running {
            self.stop(&installed.component_id)?;
        }
        // The previous firmware's copy, once the core no longer runs it.
        if let Some(old) = replaced_firmware {
            self.remove_firmware_copy(&old);
        }
        self.start(&installed.component_id)?;
        Ok(installed)
    }

    /// Removes what loading `firmware` left outside the state (remoteproc's copy in the
    /// firmware directory), unless an installed app still runs the same content.
    fn remove_firmware_copy(&self, firmware: &FirmwareEntry) {
        let in_use = lock(&self.shared.index).apps.values().any(|a| {
            a.firmware
                .as_ref()
                .is_some_and(|f| f.sha256 == firmware.sha256)
        });
        if in_use {
            return;
        }
        if let Some(core) = self.shared.cores.get(&firmware.core) {
            let _ = core.remove_firmware(&content_name(&firmware.sha256));
        }
    }

    /// Removes an app; its storage is unmounted, and its data kept unless `wipe_storage`. Its
    /// rollback record stays.
    pub fn uninstall(&self, id: &str, wipe_storage: bool) -> Result<(), OpError> {
        let _serial = lock(&self.shared.install_lock);
        self.stop(id)?;
        // Before the index commit: a crash in between leaves the app installed, its storage
        // mounted again at its next start (or made anew after a wipe).
        if let Err(e) = self.shared.storage.release(id, wipe_storage) {
            self.shared.storage.reopen(id);
            return Err(e.into());
        }
        let mut index = lock(&self.shared.index).clone();
        let entry = index
            .apps
            .remove(id)
            .ok_or_else(|| OpError::NotInstalled(id.to_owned()))?;
        index.save(&self.shared.state)?;
        *lock(&self.shared.index) = index;
        lock(&self.shared.installed).remove(id);
        lock(&self.shared.slots).remove(id);
        if let Some(firmware) = &entry.firmware {
            self.remove_firmware_copy(firmware);
        }
        let store = self.shared.state.dir(STORE)?;
        let _ = store.remove_dir_all(&entry.store);
        Ok(())
    }

    fn entry(&self, id: &str) -> Result<InstalledEntry, OpError> {
        lock(&self.shared.index)
            .apps
            .get(id)
            .cloned()
            .ok_or_else(|| OpError::NotInstalled(id.to_owned()))
    }

    /// Every installed app.
    pub fn apps(&self) -> Vec<AppView> {
        let ids: Vec<String> = lock(&self.shared.index).apps.keys().cloned().collect();
        ids.iter().filter_map(|id| self.app(id).ok()).collect()
    }

    /// One app.
    pub fn app(&self, id: &str) -> Result<AppView, OpError> {
        let entry = self.entry(id)?;
        let slots = lock(&self.shared.slots);
        let slot = slots.get(id);
        Ok(AppView {
            id: id.to_owned(),
            name: entry.name,
            version: entry.version,
            kind: entry.kind,
            core: entry.firmware.map(|f| f.core),
            status: slot.map_or(Status::Stopped, |s| s.status.clone()),
            restarts: slot.map_or(0, |s| s.restarts),
            autostart: entry.autostart,
            uid: entry.uid,
            memory_bytes: slot
                .and_then(|s| s.worker.as_ref())
                .and_then(|w| w.memory_bytes()),
            last_failure: slot.and_then(|s| s.last_failure.clone()),
        })
    }

    /// The app's log lines after `after`, and how many bytes were dropped to stay bounded.
    /// With a `wait`, and nothing after `after` yet, waits that long for a line.
    pub fn logs(
        &self,
        id: &str,
        after: u64,
        wait: Duration,
    ) -> Result<(Vec<crate::logs::Line>, u64), OpError> {
        self.entry(id)?;
        // Clone the log out of the lock: a waiting reader must not hold up every other caller.
        let log = lock(&self.shared.slots).get(id).map(|s| s.log.clone());
        Ok(log
            .map(|log| log.wait_since(after, wait))
            .unwrap_or_default())
    }

    /// Storage quota and use (from `statvfs` of the app's file system), or `None` without
    /// `MutableStorage`.
    pub fn quota(&self, id: &str) -> Result<Option<Usage>, OpError> {
        self.entry(id)?;
        let quota = lock(&self.shared.installed)
            .get(id)
            .and_then(|a| a.resolved.storage_kb)
            .map(|kb| kb * 1024);
        let Some(quota) = quota else { return Ok(None) };
        Ok(Some(self.shared.storage.usage(id, quota)?))
    }

    /// Starts an app (also out of quarantine).
    pub fn start(&self, id: &str) -> Result<AppView, OpError> {
        let entry = self.entry(id)?;
        if !entry.runnable() {
            return Err(OpError::NotRunnable {
                id: id.to_owned(),
                reason: "it has neither code nor firmware".into(),
            });
        }
        let generation = {
            let mut slots = lock(&self.shared.slots);
            let slot = slots.entry(id.to_owned()).or_insert_with(Slot::new);
            if matches!(
                slot.status,
                Status::Starting | Status::Running { .. } | Status::Backoff { .. }
            ) {
                return Err(OpError::AlreadyRunning(id.to_owned()));
            }
            slot.generation += 1;
            slot.consecutive_failures = 0;
            slot.failures.clear();
            slot.status = Status::Starting;
            slot.log.push(Stream::Supervisor, b"starting");
            slot.generation
        };
        let this = self.clone();
        let app = id.to_owned();
        std::thread::Builder::new()
            .name(format!("app-{}", &id[..id.len().min(8)]))
            .spawn(move || this.monitor(&app, generation))
            .map_err(|e| OpError::NotRunnable {
                id: id.to_owned(),
                reason: format!("cannot start its monitor thread: {e}"),
            })?;
        self.app(id)
    }

    /// Stops an app: its worker is killed and it is not restarted.
    pub fn stop(&self, id: &str) -> Result<AppView, OpError> {
        self.entry(id)?;
        let worker = {
            let mut slots = lock(&self.shared.slots);
            let slot = slots.entry(id.to_owned()).or_insert_with(Slot::new);
            slot.generation += 1;
            if slot.status != Status::Quarantined {
                slot.status = Status::Stopped;
            }
            slot.log.push(Stream::Supervisor, b"stopped");
            slot.worker.take()
        };
        self.shared.wake.notify_all();
        if let Some(worker) = worker {
            worker.kill();
        }
        self.app(id)
    }

    /// Stops every app (real-time apps' cores included) and unmounts their storage
    /// (supervisor shutdown). A supervisor that dies without this finds the mounts at its next
    /// start and reuses them; its emulated cores die with it, and a remoteproc core it left
    /// running is stopped before its next firmware is loaded.
    pub fn stop_all(&self) {
        let ids: Vec<String> = lock(&self.shared.slots).keys().cloned().collect();
        for id in ids {
            let _ = self.stop(&id);
        }
        for e in self.shared.cores.stop_all() {
            eprintln!("wardend: {e}");
        }
        self.shared.storage.unmount_all();
    }

    fn current(&self, id: &str, generation: u64) -> bool {
        lock(&self.shared.slots)
            .get(id)
            .is_some_and(|s| s.generation == generation)
    }

    /// One app's life for one generation: launch, wait, report, back off, repeat.
    fn monitor(&self, id: &str, generation: u64) {
        loop {
            if !self.current(id, generation) {
                return;
            }
            let log = match lock(&self.shared.slots).get(id) {
                Some(slot) => slot.log.clone(),
                None => return,
            };
            let began = Instant::now();
            let end = match self.launch(id, log) {
                Err(end) => end,
                Ok(worker) => {
                    {
                        let mut slots = lock(&self.shared.slots);
                        match slots.get_mut(id) {
                            Some(slot) if slot.generation == generation => {
                                let pid = worker.pid();
                                slot.status = Status::Running {
                                    pid: (pid != 0).then_some(pid),
                                };
                                slot.worker = Some(Arc::clone(&worker));
                            }
                            // Stopped while launching.
                            _ => {
                                drop(slots);
                                worker.kill();
                                worker.wait();
                                return;
                            }
                        }
                    }
                    worker.wait()
                }
            };
            self.destroy_endpoints(id);
            let Some(wait) = self.after_end(id, generation, end, began.elapsed()) else {
                return;
            };
            // Back off, waking early if the app is stopped or started anew.
            let deadline = Instant::now() + wait;
            let mut slots = lock(&self.shared.slots);
            loop {
                if slots.get(id).is_none_or(|s| s.generation != generation) {
                    return;
                }
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let (guard, _) = self
                    .shared
                    .wake
                    .wait_timeout(slots, deadline - now)
                    .unwrap_or_else(|p| p.into_inner());
                slots = guard;
            }
            if let Some(slot) = slots.get_mut(id) {
                slot.restarts += 1;
                slot.status = Status::Starting;
                slot.log.push(Stream::Supervisor, b"restarting");
            }
        }
    }

    /// Records how a run ended; returns how long to wait before restarting, or `None` to stop.
    fn after_end(&self, id: &str, generation: u64, end: End, ran: Duration) -> Option<Duration> {
        let entry = self.entry(id).ok()?;
        let (policy, stop) = self.restart_policy(&entry);
        let mut slots = lock(&self.shared.slots);
        let slot = slots.get_mut(id)?;
        if slot.generation != generation {
            // Stopped on purpose: not a failure. The slot's worker, if any, is a newer
            // generation's, started since: it is not ours to forget (its stop must find it).
            return None;
        }
        slot.worker = None;
        let (failure, detail, backtrace) = match end {
            End::Clean => {
                slot.status = Status::Exited;
                slot.log.push(Stream::Supervisor, b"exited with code 0");
                return None;
            }
            End::Failed {
                failure,
                detail,
                backtrace,
            } => (failure, detail, backtrace),
        };
        let now = Instant::now();
        if ran >= policy.stable_after {
            slot.consecutive_failures = 0;
        }
        slot.consecutive_failures += 1;
        slot.failures.push_back(now);
        while slot
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            slot.failures.pop_front();
        }
        let crash_loop = slot.failures.len() as u32 >= policy.quarantine_failures;
        let quarantine = crash_loop || stop.is_some();
        let wait = policy
            .initial_backoff
            .saturating_mul(1 << (slot.consecutive_failures - 1).min(16))
            .min(policy.max_backoff);
        let action = if let Some(stop) = &stop {
            stop.clone()
        } else if quarantine {
            "quarantined".to_owned()
        } else {
            format!("restart in {} ms", wait.as_millis())
        };
        let summary = format!("{}: {detail}", failure_name(&failure));
        slot.last_failure = Some(summary.clone());
        slot.log.push(
            Stream::Supervisor,
            format!("failed: {summary}; {action}").as_bytes(),
        );
        let report = |failure, detail, backtrace, action: &str| FailureReport {
            seq: 0,
            time: crate::now(),
            app: id.to_owned(),
            name: entry.name.clone(),
            version: entry.version,
            failure,
            detail,
            backtrace,
            action: action.to_owned(),
        };
        let failures = slot.failures.len() as u32;
        if quarantine {
            slot.status = Status::Quarantined;
            slot.generation += 1;
        } else {
            slot.status = Status::Backoff {
                restart_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            };
        }
        // The reports are written before the new status shows (the slots lock is still held):
        // whoever sees "quarantined" finds every report that led to it.
        let _ = self
            .shared
            .reports
            .add(report(failure, detail, backtrace, &action));
        if quarantine && stop.is_some() {
            return None;
        }
        if quarantine {
            let _ = self.shared.reports.add(report(
                FailureKind::CrashLoop {
                    failures,
                    window_secs: policy.window.as_secs(),
                },
                format!("{failures} failures within {} s", policy.window.as_secs()),
                vec![],
                "quarantined until started explicitly",
            ));
            return None;
        }
        drop(slots);
        Some(wait)
    }

    /// How `entry` is restarted after a failure: the supervisor's policy, or for a real-time
    /// app the board's `Restart` for its core over it; and, where the board says
    /// `OnCrash: Stop`, the action a failure report records instead of a restart.
    fn restart_policy(&self, entry: &InstalledEntry) -> (RestartPolicy, Option<String>) {
        let default = self.shared.policy;
        let Some(core) = entry.firmware.as_ref().map(|f| f.core.as_str()) else {
            return (default, None);
        };
        let Some(board) = self
            .shared
            .device
            .board
            .real_time_cores
            .iter()
            .find(|c| c.name == core)
            .map(|c| &c.restart)
        else {
            return (default, None);
        };
        let stop = (board.on_crash == OnCrash::Stop).then(|| {
            format!(
                "stopped: the board's policy for core `{core}` is OnCrash Stop; start it \
                 explicitly"
            )
        });
        (default.for_core(board), stop)
    }

    /// Starts one run of `id`: its worker, or for a real-time app its firmware on its core.
    fn launch(&self, id: &str, log: Log) -> Result<Arc<dyn RunningWorker>, End> {
        let failed = |stage: &str, detail: String| End::Failed {
            failure: FailureKind::WorkerFailed {
                stage: stage.into(),
            },
            detail,
            backtrace: vec![],
        };
        let entry = self
            .entry(id)
            .map_err(|e| failed("prepare", e.to_string()))?;
        if let Some(firmware) = &entry.firmware {
            return self.launch_core(id, &entry, firmware, &log);
        }
        let spec = self
            .launch_spec(id)
            .map_err(|e| failed("prepare", e.to_string()))?;
        self.shared
            .launcher
            .launch(spec, log)
            .map_err(|e| failed("launch", e))
    }

    /// Loads a real-time app's firmware onto its core and starts it. The firmware is loaded
    /// only if its digest is still the one recorded at install.
    fn launch_core(
        &self,
        id: &str,
        entry: &InstalledEntry,
        firmware: &FirmwareEntry,
        log: &Log,
    ) -> Result<Arc<dyn RunningWorker>, End> {
        let failed = |failure: FailureKind, detail: String| End::Failed {
            failure,
            detail,
            backtrace: vec![],
        };
        let stage = |stage: &str| FailureKind::WorkerFailed {
            stage: stage.into(),
        };
        let core = &firmware.core;
        let backend = self.shared.cores.get(core).ok_or_else(|| {
            failed(
                stage("launch"),
                format!("the board has no real-time core `{core}`"),
            )
        })?;
        let path = self
            .shared
            .state
            .path()
            .join(STORE)
            .join(&entry.store)
            .join(&firmware.file);
        let digest = File::open(&path)
            .and_then(install::hash_file)
            .map_err(|e| failed(stage("prepare"), format!("{}: {e}", path.display())))?;
        if digest != firmware.sha256 {
            return Err(failed(
                FailureKind::LoadRefused,
                format!(
                    "firmware {} has SHA-256 {digest}, not the {} recorded at install",
                    path.display(),
                    firmware.sha256
                ),
            ));
        }
        let name = content_name(&firmware.sha256);
        let run = backend
            .load_and_start(&path, &name)
            .map_err(|e| failed(stage("launch"), e.to_string()))?;
        let started = match backend.pid() {
            Some(pid) => format!("core `{core}`: {name} started (emulator pid {pid})"),
            None => format!("core `{core}`: {name} started"),
        };
        log.push(Stream::Supervisor, started.as_bytes());
        // An emulated core's UART carries the inter-core channels: bridge it for this run.
        let bridge = match backend.serial() {
            None => None,
            Some(serial) => match Bridge::start(serial.into(), core) {
                Ok(bridge) => Some(Arc::new(bridge)),
                Err(e) => {
                    let _ = backend.stop_run(run);
                    return Err(failed(
                        stage("launch"),
                        format!("core `{core}`: cannot bridge its serial line: {e}"),
                    ));
                }
            },
        };
        if let Some(bridge) = &bridge {
            lock(&self.shared.bridges).insert(id.to_owned(), Arc::downgrade(bridge));
        }
        Ok(Arc::new(CoreRun {
            backend: Arc::clone(backend),
            run,
            bridge,
        }))
    }

    /// A message channel from `app` to the real-time app `peer` (the broker checked that
    /// `app`'s manifest lists `peer`): only if `peer` is an installed real-time app whose own
    /// manifest lists `app`, and runs. The app's end of a new bridge channel.
    pub fn open_channel(&self, app: &str, peer: &str) -> Result<OwnedFd, Denial> {
        let peer = peer.to_ascii_lowercase();
        let lists_app = {
            let installed = lock(&self.shared.installed);
            let Some(other) = installed.get(&peer) else {
                return Err(Denial::NotGranted(format!(
                    "no app `{peer}` is installed on this device"
                )));
            };
            if other.manifest.application_type != ApplicationType::RealTimeCapable {
                return Err(Denial::NotGranted(format!(
                    "`{peer}` ({}) is not a real-time app: channels go to real-time apps",
                    other.manifest.name
                )));
            }
            other
                .manifest
                .capabilities
                .allowed_application_connections
                .iter()
                .any(|id| id.to_string() == app)
        };
        if !lists_app {
            return Err(Denial::NotGranted(format!(
                "the real-time app `{peer}` does not list this app in its \
                 AllowedApplicationConnections; both sides must list each other"
            )));
        }
        let bridge = lock(&self.shared.bridges)
            .get(&peer)
            .and_then(Weak::upgrade);
        if let Some(bridge) = bridge {
            return bridge.open();
        }
        let running = matches!(
            lock(&self.shared.slots).get(&peer).map(|s| &s.status),
            Some(Status::Running { .. })
        );
        let backend = lock(&self.shared.index)
            .apps
            .get(&peer)
            .and_then(|e| e.firmware.as_ref())
            .and_then(|f| self.shared.cores.get(&f.core).cloned());
        let (true, Some(backend)) = (running, backend) else {
            return Err(Denial::Io(format!(
                "the real-time app `{peer}` is not running"
            )));
        };
        let src = self
            .shared
            .next_endpoint
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match backend.open_channel(src) {
            None => Err(Denial::Io(format!(
                "the real-time app `{peer}` is not running"
            ))),
            Some(Err(denial)) => Err(denial),
            Some(Ok(endpoint)) => {
                let kept = endpoint.try_clone().map_err(|e| {
                    Denial::Io(format!("cannot keep the rpmsg endpoint's descriptor: {e}"))
                })?;
                lock(&self.shared.endpoints)
                    .entry(app.to_owned())
                    .or_default()
                    .push(kept);
                Ok(endpoint)
            }
        }
    }

    /// Destroys the rpmsg endpoints `app`'s channels made (its worker ended).
    fn destroy_endpoints(&self, app: &str) {
        let endpoints = lock(&self.shared.endpoints).remove(app).unwrap_or_default();
        for endpoint in endpoints {
            // An endpoint the core already dropped (it stopped) is gone either way.
            let _ = warden_linux_devices::rpmsg::destroy_endpoint(endpoint.as_fd());
        }
    }

    /// Opens what a worker needs for one run of `id`.
    fn launch_spec(&self, id: &str) -> Result<LaunchSpec, OpError> {
        let entry = self.entry(id)?;
        let code = entry.code.clone().ok_or_else(|| OpError::NotRunnable {
            id: id.to_owned(),
            reason: "no code".into(),
        })?;
        let (manifest, resolved) = {
            let installed = lock(&self.shared.installed);
            let app = installed
                .get(id)
                .ok_or_else(|| OpError::NotInstalled(id.to_owned()))?;
            (app.manifest.clone(), app.resolved.clone())
        };
        let store = self.shared.state.dir(STORE)?;
        let code_file = store
            .open(format!("{}/{}", entry.store, code.file))
            .map_err(|e| StateError::io("open", &self.shared.state.path().join(STORE), e))?
            .into_std();
        let storage = match resolved.storage_kb {
            None => None,
            Some(kb) => {
                let prepared = self.shared.storage.prepare(id, entry.uid, kb * 1024)?;
                if let Some(slot) = lock(&self.shared.slots).get(id) {
                    for note in &prepared.notes {
                        slot.log.push(Stream::Supervisor, note.as_bytes());
                    }
                }
                Some(StorageSpec {
                    dir: prepared.dir,
                    quota_bytes: prepared.quota_bytes,
                })
            }
        };
        let mut args = vec![manifest.name.clone()];
        args.extend(manifest.cmd_args.iter().cloned());
        Ok(LaunchSpec {
            app: id.to_owned(),
            name: entry.name,
            version: entry.version,
            uid: entry.uid,
            code: code_file,
            code_sha256: code.sha256,
            kind: code.kind,
            args,
            memory_limit_bytes: resolved.memory_limit_kb * 1024,
            watchdog_ms: resolved.watchdog_ms,
            storage,
            network: NetworkGrant::from_capabilities(&manifest.capabilities, &resolved.withheld),
            system: SystemGrant::from_capabilities(&manifest.capabilities, &resolved.withheld),
            grants: resolved.grants,
        })
    }
}

fn failure_name(f: &FailureKind) -> String {
    match f {
        FailureKind::Exit { code } => format!("exit code {code}"),
        FailureKind::Trap { trap } => format!("trap ({trap})"),
        FailureKind::SecurityViolation { .. } => "security violation (seccomp)".into(),
        FailureKind::OutOfMemory => "out of memory".into(),
        FailureKind::MemoryLimit { .. } => "memory limit".into(),
        FailureKind::Watchdog { .. } => "watchdog".into(),
        FailureKind::Signal { signal } => format!("signal {signal}"),
        FailureKind::LoadRefused => "code refused".into(),
        FailureKind::WorkerFailed { stage } => format!("worker failed ({stage})"),
        FailureKind::CrashLoop { .. } => "crash loop".into(),
    }
}
