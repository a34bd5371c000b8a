//! The one wasmtime configuration, shared by the compiler and the runtime.
//!
//! A precompiled artefact is accepted only by an engine with the same wasmtime build, cargo
//! features and `Config`, so both sides build their `Config` here and nowhere else.

use std::num::NonZeroUsize;

use wasmtime::{Config, Engine, WasmBacktraceDetails};

/// Most WebAssembly frames kept in a trap's backtrace.
const BACKTRACE_FRAMES: usize = 64;

/// The configuration for `target` (`None`: the host).
///
/// - epoch interruption on: the CPU watchdog (see `watchdog.rs`);
/// - wasm backtraces on, with function names from the name section; DWARF details off, set
///   explicitly so the `WASMTIME_BACKTRACE_DETAILS` environment variable cannot change the
///   artefact format between the compiler and the worker;
/// - component model on; threads, GC and the other proposals that need extra cargo features
///   are compiled out;
/// - copy-on-write memory images off: wasmtime would otherwise build them with
///   `memfd_create` + `write` + `fcntl(F_ADD_SEALS)` for every component at instantiation,
///   three more syscalls in the worker's allow-list; data segments are copied instead, which
///   costs the same private memory for a single instance.
pub(crate) fn config(target: Option<&str>) -> wasmtime::Result<Config> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .wasm_backtrace_max_frames(NonZeroUsize::new(BACKTRACE_FRAMES))
        .wasm_backtrace_details(WasmBacktraceDetails::Disable)
        .memory_init_cow(false);
    if let Some(target) = target {
        config.target(target)?;
    }
    Ok(config)
}

/// The runtime engine for this host. One per process: its epoch is what SIGALRM advances.
pub(crate) fn runtime_engine() -> wasmtime::Result<Engine> {
    crate::sys::ticking_engine(|| Engine::new(&config(None)?))
}
