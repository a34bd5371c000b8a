//! Staged app updates, their notice to apps (`SystemEventNotifications`) and deferrals
//! (`SoftwareUpdateDeferral`): Azure Sphere's `SysEvent_*` and update deferral on a device whose
//! updates arrive through the control API.
//!
//! **Staging** (`POST /updates?notice_s=N`, with a package as `POST /images` takes it): the
//! package is written under `STATE/updates/`, fsynced, and verified exactly as an install
//! verifies it ([`install::verify_only`]: signature, trust, every payload, the rollback rule,
//! resolution against the board and the other installed apps). A package that fails is refused
//! with a 4xx naming the problem, and nothing is kept; one that passes is renamed into place
//! and recorded in `updates.json` (write-temp, fsync, rename, fsync of the directory), so it
//! survives a supervisor restart with its install time. A newer staged update of a component
//! replaces the pending one (which ends `abandoned`, its package removed).
//!
//! **When it installs**: at staging + notice; later while an app defers updates of its kind;
//! never later than staging + notice + the cap of its kind ([`APP_DEFERRAL_CAP_MINUTES`],
//! [`OS_DEFERRAL_CAP_MINUTES`]: Azure Sphere's 167 and 24 hours). One coordinator thread
//! sleeps on a condition variable until the earliest install time (or a change), announces
//! `installing`, installs through [`Supervisor::install`] — which verifies the package again
//! and restarts the app if it runs — and records `complete`, or `abandoned` with the reason
//! (logged, kept in `GET /updates`, the package removed, nothing else changed).
//!
//! **Events**: an app with `SystemEventNotifications` subscribes ([`Access::Events`]): it gets
//! the state of every pending update at once, then every change (staged, deferred, resumed,
//! installing, complete, abandoned; a cancel and a replacement are `abandoned`). Each event is
//! the whole state of one update, so the supervisor sends on a non-blocking socket and drops an
//! event the app's buffer has no room for — a later one supersedes it — and never waits for an
//! app. A send that fails otherwise (the worker is gone) ends the subscription. One
//! subscription per app: a new one replaces the old.
//!
//! **Deferrals**: `defer-update(kind, minutes)` sets the asking app's deferral of `kind` to
//! now + minutes, cut so that no pending update of that kind would be held past its cap, and
//! answers the minutes granted; `resume-update` withdraws it. A deferral is time-bounded, as
//! on Azure Sphere: it outlives the app's run (a stop, a crash, an uninstall) and ends at its
//! time. OS deferrals are recorded and shown like app ones; this version has no OS updater,
//! and the update agent that comes with the OS image is to honour them.
//!
//! ```text
//! STATE/updates/
//!   updates.json    pending updates, deferrals, the latest outcomes: the commit point
//!   <id>.wpkg       a staged package, verified when it was staged
//!   .incoming-…     a package being received; removed at start, like any file not named above
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufReader, Read, Seek};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use cap_std::fs::{Dir, OpenOptions};
use serde::{Deserialize, Serialize};
use warden_ipc::broker::{
    Access, Denial, MAX_DEFERRAL_MINUTES, ResourceRequest, SysEvent, UpdateKind, UpdateStatus,
};
use warden_ipc::{Channel, IpcError};

use crate::error::StateError;
use crate::http::{Request, Response};
use crate::index::Index;
use crate::install::{self, InstallError, Installed};
use crate::state::{self, StateDir};
use crate::supervisor::{Supervisor, WeakSupervisor};
use crate::system::SystemGrant;

/// Notice an update gets when `POST /updates` names none.
pub const DEFAULT_NOTICE_S: u64 = 10;
/// Longest notice: a day.
pub const MAX_NOTICE_S: u64 = 86_400;
/// Most minutes an app update can be held past its notice, all deferrals together (Azure
/// Sphere: 167 hours).
pub const APP_DEFERRAL_CAP_MINUTES: u32 = MAX_DEFERRAL_MINUTES;
/// Most minutes an OS update can be held past its notice (Azure Sphere: 24 hours).
pub const OS_DEFERRAL_CAP_MINUTES: u32 = 1_440;
/// Most updates pending at once (one per component).
pub const MAX_PENDING: usize = 32;
/// Outcomes (complete, abandoned) kept for `GET /updates`.
pub const MAX_RECENT: usize = 16;

const DIR: &str = "updates";
const RECORD: &str = "updates.json";
const MAX_RECORD_BYTES: u64 = 1024 * 1024;
const MINUTE_MS: u64 = 60_000;
/// The coordinator's longest sleep: a step of the wall clock is noticed within it.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// Unix time in milliseconds; the real one, or a test's.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> u64;
}

/// The system's wall clock. Install times are wall-clock times, so they hold across a restart.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// The most minutes updates of `kind` can be held past their notice, all deferrals together.
pub fn cap_minutes(kind: UpdateKind) -> u32 {
    match kind {
        UpdateKind::App => APP_DEFERRAL_CAP_MINUTES,
        UpdateKind::Os => OS_DEFERRAL_CAP_MINUTES,
    }
}

fn kind_name(kind: UpdateKind) -> &'static str {
    match kind {
        UpdateKind::App => "app",
        UpdateKind::Os => "OS",
    }
}

/// What `updates.json` holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    format: u32,
    next_id: u64,
    pending: Vec<Pending>,
    deferrals: Vec<Deferral>,
    /// Oldest first, at most [`MAX_RECENT`].
    recent: VecDeque<Outcome>,
}

impl Record {
    fn new() -> Record {
        Record {
            format: 1,
            next_id: 1,
            pending: Vec::new(),
            deferrals: Vec::new(),
            recent: VecDeque::new(),
        }
    }

    fn conclude(&mut self, update: &Pending, status: UpdateStatus, at_ms: u64, detail: String) {
        self.pending.retain(|p| p.id != update.id);
        if self.recent.len() >= MAX_RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Outcome {
            id: update.id,
            kind: update.kind,
            component_id: update.component_id.clone(),
            name: update.name.clone(),
            version: update.version,
            status,
            at_ms,
            detail,
        });
    }
}

/// A staged update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pending {
    id: u64,
    kind: UpdateKind,
    component_id: String,
    name: String,
    version: u64,
    /// `upgrade from N`, `first install`…, as verified when staged.
    decision: String,
    /// Resolution's warnings when staged (capabilities the board withholds).
    warnings: Vec<String>,
    /// The package, in `STATE/updates/`.
    file: String,
    bytes: u64,
    staged_at_ms: u64,
    notice_ms: u64,
}

/// One app's deferral of one kind of update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deferral {
    app: String,
    kind: UpdateKind,
    since_ms: u64,
    until_ms: u64,
}

/// How an update ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Outcome {
    id: u64,
    kind: UpdateKind,
    component_id: String,
    name: String,
    version: u64,
    /// `complete` or `abandoned`.
    status: UpdateStatus,
    at_ms: u64,
    /// The install's decision, or why it was given up.
    detail: String,
}

/// When an update installs, as things stand at some moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Schedule {
    install_at_ms: u64,
    /// An active deferral put it after its notice.
    deferred: bool,
    /// The latest it may install: staging + notice + the cap of its kind.
    latest_ms: u64,
}

/// The schedule of `update` at `now_ms`: its notice time, or the end of the latest active
/// deferral of its kind if that is later, but never after its cap. A deferral that has ended
/// holds nothing.
fn schedule(update: &Pending, deferrals: &[Deferral], now_ms: u64) -> Schedule {
    let notice_at = update.staged_at_ms.saturating_add(update.notice_ms);
    let latest_ms = notice_at.saturating_add(u64::from(cap_minutes(update.kind)) * MINUTE_MS);
    let held = deferrals
        .iter()
        .filter(|d| d.kind == update.kind && d.until_ms > now_ms)
        .map(|d| d.until_ms)
        .max()
        .unwrap_or(0);
    let install_at_ms = held.max(notice_at).min(latest_ms);
    Schedule {
        install_at_ms,
        deferred: install_at_ms > notice_at,
        latest_ms,
    }
}

/// How many more minutes `update` can be put off from `now_ms`.
fn room_minutes(update: &Pending, now_ms: u64) -> u32 {
    let left = schedule(update, &[], now_ms)
        .latest_ms
        .saturating_sub(now_ms)
        / MINUTE_MS;
    u32::try_from(left)
        .unwrap_or(u32::MAX)
        .min(cap_minutes(update.kind))
}

/// The minutes a deferral of `kind` by `asked` minutes is granted at `now_ms`: all of them,
/// unless that would hold one of the `pending` updates of that kind past its cap (and never
/// more than the cap of the kind).
fn grant_minutes<'a>(
    kind: UpdateKind,
    asked: u32,
    pending: impl IntoIterator<Item = &'a Pending>,
    now_ms: u64,
) -> u32 {
    pending
        .into_iter()
        .filter(|p| p.kind == kind)
        .map(|p| room_minutes(p, now_ms))
        .fold(asked.min(cap_minutes(kind)), u32::min)
}

/// A pending update as `GET /updates` shows it. Times are Unix seconds.
#[derive(Clone, Debug, Serialize)]
pub struct UpdateView {
    pub id: u64,
    pub kind: UpdateKind,
    pub component_id: String,
    pub name: String,
    pub version: u64,
    /// `pending`, `deferred` or `installing`.
    pub status: UpdateStatus,
    pub decision: String,
    pub warnings: Vec<String>,
    pub bytes: u64,
    pub staged_at: u64,
    pub notice_s: u64,
    /// When it installs as things stand.
    pub install_at: u64,
    pub seconds_to_install: u64,
    /// The latest it can be put off to: staging + notice + the cap.
    pub latest_install_at: u64,
    /// How many more minutes it can be put off.
    pub max_deferral_minutes: u32,
    /// The apps deferring updates of its kind now, and until when.
    pub deferred_by: Vec<DeferralView>,
}

/// An app's deferral.
#[derive(Clone, Debug, Serialize)]
pub struct DeferralView {
    pub app: String,
    pub kind: UpdateKind,
    pub since: u64,
    pub until: u64,
    pub seconds_left: u64,
}

/// How an update ended.
#[derive(Clone, Debug, Serialize)]
pub struct OutcomeView {
    pub id: u64,
    pub kind: UpdateKind,
    pub component_id: String,
    pub name: String,
    pub version: u64,
    pub status: UpdateStatus,
    pub at: u64,
    pub detail: String,
}

/// `GET /updates`.
#[derive(Clone, Debug, Serialize)]
pub struct UpdatesView {
    /// Pending updates, in the order they were staged.
    pub updates: Vec<UpdateView>,
    /// Every active deferral, of app and OS updates.
    pub deferrals: Vec<DeferralView>,
    /// The latest outcomes, newest first.
    pub recent: Vec<OutcomeView>,
}

fn deferral_view(d: &Deferral, now_ms: u64) -> DeferralView {
    DeferralView {
        app: d.app.clone(),
        kind: d.kind,
        since: d.since_ms / 1000,
        until: d.until_ms / 1000,
        seconds_left: d.until_ms.saturating_sub(now_ms).div_ceil(1000),
    }
}

/// Why staging or cancelling an update was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    #[error("update refused: {0}")]
    Install(#[from] InstallError),
    #[error(
        "update refused: this very package ({component} version {version}) is installed already"
    )]
    AlreadyInstalled { component: String, version: u64 },
    #[error("`notice_s` must be a number of seconds from 0 to {MAX_NOTICE_S}")]
    Notice,
    #[error("cannot read the package: {0}")]
    Body(std::io::Error),
    #[error("{MAX_PENDING} updates are pending already; cancel one or wait for it to install")]
    TooMany,
    #[error("no pending update {0}")]
    NotFound(u64),
    #[error("update {0} is installing now; it can no longer be cancelled")]
    Installing(u64),
    #[error(transparent)]
    State(#[from] StateError),
}

impl UpdateError {
    fn status(&self) -> u16 {
        match self {
            UpdateError::Install(InstallError::State(_)) | UpdateError::State(_) => 500,
            UpdateError::Install(_) => 422,
            UpdateError::Notice | UpdateError::Body(_) => 400,
            UpdateError::NotFound(_) => 404,
            UpdateError::AlreadyInstalled { .. }
            | UpdateError::TooMany
            | UpdateError::Installing(_) => 409,
        }
    }
}

/// An app's subscription: the sending end of its events socket, non-blocking.
#[derive(Debug)]
struct Subscriber {
    channel: Channel,
    /// Events its full buffer had no room for.
    dropped: u64,
}

impl Subscriber {
    /// Sends without waiting: `false` once the app is gone (the subscription ends). An event
    /// that finds the buffer full is dropped; a later one supersedes it.
    fn send(&mut self, event: &SysEvent) -> bool {
        match self.channel.send(event, &[]) {
            Ok(()) => true,
            Err(IpcError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.dropped += 1;
                true
            }
            Err(_) => false,
        }
    }
}

/// Everything the coordinator, the broker threads and the control API share.
#[derive(Debug)]
struct Book {
    record: Record,
    /// The update the coordinator is installing.
    installing: Option<u64>,
    /// By app.
    subscribers: BTreeMap<String, Subscriber>,
    /// What the subscribers were last told of each pending update: its status and install time.
    told: BTreeMap<u64, (UpdateStatus, u64)>,
}

impl Book {
    /// Pending updates that can still be deferred (not the one installing).
    fn waiting(&self) -> impl Iterator<Item = &Pending> {
        self.record
            .pending
            .iter()
            .filter(|p| Some(p.id) != self.installing)
    }

    /// The event that describes `update` at `now_ms`, and its install time.
    fn event(&self, update: &Pending, now_ms: u64) -> (SysEvent, u64) {
        let s = schedule(update, &self.record.deferrals, now_ms);
        let installing = self.installing == Some(update.id);
        let status = if installing {
            UpdateStatus::Installing
        } else if s.deferred {
            UpdateStatus::Deferred
        } else {
            UpdateStatus::Pending
        };
        let event = SysEvent {
            update: update.kind,
            status,
            component_id: Some(update.component_id.clone()),
            version: update.version,
            seconds_to_install: if installing {
                0
            } else {
                s.install_at_ms.saturating_sub(now_ms).div_ceil(1000)
            },
            max_deferral_minutes: if installing {
                0
            } else {
                room_minutes(update, now_ms)
            },
        };
        (event, s.install_at_ms)
    }

    fn view(&self, update: &Pending, now_ms: u64) -> UpdateView {
        let (event, install_at_ms) = self.event(update, now_ms);
        UpdateView {
            id: update.id,
            kind: update.kind,
            component_id: update.component_id.clone(),
            name: update.name.clone(),
            version: update.version,
            status: event.status,
            decision: update.decision.clone(),
            warnings: update.warnings.clone(),
            bytes: update.bytes,
            staged_at: update.staged_at_ms / 1000,
            notice_s: update.notice_ms / 1000,
            install_at: install_at_ms / 1000,
            seconds_to_install: event.seconds_to_install,
            latest_install_at: schedule(update, &[], now_ms).latest_ms / 1000,
            max_deferral_minutes: event.max_deferral_minutes,
            deferred_by: self
                .record
                .deferrals
                .iter()
                .filter(|d| d.kind == update.kind && d.until_ms > now_ms)
                .map(|d| deferral_view(d, now_ms))
                .collect(),
        }
    }

    fn broadcast(&mut self, event: &SysEvent) {
        self.subscribers.retain(|_, s| s.send(event));
    }

    /// Forgets ended deferrals and tells the subscribers of every update whose status or
    /// install time changed since they last heard of it. An update that is due is left to the
    /// coordinator, whose next word on it is `installing` (not a `pending` in 0 s first).
    fn publish(&mut self, now_ms: u64) {
        self.record.deferrals.retain(|d| d.until_ms > now_ms);
        let changed: Vec<(u64, SysEvent, u64)> = self
            .record
            .pending
            .iter()
            .filter_map(|p| {
                let (event, at) = self.event(p, now_ms);
                let due = at <= now_ms && self.installing != Some(p.id);
                (!due && self.told.get(&p.id) != Some(&(event.status, at)))
                    .then_some((p.id, event, at))
            })
            .collect();
        for (id, event, at) in changed {
            self.told.insert(id, (event.status, at));
            self.broadcast(&event);
        }
    }

    /// Tells the subscribers how `update` ended.
    fn ended(&mut self, update: &Pending, status: UpdateStatus) {
        self.told.remove(&update.id);
        self.broadcast(&SysEvent {
            update: update.kind,
            status,
            component_id: Some(update.component_id.clone()),
            version: update.version,
            seconds_to_install: 0,
            max_deferral_minutes: 0,
        });
    }

    /// The update to install now: the earliest due, the first staged among equals.
    fn due(&self, now_ms: u64) -> Option<Pending> {
        if self.installing.is_some() {
            return None;
        }
        self.record
            .pending
            .iter()
            .map(|p| (schedule(p, &self.record.deferrals, now_ms).install_at_ms, p))
            .filter(|(at, _)| *at <= now_ms)
            .min_by_key(|(at, p)| (*at, p.id))
            .map(|(_, p)| p.clone())
    }

    /// How long until the next update is due.
    fn next_due_in(&self, now_ms: u64) -> Option<Duration> {
        self.waiting()
            .map(|p| schedule(p, &self.record.deferrals, now_ms).install_at_ms)
            .min()
            .map(|at| Duration::from_millis(at.saturating_sub(now_ms).max(1)))
    }
}

struct Inner {
    /// The supervisor's state directory, for the index and installed apps a verification
    /// reads.
    state: StateDir,
    /// `STATE/updates`.
    dir: Dir,
    clock: Box<dyn Clock>,
    book: Mutex<Book>,
    /// Wakes the coordinator: something was staged, deferred, resumed or cancelled.
    wake: Condvar,
    /// Stagings run one at a time (each holds a whole package on disk until it is verified).
    staging: Mutex<()>,
    attached: OnceLock<()>,
}

impl Inner {
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.state.path().join(DIR).join(name)
    }

    /// Commits `record`: after this returns, a crash leaves exactly this content.
    fn save(&self, record: &Record) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| StateError::Corrupt {
            what: format!("{DIR}/{RECORD}"),
            reason: e.to_string(),
        })?;
        state::write_atomic(&self.dir, RECORD, &bytes)
            .map_err(|e| StateError::io("write", &self.path(RECORD), e))
    }

    /// Removes a package the record no longer names (a failure leaves a file that the next
    /// start removes).
    fn remove(&self, file: &str) {
        match self.dir.remove_file(file) {
            Ok(()) => {
                let _ = state::sync_dir(&self.dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "wardend: cannot remove {} (removed at the next start): {e}",
                self.path(file).display()
            ),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The device's pending updates, the apps' deferrals, and who is waiting for news of them.
pub struct Updates {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let book = lock(&self.inner.book);
        f.debug_struct("Updates")
            .field("state", &self.inner.state.path())
            .field("pending", &book.record.pending.len())
            .field("subscribers", &book.subscribers.len())
            .finish_non_exhaustive()
    }
}

/// A package being received: removed unless it was staged.
struct Incoming<'a> {
    dir: &'a Dir,
    name: String,
    kept: bool,
}

impl Drop for Incoming<'_> {
    fn drop(&mut self) {
        if !self.kept {
            let _ = self.dir.remove_file(&self.name);
        }
    }
}

impl Updates {
    /// Opens the pending updates under the state directory at `state`, on the system clock.
    pub fn open(state: &Path) -> Result<Updates, StateError> {
        Updates::open_with_clock(state, Box::new(SystemClock))
    }

    /// [`Updates::open`] on `clock`. Removes every file of `STATE/updates/` the record does not
    /// name (a package being received, or one replaced or installed just before a crash);
    /// a pending update whose package is missing is abandoned.
    pub fn open_with_clock(state: &Path, clock: Box<dyn Clock>) -> Result<Updates, StateError> {
        let state = StateDir::open(state)?;
        state
            .root()
            .create_dir_all(DIR)
            .map_err(|e| StateError::io("create", &state.path().join(DIR), e))?;
        let dir = state.dir(DIR)?;
        let corrupt = |reason: String| StateError::Corrupt {
            what: state.path().join(DIR).join(RECORD).display().to_string(),
            reason,
        };
        let mut record = match state.read_bounded(&dir, RECORD, MAX_RECORD_BYTES)? {
            None => Record::new(),
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?,
        };
        if record.format != 1 {
            return Err(corrupt(format!("unknown format {}", record.format)));
        }
        for entry in dir
            .entries()
            .map_err(|e| StateError::io("list", &state.path().join(DIR), e))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != RECORD && !record.pending.iter().any(|p| p.file == name) {
                dir.remove_file(&name)
                    .or_else(|_| dir.remove_dir_all(&name))
                    .map_err(|e| {
                        StateError::io("remove", &state.path().join(DIR).join(&name), e)
                    })?;
            }
        }
        let now = clock.now_ms();
        let lost: Vec<Pending> = record
            .pending
            .iter()
            .filter(|p| !dir.exists(&p.file))
            .cloned()
            .collect();
        for update in &lost {
            eprintln!(
                "wardend: update {} ({} version {}) abandoned: its staged package is missing",
                update.id, update.component_id, update.version
            );
            record.conclude(
                update,
                UpdateStatus::Abandoned,
                now,
                "its staged package is missing".into(),
            );
        }
        let inner = Inner {
            state,
            dir,
            clock,
            book: Mutex::new(Book {
                record,
                installing: None,
                subscribers: BTreeMap::new(),
                told: BTreeMap::new(),
            }),
            wake: Condvar::new(),
            staging: Mutex::new(()),
            attached: OnceLock::new(),
        };
        if !lost.is_empty() {
            inner.save(&lock(&inner.book).record)?;
        }
        Ok(Updates {
            inner: Arc::new(inner),
        })
    }

    /// Starts the coordinator that installs through `supervisor` (once; later calls do
    /// nothing). It ends when the supervisor does.
    pub fn attach(&self, supervisor: WeakSupervisor) -> std::io::Result<()> {
        if self.inner.attached.set(()).is_err() {
            return Ok(());
        }
        let inner = Arc::clone(&self.inner);
        std::thread::Builder::new()
            .name("updates".into())
            .spawn(move || coordinate(&inner, &supervisor))?;
        Ok(())
    }

    /// Answers an `events`, `defer_update` or `resume_update` request of `app`.
    pub fn answer(
        &self,
        app: &str,
        grant: &SystemGrant,
        request: &ResourceRequest,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        match request {
            ResourceRequest::Events if grant.events => self.subscribe(app),
            ResourceRequest::DeferUpdate { update, minutes } if grant.deferral => {
                self.defer(app, *update, *minutes)
            }
            ResourceRequest::ResumeUpdate { update } if grant.deferral => self.resume(app, *update),
            ResourceRequest::Events
            | ResourceRequest::DeferUpdate { .. }
            | ResourceRequest::ResumeUpdate { .. } => Err(Denial::NotGranted(format!(
                "this app's manifest does not grant {} (a {})",
                request.capability(),
                request.describe()
            ))),
            other => Err(Denial::InvalidArgument(format!(
                "the update service does not answer a {}",
                other.describe()
            ))),
        }
    }

    fn subscribe(&self, app: &str) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let (ours, theirs) = Channel::pair()
            .map_err(|e| Denial::Io(format!("cannot make the update events socket: {e}")))?;
        rustix::io::ioctl_fionbio(&ours, true).map_err(|e| {
            Denial::Io(format!(
                "cannot make the update events socket non-blocking: {e}"
            ))
        })?;
        let mut book = lock(&self.inner.book);
        let now = self.inner.now();
        book.publish(now);
        let mut subscriber = Subscriber {
            channel: ours,
            dropped: 0,
        };
        for update in &book.record.pending {
            subscriber.send(&book.event(update, now).0);
        }
        // The app's earlier subscription, if any, closes here.
        book.subscribers.insert(app.to_owned(), subscriber);
        Ok((Access::Events, vec![theirs.into_fd()]))
    }

    fn defer(
        &self,
        app: &str,
        kind: UpdateKind,
        minutes: u32,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let mut book = lock(&self.inner.book);
        let now = self.inner.now();
        let granted = grant_minutes(kind, minutes, book.waiting(), now);
        let mut next = book.record.clone();
        next.deferrals
            .retain(|d| d.until_ms > now && !(d.app == app && d.kind == kind));
        if granted > 0 {
            next.deferrals.push(Deferral {
                app: app.to_owned(),
                kind,
                since_ms: now,
                until_ms: now + u64::from(granted) * MINUTE_MS,
            });
        }
        self.inner
            .save(&next)
            .map_err(|e| Denial::Io(format!("cannot record the deferral: {e}")))?;
        book.record = next;
        book.publish(now);
        self.inner.wake.notify_all();
        eprintln!(
            "wardend: app {app} defers {} updates by {granted} minutes (asked {minutes})",
            kind_name(kind)
        );
        Ok((Access::Deferred { minutes: granted }, vec![]))
    }

    fn resume(&self, app: &str, kind: UpdateKind) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let mut book = lock(&self.inner.book);
        let now = self.inner.now();
        if book
            .record
            .deferrals
            .iter()
            .any(|d| d.app == app && d.kind == kind)
        {
            let mut next = book.record.clone();
            next.deferrals.retain(|d| !(d.app == app && d.kind == kind));
            self.inner
                .save(&next)
                .map_err(|e| Denial::Io(format!("cannot record the resumption: {e}")))?;
            book.record = next;
            eprintln!("wardend: app {app} resumes {} updates", kind_name(kind));
        }
        book.publish(now);
        self.inner.wake.notify_all();
        Ok((Access::Accepted, vec![]))
    }

    /// Every pending update, every active deferral and the latest outcomes.
    pub fn list(&self) -> UpdatesView {
        let book = lock(&self.inner.book);
        let now = self.inner.now();
        UpdatesView {
            updates: book
                .record
                .pending
                .iter()
                .map(|p| book.view(p, now))
                .collect(),
            deferrals: book
                .record
                .deferrals
                .iter()
                .filter(|d| d.until_ms > now)
                .map(|d| deferral_view(d, now))
                .collect(),
            recent: book
                .record
                .recent
                .iter()
                .rev()
                .map(|o| OutcomeView {
                    id: o.id,
                    kind: o.kind,
                    component_id: o.component_id.clone(),
                    name: o.name.clone(),
                    version: o.version,
                    status: o.status,
                    at: o.at_ms / 1000,
                    detail: o.detail.clone(),
                })
                .collect(),
        }
    }

    /// One pending update.
    pub fn get(&self, id: u64) -> Result<UpdateView, UpdateError> {
        let book = lock(&self.inner.book);
        let now = self.inner.now();
        book.record
            .pending
            .iter()
            .find(|p| p.id == id)
            .map(|p| book.view(p, now))
            .ok_or(UpdateError::NotFound(id))
    }

    /// Receives the package in `body`, verifies it as an install would against the device
    /// `sup` runs, and stages it to install `notice_s` seconds from now.
    pub fn stage(
        &self,
        sup: &Supervisor,
        notice_s: u64,
        mut body: impl Read,
    ) -> Result<UpdateView, UpdateError> {
        if notice_s > MAX_NOTICE_S {
            return Err(UpdateError::Notice);
        }
        let inner = &*self.inner;
        let _one_at_a_time = lock(&inner.staging);
        let mut incoming = Incoming {
            dir: &inner.dir,
            name: state::unique_name(".incoming"),
            kept: false,
        };
        let mut file = inner
            .dir
            .open_with(
                &incoming.name,
                OpenOptions::new().read(true).write(true).create_new(true),
            )
            .map_err(|e| StateError::io("create", &inner.path(&incoming.name), e))?
            .into_std();
        let bytes = std::io::copy(&mut body, &mut file).map_err(UpdateError::Body)?;
        file.sync_all()
            .and_then(|()| file.rewind())
            .map_err(|e| StateError::io("write", &inner.path(&incoming.name), e))?;
        let index = Index::load(&inner.state)?;
        let checked =
            install::verify_only(&inner.state, &index, sup.device(), BufReader::new(file))?;
        let header = checked.package.header();
        let component = header.component_id.to_string();
        let Some(resolved) = checked.resolved else {
            return Err(UpdateError::AlreadyInstalled {
                component,
                version: header.version,
            });
        };

        let mut book = lock(&inner.book);
        let now = inner.now();
        let replaced: Vec<Pending> = book
            .waiting()
            .filter(|p| p.component_id == component)
            .cloned()
            .collect();
        if book.record.pending.len() - replaced.len() >= MAX_PENDING {
            return Err(UpdateError::TooMany);
        }
        let mut next = book.record.clone();
        let id = next.next_id;
        next.next_id += 1;
        let update = Pending {
            id,
            kind: UpdateKind::App,
            component_id: component,
            name: header.name.clone(),
            version: header.version,
            decision: install::describe(checked.decision),
            warnings: resolved
                .warnings
                .iter()
                .map(ToString::to_string)
                .chain(resolved.withheld.iter().map(|w| format!("withheld: {w}")))
                .collect(),
            file: format!("{id}.wpkg"),
            bytes,
            staged_at_ms: now,
            notice_ms: notice_s * 1000,
        };
        for old in &replaced {
            next.conclude(
                old,
                UpdateStatus::Abandoned,
                now,
                format!("replaced by update {id} (version {})", update.version),
            );
        }
        next.pending.push(update.clone());
        inner
            .dir
            .rename(&incoming.name, &inner.dir, &update.file)
            .map_err(|e| StateError::io("stage", &inner.path(&update.file), e))?;
        incoming.kept = true;
        let committed = state::sync_dir(&inner.dir)
            .map_err(|e| StateError::io("sync", &inner.path(""), e))
            .and_then(|()| inner.save(&next));
        if let Err(e) = committed {
            inner.remove(&update.file);
            return Err(e.into());
        }
        book.record = next;
        for old in &replaced {
            inner.remove(&old.file);
            book.ended(old, UpdateStatus::Abandoned);
        }
        book.publish(now);
        inner.wake.notify_all();
        let view = book.view(&update, now);
        eprintln!(
            "wardend: update {id} staged: {} ({}) version {}, {}, installs in {notice_s} s{}",
            update.name,
            update.component_id,
            update.version,
            update.decision,
            replaced
                .first()
                .map(|old| format!(", replacing update {}", old.id))
                .unwrap_or_default()
        );
        Ok(view)
    }

    /// Cancels a pending update: it ends `abandoned`, its package is removed.
    pub fn cancel(&self, id: u64) -> Result<OutcomeView, UpdateError> {
        let inner = &*self.inner;
        let mut book = lock(&inner.book);
        if book.installing == Some(id) {
            return Err(UpdateError::Installing(id));
        }
        let update = book
            .record
            .pending
            .iter()
            .find(|p| p.id == id)
            .cloned()
            .ok_or(UpdateError::NotFound(id))?;
        let now = inner.now();
        let detail = "cancelled through the control API".to_owned();
        let mut next = book.record.clone();
        next.conclude(&update, UpdateStatus::Abandoned, now, detail.clone());
        inner.save(&next)?;
        book.record = next;
        inner.remove(&update.file);
        book.ended(&update, UpdateStatus::Abandoned);
        book.publish(now);
        inner.wake.notify_all();
        eprintln!(
            "wardend: update {id} ({} version {}) cancelled",
            update.component_id, update.version
        );
        Ok(OutcomeView {
            id,
            kind: update.kind,
            component_id: update.component_id,
            name: update.name,
            version: update.version,
            status: UpdateStatus::Abandoned,
            at: now / 1000,
            detail,
        })
    }

    /// Answers `/updates...` (`rest` is the path after `/updates`).
    pub fn route(&self, sup: &Supervisor, req: &mut Request<'_>, rest: &[&str]) -> Response {
        let method = req.method.clone();
        let id = |text: &str| {
            text.parse::<u64>()
                .map_err(|_| Response::error(400, &format!("`{text}` is not an update id")))
        };
        let result = match (method.as_str(), rest) {
            ("GET", []) => return Response::json(200, &self.list()),
            ("POST", []) => {
                let notice_s = match req.query("notice_s").map(str::parse::<u64>) {
                    None => DEFAULT_NOTICE_S,
                    Some(Ok(n)) if n <= MAX_NOTICE_S => n,
                    Some(_) => return Response::error(400, &UpdateError::Notice.to_string()),
                };
                let body = match req.body(crate::api::MAX_IMAGE_BYTES) {
                    Ok(body) => body,
                    Err(response) => return response,
                };
                self.stage(sup, notice_s, body)
                    .map(|view| Response::json(202, &view))
            }
            ("GET", [text]) => match id(text) {
                Ok(id) => self.get(id).map(|view| Response::json(200, &view)),
                Err(response) => return response,
            },
            ("DELETE", [text]) => match id(text) {
                Ok(id) => self.cancel(id).map(|view| Response::json(200, &view)),
                Err(response) => return response,
            },
            (_, [] | [_]) => {
                return Response::error(405, &format!("{method} is not allowed here"));
            }
            _ => return Response::error(404, "no such update resource"),
        };
        result.unwrap_or_else(|e| Response::error(e.status(), &e.to_string()))
    }
}

/// The coordinator: installs each update when it is due, one at a time, and tells the
/// subscribers of every change time brings. Ends when the supervisor does.
fn coordinate(inner: &Inner, supervisor: &WeakSupervisor) {
    let mut book = lock(&inner.book);
    loop {
        if supervisor.upgrade().is_none() {
            return;
        }
        let now = inner.now();
        if let Some(update) = book.due(now) {
            book.installing = Some(update.id);
            book.publish(now);
            drop(book);
            let result = match supervisor.upgrade() {
                Some(sup) => install_staged(inner, &sup, &update),
                None => return,
            };
            book = lock(&inner.book);
            book.installing = None;
            conclude(inner, &mut book, &update, result);
            continue;
        }
        book.publish(now);
        let sleep = book
            .next_due_in(now)
            .map_or(MAX_SLEEP, |d| d.min(MAX_SLEEP));
        book = inner
            .wake
            .wait_timeout(book, sleep)
            .map_or_else(|p| p.into_inner().0, |(guard, _)| guard);
    }
}

fn install_staged(inner: &Inner, sup: &Supervisor, update: &Pending) -> Result<Installed, String> {
    let file = inner
        .dir
        .open(&update.file)
        .map_err(|e| {
            format!(
                "cannot open the staged package {}: {e}",
                inner.path(&update.file).display()
            )
        })?
        .into_std();
    sup.install(BufReader::new(file)).map_err(|e| e.to_string())
}

/// Records how an install ended, removes its package, and tells the subscribers.
fn conclude(inner: &Inner, book: &mut Book, update: &Pending, result: Result<Installed, String>) {
    let now = inner.now();
    let (status, detail) = match result {
        Ok(installed) => {
            eprintln!(
                "wardend: update {} installed: {} ({}) version {}, {}",
                update.id,
                installed.name,
                installed.component_id,
                installed.version,
                installed.decision
            );
            (UpdateStatus::Complete, installed.decision)
        }
        Err(reason) => {
            eprintln!(
                "wardend: update {} ({} version {}) abandoned: {reason}",
                update.id, update.component_id, update.version
            );
            (UpdateStatus::Abandoned, reason)
        }
    };
    let mut next = book.record.clone();
    next.conclude(update, status, now, detail);
    if let Err(e) = inner.save(&next) {
        // At the next start the update is pending again: installing it twice changes nothing.
        eprintln!(
            "wardend: cannot record the outcome of update {}: {e}",
            update.id
        );
    }
    book.record = next;
    inner.remove(&update.file);
    book.ended(update, status);
    book.publish(now);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    const T0: u64 = 1_800_000_000_000;
    const SECOND: u64 = 1000;

    fn update(id: u64, staged_at_ms: u64, notice_s: u64) -> Pending {
        Pending {
            id,
            kind: UpdateKind::App,
            component_id: format!("00000000-0000-4000-8000-00000000000{id}"),
            name: "app".into(),
            version: 2,
            decision: "upgrade from 1".into(),
            warnings: vec![],
            file: format!("{id}.wpkg"),
            bytes: 3,
            staged_at_ms,
            notice_ms: notice_s * SECOND,
        }
    }

    fn deferral(app: &str, kind: UpdateKind, until_ms: u64) -> Deferral {
        Deferral {
            app: app.into(),
            kind,
            since_ms: T0,
            until_ms,
        }
    }

    #[test]
    fn without_a_deferral_an_update_installs_at_the_end_of_its_notice() {
        let u = update(1, T0, 10);
        let s = schedule(&u, &[], T0);
        assert_eq!(s.install_at_ms, T0 + 10 * SECOND);
        assert!(!s.deferred);
        assert_eq!(s.latest_ms, T0 + 10 * SECOND + 10_020 * MINUTE_MS);
    }

    #[test]
    fn a_deferral_past_the_notice_holds_the_update_until_it_ends() {
        let u = update(1, T0, 10);
        let d = [deferral("a", UpdateKind::App, T0 + 5 * MINUTE_MS)];
        let s = schedule(&u, &d, T0 + SECOND);
        assert_eq!(s.install_at_ms, T0 + 5 * MINUTE_MS);
        assert!(s.deferred);
        // One that ends before the notice changes nothing.
        let d = [deferral("a", UpdateKind::App, T0 + 5 * SECOND)];
        let s = schedule(&u, &d, T0 + SECOND);
        assert_eq!(s.install_at_ms, T0 + 10 * SECOND);
        assert!(!s.deferred);
    }

    #[test]
    fn the_latest_active_deferral_of_the_same_kind_decides() {
        let u = update(1, T0, 10);
        let d = [
            deferral("a", UpdateKind::App, T0 + 3 * MINUTE_MS),
            deferral("b", UpdateKind::App, T0 + 7 * MINUTE_MS),
            deferral("c", UpdateKind::App, T0 + 5 * MINUTE_MS),
            // An OS deferral holds no app update.
            deferral("d", UpdateKind::Os, T0 + 60 * MINUTE_MS),
        ];
        assert_eq!(
            schedule(&u, &d, T0).install_at_ms,
            T0 + 7 * MINUTE_MS,
            "the max over the apps' deferrals"
        );
    }

    #[test]
    fn deferrals_hold_an_update_no_longer_than_the_cap_in_total() {
        let u = update(1, T0, 10);
        let notice_at = T0 + 10 * SECOND;
        // Two apps taking turns at the longest deferral cannot go past the cap.
        let d = [
            deferral("a", UpdateKind::App, T0 + 10_020 * MINUTE_MS),
            deferral("b", UpdateKind::App, T0 + 20_000 * MINUTE_MS),
        ];
        let s = schedule(&u, &d, T0 + 9_000 * MINUTE_MS);
        assert_eq!(s.install_at_ms, notice_at + 10_020 * MINUTE_MS);
        assert!(s.deferred);
        // An OS update's cap is a day.
        let mut os = update(2, T0, 10);
        os.kind = UpdateKind::Os;
        let d = [deferral("a", UpdateKind::Os, T0 + 5_000 * MINUTE_MS)];
        assert_eq!(
            schedule(&os, &d, T0).install_at_ms,
            notice_at + 1_440 * MINUTE_MS
        );
    }

    #[test]
    fn an_ended_deferral_holds_nothing() {
        let u = update(1, T0, 10);
        let d = [deferral("a", UpdateKind::App, T0 + 2 * MINUTE_MS)];
        let s = schedule(&u, &d, T0 + 2 * MINUTE_MS);
        assert_eq!(s.install_at_ms, T0 + 10 * SECOND, "due: its notice is over");
        assert!(!s.deferred);
    }

    #[test]
    fn the_minutes_granted_are_what_is_left_of_the_cap_of_every_pending_update() {
        // Nothing pending: the cap of the kind.
        assert_eq!(grant_minutes(UpdateKind::App, 10_020, [], T0), 10_020);
        assert_eq!(grant_minutes(UpdateKind::Os, 10_020, [], T0), 1_440);
        assert_eq!(grant_minutes(UpdateKind::App, 30, [], T0), 30);
        // Staged 10 000 minutes ago with no notice: 20 minutes are left of its cap.
        let old = update(1, T0, 0);
        let new = update(2, T0 + 9_000 * MINUTE_MS, 0);
        let now = T0 + 10_000 * MINUTE_MS;
        assert_eq!(room_minutes(&old, now), 20);
        assert_eq!(grant_minutes(UpdateKind::App, 60, [&old, &new], now), 20);
        assert_eq!(grant_minutes(UpdateKind::App, 10, [&old, &new], now), 10);
        // An app update's cap does not bound an OS deferral.
        assert_eq!(grant_minutes(UpdateKind::Os, 60, [&old], now), 60);
        // Used up: nothing.
        assert_eq!(
            grant_minutes(UpdateKind::App, 60, [&old], T0 + 10_020 * MINUTE_MS),
            0
        );
    }

    struct TestClock(Arc<AtomicU64>);

    impl Clock for TestClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn open(dir: &Path, now: &Arc<AtomicU64>) -> Updates {
        Updates::open_with_clock(dir, Box::new(TestClock(Arc::clone(now)))).unwrap()
    }

    /// Stages `u` as if it had passed verification.
    fn add(updates: &Updates, u: Pending) {
        state::write_new(&updates.inner.dir, &u.file, b"pkg").unwrap();
        let mut book = lock(&updates.inner.book);
        book.record.pending.push(u);
        book.record.next_id += 1;
        updates.inner.save(&book.record).unwrap();
        let now = updates.inner.now();
        book.publish(now);
    }

    const ALL: SystemGrant = SystemGrant {
        power: Vec::new(),
        events: true,
        deferral: true,
        connections: Vec::new(),
    };

    fn defer(updates: &Updates, app: &str, kind: UpdateKind, minutes: u32) -> u32 {
        match updates
            .answer(
                app,
                &ALL,
                &ResourceRequest::DeferUpdate {
                    update: kind,
                    minutes,
                },
            )
            .unwrap()
        {
            (Access::Deferred { minutes }, fds) if fds.is_empty() => minutes,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defer_and_resume_move_the_install_time_and_outlive_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(T0));
        let updates = open(tmp.path(), &now);
        add(&updates, update(1, T0, 10));
        assert_eq!(updates.list().updates[0].status, UpdateStatus::Pending);
        assert_eq!(updates.list().updates[0].seconds_to_install, 10);

        assert_eq!(defer(&updates, "a", UpdateKind::App, 5), 5);
        assert_eq!(defer(&updates, "b", UpdateKind::Os, 2_000), 1_440);
        let view = updates.list();
        assert_eq!(view.updates[0].status, UpdateStatus::Deferred);
        assert_eq!(view.updates[0].install_at, (T0 + 5 * MINUTE_MS) / 1000);
        assert_eq!(
            view.updates[0].deferred_by.len(),
            1,
            "only the app deferral"
        );
        assert_eq!(view.updates[0].deferred_by[0].app, "a");
        assert_eq!(view.deferrals.len(), 2, "the OS deferral is recorded too");

        // Past the notice, still held; the record survives a restart.
        now.store(T0 + 60 * SECOND, Ordering::SeqCst);
        assert!(lock(&updates.inner.book).due(T0 + 60 * SECOND).is_none());
        drop(updates);
        let updates = open(tmp.path(), &now);
        let view = updates.list();
        assert_eq!(view.updates[0].status, UpdateStatus::Deferred);
        assert_eq!(view.updates[0].install_at, (T0 + 5 * MINUTE_MS) / 1000);
        assert_eq!(view.updates[0].seconds_to_install, 4 * 60);

        // Resumed: due at once, its notice being over.
        let (access, _) = updates
            .answer(
                "a",
                &ALL,
                &ResourceRequest::ResumeUpdate {
                    update: UpdateKind::App,
                },
            )
            .unwrap();
        assert_eq!(access, Access::Accepted);
        assert_eq!(updates.list().updates[0].status, UpdateStatus::Pending);
        let due = lock(&updates.inner.book).due(T0 + 60 * SECOND);
        assert_eq!(due.map(|u| u.id), Some(1));

        // A deferral ends by itself.
        assert_eq!(defer(&updates, "a", UpdateKind::App, 1), 1);
        assert!(lock(&updates.inner.book).due(T0 + 61 * SECOND).is_none());
        assert!(lock(&updates.inner.book).due(T0 + 120 * SECOND).is_some());
    }

    #[test]
    fn without_the_capabilities_every_request_is_not_granted() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(T0));
        let updates = open(tmp.path(), &now);
        let events_only = SystemGrant {
            events: true,
            ..SystemGrant::default()
        };
        let deferral_only = SystemGrant {
            deferral: true,
            ..SystemGrant::default()
        };
        let cases = [
            (
                &deferral_only,
                ResourceRequest::Events,
                "SystemEventNotifications",
            ),
            (
                &events_only,
                ResourceRequest::DeferUpdate {
                    update: UpdateKind::App,
                    minutes: 1,
                },
                "SoftwareUpdateDeferral",
            ),
            (
                &events_only,
                ResourceRequest::ResumeUpdate {
                    update: UpdateKind::Os,
                },
                "SoftwareUpdateDeferral",
            ),
        ];
        for (grant, request, key) in cases {
            match updates.answer("a", grant, &request) {
                Err(Denial::NotGranted(m)) => assert!(m.contains(key), "{m}"),
                other => panic!("{request:?}: {other:?}"),
            }
        }
        assert!(updates.list().deferrals.is_empty());
    }

    fn subscribe(updates: &Updates, app: &str) -> Channel {
        let (access, fds) = updates.answer(app, &ALL, &ResourceRequest::Events).unwrap();
        assert_eq!(access, Access::Events);
        let [fd] = <[OwnedFd; 1]>::try_from(fds).unwrap();
        let channel = Channel::from_fd(fd);
        channel
            .set_recv_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        channel
    }

    fn next(channel: &Channel) -> SysEvent {
        channel.recv::<SysEvent>().unwrap().0
    }

    #[test]
    fn a_subscriber_hears_every_pending_update_then_each_change() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(T0));
        let updates = open(tmp.path(), &now);
        add(&updates, update(1, T0, 10));
        let events = subscribe(&updates, "listener");
        let first = next(&events);
        assert_eq!(first.status, UpdateStatus::Pending);
        assert_eq!(first.seconds_to_install, 10);
        assert_eq!(first.max_deferral_minutes, 10_020);
        assert_eq!(first.version, 2);

        add(&updates, update(2, T0, 30));
        assert_eq!(
            next(&events).component_id,
            Some(update(2, T0, 30).component_id)
        );
        defer(&updates, "a", UpdateKind::App, 1);
        let mut deferred = [next(&events), next(&events)];
        deferred.sort_by_key(|e| e.component_id.clone());
        assert_eq!(deferred[0].status, UpdateStatus::Deferred);
        assert_eq!(deferred[0].seconds_to_install, 60);
        assert_eq!(deferred[1].status, UpdateStatus::Deferred);

        // A cancel is the end of the update: abandoned.
        updates.cancel(2).unwrap();
        let ended = next(&events);
        assert_eq!(ended.status, UpdateStatus::Abandoned);
        assert_eq!(ended.component_id, Some(update(2, T0, 30).component_id));
        assert!(!tmp.path().join("updates/2.wpkg").exists());
        assert_eq!(updates.list().recent[0].status, UpdateStatus::Abandoned);

        // Nothing else changed: nothing more is sent.
        assert!(events.recv::<SysEvent>().is_err());

        // A second subscription of the same app replaces the first.
        let again = subscribe(&updates, "listener");
        assert_eq!(next(&again).status, UpdateStatus::Deferred);
        assert!(matches!(events.recv::<SysEvent>(), Err(IpcError::Closed)));
    }

    #[test]
    fn a_full_or_closed_events_socket_never_blocks_the_supervisor() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(T0));
        let updates = open(tmp.path(), &now);
        add(&updates, update(1, T0, 10));
        let events = subscribe(&updates, "slow");
        let started = std::time::Instant::now();
        let event = lock(&updates.inner.book).event(&update(1, T0, 10), T0).0;
        for _ in 0..100_000 {
            lock(&updates.inner.book).broadcast(&event);
        }
        assert!(started.elapsed() < Duration::from_secs(20));
        {
            let book = lock(&updates.inner.book);
            let subscriber = book.subscribers.get("slow").unwrap();
            assert!(
                subscriber.dropped > 0,
                "the buffer filled up and events were dropped"
            );
        }
        // What the app reads is still whole events.
        assert_eq!(next(&events).status, UpdateStatus::Pending);
        // Gone: the subscription ends at the next event.
        drop(events);
        lock(&updates.inner.book).broadcast(&event);
        assert!(lock(&updates.inner.book).subscribers.is_empty());
    }

    #[test]
    fn a_start_removes_stray_files_and_abandons_an_update_whose_package_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicU64::new(T0));
        let updates = open(tmp.path(), &now);
        add(&updates, update(1, T0, 10));
        add(&updates, update(2, T0, 10));
        drop(updates);
        let dir = tmp.path().join("updates");
        std::fs::write(dir.join(".incoming-1-2-3"), b"half a package").unwrap();
        std::fs::write(dir.join("9.wpkg"), b"staged, never recorded").unwrap();
        std::fs::remove_file(dir.join("2.wpkg")).unwrap();
        let updates = open(tmp.path(), &now);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["1.wpkg", "updates.json"]);
        let view = updates.list();
        assert_eq!(view.updates.len(), 1);
        assert_eq!(view.recent[0].id, 2);
        assert_eq!(view.recent[0].status, UpdateStatus::Abandoned);
        assert!(
            view.recent[0].detail.contains("missing"),
            "{:?}",
            view.recent[0]
        );
    }
}
