//! `spawn` end to end with ordinary programs (no confinement): what the child gets, how its end
//! is classified, exec failures. Needs root (namespaces); fails loudly without it.

use std::os::fd::AsFd;

use warden_ipc::Channel;
use warden_sandbox::{SpawnError, SpawnRequest, WorkerExit, spawn};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the spawn tests need root (new namespaces); run them as root, as CI does"
    );
}

fn sh(script: &str) -> (Channel, warden_sandbox::SandboxChild) {
    require_root();
    let (supervisor, worker) = Channel::pair().expect("channel");
    let child = spawn(&SpawnRequest::new("/bin/sh", worker.as_fd()).args(["-c", script]))
        .expect("spawn /bin/sh");
    (supervisor, child)
}

#[test]
fn the_child_is_pid_1_with_only_loopback_and_fds_0_to_3() {
    // Prints, as one JSON string on fd 3: its pid, its network interfaces, its open fds.
    let (supervisor, mut child) = sh(
        "printf '\"%s|%s|%s\"' $$ \"$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' \\n')\" \
         \"$(ls /proc/self/fd | tr '\\n' ' ')\" >&3",
    );
    let (text, _): (String, _) = supervisor.recv().expect("the child's report");
    assert_eq!(child.wait().expect("wait"), WorkerExit::Exited(0));
    let parts: Vec<&str> = text.split('|').collect();
    assert_eq!(parts[0], "1", "{text}");
    assert_eq!(parts[1], "lo", "{text}");
    // /proc is still the host's procfs here (confine removes it); `ls` adds one fd for the
    // directory it lists, and its stdout is the command substitution's pipe.
    let fds: Vec<&str> = parts[2].split_whitespace().collect();
    assert_eq!(fds.len(), 5, "{text}");
    assert_eq!(fds[..4], ["0", "1", "2", "3"], "{text}");
}

#[test]
fn the_environment_is_empty() {
    let (supervisor, mut child) =
        sh("printf '\"%s\"' \"$(env | grep -v '^PWD=' | tr '\\n' ' ')\" >&3");
    let (text, _): (String, _) = supervisor.recv().expect("report");
    assert_eq!(child.wait().expect("wait"), WorkerExit::Exited(0));
    // sh sets PWD itself; nothing else may be there.
    assert_eq!(text.trim(), "", "inherited environment: {text}");
}

#[test]
fn exit_codes_are_classified() {
    let (_s, mut child) = sh("exit 7");
    assert_eq!(child.wait().expect("wait"), WorkerExit::Exited(7));
    // The worker is pid 1 of its namespace: only SIGKILL/SIGSTOP (or a seccomp SIGSYS, see the
    // escape probes) end it from outside; signals it has no handler for are ignored.
}

#[test]
fn kill_goes_through_the_pidfd_and_is_classified() {
    let (_s, mut child) = sh("sleep 30");
    assert_eq!(child.try_wait().expect("try_wait"), None);
    child.kill().expect("kill");
    assert_eq!(child.wait().expect("wait"), WorkerExit::Killed);
    child
        .kill()
        .expect("killing a reaped worker is not an error");
}

#[test]
fn dropping_an_unreaped_child_kills_and_reaps_it() {
    let (_s, child) = sh("sleep 30");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.pid()).expect("pid"));
    drop(child);
    assert_eq!(
        nix::sys::signal::kill(pid, None),
        Err(nix::errno::Errno::ESRCH),
        "the worker outlived its handle"
    );
}

#[test]
fn a_failed_exec_is_reported_with_its_errno() {
    require_root();
    let (_supervisor, worker) = Channel::pair().expect("channel");
    let err = spawn(&SpawnRequest::new("/nonexistent/worker", worker.as_fd()))
        .expect_err("no such program");
    assert!(
        matches!(&err, SpawnError::Exec { stage: "execve", errno, .. } if errno == "ENOENT"),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "in the child, execve of /nonexistent/worker: ENOENT"
    );
    let relative = spawn(&SpawnRequest::new("worker", worker.as_fd())).expect_err("relative");
    assert!(
        matches!(relative, SpawnError::BadProgram { .. }),
        "{relative}"
    );
}
