#![allow(clippy::unwrap_used)]
//! The sensor-logger sample (`sample-apps/sensor-logger`, Python) with its own manifest under a
//! real `wardend` on the simulated board: it reads the temperature the test sets on the
//! emulated TMP102, keeps a bounded ring log in its storage, and after a kill of its worker or
//! a restart of the supervisor reads the log back and continues its numbering. Needs root.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::daemon::{Daemon, require_root};
use common::guest::stdout;
use common::samples::{install, manifest};
use common::{Fixture, fixture};

/// The app's ring log, as the app names it, and its bounds (`app.py`).
const LOG_FILE: &str = "readings.log";
const CAPACITY: u64 = 10;
const RECORD_SIZE: u64 = 32;

/// Unmounts whatever the test left mounted under the state directory's storage, whether it
/// passes or fails (declared before the daemon, so it drops after it).
struct MountGuard {
    storage: PathBuf,
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| Path::new(p).starts_with(&self.storage))
            .collect();
        points.reverse();
        for point in points {
            let flags = rustix::mount::UnmountFlags::NOFOLLOW;
            if rustix::mount::unmount(point, flags).is_err() {
                let _ = rustix::mount::unmount(point, flags | rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

fn set_temperature(d: &Daemon, celsius: f64) {
    let (status, body) = d.call(
        "POST",
        &format!("/sim/sensor/SENSOR_I2C/0x48?quantity=temperature_c&value={celsius}"),
        b"",
    );
    assert_eq!(status, 200, "setting the temperature: {body}");
}

/// The reading lines (`reading N: T C`) so far, as (N, T text).
fn readings(d: &Daemon, id: &str) -> Vec<(u64, String)> {
    stdout(d, id)
        .iter()
        .filter_map(|l| {
            let (n, t) = l.strip_prefix("reading ")?.split_once(": ")?;
            Some((n.parse().ok()?, t.to_owned()))
        })
        .collect()
}

/// Waits until `cond` holds for the app's stdout lines; returns them.
fn wait_stdout(d: &Daemon, id: &str, what: &str, cond: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = stdout(d, id);
        if cond(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {} {:#?}",
            app(d, id),
            d.logs(id)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for a reading of `temperature` (as the app prints it, `21.50 C`); its number.
fn wait_reading(d: &Daemon, id: &str, temperature: &str) -> u64 {
    wait_stdout(d, id, &format!("a reading of {temperature}"), |_| {
        readings(d, id).iter().any(|(_, t)| t == temperature)
    });
    readings(d, id)
        .iter()
        .find(|(_, t)| t == temperature)
        .unwrap()
        .0
}

/// The `resuming after reading N` lines so far, as N.
fn resumed(d: &Daemon, id: &str) -> Vec<u64> {
    stdout(d, id)
        .iter()
        .filter_map(|l| {
            l.strip_prefix("resuming after reading ")?
                .split_once(' ')?
                .0
                .parse()
                .ok()
        })
        .collect()
}

fn app(d: &Daemon, id: &str) -> serde_json::Value {
    let (status, app) = d.call("GET", &format!("/apps/{id}"), b"");
    assert_eq!(status, 200, "{app}");
    app
}

fn wait_running(d: &Daemon, id: &str) -> i32 {
    d.wait_for(&format!("{id} running"), |d| {
        app(d, id)["status"]["pid"].as_i64().is_some()
    });
    app(d, id)["status"]["pid"].as_i64().unwrap() as i32
}

/// The ring log's file, found in the app's mounted storage.
fn log_file(f: &Fixture, id: &str) -> PathBuf {
    let root = std::fs::canonicalize(&f.state_path)
        .unwrap()
        .join("storage")
        .join(id);
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == LOG_FILE) {
                return path;
            }
            if path.is_dir() {
                dirs.push(path);
            }
        }
    }
    panic!("no {LOG_FILE} under {}", root.display());
}

/// Checks that a restart continued the numbering: the `n`th resume names the last reading
/// printed before it, and the next reading follows it.
fn check_resumed(d: &Daemon, id: &str, n: usize, before: u64) {
    wait_stdout(d, id, &format!("resume #{n}"), |_| {
        resumed(d, id).len() >= n
    });
    let last = resumed(d, id)[n - 1];
    assert_eq!(
        last,
        before,
        "resume #{n} did not start after the last reading printed: {:#?}",
        stdout(d, id)
    );
    wait_stdout(d, id, &format!("reading {}", last + 1), |_| {
        readings(d, id)
            .iter()
            .filter(|(s, _)| *s == last + 1)
            .count()
            == 1
    });
}

#[test]
fn sensor_logger_prints_readings_and_keeps_its_numbered_log_across_kills_and_restarts() {
    require_root("the supervisor, and mounting the app's storage");
    let f = fixture();
    let _mounts = MountGuard {
        storage: std::fs::canonicalize(&f.state_path)
            .unwrap()
            .join("storage"),
    };
    let d = Daemon::start(&f);
    set_temperature(&d, 21.5);
    let id = install(&d, &f, "sensor-logger", &manifest("sensor-logger"));

    // First start: an empty log, readings from 1, the temperature the board has.
    let first = wait_stdout(&d, &id, "the first start", |l| !l.is_empty());
    assert_eq!(
        first[0], "no earlier readings in /storage/readings.log: starting at 1",
        "{first:#?}"
    );
    assert_eq!(wait_reading(&d, &id, "21.50 C"), 1);
    set_temperature(&d, -12.25);
    wait_reading(&d, &id, "-12.25 C");

    // A kill of the worker (no chance to clean up): the supervisor restarts the app, which
    // finds every reading it printed.
    let pid = wait_running(&d, &id);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    d.wait_for("the supervisor to see the kill", |d| {
        app(d, &id)["status"]["pid"].as_i64() != Some(i64::from(pid))
    });
    let printed = readings(&d, &id).last().unwrap().0;
    check_resumed(&d, &id, 1, printed);

    // The log stays bounded: once more readings than it holds were taken, it holds exactly
    // the latest CAPACITY, each in its slot.
    wait_stdout(&d, &id, "more readings than the log holds", |_| {
        readings(&d, &id).last().unwrap().0 > CAPACITY + 2
    });
    let path = log_file(&f, &id);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.len() as u64, CAPACITY * RECORD_SIZE, "{text:?}");
    let mut kept: Vec<u64> = text
        .lines()
        .map(|r| r.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    kept.sort_unstable();
    let newest = *kept.last().unwrap();
    assert_eq!(
        kept,
        (newest + 1 - CAPACITY..=newest).collect::<Vec<_>>(),
        "{text}"
    );
    assert!(text.contains(" -12.2500 "), "{text}");

    // The app is stopped, and the supervisor with it (SIGTERM: storage unmounted); a new
    // supervisor starts the app again, which continues from the log.
    let (status, body) = d.call("POST", &format!("/apps/{id}/stop"), b"");
    assert_eq!(status, 200, "stopping: {body}");
    d.wait_for("the app to stop", |d| {
        app(d, &id)["status"]["state"] == "stopped"
    });
    let printed = readings(&d, &id).last().unwrap().0;
    d.terminate();
    let d = Daemon::start(&f);
    check_resumed(&d, &id, 1, printed);
    d.terminate();
}
