//! The per-app worker: runs one precompiled WebAssembly app (a WASI 0.2 component or a WASI
//! preview-1 command module) with wasmtime, inside the confinement `warden-sandbox` applies,
//! and classifies how it ended. It also precompiles apps (feature `compile`), in a worker
//! confined the same way with no rights at all.
//!
//! The life of a worker (see `docs/worker.md`): [`Prepared::new`] builds everything that needs
//! syscalls the confined steady state will not have (engine, linkers, runtime, the watchdog's
//! signal handler) in the sandbox's before-seccomp hook, without reading any app byte; after
//! seccomp, [`Prepared::run`] checks the code's digest, loads it, runs it and returns an
//! [`Outcome`](warden_ipc::Outcome).
#![deny(unsafe_code)]

mod artefact;
#[cfg(feature = "compile")]
mod compile;
mod engine;
mod limits;
mod outcome;
mod run;
mod sys;
mod watchdog;

#[cfg(feature = "compile")]
pub use compile::{
    CompileError, WasmKind, compile, engine_fingerprint, prepare_compiler, wasm_kind,
};
pub use run::{PrepareError, Prepared, RunError, STORAGE_GUEST_PATH, Timings};
