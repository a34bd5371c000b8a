//! A package refuses every single-byte change, every truncation and any appended byte.

// Helpers outside `#[test]` functions are not covered by clippy's test exemption; a failing
// helper should panic the test that called it.
#![allow(clippy::unwrap_used)]

mod package_fixtures;

use package_fixtures::{Keys, pack_app, wasm_module};
use warden_policy::package::{self, Discard, Limits, PackageError};
use warden_policy::trust::{TrustStore, VerifyContext};

fn verify(bytes: &[u8], trust: &TrustStore) -> Result<package::VerifiedPackage, PackageError> {
    package::verify(
        bytes,
        trust,
        &VerifyContext::locked(0),
        &Limits::default(),
        &mut Discard,
    )
}

struct Fixture {
    trust: TrustStore,
    bytes: Vec<u8>,
}

fn fixture() -> Fixture {
    let keys = Keys::new();
    let entry = wasm_module(b"entry");
    let bytes = pack_app(&keys.app, 3, &entry, &[("res/a.txt", b"hello")]);
    Fixture {
        trust: keys.trust(),
        bytes,
    }
}

#[test]
fn the_untouched_package_verifies() {
    let f = fixture();
    let v = verify(&f.bytes, &f.trust).unwrap();
    assert_eq!(v.header().version, 3);
    assert_eq!(v.total_len(), f.bytes.len() as u64);
    // Keep the exhaustive tests below fast: this package is a few hundred bytes.
    assert!(
        f.bytes.len() < 1024,
        "fixture grew to {} bytes",
        f.bytes.len()
    );
}

#[test]
fn every_single_byte_flip_is_refused() {
    let f = fixture();
    for mask in [0x01u8, 0x80] {
        for i in 0..f.bytes.len() {
            let mut t = f.bytes.clone();
            t[i] ^= mask;
            match verify(&t, &f.trust) {
                Err(_) => {}
                Ok(_) => panic!("flipping byte {i} with {mask:#04x} was accepted"),
            }
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let f = fixture();
    for len in 0..f.bytes.len() {
        let err = verify(&f.bytes[..len], &f.trust)
            .err()
            .unwrap_or_else(|| panic!("truncation to {len} bytes was accepted"));
        assert!(
            matches!(err, PackageError::Truncated { .. }),
            "truncation to {len}: {err}"
        );
    }
}

#[test]
fn a_truncated_payload_is_named_with_the_missing_count() {
    let f = fixture();
    let cut = &f.bytes[..f.bytes.len() - 2];
    let err = verify(cut, &f.trust).unwrap_err();
    assert_eq!(
        err.to_string(),
        "package is truncated in payload `res/a.txt`: 2 of 5 bytes missing"
    );
}

#[test]
fn appended_bytes_are_refused() {
    let f = fixture();
    for extra in [&b"\0"[..], b"x", &[0u8; 4096]] {
        let mut t = f.bytes.clone();
        t.extend_from_slice(extra);
        let err = verify(&t, &f.trust).unwrap_err();
        assert!(
            matches!(err, PackageError::TrailingData { ref last } if last == "res/a.txt"),
            "{err}"
        );
    }
}

#[test]
fn flipped_regions_fail_for_the_right_reason() {
    let f = fixture();
    let header_len = u32::from_le_bytes(f.bytes[12..16].try_into().unwrap()) as usize;
    let sig_block = 16 + header_len;

    let mut t = f.bytes.clone();
    t[0] ^= 1;
    assert!(matches!(
        verify(&t, &f.trust),
        Err(PackageError::BadMagic { .. })
    ));

    // A CRLF -> LF conversion (text-mode transfer) breaks the magic.
    let mut t = f.bytes.clone();
    t.remove(4);
    assert!(matches!(
        verify(&t, &f.trust),
        Err(PackageError::BadMagic { .. })
    ));

    let mut t = f.bytes.clone();
    t[16 + 5] ^= 1; // inside the header JSON
    assert!(matches!(
        verify(&t, &f.trust),
        Err(PackageError::Signature { .. })
    ));

    let mut t = f.bytes.clone();
    t[sig_block] ^= 1; // key id
    assert!(matches!(verify(&t, &f.trust), Err(PackageError::Signer(_))));

    let mut t = f.bytes.clone();
    t[sig_block + 32 + 10] ^= 1; // signature
    assert!(matches!(
        verify(&t, &f.trust),
        Err(PackageError::Signature { .. })
    ));

    let mut t = f.bytes.clone();
    let last = t.len() - 1; // payload
    t[last] ^= 1;
    let err = verify(&t, &f.trust).unwrap_err();
    assert!(
        matches!(err, PackageError::PayloadDigest { ref name, .. } if name == "res/a.txt"),
        "{err}"
    );
}

#[test]
fn a_high_s_twin_of_the_signature_is_refused() {
    // Same (r, s) with s replaced by n - s verifies mathematically; the format allows only low-S
    // so a package has exactly one valid encoding.
    use p256::ecdsa::Signature;
    let f = fixture();
    let header_len = u32::from_le_bytes(f.bytes[12..16].try_into().unwrap()) as usize;
    let at = 16 + header_len + 32;
    let sig = Signature::from_slice(&f.bytes[at..at + 64]).unwrap();
    let (r, s) = sig.split_scalars();
    let twin = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    let mut t = f.bytes.clone();
    t[at..at + 64].copy_from_slice(&twin.to_bytes());
    let err = verify(&t, &f.trust).unwrap_err();
    assert!(err.to_string().contains("low-S"), "{err}");
}
