//! Precompiling WebAssembly with the runtime's own configuration (feature `compile`).

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use wasmtime::Engine;

use crate::engine;

/// The wasmtime release this crate is pinned to (`=48.0.8` in the workspace manifest).
const WASMTIME_VERSION: &str = "48.0.8";

/// Why WebAssembly could not be compiled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    #[error("cannot configure wasmtime for target {target}: {message}")]
    Target { target: String, message: String },
    #[error("the input is neither a WebAssembly component nor a core module (bad header)")]
    NotWasm,
    #[error("cannot compile the {kind}: {message}")]
    Compile { kind: &'static str, message: String },
}

/// What a WebAssembly binary's header says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WasmKind {
    Module,
    Component,
}

/// Reads the 8-byte header: `\0asm` then version 1 (module) or 0x0d/layer 1 (component).
pub fn wasm_kind(wasm: &[u8]) -> Option<WasmKind> {
    match wasm.get(..8)? {
        [0, b'a', b's', b'm', 1, 0, 0, 0] => Some(WasmKind::Module),
        [0, b'a', b's', b'm', 0x0d, 0, 1, 0] => Some(WasmKind::Component),
        _ => None,
    }
}

fn engine_for(target: Option<&str>) -> Result<Engine, CompileError> {
    let error = |e: wasmtime::Error| CompileError::Target {
        target: target.unwrap_or("host").to_owned(),
        message: crate::outcome::message(&e),
    };
    let config = engine::config(target).map_err(error)?;
    Engine::new(&config).map_err(error)
}

/// Precompiles a component or core module (whichever the header says) for the host
/// (`target: None`) or a wasmtime target such as `pulley32`, with exactly the configuration
/// the runtime uses, so a run-only worker build accepts the result.
pub fn compile(wasm: &[u8], target: Option<&str>) -> Result<Vec<u8>, CompileError> {
    let kind = wasm_kind(wasm).ok_or(CompileError::NotWasm)?;
    let engine = engine_for(target)?;
    match kind {
        WasmKind::Module => engine
            .precompile_module(wasm)
            .map_err(|e| CompileError::Compile {
                kind: "module",
                message: crate::outcome::message(&e),
            }),
        WasmKind::Component => {
            engine
                .precompile_component(wasm)
                .map_err(|e| CompileError::Compile {
                    kind: "component",
                    message: crate::outcome::message(&e),
                })
        }
    }
}

/// What a compiler worker does in its before-seccomp hook: creates a host engine once (wasmtime
/// installs its signal handlers on the first one, `rt_sigaction`) and seeds the thread's hash
/// keys (`getrandom`), so that compiling under seccomp needs neither call.
pub fn prepare_compiler() -> Result<(), CompileError> {
    drop(engine_for(None)?);
    drop(std::collections::HashMap::<u8, u8>::new());
    Ok(())
}

/// Feeds `Hash` data into SHA-256, so the fingerprint does not depend on std's hasher.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Names the engine an artefact is made for: wasmtime release, target, and a digest of
/// everything wasmtime checks before it accepts an artefact (its compatibility hash: config,
/// tunables, enabled proposals, ISA flags). Two equal fingerprints load each other's output;
/// this is the package's `engine` field, e.g. `wasmtime-48.0.8/pulley32/3fa1…`.
pub fn engine_fingerprint(target: Option<&str>) -> Result<String, CompileError> {
    let engine = engine_for(target)?;
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hex::encode(hasher.0.finalize());
    let target = match target {
        Some(target) => target.to_owned(),
        None => format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
    };
    Ok(format!(
        "wasmtime-{WASMTIME_VERSION}/{target}/{}",
        digest.get(..32).unwrap_or(&digest)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_told_apart() {
        assert_eq!(wasm_kind(b"\0asm\x01\0\0\0"), Some(WasmKind::Module));
        assert_eq!(wasm_kind(b"\0asm\x0d\0\x01\0"), Some(WasmKind::Component));
        assert_eq!(wasm_kind(b"\x7fELF\x02\x01\x01\0"), None);
        assert_eq!(wasm_kind(b"\0asm"), None);
    }

    #[test]
    fn compiling_garbage_is_an_error() {
        assert!(matches!(
            compile(b"hello", None),
            Err(CompileError::NotWasm)
        ));
    }

    #[test]
    fn fingerprints_are_stable_and_differ_per_target() -> Result<(), CompileError> {
        let host = engine_fingerprint(None)?;
        assert_eq!(host, engine_fingerprint(None)?);
        let pulley = engine_fingerprint(Some("pulley32"))?;
        assert_ne!(host, pulley);
        assert!(pulley.starts_with("wasmtime-48.0.8/pulley32/"), "{pulley}");
        Ok(())
    }
}
