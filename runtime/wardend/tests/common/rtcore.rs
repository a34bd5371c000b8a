//! Real-time apps: a fixture whose trust store also lists an `rtcore` signing key, their
//! manifests, and `kind: rtcore` packages.

use warden_policy::keys::{KeyRole, PrivateKey};
use warden_policy::package::PackageKind;

use std::path::PathBuf;

use super::{Fixture, fixture_with_keys, pack_entry, repo};

// xtask's build of the firmware samples (std and anyhow only), used when `cargo xtask test`
// did not hand their paths over.
#[path = "../../../../xtask/src/firmware.rs"]
#[allow(dead_code, unreachable_pub)]
mod xtask_firmware;

/// The firmware samples (`sample-apps/rt-echo-c`, `sample-apps/rt-echo-rust`) by name:
/// `WARDEN_RT_ECHO_C` and `WARDEN_RT_ECHO_RUST`, or built here (once per test binary) by
/// xtask's own build code (a missing toolchain fails the test, never skips it).
pub fn firmware_samples() -> [(&'static str, PathBuf); 2] {
    let from_env = |var: &str| {
        std::env::var_os(var).map(|path| {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "{var}={} is not a file (a relative path is taken from {})",
                path.display(),
                std::env::current_dir().unwrap().display()
            );
            path
        })
    };
    static BUILT: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    let (c, rust) = match (
        from_env("WARDEN_RT_ECHO_C"),
        from_env("WARDEN_RT_ECHO_RUST"),
    ) {
        (Some(c), Some(rust)) => (c, rust),
        _ => BUILT
            .get_or_init(|| {
                xtask_firmware::build_firmware(&repo()).unwrap_or_else(|e| {
                    panic!(
                        "WARDEN_RT_ECHO_C/_RUST are not set and the samples could not be \
                         built: {e:#}"
                    )
                })
            })
            .clone(),
    };
    [("rt-echo-c", c), ("rt-echo-rust", rust)]
}

/// A firmware sample's manifest text, its component id and its entry payload's name.
pub fn sample_manifest(sample: &str) -> (String, String, String) {
    let text = std::fs::read_to_string(
        repo()
            .join("sample-apps")
            .join(sample)
            .join("app_manifest.json"),
    )
    .unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = manifest["ComponentId"].as_str().unwrap().to_owned();
    let entry = manifest["EntryPoint"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_owned();
    (text, id, entry)
}

/// The usual fixture (an `app` key in the trust store) and a key with the `rtcore` role.
pub struct RtFixture {
    pub f: Fixture,
    pub rt_key: PrivateKey,
}

/// [`super::fixture`], with an `rtcore` signing key in the trust store too.
pub fn rt_fixture() -> RtFixture {
    let rt_key = PrivateKey::generate().unwrap();
    let f = fixture_with_keys(&[(&rt_key, KeyRole::Rtcore, "real-time firmware")]);
    RtFixture { f, rt_key }
}

/// A `RealTimeCapable` manifest whose entry is `/bin/fw.elf`; `caps` is the inside of
/// `Capabilities`.
pub fn rt_manifest(id: &str, name: &str, caps: &str) -> String {
    format!(
        r#"{{"SchemaVersion": 1, "Name": "{name}", "ComponentId": "{id}",
            "EntryPoint": "/bin/fw.elf", "Capabilities": {{{caps}}},
            "ApplicationType": "RealTimeCapable"}}"#
    )
}

/// A `kind: rtcore` package of `elf` (as `bin/fw.elf`, [`rt_manifest`]'s entry) signed by
/// `key`.
pub fn pack_rt(key: &PrivateKey, manifest: &str, version: u64, elf: &[u8]) -> Vec<u8> {
    pack_rt_as(key, manifest, version, elf, "bin/fw.elf")
}

/// [`pack_rt`] with the entry payload named `entry` (the manifest's `EntryPoint` without its
/// leading `/`).
pub fn pack_rt_as(
    key: &PrivateKey,
    manifest: &str,
    version: u64,
    elf: &[u8],
    entry: &str,
) -> Vec<u8> {
    pack_entry(PackageKind::Rtcore, key, manifest, version, elf, entry)
}
