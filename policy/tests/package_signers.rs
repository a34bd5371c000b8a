//! Who may sign what: key roles, unknown keys, development keys and unlock tokens, and the
//! rollback rule applied to verified packages.

// Helpers outside `#[test]` functions are not covered by clippy's test exemption; a failing
// helper should panic the test that called it.
#![allow(clippy::unwrap_used)]

mod package_fixtures;

use package_fixtures::{Keys, pack_app, pack_rtcore, wasm_module};
use warden_policy::keys::KeyRole;
use warden_policy::package::{self, Discard, Limits, PackageError, VerifiedPackage};
use warden_policy::rollback::{self, RollbackDecision, RollbackError};
use warden_policy::trust::{TrustError, TrustStore, UnlockError, UnlockToken, VerifyContext};

const DEVICE: &str = "a1b2c3d4e5f6";
const NOW: u64 = 1_750_000_000;

fn verify(
    bytes: &[u8],
    trust: &TrustStore,
    ctx: &VerifyContext,
) -> Result<VerifiedPackage, PackageError> {
    package::verify(bytes, trust, ctx, &Limits::default(), &mut Discard)
}

fn locked() -> VerifyContext {
    VerifyContext::locked(NOW)
}

fn token(
    keys: &Keys,
    signer: &warden_policy::keys::PrivateKey,
    device: &str,
    expires: u64,
) -> UnlockToken {
    let json = TrustStore::issue_unlock(signer, device, expires, &[keys.dev.id()]).unwrap();
    UnlockToken::from_json(json.as_bytes()).unwrap()
}

fn signer_error(r: Result<VerifiedPackage, PackageError>) -> TrustError {
    match r {
        Err(PackageError::Signer(e)) => e,
        Err(other) => panic!("expected a signer error, got: {other}"),
        Ok(_) => panic!("expected a signer error, got success"),
    }
}

#[test]
fn app_and_rtcore_keys_sign_their_own_kind() {
    let keys = Keys::new();
    let trust = keys.trust();
    let app = verify(
        &pack_app(&keys.app, 1, &wasm_module(b""), &[]),
        &trust,
        &locked(),
    )
    .unwrap();
    assert_eq!(app.signer(), keys.app.id());
    assert_eq!(app.signer_role(), KeyRole::App);
    assert!(!app.via_unlock());
    let rt = verify(&pack_rtcore(&keys.rtcore, 1), &trust, &locked()).unwrap();
    assert_eq!(rt.signer_role(), KeyRole::Rtcore);
    assert_eq!(rt.manifest().entry_payload_name(), "fw.elf");
}

#[test]
fn a_key_of_the_wrong_role_is_refused() {
    let keys = Keys::new();
    let trust = keys.trust();
    let entry = wasm_module(b"");
    for (key, role) in [
        (&keys.rtcore, "rtcore"),
        (&keys.os, "os"),
        (&keys.root, "root"),
    ] {
        let e = signer_error(verify(&pack_app(key, 1, &entry, &[]), &trust, &locked()));
        assert!(
            matches!(e, TrustError::WrongRole { role: r, .. } if r.as_str() == role),
            "{e}"
        );
        assert!(e.to_string().starts_with("wrong key role: key "), "{e}");
        assert!(
            e.to_string().contains(&format!("has role {role}, but app")),
            "{e}"
        );
    }
    let e = signer_error(verify(&pack_rtcore(&keys.app, 1), &trust, &locked()));
    assert!(e.to_string().contains("has role app, but rtcore"), "{e}");
}

#[test]
fn an_unknown_key_is_refused() {
    let keys = Keys::new();
    let e = signer_error(verify(
        &pack_app(&keys.unlisted, 1, &wasm_module(b""), &[]),
        &keys.trust(),
        &locked(),
    ));
    assert!(
        matches!(e, TrustError::UnknownKey { id } if id == keys.unlisted.id()),
        "{e}"
    );
}

#[test]
fn a_development_key_needs_a_valid_unlock_token() {
    let keys = Keys::new();
    let trust = keys.trust();
    let pkg = pack_app(&keys.dev, 1, &wasm_module(b""), &[]);

    // No token.
    let e = signer_error(verify(&pkg, &trust, &locked()));
    assert!(matches!(e, TrustError::DevelopmentKeyLocked { .. }), "{e}");

    // A token for another device.
    let ctx = VerifyContext::unlocked(
        DEVICE,
        NOW,
        token(&keys, &keys.root, "other-device", NOW + 60),
    );
    let e = signer_error(verify(&pkg, &trust, &ctx));
    assert!(
        matches!(e, TrustError::Unlock(UnlockError::WrongDevice { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("other-device"), "{e}");

    // An expired token (expiry is exclusive).
    for expires in [NOW - 1, NOW] {
        let ctx = VerifyContext::unlocked(DEVICE, NOW, token(&keys, &keys.root, DEVICE, expires));
        let e = signer_error(verify(&pkg, &trust, &ctx));
        assert!(
            matches!(e, TrustError::Unlock(UnlockError::Expired { .. })),
            "{e}"
        );
    }

    // A token not signed by root: by the app key, by the development key itself.
    for signer in [&keys.app, &keys.dev, &keys.unlisted] {
        let ctx = VerifyContext::unlocked(DEVICE, NOW, token(&keys, signer, DEVICE, NOW + 60));
        let e = signer_error(verify(&pkg, &trust, &ctx));
        assert!(
            matches!(e, TrustError::Unlock(UnlockError::Envelope(_))),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("not signed by any key trusted for role root"),
            "{e}"
        );
    }

    // A valid token that does not list this key.
    let other_dev = warden_policy::keys::PrivateKey::generate().unwrap();
    let json = TrustStore::issue_unlock(&keys.root, DEVICE, NOW + 60, &[other_dev.id()]).unwrap();
    let ctx = VerifyContext::unlocked(
        DEVICE,
        NOW,
        UnlockToken::from_json(json.as_bytes()).unwrap(),
    );
    let e = signer_error(verify(&pkg, &trust, &ctx));
    assert!(
        matches!(e, TrustError::Unlock(UnlockError::KeyNotListed { .. })),
        "{e}"
    );

    // A token without a device id to compare with.
    let mut ctx = VerifyContext::unlocked(DEVICE, NOW, token(&keys, &keys.root, DEVICE, NOW + 60));
    ctx.device_id = None;
    let e = signer_error(verify(&pkg, &trust, &ctx));
    assert!(
        matches!(e, TrustError::Unlock(UnlockError::NoDeviceId)),
        "{e}"
    );

    // A valid token: accepted, and it says so.
    let ctx = VerifyContext::unlocked(DEVICE, NOW, token(&keys, &keys.root, DEVICE, NOW + 60));
    let v = verify(&pkg, &trust, &ctx).unwrap();
    assert!(v.via_unlock());
    assert_eq!(v.signer_role(), KeyRole::Development);
    // Development keys sign real-time firmware too, under the same token.
    assert!(
        verify(&pack_rtcore(&keys.dev, 1), &trust, &ctx)
            .unwrap()
            .via_unlock()
    );
}

#[test]
fn an_unlock_token_changed_after_signing_is_refused() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let keys = Keys::new();
    let trust = keys.trust();
    let json =
        TrustStore::issue_unlock(&keys.root, "device-a", NOW + 60, &[keys.dev.id()]).unwrap();
    let mut env: serde_json::Value = serde_json::from_str(&json).unwrap();
    let payload = STANDARD.decode(env["payload"].as_str().unwrap()).unwrap();
    let payload = String::from_utf8(payload)
        .unwrap()
        .replace("device-a", "device-b");
    env["payload"] = STANDARD.encode(payload).into();
    let token = UnlockToken::from_json(env.to_string().as_bytes()).unwrap();
    let e = trust.verify_unlock(&token, "device-b", NOW).unwrap_err();
    assert!(e.to_string().contains("does not verify"), "{e}");
}

#[test]
fn rollback_rule_on_verified_packages() {
    let keys = Keys::new();
    let trust = keys.trust();
    let v = |version, tag: &[u8]| {
        verify(
            &pack_app(&keys.app, version, &wasm_module(tag), &[]),
            &trust,
            &locked(),
        )
        .unwrap()
        .rollback_record()
    };
    let v5 = v(5, b"five");
    assert_eq!(
        rollback::check(None, &v5),
        Ok(RollbackDecision::FirstInstall)
    );
    // Older: refused.
    assert_eq!(
        rollback::check(Some(&v5), &v(4, b"four")),
        Err(RollbackError::Older {
            candidate: 4,
            seen: 5
        })
    );
    // Same version, same content (a re-pack is byte-identical: RFC 6979 signatures are
    // deterministic): accepted as a reinstall.
    assert_eq!(
        rollback::check(Some(&v5), &v(5, b"five")),
        Ok(RollbackDecision::Reinstall)
    );
    // Same version, different content: refused.
    let e = rollback::check(Some(&v5), &v(5, b"other")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("version 5 reused with different content"),
        "{e}"
    );
    // Newer: accepted.
    assert_eq!(
        rollback::check(Some(&v5), &v(6, b"six")),
        Ok(RollbackDecision::Upgrade { from: 5 })
    );
}
