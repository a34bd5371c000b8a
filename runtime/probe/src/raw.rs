//! The probe's raw system calls: every `unsafe` block of this crate. Each function makes one
//! attempt and returns the kernel's answer; none keeps or shares memory with the kernel beyond
//! the call.

use std::ffi::{CStr, c_long};
use std::os::fd::RawFd;

/// `newfstatat` is `fstatat64` on 32-bit ARM.
#[cfg(not(target_arch = "arm"))]
const SYS_FSTATAT: c_long = libc::SYS_newfstatat;
#[cfg(target_arch = "arm")]
const SYS_FSTATAT: c_long = libc::SYS_fstatat64;

/// `fcntl` with 64-bit file locks is `fcntl64` on 32-bit ARM, the call libc (and so a worker)
/// makes there.
#[cfg(not(target_arch = "arm"))]
const SYS_FCNTL: c_long = libc::SYS_fcntl;
#[cfg(target_arch = "arm")]
const SYS_FCNTL: c_long = libc::SYS_fcntl64;

/// `mmap` takes its offset in pages (`mmap2`) on 32-bit ARM.
#[cfg(not(target_arch = "arm"))]
const SYS_MMAP: c_long = libc::SYS_mmap;
#[cfg(target_arch = "arm")]
const SYS_MMAP: c_long = libc::SYS_mmap2;

/// A number the kernel reads as a `long` (32 bits on armv7): a variadic `syscall()` argument
/// must have exactly that width, or the arguments after it land in the wrong registers.
fn long(value: i64) -> Result<c_long, i32> {
    c_long::try_from(value).map_err(|_| libc::EINVAL)
}

/// An address from [`mmap_anon`], as the pointer-sized argument the kernel takes.
fn address(addr: i64) -> Result<usize, i32> {
    usize::try_from(addr).map_err(|_| libc::EINVAL)
}

/// The kernel's answer: a non-negative return value, or the errno.
pub(crate) type SysResult = Result<i64, i32>;

// `c_long` is `i64` on x86_64 (the conversion does nothing there) and `i32` on armv7.
#[allow(clippy::useless_conversion)]
fn check(ret: c_long) -> SysResult {
    let ret = i64::from(ret);
    // libc's `syscall()` answers -1 and sets errno on failure; any other value is the kernel's
    // result, negative ones included (a 32-bit address above 2 GiB is a negative `c_long`).
    if ret == -1 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL))
    } else {
        Ok(ret)
    }
}

/// `openat(dirfd, path, flags, mode)`.
pub(crate) fn openat(dirfd: RawFd, path: &CStr, flags: i32, mode: u32) -> SysResult {
    // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
    check(unsafe { libc::syscall(libc::SYS_openat, dirfd, path.as_ptr(), flags, mode) })
}

/// `newfstatat(AT_FDCWD, path)` (`fstatat64` on ARM), discarding the result.
pub(crate) fn stat(path: &CStr) -> SysResult {
    // Larger than either architecture's `struct stat` / `stat64` (144 and 104 bytes).
    let mut st = [0u64; 32];
    // SAFETY: valid path string, a writable buffer larger than the kernel's struct.
    check(unsafe {
        libc::syscall(
            SYS_FSTATAT,
            libc::AT_FDCWD,
            path.as_ptr(),
            st.as_mut_ptr(),
            0,
        )
    })
}

/// `read(fd, buf)`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> SysResult {
    // SAFETY: `buf` is writable for its length.
    check(unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) })
}

/// `write(fd, buf)`.
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> SysResult {
    // SAFETY: `buf` is readable for its length.
    check(unsafe { libc::syscall(libc::SYS_write, fd, buf.as_ptr(), buf.len()) })
}

/// `pwrite64(fd, buf, offset)`, through libc: on 32-bit ARM the kernel takes the 64-bit
/// offset in an aligned register pair, which libc's wrapper arranges.
pub(crate) fn pwrite(fd: RawFd, buf: &[u8], offset: i64) -> SysResult {
    // SAFETY: `buf` is readable for its length.
    let ret = unsafe { libc::pwrite64(fd, buf.as_ptr().cast(), buf.len(), offset) };
    check(c_long::try_from(ret).unwrap_or(-1))
}

/// `close(fd)` of a descriptor this probe created and nothing else owns.
pub(crate) fn close(fd: RawFd) -> SysResult {
    // SAFETY: closing a descriptor number; callers pass only numbers they created.
    check(unsafe { libc::syscall(libc::SYS_close, fd) })
}

/// `socket(domain, type, protocol)`.
pub(crate) fn socket(domain: i32, kind: i32, protocol: i32) -> SysResult {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_socket, domain, kind, protocol) })
}

/// `connect(fd, sockaddr_un)`: a path, or an abstract name when `abstract_name`.
pub(crate) fn connect_unix(fd: RawFd, name: &[u8], abstract_name: bool) -> SysResult {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let offset = usize::from(abstract_name);
    if name.len() + offset >= addr.sun_path.len() {
        return Err(libc::ENAMETOOLONG);
    }
    for (slot, byte) in addr.sun_path.iter_mut().skip(offset).zip(name) {
        *slot = *byte as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + offset + name.len();
    // SAFETY: `addr` is a valid sockaddr_un and `len` does not exceed its size.
    check(unsafe {
        libc::syscall(
            libc::SYS_connect,
            fd,
            &addr as *const libc::sockaddr_un,
            len as libc::socklen_t,
        )
    })
}

/// `sendto(fd, buf, 0, 127.0.0.1:port)`.
pub(crate) fn sendto_loopback(fd: RawFd, port: u16, buf: &[u8]) -> SysResult {
    // SAFETY: an all-zero sockaddr_in is valid.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    addr.sin_family = libc::AF_INET as libc::sa_family_t;
    addr.sin_port = port.to_be();
    addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
    // SAFETY: valid buffer and address of the given sizes.
    check(unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            0,
            &addr as *const libc::sockaddr_in,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    })
}

/// `fork()` as the raw syscall (glibc's fork runs atfork handlers); the child exits at once.
pub(crate) fn fork() -> SysResult {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: fork without arguments; the child only calls _exit, which is async-signal-safe.
    let ret = unsafe { libc::syscall(libc::SYS_fork) };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: clone(SIGCHLD) is fork; the child only calls _exit.
    let ret = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0, 0, 0, 0) };
    if ret == 0 {
        // SAFETY: _exit in the child.
        unsafe { libc::_exit(0) }
    }
    check(ret)
}

/// `clone3` with no flags (a new process); the child exits at once.
pub(crate) fn clone3() -> SysResult {
    let mut args = [0u64; 11];
    args[4] = libc::SIGCHLD as u64;
    // SAFETY: `args` is a zeroed clone_args with exit_signal set, 88 bytes long.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, args.as_mut_ptr(), 88usize) };
    if ret == 0 {
        // SAFETY: _exit in the child.
        unsafe { libc::_exit(0) }
    }
    check(ret)
}

/// `execve(path, [path], [])`.
pub(crate) fn execve(path: &CStr) -> SysResult {
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: NUL-terminated path, null-terminated argv/envp arrays of valid pointers.
    check(unsafe {
        libc::syscall(
            libc::SYS_execve,
            path.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
        )
    })
}

/// `memfd_create`, then `execveat(fd, "", AT_EMPTY_PATH)` of a script written into it.
pub(crate) fn memfd_exec() -> SysResult {
    let name = c"probe";
    // SAFETY: valid name string, integer flags.
    let fd = check(unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), 0) })?;
    let fd = RawFd::try_from(fd).map_err(|_| libc::EBADF)?;
    write(fd, b"#!/bin/sh\nexit 0\n")?;
    let empty = c"";
    let argv = [name.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    // SAFETY: valid descriptor, empty path with AT_EMPTY_PATH, null-terminated arrays.
    check(unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    })
}

/// `ptrace(request, pid, 0, 0)`.
pub(crate) fn ptrace(request: libc::c_uint, pid: i32) -> SysResult {
    // SAFETY: integer arguments only, null addr/data.
    check(unsafe { libc::syscall(libc::SYS_ptrace, request, pid, 0usize, 0usize) })
}

/// `kill(pid, signal)`.
pub(crate) fn kill(pid: i32, signal: i32) -> SysResult {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_kill, pid, signal) })
}

/// `mount("none", "/", "tmpfs", 0, NULL)`.
pub(crate) fn mount_tmpfs_on_root() -> SysResult {
    let (src, target, fstype) = (c"none", c"/", c"tmpfs");
    // SAFETY: valid strings, null data.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount,
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0usize,
            std::ptr::null::<libc::c_void>(),
        )
    })
}

/// `unshare(flags)`.
pub(crate) fn unshare(flags: i32) -> SysResult {
    // SAFETY: integer argument only.
    check(unsafe { libc::syscall(libc::SYS_unshare, flags) })
}

/// `setns(fd, nstype)`.
pub(crate) fn setns(fd: RawFd, nstype: i32) -> SysResult {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_setns, fd, nstype) })
}

/// `bpf(BPF_MAP_CREATE, attr)` for a tiny array map.
pub(crate) fn bpf_map_create() -> SysResult {
    // map_type=BPF_MAP_TYPE_ARRAY(2), key_size=4, value_size=4, max_entries=1.
    let mut attr = [0u32; 32];
    attr[..4].copy_from_slice(&[2, 4, 4, 1]);
    // SAFETY: `attr` is a readable bpf_attr-sized buffer.
    check(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            0,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    })
}

/// `io_uring_setup(1, params)`.
pub(crate) fn io_uring_setup() -> SysResult {
    let mut params = [0u8; 120];
    // SAFETY: `params` is a writable io_uring_params-sized buffer.
    check(unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) })
}

/// `keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1)`: would join/create the session
/// keyring.
pub(crate) fn keyctl_session() -> SysResult {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 1) })
}

/// `perf_event_open` of a software CPU-clock counter on this process.
pub(crate) fn perf_event_open() -> SysResult {
    // perf_event_attr, PERF_ATTR_SIZE_VER0 (64 bytes): type=PERF_TYPE_SOFTWARE (1), size=64,
    // config=PERF_COUNT_SW_CPU_CLOCK (0), everything else zero.
    let mut attr = [0u32; 16];
    attr[0] = 1;
    attr[1] = 64;
    // SAFETY: a readable 64-byte attr, integer arguments.
    check(unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_ptr(), 0, -1, -1, 0) })
}

/// `userfaultfd(O_CLOEXEC)`.
pub(crate) fn userfaultfd() -> SysResult {
    // SAFETY: integer argument only.
    check(unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) })
}

/// `setuid(uid)` as the raw syscall.
pub(crate) fn setuid(uid: u32) -> SysResult {
    // SAFETY: integer argument only.
    check(unsafe { libc::syscall(libc::SYS_setuid, uid) })
}

/// `fchmodat(dirfd, path, mode, 0)`.
pub(crate) fn fchmodat(dirfd: RawFd, path: &CStr, mode: u32) -> SysResult {
    // SAFETY: valid path string.
    check(unsafe { libc::syscall(libc::SYS_fchmodat, dirfd, path.as_ptr(), mode) })
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`.
pub(crate) fn dup(fd: RawFd) -> SysResult {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(SYS_FCNTL, fd, libc::F_DUPFD_CLOEXEC, 0) })
}

/// `prctl(PR_GET_NO_NEW_PRIVS)`.
pub(crate) fn get_no_new_privs() -> SysResult {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_prctl, libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) })
}

/// Anonymous read-write mapping of `len` bytes; returns its address.
pub(crate) fn mmap_anon(len: usize, prot: i32) -> SysResult {
    // SAFETY: a new private anonymous mapping touches no existing memory.
    let ret = unsafe {
        libc::syscall(
            SYS_MMAP,
            0usize,
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0usize,
        )
    };
    // The address as an unsigned number: above 2 GiB it is a negative `c_long` on armv7.
    check(ret).map(|_| ret as usize as i64)
}

/// Writes `byte` at every page of a mapping made by [`mmap_anon`] (read-write, `len` bytes).
pub(crate) fn touch(addr: i64, len: usize, byte: u8) {
    let base = addr as usize as *mut u8;
    for offset in (0..len).step_by(4096) {
        // SAFETY: `base..base+len` is a private read-write mapping this probe created.
        unsafe { base.add(offset).write_volatile(byte) };
    }
}

/// `mprotect(addr, len, prot)` of a mapping made by [`mmap_anon`].
pub(crate) fn mprotect(addr: i64, len: usize, prot: i32) -> SysResult {
    let addr = address(addr)?;
    // SAFETY: changes protection of a mapping this probe created and no Rust reference covers.
    check(unsafe { libc::syscall(libc::SYS_mprotect, addr, len, prot) })
}

/// `munmap(addr, len)` of a mapping made by [`mmap_anon`].
pub(crate) fn munmap(addr: i64, len: usize) -> SysResult {
    let addr = address(addr)?;
    // SAFETY: unmaps a mapping this probe created and no Rust reference covers.
    check(unsafe { libc::syscall(libc::SYS_munmap, addr, len) })
}

/// `clock_nanosleep(CLOCK_MONOTONIC, 0, nanoseconds)`.
pub(crate) fn sleep_nanos(nanos: i64) -> SysResult {
    let request = libc::timespec {
        tv_sec: 0,
        tv_nsec: long(nanos)?,
    };
    // SAFETY: a valid timespec, null remainder.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clock_nanosleep,
            libc::CLOCK_MONOTONIC,
            0,
            &request as *const libc::timespec,
            std::ptr::null_mut::<libc::timespec>(),
        )
    };
    check(ret)
}

/// `futex(word, op, value, timeout)` on a word of this probe's own, with a relative
/// `timeout` in nanoseconds (for a wait) or none. `Err(ETIMEDOUT)` is how a wait that nobody
/// woke ends.
pub(crate) fn futex(
    word: &std::sync::atomic::AtomicU32,
    op: i32,
    value: u32,
    nanos: Option<i64>,
) -> SysResult {
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline.
    let mut deadline = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if let Some(nanos) = nanos {
        // SAFETY: writes the current time into a valid timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut deadline) };
        deadline.tv_nsec += long(nanos)?;
        deadline.tv_sec += deadline.tv_nsec / 1_000_000_000;
        deadline.tv_nsec %= 1_000_000_000;
    }
    let timeout = match nanos {
        Some(_) => &deadline as *const libc::timespec,
        None => std::ptr::null(),
    };
    // SAFETY: the word is a live AtomicU32 of the caller's; the timeout a valid timespec or
    // null; the bitset matches every waiter.
    check(unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            op,
            value,
            timeout,
            std::ptr::null::<u32>(),
            !0u32,
        )
    })
}

/// `clock_gettime(CLOCK_MONOTONIC)` as the raw syscall (not the vDSO); returns seconds.
// `time_t` is `i64` on x86_64 (the conversion does nothing there) and `i32` on armv7.
#[allow(clippy::useless_conversion)]
pub(crate) fn monotonic_seconds() -> SysResult {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a writable timespec.
    check(unsafe {
        libc::syscall(
            libc::SYS_clock_gettime,
            libc::CLOCK_MONOTONIC,
            &mut now as *mut libc::timespec,
        )
    })
    .map(|_| i64::from(now.tv_sec))
}

/// `setitimer(ITIMER_REAL, seconds)`; 0 cancels.
pub(crate) fn setitimer(seconds: i64) -> SysResult {
    // SAFETY: an all-zero itimerval is valid.
    let mut value: libc::itimerval = unsafe { std::mem::zeroed() };
    value.it_value.tv_sec = long(seconds)?;
    // SAFETY: valid itimerval pointer, null old value.
    check(unsafe {
        libc::syscall(
            libc::SYS_setitimer,
            libc::ITIMER_REAL,
            &value as *const libc::itimerval,
            std::ptr::null_mut::<libc::itimerval>(),
        )
    })
}

/// The address of a function of this binary (its code pages).
pub(crate) fn own_code_address() -> i64 {
    own_code_address as *const () as usize as i64
}

/// Sets `SO_RCVTIMEO` on a socket (for the test harness: a hung probe must not hang the test).
pub fn set_recv_timeout(fd: RawFd, seconds: i64) -> std::io::Result<()> {
    let tv = libc::timeval {
        tv_sec: long(seconds).map_err(std::io::Error::from_raw_os_error)?,
        tv_usec: 0,
    };
    // SAFETY: a valid timeval of the stated size.
    let ret = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 0)`: the kernel accepts only 1, so this always fails.
pub(crate) fn clear_no_new_privs() -> SysResult {
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_prctl, libc::PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0) })
}
