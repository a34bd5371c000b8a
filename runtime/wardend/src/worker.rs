//! The real [`Launcher`] and [`Compiler`]: each starts `warden-worker` through
//! `warden_sandbox::spawn` (fresh namespaces, its own cgroup), tells it how to confine itself,
//! and only then hands it code.
//!
//! Code reaches a worker as a **sealed memfd**: the supervisor copies the store file into it
//! while hashing, refuses to launch if the digest differs from the one recorded at install,
//! and seals it against writes, so the bytes the worker maps are exactly the bytes checked.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::fs::{MemfdFlags, SealFlags, fcntl_add_seals, memfd_create};
use sha2::{Digest, Sha256};
use warden_ipc::{
    Channel, CodeKind, CompileRequest, ConfinePlan, FromWorker, Outcome, PROTOCOL_VERSION, Rlimits,
    RunRequest, SeccompProfile, ToWorker,
};
use warden_policy::hwdef::HwdefSet;
use warden_sandbox::{AppCgroup, CgroupConfig, CgroupLimits};
use warden_sandbox::{SandboxChild, SpawnRequest, WorkerExit, spawn};

use crate::broker::{Broker, DeviceOpener};
use crate::install::Compiler;
use crate::logs::{Log, Stream};
use crate::network::Network;
use crate::reports::FailureKind;
use crate::supervisor::{End, LaunchSpec, Launcher, RunningWorker};
use crate::system::System;
use crate::tls_roots::TlsRoots;

/// The uid the confined compiler runs as: no app owns it.
pub const COMPILER_UID: u32 = 199_999;
/// Descriptors a worker may hold.
const WORKER_NOFILE: u64 = 64;
/// Memory a compiler may use (Cranelift on a large component).
const COMPILER_MEMORY: u64 = 1024 * 1024 * 1024;
/// Tasks per worker: the worker itself (it starts no threads).
const WORKER_PIDS: u64 = 4;
/// Longest a new worker may take to confine itself (it takes about a millisecond).
const CONFINE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a compile may take: a 20 MB component compiles in seconds in a release build;
/// debug builds and slow boards get ample room, but a stuck compiler does not block installs.
const COMPILE_TIMEOUT: Duration = Duration::from_secs(600);

/// Starts confined workers from the `warden-worker` binary at `program`.
#[derive(Debug, Clone)]
pub struct WorkerLauncher {
    pub program: PathBuf,
    pub cgroups: CgroupConfig,
    /// What the broker opens granted peripherals with, and the hardware definitions it
    /// resolves the names apps ask for against.
    pub devices: Arc<dyn DeviceOpener>,
    pub hwdefs: Arc<HwdefSet>,
    /// What the broker resolves allowed names with and makes sockets with, for every worker.
    pub network: Arc<Network>,
    /// The device's extra TLS roots (`--tls-roots`), passed to every worker whose app may use
    /// the network.
    pub tls_roots: Arc<TlsRoots>,
    /// The device services (power, updates) the broker answers through.
    pub system: System,
}

/// A fresh cgroup name for each worker: a restart right after a stop must not meet the old
/// worker's group while the kernel still holds it (its removal waits for the dead worker).
fn cgroup_name(what: &str) -> String {
    static LAUNCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{what}-{}-{n}", std::process::id())
}

/// Copies `code` into a sealed memfd, checking its SHA-256 on the way; returns it and its length.
fn sealed_copy(mut code: File, expected: &str) -> Result<(File, u64), String> {
    let fd = memfd_create(
        "warden-code",
        MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| format!("memfd_create: {e}"))?;
    let mut memfd = File::from(fd);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = code
            .read(&mut buf)
            .map_err(|e| format!("reading code: {e}"))?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        len += chunk.len() as u64;
        hasher.update(chunk);
        memfd
            .write_all(chunk)
            .map_err(|e| format!("copying code: {e}"))?;
    }
    let actual = hex::encode(hasher.finalize());
    if actual != expected {
        return Err(format!(
            "code on disk changed since install: sha256 {actual}, recorded {expected}"
        ));
    }
    fcntl_add_seals(
        &memfd,
        SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
    )
    .map_err(|e| format!("sealing the code memfd: {e}"))?;
    Ok((memfd, len))
}

/// A worker that was sent its confinement plan and is confining itself.
struct Confining {
    child: SandboxChild,
    channel: Channel,
}

/// Spawns a worker and sends it its plan; the caller may work on while it confines itself,
/// then [`Confining::confined`].
fn start_confining(
    program: &Path,
    cgroup: Option<&AppCgroup>,
    plan: &ConfinePlan,
    storage: Option<&File>,
) -> Result<Confining, String> {
    let (ours, theirs) = Channel::pair().map_err(|e| e.to_string())?;
    let mut request = SpawnRequest::new(program, theirs.as_fd());
    if let Some(cgroup) = cgroup {
        request = request.cgroup(cgroup);
    }
    let child = spawn(&request).map_err(|e| format!("spawn: {e}"))?;
    // Our copy of the worker's end must go, so its death closes the channel.
    drop(request);
    drop(theirs);
    let fds: Vec<_> = storage.iter().map(|f| f.as_fd()).collect();
    ours.send(&ToWorker::Confine(plan.clone()), &fds)
        .map_err(|e| format!("sending the confinement plan: {e}"))?;
    Ok(Confining {
        child,
        channel: ours,
    })
}

impl Confining {
    /// Waits for the worker's confinement report; returns it ready for `Run` or `Compile`,
    /// with its steps as log lines. A worker that neither confines itself nor fails in time is
    /// killed (dropping `child`) rather than holding up the app's monitor.
    fn confined(self) -> Result<(SandboxChild, Channel, Vec<String>), String> {
        let Confining { child, channel } = self;
        channel
            .set_recv_timeout(Some(CONFINE_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let answer = channel.recv::<FromWorker>();
        channel.set_recv_timeout(None).map_err(|e| e.to_string())?;
        match answer {
            Ok((FromWorker::Confined(report), _)) => {
                let steps = report
                    .steps
                    .iter()
                    .map(|s| format!("{}: {} ({} µs)", s.step, s.detail, s.micros))
                    .collect();
                Ok((child, channel, steps))
            }
            Ok((FromWorker::Failed { stage, message }, _)) => {
                Err(format!("worker failed to {stage}: {message}"))
            }
            Ok((other, _)) => Err(format!("unexpected answer to `confine`: {other:?}")),
            Err(e) => Err(format!(
                "no answer to `confine` within {CONFINE_TIMEOUT:?}: {e}"
            )),
        }
    }
}

impl Launcher for WorkerLauncher {
    fn launch(&self, spec: LaunchSpec, log: Log) -> Result<Arc<dyn RunningWorker>, String> {
        let cgroup = AppCgroup::create(
            &self.cgroups,
            &cgroup_name(&format!("app-{}", spec.app)),
            &CgroupLimits {
                // The wasm limit plus room for the engine, code and stacks.
                memory_bytes: Some(spec.memory_limit_bytes + 64 * 1024 * 1024),
                pids: Some(WORKER_PIDS),
                cpu_weight: None,
            },
        )
        .map_err(|e| format!("cgroup: {e}"))?;
        for line in &cgroup.report().lines {
            log.push(Stream::Supervisor, format!("cgroup: {line}").as_bytes());
        }
        // Only components can import the device world and `wasi:sockets`; an app granted
        // nothing gets no broker (every open it tries is refused in the worker) and keeps the
        // smallest profile. Network rights take the network profiles, which include the
        // device calls.
        let component = spec.kind == CodeKind::Component;
        let networked = component && !spec.network.is_empty();
        let brokered =
            component && (!spec.grants.is_empty() || networked || !spec.system.is_empty());
        let plan = ConfinePlan {
            protocol: PROTOCOL_VERSION,
            app: spec.app.clone(),
            uid: spec.uid,
            gid: spec.uid,
            rlimits: Rlimits {
                nofile: WORKER_NOFILE,
                fsize_bytes: spec.storage.as_ref().map(|s| s.quota_bytes),
            },
            storage: spec.storage.is_some(),
            seccomp: match (spec.storage.is_some(), brokered, networked) {
                (false, _, true) => SeccompProfile::WorkerNetwork,
                (true, _, true) => SeccompProfile::WorkerStorageNetwork,
                (false, true, false) => SeccompProfile::WorkerDevices,
                (true, true, false) => SeccompProfile::WorkerStorageDevices,
                (false, false, false) => SeccompProfile::Worker,
                (true, false, false) => SeccompProfile::WorkerStorage,
            },
            runs: Some(spec.kind),
        };
        let confining = start_confining(
            &self.program,
            Some(&cgroup),
            &plan,
            spec.storage.as_ref().map(|s| &s.dir),
        )?;
        // While the worker execs and confines itself: the code, hashed into a sealed copy, and
        // the run request, queued behind the plan (the worker takes it, and the code's
        // descriptor with it, only once confined).
        let (code, code_bytes) = sealed_copy(spec.code, &spec.code_sha256)?;
        let (out_r, out_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| format!("pipe: {e}"))?;
        let request = RunRequest {
            kind: spec.kind,
            code_sha256: spec.code_sha256.clone(),
            code_bytes,
            args: spec.args.clone(),
            env: vec![],
            memory_limit_bytes: spec.memory_limit_bytes,
            watchdog_ms: spec.watchdog_ms,
            storage_quota_bytes: spec.storage.as_ref().map(|s| s.quota_bytes),
            broker: brokered,
            tls_roots: if networked {
                self.tls_roots.certificates().to_vec()
            } else {
                vec![]
            },
        };
        let broker = if brokered {
            Some(Channel::pair().map_err(|e| format!("broker socket: {e}"))?)
        } else {
            None
        };
        let mut attached = vec![code.as_fd(), out_w.as_fd(), err_w.as_fd()];
        if let Some((_, theirs)) = &broker {
            attached.push(theirs.as_fd());
        }
        let sent = confining.channel.send(&ToWorker::Run(request), &attached);
        drop(attached);
        drop((out_w, err_w, code));
        // The worker's end now lives in the worker only: its death ends the broker thread.
        let broker = broker.map(|(ours, theirs)| {
            drop(theirs);
            ours
        });
        // A worker that failed to confine itself says why; that is the error to report, not
        // the refused send.
        let (child, channel, steps) = confining.confined()?;
        sent.map_err(|e| format!("sending the run request: {e}"))?;
        for step in steps {
            log.push(Stream::Supervisor, format!("confined: {step}").as_bytes());
        }
        if let Some(channel) = broker {
            let devices = Arc::clone(&self.devices);
            let hwdefs = Arc::clone(&self.hwdefs);
            let network = Arc::clone(&self.network);
            let (app, grants, log) = (spec.app.clone(), spec.grants.clone(), log.clone());
            let rights = spec.network.clone();
            let services = spec.system.clone();
            let system = self.system.clone();
            std::thread::Builder::new()
                .name(format!("broker-{}", &spec.app[..spec.app.len().min(8)]))
                .spawn(move || {
                    let mut broker = Broker::new(&app, &grants, &hwdefs, &*devices)
                        .with_network(&rights, &network)
                        .with_system(&services, &system);
                    let answered = broker.serve(&channel);
                    log.push(
                        Stream::Supervisor,
                        format!("broker: {answered} request(s) answered").as_bytes(),
                    );
                })
                .map_err(|e| format!("broker thread: {e}"))?;
        }
        let pumps = [(Stream::Stdout, out_r), (Stream::Stderr, err_r)]
            .into_iter()
            .map(|(stream, fd): (Stream, OwnedFd)| {
                let log = log.clone();
                std::thread::spawn(move || log.pump(stream, File::from(fd)))
            })
            .collect();
        Ok(Arc::new(ConfinedWorker {
            pid: child.pid(),
            child: Mutex::new(child),
            channel,
            cgroup: Mutex::new(Some(cgroup)),
            pumps: Mutex::new(pumps),
            limits: (spec.memory_limit_bytes, spec.watchdog_ms),
        }))
    }
}

/// A running confined worker.
struct ConfinedWorker {
    pid: u32,
    child: Mutex<SandboxChild>,
    channel: Channel,
    cgroup: Mutex<Option<AppCgroup>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
    /// (memory limit bytes, watchdog ms), for reports.
    limits: (u64, u64),
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RunningWorker for ConfinedWorker {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn kill(&self) {
        let _ = lock(&self.child).kill();
    }

    fn wait(&self) -> End {
        // The worker's last word, or the channel closing when it dies.
        let said = self.channel.recv::<FromWorker>().ok().map(|(m, _)| m);
        let exit = lock(&self.child).wait();
        for pump in lock(&self.pumps).drain(..) {
            let _ = pump.join();
        }
        let oom = lock(&self.cgroup)
            .take()
            .map(|cg| {
                let kills = cg.oom_kills().ok().flatten().map_or(0, |o| o.kills);
                let _ = cg.remove();
                kills > 0
            })
            .unwrap_or(false);
        classify(said, exit.ok(), oom, self.limits)
    }

    fn memory_bytes(&self) -> Option<u64> {
        lock(&self.cgroup)
            .as_ref()
            .and_then(|cg| cg.memory_current().ok().flatten())
    }
}

/// Combines what the worker said with how it ended.
fn classify(
    said: Option<FromWorker>,
    exit: Option<WorkerExit>,
    oom: bool,
    (memory_limit, watchdog_ms): (u64, u64),
) -> End {
    let failed = |failure, detail: String| End::Failed {
        failure,
        detail,
        backtrace: vec![],
    };
    match said {
        Some(FromWorker::Outcome(outcome)) => match outcome {
            Outcome::Exited { code: 0 } => End::Clean,
            Outcome::Exited { code } => failed(
                FailureKind::Exit { code },
                format!("exited with code {code}"),
            ),
            Outcome::Trapped {
                trap,
                message,
                backtrace,
            } => End::Failed {
                failure: FailureKind::Trap { trap },
                detail: message,
                backtrace,
            },
            Outcome::Watchdog { watchdog_ms } => failed(
                FailureKind::Watchdog { watchdog_ms },
                format!("ran WebAssembly for more than {watchdog_ms} ms without yielding"),
            ),
            Outcome::MemoryLimit {
                limit_bytes,
                requested_bytes,
            } => failed(
                FailureKind::MemoryLimit { limit_bytes },
                format!("asked for {requested_bytes} bytes, limit {limit_bytes}"),
            ),
            Outcome::LoadRefused { reason } => failed(FailureKind::LoadRefused, reason),
        },
        Some(FromWorker::Failed { stage, message }) => {
            failed(FailureKind::WorkerFailed { stage }, message)
        }
        Some(other) => failed(
            FailureKind::WorkerFailed {
                stage: "protocol".into(),
            },
            format!("unexpected message {other:?}"),
        ),
        None => match exit {
            Some(WorkerExit::SecurityViolation) => failed(
                FailureKind::SecurityViolation {
                    signal: libc_sigsys(),
                },
                "killed by seccomp: the worker attempted a forbidden system call".into(),
            ),
            Some(WorkerExit::Killed) if oom => failed(
                FailureKind::OutOfMemory,
                format!(
                    "killed by the kernel for exceeding its memory cgroup (app limit {memory_limit} bytes)"
                ),
            ),
            Some(WorkerExit::Killed) => failed(
                FailureKind::Signal { signal: 9 },
                format!("killed (SIGKILL); watchdog was {watchdog_ms} ms"),
            ),
            Some(WorkerExit::Signaled(signal)) => failed(
                FailureKind::Signal { signal },
                format!("killed by signal {signal}"),
            ),
            Some(WorkerExit::Exited(code)) => failed(
                FailureKind::WorkerFailed {
                    stage: "exit".into(),
                },
                format!("worker exited with code {code} without reporting an outcome"),
            ),
            Some(_) | None => failed(
                FailureKind::WorkerFailed {
                    stage: "wait".into(),
                },
                "the worker's end could not be read".into(),
            ),
        },
    }
}

/// SIGSYS's number on Linux (31 on x86_64, aarch64 and arm).
const fn libc_sigsys() -> i32 {
    31
}

/// Compiles WebAssembly in a confined worker with no rights at all.
#[derive(Debug)]
pub struct WorkerCompiler {
    pub program: PathBuf,
    pub cgroups: CgroupConfig,
    target: String,
    fingerprint: String,
}

impl WorkerCompiler {
    /// Asks the compiler binary (unconfined, no app bytes involved) for its engine fingerprint.
    pub fn new(program: PathBuf, cgroups: CgroupConfig) -> Result<WorkerCompiler, String> {
        let fingerprint = engine_fingerprint(&program)?;
        Ok(WorkerCompiler {
            program,
            cgroups,
            target: code_target().to_owned(),
            fingerprint,
        })
    }
}

/// The engine fingerprint of a worker binary (`warden-worker fingerprint`): which precompiled
/// code it makes or loads. Runs no app code and reads no app bytes.
pub fn engine_fingerprint(program: &Path) -> Result<String, String> {
    let out = std::process::Command::new(program)
        .arg("fingerprint")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} fingerprint failed: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The wasmtime target this device's workers run code for: the host's own architecture, or
/// Pulley on 32-bit ARM, where Cranelift has no native backend (packages carry `pulley32`
/// artefacts for those devices).
fn code_target() -> &'static str {
    if cfg!(target_arch = "arm") {
        "pulley32"
    } else {
        std::env::consts::ARCH
    }
}

impl Compiler for WorkerCompiler {
    fn target(&self) -> &str {
        &self.target
    }

    fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn compile(&self, wasm: File, out: File) -> Option<Result<(), String>> {
        Some(self.compile_confined(wasm, out))
    }
}

impl WorkerCompiler {
    fn compile_confined(&self, wasm: File, out: File) -> Result<(), String> {
        let cgroup = AppCgroup::create(
            &self.cgroups,
            &cgroup_name("compiler"),
            &CgroupLimits {
                memory_bytes: Some(COMPILER_MEMORY),
                pids: Some(WORKER_PIDS),
                cpu_weight: None,
            },
        )
        .map_err(|e| format!("cgroup: {e}"))?;
        let plan = ConfinePlan {
            protocol: PROTOCOL_VERSION,
            app: "compiler".into(),
            uid: COMPILER_UID,
            gid: COMPILER_UID,
            rlimits: Rlimits {
                nofile: 16,
                fsize_bytes: None,
            },
            storage: false,
            seccomp: SeccompProfile::Compiler,
            runs: None,
        };
        let (mut child, channel, _) =
            start_confining(&self.program, Some(&cgroup), &plan, None)?.confined()?;
        channel
            .send(
                &ToWorker::Compile(CompileRequest { target: None }),
                &[wasm.as_fd(), out.as_fd()],
            )
            .map_err(|e| format!("sending the compile request: {e}"))?;
        channel
            .set_recv_timeout(Some(COMPILE_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let answer = channel.recv::<FromWorker>().map(|(m, _)| m);
        if answer.is_err() {
            // Timed out (or the channel broke): the compiler is not waited for forever.
            let _ = child.kill();
        }
        let exit = child.wait().map_err(|e| e.to_string())?;
        let _ = cgroup.remove();
        match answer {
            Ok(FromWorker::Compiled { .. }) if exit == WorkerExit::Exited(0) => Ok(()),
            Ok(FromWorker::Failed { stage, message }) => Err(format!("{stage}: {message}")),
            Ok(other) => Err(format!("unexpected answer {other:?} ({exit:?})")),
            Err(e) => Err(format!(
                "the compiler ended without an answer ({exit:?}): {e}"
            )),
        }
    }
}
