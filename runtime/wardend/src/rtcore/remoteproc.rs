//! A real-time core driven by Linux remoteproc through sysfs
//! (`Documentation/ABI/testing/sysfs-class-remoteproc`):
//!
//! 1. the verified ELF is copied into the kernel's firmware directory as
//!    `warden-<first 16 hex of its SHA-256>.elf` (a temporary file, fsynced, renamed);
//! 2. `state` is read: a core that is not `offline` gets `stop` first (the kernel refuses a new
//!    `firmware` while the core runs);
//! 3. the name is written to `firmware`, then `start` to `state`.
//!
//! A write answered `EBUSY` (the core is running: someone else started it, or the kernel's
//! own recovery did) is followed by `stop` and retried once; a second `EBUSY` is an error
//! naming the file. A `stop` answered `EINVAL` means the kernel does not consider the core
//! running (e.g. `crashed`), which is what a stop wants. How a run ends is learnt by reading
//! `state` every [`POLL`]: `crashed`, or `offline` without a stop from the supervisor, is a
//! crash. The writes go through [`Sysfs`], so tests script the kernel's answers.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;
use warden_ipc::broker::Denial;
use warden_ipc::intercore::FIRMWARE_ENDPOINT;

use sha2::{Digest, Sha256};

use super::{CoreBackend, CoreEnd, CoreError, Run, Runs};

/// How often a running core's `state` is read.
const POLL: Duration = Duration::from_millis(500);

/// Reads and writes of sysfs attribute files: the real files, or a script in tests (plain
/// files cannot answer `EBUSY`).
pub trait Sysfs: Send + Sync + std::fmt::Debug {
    /// The attribute's text (with its trailing newline, as the kernel writes it).
    fn read(&self, path: &Path) -> io::Result<String>;
    /// One write of `value`; the kernel answers it as a whole (`EBUSY`, `EINVAL`, …).
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
}

/// The real sysfs files.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealSysfs;

impl Sysfs for RealSysfs {
    fn read(&self, path: &Path) -> io::Result<String> {
        let mut text = String::new();
        std::fs::File::open(path)?
            .take(4096)
            .read_to_string(&mut text)?;
        Ok(text)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        // No `create`: a missing attribute is an error, never a new file. `truncate` is
        // ignored by sysfs and keeps a plain-file test tree holding the last value only.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)?
            .write_all(value.as_bytes())
    }
}

/// A remoteproc instance (`<root>/<instance>/{firmware,state}`).
#[derive(Debug)]
pub struct RemoteprocCore {
    core: String,
    /// `<root>/<instance>`.
    dir: PathBuf,
    firmware_dir: PathBuf,
    sysfs: Arc<dyn Sysfs>,
    poll: Duration,
    runs: Mutex<Runs<Run>>,
    wake: Condvar,
    /// Loads and stops run one at a time.
    ops: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RemoteprocCore {
    pub fn new(
        core: &str,
        root: &Path,
        firmware_dir: &Path,
        instance: &str,
        sysfs: Arc<dyn Sysfs>,
    ) -> RemoteprocCore {
        RemoteprocCore {
            core: core.to_owned(),
            dir: root.join(instance),
            firmware_dir: firmware_dir.to_path_buf(),
            sysfs,
            poll: POLL,
            runs: Mutex::new(Runs::default()),
            wake: Condvar::new(),
            ops: Mutex::new(()),
        }
    }

    /// The sysfs root this instance lives under (`<root>/class/remoteproc/<instance>`).
    fn sysfs_root(&self) -> Option<&Path> {
        self.dir.parent()?.parent()?.parent()
    }

    /// The rpmsg control device of this instance (`rpmsg_ctrlN`): the only one under it.
    pub fn rpmsg_ctrl(&self) -> Result<String, Denial> {
        let not_running = |why: String| {
            Denial::Io(format!(
                "core `{}`: no rpmsg control device ({why}); is its firmware running with an \
                 rpmsg vdev?",
                self.core
            ))
        };
        let sysfs = self
            .sysfs_root()
            .ok_or_else(|| not_running(format!("{} has no sysfs root", self.dir.display())))?;
        let class = sysfs.join("class/rpmsg");
        let instance = std::fs::canonicalize(&self.dir)
            .map_err(|e| not_running(format!("{}: {e}", self.dir.display())))?;
        let entries = std::fs::read_dir(&class)
            .map_err(|e| not_running(format!("{}: {e}", class.display())))?;
        let mut found: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let real = std::fs::canonicalize(e.path()).ok()?;
                (name.starts_with("rpmsg_ctrl") && real.starts_with(&instance)).then_some(name)
            })
            .collect();
        found.sort();
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(not_running(format!(
                "none in {} belongs to {}",
                class.display(),
                self.dir.display()
            ))),
            several => Err(Denial::Io(format!(
                "core `{}`: several rpmsg control devices ({}) belong to {}",
                self.core,
                several.join(", "),
                self.dir.display()
            ))),
        }
    }

    fn rpmsg_endpoint(&self, src: u32) -> Result<std::os::fd::OwnedFd, Denial> {
        let ctrl = self.rpmsg_ctrl()?;
        let sysfs = self
            .sysfs_root()
            .ok_or_else(|| Denial::Io(format!("{} has no sysfs root", self.dir.display())))?;
        warden_linux_devices::rpmsg::create_endpoint(
            Path::new("/dev"),
            sysfs,
            &ctrl,
            "warden-intercore",
            src,
            FIRMWARE_ENDPOINT,
        )
        .map_err(Denial::from)
    }

    /// Reads `state` this often instead of every [`POLL`] (tests).
    pub fn with_poll(mut self, poll: Duration) -> RemoteprocCore {
        self.poll = poll;
        self
    }

    fn state_file(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn io(&self, what: &'static str, path: &Path, source: io::Error) -> CoreError {
        CoreError::Io {
            core: self.core.clone(),
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    fn read_state(&self) -> Result<String, CoreError> {
        let path = self.state_file();
        self.sysfs
            .read(&path)
            .map(|s| s.trim().to_owned())
            .map_err(|e| self.io("read", &path, e))
    }

    /// `stop` to `state`; `EINVAL` (the kernel does not consider the core running) is success.
    fn write_stop(&self) -> Result<(), CoreError> {
        let path = self.state_file();
        match self.sysfs.write(&path, "stop") {
            Err(e) if e.raw_os_error() != Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                Err(self.io("write `stop` to", &path, e))
            }
            _ => Ok(()),
        }
    }

    /// Writes `value` to `path`; on `EBUSY` stops the core and tries once more.
    fn write_or_stop_and_retry(&self, path: &Path, value: &str) -> Result<(), CoreError> {
        let busy = |e: &io::Error| e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error());
        match self.sysfs.write(path, value) {
            Ok(()) => Ok(()),
            Err(e) if busy(&e) => {
                self.write_stop()?;
                match self.sysfs.write(path, value) {
                    Ok(()) => Ok(()),
                    Err(e) if busy(&e) => Err(CoreError::Busy {
                        core: self.core.clone(),
                        path: path.to_path_buf(),
                    }),
                    Err(e) => Err(self.io("write to", path, e)),
                }
            }
            Err(e) => Err(self.io("write to", path, e)),
        }
    }

    /// Copies `firmware` to `<firmware_dir>/<name>` atomically, checking on the way that its
    /// digest begins with the 16 hex digits the name carries.
    fn place_firmware(&self, firmware: &Path, name: &str) -> Result<(), CoreError> {
        let dir = &self.firmware_dir;
        std::fs::create_dir_all(dir).map_err(|e| self.io("create", dir, e))?;
        let target = dir.join(name);
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let copied = (|| -> io::Result<String> {
            let mut from = std::fs::File::open(firmware)?;
            let mut to = std::fs::File::create(&temp)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = from.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                let chunk = buf.get(..n).unwrap_or_default();
                hasher.update(chunk);
                to.write_all(chunk)?;
            }
            to.sync_all()?;
            Ok(hex::encode(hasher.finalize()))
        })();
        let digest = match copied {
            Ok(digest) => digest,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(self.io("copy the firmware to", &temp, e));
            }
        };
        let named = name
            .strip_prefix("warden-")
            .and_then(|n| n.strip_suffix(".elf"))
            .unwrap_or(name);
        if !digest.starts_with(named) {
            let _ = std::fs::remove_file(&temp);
            return Err(CoreError::Content {
                core: self.core.clone(),
                path: firmware.to_path_buf(),
                name: name.to_owned(),
            });
        }
        std::fs::rename(&temp, &target).map_err(|e| self.io("rename into", &target, e))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.io("sync", dir, e))
    }

    /// Marks the active run (only `only`, when given) stopped: its waiter answers
    /// [`CoreEnd::Stopped`]. Whether one was.
    fn end_active(&self, only: Option<Run>) -> bool {
        let mut runs = lock(&self.runs);
        let Some(run) = runs.active.take_if(|r| only.is_none_or(|only| only == *r)) else {
            return false;
        };
        runs.ended = Some((run, CoreEnd::Stopped));
        self.wake.notify_all();
        true
    }

    /// Ends the active run (only `only`, when given) and writes `stop` unless the core is
    /// offline already. The caller holds `ops`.
    fn stop_active(&self, only: Option<Run>) -> Result<(), CoreError> {
        if !self.end_active(only) || self.read_state()? == "offline" {
            return Ok(());
        }
        self.write_stop()
    }
}

impl CoreBackend for RemoteprocCore {
    /// An rpmsg endpoint (`warden-intercore`, `src` → the firmware's [`FIRMWARE_ENDPOINT`])
    /// made through the rpmsg control device of this remoteproc instance: the one
    /// `class/rpmsg/rpmsg_ctrl*` whose device lies under this instance's.
    fn open_channel(&self, src: u32) -> Option<Result<std::os::fd::OwnedFd, Denial>> {
        Some(self.rpmsg_endpoint(src))
    }

    fn core(&self) -> &str {
        &self.core
    }

    fn load_and_start(&self, firmware: &Path, content_name: &str) -> Result<Run, CoreError> {
        let _one = lock(&self.ops);
        self.end_active(None);
        self.place_firmware(firmware, content_name)?;
        // The kernel refuses a new firmware name while the core is not offline.
        if self.read_state()? != "offline" {
            self.write_stop()?;
        }
        self.write_or_stop_and_retry(&self.dir.join("firmware"), content_name)?;
        self.write_or_stop_and_retry(&self.state_file(), "start")?;
        let mut runs = lock(&self.runs);
        runs.next += 1;
        let run = Run(runs.next);
        runs.active = Some(run);
        Ok(run)
    }

    fn stop(&self) -> Result<(), CoreError> {
        let _one = lock(&self.ops);
        self.stop_active(None)
    }

    fn stop_run(&self, run: Run) -> Result<(), CoreError> {
        let _one = lock(&self.ops);
        self.stop_active(Some(run))
    }

    fn wait(&self, run: Run) -> CoreEnd {
        let state_file = self.state_file();
        loop {
            if lock(&self.runs).active != Some(run) {
                return lock(&self.runs).end_of(run);
            }
            let end = match self.sysfs.read(&state_file) {
                Ok(state) => match state.trim() {
                    "crashed" => Some(format!(
                        "core `{}`: {} says `crashed`",
                        self.core,
                        state_file.display()
                    )),
                    gone @ ("offline" | "deleted" | "invalid") => Some(format!(
                        "core `{}`: {} says `{gone}`, but wardend did not stop it",
                        self.core,
                        state_file.display()
                    )),
                    _ => None,
                },
                Err(e) => Some(format!(
                    "core `{}`: cannot read {}: {e}",
                    self.core,
                    state_file.display()
                )),
            };
            let mut runs = lock(&self.runs);
            if runs.active != Some(run) {
                // Stopped while the state was read: the stop, not the state, tells the end.
                return runs.end_of(run);
            }
            if let Some(detail) = end {
                let end = CoreEnd::Crashed {
                    code: None,
                    signal: None,
                    detail,
                };
                runs.active = None;
                runs.ended = Some((run, end.clone()));
                return end;
            }
            let _ = self
                .wake
                .wait_timeout(runs, self.poll)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn pid(&self) -> Option<u32> {
        None
    }

    fn serial(&self) -> Option<std::os::unix::net::UnixStream> {
        None
    }

    fn remove_firmware(&self, content_name: &str) -> Result<(), CoreError> {
        let path = self.firmware_dir.join(content_name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(self.io("remove", &path, e)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::VecDeque;

    use super::*;
    use crate::rtcore::content_name;

    /// A sysfs tree as the kernel lays it out: the class entries are links into the device
    /// tree, and an instance's rpmsg control device sits below it.
    fn rpmsg_tree(root: &Path) -> RemoteprocCore {
        let devices = root.join("devices/platform/mcu");
        for n in 0..2 {
            let rproc = devices.join(format!("remoteproc/remoteproc{n}"));
            let ctrl = rproc.join(format!(
                "remoteproc{n}#vdev0buffer/virtio{n}/virtio{n}.rpmsg_ctrl.0.0/rpmsg/rpmsg_ctrl{n}"
            ));
            std::fs::create_dir_all(&ctrl).unwrap();
            std::fs::create_dir_all(root.join("class/remoteproc")).unwrap();
            std::fs::create_dir_all(root.join("class/rpmsg")).unwrap();
            std::os::unix::fs::symlink(
                &rproc,
                root.join(format!("class/remoteproc/remoteproc{n}")),
            )
            .unwrap();
            std::os::unix::fs::symlink(&ctrl, root.join(format!("class/rpmsg/rpmsg_ctrl{n}")))
                .unwrap();
        }
        RemoteprocCore::new(
            "m4-1",
            &root.join("class/remoteproc"),
            &root.join("firmware"),
            "remoteproc1",
            Arc::new(RealSysfs),
        )
    }

    #[test]
    fn the_rpmsg_control_device_is_the_one_below_this_instance() {
        let dir = tempfile::tempdir().unwrap();
        let core = rpmsg_tree(dir.path());
        assert_eq!(core.rpmsg_ctrl().unwrap(), "rpmsg_ctrl1");
        // A channel asks the kernel through it: here there is no /dev/rpmsg_ctrl1, so the
        // answer names it.
        match core.open_channel(0x1000) {
            Some(Err(Denial::Io(m))) => assert!(m.contains("/dev/rpmsg_ctrl1"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Its firmware not running (no control device): said so.
        std::fs::remove_file(dir.path().join("class/rpmsg/rpmsg_ctrl1")).unwrap();
        let denial = core.rpmsg_ctrl().unwrap_err();
        assert!(
            matches!(&denial, Denial::Io(m) if m.contains("no rpmsg control device")),
            "{denial:?}"
        );
    }

    /// One access to the tree, relative to its root.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Access {
        Read(String),
        /// A write and its value; `EBUSY` when the script refused it.
        Write(String, String, Option<&'static str>),
    }

    fn write(file: &str, value: &str) -> Access {
        Access::Write(file.into(), value.into(), None)
    }

    fn busy(file: &str, value: &str) -> Access {
        Access::Write(file.into(), value.into(), Some("EBUSY"))
    }

    fn read(file: &str) -> Access {
        Access::Read(file.into())
    }

    /// Records every access, passing it to the real files.
    #[derive(Debug)]
    struct Recording {
        root: PathBuf,
        log: Mutex<Vec<Access>>,
    }

    impl Recording {
        fn rel(&self, path: &Path) -> String {
            path.strip_prefix(&self.root)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        }

        fn take(&self) -> Vec<Access> {
            std::mem::take(&mut *self.log.lock().unwrap())
        }
    }

    impl Sysfs for Recording {
        fn read(&self, path: &Path) -> io::Result<String> {
            self.log.lock().unwrap().push(Access::Read(self.rel(path)));
            RealSysfs.read(path)
        }
        fn write(&self, path: &Path, value: &str) -> io::Result<()> {
            self.log
                .lock()
                .unwrap()
                .push(Access::Write(self.rel(path), value.into(), None));
            RealSysfs.write(path, value)
        }
    }

    /// The kernel's side, scripted: `state` answers what the script says; writes answered
    /// `EBUSY` while `busy` has entries for that file.
    #[derive(Debug, Default)]
    struct Scripted {
        state: Mutex<String>,
        busy: Mutex<VecDeque<&'static str>>,
        log: Mutex<Vec<Access>>,
    }

    impl Scripted {
        fn take(&self) -> Vec<Access> {
            std::mem::take(&mut *self.log.lock().unwrap())
        }
    }

    fn file_of(path: &Path) -> String {
        path.file_name().unwrap().to_string_lossy().into_owned()
    }

    impl Sysfs for Scripted {
        fn read(&self, path: &Path) -> io::Result<String> {
            self.log.lock().unwrap().push(Access::Read(file_of(path)));
            Ok(format!("{}\n", self.state.lock().unwrap()))
        }
        fn write(&self, path: &Path, value: &str) -> io::Result<()> {
            let file = file_of(path);
            let mut busy = self.busy.lock().unwrap();
            if busy.front() == Some(&file.as_str()) {
                busy.pop_front();
                self.log
                    .lock()
                    .unwrap()
                    .push(Access::Write(file, value.into(), Some("EBUSY")));
                return Err(io::Error::from_raw_os_error(
                    rustix::io::Errno::BUSY.raw_os_error(),
                ));
            }
            self.log
                .lock()
                .unwrap()
                .push(Access::Write(file.clone(), value.into(), None));
            match (file.as_str(), value) {
                ("state", "start") => *self.state.lock().unwrap() = "running".into(),
                ("state", "stop") => *self.state.lock().unwrap() = "offline".into(),
                _ => {}
            }
            Ok(())
        }
    }

    /// A firmware file and its content name.
    fn firmware(dir: &Path, bytes: &[u8]) -> (PathBuf, String) {
        let path = dir.join(format!("fw-{}.elf", bytes.len()));
        std::fs::write(&path, bytes).unwrap();
        (path, content_name(&hex::encode(Sha256::digest(bytes))))
    }

    /// A remoteproc tree of plain files: `remoteproc0/{firmware,state}`, `state` offline.
    fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("sys");
        std::fs::create_dir_all(root.join("remoteproc0")).unwrap();
        std::fs::write(root.join("remoteproc0/firmware"), "rproc-m4-fw\n").unwrap();
        std::fs::write(root.join("remoteproc0/state"), "offline\n").unwrap();
        let fw = tmp.path().join("firmware");
        (tmp, root, fw)
    }

    #[test]
    fn a_start_writes_the_firmware_name_then_start_and_a_running_core_is_stopped_first() {
        let (tmp, root, fw_dir) = tree();
        let sysfs = Arc::new(Recording {
            root: root.clone(),
            log: Mutex::new(vec![]),
        });
        let core = RemoteprocCore::new("m4", &root, &fw_dir, "remoteproc0", sysfs.clone());
        let (one, one_name) = firmware(tmp.path(), b"\x7fELF first firmware");

        core.load_and_start(&one, &one_name).unwrap();
        assert_eq!(
            sysfs.take(),
            [
                read("remoteproc0/state"),
                write("remoteproc0/firmware", &one_name),
                write("remoteproc0/state", "start"),
            ]
        );
        assert_eq!(
            std::fs::read(fw_dir.join(&one_name)).unwrap(),
            std::fs::read(&one).unwrap(),
            "the ELF is in the firmware directory under its content name"
        );
        assert_eq!(
            std::fs::read_dir(&fw_dir).unwrap().count(),
            1,
            "no temporary file is left"
        );

        // The kernel says it runs; a new firmware stops it first.
        std::fs::write(root.join("remoteproc0/state"), "running\n").unwrap();
        let (two, two_name) = firmware(tmp.path(), b"\x7fELF the second firmware");
        core.load_and_start(&two, &two_name).unwrap();
        assert_eq!(
            sysfs.take(),
            [
                read("remoteproc0/state"),
                write("remoteproc0/state", "stop"),
                write("remoteproc0/firmware", &two_name),
                write("remoteproc0/state", "start"),
            ]
        );
        assert_eq!(
            std::fs::read_to_string(root.join("remoteproc0/firmware")).unwrap(),
            two_name
        );

        std::fs::write(root.join("remoteproc0/state"), "running\n").unwrap();
        core.stop().unwrap();
        assert_eq!(
            sysfs.take(),
            [
                read("remoteproc0/state"),
                write("remoteproc0/state", "stop")
            ]
        );
        core.stop().unwrap();
        assert_eq!(sysfs.take(), [], "a stopped core is not stopped again");

        core.remove_firmware(&one_name).unwrap();
        core.remove_firmware(&one_name).unwrap();
        assert!(!fw_dir.join(&one_name).exists());
        assert!(fw_dir.join(&two_name).exists());
    }

    #[test]
    fn a_write_answered_ebusy_stops_the_core_and_is_retried_once() {
        let tmp = tempfile::tempdir().unwrap();
        let script = Arc::new(Scripted::default());
        *script.state.lock().unwrap() = "offline".into();
        let core = RemoteprocCore::new(
            "m4",
            &tmp.path().join("sys"),
            &tmp.path().join("fw"),
            "remoteproc0",
            script.clone(),
        );
        let (fw, name) = firmware(tmp.path(), b"\x7fELF busy");

        // Started behind the supervisor's back between the read and the write.
        script.busy.lock().unwrap().push_back("firmware");
        core.load_and_start(&fw, &name).unwrap();
        assert_eq!(
            script.take(),
            [
                read("state"),
                busy("firmware", &name),
                write("state", "stop"),
                write("firmware", &name),
                write("state", "start"),
            ]
        );

        // `start` refused as busy: stop and start again.
        *script.state.lock().unwrap() = "offline".into();
        script.busy.lock().unwrap().push_back("state");
        core.load_and_start(&fw, &name).unwrap();
        assert_eq!(
            script.take(),
            [
                read("state"),
                write("firmware", &name),
                busy("state", "start"),
                write("state", "stop"),
                write("state", "start"),
            ]
        );

        // Busy twice: an error naming the file, and no start.
        *script.state.lock().unwrap() = "offline".into();
        script.busy.lock().unwrap().extend(["firmware", "firmware"]);
        let e = core.load_and_start(&fw, &name).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "core `m4`: {} stayed busy (EBUSY) after the core was stopped",
                tmp.path().join("sys/remoteproc0/firmware").display()
            )
        );
        assert_eq!(
            script.take(),
            [
                read("state"),
                busy("firmware", &name),
                write("state", "stop"),
                busy("firmware", &name),
            ]
        );
    }

    #[test]
    fn crashed_ends_the_run_and_a_stop_ends_it_as_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let script = Arc::new(Scripted::default());
        *script.state.lock().unwrap() = "offline".into();
        let core = Arc::new(
            RemoteprocCore::new(
                "m4",
                &tmp.path().join("sys"),
                &tmp.path().join("fw"),
                "remoteproc0",
                script.clone(),
            )
            .with_poll(Duration::from_millis(10)),
        );
        let (fw, name) = firmware(tmp.path(), b"\x7fELF crash");
        let run = core.load_and_start(&fw, &name).unwrap();
        let waiter = {
            let core = Arc::clone(&core);
            std::thread::spawn(move || core.wait(run))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "a running core is waited for");
        *script.state.lock().unwrap() = "crashed".into();
        match waiter.join().unwrap() {
            CoreEnd::Crashed { detail, .. } => {
                assert!(detail.contains("says `crashed`"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        script.take();
        // The restart: a crashed core is stopped before its firmware is written again.
        let run = core.load_and_start(&fw, &name).unwrap();
        assert_eq!(
            script.take(),
            [
                read("state"),
                write("state", "stop"),
                write("firmware", &name),
                write("state", "start"),
            ]
        );
        // A late stop of the crashed run leaves the new one running.
        core.stop_run(Run(run.0 - 1)).unwrap();
        assert_eq!(script.take(), []);
        let waiter = {
            let core = Arc::clone(&core);
            std::thread::spawn(move || core.wait(run))
        };
        core.stop_run(run).unwrap();
        assert_eq!(waiter.join().unwrap(), CoreEnd::Stopped);
        assert_eq!(script.take(), [read("state"), write("state", "stop")]);
        assert_eq!(core.wait(Run(0)), CoreEnd::Stopped, "an unknown run");
    }
}
