//! Package verification benchmark, driven by `cargo xtask bench`.
//!
//! `verify_bench OUT_DIR` creates a root and an app key, a trust file, and for each payload size
//! a package (`pkg-SIZE.wpkg`) whose entry payload is also written alone (`payload-SIZE.bin`),
//! so external tools can be timed on the same bytes. It then times `package::verify` in process
//! (from memory, discarding payloads) and prints one line per size:
//! `SIZE MEDIAN_NS ITERATIONS`.
// This is a command-line program whose output is its result.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::path::PathBuf;
use std::time::Instant;

use warden_policy::keys::{KeyRole, PrivateKey};
use warden_policy::package::{
    self, Discard, Limits, PackRequest, PackageKind, PayloadInput, PayloadRole,
};
use warden_policy::trust::{TrustStore, VerifyContext};

const SIZES: [usize; 3] = [64 << 10, 1 << 20, 16 << 20];

/// A WebAssembly module of exactly `size` bytes: the header and one custom section of filler.
fn wasm_of_size(size: usize) -> Vec<u8> {
    let name = b"bench";
    let mut out = b"\0asm\x01\0\0\0".to_vec();
    // Section body = name length byte + name + data; its length is LEB128-encoded. Find the data
    // length that makes the whole module `size` bytes.
    let leb = |mut n: usize| {
        let mut v = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                v.push(byte);
                return v;
            }
            v.push(byte | 0x80);
        }
    };
    let mut data_len = size.saturating_sub(out.len() + 1 + 1 + name.len() + 1);
    while out.len() + 1 + leb(1 + name.len() + data_len).len() + 1 + name.len() + data_len > size {
        data_len -= 1;
    }
    out.push(0);
    out.extend(leb(1 + name.len() + data_len));
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    // Deterministic, incompressible-looking filler (xorshift).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    out.extend((0..data_len).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 24) as u8
    }));
    out
}

fn main() -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: verify_bench OUT_DIR")?,
    );
    std::fs::create_dir_all(&out_dir)?;
    let root = PrivateKey::generate()?;
    let app = PrivateKey::generate()?;
    std::fs::write(out_dir.join("app.key.pem"), app.to_pem()?.as_bytes())?;
    std::fs::write(out_dir.join("app.pub.pem"), app.public_key().to_pem()?)?;
    let trust_json = TrustStore::add_key(
        TrustStore::init(&root, "bench root")?.as_bytes(),
        &root,
        app.public_key(),
        KeyRole::App,
        "bench app key",
    )?;
    std::fs::write(out_dir.join("trust.json"), &trust_json)?;
    let trust = TrustStore::from_json(trust_json.as_bytes())?;
    let manifest = r#"{"SchemaVersion": 1, "Name": "bench", "ComponentId": "1689d8b2-c835-2e27-27ad-e894d6d15fa9", "EntryPoint": "/bin/app", "ApplicationType": "Default"}"#;
    let ctx = VerifyContext::locked(0);
    let limits = Limits::default();

    for size in SIZES {
        let payload = wasm_of_size(size);
        assert_eq!(payload.len(), size);
        std::fs::write(out_dir.join(format!("payload-{size}.bin")), &payload)?;
        let request = PackRequest {
            kind: PackageKind::App,
            manifest_text: manifest,
            version: 1,
            payloads: vec![PayloadInput {
                name: "bin/app".into(),
                role: PayloadRole::Entry,
                target: None,
                engine: None,
                source: &payload,
            }],
            limits,
        };
        let mut pkg = Vec::new();
        package::pack(&request, &app, &mut pkg)?;
        std::fs::write(out_dir.join(format!("pkg-{size}.wpkg")), &pkg)?;

        // Enough runs for a stable median, bounded for the largest size.
        let iterations = (256 << 20) / size.max(1);
        let iterations = iterations.clamp(15, 401);
        let mut times = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let start = Instant::now();
            package::verify(&pkg[..], &trust, &ctx, &limits, &mut Discard)?;
            times.push(start.elapsed().as_nanos());
        }
        times.sort_unstable();
        let median = times.get(times.len() / 2).copied().unwrap_or_default();
        println!("{size} {median} {iterations}");
    }
    Ok(())
}
