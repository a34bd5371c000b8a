//! Per-app control groups, supervisor side: memory, pids and cpu limits through cgroup v2 where
//! the kernel offers the controller there, through cgroup v1 otherwise, and an honest report of
//! what applied. A missing controller is reported, never an error.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::errno_name;

/// Where the cgroup file systems are and which group the per-app groups go under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupConfig {
    /// Mount point of the cgroup file systems (`/sys/fs/cgroup`): cgroup v2 there or at
    /// `unified/`, cgroup v1 hierarchies at `memory/`, `pids/`, `cpu/`.
    pub root: PathBuf,
    /// Group, relative to each hierarchy's root, that holds one group per app (`warden`).
    pub parent: PathBuf,
}

impl Default for CgroupConfig {
    fn default() -> CgroupConfig {
        CgroupConfig {
            root: PathBuf::from("/sys/fs/cgroup"),
            parent: PathBuf::from("warden"),
        }
    }
}

/// The limits one app gets; `None` leaves that resource unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// Most bytes of memory (swap is switched off where the kernel lets us).
    pub memory_bytes: Option<u64>,
    /// Most tasks (processes and threads).
    pub pids: Option<u64>,
    /// CPU weight, 1–10000, 100 being the default share (v1: `cpu.shares` = weight × 1024 / 100).
    pub cpu_weight: Option<u64>,
}

/// Which mechanism enforces one controller for this group.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Enforcement {
    /// Not asked for (the limit was `None`).
    NotRequested,
    /// Applied through cgroup v2.
    V2,
    /// Applied through cgroup v1.
    V1,
    /// The kernel does not offer it (or refused it); the reason says which.
    NotAvailable(String),
}

/// What applied, per controller, plus one human line per fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupReport {
    pub memory: Enforcement,
    pub pids: Enforcement,
    pub cpu: Enforcement,
    /// E.g. "memory.max=67108864 via cgroup v2", "memory.limit_in_bytes=67108864 via cgroup
    /// v1", "pids: not available (no pids controller in v2 or v1)".
    pub lines: Vec<String>,
}

/// Why a group could not be set up, placed or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgroupError {
    #[error("invalid cgroup name {name:?}: use 1-128 of [A-Za-z0-9._-], not starting with '.'")]
    InvalidName { name: String },
    #[error("{what} {path}: {errno}")]
    Io {
        what: &'static str,
        path: PathBuf,
        errno: String,
    },
}

impl CgroupError {
    fn io(what: &'static str, path: &Path, err: &io::Error) -> CgroupError {
        CgroupError::Io {
            what,
            path: path.to_path_buf(),
            errno: errno_name(err),
        }
    }
}

/// How the out-of-memory count was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OomCount {
    /// Processes of this group the kernel's OOM killer killed.
    pub kills: u64,
    /// The file it came from, e.g. "memory.events (cgroup v2)".
    pub source: &'static str,
}

#[derive(Debug)]
struct V2Group {
    dir: PathBuf,
    /// Opened `O_DIRECTORY`, for `CLONE_INTO_CGROUP`.
    fd: OwnedFd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }
}

/// One app's group(s): a cgroup v2 directory, and/or one directory per cgroup v1 hierarchy.
/// Removed by [`AppCgroup::remove`] (or, best effort, on drop) after the worker ended.
#[derive(Debug)]
pub struct AppCgroup {
    v2: Option<V2Group>,
    /// (controller, directory) for controllers enforced through v1.
    v1: Vec<(Controller, PathBuf)>,
    /// The directory whose files count OOM kills, and whether it is v2.
    memory_dir: Option<(PathBuf, bool)>,
    report: CgroupReport,
    removed: bool,
}

impl AppCgroup {
    /// Creates the group `name` under `config.parent` in every hierarchy that enforces one of
    /// the requested limits, and sets them. Missing controllers end up in the report.
    pub fn create(
        config: &CgroupConfig,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<AppCgroup, CgroupError> {
        check_name(name)?;
        for part in config.parent.components() {
            let text = part.as_os_str().to_string_lossy();
            if !matches!(part, std::path::Component::Normal(_)) {
                return Err(CgroupError::InvalidName {
                    name: config.parent.display().to_string(),
                });
            }
            check_name(&text)?;
        }
        let v2_root = find_v2_root(&config.root);
        let v2_controllers: Vec<String> = v2_root
            .as_ref()
            .and_then(|root| fs::read_to_string(root.join("cgroup.controllers")).ok())
            .map(|text| text.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();

        let mut group = AppCgroup {
            v2: None,
            v1: Vec::new(),
            memory_dir: None,
            report: CgroupReport {
                memory: Enforcement::NotRequested,
                pids: Enforcement::NotRequested,
                cpu: Enforcement::NotRequested,
                lines: Vec::new(),
            },
            removed: false,
        };
        let wanted = [
            (Controller::Memory, limits.memory_bytes.is_some()),
            (Controller::Pids, limits.pids.is_some()),
            (Controller::Cpu, limits.cpu_weight.is_some()),
        ];
        for (controller, requested) in wanted {
            if !requested {
                continue;
            }
            let mut v2_refusal = None;
            if let Some(root) = &v2_root
                && v2_controllers.iter().any(|c| c == controller.name())
            {
                match group.v2_dir(root, &config.parent, name, controller) {
                    Ok(dir) => {
                        let outcome = apply(controller, &dir, true, limits);
                        group.record(controller, outcome, &dir, true);
                        continue;
                    }
                    Err(reason) => v2_refusal = Some(reason),
                }
            }
            let v1_root = config.root.join(controller.name());
            if v1_root.join("cgroup.procs").exists() && Some(&v1_root) != v2_root.as_ref() {
                match make_group_dir(&v1_root, &config.parent, name) {
                    Ok(dir) => {
                        let outcome = apply(controller, &dir, false, limits);
                        group.record(controller, outcome, &dir, false);
                        if group.enforcement(controller) == &Enforcement::V1 {
                            group.v1.push((controller, dir));
                        } else {
                            let _ = fs::remove_dir(&dir);
                        }
                    }
                    Err(reason) => group.unavailable(controller, reason),
                }
                continue;
            }
            let reason = v2_refusal.unwrap_or_else(|| {
                format!("no {} controller in cgroup v2 or v1", controller.name())
            });
            group.unavailable(controller, reason);
        }
        Ok(group)
    }

    /// What applied.
    pub fn report(&self) -> &CgroupReport {
        &self.report
    }

    /// The cgroup v2 directory to start the worker in with `CLONE_INTO_CGROUP`, if any
    /// controller is enforced through v2.
    pub fn v2_dir_fd(&self) -> Option<BorrowedFd<'_>> {
        self.v2.as_ref().map(|g| g.fd.as_fd())
    }

    /// The `tasks` files of the cgroup v1 groups, open for writing, for a new worker to move
    /// itself into them before `execve` (cgroup v2 placement happens at `clone3`). The worker
    /// reads app bytes only after the supervisor's `Run`, long after.
    pub(crate) fn v1_tasks(&self) -> Result<Vec<fs::File>, CgroupError> {
        self.v1
            .iter()
            .map(|(_, dir)| {
                let path = dir.join("tasks");
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| CgroupError::io("open", &path, &e))
            })
            .collect()
    }

    /// How many processes of this group the OOM killer killed; `None` when memory is not
    /// limited through a cgroup (nothing to count).
    pub fn oom_kills(&self) -> Result<Option<OomCount>, CgroupError> {
        let Some((dir, v2)) = &self.memory_dir else {
            return Ok(None);
        };
        let (file, source) = if *v2 {
            ("memory.events", "memory.events (cgroup v2)")
        } else {
            ("memory.oom_control", "memory.oom_control (cgroup v1)")
        };
        let path = dir.join(file);
        let text = fs::read_to_string(&path).map_err(|e| CgroupError::io("read", &path, &e))?;
        if let Some(kills) = keyed_value(&text, "oom_kill") {
            return Ok(Some(OomCount { kills, source }));
        }
        if !*v2 {
            // Kernels before 4.13 have no oom_kill line; hitting the limit is the best sign.
            let failcnt = dir.join("memory.failcnt");
            let text =
                fs::read_to_string(&failcnt).map_err(|e| CgroupError::io("read", &failcnt, &e))?;
            let hits = text.trim().parse().unwrap_or(0);
            return Ok(Some(OomCount {
                kills: u64::from(hits > 0),
                source: "memory.failcnt (cgroup v1)",
            }));
        }
        Ok(Some(OomCount { kills: 0, source }))
    }

    /// The memory the group's processes use now, in bytes (`memory.current` on cgroup v2,
    /// `memory.usage_in_bytes` on v1); `None` when memory is not accounted through a cgroup.
    pub fn memory_current(&self) -> Result<Option<u64>, CgroupError> {
        let Some((dir, v2)) = &self.memory_dir else {
            return Ok(None);
        };
        let path = dir.join(if *v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        });
        let text = fs::read_to_string(&path).map_err(|e| CgroupError::io("read", &path, &e))?;
        Ok(text.trim().parse().ok())
    }

    /// Removes the group's directories; call after the worker was reaped. Retries briefly
    /// while the kernel still counts the dead worker as a member.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.removed = true;
        let mut dirs: Vec<PathBuf> = self.v1.iter().map(|(_, d)| d.clone()).collect();
        if let Some(v2) = self.v2.take() {
            dirs.push(v2.dir);
        }
        for dir in dirs {
            remove_dir_retrying(&dir)?;
        }
        Ok(())
    }

    fn enforcement(&self, controller: Controller) -> &Enforcement {
        match controller {
            Controller::Memory => &self.report.memory,
            Controller::Pids => &self.report.pids,
            Controller::Cpu => &self.report.cpu,
        }
    }

    fn set_enforcement(&mut self, controller: Controller, value: Enforcement) {
        match controller {
            Controller::Memory => self.report.memory = value,
            Controller::Pids => self.report.pids = value,
            Controller::Cpu => self.report.cpu = value,
        }
    }

    fn unavailable(&mut self, controller: Controller, reason: String) {
        self.report
            .lines
            .push(format!("{}: not available ({reason})", controller.name()));
        self.set_enforcement(controller, Enforcement::NotAvailable(reason));
    }

    fn record(
        &mut self,
        controller: Controller,
        outcome: Result<Vec<String>, String>,
        dir: &Path,
        v2: bool,
    ) {
        match outcome {
            Ok(lines) => {
                let via = if v2 { "cgroup v2" } else { "cgroup v1" };
                self.report
                    .lines
                    .extend(lines.into_iter().map(|l| format!("{l} via {via}")));
                self.set_enforcement(
                    controller,
                    if v2 { Enforcement::V2 } else { Enforcement::V1 },
                );
                if controller == Controller::Memory {
                    self.memory_dir = Some((dir.to_path_buf(), v2));
                }
            }
            Err(reason) => self.unavailable(controller, reason),
        }
    }

    /// The v2 group directory (created on first use), with `controller` enabled for it.
    fn v2_dir(
        &mut self,
        root: &Path,
        parent: &Path,
        name: &str,
        controller: Controller,
    ) -> Result<PathBuf, String> {
        // Enable the controller from the root down to the parent (a controller is usable in a
        // group only if its parent's subtree_control enables it).
        let mut at = root.to_path_buf();
        let mut chain = vec![at.clone()];
        for part in parent.components() {
            at.push(part);
            chain.push(at.clone());
        }
        for (i, dir) in chain.iter().enumerate() {
            if i > 0 && !dir.exists() {
                fs::create_dir(dir)
                    .or_else(|e| {
                        if e.kind() == io::ErrorKind::AlreadyExists {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| format!("mkdir {}: {}", dir.display(), errno_name(&e)))?;
            }
            let control = dir.join("cgroup.subtree_control");
            write_file(&control, &format!("+{}", controller.name())).map_err(|e| {
                format!(
                    "enable {} in {}: {}",
                    controller.name(),
                    control.display(),
                    errno_name(&e)
                )
            })?;
        }
        if let Some(group) = &self.v2 {
            return Ok(group.dir.clone());
        }
        let dir = make_group_dir(root, parent, name)?;
        let fd = fs::File::open(&dir)
            .map(OwnedFd::from)
            .map_err(|e| format!("open {}: {}", dir.display(), errno_name(&e)))?;
        self.v2 = Some(V2Group {
            dir: dir.clone(),
            fd,
        });
        Ok(dir)
    }
}

impl Drop for AppCgroup {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        for (_, dir) in &self.v1 {
            let _ = fs::remove_dir(dir);
        }
        if let Some(v2) = &self.v2 {
            let _ = fs::remove_dir(&v2.dir);
        }
    }
}

/// Sets `controller`'s limit in `dir`; returns the report lines or why it did not apply.
fn apply(
    controller: Controller,
    dir: &Path,
    v2: bool,
    limits: &CgroupLimits,
) -> Result<Vec<String>, String> {
    let set = |file: &str, value: String| -> Result<String, String> {
        write_file(&dir.join(file), &value)
            .map(|()| format!("{file}={value}"))
            .map_err(|e| format!("write {file}: {}", errno_name(&e)))
    };
    let mut lines = Vec::new();
    match controller {
        Controller::Memory => {
            let bytes = limits.memory_bytes.unwrap_or(u64::MAX);
            if v2 {
                lines.push(set("memory.max", bytes.to_string())?);
                if dir.join("memory.swap.max").exists() {
                    lines.push(set("memory.swap.max", "0".into())?);
                } else {
                    lines.push("swap: not limited (no memory.swap.max)".into());
                }
                if dir.join("memory.oom.group").exists() {
                    lines.push(set("memory.oom.group", "1".into())?);
                }
            } else {
                lines.push(set("memory.limit_in_bytes", bytes.to_string())?);
                if dir.join("memory.memsw.limit_in_bytes").exists() {
                    // Memory + swap equal to memory: no swap at all.
                    lines.push(set("memory.memsw.limit_in_bytes", bytes.to_string())?);
                } else {
                    lines.push("swap: not limited (no memory.memsw.limit_in_bytes)".into());
                }
            }
        }
        Controller::Pids => {
            lines.push(set(
                "pids.max",
                limits.pids.unwrap_or(u64::MAX).to_string(),
            )?);
        }
        Controller::Cpu => {
            let weight = limits.cpu_weight.unwrap_or(100).clamp(1, 10_000);
            if v2 {
                lines.push(set("cpu.weight", weight.to_string())?);
            } else {
                lines.push(set("cpu.shares", (weight * 1024 / 100).max(2).to_string())?);
            }
        }
    }
    Ok(lines)
}

/// cgroup v2 at `root` (pure v2) or `root/unified` (hybrid).
fn find_v2_root(root: &Path) -> Option<PathBuf> {
    [root.to_path_buf(), root.join("unified")]
        .into_iter()
        .find(|dir| dir.join("cgroup.controllers").exists())
}

/// Creates `root/parent/name` (and `root/parent`), replacing a stale empty `name` left by a
/// crashed supervisor.
fn make_group_dir(root: &Path, parent: &Path, name: &str) -> Result<PathBuf, String> {
    let parent_dir = root.join(parent);
    fs::create_dir_all(&parent_dir)
        .map_err(|e| format!("mkdir {}: {}", parent_dir.display(), errno_name(&e)))?;
    let dir = parent_dir.join(name);
    if dir.exists() {
        let _ = fs::remove_dir(&dir);
    }
    match fs::create_dir(&dir) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(dir),
        Err(e) => Err(format!("mkdir {}: {}", dir.display(), errno_name(&e))),
    }
}

fn remove_dir_retrying(dir: &Path) -> Result<(), CgroupError> {
    let mut attempts = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempts < 50 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(CgroupError::io("remove", dir, &e)),
        }
    }
}

fn write_file(path: &Path, value: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes())
}

/// The number after `key` in a `key value` per line file.
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next() == Some(key))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

fn check_name(name: &str) -> Result<(), CgroupError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidName {
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_parent_are_refused() {
        for bad in ["", ".", "..", "../x", "a/b", ".hidden", "a b"] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["app-1", "7f3a.b_c", "warden"] {
            assert!(check_name(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn oom_counts_are_read_from_keyed_files() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(keyed_value(v1, "oom_kill"), Some(2));
        let v2 = "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(v2, "oom_kill"), Some(1));
        assert_eq!(keyed_value(v2, "missing"), None);
    }

    #[test]
    fn a_machine_without_cgroups_reports_every_controller_missing() {
        let empty = std::env::temp_dir().join(format!("warden-no-cgroups-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let config = CgroupConfig {
            root: empty.clone(),
            parent: PathBuf::from("warden"),
        };
        let limits = CgroupLimits {
            memory_bytes: Some(1 << 20),
            pids: Some(4),
            cpu_weight: None,
        };
        let group = AppCgroup::create(&config, "app", &limits).unwrap();
        let report = group.report();
        assert!(matches!(report.memory, Enforcement::NotAvailable(_)));
        assert!(matches!(report.pids, Enforcement::NotAvailable(_)));
        assert_eq!(report.cpu, Enforcement::NotRequested);
        assert_eq!(
            report.lines,
            vec![
                "memory: not available (no memory controller in cgroup v2 or v1)",
                "pids: not available (no pids controller in cgroup v2 or v1)",
            ]
        );
        assert!(group.v2_dir_fd().is_none());
        assert_eq!(group.oom_kills().unwrap(), None);
        group.remove().unwrap();
        std::fs::remove_dir_all(&empty).unwrap();
    }
}
