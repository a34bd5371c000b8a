//! The hello sample (`sample-apps/hello`, Rust, WASI only) with its own manifest under a real
//! `wardend`: it greets with the manifest's `CmdArgs` and exits 0, which the supervisor records
//! as a clean end (no report, no restart). Needs root.
#![allow(clippy::unwrap_used)]

mod common;

use common::daemon::{Daemon, require_root};
use common::fixture;
use common::guest::wait_exit;
use common::samples::{install, manifest};

#[test]
fn hello_greets_with_its_manifests_arguments_and_exits_cleanly() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    let id = install(&d, &f, "hello", &manifest("hello"));
    let lines = wait_exit(&d, &id);
    assert_eq!(
        lines,
        [r#"hello from a Warden app (args: ["--greeting", "world"])"#]
    );
    let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
    assert_eq!(
        (app["restarts"].as_u64(), &app["last_failure"]),
        (Some(0), &serde_json::Value::Null),
        "{app}"
    );
    let (_, reports) = d.call("GET", &format!("/reports?app={id}"), b"");
    assert_eq!(reports, serde_json::json!([]), "a clean exit is no failure");
}
