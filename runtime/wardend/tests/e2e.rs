//! End to end with the real binaries: `wardend` (this package) starts confined `warden-worker`s
//! (built by `cargo test --workspace`, which `cargo xtask test` runs) through the real sandbox.
//! Needs root, like the supervisor itself.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{APP_A, APP_B, fixture, pack_code};

/// A WASI preview-1 command that greets on stdout.
const HELLO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from a confined worker\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 29))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// Spins forever without returning to the host.
const SPIN: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"#;

/// A well-behaved neighbour: says "beat" every 20 ms, forever.
const HEARTBEAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "beat\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 5))
    (i32.store8 (i32.const 72) (i32.const 0))
    (i32.store (i32.const 80) (i32.const 1))
    (i64.store (i32.const 88) (i64.const 20000000))
    (loop $beat
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (drop (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160)))
      (br $beat))))"#;

/// Hostile: opens /etc/passwd through descriptors 3 to 9 (it has no storage, so no preopen);
/// exits with the errno of the last attempt, or 99 if any open succeeded.
const OPEN_PASSWD: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "/etc/passwd")
  (func (export "_start") (local $fd i32) (local $err i32)
    (local.set $fd (i32.const 3))
    (loop $next
      (local.set $err (call $path_open (local.get $fd) (i32.const 0) (i32.const 16) (i32.const 11)
        (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)))
      (if (i32.eqz (local.get $err)) (then (call $proc_exit (i32.const 99))))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $fd) (i32.const 10))))
    (call $proc_exit (local.get $err))))"#;

fn require_root() {
    common::daemon::require_root(
        "these tests start the real supervisor and sandbox, which need root (CI runs as root)",
    );
}

fn manifest(id: &str, extra: &str) -> String {
    format!(
        r#"{{"SchemaVersion": 1, "Name": "e2e", "ComponentId": "{id}", "EntryPoint": "/bin/app.wasm",
            "CmdArgs": ["--flag"], "Capabilities": {{}}, "ApplicationType": "Default"{extra}}}"#
    )
}

#[test]
fn a_sideloaded_app_runs_confined_and_a_spinning_one_is_stopped_by_the_watchdog() {
    require_root();
    let f = fixture();
    let d = Daemon::start(&f);
    let hello = wat::parse_str(HELLO).unwrap();
    let (status, body) = d.call(
        "POST",
        "/images",
        &pack_code(&f, &manifest(APP_A, ""), 1, &hello, None),
    );
    assert_eq!(status, 201, "{body}");
    d.wait_for("hello's greeting", |d| {
        d.logs(APP_A)
            .contains(&"hello from a confined worker".to_owned())
    });
    d.wait_for("a clean exit", |d| {
        d.call("GET", &format!("/apps/{APP_A}"), b"").1["status"]["state"] == "exited"
    });
    let logs = d.logs(APP_A);
    assert!(
        logs.iter().any(|l| l.starts_with("confined: ")),
        "the confinement report is logged: {logs:?}"
    );

    let spin = wat::parse_str(SPIN).unwrap();
    let limits = r#", "Warden": {"WatchdogMs": 200}"#;
    let (status, body) = d.call(
        "POST",
        "/images",
        &pack_code(&f, &manifest(APP_B, limits), 1, &spin, None),
    );
    assert_eq!(status, 201, "{body}");
    d.wait_for("a watchdog report", |d| {
        let (_, reports) = d.call("GET", &format!("/reports?app={APP_B}"), b"");
        reports
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["failure"]["kind"] == "watchdog")
    });
    // The well-behaved app is untouched by its neighbour's failures.
    let (_, hello_app) = d.call("GET", &format!("/apps/{APP_A}"), b"");
    assert_eq!(hello_app["status"]["state"], "exited");
    d.kill();
}

fn guest(name: &str) -> Vec<u8> {
    wat::parse_file(
        common::repo()
            .join("runtime/worker/tests/guests")
            .join(name),
    )
    .unwrap()
}

/// The newest report of `id` at `version` whose failure kind is `kind`, waiting for it.
fn wait_report(d: &Daemon, id: &str, version: u64, kind: &str) -> serde_json::Value {
    let mut found = None;
    d.wait_for(&format!("a {kind} report for {id}"), |d| {
        let (_, reports) = d.call("GET", &format!("/reports?app={id}"), b"");
        found = reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["failure"]["kind"] == kind && r["version"] == version)
            .cloned();
        found.is_some()
    });
    found.unwrap()
}

/// The sequence number of the newest "beat" in the neighbour's log.
fn last_beat(d: &Daemon, id: &str) -> u64 {
    let (_, body) = d.call("GET", &format!("/apps/{id}/logs"), b"");
    body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|l| l["text"] == "beat")
        .map_or(0, |l| l["seq"].as_u64().unwrap())
}

#[test]
fn hostile_apps_end_as_their_manifests_say_while_a_neighbour_keeps_answering() {
    require_root();
    let f = fixture();
    let d = Daemon::start(&f);
    let neighbour = APP_A;
    let (status, body) = d.call(
        "POST",
        "/images",
        &pack_code(
            &f,
            &manifest(neighbour, ""),
            1,
            &wat::parse_str(HEARTBEAT).unwrap(),
            None,
        ),
    );
    assert_eq!(status, 201, "{body}");
    d.wait_for("the neighbour's first beat", |d| {
        last_beat(d, neighbour) > 0
    });
    let view = d.call("GET", &format!("/apps/{neighbour}"), b"").1;
    let pid = view["status"]["pid"].clone();
    assert!(pid.is_u64(), "the neighbour runs: {view}");
    // Its memory is what its cgroup accounts (machines here offer a memory controller).
    let memory = view["memory_bytes"].as_u64();
    assert!(
        memory.is_some_and(|m| m > 0 && m < 256 << 20),
        "memory of an idle worker from its cgroup: {view}"
    );

    // (app, limits in its manifest, report kind, check of the report)
    type Check = fn(&serde_json::Value);
    let hostile: [(&str, Vec<u8>, &str, &str, Check); 7] = [
        (
            "infinite loop",
            wat::parse_str(SPIN).unwrap(),
            r#", "Warden": {"WatchdogMs": 200}"#,
            "watchdog",
            |r| assert_eq!(r["failure"]["watchdog_ms"], 200, "{r}"),
        ),
        (
            "memory bomb",
            guest("memory_bomb.wat"),
            r#", "Warden": {"MemoryLimitKB": 8192}"#,
            "memory_limit",
            |r| assert_eq!(r["failure"]["limit_bytes"], 8 << 20, "{r}"),
        ),
        (
            "unbounded recursion",
            guest("recursion.wat"),
            "",
            "trap",
            |r| {
                assert_eq!(r["failure"]["trap"], "stack_overflow", "{r}");
                assert!(
                    r.to_string().contains("recurse"),
                    "the backtrace names the function: {r}"
                );
            },
        ),
        (
            "table growth",
            guest("table_bomb.wat"),
            r#", "Warden": {"MemoryLimitKB": 1024}"#,
            "memory_limit",
            |r| assert_eq!(r["failure"]["limit_bytes"], 1 << 20, "{r}"),
        ),
        (
            "/etc/passwd",
            wat::parse_str(OPEN_PASSWD).unwrap(),
            "",
            "exit",
            // EBADF: without storage the app holds no directory to open anything under.
            |r| assert_eq!(r["failure"]["code"], 8, "{r}"),
        ),
        (
            "ungranted import",
            guest("gpio_import.wat"),
            "",
            "load_refused",
            |r| assert!(r.to_string().contains("warden:device/gpio"), "{r}"),
        ),
        ("unreachable", guest("unreachable.wat"), "", "trap", |r| {
            assert_eq!(r["failure"]["trap"], "unreachable", "{r}")
        }),
    ];
    // Versions rise: the rollback record of an uninstalled app stays.
    for (version, (what, code, limits, kind, check)) in (1..).zip(hostile) {
        let before = last_beat(&d, neighbour);
        let (status, body) = d.call(
            "POST",
            "/images",
            &pack_code(&f, &manifest(APP_B, limits), version, &code, None),
        );
        assert_eq!(status, 201, "{what}: {body}");
        let report = wait_report(&d, APP_B, version, kind);
        check(&report);
        let (status, body) = d.call("DELETE", &format!("/apps/{APP_B}?storage=wipe"), b"");
        assert_eq!(status, 200, "{what}: {body}");
        // The neighbour kept answering, in the same worker, through all of it.
        d.wait_for(&format!("beats after the {what}"), |d| {
            last_beat(d, neighbour) > before + 2
        });
        let now = d.call("GET", &format!("/apps/{neighbour}"), b"").1;
        assert_eq!(
            now["status"]["pid"], pid,
            "{what}: the neighbour was restarted: {now}"
        );
        let (_, reports) = d.call("GET", &format!("/reports?app={neighbour}"), b"");
        assert_eq!(
            reports,
            serde_json::json!([]),
            "{what}: the neighbour has reports"
        );
    }

    // A 100 MiB log flood: the app ends cleanly, its log stays bounded, the neighbour beats on.
    let before = last_beat(&d, neighbour);
    let (status, body) = d.call(
        "POST",
        "/images",
        &pack_code(&f, &manifest(APP_B, ""), 100, &guest("log_flood.wat"), None),
    );
    assert_eq!(status, 201, "{body}");
    d.wait_for("the flood's end", |d| {
        d.call("GET", &format!("/apps/{APP_B}"), b"").1["status"]["state"] == "exited"
    });
    let (_, log) = d.call("GET", &format!("/apps/{APP_B}/logs"), b"");
    let kept: usize = log["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap().len())
        .sum();
    assert!(kept < 4 << 20, "the log stays bounded: {kept} bytes kept");
    assert!(
        log["dropped_bytes"].as_u64().unwrap() > 90 << 20,
        "{}",
        log["dropped_bytes"]
    );
    d.wait_for("beats after the flood", |d| {
        last_beat(d, neighbour) > before + 2
    });
    let now = d.call("GET", &format!("/apps/{neighbour}"), b"").1;
    assert_eq!(
        now["status"]["pid"], pid,
        "the neighbour was restarted: {now}"
    );

    // A supervisor killed outright takes its workers with it (no stray app keeps running to
    // be started a second time by the next supervisor).
    d.kill();
    let stat = format!("/proc/{}/stat", pid.as_u64().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::read_to_string(&stat) {
            Err(_) => break,
            // Dead, waiting for init to reap it.
            Ok(text)
                if text
                    .rsplit(')')
                    .next()
                    .unwrap()
                    .trim_start()
                    .starts_with('Z') =>
            {
                break;
            }
            Ok(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "the worker outlived its supervisor"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigkill_during_install_never_leaves_a_half_installed_app() {
    require_root();
    let f = fixture();
    let hello = wat::parse_str(HELLO).unwrap();
    // A new version every round, so every round is a real upgrade (new store directory,
    // compile, commit, old directory removed), wherever the previous round was cut.
    let packages: Vec<Vec<u8>> = (1..=100)
        .map(|version| pack_code(&f, &manifest(APP_A, ""), version, &hello, None))
        .collect();
    // Kill points spread over 1.5 times an uninterrupted install on this machine now (another
    // app, so the rounds' versions stay untouched), so both sides of the commit are hit however
    // fast or loaded the machine is.
    let install_time = {
        let d = Daemon::start(&f);
        let package = pack_code(&f, &manifest(APP_B, ""), 1, &hello, None);
        let started = Instant::now();
        assert_eq!(d.call("POST", "/images", &package).0, 201);
        let took = started.elapsed();
        d.kill();
        took
    };
    let spread = u64::try_from(install_time.as_micros() * 3 / 2)
        .unwrap()
        .max(1000);
    let mut seed = 0x9e37_79b9_u64;
    let (mut committed, mut cut) = (0, 0);
    for (round, package) in packages.iter().enumerate() {
        let d = Daemon::start(&f);
        // Send the package, then kill the supervisor after a pseudo-random delay.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % spread);
        let socket = d.socket.clone();
        let body = package.clone();
        let sender = std::thread::spawn(move || {
            if let Ok(mut s) = UnixStream::connect(&socket) {
                let _ = write!(
                    s,
                    "POST /images HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(&body);
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        });
        std::thread::sleep(delay);
        d.kill();
        let _ = sender.join();

        // Whatever survived is whole: either no app, or one whose code matches its digest.
        let d = Daemon::start(&f);
        let (_, apps) = d.call("GET", "/apps", b"");
        let index: serde_json::Value = match std::fs::read(f.state_path.join("index.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("round {round}: index.json is damaged: {e}")),
            Err(_) => serde_json::json!({"apps": {}}),
        };
        let installed = index["apps"].as_object().unwrap();
        if installed
            .get(APP_A)
            .is_some_and(|a| a["version"] == round as u64 + 1)
        {
            committed += 1;
        } else {
            cut += 1;
        }
        assert_eq!(
            apps.as_array().unwrap().len(),
            installed.len(),
            "round {round}"
        );
        for (id, app) in installed {
            let store = f
                .state_path
                .join("store")
                .join(app["store"].as_str().unwrap());
            let code = app["code"]["file"].as_str().unwrap();
            let bytes = std::fs::read(store.join(code))
                .unwrap_or_else(|e| panic!("round {round}: {id}'s code is missing: {e}"));
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
            assert_eq!(digest, app["code"]["sha256"], "round {round}: {id}'s code");
        }
        let staging = std::fs::read_dir(f.state_path.join("staging"))
            .unwrap()
            .count();
        assert_eq!(
            staging, 0,
            "round {round}: staging left behind after recovery"
        );
        d.kill();
    }
    // The kill points fell on both sides of the commit, so both outcomes were checked.
    assert!(
        committed > 0 && cut > 0,
        "committed {committed}, cut {cut} (an install took {install_time:?})"
    );
}

/// A worker whose engine is not the compiler's would refuse every app the compiler made:
/// wardend refuses to start with that pair, naming both.
#[test]
fn a_worker_for_another_engine_than_the_compilers_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let other = f.tmp.path().join("other-worker");
    std::fs::write(
        &other,
        "#!/bin/sh\necho wasmtime-0.0.0/x86_64-linux/other\n",
    )
    .unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wardend"))
        .arg("--state")
        .arg(&f.state_path)
        .arg("--board")
        .arg(common::repo().join("buildroot-overlay/board/warden-sim/board.json"))
        .arg("--trust")
        .arg(f.tmp.path().join("trust.json"))
        .arg("--socket")
        .arg(f.tmp.path().join("refused.sock"))
        .arg("--worker")
        .arg(&other)
        .arg("--compiler")
        .arg(common::daemon::worker_binary())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "wardend started: {stderr}");
    assert!(
        stderr.contains("wasmtime-0.0.0/x86_64-linux/other")
            && stderr.contains("every app it compiled would be refused"),
        "{stderr}"
    );
    assert!(!f.tmp.path().join("refused.sock").exists());
}
