//! The test harness plays the supervisor: it spawns the probe with `warden_sandbox::spawn`
//! (real namespaces, a per-test uid, a real cgroup), sends the `Confine` plan over a
//! `warden_ipc::Channel`, and collects the probe's report and exit.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use warden_escape_probe::{Outcome, ProbeReport, Stage};
use warden_ipc::{
    Channel, ConfinePlan, ConfinementReport, FromWorker, PROTOCOL_VERSION, Rlimits, SeccompProfile,
    ToWorker,
};
use warden_sandbox::{
    AppCgroup, CgroupConfig, CgroupLimits, CgroupReport, OomCount, SpawnRequest, WorkerExit,
};

/// The probe binary cargo built for these tests.
pub(crate) const PROBE: &str = env!("CARGO_BIN_EXE_warden-escape-probe");

/// RLIMIT_NOFILE of every probe.
pub(crate) const NOFILE: u64 = 32;

/// Memory limit of every probe's cgroup.
pub(crate) const MEMORY_LIMIT: u64 = 64 << 20;

/// Uids 61000.. are handed out one per probe run so that no two runs share a uid.
static NEXT_UID: AtomicU32 = AtomicU32::new(61_000);

/// Tests need root (CI runs as root). Without it they fail, loudly, instead of skipping.
pub(crate) fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the escape-probe tests need root (namespaces, cgroups, setuid); run them as root, as CI \
         does — they never skip"
    );
}

/// What one probe run produced.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) attempt: String,
    pub(crate) stage: Stage,
    pub(crate) confined: Option<ConfinementReport>,
    /// The probe's report, unless it died first.
    pub(crate) report: Option<ProbeReport>,
    /// A `Failed` message, if the probe gave up.
    pub(crate) failed: Option<String>,
    pub(crate) exit: WorkerExit,
    pub(crate) cgroup: CgroupReport,
    pub(crate) oom: Option<OomCount>,
    /// What the probe wrote to the pipe of `worker_syscalls`.
    pub(crate) pipe_output: String,
    /// Bytes that arrived on the harness's UDP socket.
    pub(crate) udp_received: usize,
    /// The harness's scratch directory (kept for checks after the run).
    pub(crate) dir: tempfile::TempDir,
    pub(crate) uid: u32,
}

impl Run {
    /// The outcome, failing loudly when the probe did not report one.
    pub(crate) fn outcome(&self) -> &Outcome {
        match &self.report {
            Some(report) => &report.outcome,
            None => panic!(
                "probe {} ({}) sent no report: exit {:?}, failed {:?}",
                self.attempt,
                self.stage.name(),
                self.exit,
                self.failed
            ),
        }
    }
}

/// Runs the probe `attempt` at `stage` under `profile` with a storage directory.
pub(crate) fn run_probe(attempt: &str, stage: Stage, profile: SeccompProfile) -> Run {
    require_root();
    let uid = NEXT_UID.fetch_add(1, Ordering::SeqCst);
    // Scratch directory 0755 with a world-readable file next to storage: only landlock, not
    // file permissions, can stop the probe from reading it.
    let dir = tempfile::Builder::new()
        .prefix("warden-probe-")
        .tempdir_in("/tmp")
        .expect("scratch dir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod scratch");
    let storage = dir.path().join("storage");
    fs::create_dir(&storage).expect("mkdir storage");
    fs::write(dir.path().join("outside.txt"), "host secret\n").expect("outside.txt");
    fs::set_permissions(
        dir.path().join("outside.txt"),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod outside.txt");
    std::os::unix::fs::symlink("../outside.txt", storage.join("escape_relative")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", storage.join("escape_absolute")).expect("symlink");
    for path in [
        storage.clone(),
        storage.join("escape_relative"),
        storage.join("escape_absolute"),
    ] {
        std::os::unix::fs::lchown(&path, Some(uid), Some(uid)).expect("chown storage");
    }
    fs::set_permissions(&storage, fs::Permissions::from_mode(0o700)).expect("chmod storage");

    // Things on the host the probe must not reach.
    let control = dir.path().join("control.sock");
    let _control_listener = UnixListener::bind(&control).expect("bind control socket");
    fs::set_permissions(&control, fs::Permissions::from_mode(0o777)).expect("chmod socket");
    let abstract_name = format!("warden-probe-{uid}-{}", std::process::id());
    let _abstract_listener = UnixListener::bind_addr(
        &SocketAddr::from_abstract_name(abstract_name.as_bytes()).expect("abstract name"),
    )
    .expect("bind abstract socket");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    udp.set_nonblocking(true).expect("nonblocking udp");
    let udp_port = udp.local_addr().expect("udp addr").port();

    let param = match attempt {
        "open_host_path" | "connect_control_socket" | "stat_host_path" => {
            control.display().to_string()
        }
        "connect_abstract_unix" => abstract_name,
        "udp_to_host_loopback" => udp_port.to_string(),
        "kill_supervisor" | "ptrace_attach_supervisor" => std::process::id().to_string(),
        _ => "-".into(),
    };

    let cgroup = AppCgroup::create(
        &CgroupConfig {
            parent: PathBuf::from("warden-test"),
            ..CgroupConfig::default()
        },
        &format!("probe-{uid}"),
        &CgroupLimits {
            memory_bytes: Some(MEMORY_LIMIT),
            pids: Some(8),
            cpu_weight: Some(100),
        },
    )
    .expect("create cgroup");

    let (supervisor, worker_end) = Channel::pair().expect("channel");
    warden_escape_probe::set_recv_timeout(supervisor.as_fd().as_raw_fd(), 60)
        .expect("recv timeout");
    let mut child = warden_sandbox::spawn(
        &SpawnRequest::new(PROBE, worker_end.as_fd())
            .args([attempt, stage.name(), &param])
            .cgroup(&cgroup),
    )
    .expect("spawn the probe");
    drop(worker_end);

    let storage_fd: OwnedFd = fs::File::open(&storage).expect("open storage").into();
    let plan = ConfinePlan {
        protocol: PROTOCOL_VERSION,
        app: format!("probe-{attempt}"),
        uid,
        gid: uid,
        rlimits: Rlimits {
            nofile: NOFILE,
            fsize_bytes: Some(1 << 20),
        },
        storage: true,
        seccomp: profile,
        // The probe is native code; it runs no WebAssembly.
        runs: None,
    };
    supervisor
        .send(&ToWorker::Confine(plan), &[storage_fd.as_fd()])
        .expect("send the plan");
    drop(storage_fd);

    let mut confined = None;
    let mut failed = None;
    let mut report = None;
    let mut pipe_output = String::new();
    match supervisor.recv::<FromWorker>() {
        Ok((FromWorker::Confined(r), _)) => confined = Some(r),
        Ok((FromWorker::Failed { stage, message }, _)) => {
            failed = Some(format!("{stage}: {message}"))
        }
        Ok((other, _)) => failed = Some(format!("unexpected message {other:?}")),
        Err(_) => {}
    }
    if confined.is_some() {
        let mut pipe_read = None;
        if attempt == "worker_syscalls" {
            let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
            supervisor
                .send(
                    &serde_json::json!({"fd": "write end"}),
                    &[write_end.as_fd()],
                )
                .expect("send the pipe");
            drop(write_end);
            pipe_read = Some(read_end);
        }
        match supervisor.recv::<ProbeReport>() {
            Ok((r, _)) => report = Some(r),
            Err(e) => failed = Some(format!("no report: {e}")),
        }
        if let Some(read_end) = pipe_read {
            let _ = fs::File::from(read_end).read_to_string(&mut pipe_output);
        }
    }
    let exit = child.wait().expect("wait for the probe");
    let oom = cgroup.oom_kills().expect("read oom count");
    let cgroup_report = cgroup.report().clone();
    cgroup.remove().expect("remove cgroup");
    let mut buf = [0u8; 64];
    let udp_received = udp.recv(&mut buf).unwrap_or(0);

    Run {
        attempt: attempt.to_owned(),
        stage,
        confined,
        report,
        failed,
        exit,
        cgroup: cgroup_report,
        oom,
        pipe_output,
        udp_received,
        dir,
        uid,
    }
}
