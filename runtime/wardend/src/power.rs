//! Device power (`PowerControls`): an app asks the broker to reboot the device, power it down
//! for a while, or set the power profile; the broker checks that the manifest grants that very
//! control (`ForceReboot`, `ForcePowerDown`, `SetPowerProfile`) and hands the action to the
//! board's [`PowerBackend`].
//!
//! A reboot or power-down is answered as soon as the backend has taken it on; the work follows
//! on a thread of its own after [`GRACE`], so the app sees its call succeed (as Azure Sphere's
//! `PowerManagement_ForceSystemReboot` returns) before it is stopped with every other app.
//!
//! Two backends, chosen by the board: [`SimPower`] on a board with simulated peripherals
//! (it records every request for `GET /sim/power`, and "reboots" by stopping every app and
//! starting the autostart ones again; a power-down keeps the fleet stopped until the residency
//! ends or `POST /sim/power/wake`), and [`LinuxPower`] on a real one (stop every app, `sync`,
//! arm the RTC wake alarm for a power-down, `reboot(2)`; the profile sets every cpufreq
//! policy's governor). The Linux steps are behind [`PowerSys`], so their order is tested
//! without rebooting anything.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use warden_ipc::broker::{Access, Denial, PowerAction, PowerProfile};
use warden_policy::manifest::PowerControl;

use crate::supervisor::WeakSupervisor;
use crate::system::SystemGrant;

/// How long after accepting a reboot or power-down the backend starts stopping apps: time for
/// the reply to reach the app and for it to log that it asked.
pub const GRACE: Duration = Duration::from_millis(500);

/// Most power requests the simulated board remembers.
const SIM_HISTORY: usize = 32;

/// The whole fleet of apps, as a power action acts on it.
pub trait Fleet: Send + Sync {
    /// Stops every app (and unmounts their storage).
    fn stop_all(&self);
    /// Starts the apps a boot starts; says which could not start.
    fn boot(&self) -> Vec<String>;
}

impl Fleet for WeakSupervisor {
    fn stop_all(&self) {
        if let Some(sup) = self.upgrade() {
            sup.stop_all();
        }
    }

    fn boot(&self) -> Vec<String> {
        self.upgrade().map_or_else(Vec::new, |sup| {
            sup.boot()
                .into_iter()
                .map(|(id, e)| format!("{id}: {e}"))
                .collect()
        })
    }
}

/// Carries out power actions on this device.
pub trait PowerBackend: Send + Sync + std::fmt::Debug {
    /// Gives the backend the fleet it stops and boots (once, after the supervisor opened).
    fn attach(&self, fleet: Arc<dyn Fleet>);
    /// Takes `action`, asked by `app`, on: returns once it is accepted (a reboot or power-down
    /// follows after [`GRACE`]), or why it cannot be.
    fn perform(&self, app: &str, action: PowerAction) -> Result<(), Denial>;
}

/// The manifest value that grants `action`.
fn control_of(action: PowerAction) -> PowerControl {
    match action {
        PowerAction::Reboot => PowerControl::ForceReboot,
        PowerAction::PowerDown { .. } => PowerControl::ForcePowerDown,
        PowerAction::SetProfile { .. } => PowerControl::SetPowerProfile,
    }
}

/// Answers a power request: `not-granted` unless the app's manifest lists the control in
/// `PowerControls` (and the board backs it), then whatever the backend says.
pub fn answer(
    app: &str,
    grant: &SystemGrant,
    backend: &dyn PowerBackend,
    action: PowerAction,
) -> Result<(Access, Vec<OwnedFd>), Denial> {
    let control = control_of(action);
    if !grant.power.contains(&control) {
        return Err(Denial::NotGranted(format!(
            "this app's manifest does not grant PowerControls `{}`",
            control.name()
        )));
    }
    backend.perform(app, action)?;
    Ok((Access::Accepted, vec![]))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn profile_name(profile: PowerProfile) -> &'static str {
    match profile {
        PowerProfile::PowerSaver => "power_saver",
        PowerProfile::Balanced => "balanced",
        PowerProfile::HighPerformance => "high_performance",
    }
}

/// Whether the device is up, in a reboot, or powered down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    On,
    Rebooting,
    Off,
}

/// One power request the simulated board took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PowerRequest {
    pub app: String,
    pub action: PowerAction,
    /// Unix seconds.
    pub at: u64,
}

/// What `GET /sim/power` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PowerView {
    pub state: PowerState,
    pub profile: &'static str,
    /// Completed reboots and power-downs (a power-down counts when the board is up again).
    pub reboots: u64,
    pub power_downs: u64,
    /// While off: seconds until the wake alarm.
    pub wakes_in_s: Option<u64>,
    /// The latest requests, oldest first (at most 32).
    pub requests: Vec<PowerRequest>,
}

#[derive(Debug)]
struct SimState {
    state: PowerState,
    profile: PowerProfile,
    reboots: u64,
    power_downs: u64,
    wake_at: Option<Instant>,
    /// Set by `POST /sim/power/wake`.
    woken: bool,
    requests: Vec<PowerRequest>,
}

/// The simulated board's power: records every request and acts it out on the fleet.
pub struct SimPower {
    fleet: OnceLock<Arc<dyn Fleet>>,
    state: Mutex<SimState>,
    changed: Condvar,
}

impl std::fmt::Debug for SimPower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPower")
            .field("state", &lock(&self.state).state)
            .finish_non_exhaustive()
    }
}

impl Default for SimPower {
    fn default() -> Self {
        SimPower::new()
    }
}

impl SimPower {
    pub fn new() -> SimPower {
        SimPower {
            fleet: OnceLock::new(),
            state: Mutex::new(SimState {
                state: PowerState::On,
                profile: PowerProfile::Balanced,
                reboots: 0,
                power_downs: 0,
                wake_at: None,
                woken: false,
                requests: Vec::new(),
            }),
            changed: Condvar::new(),
        }
    }

    /// What the board's power did.
    pub fn view(&self) -> PowerView {
        let s = lock(&self.state);
        PowerView {
            state: s.state,
            profile: profile_name(s.profile),
            reboots: s.reboots,
            power_downs: s.power_downs,
            wakes_in_s: s
                .wake_at
                .filter(|_| s.state == PowerState::Off)
                .map(|at| at.saturating_duration_since(Instant::now()).as_secs()),
            requests: s.requests.clone(),
        }
    }

    /// Presses the power button of a board that is powered down: it boots now. Returns whether
    /// it was off.
    pub fn wake(&self) -> bool {
        let mut s = lock(&self.state);
        if s.state != PowerState::Off {
            return false;
        }
        s.woken = true;
        self.changed.notify_all();
        true
    }

    /// The reboot or power-down itself, on its own thread.
    fn act(self: Arc<Self>, action: PowerAction) {
        std::thread::sleep(GRACE);
        let fleet = self.fleet.get().cloned();
        if let Some(fleet) = &fleet {
            fleet.stop_all();
        }
        if let PowerAction::PowerDown { max_residency_s } = action {
            let mut s = lock(&self.state);
            s.state = PowerState::Off;
            s.woken = false;
            let wake_at = Instant::now() + Duration::from_secs(u64::from(max_residency_s));
            s.wake_at = Some(wake_at);
            while !s.woken {
                let left = wake_at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                s = self
                    .changed
                    .wait_timeout(s, left)
                    .map_or_else(|p| p.into_inner().0, |(g, _)| g);
            }
            s.state = PowerState::Rebooting;
            s.wake_at = None;
        }
        let failed = fleet.map_or_else(Vec::new, |f| f.boot());
        for why in failed {
            eprintln!("wardend: simulated boot: an app did not start: {why}");
        }
        let mut s = lock(&self.state);
        match action {
            PowerAction::PowerDown { .. } => s.power_downs += 1,
            _ => s.reboots += 1,
        }
        s.state = PowerState::On;
        self.changed.notify_all();
    }
}

impl PowerBackend for Arc<SimPower> {
    fn attach(&self, fleet: Arc<dyn Fleet>) {
        let _ = self.fleet.set(fleet);
    }

    fn perform(&self, app: &str, action: PowerAction) -> Result<(), Denial> {
        let mut s = lock(&self.state);
        if s.state != PowerState::On {
            return Err(Denial::Busy(format!(
                "the device is {} already",
                if s.state == PowerState::Off {
                    "powered down"
                } else {
                    "rebooting"
                }
            )));
        }
        if s.requests.len() == SIM_HISTORY {
            s.requests.remove(0);
        }
        s.requests.push(PowerRequest {
            app: app.to_owned(),
            action,
            at: crate::now(),
        });
        match action {
            PowerAction::SetProfile { profile } => {
                s.profile = profile;
                Ok(())
            }
            PowerAction::Reboot | PowerAction::PowerDown { .. } => {
                s.state = PowerState::Rebooting;
                drop(s);
                eprintln!("wardend: app {app} asked for {action:?}: the simulated board obeys");
                let this = Arc::clone(self);
                std::thread::Builder::new()
                    .name("sim-power".into())
                    .spawn(move || this.act(action))
                    .map(drop)
                    .map_err(|e| {
                        lock(&self.state).state = PowerState::On;
                        Denial::Io(format!("cannot start the simulated reboot: {e}"))
                    })
            }
        }
    }
}

/// What `reboot(2)` is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebootKind {
    Restart,
    PowerOff,
}

/// The operating-system steps of the Linux backend.
pub trait PowerSys: Send + Sync + std::fmt::Debug {
    /// Whether the RTC can wake the device (checked before a power-down is accepted).
    fn has_wake_alarm(&self) -> bool;
    /// Flushes every file system.
    fn sync(&self);
    /// Arms the RTC to wake the device in `seconds`.
    fn set_wake_alarm(&self, seconds: u32) -> io::Result<()>;
    /// `reboot(2)`; returns only if it failed.
    fn reboot(&self, kind: RebootKind) -> io::Error;
    /// Sets every cpufreq policy's governor; the error names the file.
    fn set_governor(&self, governor: &str) -> Result<(), String>;
}

/// The kernel's interfaces under a sysfs root (`/sys` on a device).
#[derive(Debug, Clone)]
pub struct LinuxSys {
    pub sysfs: PathBuf,
}

impl LinuxSys {
    fn wakealarm(&self) -> PathBuf {
        self.sysfs.join("class/rtc/rtc0/wakealarm")
    }
}

impl PowerSys for LinuxSys {
    fn has_wake_alarm(&self) -> bool {
        self.wakealarm().exists()
    }

    fn sync(&self) {
        rustix::fs::sync();
    }

    fn set_wake_alarm(&self, seconds: u32) -> io::Result<()> {
        // An armed alarm must be cleared before a new one is accepted.
        std::fs::write(self.wakealarm(), "0")?;
        std::fs::write(self.wakealarm(), format!("+{seconds}"))
    }

    fn reboot(&self, kind: RebootKind) -> io::Error {
        let command = match kind {
            RebootKind::Restart => rustix::system::RebootCommand::Restart,
            RebootKind::PowerOff => rustix::system::RebootCommand::PowerOff,
        };
        match rustix::system::reboot(command) {
            Ok(()) => io::Error::other("reboot(2) returned"),
            Err(e) => e.into(),
        }
    }

    fn set_governor(&self, governor: &str) -> Result<(), String> {
        let root = self.sysfs.join("devices/system/cpu/cpufreq");
        let policies = std::fs::read_dir(&root)
            .map_err(|e| format!("{}: {e}", root.display()))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("policy"))
            .map(|e| e.path())
            .collect::<Vec<_>>();
        if policies.is_empty() {
            return Err(format!("{}: no cpufreq policy", root.display()));
        }
        for policy in policies {
            let available = read_words(&policy.join("scaling_available_governors"))?;
            if !available.iter().any(|g| g == governor) {
                return Err(format!(
                    "{}: governor `{governor}` not available (only {})",
                    policy.display(),
                    available.join(", ")
                ));
            }
            let file = policy.join("scaling_governor");
            std::fs::write(&file, governor).map_err(|e| format!("{}: {e}", file.display()))?;
        }
        Ok(())
    }
}

fn read_words(path: &Path) -> Result<Vec<String>, String> {
    let text = crate::file::read_bounded(path, 4096).map_err(|e| match e {
        crate::file::ReadBounded::Io(e) => format!("{}: {e}", path.display()),
        crate::file::ReadBounded::TooLarge => format!("{}: over 4096 bytes", path.display()),
    })?;
    Ok(String::from_utf8_lossy(&text)
        .split_whitespace()
        .map(str::to_owned)
        .collect())
}

/// The governor a profile selects.
pub fn governor(profile: PowerProfile) -> &'static str {
    match profile {
        PowerProfile::PowerSaver => "powersave",
        PowerProfile::Balanced => "schedutil",
        PowerProfile::HighPerformance => "performance",
    }
}

/// Power on a real board, through the kernel.
pub struct LinuxPower<S: PowerSys> {
    sys: S,
    fleet: OnceLock<Arc<dyn Fleet>>,
    /// A reboot or power-down is under way: later requests are `busy`.
    going_down: Mutex<bool>,
}

impl<S: PowerSys> std::fmt::Debug for LinuxPower<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinuxPower")
            .field("sys", &self.sys)
            .finish_non_exhaustive()
    }
}

impl<S: PowerSys> LinuxPower<S> {
    pub fn new(sys: S) -> LinuxPower<S> {
        LinuxPower {
            sys,
            fleet: OnceLock::new(),
            going_down: Mutex::new(false),
        }
    }

    /// Stop every app, flush, arm the wake alarm (power-down), reboot. If the kernel refuses,
    /// the fleet is started again and the device goes on.
    fn go_down(&self, action: PowerAction) {
        std::thread::sleep(GRACE);
        let fleet = self.fleet.get().cloned();
        if let Some(fleet) = &fleet {
            fleet.stop_all();
        }
        self.sys.sync();
        let kind = match action {
            PowerAction::PowerDown { max_residency_s } => {
                if let Err(e) = self.sys.set_wake_alarm(max_residency_s) {
                    eprintln!("wardend: power-down abandoned, the wake alarm failed: {e}");
                    self.back_up(fleet.as_deref());
                    return;
                }
                RebootKind::PowerOff
            }
            _ => RebootKind::Restart,
        };
        let e = self.sys.reboot(kind);
        eprintln!("wardend: reboot(2) failed ({e}); starting the apps again");
        self.back_up(fleet.as_deref());
    }

    fn back_up(&self, fleet: Option<&dyn Fleet>) {
        for why in fleet.map_or_else(Vec::new, Fleet::boot) {
            eprintln!("wardend: an app did not start again: {why}");
        }
        *lock(&self.going_down) = false;
    }
}

impl<S: PowerSys + 'static> PowerBackend for Arc<LinuxPower<S>> {
    fn attach(&self, fleet: Arc<dyn Fleet>) {
        let _ = self.fleet.set(fleet);
    }

    fn perform(&self, app: &str, action: PowerAction) -> Result<(), Denial> {
        if let PowerAction::SetProfile { profile } = action {
            return self
                .sys
                .set_governor(governor(profile))
                .map_err(|e| Denial::Io(format!("cannot set the power profile: {e}")));
        }
        if matches!(action, PowerAction::PowerDown { .. }) && !self.sys.has_wake_alarm() {
            return Err(Denial::Io(
                "this device has no RTC wake alarm (rtc0/wakealarm), so it cannot power down \
                 for a bounded time"
                    .into(),
            ));
        }
        {
            let mut going = lock(&self.going_down);
            if *going {
                return Err(Denial::Busy("the device is going down already".into()));
            }
            *going = true;
        }
        eprintln!("wardend: app {app} asked for {action:?}: stopping every app");
        let this = Arc::clone(self);
        std::thread::Builder::new()
            .name("power".into())
            .spawn(move || this.go_down(action))
            .map(drop)
            .map_err(|e| {
                *lock(&self.going_down) = false;
                Denial::Io(format!("cannot start the reboot: {e}"))
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Every step, in order, from the fleet and the kernel.
    #[derive(Debug, Default, Clone)]
    struct Journal(Arc<Mutex<Vec<String>>>);

    impl Journal {
        fn push(&self, step: impl Into<String>) {
            lock(&self.0).push(step.into());
        }
        fn steps(&self) -> Vec<String> {
            lock(&self.0).clone()
        }
        fn wait_for(&self, step: &str) -> Vec<String> {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if self.steps().iter().any(|s| s == step) {
                    return self.steps();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("no `{step}` in {:?}", self.steps());
        }
    }

    impl Fleet for Journal {
        fn stop_all(&self) {
            self.push("stop all");
        }
        fn boot(&self) -> Vec<String> {
            self.push("boot");
            vec![]
        }
    }

    #[derive(Debug)]
    struct FakeSys {
        journal: Journal,
        rtc: bool,
        sysfs: Option<LinuxSys>,
    }

    impl PowerSys for FakeSys {
        fn has_wake_alarm(&self) -> bool {
            self.rtc
        }
        fn sync(&self) {
            self.journal.push("sync");
        }
        fn set_wake_alarm(&self, seconds: u32) -> io::Result<()> {
            self.journal.push(format!("wake in {seconds}"));
            Ok(())
        }
        fn reboot(&self, kind: RebootKind) -> io::Error {
            self.journal.push(format!("reboot {kind:?}"));
            io::Error::from(io::ErrorKind::PermissionDenied)
        }
        fn set_governor(&self, governor: &str) -> Result<(), String> {
            match &self.sysfs {
                Some(sys) => sys.set_governor(governor),
                None => Err("no sysfs".into()),
            }
        }
    }

    fn linux(rtc: bool) -> (Arc<LinuxPower<FakeSys>>, Journal) {
        let journal = Journal::default();
        let power = Arc::new(LinuxPower::new(FakeSys {
            journal: journal.clone(),
            rtc,
            sysfs: None,
        }));
        power.attach(Arc::new(journal.clone()));
        (power, journal)
    }

    fn grant(controls: &[PowerControl]) -> SystemGrant {
        SystemGrant {
            power: controls.to_vec(),
            ..SystemGrant::default()
        }
    }

    #[test]
    fn each_action_needs_its_own_power_control() {
        let (power, journal) = linux(true);
        let only_profile = grant(&[PowerControl::SetPowerProfile]);
        for action in [
            PowerAction::Reboot,
            PowerAction::PowerDown {
                max_residency_s: 60,
            },
        ] {
            let denial = answer("app", &only_profile, &power, action).unwrap_err();
            assert!(
                matches!(&denial, Denial::NotGranted(m) if m.contains(control_of(action).name())),
                "{denial:?}"
            );
        }
        let denial = answer(
            "app",
            &SystemGrant::default(),
            &power,
            PowerAction::SetProfile {
                profile: PowerProfile::PowerSaver,
            },
        )
        .unwrap_err();
        assert!(matches!(denial, Denial::NotGranted(m) if m.contains("SetPowerProfile")));
        std::thread::sleep(GRACE * 2);
        assert!(journal.steps().is_empty(), "{:?}", journal.steps());
    }

    #[test]
    fn a_linux_reboot_stops_the_apps_then_syncs_then_reboots() {
        let (power, journal) = linux(true);
        let (access, fds) = answer(
            "app",
            &grant(&[PowerControl::ForceReboot]),
            &power,
            PowerAction::Reboot,
        )
        .unwrap();
        assert_eq!((access, fds.len()), (Access::Accepted, 0));
        // The fake kernel refuses, so the fleet comes back up.
        let steps = journal.wait_for("boot");
        assert_eq!(steps, ["stop all", "sync", "reboot Restart", "boot"]);
        // And the device takes a new request afterwards.
        answer(
            "app",
            &grant(&[PowerControl::ForceReboot]),
            &power,
            PowerAction::Reboot,
        )
        .unwrap();
        journal.wait_for("reboot Restart");
    }

    #[test]
    fn a_linux_power_down_arms_the_rtc_before_powering_off_and_one_at_a_time() {
        let (power, journal) = linux(true);
        let g = grant(&[PowerControl::ForcePowerDown]);
        let action = PowerAction::PowerDown {
            max_residency_s: 3600,
        };
        answer("app", &g, &power, action).unwrap();
        assert!(matches!(
            answer("app", &g, &power, action),
            Err(Denial::Busy(_))
        ));
        let steps = journal.wait_for("boot");
        assert_eq!(
            steps,
            [
                "stop all",
                "sync",
                "wake in 3600",
                "reboot PowerOff",
                "boot"
            ]
        );
    }

    #[test]
    fn no_power_down_without_a_wake_alarm() {
        let (power, journal) = linux(false);
        let denial = answer(
            "app",
            &grant(&[PowerControl::ForcePowerDown]),
            &power,
            PowerAction::PowerDown { max_residency_s: 5 },
        )
        .unwrap_err();
        assert!(matches!(denial, Denial::Io(m) if m.contains("wakealarm")));
        std::thread::sleep(GRACE * 2);
        assert!(journal.steps().is_empty());
    }

    #[test]
    fn the_profile_sets_every_cpufreq_policy_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cpufreq = dir.path().join("devices/system/cpu/cpufreq");
        for policy in ["policy0", "policy1"] {
            std::fs::create_dir_all(cpufreq.join(policy)).unwrap();
            std::fs::write(
                cpufreq.join(policy).join("scaling_available_governors"),
                "performance schedutil powersave\n",
            )
            .unwrap();
            std::fs::write(cpufreq.join(policy).join("scaling_governor"), "schedutil").unwrap();
        }
        let journal = Journal::default();
        let power = Arc::new(LinuxPower::new(FakeSys {
            journal: journal.clone(),
            rtc: true,
            sysfs: Some(LinuxSys {
                sysfs: dir.path().to_path_buf(),
            }),
        }));
        let g = grant(&[PowerControl::SetPowerProfile]);
        let set = |profile| answer("app", &g, &power, PowerAction::SetProfile { profile });
        set(PowerProfile::HighPerformance).unwrap();
        for policy in ["policy0", "policy1"] {
            let now = std::fs::read_to_string(cpufreq.join(policy).join("scaling_governor"));
            assert_eq!(now.unwrap(), "performance");
        }
        std::fs::write(
            cpufreq.join("policy1/scaling_available_governors"),
            "performance\n",
        )
        .unwrap();
        let denial = set(PowerProfile::PowerSaver).unwrap_err();
        assert!(
            matches!(&denial, Denial::Io(m) if m.contains("policy1") && m.contains("powersave")),
            "{denial:?}"
        );
        assert!(journal.steps().is_empty(), "a profile stops no app");
    }

    #[test]
    fn the_simulated_board_records_reboots_and_stays_off_until_woken() {
        let journal = Journal::default();
        let sim = Arc::new(SimPower::new());
        sim.attach(Arc::new(journal.clone()));
        let g = grant(&PowerControl::ALL);
        answer(
            "a",
            &g,
            &sim,
            PowerAction::SetProfile {
                profile: PowerProfile::PowerSaver,
            },
        )
        .unwrap();
        answer("a", &g, &sim, PowerAction::Reboot).unwrap();
        assert!(matches!(
            answer("b", &g, &sim, PowerAction::Reboot),
            Err(Denial::Busy(m)) if m.contains("rebooting")
        ));
        journal.wait_for("boot");
        let deadline = Instant::now() + Duration::from_secs(5);
        while sim.view().state != PowerState::On && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let view = sim.view();
        assert_eq!(
            (view.state, view.reboots, view.profile),
            (PowerState::On, 1, "power_saver")
        );
        assert_eq!(view.requests.len(), 2);

        answer(
            "a",
            &g,
            &sim,
            PowerAction::PowerDown {
                max_residency_s: 3600,
            },
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while sim.view().state != PowerState::Off && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let off = sim.view();
        assert_eq!(off.state, PowerState::Off);
        assert!(off.wakes_in_s.is_some_and(|s| s > 3500), "{off:?}");
        assert_eq!(journal.steps(), ["stop all", "boot", "stop all"]);
        assert!(sim.wake());
        let deadline = Instant::now() + Duration::from_secs(5);
        while sim.view().state != PowerState::On && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(sim.view().power_downs, 1);
        assert_eq!(journal.steps(), ["stop all", "boot", "stop all", "boot"]);
        assert!(!sim.wake(), "waking a board that is on does nothing");
    }
}
