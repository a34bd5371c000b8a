//! End-to-end tests of the `warden` binary: keys, trust files, unlock tokens, packing and
//! verifying, run as a user would run them.

// Helpers outside `#[test]` functions are not covered by clippy's test exemption; a failing
// helper should panic the test that called it.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const COMPONENT_ID: &str = "1689d8b2-c835-2e27-27ad-e894d6d15fa9";

fn warden(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run warden")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = warden(dir, args);
    assert!(
        out.status.success(),
        "warden {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr.
fn fails(dir: &Path, args: &[&str]) -> String {
    let out = warden(dir, args);
    assert!(
        !out.status.success(),
        "warden {args:?} unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    String::from_utf8(out.stderr).unwrap()
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let text = ok(dir, args);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{args:?} printed invalid JSON ({e}): {text}"))
}

fn write_manifest(dir: &Path, name: &str, app_type: &str, entry: &str) {
    fs::write(
        dir.join(name),
        format!(
            r#"{{"SchemaVersion": 1, "Name": "blink", "ComponentId": "{COMPONENT_ID}",
"EntryPoint": "{entry}", "CmdArgs": [], "Capabilities": {{}}, "ApplicationType": "{app_type}"}}"#
        ),
    )
    .unwrap();
}

/// Keys, a trust file listing an app key, a manifest and a tiny WebAssembly module.
fn setup() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["keys", "new", "--role", "root"]);
    ok(d, &["keys", "new", "--role", "app"]);
    ok(
        d,
        &[
            "trust",
            "init",
            "--root-key",
            "root.key.pem",
            "-o",
            "trust.json",
        ],
    );
    ok(
        d,
        &[
            "trust",
            "add",
            "--trust",
            "trust.json",
            "--root-key",
            "root.key.pem",
            "--key",
            "app.pub.pem",
            "--role",
            "app",
            "--comment",
            "ci",
        ],
    );
    write_manifest(d, "app_manifest.json", "Default", "/bin/app");
    fs::write(d.join("app.wasm"), b"\0asm\x01\0\0\0\0\x05\x04test").unwrap();
    fs::write(d.join("data.txt"), b"some resource").unwrap();
    tmp
}

fn pack(d: &Path, key: &str, version: &str, out: &str) {
    ok(
        d,
        &[
            "app",
            "pack",
            "--manifest",
            "app_manifest.json",
            "--wasm",
            "app.wasm",
            "--key",
            key,
            "--version",
            version,
            "--resource",
            "data/info.txt=data.txt",
            "-o",
            out,
        ],
    );
}

#[test]
fn keys_trust_pack_verify_end_to_end() {
    let tmp = setup();
    let d = tmp.path();
    pack(d, "app.key.pem", "7", "app.wpkg");

    let out = ok(d, &["app", "verify", "app.wpkg", "--trust", "trust.json"]);
    assert!(
        out.starts_with("OK: app.wpkg is a valid app package"),
        "{out}"
    );

    let v = json(
        d,
        &[
            "app",
            "verify",
            "app.wpkg",
            "--trust",
            "trust.json",
            "--json",
        ],
    );
    assert_eq!(v["ok"], true);
    assert_eq!(v["version"], 7);
    assert_eq!(v["component_id"], COMPONENT_ID);
    assert_eq!(v["signer_role"], "app");
    assert_eq!(v["payloads"][1]["name"], "data/info.txt");
    assert_eq!(v["rollback"]["version"], 7);

    let app_id = json(d, &["keys", "show", "app.pub.pem", "--json"])["key_id"].clone();
    assert_eq!(v["signer"], app_id);
    assert_eq!(
        json(d, &["keys", "show", "app.key.pem", "--json"])["key_id"],
        app_id
    );

    let t = json(d, &["trust", "show", "--trust", "trust.json", "--json"]);
    assert_eq!(t["version"], 2);
    assert_eq!(t["keys"][0]["id"], app_id);
    assert_eq!(t["keys"][0]["comment"], "ci");

    let out = ok(d, &["app", "inspect", "app.wpkg"]);
    assert!(out.contains("signature NOT verified"), "{out}");
    let i = json(d, &["app", "inspect", "app.wpkg", "--json"]);
    assert_eq!(i["signature_verified"], false);
    assert_eq!(i["claimed_signer"], app_id);
    let i = json(
        d,
        &[
            "app",
            "inspect",
            "app.wpkg",
            "--trust",
            "trust.json",
            "--json",
        ],
    );
    assert_eq!(i["signature_verified"], true);
}

#[test]
fn keys_are_private_and_never_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let first = json(d, &["keys", "new", "--role", "app", "--out", "k", "--json"]);
    let mode = fs::metadata(d.join("k.key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let pem = fs::read(d.join("k.key.pem")).unwrap();
    assert!(pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));

    let err = fails(d, &["keys", "new", "--role", "app", "--out", "k"]);
    assert!(
        err.contains("k.key.pem already exists; refusing to overwrite it"),
        "{err}"
    );
    assert_eq!(fs::read(d.join("k.key.pem")).unwrap(), pem, "key changed");
    // Even when only the public half exists.
    fs::remove_file(d.join("k.key.pem")).unwrap();
    let err = fails(d, &["keys", "new", "--role", "app", "--out", "k"]);
    assert!(err.contains("k.pub.pem already exists"), "{err}");
    assert!(!d.join("k.key.pem").exists(), "half a pair was written");

    let second = json(
        d,
        &[
            "keys", "new", "--role", "app", "--out", "k", "--force", "--json",
        ],
    );
    assert_ne!(first["key_id"], second["key_id"]);
    let mode = fs::metadata(d.join("k.key.pem"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // The same rule for every output.
    ok(d, &["keys", "new", "--role", "root", "-o", "."]);
    ok(
        d,
        &[
            "trust",
            "init",
            "--root-key",
            "root.key.pem",
            "-o",
            "trust.json",
        ],
    );
    let err = fails(
        d,
        &[
            "trust",
            "init",
            "--root-key",
            "root.key.pem",
            "-o",
            "trust.json",
        ],
    );
    assert!(err.contains("trust.json already exists"), "{err}");
    ok(
        d,
        &[
            "trust",
            "init",
            "--root-key",
            "root.key.pem",
            "-o",
            "trust.json",
            "--force",
        ],
    );
}

#[test]
fn a_tampered_package_fails_with_the_reason() {
    let tmp = setup();
    let d = tmp.path();
    pack(d, "app.key.pem", "1", "app.wpkg");
    let good = fs::read(d.join("app.wpkg")).unwrap();

    let mut payload = good.clone();
    let last = payload.len() - 1;
    payload[last] ^= 1;
    fs::write(d.join("payload.wpkg"), &payload).unwrap();
    let err = fails(
        d,
        &["app", "verify", "payload.wpkg", "--trust", "trust.json"],
    );
    assert!(
        err.contains("payload `data/info.txt` does not match its signed digest"),
        "{err}"
    );

    let mut header = good.clone();
    header[40] ^= 1;
    fs::write(d.join("header.wpkg"), &header).unwrap();
    let err = fails(
        d,
        &["app", "verify", "header.wpkg", "--trust", "trust.json"],
    );
    assert!(err.contains("signature does not verify"), "{err}");

    let out = warden(
        d,
        &[
            "app",
            "verify",
            "header.wpkg",
            "--trust",
            "trust.json",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{v}"
    );

    fs::write(d.join("cut.wpkg"), &good[..good.len() - 3]).unwrap();
    let err = fails(d, &["app", "verify", "cut.wpkg", "--trust", "trust.json"]);
    assert!(
        err.contains("truncated in payload `data/info.txt`: 3 of 13 bytes missing"),
        "{err}"
    );

    let mut long = good.clone();
    long.push(0);
    fs::write(d.join("long.wpkg"), &long).unwrap();
    let err = fails(d, &["app", "verify", "long.wpkg", "--trust", "trust.json"]);
    assert!(err.contains("extra bytes after its last payload"), "{err}");

    // A CRLF-converting transfer.
    let crlf: Vec<u8> = good.iter().copied().filter(|b| *b != b'\r').collect();
    fs::write(d.join("crlf.wpkg"), &crlf).unwrap();
    let err = fails(d, &["app", "inspect", "crlf.wpkg"]);
    assert!(err.contains("not a warden package"), "{err}");
}

#[test]
fn signers_must_be_trusted_for_the_role() {
    let tmp = setup();
    let d = tmp.path();
    ok(d, &["keys", "new", "--role", "os"]);
    ok(
        d,
        &[
            "trust",
            "add",
            "--trust",
            "trust.json",
            "--root-key",
            "root.key.pem",
            "--key",
            "os.pub.pem",
            "--role",
            "os",
        ],
    );
    pack(d, "os.key.pem", "1", "os.wpkg");
    let err = fails(d, &["app", "verify", "os.wpkg", "--trust", "trust.json"]);
    assert!(err.contains("wrong key role: key"), "{err}");
    assert!(err.contains("has role os, but app"), "{err}");

    ok(d, &["keys", "new", "--role", "app", "--out", "stranger"]);
    pack(d, "stranger.key.pem", "1", "stranger.wpkg");
    let err = fails(
        d,
        &["app", "verify", "stranger.wpkg", "--trust", "trust.json"],
    );
    assert!(err.contains("is not in the trust store"), "{err}");

    let err = fails(
        d,
        &[
            "trust",
            "add",
            "--trust",
            "trust.json",
            "--root-key",
            "root.key.pem",
            "--key",
            "app.pub.pem",
            "--role",
            "rtcore",
        ],
    );
    assert!(err.contains("is listed more than once"), "{err}");
    let err = fails(
        d,
        &[
            "trust",
            "add",
            "--trust",
            "trust.json",
            "--root-key",
            "root.key.pem",
            "--key",
            "stranger.pub.pem",
            "--role",
            "root",
        ],
    );
    assert!(err.contains("role root"), "{err}");
    let err = fails(
        d,
        &[
            "trust",
            "add",
            "--trust",
            "trust.json",
            "--root-key",
            "app.key.pem",
            "--key",
            "stranger.pub.pem",
            "--role",
            "app",
        ],
    );
    assert!(
        err.contains("is not a root key of this trust file"),
        "{err}"
    );
}

#[test]
fn development_keys_need_an_unlock_token_for_this_device() {
    let tmp = setup();
    let d = tmp.path();
    ok(d, &["keys", "new", "--role", "development", "--out", "dev"]);
    ok(
        d,
        &[
            "trust",
            "add",
            "--trust",
            "trust.json",
            "--root-key",
            "root.key.pem",
            "--key",
            "dev.pub.pem",
            "--role",
            "development",
        ],
    );
    pack(d, "dev.key.pem", "1", "dev.wpkg");

    let err = fails(d, &["app", "verify", "dev.wpkg", "--trust", "trust.json"]);
    assert!(err.contains("no unlock token was given"), "{err}");

    ok(
        d,
        &[
            "device",
            "unlock",
            "--root-key",
            "root.key.pem",
            "--device-id",
            "dev-board-1",
            "--trust",
            "trust.json",
            "--valid-for",
            "1h",
            "-o",
            "unlock.json",
        ],
    );
    let v = json(
        d,
        &[
            "app",
            "verify",
            "dev.wpkg",
            "--trust",
            "trust.json",
            "--device-id",
            "dev-board-1",
            "--unlock",
            "unlock.json",
            "--json",
        ],
    );
    assert_eq!(v["via_unlock"], true);
    assert_eq!(v["signer_role"], "development");

    let err = fails(
        d,
        &[
            "app",
            "verify",
            "dev.wpkg",
            "--trust",
            "trust.json",
            "--device-id",
            "dev-board-2",
            "--unlock",
            "unlock.json",
        ],
    );
    assert!(
        err.contains("token is for device `dev-board-1`, not this device `dev-board-2`"),
        "{err}"
    );

    ok(
        d,
        &[
            "device",
            "unlock",
            "--root-key",
            "app.key.pem",
            "--device-id",
            "dev-board-1",
            "--dev-key",
            "dev.pub.pem",
            "-o",
            "forged.json",
        ],
    );
    let err = fails(
        d,
        &[
            "app",
            "verify",
            "dev.wpkg",
            "--trust",
            "trust.json",
            "--device-id",
            "dev-board-1",
            "--unlock",
            "forged.json",
        ],
    );
    assert!(
        err.contains("not signed by any key trusted for role root"),
        "{err}"
    );

    let err = fails(
        d,
        &[
            "device",
            "unlock",
            "--root-key",
            "root.key.pem",
            "--device-id",
            "x",
            "--dev-key",
            "dev.pub.pem",
            "--expires",
            "1000",
            "-o",
            "old.json",
        ],
    );
    assert!(err.contains("is not in the future"), "{err}");
    let err = fails(
        d,
        &[
            "device",
            "unlock",
            "--root-key",
            "app.key.pem",
            "--device-id",
            "x",
            "--trust",
            "trust.json",
            "-o",
            "x.json",
        ],
    );
    assert!(err.contains("is not a root key of trust file"), "{err}");
    // A token without the device id to check it against is a usage error (exit 2).
    let out = warden(
        d,
        &[
            "app",
            "verify",
            "dev.wpkg",
            "--trust",
            "trust.json",
            "--unlock",
            "unlock.json",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--device-id"));
}

#[test]
fn rtcore_packages_need_a_real_time_manifest_and_an_arm_elf() {
    let tmp = setup();
    let d = tmp.path();
    ok(d, &["keys", "new", "--role", "rtcore", "--out", "rt"]);
    ok(
        d,
        &[
            "trust",
            "add",
            "--trust",
            "trust.json",
            "--root-key",
            "root.key.pem",
            "--key",
            "rt.pub.pem",
            "--role",
            "rtcore",
        ],
    );
    write_manifest(d, "rt_manifest.json", "RealTimeCapable", "/fw.elf");
    let mut elf = vec![0u8; 52];
    elf[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
    elf[16] = 2;
    elf[18] = 40;
    elf.extend_from_slice(b"code");
    fs::write(d.join("fw.elf"), &elf).unwrap();

    ok(
        d,
        &[
            "rtcore",
            "pack",
            "--manifest",
            "rt_manifest.json",
            "--elf",
            "fw.elf",
            "--key",
            "rt.key.pem",
            "--version",
            "2",
            "-o",
            "fw.wpkg",
        ],
    );
    let v = json(
        d,
        &[
            "rtcore",
            "verify",
            "fw.wpkg",
            "--trust",
            "trust.json",
            "--json",
        ],
    );
    assert_eq!(v["kind"], "rtcore");
    assert_eq!(v["entry_format"], "elf-arm32");
    let err = fails(d, &["app", "verify", "fw.wpkg", "--trust", "trust.json"]);
    assert!(
        err.contains("is an rtcore package, not an app package"),
        "{err}"
    );

    let err = fails(
        d,
        &[
            "rtcore",
            "pack",
            "--manifest",
            "app_manifest.json",
            "--elf",
            "fw.elf",
            "--key",
            "rt.key.pem",
            "--version",
            "2",
            "-o",
            "bad.wpkg",
        ],
    );
    assert!(
        err.contains("needs ApplicationType RealTimeCapable"),
        "{err}"
    );
    assert!(
        !d.join("bad.wpkg").exists(),
        "a refused pack left a file behind"
    );

    elf[18] = 62;
    fs::write(d.join("x86.elf"), &elf).unwrap();
    let err = fails(
        d,
        &[
            "rtcore",
            "pack",
            "--manifest",
            "rt_manifest.json",
            "--elf",
            "x86.elf",
            "--key",
            "rt.key.pem",
            "--version",
            "2",
            "-o",
            "bad.wpkg",
        ],
    );
    assert!(err.contains("is not ARM code (e_machine = 62"), "{err}");
}

#[test]
fn pack_checks_its_inputs() {
    let tmp = setup();
    let d = tmp.path();
    fs::write(d.join("script.sh"), b"#!/bin/sh\n").unwrap();
    let err = fails(
        d,
        &[
            "app",
            "pack",
            "--manifest",
            "app_manifest.json",
            "--wasm",
            "script.sh",
            "--key",
            "app.key.pem",
            "--version",
            "1",
            "-o",
            "a.wpkg",
        ],
    );
    assert!(
        err.contains("entry payload `bin/app` does not start with the WebAssembly magic"),
        "{err}"
    );

    let err = fails(
        d,
        &[
            "app",
            "pack",
            "--manifest",
            "app_manifest.json",
            "--wasm",
            "app.wasm",
            "--key",
            "app.key.pem",
            "--version",
            "1",
            "--resource",
            "../etc/passwd=data.txt",
            "-o",
            "a.wpkg",
        ],
    );
    assert!(err.contains("has a `..` path segment"), "{err}");

    let err = fails(
        d,
        &[
            "app",
            "pack",
            "--manifest",
            "app_manifest.json",
            "--wasm",
            "missing.wasm",
            "--key",
            "app.key.pem",
            "--version",
            "1",
            "-o",
            "a.wpkg",
        ],
    );
    assert!(err.contains("missing.wasm"), "{err}");

    fs::write(d.join("bad_manifest.json"), b"{\"SchemaVersion\": 2}").unwrap();
    let err = fails(
        d,
        &[
            "app",
            "pack",
            "--manifest",
            "bad_manifest.json",
            "--wasm",
            "app.wasm",
            "--key",
            "app.key.pem",
            "--version",
            "1",
            "-o",
            "a.wpkg",
        ],
    );
    assert!(err.contains("bad_manifest.json"), "{err}");

    let err = fails(
        d,
        &[
            "app",
            "pack",
            "--manifest",
            "app_manifest.json",
            "--wasm",
            "app.wasm",
            "--key",
            "app.pub.pem",
            "--version",
            "1",
            "-o",
            "a.wpkg",
        ],
    );
    assert!(err.contains("cannot read private key app.pub.pem"), "{err}");

    // Manifest warnings do not refuse a package, but are shown.
    let text = fs::read_to_string(d.join("app_manifest.json")).unwrap();
    fs::write(
        d.join("warn.json"),
        text.replacen('{', "{\"MallocVersion\": 1, ", 1),
    )
    .unwrap();
    let out = ok(
        d,
        &[
            "app",
            "pack",
            "--manifest",
            "warn.json",
            "--wasm",
            "app.wasm",
            "--key",
            "app.key.pem",
            "--version",
            "1",
            "-o",
            "w.wpkg",
        ],
    );
    assert!(
        out.contains("warn.json:1:19: warning: MallocVersion: has no effect"),
        "{out}"
    );
    let v = json(
        d,
        &["app", "verify", "w.wpkg", "--trust", "trust.json", "--json"],
    );
    assert!(
        v["manifest_warnings"][0]
            .as_str()
            .unwrap()
            .contains("MallocVersion"),
        "{v}"
    );

    pack(d, "app.key.pem", "1", "a.wpkg");
    let err = fails(
        d,
        &[
            "app",
            "pack",
            "--manifest",
            "app_manifest.json",
            "--wasm",
            "app.wasm",
            "--key",
            "app.key.pem",
            "--version",
            "2",
            "-o",
            "a.wpkg",
        ],
    );
    assert!(err.contains("a.wpkg already exists"), "{err}");
    assert!(
        fs::read_dir(d).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".warden-")),
        "temporary file left behind"
    );
}

#[test]
fn keys_new_creates_a_private_key_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["keys", "new", "--role", "app", "-o", "keys/dev"]);
    let mode = fs::metadata(d.join("keys/dev"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    assert!(d.join("keys/dev/app.key.pem").is_file());
}
