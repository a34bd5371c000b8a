//! Worker spawning (supervisor side) and confinement (worker side).
//!
//! * [`spawn`] starts a worker program into new mount, pid, ipc, uts and net namespaces with
//!   `clone3` + `execve` (never a fork of the supervisor that runs supervisor code), optionally
//!   inside an [`AppCgroup`]. The child gets fds 0–2 = `/dev/null`, fd 3 = its channel.
//! * [`confine`] is the worker's one ordered self-confinement function; [`CONFINEMENT_ORDER`]
//!   is the invariant, documented in `docs/sandbox.md`.
//! * Seccomp profiles are reviewed JSON data in `runtime/sandbox/seccomp/<arch>.json`.
//!
//! All `unsafe` code of this crate is in the private module `sys`.
#![deny(unsafe_code)]

mod cgroup;
mod confine;
mod seccomp;
mod spawn;
#[allow(unsafe_code)]
mod sys;

pub use cgroup::{
    AppCgroup, CgroupConfig, CgroupError, CgroupLimits, CgroupReport, Enforcement, OomCount,
};
pub use confine::{CONFINEMENT_ORDER, ConfineError, confine};
pub use seccomp::{SeccompError, profile_syscalls};
pub use spawn::{SandboxChild, SpawnError, SpawnRequest, WORKER_ENV, WorkerExit, spawn};

/// The descriptor a spawned worker finds its channel on.
pub const CHANNEL_FD: i32 = sys::CHANNEL_FD;

/// Adopts descriptor 3, the channel [`spawn`] hands every worker. Works once per process; fails
/// if fd 3 is not a socket.
pub fn adopt_channel() -> std::io::Result<warden_ipc::Channel> {
    sys::adopt_channel_fd().map(warden_ipc::Channel::from_fd)
}

/// "EPERM"-style name of an I/O error's errno, or its text when it has none.
fn errno_name(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
        None => err.to_string(),
    }
}
