//! `sysevent` end to end: updates staged through the control API (`/updates`) of the real
//! `wardend` on the simulated board, and real guest components (`sample-apps/device-probe`) in
//! confined workers that hear of them (`SystemEventNotifications`), put them off and let them go
//! (`SoftwareUpdateDeferral`) through the broker. The tests assert what the apps heard, what
//! `GET /updates` shows, and that the updated app runs its new version. Needs root.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::daemon::{Daemon, require_root};
use common::guest::{self, stdout, wait_line};
use common::{Fixture, fixture, pack_code};
use serde_json::Value;

/// The app that is updated.
const TARGET: &str = "5d4c3b2a-1f0e-4d9c-8b7a-695847362514";
/// The updated app's new version: a first step that answers at once (it may listen, not
/// defer), then it keeps running.
const NEW_VERSION: [&str; 3] = [
    "sysevent-resume app",
    "sysevent-next 60000",
    "sysevent-next 60000",
];
/// An app that listens for update events.
const LISTENER: &str = "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d";
/// An app that defers updates.
const DEFERRER: &str = "2b3c4d5e-6f7a-4b9c-8d1e-2f3a4b5c6d7e";

const EVENTS: &str = r#"{"SystemEventNotifications": true}"#;
/// Waits for update events for three minutes: an app that keeps running. (Not `sleep`: a WASI
/// sleep parks the worker's tokio runtime on a condition variable, and no worker seccomp
/// profile allows `futex`.)
const IDLE: [&str; 3] = [
    "sysevent-next 60000",
    "sysevent-next 60000",
    "sysevent-next 60000",
];
const EVENTS_AND_DEFERRAL: &str =
    r#"{"SystemEventNotifications": true, "SoftwareUpdateDeferral": true}"#;

/// The probe as `id` at `version`, with `capabilities`, running `steps`: a signed package.
fn package(f: &Fixture, id: &str, version: u64, capabilities: &str, steps: &[&str]) -> Vec<u8> {
    pack_code(
        f,
        &guest::manifest(id, capabilities, steps),
        version,
        guest::device_probe(),
        None,
    )
}

fn start(d: &Daemon, f: &Fixture, id: &str, capabilities: &str, steps: &[&str]) {
    guest::start(d, f, guest::device_probe(), id, capabilities, steps);
}

/// `POST /updates?notice_s=N` with `package`: the status and the answer.
fn stage(d: &Daemon, package: &[u8], notice_s: u64) -> (u16, Value) {
    d.call("POST", &format!("/updates?notice_s={notice_s}"), package)
}

fn updates(d: &Daemon) -> Value {
    let (status, body) = d.call("GET", "/updates", b"");
    assert_eq!(status, 200, "{body}");
    body
}

fn app(d: &Daemon, id: &str) -> Value {
    let (status, body) = d.call("GET", &format!("/apps/{id}"), b"");
    assert_eq!(status, 200, "{body}");
    body
}

fn running(d: &Daemon, id: &str) {
    d.wait_for(&format!("{id} to run"), |d| {
        app(d, id)["status"]["state"] == "running"
    });
}

/// Waits until the app has printed `n` lines starting with `prefix`, and returns them.
fn wait_lines(d: &Daemon, id: &str, prefix: &str, n: usize) -> Vec<String> {
    let mut found = Vec::new();
    d.wait_for(&format!("{n} lines `{prefix}…` from {id}"), |d| {
        found = stdout(d, id)
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect();
        found.len() >= n
    });
    found
}

/// The files in `STATE/updates/`, sorted.
fn staged_files(f: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(f.state_path.join("updates"))
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_subscribed_app_hears_an_update_of_another_app_pending_installing_and_complete() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    start(&d, &f, TARGET, EVENTS, &IDLE);
    start(
        &d,
        &f,
        LISTENER,
        EVENTS,
        &[
            "sysevent-next 30000",
            "sysevent-next 30000",
            "sysevent-next 30000",
            "sysevent-next 60000",
        ],
    );
    running(&d, TARGET);
    running(&d, LISTENER);
    // Its first step subscribes.
    std::thread::sleep(Duration::from_millis(500));

    let (status, staged) = stage(&d, &package(&f, TARGET, 2, EVENTS, &NEW_VERSION), 2);
    assert_eq!(status, 202, "{staged}");
    assert_eq!(staged["status"], "pending", "{staged}");
    assert_eq!(staged["component_id"], TARGET);
    assert_eq!(staged["version"], 2);
    assert_eq!(staged["decision"], "upgrade from 1");
    assert_eq!(staged["notice_s"], 2);
    assert!(
        staged["seconds_to_install"].as_u64().unwrap() <= 2,
        "{staged}"
    );
    assert_eq!(staged["max_deferral_minutes"], 10_020);
    let listed = updates(&d);
    assert_eq!(listed["updates"][0]["id"], staged["id"], "{listed}");
    assert_eq!(app(&d, TARGET)["version"], 1, "not before its notice");

    let heard = wait_lines(&d, LISTENER, "sysevent-next", 3);
    let pending = format!("sysevent-next ok app pending {TARGET} version=2 in=");
    assert!(heard[0].starts_with(&pending), "{heard:?}");
    assert!(heard[0].ends_with("s max-deferral=10020min"), "{heard:?}");
    assert_eq!(
        heard[1],
        format!("sysevent-next ok app installing {TARGET} version=2 in=0s max-deferral=0min")
    );
    assert_eq!(
        heard[2],
        format!("sysevent-next ok app complete {TARGET} version=2 in=0s max-deferral=0min")
    );

    // The updated app runs its new version: its first step answers at once.
    d.wait_for("the new version to run", |d| {
        app(d, TARGET)["version"] == 2 && app(d, TARGET)["status"]["state"] == "running"
    });
    assert!(
        wait_line(&d, TARGET, "sysevent-resume").starts_with("sysevent-resume error not-granted"),
        "{:?}",
        stdout(&d, TARGET)
    );
    let listed = updates(&d);
    assert_eq!(listed["updates"], serde_json::json!([]), "{listed}");
    assert_eq!(listed["recent"][0]["status"], "complete", "{listed}");
    assert_eq!(listed["recent"][0]["detail"], "upgrade from 1", "{listed}");
    assert_eq!(staged_files(&f), ["updates.json"], "the package is removed");
    d.kill();
}

#[test]
fn a_deferral_holds_an_update_past_its_notice_until_the_app_resumes() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    start(&d, &f, TARGET, EVENTS, &IDLE);
    start(
        &d,
        &f,
        DEFERRER,
        EVENTS_AND_DEFERRAL,
        &[
            "sysevent-defer app 1",
            "sysevent-next 30000",
            "sysevent-next 5000",
            "sysevent-resume app",
            "sysevent-next 30000",
            "sysevent-next 30000",
            "sysevent-next 60000",
        ],
    );
    running(&d, TARGET);
    assert_eq!(
        wait_line(&d, DEFERRER, "sysevent-defer"),
        "sysevent-defer ok granted=1"
    );
    let listed = updates(&d);
    assert_eq!(listed["deferrals"][0]["app"], DEFERRER, "{listed}");
    assert_eq!(listed["deferrals"][0]["kind"], "app", "{listed}");

    // Staged with a notice of 1 s while the app defers: it installs when the deferral ends.
    let (status, staged) = stage(&d, &package(&f, TARGET, 2, EVENTS, &IDLE), 1);
    assert_eq!(status, 202, "{staged}");
    assert_eq!(staged["status"], "deferred", "{staged}");
    let heard = wait_line(&d, DEFERRER, "sysevent-next");
    let deferred = format!("sysevent-next ok app deferred {TARGET} version=2 in=");
    assert!(heard.starts_with(&deferred), "{heard}");

    // Past its notice it is still pending, to install at the end of the deferral.
    std::thread::sleep(Duration::from_millis(2000));
    let listed = updates(&d);
    let update = &listed["updates"][0];
    assert_eq!(update["id"], staged["id"], "{listed}");
    assert_eq!(update["status"], "deferred", "{listed}");
    assert!(
        update["seconds_to_install"].as_u64().unwrap() > 45,
        "{listed}"
    );
    assert!(
        update["install_at"].as_u64().unwrap() >= update["staged_at"].as_u64().unwrap() + 55,
        "{listed}"
    );
    assert_eq!(update["deferred_by"][0]["app"], DEFERRER, "{listed}");
    assert_eq!(app(&d, TARGET)["version"], 1, "held by the deferral");

    // The app resumes (after its 5 s wait): the update installs at once.
    let heard = wait_lines(&d, DEFERRER, "sysevent-next", 4);
    assert_eq!(heard[1], "sysevent-next ok timeout", "{heard:?}");
    assert_eq!(
        wait_line(&d, DEFERRER, "sysevent-resume"),
        "sysevent-resume ok"
    );
    assert_eq!(
        heard[2],
        format!("sysevent-next ok app installing {TARGET} version=2 in=0s max-deferral=0min")
    );
    assert_eq!(
        heard[3],
        format!("sysevent-next ok app complete {TARGET} version=2 in=0s max-deferral=0min")
    );
    d.wait_for("the new version", |d| app(d, TARGET)["version"] == 2);
    let listed = updates(&d);
    assert_eq!(listed["updates"], serde_json::json!([]), "{listed}");
    assert!(
        listed["deferrals"].as_array().unwrap().is_empty(),
        "{listed}"
    );
    assert_eq!(listed["recent"][0]["status"], "complete", "{listed}");
    d.kill();
}

#[test]
fn without_the_capabilities_every_sysevent_call_is_refused() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    let steps = [
        "sysevent-next 100",
        "sysevent-defer app 10",
        "sysevent-resume app",
        "sysevent-defer os 10",
    ];
    // A brokered app (it has a peripheral) without the keys, and one with nothing at all.
    const BROKERED: &str = "3c4d5e6f-7a8b-4c0d-9e1f-3a4b5c6d7e8f";
    const NOTHING: &str = "4d5e6f7a-8b9c-4d1e-8f2a-4b5c6d7e8f9a";
    start(&d, &f, BROKERED, r#"{"Gpio": ["$SAMPLE_LED"]}"#, &steps);
    start(&d, &f, NOTHING, "{}", &steps);
    // Events only: it may listen, not defer; limits are checked before the broker.
    start(
        &d,
        &f,
        LISTENER,
        EVENTS,
        &[
            "sysevent-next 60001",
            "sysevent-next 100",
            "sysevent-defer app 10",
            "sysevent-defer app 0",
        ],
    );
    let brokered = guest::wait_exit(&d, BROKERED);
    assert_eq!(brokered.len(), 4, "{brokered:?}");
    assert!(
        brokered[0].starts_with("sysevent-next error not-granted")
            && brokered[0].contains("SystemEventNotifications"),
        "{brokered:?}"
    );
    for line in &brokered[1..] {
        assert!(
            line.contains(" error not-granted") && line.contains("SoftwareUpdateDeferral"),
            "{brokered:?}"
        );
    }
    let nothing = guest::wait_exit(&d, NOTHING);
    assert_eq!(nothing.len(), 4, "{nothing:?}");
    for line in &nothing {
        assert!(line.contains(" error not-granted"), "{nothing:?}");
    }
    let listener = guest::wait_exit(&d, LISTENER);
    assert!(
        listener[0].starts_with("sysevent-next error invalid-argument"),
        "{listener:?}"
    );
    assert_eq!(listener[1], "sysevent-next ok timeout", "{listener:?}");
    assert!(
        listener[2].starts_with("sysevent-defer error not-granted")
            && listener[2].contains("SoftwareUpdateDeferral"),
        "{listener:?}"
    );
    assert!(
        listener[3].starts_with("sysevent-defer error invalid-argument"),
        "{listener:?}"
    );
    assert!(
        updates(&d)["deferrals"].as_array().unwrap().is_empty(),
        "nothing was deferred"
    );
    d.kill();
}

#[test]
fn a_staged_update_survives_a_supervisor_kill_and_installs_on_time() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    start(&d, &f, TARGET, EVENTS, &IDLE);
    running(&d, TARGET);
    let (status, staged) = stage(&d, &package(&f, TARGET, 2, EVENTS, &IDLE), 6);
    assert_eq!(status, 202, "{staged}");
    d.kill();

    let d = Daemon::start(&f);
    let listed = updates(&d);
    let update = &listed["updates"][0];
    assert_eq!(update["id"], staged["id"], "{listed}");
    assert_eq!(update["status"], "pending", "{listed}");
    assert_eq!(update["install_at"], staged["install_at"], "the same time");
    assert_eq!(app(&d, TARGET)["version"], 1);
    d.wait_for("the staged update to install", |d| {
        app(d, TARGET)["version"] == 2
    });
    let listed = updates(&d);
    assert_eq!(listed["updates"], serde_json::json!([]), "{listed}");
    assert_eq!(listed["recent"][0]["status"], "complete", "{listed}");
    running(&d, TARGET);
    d.kill();
}

#[test]
fn a_bad_package_is_refused_with_its_problem_and_nothing_is_staged() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    let v2 = package(&f, TARGET, 2, EVENTS, &IDLE);
    let (status, body) = d.call("POST", "/images", &v2);
    assert_eq!(status, 201, "{body}");

    let refused = |package: &[u8], notice_s: u64, want_status: u16, want: &str| {
        let (status, body) = stage(&d, package, notice_s);
        assert_eq!(status, want_status, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(want), "{want:?} not in {error:?}");
    };
    refused(b"not a package", 1, 422, "package refused");
    let older = package(&f, TARGET, 1, EVENTS, &IDLE);
    refused(&older, 1, 422, "rollback refused");
    let stranger = fixture();
    let unsigned = pack_code(
        &stranger,
        &guest::manifest(TARGET, EVENTS, &IDLE),
        3,
        guest::device_probe(),
        None,
    );
    refused(&unsigned, 1, 422, "package refused");
    let unresolvable = package(&f, TARGET, 3, r#"{"Gpio": ["$NO_SUCH_PIN"]}"#, &[]);
    refused(&unresolvable, 1, 422, "NO_SUCH_PIN");
    refused(&v2, 1, 409, "installed already");
    let v3 = package(&f, TARGET, 3, EVENTS, &IDLE);
    refused(&v3, 86_401, 400, "notice_s");
    let (status, _) = d.call("POST", "/updates?notice_s=soon", &v3);
    assert_eq!(status, 400);
    let listed = updates(&d);
    assert_eq!(listed["updates"], serde_json::json!([]), "{listed}");
    assert_eq!(listed["recent"], serde_json::json!([]), "{listed}");
    assert!(
        staged_files(&f).iter().all(|name| name == "updates.json"),
        "{:?}",
        staged_files(&f)
    );

    // A newer update of the same app replaces the pending one; a cancel removes it.
    let (status, first) = stage(&d, &v3, 600);
    assert_eq!(status, 202, "{first}");
    let v4 = package(&f, TARGET, 4, EVENTS, &IDLE);
    let (status, second) = stage(&d, &v4, 600);
    assert_eq!(status, 202, "{second}");
    let listed = updates(&d);
    assert_eq!(listed["updates"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["updates"][0]["version"], 4, "{listed}");
    assert_eq!(listed["recent"][0]["id"], first["id"], "{listed}");
    assert_eq!(listed["recent"][0]["status"], "abandoned", "{listed}");
    let id = second["id"].as_u64().unwrap();
    assert_eq!(
        staged_files(&f),
        [format!("{id}.wpkg"), "updates.json".into()]
    );
    let (status, body) = d.call("DELETE", &format!("/updates/{id}"), b"");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "abandoned");
    assert_eq!(updates(&d)["updates"], serde_json::json!([]));
    assert_eq!(staged_files(&f), ["updates.json"]);
    let (status, _) = d.call("DELETE", &format!("/updates/{id}"), b"");
    assert_eq!(status, 404);
    let (status, _) = d.call("DELETE", "/updates/first", b"");
    assert_eq!(status, 400);
    assert_eq!(app(&d, TARGET)["version"], 2, "nothing installed");
    d.kill();
}
