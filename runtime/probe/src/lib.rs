//! The escape probe: a native program that is started and confined exactly like a worker
//! (`warden_sandbox::spawn`, then `warden_sandbox::confine` on the plan the supervisor sends)
//! and then makes ONE named attempt to get out, reporting what the kernel answered.
//!
//! Command line: `warden-escape-probe <attempt> <stage> [param]`, where `stage` is
//! `confined` (after every layer, seccomp included) or `pre_seccomp` (inside confine's
//! `before_seccomp` hook: every layer but seccomp, to prove the layers beneath it on their own).
//! Conversation: the usual `Confine` → `Confined`, then one [`ProbeReport`]; the attempt
//! `worker_syscalls` first receives one message carrying a descriptor to write to.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod raw;

use std::ffi::CString;
use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

pub use raw::set_recv_timeout;

/// When the attempt runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// In the `before_seccomp` hook: all layers but seccomp.
    PreSeccomp,
    /// After `confine` returned: all layers.
    Confined,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::PreSeccomp => "pre_seccomp",
            Stage::Confined => "confined",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        [Stage::PreSeccomp, Stage::Confined]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// What the kernel answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// The attempt worked: the layer(s) it targets did not hold.
    Succeeded { detail: String },
    /// The kernel refused with this errno (e.g. "EPERM").
    Failed { errno: String, detail: String },
}

/// The probe's last message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeReport {
    pub attempt: String,
    pub stage: Stage,
    pub outcome: Outcome,
}

/// Every attempt the probe knows, by name.
pub const ATTEMPTS: &[&str] = &[
    "open_etc_shadow",
    "open_etc_passwd",
    "open_dev_mem",
    "open_proc_1_mem",
    "open_host_path",
    "connect_control_socket",
    "stat_host_path",
    "create_file_in_root",
    "open_root_dir",
    "dotdot_out_of_storage",
    "symlink_out_of_storage",
    "absolute_symlink_out_of_storage",
    "socket_inet",
    "socket_netlink",
    "connect_abstract_unix",
    "udp_to_host_loopback",
    "fork",
    "clone3",
    "execve_sh",
    "memfd_exec",
    "ptrace_traceme",
    "ptrace_attach_init",
    "ptrace_attach_supervisor",
    "kill_init",
    "kill_supervisor",
    "mount",
    "unshare_user",
    "setns",
    "bpf",
    "io_uring_setup",
    "keyctl",
    "perf_event_open",
    "userfaultfd",
    "setuid_root",
    "chmod_outside_storage",
    "write_proc_self_mem",
    "exhaust_fds",
    "exhaust_memory",
    "leaked_fd",
    "clear_no_new_privs",
    "storage_roundtrip",
    "worker_syscalls",
];

/// What an attempt may use.
#[derive(Debug)]
pub struct Context {
    /// The storage directory descriptor, if the plan granted one.
    pub storage: Option<RawFd>,
    /// The harness's parameter (a pid, a path, a name, a port), or "-".
    pub param: String,
    /// A descriptor opened before confinement and deliberately leaked (`leaked_fd`).
    pub leaked: Option<RawFd>,
    /// A descriptor the harness passed after confinement (`worker_syscalls`).
    pub passed: Option<RawFd>,
}

fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EXDEV => "EXDEV",
        libc::ENOSPC => "ENOSPC",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => return format!("errno {errno}"),
    };
    name.to_owned()
}

fn outcome(result: raw::SysResult, what: &str) -> Outcome {
    match result {
        Ok(value) => Outcome::Succeeded {
            detail: format!("{what} returned {value}"),
        },
        Err(errno) => Outcome::Failed {
            errno: errno_name(errno),
            detail: what.to_owned(),
        },
    }
}

fn cstr(text: &str) -> CString {
    CString::new(text).unwrap_or_default()
}

fn open(path: &str) -> Outcome {
    outcome(
        raw::openat(
            libc::AT_FDCWD,
            &cstr(path),
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
        ),
        &format!("open {path}"),
    )
}

fn open_beneath(storage: Option<RawFd>, path: &str) -> Outcome {
    let Some(dir) = storage else {
        return missing("a storage descriptor");
    };
    let opened = raw::openat(dir, &cstr(path), libc::O_RDONLY | libc::O_CLOEXEC, 0);
    if let Ok(fd) = opened {
        let mut buf = [0u8; 64];
        let read = RawFd::try_from(fd).map_or(Err(libc::EBADF), |fd| raw::read(fd, &mut buf));
        return Outcome::Succeeded {
            detail: format!("openat(storage, {path}) gave fd {fd}; read {read:?}"),
        };
    }
    outcome(opened, &format!("openat(storage, {path})"))
}

fn missing(what: &str) -> Outcome {
    Outcome::Failed {
        errno: "probe error".into(),
        detail: format!("the harness did not give {what}"),
    }
}

fn param_i32(ctx: &Context) -> Option<i32> {
    ctx.param.parse().ok()
}

/// Makes the attempt `name`. Attempts that seccomp forbids never return.
pub fn attempt(name: &str, ctx: &Context) -> Outcome {
    match name {
        "open_etc_shadow" => open("/etc/shadow"),
        "open_etc_passwd" => open("/etc/passwd"),
        "open_dev_mem" => open("/dev/mem"),
        "open_proc_1_mem" => open("/proc/1/mem"),
        "open_host_path" => open(&ctx.param),
        "connect_control_socket" => {
            let fd = match raw::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) {
                Ok(fd) => fd as RawFd,
                Err(e) => return outcome(Err(e), "socket(AF_UNIX)"),
            };
            let result = raw::connect_unix(fd, ctx.param.as_bytes(), false);
            let _ = raw::close(fd);
            outcome(result, &format!("connect to {}", ctx.param))
        }
        "stat_host_path" => outcome(raw::stat(&cstr(&ctx.param)), &format!("stat {}", ctx.param)),
        "create_file_in_root" => outcome(
            raw::openat(
                libc::AT_FDCWD,
                c"/escape",
                libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                0o600,
            ),
            "create /escape",
        ),
        "open_root_dir" => outcome(
            raw::openat(
                libc::AT_FDCWD,
                c"/",
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
            ),
            "open / as a directory",
        ),
        "dotdot_out_of_storage" => open_beneath(ctx.storage, "../outside.txt"),
        "symlink_out_of_storage" => open_beneath(ctx.storage, "escape_relative"),
        "absolute_symlink_out_of_storage" => open_beneath(ctx.storage, "escape_absolute"),
        "socket_inet" => outcome(
            raw::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0),
            "socket(AF_INET, SOCK_STREAM)",
        ),
        "socket_netlink" => outcome(
            raw::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            ),
            "socket(AF_NETLINK, NETLINK_ROUTE)",
        ),
        "connect_abstract_unix" => {
            let fd = match raw::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) {
                Ok(fd) => fd as RawFd,
                Err(e) => return outcome(Err(e), "socket(AF_UNIX)"),
            };
            let result = raw::connect_unix(fd, ctx.param.as_bytes(), true);
            let _ = raw::close(fd);
            outcome(result, &format!("connect to @{}", ctx.param))
        }
        "udp_to_host_loopback" => {
            let Ok(port) = ctx.param.parse::<u16>() else {
                return missing("a UDP port");
            };
            let fd = match raw::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) {
                Ok(fd) => fd as RawFd,
                Err(e) => return outcome(Err(e), "socket(AF_INET, SOCK_DGRAM)"),
            };
            let result = raw::sendto_loopback(fd, port, b"escaped");
            let _ = raw::close(fd);
            outcome(result, &format!("sendto 127.0.0.1:{port}"))
        }
        "fork" => outcome(raw::fork(), "fork"),
        "clone3" => outcome(raw::clone3(), "clone3"),
        "execve_sh" => outcome(raw::execve(c"/bin/sh"), "execve /bin/sh"),
        "memfd_exec" => outcome(raw::memfd_exec(), "memfd_create + execveat"),
        "ptrace_traceme" => outcome(raw::ptrace(libc::PTRACE_TRACEME, 0), "ptrace(TRACEME)"),
        "ptrace_attach_init" => outcome(raw::ptrace(libc::PTRACE_ATTACH, 1), "ptrace(ATTACH, 1)"),
        "ptrace_attach_supervisor" => match param_i32(ctx) {
            Some(pid) => outcome(
                raw::ptrace(libc::PTRACE_ATTACH, pid),
                &format!("ptrace(ATTACH, {pid})"),
            ),
            None => missing("the supervisor's pid"),
        },
        "kill_init" => outcome(raw::kill(1, libc::SIGKILL), "kill(1, SIGKILL)"),
        "kill_supervisor" => match param_i32(ctx) {
            Some(pid) => outcome(
                raw::kill(pid, libc::SIGKILL),
                &format!("kill({pid}, SIGKILL)"),
            ),
            None => missing("the supervisor's pid"),
        },
        "mount" => outcome(raw::mount_tmpfs_on_root(), "mount tmpfs on /"),
        "unshare_user" => outcome(raw::unshare(libc::CLONE_NEWUSER), "unshare(CLONE_NEWUSER)"),
        "setns" => outcome(raw::setns(3, libc::CLONE_NEWNET), "setns(3, CLONE_NEWNET)"),
        "bpf" => outcome(raw::bpf_map_create(), "bpf(BPF_MAP_CREATE)"),
        "io_uring_setup" => outcome(raw::io_uring_setup(), "io_uring_setup"),
        "keyctl" => outcome(raw::keyctl_session(), "keyctl(GET_KEYRING_ID, session)"),
        "perf_event_open" => outcome(raw::perf_event_open(), "perf_event_open"),
        "userfaultfd" => outcome(raw::userfaultfd(), "userfaultfd"),
        "setuid_root" => outcome(raw::setuid(0), "setuid(0)"),
        "chmod_outside_storage" => match ctx.storage {
            Some(dir) => outcome(
                raw::fchmodat(dir, c"../outside.txt", 0o777),
                "fchmodat(storage, ../outside.txt, 0777)",
            ),
            None => missing("a storage descriptor"),
        },
        "write_proc_self_mem" => {
            match raw::openat(
                libc::AT_FDCWD,
                c"/proc/self/mem",
                libc::O_RDWR | libc::O_CLOEXEC,
                0,
            ) {
                Ok(fd) => outcome(
                    raw::pwrite(fd as RawFd, &[0xcc], raw::own_code_address()),
                    "write own code through /proc/self/mem",
                ),
                Err(e) => outcome(Err(e), "open /proc/self/mem"),
            }
        }
        "exhaust_fds" => exhaust_fds(),
        "exhaust_memory" => exhaust_memory(),
        "leaked_fd" => match ctx.leaked {
            Some(fd) => {
                let mut buf = [0u8; 16];
                outcome(
                    raw::read(fd, &mut buf),
                    &format!("read fd {fd} (/etc/passwd opened before confinement)"),
                )
            }
            None => missing("a leaked descriptor"),
        },
        "clear_no_new_privs" => {
            // SET to 0 is refused by the kernel whatever the state; the detail says the state.
            let cleared = raw::clear_no_new_privs();
            let state = raw::get_no_new_privs();
            match (cleared, state) {
                (_, Ok(0)) => Outcome::Succeeded {
                    detail: "no_new_privs is not set".into(),
                },
                (Err(e), Ok(v)) => Outcome::Failed {
                    errno: errno_name(e),
                    detail: format!("PR_GET_NO_NEW_PRIVS={v}"),
                },
                (Ok(_), Ok(v)) => Outcome::Succeeded {
                    detail: format!("PR_SET_NO_NEW_PRIVS(0) accepted; now {v}"),
                },
                (_, Err(e)) => outcome(Err(e), "PR_GET_NO_NEW_PRIVS"),
            }
        }
        "storage_roundtrip" => storage_roundtrip(ctx),
        "worker_syscalls" => worker_syscalls(ctx),
        // Every futex operation but the two a sleep needs: a shared (not private) wait, and a
        // requeue (the operation behind CVE-2014-3153).
        "futex_shared_wait" => {
            let word = std::sync::atomic::AtomicU32::new(1);
            outcome(
                raw::futex(&word, libc::FUTEX_WAIT_BITSET, 0, Some(1_000_000)),
                "futex(FUTEX_WAIT_BITSET) shared",
            )
        }
        "futex_requeue" => {
            let word = std::sync::atomic::AtomicU32::new(0);
            outcome(
                raw::futex(
                    &word,
                    libc::FUTEX_CMP_REQUEUE | libc::FUTEX_PRIVATE_FLAG,
                    1,
                    None,
                ),
                "futex(FUTEX_CMP_REQUEUE_PRIVATE)",
            )
        }
        other => Outcome::Failed {
            errno: "probe error".into(),
            detail: format!("unknown attempt {other}"),
        },
    }
}

/// Duplicates the channel until the kernel refuses.
fn exhaust_fds() -> Outcome {
    let mut opened = 0u32;
    let mut highest = 0i64;
    loop {
        match raw::dup(3) {
            Ok(fd) => {
                opened += 1;
                highest = highest.max(fd);
                if opened > 1_000_000 {
                    return Outcome::Succeeded {
                        detail: format!("opened {opened} descriptors, highest {highest}"),
                    };
                }
            }
            Err(errno) => {
                return Outcome::Failed {
                    errno: errno_name(errno),
                    detail: format!("opened {opened} descriptors, highest {highest}"),
                };
            }
        }
    }
}

/// Maps and touches memory, 4 MiB at a time, up to 8 GiB (on a 32-bit device the address
/// space ends first, at about 3 GiB).
fn exhaust_memory() -> Outcome {
    const CHUNK: usize = 4 << 20;
    const LIMIT: u64 = 8 << 30;
    let mut total = 0u64;
    while total < LIMIT {
        match raw::mmap_anon(CHUNK, libc::PROT_READ | libc::PROT_WRITE) {
            Ok(addr) => {
                raw::touch(addr, CHUNK, 0x5a);
                total += CHUNK as u64;
            }
            Err(errno) => {
                return Outcome::Failed {
                    errno: errno_name(errno),
                    detail: format!("touched {} MiB", total >> 20),
                };
            }
        }
    }
    Outcome::Succeeded {
        detail: format!("touched {} MiB", total >> 20),
    }
}

fn storage_roundtrip(ctx: &Context) -> Outcome {
    let Some(dir) = ctx.storage else {
        return missing("a storage descriptor");
    };
    let step = |result: raw::SysResult, what: &str| result.map_err(|e| outcome(Err(e), what));
    let run = || -> Result<Outcome, Outcome> {
        let fd = step(
            raw::openat(
                dir,
                c"probe.txt",
                libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
                0o600,
            ),
            "create probe.txt",
        )? as RawFd;
        step(raw::write(fd, b"written by the probe"), "write probe.txt")?;
        step(raw::close(fd), "close")?;
        let fd = step(
            raw::openat(dir, c"probe.txt", libc::O_RDONLY | libc::O_CLOEXEC, 0),
            "open probe.txt",
        )? as RawFd;
        let mut buf = [0u8; 64];
        let n = step(raw::read(fd, &mut buf), "read probe.txt")?;
        step(raw::close(fd), "close")?;
        let text = String::from_utf8_lossy(buf.get(..n as usize).unwrap_or_default());
        Ok(Outcome::Succeeded {
            detail: format!("read back {text:?}"),
        })
    };
    run().unwrap_or_else(|failed| failed)
}

/// The futex operations a worker may make (`FUTEX_PRIVATE_FLAG` = 128).
const FUTEX_WAIT_BITSET_PRIVATE: i32 = libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG;
const FUTEX_WAKE_PRIVATE: i32 = libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG;

fn worker_syscalls(ctx: &Context) -> Outcome {
    let Some(out) = ctx.passed else {
        return missing("a descriptor to write to");
    };
    let step = |result: raw::SysResult, what: &str| result.map_err(|e| outcome(Err(e), what));
    let run = || -> Result<Outcome, Outcome> {
        const LEN: usize = 1 << 16;
        let addr = step(
            raw::mmap_anon(LEN, libc::PROT_READ | libc::PROT_WRITE),
            "mmap",
        )?;
        raw::touch(addr, LEN, 1);
        step(raw::mprotect(addr, LEN, libc::PROT_READ), "mprotect")?;
        step(raw::munmap(addr, LEN), "munmap")?;
        step(raw::setitimer(3600), "setitimer")?;
        step(raw::setitimer(0), "setitimer (cancel)")?;
        // A preview-1 module's sleep (clock_nanosleep), then a component's as the runtime
        // sleeps: a private futex wait with a deadline nobody wakes, then a private wake.
        step(raw::sleep_nanos(1_000_000), "clock_nanosleep")?;
        let word = std::sync::atomic::AtomicU32::new(0);
        match raw::futex(&word, FUTEX_WAIT_BITSET_PRIVATE, 0, Some(1_000_000)) {
            Err(libc::ETIMEDOUT) => {}
            other => return Err(outcome(other, "futex wait with a deadline")),
        }
        step(raw::futex(&word, FUTEX_WAKE_PRIVATE, 1, None), "futex wake")?;
        let now = step(raw::monotonic_seconds(), "clock_gettime")?;
        let line = format!(
            "worker syscalls ok: mmap/mprotect/munmap, setitimer, clock_nanosleep, futex wait and \
             wake, \
             clock_gettime ({now} s)\n"
        );
        step(raw::write(out, line.as_bytes()), "write to the passed fd")?;
        Ok(Outcome::Succeeded { detail: line })
    };
    run().unwrap_or_else(|failed| failed)
}
