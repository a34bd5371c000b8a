//! The digest rule: a precompiled artefact is loaded only if its bytes have the SHA-256 the
//! supervisor recorded at install, and its header names the kind the request claims.

use std::fs::File;

use sha2::{Digest, Sha256};
use warden_ipc::CodeKind;
use wasmtime::{Engine, Precompiled};

use crate::sys::Mapping;

/// Proof that an artefact passed [`verify`], holding the mapping whose bytes were hashed; the
/// loaders in `sys.rs` require it.
#[derive(Debug)]
pub(crate) struct Verified {
    mapping: Mapping,
}

impl Verified {
    /// The bytes that were hashed and checked.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.mapping.bytes()
    }
}

/// Checks the first `size` bytes of `code` against the recorded digest and kind without handing
/// any of it to wasmtime's loader. `Err` carries the reason, for `Outcome::LoadRefused`.
///
/// The size comes from the supervisor, which sealed the descriptor; asking the kernel (`statx`)
/// would cost the steady-state allow-list a syscall. A wrong size cannot load foreign bytes:
/// shorter or longer, the digest no longer matches (and a mapping past the end of the file
/// faults rather than reading anything else).
pub(crate) fn verify(
    code: &File,
    size: u64,
    expected_sha256: &str,
    kind: CodeKind,
) -> Result<Verified, String> {
    let expected = expected_sha256.to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "the recorded digest {expected_sha256:?} is not a SHA-256 in hex"
        ));
    }
    if size == 0 {
        return Err("the code is empty".to_owned());
    }
    let len = usize::try_from(size).map_err(|_| format!("the code is too large ({size} bytes)"))?;
    let mapping =
        Mapping::of(code, len).map_err(|e| format!("cannot map the code descriptor: {e}"))?;
    let actual = hex::encode(Sha256::digest(mapping.bytes()));
    if actual != expected {
        return Err(format!(
            "digest mismatch: the code has sha256 {actual}, the install recorded {expected}"
        ));
    }
    let found = Engine::detect_precompiled(mapping.bytes());
    let matches = matches!(
        (kind, found),
        (CodeKind::Component, Some(Precompiled::Component))
            | (CodeKind::Module, Some(Precompiled::Module))
    );
    if !matches {
        let found = match found {
            Some(Precompiled::Component) => "a precompiled component",
            Some(Precompiled::Module) => "a precompiled module",
            None => "not a wasmtime precompiled artefact",
        };
        return Err(
            format!("the request claims a {kind:?} but the code is {found}").to_lowercase(),
        );
    }
    Ok(Verified { mapping })
}
