//! `wardend`, the Warden supervisor: it owns the device state, installs verified packages,
//! starts each app in its own confined worker, classifies how workers end into failure
//! reports, and answers the control API.
//!
//! It never links wasmtime and never parses WebAssembly (decision 10 of the design brief): it
//! hashes bytes, and hands them to confined workers.
#![forbid(unsafe_code)]

pub mod api;
pub mod broker;
pub mod device;
pub mod devices;
pub mod error;
mod file;
pub mod http;
pub mod index;
pub mod install;
pub mod intercore;
pub mod logs;
pub mod network;
pub mod power;
pub mod reports;
pub mod rtcore;
pub mod sim_api;
pub mod state;
pub mod storage;
pub mod supervisor;
pub mod system;
pub mod tls_roots;
pub mod updates;
pub mod worker;

/// Unix seconds now (0 if the clock is before 1970).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
