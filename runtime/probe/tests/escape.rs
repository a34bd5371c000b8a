//! Escape probes: assume WebAssembly is broken and native code runs in the worker. Each test
//! starts the probe through the worker's own path (`spawn` → `Confine` → `confine`) and asserts
//! the ONE outcome its layer must produce. A probe that gets through fails its test loudly.
//!
//! Stage `Confined`: after every layer. Stage `PreSeccomp`: inside `confine`'s before_seccomp
//! hook, i.e. every layer but seccomp — these prove the layers beneath seccomp hold on their
//! own (for each, the comment says why the attempt would succeed without that layer).

mod support;

use std::os::unix::fs::MetadataExt;

use support::{MEMORY_LIMIT, NOFILE, Run, run_probe};
use warden_escape_probe::{Outcome, Stage};
use warden_ipc::SeccompProfile;
use warden_sandbox::{CONFINEMENT_ORDER, WorkerExit};

/// What a probe must end in.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The kernel refuses with this errno.
    Errno(&'static str),
    /// Seccomp kills the process (SIGSYS), reported as a security violation.
    SigSys,
}

fn check(attempt: &str, stage: Stage, profile: SeccompProfile, expect: Expect, layer: &str) -> Run {
    let run = run_probe(attempt, stage, profile);
    let context = format!(
        "probe {attempt} ({}, proves {layer}): expected {expect:?}; got exit {:?}, report {:?}, \
         failure {:?}",
        stage.name(),
        run.exit,
        run.report,
        run.failed
    );
    assert!(run.confined.is_some(), "confinement failed: {context}");
    if let Some(report) = &run.report
        && let Outcome::Succeeded { detail } = &report.outcome
    {
        panic!(
            "ESCAPE: probe {attempt} ({}) SUCCEEDED ({detail}): {context}",
            stage.name()
        );
    }
    match expect {
        Expect::SigSys => {
            assert_eq!(run.exit, WorkerExit::SecurityViolation, "{context}");
            assert!(run.report.is_none(), "{context}");
        }
        Expect::Errno(errno) => {
            assert_eq!(run.exit, WorkerExit::Exited(0), "{context}");
            match run.outcome() {
                Outcome::Failed { errno: got, .. } => assert_eq!(got, errno, "{context}"),
                Outcome::Succeeded { .. } => panic!("{context}"),
            }
        }
    }
    run
}

macro_rules! probe {
    ($test:ident: $attempt:literal, $stage:ident, $profile:ident => $expect:expr; $layer:literal) => {
        #[test]
        fn $test() {
            check(
                $attempt,
                Stage::$stage,
                SeccompProfile::$profile,
                $expect,
                $layer,
            );
        }
    };
}

use Expect::{Errno, SigSys};

// ---- filesystem: the empty, read-only root (step 1) ----
// Landlock would answer EACCES for these; ENOENT shows there is nothing there at all.
probe!(open_etc_shadow: "open_etc_shadow", Confined, WorkerStorage => Errno("ENOENT"); "filesystem");
probe!(open_etc_passwd: "open_etc_passwd", Confined, WorkerStorage => Errno("ENOENT"); "filesystem");
probe!(open_dev_mem: "open_dev_mem", Confined, WorkerStorage => Errno("ENOENT"); "filesystem");
probe!(open_proc_1_mem: "open_proc_1_mem", Confined, WorkerStorage => Errno("ENOENT"); "filesystem");
probe!(open_host_control_socket_path: "open_host_path", Confined, WorkerStorage => Errno("ENOENT"); "filesystem");
probe!(write_own_code_through_proc_self_mem: "write_proc_self_mem", Confined, WorkerStorage => Errno("ENOENT"); "filesystem");
probe!(absolute_symlink_out_of_storage: "absolute_symlink_out_of_storage", Confined, WorkerStorage => Errno("ENOENT"); "filesystem");
// Landlock ABI 7 does not govern connecting to a pathname unix socket nor stat(): without the
// empty root both would reach the host's control socket (mode 0777) and succeed.
probe!(connect_control_socket_without_seccomp: "connect_control_socket", PreSeccomp, WorkerStorage => Errno("ENOENT"); "filesystem");
probe!(stat_host_path_without_seccomp: "stat_host_path", PreSeccomp, WorkerStorage => Errno("ENOENT"); "filesystem");
// No /bin/sh to run at all (landlock, which handles execute, would refuse with EACCES next).
probe!(execve_sh_without_seccomp: "execve_sh", PreSeccomp, WorkerStorage => Errno("ENOENT"); "filesystem");
// The root is read-only: nothing can be created in it (landlock would say EACCES after).
probe!(create_file_in_root: "create_file_in_root", Confined, WorkerStorage => Errno("EROFS"); "filesystem");

// ---- landlock (step 6): the scratch directory is 0755 and outside.txt 0644, so file
// permissions alone would let the probe's uid read them; only landlock says EACCES. ----
probe!(dotdot_out_of_storage: "dotdot_out_of_storage", Confined, WorkerStorage => Errno("EACCES"); "landlock");
probe!(symlink_out_of_storage: "symlink_out_of_storage", Confined, WorkerStorage => Errno("EACCES"); "landlock");
probe!(open_root_dir: "open_root_dir", Confined, WorkerStorage => Errno("EACCES"); "landlock");

// ---- seccomp (step 8): each of these is possible for an unprivileged process otherwise ----
probe!(socket_inet: "socket_inet", Confined, WorkerStorage => SigSys; "seccomp");
probe!(socket_netlink: "socket_netlink", Confined, WorkerStorage => SigSys; "seccomp");
probe!(connect_abstract_unix: "connect_abstract_unix", Confined, WorkerStorage => SigSys; "seccomp");
probe!(connect_control_socket: "connect_control_socket", Confined, WorkerStorage => SigSys; "seccomp");
probe!(fork: "fork", Confined, WorkerStorage => SigSys; "seccomp");
probe!(clone3: "clone3", Confined, WorkerStorage => SigSys; "seccomp");
probe!(execve_sh: "execve_sh", Confined, WorkerStorage => SigSys; "seccomp");
probe!(memfd_create_and_exec: "memfd_exec", Confined, WorkerStorage => SigSys; "seccomp");
probe!(ptrace_traceme: "ptrace_traceme", Confined, WorkerStorage => SigSys; "seccomp");
probe!(ptrace_attach_init: "ptrace_attach_init", Confined, WorkerStorage => SigSys; "seccomp");
probe!(kill_init: "kill_init", Confined, WorkerStorage => SigSys; "seccomp");
probe!(kill_supervisor: "kill_supervisor", Confined, WorkerStorage => SigSys; "seccomp");
probe!(mount: "mount", Confined, WorkerStorage => SigSys; "seccomp");
probe!(unshare_user_namespace: "unshare_user", Confined, WorkerStorage => SigSys; "seccomp");
probe!(setns: "setns", Confined, WorkerStorage => SigSys; "seccomp");
probe!(bpf: "bpf", Confined, WorkerStorage => SigSys; "seccomp");
probe!(io_uring_setup: "io_uring_setup", Confined, WorkerStorage => SigSys; "seccomp");
probe!(keyctl: "keyctl", Confined, WorkerStorage => SigSys; "seccomp");
probe!(perf_event_open: "perf_event_open", Confined, WorkerStorage => SigSys; "seccomp");
probe!(userfaultfd: "userfaultfd", Confined, WorkerStorage => SigSys; "seccomp");
probe!(setuid_root: "setuid_root", Confined, WorkerStorage => SigSys; "seccomp");
probe!(chmod_outside_storage: "chmod_outside_storage", Confined, WorkerStorage => SigSys; "seccomp");
// A sleep needs a private futex wait and wake, nothing else of futex.
probe!(futex_shared_wait: "futex_shared_wait", Confined, Worker => SigSys; "seccomp");
probe!(futex_requeue: "futex_requeue", Confined, Worker => SigSys; "seccomp");
// The worker profile has no file calls at all.
probe!(open_etc_passwd_under_worker_profile: "open_etc_passwd", Confined, Worker => SigSys; "seccomp");

// ---- pid namespace (spawn): the supervisor does not exist in the worker's view. Without the
// pid namespace, uid and landlock's signal scope still refuse, but with EPERM — which tells
// the probe that the pid exists. ----
probe!(kill_supervisor_without_seccomp: "kill_supervisor", PreSeccomp, WorkerStorage => Errno("ESRCH"); "pid namespace");
probe!(ptrace_attach_supervisor_without_seccomp: "ptrace_attach_supervisor", PreSeccomp, WorkerStorage => Errno("ESRCH"); "pid namespace");

// ---- identity (step 4): without the uid/capability drop the worker is root with every
// capability, and each of these succeeds (landlock ABI 7 has no right for chmod). ----
probe!(setuid_root_without_seccomp: "setuid_root", PreSeccomp, WorkerStorage => Errno("EPERM"); "identity");
probe!(mount_without_seccomp: "mount", PreSeccomp, WorkerStorage => Errno("EPERM"); "identity");
probe!(chmod_outside_storage_without_seccomp: "chmod_outside_storage", PreSeccomp, WorkerStorage => Errno("EPERM"); "identity");

// ---- rlimits (step 3): RLIMIT_NPROC=1; without it an unprivileged fork succeeds. ----
probe!(fork_without_seccomp: "fork", PreSeccomp, WorkerStorage => Errno("EAGAIN"); "rlimits");

// ---- fds (step 2): a descriptor opened before confinement (here /etc/passwd, as root) would
// stay readable through every other layer; step 2 closed it. ----
probe!(leaked_descriptor: "leaked_fd", Confined, WorkerStorage => Errno("EBADF"); "fds");

// ---- no_new_privs (step 5): the kernel refuses to clear it, and it reads 1. ----
#[test]
fn no_new_privs_is_set_and_cannot_be_cleared() {
    let run = check(
        "clear_no_new_privs",
        Stage::PreSeccomp,
        SeccompProfile::WorkerStorage,
        Errno("EINVAL"),
        "no_new_privs",
    );
    match run.outcome() {
        Outcome::Failed { detail, .. } => assert_eq!(detail, "PR_GET_NO_NEW_PRIVS=1"),
        other => panic!("{other:?}"),
    }
}

// ---- net namespace (spawn): landlock has no UDP rights and the uid does not matter, so
// without the namespace this datagram reaches the harness's socket on the host's loopback. ----
#[test]
fn udp_to_host_loopback_without_seccomp() {
    let run = check(
        "udp_to_host_loopback",
        Stage::PreSeccomp,
        SeccompProfile::WorkerStorage,
        Errno("ENETUNREACH"),
        "net namespace",
    );
    assert_eq!(run.udp_received, 0, "a datagram reached the host");
}

// Abstract unix sockets live in the network namespace: the harness's listener is not there.
// (Landlock's abstract-socket scope would refuse with EPERM; the namespace answers first.)
probe!(connect_abstract_unix_without_seccomp: "connect_abstract_unix", PreSeccomp, WorkerStorage => Errno("ECONNREFUSED"); "net namespace");

// ---- rlimits: descriptors stop at RLIMIT_NOFILE. ----
#[test]
fn exhausting_descriptors_stops_at_rlimit_nofile() {
    let run = check(
        "exhaust_fds",
        Stage::Confined,
        SeccompProfile::WorkerStorage,
        Errno("EMFILE"),
        "rlimits",
    );
    let Outcome::Failed { detail, .. } = run.outcome() else {
        panic!("{run:?}");
    };
    let highest: u64 = detail
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert_eq!(highest, NOFILE - 1, "{detail}");
}

// ---- cgroup (spawn): memory past the cgroup limit ends in the OOM killer's SIGKILL, and the
// cgroup counts it. ----
#[test]
fn exhausting_memory_is_killed_by_the_cgroup() {
    let run = run_probe("exhaust_memory", Stage::Confined, SeccompProfile::Worker);
    assert!(run.confined.is_some(), "{run:?}");
    if let Some(report) = &run.report {
        panic!("ESCAPE: probe exhaust_memory reported {report:?} instead of dying");
    }
    assert_eq!(run.exit, WorkerExit::Killed, "{run:?}");
    let oom = run
        .oom
        .as_ref()
        .expect("memory is limited by a cgroup here");
    assert!(oom.kills >= 1, "no OOM kill counted: {oom:?}");
    assert!(
        run.cgroup
            .lines
            .iter()
            .any(|l| l.contains(&MEMORY_LIMIT.to_string())),
        "{:?}",
        run.cgroup
    );
}

// ---- positive: what a worker needs still works ----
#[test]
fn storage_is_readable_and_writable() {
    let run = run_probe(
        "storage_roundtrip",
        Stage::Confined,
        SeccompProfile::WorkerStorage,
    );
    assert_eq!(run.exit, WorkerExit::Exited(0), "{run:?}");
    assert_eq!(
        run.outcome(),
        &Outcome::Succeeded {
            detail: "read back \"written by the probe\"".into()
        }
    );
    let file = run.dir.path().join("storage/probe.txt");
    assert_eq!(
        std::fs::read_to_string(&file).expect("probe.txt"),
        "written by the probe"
    );
    assert_eq!(std::fs::metadata(&file).expect("stat").uid(), run.uid);
}

#[test]
fn the_worker_profile_allows_what_a_worker_needs() {
    let run = run_probe("worker_syscalls", Stage::Confined, SeccompProfile::Worker);
    assert_eq!(run.exit, WorkerExit::Exited(0), "{run:?}");
    assert!(
        matches!(run.outcome(), Outcome::Succeeded { .. }),
        "{run:?}"
    );
    assert!(
        run.pipe_output.starts_with("worker syscalls ok"),
        "{:?}",
        run.pipe_output
    );
}

// ---- the order ----
#[test]
fn the_report_lists_the_documented_steps_in_order() {
    let run = run_probe(
        "open_etc_passwd",
        Stage::Confined,
        SeccompProfile::WorkerStorage,
    );
    let report = run.confined.expect("confined");
    let steps: Vec<&str> = report.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(steps, CONFINEMENT_ORDER);
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/sandbox.md"
    ))
    .expect("docs/sandbox.md");
    for (i, step) in CONFINEMENT_ORDER.iter().enumerate() {
        let line = format!("{}. **{step}**", i + 1);
        assert!(docs.contains(&line), "docs/sandbox.md lacks {line:?}");
    }
    let landlock = &report.steps[5].detail;
    assert!(landlock.contains("enforced"), "{landlock}");
    assert!(!landlock.contains("not enforced"), "{landlock}");
}
