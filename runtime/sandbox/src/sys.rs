//! Every `unsafe` block of this crate, each behind a safe function whose contract the block
//! upholds. Other modules are safe code.
//!
//! The calls here are the ones no safe wrapper in `nix`/`rustix` offers in the form we need:
//! `clone` (shared memory, own stack) and `clone3` with namespaces and a pidfd, `waitid(P_PIDFD)`, `pidfd_send_signal`, `close_range`,
//! the capability bounding set, and adopting descriptor 3.

use std::ffi::{CStr, CString, c_char, c_int};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// `CLONE_INTO_CGROUP` (Linux 5.7), spelled here as the 64-bit flag `clone3` takes.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// `CLONE_PIDFD` (Linux 5.2).
const CLONE_PIDFD: c_int = 0x1000;
/// The stack the child runs on while it shares the parent's memory (`CLONE_VM`), until
/// `execve`: it runs only [`child_after_clone`], a few kilobytes deep.
const CHILD_STACK_BYTES: usize = 128 * 1024;
/// Below that stack, never mapped accessible: an overflow faults instead of writing into
/// whatever the parent has mapped there. 64 KiB covers every page size Linux uses on our
/// targets.
const CHILD_GUARD_BYTES: usize = 64 * 1024;
/// Size of `struct clone_args` up to and including `cgroup` (`CLONE_ARGS_SIZE_VER2`).
const CLONE_ARGS_SIZE_VER2: usize = 88;
/// The descriptor a spawned worker finds its channel on.
pub(crate) const CHANNEL_FD: RawFd = 3;
/// Descriptors the parent moves its spawn inputs to, so that `dup2` onto 0–3 never clobbers one.
const HIGH_FD_FLOOR: RawFd = 10;
/// One more than the highest signal number (`_NSIG`).
const NSIG: c_int = 65;

/// `struct clone_args` of `linux/sched.h` (not in every `libc` target, so defined here).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// The namespaces every worker starts in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Namespaces;

impl Namespaces {
    fn flags() -> c_int {
        libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWNET
    }
}

/// What the child of [`spawn_process`] gets.
pub(crate) struct RawSpawn<'a> {
    pub(crate) program: &'a CStr,
    pub(crate) argv: &'a [CString],
    pub(crate) envp: &'a [CString],
    /// Becomes descriptor 3.
    pub(crate) channel: BorrowedFd<'a>,
    /// Becomes descriptors 0, 1 and 2.
    pub(crate) devnull: BorrowedFd<'a>,
    /// A cgroup v2 directory to start the child in (`CLONE_INTO_CGROUP`, which needs
    /// `clone3` without `CLONE_VM`: the copying start, see [`spawn_process`]).
    pub(crate) cgroup: Option<BorrowedFd<'a>>,
    /// The `tasks` files of its cgroup v1 groups, open for writing: the child writes `0` to
    /// each, moving itself. A single thread moving itself skips the kernel's global
    /// threadgroup lock (and the RCU grace period it waits for), which moving a pid from the
    /// parent through `cgroup.procs` pays — milliseconds per start.
    pub(crate) v1_tasks: &'a [BorrowedFd<'a>],
}

/// Why [`spawn_process`] failed.
#[derive(Debug)]
pub(crate) enum SpawnFailure {
    /// Preparing in the parent (`what` names the call).
    Prepare(&'static str, io::Error),
    /// `clone3` / `clone` itself.
    Clone(io::Error),
    /// In the child, before or at `execve`; the child has been reaped.
    Child(&'static str, io::Error),
}

/// Starts `spawn.program` in new mount, pid, ipc, uts and net namespaces and execs it at once.
/// Between the clone and `execve` the child runs only async-signal-safe calls on memory
/// prepared before the clone (like `posix_spawn`), so no lock or allocator state of this
/// (possibly multi-threaded) process is touched there. Returns the child's pid and pidfd.
///
/// Two ways to clone, the same child:
/// - usually `clone(CLONE_VM | CLONE_VFORK)` on a small private stack, as `posix_spawn` does:
///   nothing of the supervisor's memory is copied, and the calling thread waits until the
///   child has exec'd or failed. A copying start (`fork`-like) costs time in proportion to the
///   supervisor's mapped memory — page tables copied, every page then write-protected and
///   faulted back in by the supervisor — about 1 ms more per start with 8 MiB, 3 ms with 32.
/// - with a cgroup v2 group, `clone3(CLONE_INTO_CGROUP)`, which places the child atomically
///   (moving itself through `cgroup.procs` would take the kernel's global threadgroup lock);
///   `clone3` has no way to run a function on a new stack, so that start copies.
pub(crate) fn spawn_process(spawn: &RawSpawn<'_>) -> Result<(libc::pid_t, OwnedFd), SpawnFailure> {
    let argv: Vec<*const c_char> = spawn
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const c_char> = spawn
        .envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();

    // Move the inputs above fd 9: the child then dups them onto 0-3 in any order without one
    // overwriting another.
    let channel = dup_high(spawn.channel).map_err(|e| SpawnFailure::Prepare("dup channel", e))?;
    let devnull = dup_high(spawn.devnull).map_err(|e| SpawnFailure::Prepare("dup /dev/null", e))?;
    let (err_read, pipe_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SpawnFailure::Prepare("pipe2", e.into()))?;
    let err_write =
        dup_high(pipe_write.as_fd_ref()).map_err(|e| SpawnFailure::Prepare("dup pipe", e))?;
    // Only the high copy may stay open: the parent reads end-of-file once the child's is gone.
    drop(pipe_write);
    let v1_tasks = spawn
        .v1_tasks
        .iter()
        .map(|fd| dup_high(*fd))
        .collect::<io::Result<Vec<OwnedFd>>>()
        .map_err(|e| SpawnFailure::Prepare("dup cgroup tasks", e))?;
    let v1_task_fds: Vec<RawFd> = v1_tasks.iter().map(AsRawFd::as_raw_fd).collect();
    let start = match spawn.cgroup {
        Some(cgroup) => Start::IntoCgroup(cgroup),
        None => Start::SharedMemory(
            ChildStack::new().map_err(|e| SpawnFailure::Prepare("child stack", e))?,
        ),
    };

    // SAFETY: an all-zero `sigaction` is a valid value (SIG_DFL, empty mask, no flags).
    let mut default_action: libc::sigaction = unsafe { std::mem::zeroed() };
    default_action.sa_sigaction = libc::SIG_DFL;
    let empty = libc_sigset_empty();
    let inputs = ChildInputs {
        program: spawn.program,
        argv: &argv,
        envp: &envp,
        channel: channel.as_raw_fd(),
        devnull: devnull.as_raw_fd(),
        err_write: err_write.as_raw_fd(),
        v1_tasks: &v1_task_fds,
        default_action: &default_action,
        empty: &empty,
    };

    // Block every signal around the clone so that no handler of this process runs in the child
    // before it has reset the dispositions (the child unblocks after resetting).
    let mut previous = libc_sigset_empty();
    let mut full = libc_sigset_empty();
    // SAFETY: `full` and `previous` are valid, writable sigset_t values owned by this frame.
    let blocked = unsafe {
        libc::sigfillset(&mut full);
        libc::pthread_sigmask(libc::SIG_SETMASK, &full, &mut previous)
    };
    if blocked != 0 {
        return Err(SpawnFailure::Prepare(
            "block signals",
            io::Error::from_raw_os_error(blocked),
        ));
    }

    let mut pidfd: c_int = -1;
    let ret = match &start {
        Start::SharedMemory(stack) => {
            let flags = Namespaces::flags()
                | libc::CLONE_VM
                | libc::CLONE_VFORK
                | CLONE_PIDFD
                | libc::SIGCHLD;
            // SAFETY: `child_entry` gets a pointer to `inputs`, which lives in this frame until
            // after the call returns; with CLONE_VFORK this thread is suspended until the child
            // has exec'd or exited, so the child's reads of `inputs` (and everything it points
            // to) cannot race with anything of this thread. The child runs on `stack`, mapped
            // for it alone, with a guard below. With CLONE_PIDFD, the kernel stores the pidfd
            // in `pidfd` (the parent_tid argument), a writable int of this frame.
            unsafe {
                libc::clone(
                    child_entry,
                    stack.top(),
                    flags,
                    std::ptr::addr_of!(inputs).cast_mut().cast(),
                    std::ptr::addr_of_mut!(pidfd),
                )
            }
        }
        Start::IntoCgroup(cgroup) => {
            let mut args = CloneArgs {
                flags: u64::from(Namespaces::flags().unsigned_abs())
                    | u64::from(CLONE_PIDFD.unsigned_abs())
                    | CLONE_INTO_CGROUP,
                pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
                exit_signal: u64::from(libc::SIGCHLD.unsigned_abs()),
                cgroup: u64::from(cgroup.as_raw_fd().unsigned_abs()),
                ..CloneArgs::default()
            };
            // SAFETY: `args` is a valid clone_args of CLONE_ARGS_SIZE_VER2 bytes that lives
            // across the call; `pidfd` is a writable int. Without CLONE_VM the child gets a
            // copy of this address space, so everything it touches (`inputs` and what it
            // points to) was prepared before the call and stays valid.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_clone3,
                    std::ptr::addr_of_mut!(args),
                    CLONE_ARGS_SIZE_VER2,
                )
            };
            if ret == 0 {
                child_after_clone(&inputs);
            }
            c_int::try_from(ret).unwrap_or(-1)
        }
    };
    let clone_error = io::Error::last_os_error();
    // SAFETY: `previous` holds the mask read by the pthread_sigmask call above.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
    }
    drop(start);
    drop(err_write);
    drop(channel);
    drop(devnull);
    drop(v1_tasks);
    if ret < 0 {
        return Err(SpawnFailure::Clone(clone_error));
    }
    let pid: libc::pid_t = ret;
    // SAFETY: the clone with CLONE_PIDFD succeeded, so `pidfd` is a new descriptor owned by us.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };

    // The child writes [stage, errno] to the pipe if anything before exec failed; a successful
    // execve closes the pipe (close-on-exec) and we read end-of-file.
    let mut report = [0u8; 5];
    let mut got = 0;
    while got < report.len() {
        match nix::unistd::read(&err_read, &mut report[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(SpawnFailure::Prepare("read exec status", e.into())),
        }
    }
    if got == 0 {
        return Ok((pid, pidfd));
    }
    let _ = wait_pidfd(pidfd.as_fd_ref(), false);
    let stage = match report[0] {
        1 => "dup2 onto 0-3",
        2 => "close_range",
        4 => "joining its cgroup v1 groups",
        5 => "PR_SET_PDEATHSIG",
        _ => "execve",
    };
    let errno = i32::from_ne_bytes([report[1], report[2], report[3], report[4]]);
    Err(SpawnFailure::Child(
        stage,
        io::Error::from_raw_os_error(errno),
    ))
}

/// How the child is cloned (see [`spawn_process`]).
enum Start<'a> {
    /// `clone(CLONE_VM | CLONE_VFORK)` on this stack.
    SharedMemory(ChildStack),
    /// `clone3(CLONE_INTO_CGROUP)` into this cgroup v2 directory; a copying start.
    IntoCgroup(BorrowedFd<'a>),
}

/// What the child needs, prepared before the clone. With `CLONE_VM` the child reads it through
/// a pointer into the suspended parent's frame.
struct ChildInputs<'a> {
    program: &'a CStr,
    argv: &'a [*const c_char],
    envp: &'a [*const c_char],
    channel: RawFd,
    devnull: RawFd,
    err_write: RawFd,
    v1_tasks: &'a [RawFd],
    default_action: &'a libc::sigaction,
    empty: &'a libc::sigset_t,
}

/// The child's private stack for the `CLONE_VM` start: mapped for one spawn, with an
/// inaccessible guard below it, unmapped once the child has exec'd or exited.
struct ChildStack {
    base: *mut libc::c_void,
}

impl ChildStack {
    const LEN: usize = CHILD_GUARD_BYTES + CHILD_STACK_BYTES;

    fn new() -> io::Result<ChildStack> {
        // SAFETY: an anonymous private mapping at an address the kernel chooses touches no
        // existing memory; the result is checked.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base };
        // SAFETY: the first CHILD_GUARD_BYTES of the mapping made above belong to it alone.
        if unsafe { libc::mprotect(base, CHILD_GUARD_BYTES, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The highest address (stacks grow down); page-aligned, so 16-byte aligned.
    fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(Self::LEN)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: `base` is this value's own mapping of LEN bytes; the child that used it has
        // exec'd or exited (CLONE_VFORK), so nothing runs on it any more.
        unsafe {
            libc::munmap(self.base, Self::LEN);
        }
    }
}

/// The entry of the `CLONE_VM` child, on its private stack.
extern "C" fn child_entry(inputs: *mut libc::c_void) -> c_int {
    // SAFETY: `spawn_process` passes a pointer to its `ChildInputs`, valid and unchanged while
    // this child runs (the parent thread is suspended until execve or exit).
    let inputs = unsafe { &*inputs.cast::<ChildInputs<'_>>() };
    child_after_clone(inputs)
}

/// The child side of [`spawn_process`]. Never returns.
fn child_after_clone(inputs: &ChildInputs<'_>) -> ! {
    let ChildInputs {
        program,
        argv,
        envp,
        channel,
        devnull,
        err_write,
        v1_tasks,
        default_action,
        empty,
    } = *inputs;
    let fail = |stage: u8| -> ! {
        // SAFETY: __errno_location returns this thread's errno slot; write and _exit are
        // async-signal-safe and get valid arguments.
        unsafe {
            let errno = (*libc::__errno_location()).to_ne_bytes();
            let msg = [stage, errno[0], errno[1], errno[2], errno[3]];
            libc::write(err_write, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        }
    };
    // SAFETY: every call below is async-signal-safe and gets descriptors or pointers prepared
    // before the clone (the argv/envp arrays end with a null pointer and point at live CStrings).
    unsafe {
        for signal in 1..NSIG {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                // glibc refuses its two internal signals; that is fine.
                libc::sigaction(signal, default_action, std::ptr::null_mut());
            }
        }
        // The worker must not outlive the supervisor thread that started it (which waits for
        // it): a supervisor that dies, even by SIGKILL, takes its workers with it, and a new
        // one never finds stray copies of its apps running.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) < 0
        {
            fail(5);
        }
        for &tasks in v1_tasks {
            if libc::write(tasks, b"0".as_ptr().cast(), 1) != 1 {
                fail(4);
            }
        }
        for target in 0..3 {
            if libc::dup2(devnull, target) < 0 {
                fail(1);
            }
        }
        if libc::dup2(channel, CHANNEL_FD) < 0 {
            fail(1);
        }
        // Everything above the channel closes at execve (including the status pipe).
        if libc::syscall(
            libc::SYS_close_range,
            4u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) < 0
        {
            fail(2);
        }
        libc::sigprocmask(libc::SIG_SETMASK, empty, std::ptr::null_mut());
        libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
    }
    fail(3)
}

fn libc_sigset_empty() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed value it is given.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

/// `fcntl(F_DUPFD_CLOEXEC, 10)`.
fn dup_high(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a valid borrowed descriptor returns a new descriptor or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, HIGH_FD_FLOOR) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Borrowing helper (`AsFd` without importing the trait everywhere).
trait AsFdRef {
    fn as_fd_ref(&self) -> BorrowedFd<'_>;
}

impl AsFdRef for OwnedFd {
    fn as_fd_ref(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}

/// How a child ended, from `waitid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RawExit {
    /// `CLD_EXITED` with this code.
    Exited(i32),
    /// `CLD_KILLED` or `CLD_DUMPED` by this signal.
    Signaled(i32),
}

/// `waitid(P_PIDFD, pidfd, WEXITED [| WNOHANG])`: `None` if `nohang` and it still runs.
pub(crate) fn wait_pidfd(pidfd: BorrowedFd<'_>, nohang: bool) -> io::Result<Option<RawExit>> {
    let id = libc::id_t::try_from(pidfd.as_raw_fd())
        .map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    let flags = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
    loop {
        // SAFETY: an all-zero siginfo_t is valid; waitid fills it in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a writable siginfo_t; the id is a pidfd we borrow.
        let ret = unsafe { libc::waitid(libc::P_PIDFD, id, &mut info, flags) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        // SAFETY: waitid succeeded, so the SIGCHLD fields of `info` are initialised (all zero
        // under WNOHANG when the child has not changed state).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => RawExit::Exited(status),
            _ => RawExit::Signaled(status),
        }));
    }
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)`.
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: c_int) -> io::Result<()> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Closes every descriptor of this process except those in `keep`.
///
/// This ends the life of descriptors other code may consider its own; [`crate::confine`]
/// documents that its caller holds no descriptor but the channel and the storage directory,
/// which are in `keep`.
pub(crate) fn close_all_except(keep: &[RawFd]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut first = 0u32;
    for &kept in &keep {
        if kept > first {
            close_range(first, kept - 1)?;
        }
        first = kept.saturating_add(1);
    }
    close_range(first, u32::MAX)
}

fn close_range(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range only closes descriptors; see close_all_except for ownership.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Drops every capability from the bounding set (`PR_CAPBSET_DROP` for 0, 1, … until the kernel
/// says the number is not a capability). Returns how many numbers the kernel knows.
pub(crate) fn drop_bounding_set() -> io::Result<u32> {
    let mut cap: u32 = 0;
    loop {
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) && cap > 0 {
                return Ok(cap);
            }
            return Err(err);
        }
        cap += 1;
    }
}

/// Capabilities still in the bounding set (`PR_CAPBSET_READ`), by number.
pub(crate) fn bounding_set() -> io::Result<Vec<u32>> {
    let mut left = Vec::new();
    for cap in 0u32..64 {
        // SAFETY: prctl with integer arguments only.
        let ret = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(err);
        }
        if ret == 1 {
            left.push(cap);
        }
    }
    Ok(left)
}

static CHANNEL_ADOPTED: AtomicBool = AtomicBool::new(false);

/// Takes ownership of descriptor 3 if it is a socket and nobody adopted it before.
pub(crate) fn adopt_channel_fd() -> io::Result<OwnedFd> {
    if CHANNEL_ADOPTED.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other("descriptor 3 was adopted already"));
    }
    let st = fstat_raw(CHANNEL_FD)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::other("descriptor 3 is not a socket"));
    }
    // SAFETY: fd 3 is open (fstat succeeded), and the flag above makes this the only OwnedFd
    // ever created for it by this crate; spawn's contract is that fd 3 is the worker's channel.
    Ok(unsafe { OwnedFd::from_raw_fd(CHANNEL_FD) })
}

/// `fstat` on a descriptor number (an unused number is an error, not undefined behaviour).
pub(crate) fn fstat_raw(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is valid; fstat fills it in or fails.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat with a writable stat; any descriptor number is acceptable input.
    if unsafe { libc::fstat(fd, &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Sets SIGXFSZ to SIG_IGN, so that a write past RLIMIT_FSIZE fails with EFBIG instead of
/// killing the worker.
pub(crate) fn ignore_sigxfsz() -> io::Result<()> {
    // SAFETY: installing SIG_IGN runs no code of ours in signal context.
    let previous = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    if previous == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
