//! Starting a worker: `clone3` into fresh namespaces, then `execve` at once.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::cgroup::{AppCgroup, CgroupError};
use crate::errno_name;
use crate::sys::{self, RawExit, RawSpawn, SpawnFailure};

/// The environment every worker starts with: empty. Nothing of the supervisor's environment
/// (which could steer glibc, e.g. `MALLOC_*`, `LD_*` are ignored for root anyway) reaches it.
pub const WORKER_ENV: &[&str] = &[];

/// What to start.
#[derive(Debug)]
pub struct SpawnRequest<'a> {
    program: PathBuf,
    args: Vec<OsString>,
    channel: BorrowedFd<'a>,
    cgroup: Option<&'a AppCgroup>,
}

impl<'a> SpawnRequest<'a> {
    /// Starts `program` (an absolute path) with `channel` (the worker's end of a
    /// [`warden_ipc::Channel`] pair) as its descriptor 3.
    pub fn new(program: impl Into<PathBuf>, channel: BorrowedFd<'a>) -> SpawnRequest<'a> {
        SpawnRequest {
            program: program.into(),
            args: Vec::new(),
            channel,
            cgroup: None,
        }
    }

    /// Appends arguments (`argv[0]` is the program path).
    pub fn args<I, S>(mut self, args: I) -> SpawnRequest<'a>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts the worker in this app's cgroup: at `clone3` for cgroup v2 (`CLONE_INTO_CGROUP`),
    /// for cgroup v1 by the child itself before `execve` (before `spawn` returns).
    pub fn cgroup(mut self, cgroup: &'a AppCgroup) -> SpawnRequest<'a> {
        self.cgroup = Some(cgroup);
        self
    }
}

/// Why a worker could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    #[error("program path {path} is not absolute or contains a NUL byte")]
    BadProgram { path: PathBuf },
    #[error("an argument contains a NUL byte")]
    BadArgument,
    #[error("open /dev/null: {0}")]
    DevNull(String),
    #[error("{what}: {errno}")]
    Prepare { what: &'static str, errno: String },
    #[error("clone3 into new namespaces: {errno}")]
    Clone { errno: String },
    #[error("in the child, {stage} of {program}: {errno}")]
    Exec {
        stage: &'static str,
        program: PathBuf,
        errno: String,
    },
    #[error("placing the worker in its cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    #[error("{what} of worker {pid}: {errno}")]
    Process {
        what: &'static str,
        pid: u32,
        errno: String,
    },
}

/// How a worker ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerExit {
    /// It exited with this code.
    Exited(i32),
    /// Killed by SIGSYS: it made a system call its seccomp profile forbids.
    SecurityViolation,
    /// Killed by SIGKILL: by the supervisor, or by the kernel's OOM killer (ask the cgroup,
    /// [`AppCgroup::oom_kills`]).
    Killed,
    /// Killed by another signal (its number).
    Signaled(i32),
}

impl WorkerExit {
    fn from_raw(raw: RawExit) -> WorkerExit {
        match raw {
            RawExit::Exited(code) => WorkerExit::Exited(code),
            RawExit::Signaled(libc::SIGSYS) => WorkerExit::SecurityViolation,
            RawExit::Signaled(libc::SIGKILL) => WorkerExit::Killed,
            RawExit::Signaled(signal) => WorkerExit::Signaled(signal),
        }
    }
}

/// A started worker. Dropping it unreaped kills it (SIGKILL) and reaps it: a worker never
/// outlives the handle that started it.
#[derive(Debug)]
pub struct SandboxChild {
    pid: u32,
    pidfd: OwnedFd,
    exit: Option<WorkerExit>,
}

impl SandboxChild {
    /// The worker's pid in the supervisor's pid namespace (it is pid 1 in its own).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The pidfd, e.g. to poll for the worker's end (readable when it exited).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Waits for the worker to end and reaps it.
    pub fn wait(&mut self) -> Result<WorkerExit, SpawnError> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let raw = sys::wait_pidfd(self.pidfd.as_fd(), false)
            .map_err(|e| self.error("waitid", &e))?
            .ok_or_else(|| self.error("waitid", &io::Error::other("no state change")))?;
        let exit = WorkerExit::from_raw(raw);
        self.exit = Some(exit);
        Ok(exit)
    }

    /// Reaps the worker if it ended; `None` while it runs.
    pub fn try_wait(&mut self) -> Result<Option<WorkerExit>, SpawnError> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        let raw =
            sys::wait_pidfd(self.pidfd.as_fd(), true).map_err(|e| self.error("waitid", &e))?;
        self.exit = raw.map(WorkerExit::from_raw);
        Ok(self.exit)
    }

    /// Sends SIGKILL through the pidfd (never to a recycled pid). Killing a worker that already
    /// ended is not an error.
    pub fn kill(&self) -> Result<(), SpawnError> {
        if self.exit.is_some() {
            return Ok(());
        }
        match sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(self.error("pidfd_send_signal SIGKILL", &e)),
        }
    }

    fn error(&self, what: &'static str, err: &io::Error) -> SpawnError {
        SpawnError::Process {
            what,
            pid: self.pid,
            errno: errno_name(err),
        }
    }
}

impl Drop for SandboxChild {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.kill();
            let _ = self.wait();
        }
    }
}

/// Starts `request.program` in new mount, pid, ipc, uts and net namespaces, as pid 1 of its
/// pid namespace with only a down `lo`, by `clone3` followed at once by `execve` (see
/// `docs/sandbox.md`). The child gets: fds 0, 1, 2 = `/dev/null`, fd 3 = the channel, nothing
/// else; the environment [`WORKER_ENV`]; an empty signal mask and default signal dispositions;
/// the supervisor's uid (it confines itself, [`crate::confine`]).
pub fn spawn(request: &SpawnRequest<'_>) -> Result<SandboxChild, SpawnError> {
    let program = c_path(&request.program)?;
    let mut argv = vec![program.clone()];
    for arg in &request.args {
        argv.push(CString::new(arg.as_bytes()).map_err(|_| SpawnError::BadArgument)?);
    }
    let envp: Vec<CString> = WORKER_ENV
        .iter()
        .map(|v| CString::new(*v).map_err(|_| SpawnError::BadArgument))
        .collect::<Result<_, _>>()?;
    let devnull = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| SpawnError::DevNull(errno_name(&e)))?;
    let v1_tasks = match request.cgroup {
        Some(cgroup) => cgroup.v1_tasks()?,
        None => Vec::new(),
    };
    let v1_task_fds: Vec<BorrowedFd<'_>> = v1_tasks.iter().map(AsFd::as_fd).collect();
    let raw = RawSpawn {
        program: &program,
        argv: &argv,
        envp: &envp,
        channel: request.channel,
        devnull: devnull.as_fd(),
        cgroup: request.cgroup.and_then(AppCgroup::v2_dir_fd),
        v1_tasks: &v1_task_fds,
    };
    let (pid, pidfd) = sys::spawn_process(&raw).map_err(|failure| match failure {
        SpawnFailure::Prepare(what, e) => SpawnError::Prepare {
            what,
            errno: errno_name(&e),
        },
        SpawnFailure::Clone(e) => SpawnError::Clone {
            errno: errno_name(&e),
        },
        SpawnFailure::Child(stage, e) => SpawnError::Exec {
            stage,
            program: request.program.clone(),
            errno: errno_name(&e),
        },
    })?;
    Ok(SandboxChild {
        pid: pid.unsigned_abs(),
        pidfd,
        exit: None,
    })
}

fn c_path(path: &Path) -> Result<CString, SpawnError> {
    if !path.is_absolute() {
        return Err(SpawnError::BadProgram {
            path: path.to_path_buf(),
        });
    }
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SpawnError::BadProgram {
        path: path.to_path_buf(),
    })
}
