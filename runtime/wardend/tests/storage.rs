//! `MutableStorage` as a hard quota, through the real `wardend` and real confined workers: each
//! app's storage is its own ext4 image, loop-mounted by the supervisor. Needs root, loop
//! devices, e2fsprogs and util-linux, like the supervisor on a device (CI has them): these
//! tests fail, never skip, where the quota is not enforced.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{APP_A, APP_B, Fixture, fixture, pack_code};

/// Fills `/storage` (fd 3): files `f0`…`f7`, 4 KiB writes to each until one fails; a file
/// that hits `RLIMIT_FSIZE` (EFBIG, 22) is left for the next. Prints
/// `fill errno=E bytes=N` (E the last error, 51 = ENOSPC, 0 if none stopped it, N the bytes
/// written in all) and exits 0: running out of space is an answer, not a crash.
const FILL: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "f0")
  (data (i32.const 600) "fill errno=")
  (data (i32.const 620) " bytes=")
  ;; digits of $v, written forward at $at; returns the end
  (func $num (param $v i64) (param $at i32) (result i32) (local $p i32) (local $len i32)
    (local.set $p (i32.const 960))
    (loop $l
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p) (i64.add (i64.const 48) (i64.rem_u (local.get $v) (i64.const 10))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $l (i64.ne (local.get $v) (i64.const 0))))
    (local.set $len (i32.sub (i32.const 960) (local.get $p)))
    (memory.copy (local.get $at) (local.get $p) (local.get $len))
    (i32.add (local.get $at) (local.get $len)))
  (func $report (param $errno i32) (param $total i64) (local $at i32)
    (memory.copy (i32.const 700) (i32.const 600) (i32.const 11))
    (local.set $at (call $num (i64.extend_i32_u (local.get $errno)) (i32.const 711)))
    (memory.copy (local.get $at) (i32.const 620) (i32.const 7))
    (local.set $at (call $num (local.get $total) (i32.add (local.get $at) (i32.const 7))))
    (i32.store8 (local.get $at) (i32.const 10))
    (i32.store (i32.const 16) (i32.const 700))
    (i32.store (i32.const 20) (i32.sub (i32.add (local.get $at) (i32.const 1)) (i32.const 700)))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "_start") (local $i i32) (local $fd i32) (local $e i32) (local $total i64)
    (i32.store (i32.const 0) (i32.const 4096))
    (i32.store (i32.const 4) (i32.const 4096))
    (block $done
      (loop $files
        (i32.store8 (i32.const 33) (i32.add (i32.const 48) (local.get $i)))
        ;; oflags CREAT|TRUNC, rights FD_READ|FD_WRITE
        (local.set $e (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 2)
          (i32.const 9) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 12)))
        (br_if $done (local.get $e))
        (local.set $fd (i32.load (i32.const 12)))
        (block $full
          (loop $writes
            (local.set $e (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
            (br_if $full (local.get $e))
            (br_if $full (i32.eqz (i32.load (i32.const 8))))
            (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (i32.load (i32.const 8)))))
            (br $writes)))
        (drop (call $fd_close (local.get $fd)))
        (br_if $done (i32.ne (local.get $e) (i32.const 22)))
        (local.set $e (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $files (i32.lt_u (local.get $i) (i32.const 8)))))
    (call $report (local.get $e) (local.get $total))))"#;

/// Reads `/storage/note` and prints `found: <its text>`; without it, writes the note, fsyncs
/// it and prints `synced`, then sleeps `SLEEP_S` seconds (so a test can kill it).
fn persist(sleep_s: u64) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_sync" (func $fd_sync (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "note")
  (data (i32.const 64) "persisted-data")
  (data (i32.const 200) "found: ")
  (data (i32.const 300) "synced\n")
  (func $say (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $check (param $e i32) (if (local.get $e) (then (call $proc_exit (local.get $e)))))
  (func (export "_start") (local $fd i32)
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 4)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12)))
      (then
        (local.set $fd (i32.load (i32.const 12)))
        (i32.store (i32.const 0) (i32.const 207))
        (i32.store (i32.const 4) (i32.const 64))
        (call $check (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
        (i32.store8 (i32.add (i32.const 207) (i32.load (i32.const 8))) (i32.const 10))
        (call $say (i32.const 200) (i32.add (i32.const 8) (i32.load (i32.const 8))))
        (return)))
    ;; oflags CREAT|EXCL, rights FD_DATASYNC|FD_READ|FD_SYNC|FD_WRITE
    (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 4)
      (i32.const 5) (i64.const 83) (i64.const 0) (i32.const 0) (i32.const 12)))
    (local.set $fd (i32.load (i32.const 12)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 14))
    (call $check (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $check (call $fd_sync (local.get $fd)))
    (call $say (i32.const 300) (i32.const 7))
    ;; one relative monotonic-clock subscription
    (i64.store (i32.const 400) (i64.const 0))
    (i32.store8 (i32.const 408) (i32.const 0))
    (i32.store (i32.const 416) (i32.const 1))
    (i64.store (i32.const 424) (i64.const {sleep_ns}))
    (i64.store (i32.const 432) (i64.const 0))
    (i32.store16 (i32.const 440) (i32.const 0))
    (drop (call $poll (i32.const 400) (i32.const 512) (i32.const 1) (i32.const 16)))))"#,
        sleep_ns = sleep_s * 1_000_000_000
    )
}

/// Tries to leave `/storage` four ways: `../` up to `/etc/passwd`, the absolute path, and
/// a relative and an absolute symlink made inside storage, then followed. Prints
/// `escape symlinks=A,B opens=W,X,Y,Z`: the errnos of making the two symlinks (0: made, which
/// is allowed) and of the four opens (0 would be an escape).
const ESCAPE: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "../../../../../../etc/passwd")
  (data (i32.const 140) "/etc/passwd")
  (data (i32.const 160) "../../../../../..")
  (data (i32.const 180) "up")
  (data (i32.const 190) "up/etc/passwd")
  (data (i32.const 210) "/etc")
  (data (i32.const 220) "abs")
  (data (i32.const 230) "abs/passwd")
  (data (i32.const 300) "escape symlinks=00,00 opens=00,00,00,00\n")
  ;; two decimal digits of $v at $at
  (func $two (param $v i32) (param $at i32)
    (i32.store8 (local.get $at) (i32.add (i32.const 48) (i32.div_u (local.get $v) (i32.const 10))))
    (i32.store8 (i32.add (local.get $at) (i32.const 1))
      (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10)))))
  (func $open (param $path i32) (param $len i32) (result i32)
    ;; lookup flag SYMLINK_FOLLOW, rights FD_READ
    (call $path_open (i32.const 3) (i32.const 1) (local.get $path) (local.get $len)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12)))
  (func (export "_start")
    (call $two (call $path_symlink (i32.const 160) (i32.const 17) (i32.const 3) (i32.const 180) (i32.const 2))
      (i32.const 316))
    (call $two (call $path_symlink (i32.const 210) (i32.const 4) (i32.const 3) (i32.const 220) (i32.const 3))
      (i32.const 319))
    (call $two (call $open (i32.const 100) (i32.const 28)) (i32.const 328))
    (call $two (call $open (i32.const 140) (i32.const 11)) (i32.const 331))
    (call $two (call $open (i32.const 190) (i32.const 13)) (i32.const 334))
    (call $two (call $open (i32.const 230) (i32.const 10)) (i32.const 337))
    (i32.store (i32.const 0) (i32.const 300))
    (i32.store (i32.const 4) (i32.const 40))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

fn require_root() {
    common::daemon::require_root(
        "these tests start the real supervisor, which mounts each app's storage: they need root",
    );
}

fn manifest(id: &str, storage_kb: u64) -> String {
    format!(
        r#"{{"SchemaVersion": 1, "Name": "storage-test", "ComponentId": "{id}",
            "EntryPoint": "/bin/app.wasm", "ApplicationType": "Default",
            "Capabilities": {{"MutableStorage": {{"SizeKB": {storage_kb}}}}}}}"#
    )
}

fn package(f: &Fixture, id: &str, storage_kb: u64, version: u64, wat: &str) -> Vec<u8> {
    pack_code(
        f,
        &manifest(id, storage_kb),
        version,
        &wat::parse_str(wat).unwrap(),
        None,
    )
}

/// Unmounts whatever is still mounted under a test's state directory when the test ends, pass
/// or fail (declare it before the daemon: it must drop after it), so no loop device leaks.
struct MountGuard {
    storage: PathBuf,
}

impl MountGuard {
    fn new(f: &Fixture) -> MountGuard {
        MountGuard {
            storage: storage_root(f),
        }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        for m in mounts_under(&self.storage).iter().rev() {
            let flags = rustix::mount::UnmountFlags::NOFOLLOW;
            if rustix::mount::unmount(m, flags).is_err() {
                let _ = rustix::mount::unmount(m, flags | rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

fn storage_root(f: &Fixture) -> PathBuf {
    std::fs::canonicalize(&f.state_path)
        .unwrap()
        .join("storage")
}

/// `(mount point, fstype, source, options)` of every mount, from `/proc/self/mountinfo`.
fn mountinfo() -> Vec<(PathBuf, String, String, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some((
                PathBuf::from(left.get(4)?.replace("\\040", " ")),
                (*right.first()?).to_owned(),
                (*right.get(1)?).to_owned(),
                (*left.get(5)?).to_owned(),
            ))
        })
        .collect()
}

fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    mountinfo()
        .into_iter()
        .map(|m| m.0)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Loop devices attached to `image`.
fn loops_of(image: &Path) -> Vec<String> {
    std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let backing =
                std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
            (name.starts_with("loop") && Path::new(backing.trim_end()) == image).then_some(name)
        })
        .collect()
}

impl Daemon {
    fn install(&self, package: &[u8]) -> serde_json::Value {
        let (status, body) = self.call("POST", "/images", package);
        assert_eq!(status, 201, "{body}");
        body
    }

    fn quota(&self, id: &str) -> serde_json::Value {
        let (status, body) = self.call("GET", &format!("/apps/{id}/quota"), b"");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits for the `n`th (1-based) log line of `id` starting with `prefix`; returns it.
    fn wait_line(&self, id: &str, prefix: &str, n: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let logs = self.logs(id);
            if let Some(line) = logs.iter().filter(|l| l.starts_with(prefix)).nth(n - 1) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for `{prefix}` #{n} from {id}: {logs:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_state(&self, id: &str, state: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, app) = self.call("GET", &format!("/apps/{id}"), b"");
            if app["status"]["state"] == state {
                return app;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {id} to be {state}: {app} {:#?}",
                self.logs(id)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `fill errno=E bytes=N` → (E, N).
fn fill_result(line: &str) -> (u64, u64) {
    let mut numbers = line.split(['=', ' ']).filter_map(|w| w.parse::<u64>().ok());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

const ENOSPC: u64 = 51;

#[test]
fn writing_past_the_quota_gets_enospc_and_two_apps_have_separate_file_systems() {
    require_root();
    let f = fixture();
    let _mounts = MountGuard::new(&f);
    let d = Daemon::start(&f);
    let (_, status) = d.call("GET", "/status", b"");
    assert_eq!(
        status["storage"]["enforced"], true,
        "storage quotas must be enforced on this machine: {status}"
    );
    assert_eq!(status["storage"]["backing"], "ext4-image");

    d.install(&package(&f, APP_A, 256, 1, FILL));
    d.install(&package(&f, APP_B, 128, 1, FILL));
    for (id, kb) in [(APP_A, 256u64), (APP_B, 128)] {
        let quota = kb * 1024;
        let line = d.wait_line(id, "fill ", 1);
        let (errno, bytes) = fill_result(&line);
        // Without the file system's limit, RLIMIT_FSIZE would stop each file at the quota
        // (EFBIG) and eight files would hold eight times the quota: no ENOSPC.
        assert_eq!(errno, ENOSPC, "{id}: {line}");
        assert!(
            bytes <= quota,
            "{id} wrote {bytes} bytes past its quota of {quota}"
        );
        // The whole quota, to one write (measured: exactly the quota).
        assert!(
            bytes + 4096 >= quota,
            "{id} got only {bytes} of its {quota} bytes"
        );
        d.wait_state(id, "exited");
        let usage = d.quota(id);
        eprintln!("{id}: {line}; quota answer {usage}");
        assert_eq!(usage["quota_bytes"], quota, "{usage}");
        assert_eq!(usage["enforced"], true, "{usage}");
        let used = usage["used_bytes"].as_u64().unwrap();
        assert!(used <= quota, "{id}: used {used} > quota {quota}: {usage}");
        assert!(
            used >= bytes,
            "{id}: used {used} < written {bytes}: {usage}"
        );
        assert!(usage["available_bytes"].as_u64().unwrap() < 4096, "{usage}");
        let logs = d.logs(id);
        let note = logs
            .iter()
            .find(|l| l.starts_with("storage: ext4 image, quota "))
            .unwrap_or_else(|| panic!("{logs:#?}"));
        eprintln!("{id}: {note}");
    }

    // Two file systems, neither the state directory's; mounted without devices, set-uid or exec.
    let root = storage_root(&f);
    let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
    let (a, b) = (root.join(APP_A), root.join(APP_B));
    assert_ne!(dev(&a), dev(&b));
    assert_ne!(dev(&a), dev(&root));
    assert_ne!(dev(&b), dev(&root));
    for dir in [&a, &b] {
        let mounts: Vec<_> = mountinfo().into_iter().filter(|m| &m.0 == dir).collect();
        assert_eq!(mounts.len(), 1, "{dir:?}: {mounts:?}");
        let (_, fstype, source, options) = &mounts[0];
        assert_eq!(fstype, "ext4");
        assert!(source.starts_with("/dev/loop"), "{source}");
        for option in ["nodev", "nosuid", "noexec", "noatime"] {
            assert!(options.split(',').any(|o| o == option), "{options}");
        }
        let meta = std::fs::metadata(dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        assert!(meta.uid() >= wardend::index::APP_UID_BASE);
        let image = root.join(format!(
            "{}.img",
            dir.file_name().unwrap().to_string_lossy()
        ));
        assert_eq!(
            std::fs::metadata(&image).unwrap().mode() & 0o777,
            0o600,
            "the image is root's alone"
        );
        assert_eq!(std::fs::metadata(&image).unwrap().uid(), 0);
    }

    // A larger quota in an upgrade grows the file system; the app then fills the new size.
    d.install(&package(&f, APP_A, 512, 2, FILL));
    let line = d.wait_line(APP_A, "fill ", 2);
    let (errno, bytes) = fill_result(&line);
    assert_eq!(errno, ENOSPC, "{line}");
    assert!(bytes <= 512 * 1024 && bytes + 4096 >= 512 * 1024, "{line}");
    d.wait_state(APP_A, "exited");
    assert_eq!(d.quota(APP_A)["quota_bytes"], 512 * 1024);

    // A smaller quota the data does not fit: the data stays, and so does the old quota, said.
    d.install(&package(&f, APP_A, 128, 3, FILL));
    d.wait_line(APP_A, "fill ", 3);
    d.wait_state(APP_A, "exited");
    let usage = d.quota(APP_A);
    assert_eq!(usage["quota_bytes"], 512 * 1024, "{usage}");
    assert_eq!(usage["requested_quota_bytes"], 128 * 1024, "{usage}");
    assert!(usage["reason"].as_str().unwrap().contains("did not fit"));
    assert!(
        d.logs(APP_A)
            .iter()
            .any(|l| l.contains("more than its new quota of 131072 bytes")),
    );
    d.kill();
}

#[test]
fn dot_dot_and_symlinks_do_not_leave_storage() {
    require_root();
    let f = fixture();
    let _mounts = MountGuard::new(&f);
    let d = Daemon::start(&f);
    d.install(&package(&f, APP_A, 64, 1, ESCAPE));
    let line = d.wait_line(APP_A, "escape ", 1);
    // A relative symlink pointing out may be made (it is only a name inside storage; WASI
    // refuses an absolute one, EPERM = 63)...
    assert!(line.starts_with("escape symlinks=00,"), "{line}");
    // ...but following it, `../` or an absolute path leaves nothing open.
    let opens = line.rsplit_once('=').unwrap().1;
    assert_eq!(opens.split(',').count(), 4, "{line}");
    for errno in opens.split(',') {
        assert_ne!(errno, "00", "an open left /storage: {line}");
    }
    d.wait_state(APP_A, "exited");
    // The link is there, pointing out, and harmless.
    let root = storage_root(&f).join(APP_A);
    assert_eq!(
        std::fs::read_link(root.join("up")).unwrap(),
        PathBuf::from("../../../../../..")
    );
    d.kill();
}

#[test]
fn fsynced_data_survives_a_worker_kill_and_a_supervisor_sigkill() {
    require_root();
    let f = fixture();
    let _mounts = MountGuard::new(&f);
    let d = Daemon::start(&f);
    d.install(&package(&f, APP_A, 64, 1, &persist(120)));
    d.wait_line(APP_A, "synced", 1);
    let app = d.wait_state(APP_A, "running");
    let worker = app["status"]["pid"].as_i64().unwrap();
    // The supervisor dies first (no shutdown of its own runs), then the worker.
    d.kill();
    let pid = rustix::process::Pid::from_raw(worker as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let image = storage_root(&f).join(format!("{APP_A}.img"));
    let mount_point = storage_root(&f).join(APP_A);
    assert_eq!(
        mounts_under(&mount_point).len(),
        1,
        "the storage stays mounted"
    );

    // A new supervisor finds the mount and reuses it: one mount, one loop device.
    let d = Daemon::start(&f);
    let line = d.wait_line(APP_A, "found: ", 1);
    assert_eq!(line, "found: persisted-data");
    eprintln!("reused: {}", d.wait_line(APP_A, "storage: ", 1));
    assert_eq!(mounts_under(&mount_point).len(), 1, "mounted twice");
    assert_eq!(loops_of(&image).len(), 1, "{:?}", loops_of(&image));
    d.wait_state(APP_A, "exited");

    // A clean stop unmounts; the next start mounts it again and the data is there.
    d.terminate();
    assert!(mounts_under(&storage_root(&f)).is_empty());
    let d = Daemon::start(&f);
    assert_eq!(d.wait_line(APP_A, "found: ", 1), "found: persisted-data");
    eprintln!("mounted again: {}", d.wait_line(APP_A, "storage: ", 1));
    d.kill();
}

#[test]
fn uninstall_keeps_or_wipes_the_storage_and_leaves_nothing_mounted() {
    require_root();
    let f = fixture();
    let _mounts = MountGuard::new(&f);
    let d = Daemon::start(&f);
    let app = package(&f, APP_A, 64, 1, &persist(0));
    let root = storage_root(&f);
    let image = root.join(format!("{APP_A}.img"));
    let unmounted = |what: &str| {
        assert!(mounts_under(&root).is_empty(), "{what}: still mounted");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !loops_of(&image).is_empty() {
            assert!(Instant::now() < deadline, "{what}: the loop device stayed");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    d.install(&app);
    d.wait_line(APP_A, "synced", 1);
    d.wait_state(APP_A, "exited");
    let (status, body) = d.call("DELETE", &format!("/apps/{APP_A}?storage=keep"), b"");
    assert_eq!(status, 200, "{body}");
    unmounted("keep");
    assert!(image.is_file(), "keep removed the image");

    d.install(&app);
    assert_eq!(d.wait_line(APP_A, "found: ", 1), "found: persisted-data");
    d.wait_state(APP_A, "exited");
    let (status, body) = d.call("DELETE", &format!("/apps/{APP_A}?storage=wipe"), b"");
    assert_eq!(status, 200, "{body}");
    unmounted("wipe");
    assert!(!image.exists(), "wipe left the image");
    assert!(!root.join(APP_A).exists(), "wipe left the mount point");
    assert!(!root.join(format!("{APP_A}.json")).exists());

    d.install(&app);
    d.wait_line(APP_A, "synced", 1);
    d.wait_state(APP_A, "exited");
    let logs = d.logs(APP_A);
    assert!(
        !logs.iter().any(|l| l.starts_with("found: ")),
        "wiped data came back: {logs:#?}"
    );
    d.terminate();
    unmounted("shutdown");
}
