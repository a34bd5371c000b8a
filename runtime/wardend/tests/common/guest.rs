//! Running a test guest (`sample-apps/device-probe`, `sample-apps/net-probe`) under a real
//! `wardend`: its component, a manifest that passes the steps as its arguments, and its stdout.

use std::process::Command;

use super::daemon::Daemon;
use super::{Fixture, pack_code, repo};

/// The component of `sample-apps/<name>`: the one `cargo xtask test` built (named by the
/// environment variable `env`), or built here.
pub fn wasm(name: &str, env: &str) -> Vec<u8> {
    if let Some(path) = std::env::var_os(env) {
        return std::fs::read(&path).unwrap_or_else(|e| panic!("{env}={path:?}: {e}"));
    }
    let repo = repo();
    let wasm = repo.join(format!("target/guests/wasm32-wasip2/release/{name}.wasm"));
    if !wasm.is_file() {
        let status = Command::new(env!("CARGO"))
            .current_dir(&repo)
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
                &format!("sample-apps/{name}/Cargo.toml"),
                "--target-dir",
                "target/guests",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "building {name} failed");
    }
    std::fs::read(&wasm).unwrap()
}

/// The device-probe component (`sample-apps/device-probe`), built once per test binary.
pub fn device_probe() -> &'static [u8] {
    static WASM: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    WASM.get_or_init(|| wasm("device-probe", "WARDEN_DEVICE_PROBE"))
}

/// The app's state as `GET /apps/{id}` shows it (`running`, `stopped`, …; empty if none).
pub fn state(d: &Daemon, id: &str) -> String {
    let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
    app["status"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A manifest for a probe (its code packed as `bin/app.wasm`) with `capabilities` and the
/// steps to run as its arguments.
pub fn manifest(id: &str, capabilities: &str, steps: &[&str]) -> String {
    let args = serde_json::to_string(steps).unwrap();
    format!(
        r#"{{"SchemaVersion": 1, "Name": "probe", "ComponentId": "{id}",
            "EntryPoint": "/bin/app.wasm", "CmdArgs": {args},
            "Capabilities": {capabilities}, "ApplicationType": "Default"}}"#
    )
}

/// Installs (and so starts) the probe `wasm` with `capabilities` running `steps`.
pub fn start(d: &Daemon, f: &Fixture, wasm: &[u8], id: &str, capabilities: &str, steps: &[&str]) {
    let (status, body) = d.call(
        "POST",
        "/images",
        &pack_code(f, &manifest(id, capabilities, steps), 1, wasm, None),
    );
    assert_eq!(status, 201, "{body}");
}

/// The app's stdout lines so far.
pub fn stdout(d: &Daemon, id: &str) -> Vec<String> {
    let (_, body) = d.call("GET", &format!("/apps/{id}/logs"), b"");
    body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["stream"] == "stdout")
        .map(|l| l["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits for the app's stdout line that starts with `prefix`, and returns it.
pub fn wait_line(d: &Daemon, id: &str, prefix: &str) -> String {
    let mut found = None;
    d.wait_for(&format!("`{prefix}…` from {id}"), |d| {
        found = stdout(d, id).into_iter().find(|l| l.starts_with(prefix));
        found.is_some()
    });
    found.unwrap()
}

/// Waits for the app to end, requires a clean exit (a refusal is an error value, never a
/// crash), and returns its stdout lines.
pub fn wait_exit(d: &Daemon, id: &str) -> Vec<String> {
    d.wait_for(&format!("{id} to exit"), |d| {
        let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
        app["status"]["state"] == "exited" || app["status"]["state"] == "backoff"
    });
    let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
    assert_eq!(app["status"]["state"], "exited", "{app} {:?}", d.logs(id));
    stdout(d, id)
}
