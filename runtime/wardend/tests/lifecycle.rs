//! App lifecycle policy with a scripted launcher: restarts with backoff, quarantine after a crash
//! loop, stops that stick, clean exits, autostart, and reports that survive a restart. (The
//! real confined worker is exercised by the end-to-end tests.)
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{APP_A, FakeCompiler, Fixture, Script, fixture, manifest, pack, wait_for};
use wardend::reports::{FailureKind, ReportStore};
use wardend::supervisor::{End, RestartPolicy, Status, Supervisor};

fn trap() -> Option<End> {
    Some(End::Failed {
        failure: FailureKind::Trap {
            trap: "unreachable".into(),
        },
        detail: "wasm trap: unreachable".into(),
        backtrace: vec![],
    })
}

fn policy() -> RestartPolicy {
    RestartPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        stable_after: Duration::from_secs(60),
        quarantine_failures: 3,
        window: Duration::from_secs(60),
    }
}

fn supervisor(f: &Fixture, script: &Script) -> Supervisor {
    Supervisor::open(
        wardend::state::StateDir::open(&f.state_path).unwrap(),
        common::device(f),
        Box::new(FakeCompiler::new()),
        Box::new(script.clone()),
        policy(),
        16,
    )
    .unwrap()
}

#[test]
fn an_installed_app_starts_runs_and_stops() {
    let f = fixture();
    let script = Script::default();
    let sup = supervisor(&f, &script);
    sup.install(&pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None)[..])
        .unwrap();
    wait_for("running", || {
        matches!(sup.app(APP_A).unwrap().status, Status::Running { .. })
    });
    assert_eq!(sup.app(APP_A).unwrap().memory_bytes, Some(1234));
    let launch = script.launches.lock().unwrap()[0].clone();
    assert_eq!(launch.args, vec!["t".to_owned()]);
    assert_eq!(launch.version, 1);
    assert!(launch.uid >= wardend::index::APP_UID_BASE);
    let (lines, _) = sup.logs(APP_A, 0, Duration::ZERO).unwrap();
    assert!(lines.iter().any(|l| l.text == "hello from the fake"));

    assert!(
        sup.start(APP_A).is_err(),
        "a running app cannot be started twice"
    );
    sup.stop(APP_A).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sup.app(APP_A).unwrap().status, Status::Stopped);
    assert_eq!(
        script.launches.lock().unwrap().len(),
        1,
        "a stop is not restarted"
    );
    assert!(
        sup.reports().list(None, 10).is_empty(),
        "a stop is not a failure"
    );
}

#[test]
fn a_crash_loop_backs_off_then_quarantines_with_reports() {
    let f = fixture();
    let script = Script::default();
    script
        .plan
        .lock()
        .unwrap()
        .extend([trap(), trap(), trap(), None]);
    let sup = supervisor(&f, &script);
    let began = Instant::now();
    sup.install(&pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None)[..])
        .unwrap();
    wait_for("quarantine", || {
        sup.app(APP_A).unwrap().status == Status::Quarantined
    });
    // Backoff 20 ms, then 40 ms, before the third failure.
    assert!(began.elapsed() >= Duration::from_millis(60));
    assert_eq!(script.launches.lock().unwrap().len(), 3);
    let app = sup.app(APP_A).unwrap();
    assert_eq!(app.restarts, 2);
    assert!(app.last_failure.unwrap().contains("unreachable"));

    let reports = sup.reports().list(Some(APP_A), 10);
    assert_eq!(reports.len(), 4);
    assert!(matches!(
        reports[0].failure,
        FailureKind::CrashLoop { failures: 3, .. }
    ));
    assert!(matches!(reports[1].failure, FailureKind::Trap { .. }));
    assert_eq!(reports[1].action, "quarantined");
    assert_eq!(reports[3].action, "restart in 20 ms");

    // Quarantine holds until an explicit start.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(script.launches.lock().unwrap().len(), 3);
    sup.start(APP_A).unwrap();
    wait_for("running again", || {
        matches!(sup.app(APP_A).unwrap().status, Status::Running { .. })
    });
    sup.stop_all();

    // Reports survive the supervisor.
    drop(sup);
    let state = wardend::state::StateDir::open(&f.state_path).unwrap();
    assert_eq!(
        ReportStore::open(&state, 16).unwrap().list(None, 10).len(),
        4
    );
}

/// A stopped worker that is reaped only after the app was started again must not make the
/// supervisor forget the new worker: the next stop has to find and kill it. (Found by the
/// benchmark's start/stop cycles: a worker survived the last stop.)
#[test]
fn a_slow_reap_of_a_stopped_worker_does_not_orphan_the_next_one() {
    let f = fixture();
    let script = Script::default();
    *script.reap_delay.lock().unwrap() = Duration::from_millis(100);
    let sup = supervisor(&f, &script);
    sup.install(&pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None)[..])
        .unwrap();
    let running = || matches!(sup.app(APP_A).unwrap().status, Status::Running { .. });
    wait_for("running", running);
    for _ in 0..3 {
        sup.stop(APP_A).unwrap();
        sup.start(APP_A).unwrap();
        wait_for("running again", running);
        // The stopped worker's monitor ends now, after the new worker took its place.
        std::thread::sleep(Duration::from_millis(250));
    }
    sup.stop(APP_A).unwrap();
    wait_for("every worker killed", || {
        script.alive.load(std::sync::atomic::Ordering::SeqCst) == 0
    });
    assert_eq!(script.launches.lock().unwrap().len(), 4);
}

#[test]
fn a_stop_during_backoff_cancels_the_restart() {
    let f = fixture();
    let script = Script::default();
    script.plan.lock().unwrap().extend([trap()]);
    let mut slow = policy();
    slow.initial_backoff = Duration::from_millis(300);
    slow.max_backoff = Duration::from_millis(300);
    let sup = Supervisor::open(
        wardend::state::StateDir::open(&f.state_path).unwrap(),
        common::device(&f),
        Box::new(FakeCompiler::new()),
        Box::new(script.clone()),
        slow,
        16,
    )
    .unwrap();
    sup.install(&pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None)[..])
        .unwrap();
    wait_for("backoff", || {
        matches!(
            sup.app(APP_A).unwrap().status,
            Status::Backoff { restart_in_ms: 300 }
        )
    });
    sup.stop(APP_A).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(script.launches.lock().unwrap().len(), 1);
    assert_eq!(sup.app(APP_A).unwrap().status, Status::Stopped);
}

#[test]
fn a_clean_exit_is_not_restarted_or_reported() {
    let f = fixture();
    let script = Script::default();
    script.plan.lock().unwrap().push_back(Some(End::Clean));
    let sup = supervisor(&f, &script);
    sup.install(&pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None)[..])
        .unwrap();
    wait_for("exited", || {
        sup.app(APP_A).unwrap().status == Status::Exited
    });
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(script.launches.lock().unwrap().len(), 1);
    assert!(sup.reports().list(None, 10).is_empty());
}

#[test]
fn an_update_restarts_the_app_and_autostart_brings_it_back() {
    let f = fixture();
    let script = Script::default();
    let sup = supervisor(&f, &script);
    sup.install(&pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None)[..])
        .unwrap();
    wait_for("v1 running", || {
        matches!(sup.app(APP_A).unwrap().status, Status::Running { .. })
    });
    sup.install(&pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 2, None)[..])
        .unwrap();
    wait_for("v2 running", || {
        script
            .launches
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.version == 2)
    });
    sup.stop_all();
    drop(sup);

    let script = Script::default();
    let sup = supervisor(&f, &script);
    wait_for("autostart", || {
        matches!(sup.app(APP_A).unwrap().status, Status::Running { .. })
    });
    assert_eq!(sup.app(APP_A).unwrap().version, 2);
    sup.uninstall(APP_A, true).unwrap();
    assert!(sup.app(APP_A).is_err());
    assert!(sup.apps().is_empty());
}
