//! The trust file: building it, and refusing every way of tampering with it.

// Helpers outside `#[test]` functions are not covered by clippy's test exemption; a failing
// helper should panic the test that called it.
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use warden_policy::envelope::Envelope;
use warden_policy::keys::{KeyRole, PrivateKey};
use warden_policy::rollback::{self, RollbackDecision};
use warden_policy::trust::{TRUST_KEYS_PAYLOAD_TYPE, TrustError, TrustStore};

fn key() -> PrivateKey {
    PrivateKey::generate().unwrap()
}

fn load(json: &str) -> Result<TrustStore, TrustError> {
    TrustStore::from_json(json.as_bytes())
}

fn refusal(json: &str) -> String {
    load(json).map(|_| ()).unwrap_err().to_string()
}

/// Decodes the signed key list, lets `edit` change it, and puts it back *without* re-signing.
fn edit_payload(file: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(file).unwrap();
    let bytes = STANDARD
        .decode(v["keys"]["payload"].as_str().unwrap())
        .unwrap();
    let mut payload: Value = serde_json::from_slice(&bytes).unwrap();
    edit(&mut payload);
    v["keys"]["payload"] = STANDARD.encode(payload.to_string()).into();
    v.to_string()
}

/// Replaces the key list with `payload`, correctly signed by `signer`.
fn resign(file: &str, payload: &Value, signer: &PrivateKey) -> String {
    let mut v: Value = serde_json::from_str(file).unwrap();
    let env = Envelope::sign(
        TRUST_KEYS_PAYLOAD_TYPE,
        payload.to_string().as_bytes(),
        &[signer],
    )
    .unwrap();
    v["keys"] = serde_json::to_value(env).unwrap();
    v.to_string()
}

fn payload_of(file: &str) -> Value {
    let v: Value = serde_json::from_str(file).unwrap();
    serde_json::from_slice(
        &STANDARD
            .decode(v["keys"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn init_add_and_query() {
    let root = key();
    let app = key();
    let dev = key();
    let t0 = TrustStore::init(&root, "factory root").unwrap();
    let s0 = load(&t0).unwrap();
    assert_eq!(s0.version(), 1);
    assert!(s0.keys().is_empty());
    assert_eq!(s0.roots()[0].id(), root.id());
    assert!(s0.is_trusted_for(&root.id(), KeyRole::Root));

    let t1 =
        TrustStore::add_key(t0.as_bytes(), &root, app.public_key(), KeyRole::App, "ci").unwrap();
    let t2 = TrustStore::add_key(
        t1.as_bytes(),
        &root,
        dev.public_key(),
        KeyRole::Development,
        "alice",
    )
    .unwrap();
    let s2 = load(&t2).unwrap();
    assert_eq!(s2.version(), 3);
    assert!(s2.is_trusted_for(&app.id(), KeyRole::App));
    assert!(!s2.is_trusted_for(&app.id(), KeyRole::Rtcore));
    assert!(!s2.is_trusted_for(&app.id(), KeyRole::Root));
    assert!(s2.is_trusted_for(&dev.id(), KeyRole::Development));
    assert_eq!(s2.lookup(&dev.id()).unwrap().comment, "alice");
    assert!(s2.lookup(&key().id()).is_none());

    // The trust document follows the package rollback rule.
    let r1 = load(&t1).unwrap().rollback_record();
    let r2 = s2.rollback_record();
    assert_eq!(
        rollback::check(Some(&r1), &r2),
        Ok(RollbackDecision::Upgrade { from: 2 })
    );
    assert!(rollback::check(Some(&r2), &r1).is_err());
    assert_eq!(
        rollback::check(Some(&r2), &r2),
        Ok(RollbackDecision::Reinstall)
    );
}

#[test]
fn add_refuses_duplicates_root_roles_and_foreign_roots() {
    let root = key();
    let app = key();
    let t = TrustStore::init(&root, "").unwrap();
    let t = TrustStore::add_key(t.as_bytes(), &root, app.public_key(), KeyRole::App, "").unwrap();

    let e = TrustStore::add_key(t.as_bytes(), &root, app.public_key(), KeyRole::Rtcore, "")
        .unwrap_err();
    assert!(
        matches!(e, TrustError::DuplicateKey { id } if id == app.id()),
        "{e}"
    );
    let e =
        TrustStore::add_key(t.as_bytes(), &root, root.public_key(), KeyRole::App, "").unwrap_err();
    assert!(matches!(e, TrustError::DuplicateKey { .. }), "{e}");
    let e = TrustStore::add_key(t.as_bytes(), &root, key().public_key(), KeyRole::Root, "")
        .unwrap_err();
    assert!(matches!(e, TrustError::RootInKeyList { .. }), "{e}");
    let e =
        TrustStore::add_key(t.as_bytes(), &app, key().public_key(), KeyRole::App, "").unwrap_err();
    assert!(
        matches!(e, TrustError::NotARootKey { id } if id == app.id()),
        "{e}"
    );
    let e = TrustStore::add_key(
        t.as_bytes(),
        &root,
        key().public_key(),
        KeyRole::App,
        &"x".repeat(300),
    )
    .unwrap_err();
    assert!(matches!(e, TrustError::CommentTooLong { .. }), "{e}");
}

#[test]
fn a_role_changed_without_re_signing_is_refused() {
    let root = key();
    let app = key();
    let t = TrustStore::init(&root, "").unwrap();
    let t = TrustStore::add_key(t.as_bytes(), &root, app.public_key(), KeyRole::App, "").unwrap();
    let tampered = edit_payload(&t, |p| p["keys"][0]["role"] = json!("os"));
    let msg = refusal(&tampered);
    assert!(
        msg.starts_with("trust key list: signature by root key"),
        "{msg}"
    );
    assert!(msg.ends_with("signature does not verify"), "{msg}");

    let bumped = edit_payload(&t, |p| p["version"] = json!(99));
    assert!(refusal(&bumped).contains("signature does not verify"));
}

#[test]
fn a_key_list_signed_by_anyone_but_root_is_refused() {
    let root = key();
    let app = key();
    let t = TrustStore::init(&root, "").unwrap();
    let t = TrustStore::add_key(t.as_bytes(), &root, app.public_key(), KeyRole::App, "").unwrap();
    let payload = payload_of(&t);
    let msg = refusal(&resign(&t, &payload, &app));
    assert!(
        msg.contains("not signed by any key trusted for role root"),
        "{msg}"
    );

    // Swapping in another root key (and re-signing with it) is a different anchor, not this one:
    // the trust file must be replaced whole, through the signed OS image.
    let mut v: Value = serde_json::from_str(&t).unwrap();
    let other = key();
    v["root_keys"][0]["id"] = json!(other.id().to_string());
    assert!(refusal(&v.to_string()).contains(&format!("key listed as {}", other.id())));
}

#[test]
fn signed_lists_that_break_a_rule_are_refused() {
    let root = key();
    let app = key();
    let t = TrustStore::init(&root, "").unwrap();
    let t = TrustStore::add_key(t.as_bytes(), &root, app.public_key(), KeyRole::App, "").unwrap();
    let base = payload_of(&t);
    let entry = base["keys"][0].clone();

    let mut dup = base.clone();
    dup["keys"].as_array_mut().unwrap().push(entry.clone());
    let msg = refusal(&resign(&t, &dup, &root));
    assert_eq!(msg, format!("key {} is listed more than once", app.id()));

    let mut dup_role = base.clone();
    let mut other_role = entry.clone();
    other_role["role"] = json!("rtcore");
    dup_role["keys"].as_array_mut().unwrap().push(other_role);
    assert!(refusal(&resign(&t, &dup_role, &root)).contains("listed more than once"));

    let mut rooted = base.clone();
    rooted["keys"][0]["role"] = json!("root");
    assert!(refusal(&resign(&t, &rooted, &root)).contains("is listed with role root"));

    let mut wrong_id = base.clone();
    wrong_id["keys"][0]["id"] = json!(key().id().to_string());
    assert!(refusal(&resign(&t, &wrong_id, &root)).contains("actually has id"));

    let mut zero = base.clone();
    zero["version"] = json!(0);
    assert!(refusal(&resign(&t, &zero, &root)).contains("version is 0"));

    let mut unknown = base.clone();
    unknown["extra"] = json!(true);
    assert!(refusal(&resign(&t, &unknown, &root)).contains("unknown field `extra`"));

    let mut bad_role = base.clone();
    bad_role["keys"][0]["role"] = json!("admin");
    assert!(refusal(&resign(&t, &bad_role, &root)).contains("unknown variant `admin`"));

    let mut bad_pem = base.clone();
    bad_pem["keys"][0]["public_key"] =
        json!("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    assert!(refusal(&resign(&t, &bad_pem, &root)).contains("cannot be read"));
}

#[test]
fn the_outer_file_is_strict() {
    let root = key();
    let t = TrustStore::init(&root, "").unwrap();
    let mut v: Value = serde_json::from_str(&t).unwrap();
    v["extra"] = json!(1);
    assert!(refusal(&v.to_string()).contains("unknown field `extra`"));

    let mut v: Value = serde_json::from_str(&t).unwrap();
    v["format"] = json!(2);
    assert!(refusal(&v.to_string()).contains("format is 2"));

    let mut v: Value = serde_json::from_str(&t).unwrap();
    v["root_keys"] = json!([]);
    assert!(refusal(&v.to_string()).contains("lists no root key"));

    let mut v: Value = serde_json::from_str(&t).unwrap();
    v["keys"]["payloadType"] = json!("application/vnd.warden.unlock+json");
    assert!(refusal(&v.to_string()).contains("payloadType"));

    let big = " ".repeat((1 << 20) + 1);
    assert!(refusal(&big).contains("more than the limit"));
    assert!(refusal("").contains("not valid"));
}
