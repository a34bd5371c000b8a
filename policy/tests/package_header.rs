//! What is checked after the signature: a correctly signed header that breaks a rule is still
//! refused, with a message naming the rule. And what `pack` refuses to build.

// Helpers outside `#[test]` functions are not covered by clippy's test exemption; a failing
// helper should panic the test that called it.
#![allow(clippy::unwrap_used)]

mod package_fixtures;

use package_fixtures::{
    Keys, app_header, arm_elf, manifest, raw_package, sha256_hex, wasm_component, wasm_module,
};
use serde_json::json;
use warden_policy::package::{
    self, Discard, EntryFormat, Limits, PackError, PackRequest, PackageError, PackageKind,
    PayloadInput, PayloadRole, VerifiedPackage,
};
use warden_policy::trust::VerifyContext;

fn verify_raw(
    keys: &Keys,
    kind: u8,
    header: &serde_json::Value,
    payloads: &[u8],
) -> Result<VerifiedPackage, PackageError> {
    verify_raw_text(keys, kind, &header.to_string(), payloads)
}

fn verify_raw_text(
    keys: &Keys,
    kind: u8,
    header: &str,
    payloads: &[u8],
) -> Result<VerifiedPackage, PackageError> {
    let key = if kind == 2 { &keys.rtcore } else { &keys.app };
    let bytes = raw_package(kind, header, key, payloads);
    package::verify(
        &bytes[..],
        &keys.trust(),
        &VerifyContext::locked(0),
        &Limits::default(),
        &mut Discard,
    )
}

fn refusal(r: Result<VerifiedPackage, PackageError>) -> String {
    match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_raw_writer_agrees_with_pack() {
    let keys = Keys::new();
    let entry = wasm_module(b"x");
    verify_raw(&keys, 1, &app_header(&entry), &entry).unwrap();
}

/// A change to a valid header.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn signed_but_malformed_headers_are_refused() {
    let keys = Keys::new();
    let entry = wasm_module(b"x");
    let cases: Vec<(&str, Edit)> = vec![
        ("unknown field `extra`", Box::new(|h| h["extra"] = json!(1))),
        (
            "unknown field `mode`",
            Box::new(|h| h["payloads"][0]["mode"] = json!(1)),
        ),
        (
            "missing field `version`",
            Box::new(|h| {
                h.as_object_mut().unwrap().remove("version");
            }),
        ),
        (
            "field `version`: is 0",
            Box::new(|h| h["version"] = json!(0)),
        ),
        ("field `format`: is 2", Box::new(|h| h["format"] = json!(2))),
        (
            "field `kind`: is rtcore, but the prefix says app",
            Box::new(|h| h["kind"] = json!("rtcore")),
        ),
        (
            "not in lower-case canonical form",
            Box::new(|h| h["component_id"] = json!("1689D8B2-C835-2E27-27AD-E894D6D15FA9")),
        ),
        (
            "manifest ComponentId is `1689d8b2-c835-2e27-27ad-e894d6d15fa9` but the package header says 00000000-0000-0000-0000-000000000001",
            Box::new(|h| h["component_id"] = json!("00000000-0000-0000-0000-000000000001")),
        ),
        (
            "manifest Name is `blink`",
            Box::new(|h| h["name"] = json!("other")),
        ),
        (
            "manifest EntryPoint is `/bin/app` but the package header says entry payload `bin/main`",
            Box::new(|h| h["payloads"][0]["name"] = json!("bin/main")),
        ),
        (
            "manifest in package is refused",
            Box::new(|h| h["manifest"] = json!("{}")),
        ),
        (
            "field `entry_format`: elf-arm32 is not a format for a app package",
            Box::new(|h| h["entry_format"] = json!("elf-arm32")),
        ),
        (
            "entry payload `bin/app` is a wasm-module but the header says wasm-component",
            Box::new(|h| h["entry_format"] = json!("wasm-component")),
        ),
        (
            "is not a SHA-256 digest (expected 64 lower-case hex digits)",
            Box::new(|h| h["payloads"][0]["sha256"] = json!(sha256_hex(b"x").to_uppercase())),
        ),
        (
            "field `payloads[0].target`: is only allowed on precompiled payloads",
            Box::new(|h| h["payloads"][0]["target"] = json!("x86_64")),
        ),
        (
            "field `payloads[0].engine`: is only allowed on precompiled payloads",
            Box::new(|h| h["payloads"][0]["engine"] = json!("wasmtime-48")),
        ),
        (
            "has 0 entry payloads",
            Box::new(|h| h["payloads"][0]["role"] = json!("resource")),
        ),
        (
            "field `payloads`: is empty",
            Box::new(|h| h["payloads"] = json!([])),
        ),
        (
            "payload `bin/app` is 67108865 bytes, more than the limit of 67108864",
            Box::new(|h| h["payloads"][0]["size"] = json!(64u64 * 1024 * 1024 + 1)),
        ),
        (
            "payload `bin/app` does not match its signed digest",
            Box::new(|h| h["payloads"][0]["sha256"] = json!(sha256_hex(b"other"))),
        ),
        (
            "truncated in payload `bin/app`",
            Box::new(|h| h["payloads"][0]["size"] = json!(1000)),
        ),
    ];
    for (expected, edit) in cases {
        let mut h = app_header(&entry);
        edit(&mut h);
        let msg = refusal(verify_raw(&keys, 1, &h, &entry));
        assert!(msg.contains(expected), "expected {expected:?} in: {msg}");
    }
}

#[test]
fn kind_follows_the_prefix() {
    // An app manifest in an rtcore package, correctly signed by the rtcore key.
    let keys = Keys::new();
    let elf = arm_elf();
    let mut h = app_header(&elf);
    h["kind"] = json!("rtcore");
    h["entry_format"] = json!("elf-arm32");
    let msg = refusal(verify_raw(&keys, 2, &h, &elf));
    assert!(
        msg.contains(
            "manifest ApplicationType is `Default` but the package header says kind rtcore"
        ),
        "{msg}"
    );
}

#[test]
fn payload_names_and_lists_are_checked_after_the_signature() {
    let keys = Keys::new();
    let entry = wasm_module(b"x");
    let res = |name: &str| json!({"name": name, "role": "resource", "size": 0, "sha256": sha256_hex(b"")});
    for (name, expected) in [
        ("../etc/passwd", "has a `..` path segment"),
        ("/abs", "is absolute"),
        ("a//b", "empty path segment"),
        ("a b", "contains ' '"),
        ("bin/app", "is used by two payloads"),
        (
            "bin/app/x",
            "`bin/app` is both a payload and a directory of payload `bin/app/x`",
        ),
    ] {
        let mut h = app_header(&entry);
        h["payloads"].as_array_mut().unwrap().push(res(name));
        let msg = refusal(verify_raw(&keys, 1, &h, &entry));
        assert!(
            msg.contains(expected),
            "{name}: expected {expected:?} in: {msg}"
        );
    }
    // Precompiled code needs a target, unique per (target, engine).
    let pre = |target: Option<&str>| {
        let mut p = json!({"name": format!("pre/{}", target.unwrap_or("none")), "role": "precompiled", "size": 0, "sha256": sha256_hex(b"")});
        if let Some(t) = target {
            p["target"] = json!(t);
        }
        p
    };
    let mut h = app_header(&entry);
    h["payloads"].as_array_mut().unwrap().push(pre(None));
    assert!(refusal(verify_raw(&keys, 1, &h, &entry)).contains("is required for precompiled code"));
    let mut h = app_header(&entry);
    h["payloads"]
        .as_array_mut()
        .unwrap()
        .push(pre(Some("pulley32")));
    verify_raw(&keys, 1, &h, &entry).unwrap();
    let mut second = pre(Some("pulley32"));
    second["name"] = json!("pre/again");
    h["payloads"].as_array_mut().unwrap().push(second);
    assert!(refusal(verify_raw(&keys, 1, &h, &entry)).contains("same target and engine"));
}

#[test]
fn a_header_that_is_not_json_is_refused_after_the_signature() {
    let keys = Keys::new();
    let msg = refusal(verify_raw_text(&keys, 1, "not json", b""));
    assert!(
        msg.starts_with("signed package header is not valid JSON"),
        "{msg}"
    );
    let entry = wasm_module(b"x");
    let dup = app_header(&entry)
        .to_string()
        .replacen("{", "{\"version\":2,", 1);
    let msg = refusal(verify_raw_text(&keys, 1, &dup, &entry));
    assert!(msg.contains("duplicate field `version`"), "{msg}");
}

#[test]
fn limits_apply_before_reading_payloads() {
    let keys = Keys::new();
    let entry = wasm_module(b"x");
    let mut h = app_header(&entry);
    let big = json!({"name": "big.bin", "role": "resource", "size": 600u64 << 20, "sha256": sha256_hex(b"")});
    h["payloads"].as_array_mut().unwrap().push(big);
    let msg = refusal(verify_raw(&keys, 1, &h, &entry));
    assert!(
        msg.contains("payload `big.bin` is 629145600 bytes, more than the limit of 268435456"),
        "{msg}"
    );

    let bytes = raw_package(1, &app_header(&entry).to_string(), &keys.app, &entry);
    let tight = Limits {
        max_entry_size: 8,
        ..Limits::default()
    };
    let err = package::verify(
        &bytes[..],
        &keys.trust(),
        &VerifyContext::locked(0),
        &tight,
        &mut Discard,
    )
    .unwrap_err();
    assert!(matches!(err, PackageError::PayloadTooLarge { .. }), "{err}");
    let tight = Limits {
        max_header_len: 16,
        ..Limits::default()
    };
    let err = package::verify(
        &bytes[..],
        &keys.trust(),
        &VerifyContext::locked(0),
        &tight,
        &mut Discard,
    )
    .unwrap_err();
    assert!(
        matches!(err, PackageError::HeaderLength { max: 16, .. }),
        "{err}"
    );
}

fn pack_with(
    kind: PackageKind,
    manifest_text: &str,
    payloads: Vec<PayloadInput<'_>>,
) -> Result<Vec<u8>, PackError> {
    let keys_key = warden_policy::keys::PrivateKey::generate().unwrap();
    let request = PackRequest {
        kind,
        manifest_text,
        version: 1,
        payloads,
        limits: Limits::default(),
    };
    let mut out = Vec::new();
    package::pack(&request, &keys_key, &mut out).map(|_| out)
}

fn entry_input<'a>(name: &str, source: &'a dyn package::PayloadSource) -> PayloadInput<'a> {
    PayloadInput {
        name: name.into(),
        role: PayloadRole::Entry,
        target: None,
        engine: None,
        source,
    }
}

#[test]
fn pack_refuses_what_verify_would_refuse() {
    let wasm = wasm_module(b"x");
    let elf = arm_elf();
    let app = manifest("Default", "/bin/app");
    let rt = manifest("RealTimeCapable", "/fw.elf");

    let e = pack_with(
        PackageKind::Rtcore,
        &app,
        vec![entry_input("bin/app", &elf)],
    )
    .unwrap_err();
    assert!(
        e.to_string().contains(
            "ApplicationType is Default, but a rtcore package needs ApplicationType RealTimeCapable"
        ),
        "{e}"
    );

    let e = pack_with(PackageKind::App, &app, vec![entry_input("bin/main", &wasm)]).unwrap_err();
    assert!(matches!(e, PackError::EntryName { .. }), "{e}");

    let not_wasm = b"#!/bin/sh\necho hi\n".to_vec();
    let e = pack_with(
        PackageKind::App,
        &app,
        vec![entry_input("bin/app", &not_wasm)],
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("does not start with the WebAssembly magic"),
        "{e}"
    );

    let e = pack_with(PackageKind::Rtcore, &rt, vec![entry_input("fw.elf", &wasm)]).unwrap_err();
    assert!(
        e.to_string().contains("too short for a 32-bit ELF header"),
        "{e}"
    );
    let mut elf64 = elf.clone();
    elf64[4] = 2;
    let e = pack_with(
        PackageKind::Rtcore,
        &rt,
        vec![entry_input("fw.elf", &elf64)],
    )
    .unwrap_err();
    assert!(e.to_string().contains("EI_CLASS = 2"), "{e}");
    let mut x86 = elf.clone();
    x86[18] = 3;
    let e = pack_with(PackageKind::Rtcore, &rt, vec![entry_input("fw.elf", &x86)]).unwrap_err();
    assert!(e.to_string().contains("e_machine = 3"), "{e}");
    let mut dyn_elf = elf.clone();
    dyn_elf[16] = 3;
    let e = pack_with(
        PackageKind::Rtcore,
        &rt,
        vec![entry_input("fw.elf", &dyn_elf)],
    )
    .unwrap_err();
    assert!(e.to_string().contains("e_type = 3"), "{e}");

    let e = pack_with(PackageKind::App, "{", vec![entry_input("bin/app", &wasm)]).unwrap_err();
    assert!(matches!(e, PackError::Manifest(_)), "{e}");

    let e = pack_with(PackageKind::App, &app, vec![]).unwrap_err();
    assert!(e.to_string().contains("is empty"), "{e}");

    let mut ps = vec![entry_input("bin/app", &wasm)];
    ps.push(PayloadInput {
        name: "pre/x".into(),
        role: PayloadRole::Precompiled,
        target: None,
        engine: None,
        source: &wasm,
    });
    let e = pack_with(PackageKind::App, &app, ps).unwrap_err();
    assert!(
        e.to_string().contains("is required for precompiled code"),
        "{e}"
    );

    pack_with(PackageKind::App, &app, vec![entry_input("bin/app", &wasm)]).unwrap();
    let zero = PackRequest {
        kind: PackageKind::App,
        manifest_text: &app,
        version: 0,
        payloads: vec![entry_input("bin/app", &wasm)],
        limits: Limits::default(),
    };
    let key = warden_policy::keys::PrivateKey::generate().unwrap();
    assert!(matches!(
        package::pack(&zero, &key, Vec::new()),
        Err(PackError::VersionZero)
    ));
}

#[test]
fn components_and_precompiled_code_round_trip_through_a_sink() {
    let keys = Keys::new();
    let component = wasm_component();
    let cwasm = b"\x7fELF precompiled".to_vec();
    let manifest_text = manifest("Default", "/bin/app");
    let request = PackRequest {
        kind: PackageKind::App,
        manifest_text: &manifest_text,
        version: 9,
        payloads: vec![
            entry_input("bin/app", &component),
            PayloadInput {
                name: "bin/app.pulley32".into(),
                role: PayloadRole::Precompiled,
                target: Some("pulley32".into()),
                engine: Some("wasmtime-48.0.0;pulley".into()),
                source: &cwasm,
            },
        ],
        limits: Limits::default(),
    };
    let mut bytes = Vec::new();
    let summary = package::pack(&request, &keys.app, &mut bytes).unwrap();
    assert_eq!(summary.total_len, bytes.len() as u64);
    assert_eq!(summary.header.entry_format, EntryFormat::WasmComponent);

    // Any closure returning a writer is a sink.
    let mut opened = Vec::new();
    let mut sink = |entry: &package::PayloadEntry| {
        opened.push(entry.name.clone());
        Ok(std::io::sink())
    };
    package::verify(
        &bytes[..],
        &keys.trust(),
        &VerifyContext::locked(0),
        &Limits::default(),
        &mut sink,
    )
    .unwrap();
    assert_eq!(opened, ["bin/app", "bin/app.pulley32"]);

    let mut collected = Collector::default();
    let v = package::verify(
        &bytes[..],
        &keys.trust(),
        &VerifyContext::locked(0),
        &Limits::default(),
        &mut collected,
    )
    .unwrap();
    assert_eq!(v.header_sha256(), &summary.header_sha256);
    assert_eq!(v.header().entry_format, EntryFormat::WasmComponent);
    assert_eq!(
        collected.finished,
        vec![
            ("bin/app".to_owned(), component.clone()),
            ("bin/app.pulley32".to_owned(), cwasm.clone())
        ]
    );
    let pre = &v.header().payloads[1];
    assert_eq!(pre.target.as_deref(), Some("pulley32"));
    assert_eq!(pre.engine.as_deref(), Some("wasmtime-48.0.0;pulley"));

    // A payload whose digest fails is never finished.
    let mut t = bytes.clone();
    let last = t.len() - 1;
    t[last] ^= 1;
    let mut collected = Collector::default();
    package::verify(
        &t[..],
        &keys.trust(),
        &VerifyContext::locked(0),
        &Limits::default(),
        &mut collected,
    )
    .unwrap_err();
    assert_eq!(
        collected.finished.len(),
        1,
        "only the intact entry was finished"
    );
}

#[derive(Default)]
struct Collector {
    finished: Vec<(String, Vec<u8>)>,
}

impl package::PayloadSink for Collector {
    type Writer = Vec<u8>;
    fn open(&mut self, _: &package::PayloadEntry) -> std::io::Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn finish(&mut self, entry: &package::PayloadEntry, writer: Vec<u8>) -> std::io::Result<()> {
        self.finished.push((entry.name.clone(), writer));
        Ok(())
    }
}
