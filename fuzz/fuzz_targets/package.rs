//! The package reader never panics, on raw bytes and — because a fuzzer cannot forge P-256
//! signatures — on packages whose arbitrary header this target signs with a trusted key, so the
//! post-signature header checks and payload streaming are reached too.
//!
//! Input: first byte even → the rest is a package file as is. First byte odd → byte 1 picks the
//! kind code, bytes 2..4 the header length (little-endian, clamped), then the header bytes, then
//! whatever follows as payload bytes.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use warden_policy::keys::{KeyRole, PrivateKey};
use warden_policy::package::{self, Discard, Limits, MAGIC};
use warden_policy::trust::{TrustStore, VerifyContext};

struct Fixture {
    app: PrivateKey,
    trust: TrustStore,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let root = PrivateKey::generate().expect("root key");
        let app = PrivateKey::generate().expect("app key");
        let json = TrustStore::init(&root, "fuzz root").expect("trust init");
        let json = TrustStore::add_key(
            json.as_bytes(),
            &root,
            &app.public_key(),
            KeyRole::App,
            "fuzz app",
        )
        .expect("trust add");
        let trust = TrustStore::from_json(json.as_bytes()).expect("trust load");
        Fixture { app, trust }
    })
}

fn check(bytes: &[u8]) {
    let f = fixture();
    let limits = Limits::default();
    let ctx = VerifyContext::locked(1_800_000_000);
    let _ = package::inspect_unverified(bytes, &limits);
    if let Ok(verified) = package::verify(bytes, &f.trust, &ctx, &limits, &mut Discard) {
        // Anything accepted is internally consistent.
        let header = verified.header();
        assert_eq!(verified.manifest().component_id, header.component_id);
        assert_eq!(verified.total_len(), bytes.len() as u64);
    }
}

fuzz_target!(|data: &[u8]| {
    match data {
        [mode, rest @ ..] if mode % 2 == 0 => check(rest),
        [_, kind, l0, l1, rest @ ..] => {
            let len = usize::from(u16::from_le_bytes([*l0, *l1])).min(rest.len());
            let (header, payload) = rest.split_at(len);
            let mut file = Vec::with_capacity(16 + header.len() + 96 + payload.len());
            file.extend_from_slice(&MAGIC);
            file.extend_from_slice(&1u16.to_le_bytes());
            file.extend_from_slice(&[kind % 3, 0]);
            file.extend_from_slice(&(header.len() as u32).to_le_bytes());
            file.extend_from_slice(header);
            let digest: [u8; 32] = Sha256::digest(&file).into();
            let f = fixture();
            let signature = f.app.sign_prehash(&digest).expect("sign");
            file.extend_from_slice(f.app.id().as_bytes());
            file.extend_from_slice(&signature);
            file.extend_from_slice(payload);
            check(&file);
        }
        _ => {}
    }
});
