//! The worker's self-confinement: one ordered function. The order is the invariant written in
//! `docs/sandbox.md`; [`CONFINEMENT_ORDER`] names the steps and the report lists them in it.

use std::error::Error;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use caps::CapSet;
use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, PathBeneath,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, make_bitflags,
};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::resource::{RLIM_INFINITY, Resource, setrlimit};
use nix::unistd::{Gid, Uid};
use warden_ipc::{ConfinePlan, ConfinementReport, PROTOCOL_VERSION, Rlimits, StepReport};

use crate::seccomp::{self, SeccompError};
use crate::sys::{self, CHANNEL_FD};

/// The steps of [`confine`], in the order it takes them. This order is the invariant.
pub const CONFINEMENT_ORDER: [&str; 8] = [
    "filesystem",
    "fds",
    "rlimits",
    "identity",
    "no_new_privs",
    "landlock",
    "before_seccomp",
    "seccomp",
];

/// The landlock ABI whose rights we ask for: the newest the landlock crate knows. On an older
/// kernel the ruleset is "partially enforced" (best effort) and the report says so.
const LANDLOCK_ABI: ABI = ABI::V9;

/// The RLIMIT_NPROC a worker gets: it is the only process of its uid and creates no thread.
const NPROC: u64 = 1;

/// Why confinement stopped. The worker must exit after any of these: it may be half-confined.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfineError {
    #[error("refusing to confine: {0}")]
    Precondition(String),
    #[error("{step}: {what}: {errno}")]
    Step {
        step: &'static str,
        what: String,
        errno: String,
    },
    #[error("landlock: {0}")]
    Landlock(String),
    #[error("before_seccomp hook: {0}")]
    Hook(Box<dyn Error + Send + Sync>),
    #[error("seccomp: {0}")]
    Seccomp(#[from] SeccompError),
}

fn step_err(step: &'static str, what: impl Into<String>) -> impl FnOnce(Errno) -> ConfineError {
    let what = what.into();
    move |errno| ConfineError::Step {
        step,
        what,
        errno: format!("{errno:?}"),
    }
}

fn io_step_err(
    step: &'static str,
    what: impl Into<String>,
) -> impl FnOnce(std::io::Error) -> ConfineError {
    let what = what.into();
    move |err| ConfineError::Step {
        step,
        what,
        errno: crate::errno_name(&err),
    }
}

/// Confines the calling process, which must be a worker started by [`crate::spawn`]: pid 1 of
/// its own pid namespace, still root, with one thread. Takes the steps of
/// [`CONFINEMENT_ORDER`] in that order and reports each:
///
/// 1. `filesystem`: a fresh, private mount namespace whose root is an empty, read-only tmpfs
///    (`pivot_root`, old root detached).
/// 2. `fds`: closes every descriptor but 0–2 (kept only if they are `/dev/null`), 3 (the
///    channel) and `storage`.
/// 3. `rlimits`: no core dumps, `plan.rlimits.nofile` descriptors, `RLIMIT_FSIZE` if set (and
///    SIGXFSZ ignored, so a write past it fails with EFBIG), no locked memory, one process.
/// 4. `identity`: empty capability bounding and ambient sets, no supplementary groups, the
///    app's gid and uid (all three ids), empty capability sets, verified with `capget`.
/// 5. `no_new_privs`.
/// 6. `landlock`: every filesystem and network right handled, scopes for abstract unix sockets
///    and signals; one rule, the storage directory (no execute). Refused if not enforced.
/// 7. `before_seccomp`: runs the caller's hook (build the engine here; read no app byte).
/// 8. `seccomp`: the allow-list `plan.seccomp`, kill-process on anything else.
///
/// `storage` is the app's storage directory, received with the `Confine` message; the caller
/// keeps owning it. The caller must hold no other descriptor than the channel (fd 3) and
/// `storage`: step 2 closes everything else.
pub fn confine<E>(
    plan: &ConfinePlan,
    storage: Option<BorrowedFd<'_>>,
    before_seccomp: impl FnOnce() -> Result<(), E>,
) -> Result<ConfinementReport, ConfineError>
where
    E: Into<Box<dyn Error + Send + Sync>>,
{
    preflight(plan, storage)?;
    // Compile before anything irreversible: a broken profile fails while nothing changed.
    let compiling = Instant::now();
    let filter = seccomp::compile_for_this_arch(plan.seccomp)?;
    let compiled_in = compiling.elapsed();
    let mut steps = Vec::with_capacity(CONFINEMENT_ORDER.len());
    let mut started = Instant::now();
    let mut done = |step: &str, detail: String, extra: Duration| {
        steps.push(StepReport {
            step: step.to_owned(),
            detail,
            micros: u64::try_from((started.elapsed() + extra).as_micros()).unwrap_or(u64::MAX),
        });
        started = Instant::now();
    };

    done("filesystem", empty_root()?, Duration::ZERO);
    done("fds", close_fds(storage)?, Duration::ZERO);
    done("rlimits", rlimits(&plan.rlimits)?, Duration::ZERO);
    done("identity", identity(plan.uid, plan.gid)?, Duration::ZERO);
    done("no_new_privs", no_new_privs()?, Duration::ZERO);
    done("landlock", landlock(storage)?, Duration::ZERO);
    before_seccomp().map_err(|e| ConfineError::Hook(e.into()))?;
    done(
        "before_seccomp",
        "the caller's set-up ran; no app byte read".into(),
        Duration::ZERO,
    );
    let detail = format!(
        "profile {} ({}): {} syscalls allowed, any other kills the process",
        filter.name, filter.arch, filter.syscalls
    );
    filter.install()?;
    // The profile was compiled first, before step 1; its time counts here.
    done("seccomp", detail, compiled_in);

    Ok(ConfinementReport {
        protocol: PROTOCOL_VERSION,
        steps,
    })
}

fn preflight(plan: &ConfinePlan, storage: Option<BorrowedFd<'_>>) -> Result<(), ConfineError> {
    let refuse = |why: String| Err(ConfineError::Precondition(why));
    if plan.protocol != PROTOCOL_VERSION {
        return refuse(format!(
            "plan speaks protocol {}, this worker {PROTOCOL_VERSION}",
            plan.protocol
        ));
    }
    if plan.uid == 0 || plan.gid == 0 {
        return refuse(format!(
            "uid {} / gid {}: an app never runs as root",
            plan.uid, plan.gid
        ));
    }
    if plan.storage != storage.is_some() {
        return refuse(format!(
            "plan.storage is {} but a storage descriptor was {}given",
            plan.storage,
            if storage.is_some() { "" } else { "not " }
        ));
    }
    if let Some(fd) = storage
        && fd.as_raw_fd() <= CHANNEL_FD
    {
        return refuse(format!(
            "storage descriptor {} collides with 0-3",
            fd.as_raw_fd()
        ));
    }
    // Landlock and no_new_privs bind the calling thread only: a second thread would escape.
    // Count threads now: /proc is gone after step 1.
    let threads = std::fs::read_dir("/proc/self/task")
        .map_err(|e| {
            ConfineError::Precondition(format!(
                "cannot count threads in /proc/self/task: {}",
                crate::errno_name(&e)
            ))
        })?
        .count();
    if threads != 1 {
        return refuse(format!(
            "{threads} threads alive; confinement must run with one"
        ));
    }
    let pid = nix::unistd::getpid().as_raw();
    if pid != 1 {
        return refuse(format!(
            "pid {pid} is not 1: a worker must be started by warden_sandbox::spawn (new pid \
             namespace), never confined in the supervisor's namespaces"
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        return refuse("not root: spawn starts workers as root, they drop to the app's ids".into());
    }
    Ok(())
}

/// Step 1: an empty, read-only root.
fn empty_root() -> Result<String, ConfineError> {
    const STEP: &str = "filesystem";
    // spawn gave us a mount namespace of our own; unshare once more anyway, so that even a
    // caller in a shared namespace could never pivot anybody else's root.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(step_err(STEP, "unshare mount namespace"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(step_err(STEP, "make / recursively private"))?;
    // Any existing directory serves as the tmpfs's temporary mount point.
    let mount_point = ["/tmp", "/mnt", "/dev", "/proc"]
        .into_iter()
        .find(|p| Path::new(p).is_dir())
        .ok_or_else(|| ConfineError::Step {
            step: STEP,
            what: "find a mount point for the new root".into(),
            errno: "ENOENT".into(),
        })?;
    nix::mount::mount(
        Some("tmpfs"),
        mount_point,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("size=4k,nr_inodes=4,mode=0555"),
    )
    .map_err(step_err(STEP, format!("mount tmpfs on {mount_point}")))?;
    nix::unistd::chdir(mount_point).map_err(step_err(STEP, "chdir into the tmpfs"))?;
    // pivot_root(".", "."): the old root ends up stacked on the new one, then detached.
    nix::unistd::pivot_root(".", ".").map_err(step_err(STEP, "pivot_root into tmpfs"))?;
    nix::mount::umount2(".", MntFlags::MNT_DETACH)
        .map_err(step_err(STEP, "detach the old root"))?;
    nix::unistd::chdir("/").map_err(step_err(STEP, "chdir /"))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(step_err(STEP, "remount / read-only"))?;
    let entries = std::fs::read_dir("/")
        .map_err(io_step_err(STEP, "list the new root"))?
        .count();
    if entries != 0 {
        return Err(ConfineError::Step {
            step: STEP,
            what: format!("the new root has {entries} entries"),
            errno: "ENOTEMPTY".into(),
        });
    }
    Ok("root is an empty tmpfs (read-only, nosuid, nodev, noexec); old root detached".into())
}

/// Step 2: close every descriptor but the channel, storage and /dev/null on 0–2.
fn close_fds(storage: Option<BorrowedFd<'_>>) -> Result<String, ConfineError> {
    const STEP: &str = "fds";
    let mut keep: Vec<RawFd> = vec![CHANNEL_FD];
    let mut null_fds = Vec::new();
    for fd in 0..CHANNEL_FD {
        if is_dev_null(fd) {
            keep.push(fd);
            null_fds.push(fd.to_string());
        }
    }
    let channel =
        sys::fstat_raw(CHANNEL_FD).map_err(io_step_err(STEP, "fstat fd 3 (the channel)"))?;
    if channel.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(ConfineError::Step {
            step: STEP,
            what: "fd 3 (the channel) is not a socket".into(),
            errno: "ENOTSOCK".into(),
        });
    }
    if let Some(fd) = storage {
        keep.push(fd.as_raw_fd());
    }
    sys::close_all_except(&keep).map_err(io_step_err(STEP, "close_range"))?;
    let mut kept = String::from("kept 3 (channel)");
    if let Some(fd) = storage {
        kept.push_str(&format!(", {} (storage)", fd.as_raw_fd()));
    }
    if !null_fds.is_empty() {
        kept.push_str(&format!(", {} (/dev/null)", null_fds.join(",")));
    }
    Ok(format!("{kept}; closed every other descriptor"))
}

fn is_dev_null(fd: RawFd) -> bool {
    match sys::fstat_raw(fd) {
        Ok(st) => {
            st.st_mode & libc::S_IFMT == libc::S_IFCHR
                && nix::sys::stat::major(st.st_rdev) == 1
                && nix::sys::stat::minor(st.st_rdev) == 3
        }
        Err(_) => false,
    }
}

/// Step 3.
fn rlimits(limits: &Rlimits) -> Result<String, ConfineError> {
    const STEP: &str = "rlimits";
    // `None`: unlimited.
    let set = |resource: Resource, name: &str, value: Option<u64>| {
        let limit = value.map_or(RLIM_INFINITY, to_rlim);
        setrlimit(resource, limit, limit).map_err(step_err(STEP, format!("set {name}")))?;
        Ok::<_, ConfineError>(if limit == RLIM_INFINITY {
            format!("{name}=unlimited")
        } else {
            format!("{name}={limit}")
        })
    };
    let mut applied = vec![
        set(Resource::RLIMIT_CORE, "RLIMIT_CORE", Some(0))?,
        set(
            Resource::RLIMIT_NOFILE,
            "RLIMIT_NOFILE",
            Some(limits.nofile),
        )?,
        set(Resource::RLIMIT_FSIZE, "RLIMIT_FSIZE", limits.fsize_bytes)?,
        set(Resource::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK", Some(0))?,
        set(Resource::RLIMIT_NPROC, "RLIMIT_NPROC", Some(NPROC))?,
    ];
    if limits.fsize_bytes.is_some() {
        sys::ignore_sigxfsz().map_err(io_step_err(STEP, "ignore SIGXFSZ"))?;
        applied.push("SIGXFSZ ignored (EFBIG instead)".into());
    }
    Ok(applied.join(" "))
}

/// `value` as an `rlim_t`: 64 bits on x86_64 and aarch64; 32 bits on armv7, where a larger value
/// is clamped to the largest finite limit (never to "unlimited"). The report shows what applied.
// `rlim_t` is `u64` on 64-bit targets, where the conversion cannot fail.
#[allow(clippy::unnecessary_fallible_conversions)]
fn to_rlim(value: u64) -> libc::rlim_t {
    libc::rlim_t::try_from(value).unwrap_or(RLIM_INFINITY - 1)
}

/// Step 4.
fn identity(uid: u32, gid: u32) -> Result<String, ConfineError> {
    const STEP: &str = "identity";
    let caps_err = |what: &'static str| {
        move |e: caps::errors::CapsError| ConfineError::Step {
            step: STEP,
            what: what.into(),
            errno: e.to_string(),
        }
    };
    let known = sys::drop_bounding_set().map_err(io_step_err(STEP, "drop the bounding set"))?;
    caps::clear(None, CapSet::Ambient).map_err(caps_err("clear ambient capabilities"))?;
    nix::unistd::setgroups(&[]).map_err(step_err(STEP, "setgroups([])"))?;
    let (uid, gid) = (Uid::from_raw(uid), Gid::from_raw(gid));
    nix::unistd::setresgid(gid, gid, gid).map_err(step_err(STEP, format!("setresgid {gid}")))?;
    nix::unistd::setresuid(uid, uid, uid).map_err(step_err(STEP, format!("setresuid {uid}")))?;
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::clear(None, set).map_err(caps_err("capset to empty"))?;
    }
    // Changing uid clears the parent-death signal set at spawn; set it again, so the worker
    // dies with the supervisor thread that waits for it. (Had the supervisor died in between,
    // the worker finds its channel closed when it next reads it, and exits.)
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(step_err(STEP, "PR_SET_PDEATHSIG"))?;

    // Verify: nothing may be left.
    let verify = |what: String| ConfineError::Step {
        step: STEP,
        what,
        errno: "EPERM".into(),
    };
    for set in [
        CapSet::Effective,
        CapSet::Permitted,
        CapSet::Inheritable,
        CapSet::Ambient,
    ] {
        let left = caps::read(None, set).map_err(caps_err("capget"))?;
        if !left.is_empty() {
            return Err(verify(format!("capabilities left in {set:?}: {left:?}")));
        }
    }
    let bounding = sys::bounding_set().map_err(io_step_err(STEP, "read the bounding set"))?;
    if !bounding.is_empty() {
        return Err(verify(format!(
            "capabilities left in the bounding set: {bounding:?}"
        )));
    }
    let ids = nix::unistd::getresuid().map_err(step_err(STEP, "getresuid"))?;
    let gids = nix::unistd::getresgid().map_err(step_err(STEP, "getresgid"))?;
    if [ids.real, ids.effective, ids.saved] != [uid; 3]
        || [gids.real, gids.effective, gids.saved] != [gid; 3]
    {
        return Err(verify("uid/gid did not all change".into()));
    }
    let groups = nix::unistd::getgroups().map_err(step_err(STEP, "getgroups"))?;
    if !groups.is_empty() {
        return Err(verify(format!("supplementary groups left: {groups:?}")));
    }
    Ok(format!(
        "uid {uid} gid {gid} (real, effective, saved), no supplementary groups; every \
         capability set empty, bounding set of {known} dropped"
    ))
}

/// Step 5.
fn no_new_privs() -> Result<String, ConfineError> {
    const STEP: &str = "no_new_privs";
    nix::sys::prctl::set_no_new_privs().map_err(step_err(STEP, "PR_SET_NO_NEW_PRIVS"))?;
    if !nix::sys::prctl::get_no_new_privs().map_err(step_err(STEP, "PR_GET_NO_NEW_PRIVS"))? {
        return Err(ConfineError::Step {
            step: STEP,
            what: "PR_GET_NO_NEW_PRIVS reads 0 after setting it".into(),
            errno: "EPERM".into(),
        });
    }
    Ok("set".into())
}

/// The rights the storage directory gets: read, write, create, remove; no execute, no device
/// or socket nodes, no device ioctls.
fn storage_access() -> landlock::BitFlags<AccessFs> {
    let denied = make_bitflags!(AccessFs::{
        Execute | MakeChar | MakeBlock | MakeSock | MakeFifo | IoctlDev | ResolveUnix
    });
    AccessFs::from_all(LANDLOCK_ABI) & !denied
}

/// Step 6.
fn landlock(storage: Option<BorrowedFd<'_>>) -> Result<String, ConfineError> {
    let err = |e: landlock::RulesetError| ConfineError::Landlock(e.to_string());
    let mut ruleset = landlock::Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .map_err(err)?
        .handle_access(AccessNet::from_all(LANDLOCK_ABI))
        .map_err(err)?
        .scope(Scope::from_all(LANDLOCK_ABI))
        .map_err(err)?
        .create()
        .map_err(err)?;
    if let Some(fd) = storage {
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, storage_access()))
            .map_err(err)?;
    }
    // no_new_privs is step 5's job, not landlock's.
    let status = ruleset.no_new_privs(false).restrict_self().map_err(err)?;
    let (kernel, handled) = match status.landlock {
        LandlockStatus::Available {
            effective_abi,
            kernel_abi,
        } => (
            kernel_abi.map_or_else(|| effective_abi.to_string(), |v| v.to_string()),
            handled_at(effective_abi),
        ),
        LandlockStatus::NotEnabled => ("none (landlock not enabled at boot)".into(), String::new()),
        LandlockStatus::NotImplemented => ("none (kernel without landlock)".into(), String::new()),
    };
    let enforced = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced",
        RulesetStatus::PartiallyEnforced => "partially enforced",
        RulesetStatus::NotEnforced => {
            return Err(ConfineError::Landlock(format!(
                "not enforced (kernel ABI {kernel}); a worker never runs without landlock"
            )));
        }
    };
    let rule = match storage {
        Some(fd) => format!(
            "one rule: storage (fd {}) read/write/create/remove, no execute",
            fd.as_raw_fd()
        ),
        None => "no rule: no path is reachable".into(),
    };
    Ok(format!(
        "{enforced}: kernel ABI {kernel}, rights of ABI {} requested; {handled}; {rule}",
        LANDLOCK_ABI as i32
    ))
}

/// What a ruleset handles on a kernel whose landlock is `abi`, in words: an older kernel
/// handles fewer rights, and the report must not claim the ones it does not.
fn handled_at(abi: ABI) -> String {
    let fs = if AccessFs::from_all(abi) == AccessFs::from_all(LANDLOCK_ABI) {
        "every filesystem right".to_owned()
    } else {
        format!("the filesystem rights of ABI {}", abi as i32)
    };
    let mut handled = vec![fs];
    let mut not = Vec::new();
    if AccessNet::from_all(abi).is_empty() {
        not.push("TCP bind/connect (ABI 4; the network namespace still holds)");
    } else {
        handled.push("TCP bind/connect".to_owned());
    }
    if Scope::from_all(abi).is_empty() {
        not.push("abstract-unix-socket and signal scopes (ABI 6; the namespaces still hold)");
    } else {
        handled.push("abstract-unix-socket and signal scopes".to_owned());
    }
    let mut words = format!("handled: {}", handled.join(", "));
    if !not.is_empty() {
        words.push_str(&format!("; not handled by this kernel: {}", not.join(", ")));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_landlock_report_names_only_what_the_kernel_handles() {
        let newest = handled_at(LANDLOCK_ABI);
        assert_eq!(
            newest,
            "handled: every filesystem right, TCP bind/connect, abstract-unix-socket and signal \
             scopes"
        );
        // Linux 6.1 (Debian 12's armmp kernel, `cargo xtask vm`) has ABI 2.
        let old = handled_at(ABI::V2);
        assert!(
            old.starts_with(
                "handled: the filesystem rights of ABI 2; not handled by this kernel: TCP"
            ),
            "{old}"
        );
        assert!(old.contains("signal scopes (ABI 6"), "{old}");
        let tcp_only = handled_at(ABI::V4);
        assert!(
            tcp_only.contains("TCP bind/connect; not handled"),
            "{tcp_only}"
        );
        assert!(!tcp_only.contains("TCP bind/connect (ABI 4"), "{tcp_only}");
    }
}
