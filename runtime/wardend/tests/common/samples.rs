//! The sample apps (`sample-apps/`), built the way a developer builds them: `warden app
//! build`, through `cargo xtask samples`.

use std::process::Command;

use warden_policy::package::PackageKind;

use super::daemon::Daemon;
use super::{Fixture, pack_entry, repo};

/// The built component (or module) of the sample `name`: `$WARDEN_SAMPLES/<name>.wasm` (what
/// `cargo xtask test` built), else built here with `cargo xtask samples <name>` once per test
/// binary.
pub fn wasm(name: &str) -> Vec<u8> {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    if let Some(dir) = std::env::var_os("WARDEN_SAMPLES") {
        // A relative directory is taken from the repository root, as `cargo xtask` runs.
        let path = repo().join(dir).join(format!("{name}.wasm"));
        return std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let repo = repo();
    let path = repo.join(format!("target/samples/{name}.wasm"));
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|n| n == name) {
        let status = Command::new(env!("CARGO"))
            .current_dir(&repo)
            .args(["xtask", "samples", name])
            .status()
            .unwrap();
        assert!(status.success(), "building the sample {name} failed");
        built.push(name.to_owned());
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The sample's own `app_manifest.json`, unchanged.
pub fn manifest(name: &str) -> String {
    let path = repo().join(format!("sample-apps/{name}/app_manifest.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `ComponentId` of a manifest.
pub fn component_id(manifest: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(manifest).unwrap();
    value["ComponentId"].as_str().unwrap().to_owned()
}

/// Packs the sample `name` with `manifest` (its code at the manifest's EntryPoint), installs
/// it (which starts it) and returns its component id.
pub fn install(d: &Daemon, f: &Fixture, name: &str, manifest: &str) -> String {
    let (status, body) = d.call("POST", "/images", &pack(f, manifest, 1, &wasm(name)));
    assert_eq!(status, 201, "installing {name}: {body}");
    component_id(manifest)
}

/// Packs `code` as the entry the manifest's `EntryPoint` names, signed with the fixture's app
/// key.
pub fn pack(f: &Fixture, manifest: &str, version: u64, code: &[u8]) -> Vec<u8> {
    let value: serde_json::Value = serde_json::from_str(manifest).unwrap();
    let entry = value["EntryPoint"]
        .as_str()
        .unwrap()
        .trim_start_matches('/');
    pack_entry(PackageKind::App, &f.app_key, manifest, version, code, entry)
}
