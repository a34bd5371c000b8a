//! Shared test helpers: compile a guest with the crate's own `compile`, run it in-process.
//!
//! The watchdog's interval timer and SIGALRM handler are process-wide, so runs in one test
//! binary are serialised by [`run`]'s lock.
#![allow(dead_code, unreachable_pub)]

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use std::os::fd::AsFd;
use std::sync::mpsc;

use sha2::{Digest, Sha256};
use warden_ipc::broker::{
    Access, BrokerReply, BrokerRequest, Denial, Detail, Grant, ResourceRequest,
};
use warden_ipc::sim::{SimReply, SimRequest};
use warden_ipc::{Channel, CodeKind, Outcome, RunRequest};
use warden_worker::{Prepared, Timings, WasmKind};

static RUNS: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn guest_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guests")
        .join(name)
}

/// A WAT guest from `tests/guests/`, as a WebAssembly binary.
pub fn wat(name: &str) -> Vec<u8> {
    wat::parse_file(guest_path(name)).expect("guest parses")
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// An artefact in a read-only file, as the supervisor hands it.
pub struct Artefact {
    pub bytes: Vec<u8>,
    pub kind: CodeKind,
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Artefact {
    pub fn from_bytes(bytes: Vec<u8>, kind: CodeKind) -> Artefact {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.cwasm");
        std::fs::write(&path, &bytes).expect("write artefact");
        Artefact {
            bytes,
            kind,
            _dir: dir,
            path,
        }
    }

    pub fn open(&self) -> File {
        File::open(&self.path).expect("open artefact")
    }

    pub fn sha256(&self) -> String {
        sha256(&self.bytes)
    }
}

/// Precompiles `wasm` for the host with the worker's own `compile`.
pub fn precompile(wasm: &[u8]) -> Artefact {
    let kind = match warden_worker::wasm_kind(wasm).expect("a wasm header") {
        WasmKind::Component => CodeKind::Component,
        _ => CodeKind::Module,
    };
    let bytes = warden_worker::compile(wasm, None).expect("compiles");
    Artefact::from_bytes(bytes, kind)
}

pub fn request(artefact: &Artefact) -> RunRequest {
    RunRequest {
        kind: artefact.kind,
        code_sha256: artefact.sha256(),
        code_bytes: artefact.bytes.len() as u64,
        args: vec!["app".to_owned()],
        env: vec![("WARDEN_TEST".to_owned(), "1".to_owned())],
        memory_limit_bytes: 16 << 20,
        watchdog_ms: 1000,
        storage_quota_bytes: None,
        broker: false,
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct Ran {
    pub outcome: Outcome,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timings: Timings,
    pub prepare: std::time::Duration,
    pub wall: std::time::Duration,
}

impl Ran {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Prepares a worker and runs `code` with `request`, in this process.
pub fn run_code(request: &RunRequest, code: File, storage: Option<OwnedFd>) -> Ran {
    run_brokered(request, code, storage, None)
}

/// Like [`run_code`], with `broker` as the broker socket (`request.broker` must agree).
pub fn run_brokered(
    request: &RunRequest,
    code: File,
    storage: Option<OwnedFd>,
    broker: Option<OwnedFd>,
) -> Ran {
    let _guard = lock();
    let mut stdout = tempfile::tempfile().expect("stdout file");
    let mut stderr = tempfile::tempfile().expect("stderr file");
    let started = Instant::now();
    let prepared = Prepared::new(request.kind).expect("prepares");
    let prepare = started.elapsed();
    let (outcome, timings) = prepared
        .run_measured(
            request,
            code,
            stdout.try_clone().expect("dup"),
            stderr.try_clone().expect("dup"),
            storage,
            broker,
        )
        .expect("the worker itself does not fail");
    let wall = started.elapsed();
    Ran {
        outcome,
        stdout: read_all(&mut stdout),
        stderr: read_all(&mut stderr),
        timings,
        prepare,
        wall,
    }
}

pub fn run(artefact: &Artefact, request: &RunRequest) -> Ran {
    run_code(request, artefact.open(), None)
}

fn read_all(file: &mut File) -> Vec<u8> {
    file.flush().expect("flush");
    file.rewind().expect("rewind");
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read back");
    bytes
}

/// The `sample-apps/hello` component, built for wasm32-wasip2 on first use.
pub fn hello_component() -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let wasm = root.join("target/guests/wasm32-wasip2/release/hello.wasm");
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
            "sample-apps/hello/Cargo.toml",
            "--target-dir",
            "target/guests",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building sample-apps/hello failed");
    std::fs::read(&wasm).expect("hello.wasm")
}

/// A simulated GPIO line on a thread: reports every request on `seen`, answers `Done`.
pub fn gpio_line(seen: mpsc::Sender<SimRequest>) -> OwnedFd {
    let (worker, board) = Channel::pair().expect("socket pair");
    std::thread::spawn(move || {
        while let Ok((request, _)) = board.recv::<SimRequest>() {
            let reply = match request {
                SimRequest::GpioGet => SimReply::Level(false),
                _ => SimReply::Done,
            };
            seen.send(request).expect("the test listens");
            board.send(&reply, &[]).expect("the worker listens");
        }
    });
    worker.into_fd()
}

/// A broker on a thread that grants `SAMPLE_LED` as `line` and reports every request.
pub fn broker(line: OwnedFd, seen: mpsc::Sender<ResourceRequest>) -> OwnedFd {
    let (worker, supervisor) = Channel::pair().expect("socket pair");
    let mut line = Some(line);
    std::thread::spawn(move || {
        while let Ok((request, _)) = supervisor.recv::<BrokerRequest>() {
            seen.send(request.open.clone()).expect("the test listens");
            let (result, fds) = match (request.open.name(), line.take()) {
                ("SAMPLE_LED", Some(fd)) => (
                    Ok(Grant {
                        peripheral: "SIM_GPIO0".into(),
                        access: Access::Sim {
                            detail: Detail::Gpio,
                        },
                    }),
                    vec![fd],
                ),
                (name, _) => (Err(Denial::NotGranted(name.into())), vec![]),
            };
            let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
            let reply = BrokerReply {
                seq: request.seq,
                result,
            };
            supervisor.send(&reply, &fds).expect("the worker listens");
        }
    });
    worker.into_fd()
}
