//! Every `unsafe` block of the crate, each with the reason it is sound.
//!
//! Four things need it: the SIGALRM handler and interval timer that drive the epoch watchdog, a
//! read-only mapping of the artefact for hashing, loading a precompiled artefact
//! (`deserialize`, sound only after the digest check in `artefact.rs`), and adopting
//! the inherited channel descriptor 3.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::OnceLock;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::artefact::Verified;

/// The engine whose epoch the SIGALRM handler advances. Set once per process, before the
/// handler is installed, and never replaced.
static TICKING_ENGINE: OnceLock<Engine> = OnceLock::new();

/// Stores the engine for the signal handler; returns the one already stored, if any (a process
/// has exactly one runtime engine).
pub(crate) fn ticking_engine(
    make: impl FnOnce() -> wasmtime::Result<Engine>,
) -> wasmtime::Result<Engine> {
    if let Some(engine) = TICKING_ENGINE.get() {
        return Ok(engine.clone());
    }
    let engine = make()?;
    // Another thread may have won the race; either way the stored engine is the one to use.
    let stored = TICKING_ENGINE.get_or_init(|| engine);
    Ok(stored.clone())
}

extern "C" fn on_sigalrm(_signal: libc::c_int) {
    // Async-signal-safe: `OnceLock::get` is one atomic load, `increment_epoch` one atomic add.
    // No allocation, no lock, no syscall.
    if let Some(engine) = TICKING_ENGINE.get() {
        engine.increment_epoch();
    }
}

/// Installs the SIGALRM handler (SA_RESTART, so an interrupted host call resumes).
pub(crate) fn install_tick_handler() -> io::Result<()> {
    // SAFETY: `sigaction` is a plain C struct for which all-zero is a valid value; every field
    // that matters is set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigalrm as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `sa_mask` is a valid, owned `sigset_t`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: the handler only performs async-signal-safe atomic operations (see
    // `on_sigalrm`); `action` is fully initialised and outlives the call.
    let rc = unsafe { libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Arms (`Some(period)`) or disarms (`None`) the process's real-time interval timer.
// `suseconds_t` is 64-bit here but 32-bit on armv7, where the conversion can fail.
#[allow(clippy::unnecessary_fallible_conversions)]
pub(crate) fn set_tick_timer(period: Option<std::time::Duration>) -> io::Result<()> {
    let interval = match period {
        Some(p) => libc::timeval {
            tv_sec: libc::time_t::try_from(p.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_usec: libc::suseconds_t::try_from(p.subsec_micros()).unwrap_or(0),
        },
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    let value = libc::itimerval {
        it_interval: interval,
        it_value: interval,
    };
    // SAFETY: `value` is a valid `itimerval` that outlives the call; the old value is not asked
    // for (null).
    let rc = unsafe { libc::setitimer(libc::ITIMER_REAL, &value, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A private, read-only mapping of a whole file, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<libc::c_void>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `file` read-only. `len` must be the file's size and non-zero.
    pub(crate) fn of(file: &File, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty file"));
        }
        // SAFETY: a fresh private read-only mapping chosen by the kernel (null hint) aliases no
        // Rust object; the descriptor is valid for the call.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr).ok_or_else(io::Error::last_os_error)?;
        Ok(Mapping { ptr, len })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr+len` is a live read-only mapping owned by `self` until drop. Pages
        // past the end of a file that shrank meanwhile would fault (SIGBUS); the supervisor
        // hands a sealed memfd or a file in its root-only state directory, which nobody
        // truncates (documented in docs/worker.md).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this value owns; no reference to it outlives
        // `self` (`bytes` borrows `self`).
        unsafe { libc::munmap(self.ptr.as_ptr(), self.len) };
    }
}

/// Loads a precompiled core module from the very bytes that were hashed (wasmtime copies them
/// into its own mapping), like a component: loading from the descriptor instead would ask the
/// kernel for its size (`statx`) after seccomp, one more call on the steady-state allow-list.
pub(crate) fn load_module(
    engine: &Engine,
    checked: &Verified,
) -> wasmtime::Result<wasmtime::Module> {
    // SAFETY: `deserialize` trusts the bytes to be a valid artefact from a compatible wasmtime.
    // These are the bytes `artefact::verify` hashed: they have the SHA-256 the supervisor
    // recorded when it had them compiled by this crate's `compile` in a confined compiler
    // process, and their header names a module. wasmtime copies them before use and checks the
    // engine/config compatibility header first.
    unsafe { wasmtime::Module::deserialize(engine, checked.bytes()) }
}

/// Loads a precompiled component from the very bytes that were hashed. (wasmtime 48 has no
/// `Component::deserialize_open_file`; `deserialize` copies them into its own mapping.)
pub(crate) fn load_component(engine: &Engine, checked: &Verified) -> wasmtime::Result<Component> {
    // SAFETY: `deserialize` trusts the bytes to be a valid artefact from a compatible wasmtime.
    // These are the bytes `artefact::verify` hashed: they have the SHA-256 the supervisor
    // recorded when it had them compiled by this crate's `compile` in a confined compiler
    // process, and their header names a component. wasmtime copies them before use and checks
    // the engine/config compatibility header first.
    unsafe { Component::deserialize(engine, checked.bytes()) }
}
