//! Shared fixtures for the package and trust tests: keys, a trust store, tiny hand-written
//! payloads, and a raw package writer that signs any header, so tests can reach the checks that
//! run after the signature.
// Fixture helpers are not `#[test]` functions, so clippy's test exemption for `unwrap` does not reach
// them; a failing fixture should panic the test that called it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use sha2::{Digest, Sha256};
use warden_policy::keys::{KeyRole, PrivateKey};
use warden_policy::package::{
    self, Limits, MAGIC, PackRequest, PackageKind, PayloadInput, PayloadRole,
};
use warden_policy::trust::TrustStore;

pub const COMPONENT_ID: &str = "1689d8b2-c835-2e27-27ad-e894d6d15fa9";

pub fn manifest(application_type: &str, entry_point: &str) -> String {
    format!(
        r#"{{"SchemaVersion": 1, "Name": "blink", "ComponentId": "{COMPONENT_ID}",
"EntryPoint": "{entry_point}", "CmdArgs": [], "Capabilities": {{}},
"ApplicationType": "{application_type}"}}"#
    )
}

pub fn app_manifest() -> String {
    manifest("Default", "/bin/app")
}

/// A core WebAssembly module with one custom section: valid magic, no toolchain needed.
pub fn wasm_module(tag: &[u8]) -> Vec<u8> {
    let mut v = b"\0asm\x01\0\0\0".to_vec();
    let name = b"warden-test";
    v.push(0); // custom section id
    v.push((1 + name.len() + tag.len()) as u8);
    v.push(name.len() as u8);
    v.extend_from_slice(name);
    v.extend_from_slice(tag);
    v
}

/// A WebAssembly component preamble (version 0x0d, layer 1).
pub fn wasm_component() -> Vec<u8> {
    b"\0asm\x0d\0\x01\0".to_vec()
}

/// A minimal 32-bit little-endian ARM ELF executable header plus a few code bytes.
pub fn arm_elf() -> Vec<u8> {
    let mut v = vec![0u8; 52];
    v[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
    v[16] = 2; // ET_EXEC
    v[18] = 40; // EM_ARM
    v[20] = 1; // EV_CURRENT
    v[40] = 52; // e_ehsize
    v.extend_from_slice(&[0x70, 0x47, 0x70, 0x47]); // bx lr; bx lr
    v
}

pub struct Keys {
    pub root: PrivateKey,
    pub app: PrivateKey,
    pub rtcore: PrivateKey,
    pub os: PrivateKey,
    pub dev: PrivateKey,
    pub unlisted: PrivateKey,
}

impl Keys {
    pub fn new() -> Self {
        let k = || PrivateKey::generate().unwrap();
        Keys {
            root: k(),
            app: k(),
            rtcore: k(),
            os: k(),
            dev: k(),
            unlisted: k(),
        }
    }

    /// A trust file anchored on `root` listing app, rtcore, os and development keys.
    pub fn trust_json(&self) -> String {
        let mut t = TrustStore::init(&self.root, "test root").unwrap();
        for (key, role) in [
            (&self.app, KeyRole::App),
            (&self.rtcore, KeyRole::Rtcore),
            (&self.os, KeyRole::Os),
            (&self.dev, KeyRole::Development),
        ] {
            t = TrustStore::add_key(t.as_bytes(), &self.root, key.public_key(), role, "").unwrap();
        }
        t
    }

    pub fn trust(&self) -> TrustStore {
        TrustStore::from_json(self.trust_json().as_bytes()).unwrap()
    }
}

/// Packs an app whose entry is `entry` with optional resources.
pub fn pack_app(
    key: &PrivateKey,
    version: u64,
    entry: &[u8],
    resources: &[(&str, &[u8])],
) -> Vec<u8> {
    let manifest = app_manifest();
    let mut payloads = vec![PayloadInput {
        name: "bin/app".into(),
        role: PayloadRole::Entry,
        target: None,
        engine: None,
        source: &entry,
    }];
    for (name, bytes) in resources {
        payloads.push(PayloadInput {
            name: (*name).into(),
            role: PayloadRole::Resource,
            target: None,
            engine: None,
            source: bytes,
        });
    }
    let request = PackRequest {
        kind: PackageKind::App,
        manifest_text: &manifest,
        version,
        payloads,
        limits: Limits::default(),
    };
    let mut out = Vec::new();
    package::pack(&request, key, &mut out).unwrap();
    out
}

/// Packs real-time core firmware.
pub fn pack_rtcore(key: &PrivateKey, version: u64) -> Vec<u8> {
    let manifest = manifest("RealTimeCapable", "/fw.elf");
    let elf = arm_elf();
    let request = PackRequest {
        kind: PackageKind::Rtcore,
        manifest_text: &manifest,
        version,
        payloads: vec![PayloadInput {
            name: "fw.elf".into(),
            role: PayloadRole::Entry,
            target: None,
            engine: None,
            source: &elf,
        }],
        limits: Limits::default(),
    };
    let mut out = Vec::new();
    package::pack(&request, key, &mut out).unwrap();
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes a package with any header JSON and kind byte, correctly signed by `key`.
pub fn raw_package(kind_code: u8, header_json: &str, key: &PrivateKey, payloads: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&1u16.to_le_bytes());
    out.push(kind_code);
    out.push(0);
    out.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    out.extend_from_slice(header_json.as_bytes());
    let digest: [u8; 32] = Sha256::digest(&out).into();
    let sig = key.sign_prehash(&digest).unwrap();
    out.extend_from_slice(key.id().as_bytes());
    out.extend_from_slice(&sig);
    out.extend_from_slice(payloads);
    out
}

/// A valid app header for `entry` (named `bin/app`), as a JSON value to be edited by tests.
pub fn app_header(entry: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "format": 1,
        "kind": "app",
        "component_id": COMPONENT_ID,
        "name": "blink",
        "version": 1,
        "entry_format": "wasm-module",
        "manifest": app_manifest(),
        "payloads": [{
            "name": "bin/app",
            "role": "entry",
            "size": entry.len(),
            "sha256": sha256_hex(entry),
        }],
    })
}
