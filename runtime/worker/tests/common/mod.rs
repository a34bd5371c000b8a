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
use std::net::{IpAddr, SocketAddr};

use warden_ipc::broker::{
    Access, BrokerReply, BrokerRequest, Denial, Detail, Grant, NetError, ResourceRequest, Transport,
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
        tls_roots: vec![],
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
    run_prepared(request, code, storage, broker, false)
}

/// Like [`run_brokered`], in a worker prepared as for a network profile if `network` (the
/// runtime's I/O driver, `wasi:sockets` through the broker).
pub fn run_prepared(
    request: &RunRequest,
    code: File,
    storage: Option<OwnedFd>,
    broker: Option<OwnedFd>,
    network: bool,
) -> Ran {
    let _guard = lock();
    let mut stdout = tempfile::tempfile().expect("stdout file");
    let mut stderr = tempfile::tempfile().expect("stderr file");
    let started = Instant::now();
    let prepared = Prepared::new(request.kind, network).expect("prepares");
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
    sample_component("hello")
}

/// The `sample-apps/net-probe` component (network steps through Rust's `std::net`, i.e.
/// `wasi:sockets`), built for wasm32-wasip2 on first use.
pub fn net_probe_component() -> Vec<u8> {
    sample_component("net-probe")
}

/// `sample-apps/<name>`, built for wasm32-wasip2 (cargo decides whether anything changed).
fn sample_component(name: &str) -> Vec<u8> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let wasm = root.join(format!("target/guests/wasm32-wasip2/release/{name}.wasm"));
    let manifest = format!("sample-apps/{name}/Cargo.toml");
    let status = std::process::Command::new(env!("CARGO"))
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
            &manifest,
            "--target-dir",
            "target/guests",
        ])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building sample-apps/{name} failed");
    std::fs::read(&wasm).unwrap_or_else(|e| panic!("{}: {e}", wasm.display()))
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
            let (result, fds) = match (request.open.peripheral().unwrap_or_default(), line.take()) {
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

/// What the fake network broker saw and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// A request, as the worker sent it.
    Asked(ResourceRequest),
    /// A server socket it made for the app, listening (TCP) or bound (UDP) here.
    Serving(Transport, SocketAddr),
}

/// A fake network broker on a thread, standing in for the supervisor: `allowed.test` resolves
/// to 127.0.0.1 and ::1, connections go to 127.0.0.1 only (made here, like the supervisor
/// makes them), and server sockets are made on 127.0.0.1 with a free port (whatever port the
/// app asked for, so tests never collide); everything else is `not-granted`. Reports each
/// request and each server socket on `events`.
pub fn network_broker(events: mpsc::Sender<NetEvent>) -> OwnedFd {
    let (worker, supervisor) = Channel::pair().expect("socket pair");
    std::thread::spawn(move || {
        while let Ok((request, _)) = supervisor.recv::<BrokerRequest>() {
            let _ = events.send(NetEvent::Asked(request.open.clone()));
            let (result, fds) = match network_answer(&request.open, &events) {
                Ok((access, fd)) => (
                    Ok(Grant {
                        peripheral: "network".into(),
                        access,
                    }),
                    fd.into_iter().collect(),
                ),
                Err(denial) => (Err(denial), Vec::new()),
            };
            let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect::<Vec<_>>();
            let reply = BrokerReply {
                seq: request.seq,
                result,
            };
            if supervisor.send(&reply, &fds).is_err() {
                return;
            }
        }
    });
    worker.into_fd()
}

fn network_answer(
    request: &ResourceRequest,
    events: &mpsc::Sender<NetEvent>,
) -> Result<(Access, Option<OwnedFd>), Denial> {
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => Denial::Network {
            error: NetError::ConnectionRefused,
            detail: e.to_string(),
        },
        _ => Denial::Io(e.to_string()),
    };
    match request {
        ResourceRequest::Lookup { host } if host == "allowed.test" => Ok((
            Access::Addresses {
                addresses: vec![loopback, IpAddr::from(std::net::Ipv6Addr::LOCALHOST)],
            },
            None,
        )),
        ResourceRequest::Connect { transport, address } if address.ip() == loopback => {
            let (local, fd) = match transport {
                Transport::Tcp => {
                    let stream = std::net::TcpStream::connect(address).map_err(io)?;
                    stream.set_nonblocking(true).map_err(io)?;
                    (stream.local_addr().map_err(io)?, OwnedFd::from(stream))
                }
                Transport::Udp => {
                    let socket = std::net::UdpSocket::bind((loopback, 0)).map_err(io)?;
                    socket.connect(address).map_err(io)?;
                    socket.set_nonblocking(true).map_err(io)?;
                    (socket.local_addr().map_err(io)?, OwnedFd::from(socket))
                }
            };
            let access = Access::Socket {
                transport: *transport,
                local,
                remote: Some(*address),
            };
            Ok((access, Some(fd)))
        }
        ResourceRequest::Listen { transport, .. } => {
            let (local, fd) = match transport {
                Transport::Tcp => {
                    let listener = std::net::TcpListener::bind((loopback, 0)).map_err(io)?;
                    listener.set_nonblocking(true).map_err(io)?;
                    (listener.local_addr().map_err(io)?, OwnedFd::from(listener))
                }
                Transport::Udp => {
                    let socket = std::net::UdpSocket::bind((loopback, 0)).map_err(io)?;
                    socket.set_nonblocking(true).map_err(io)?;
                    (socket.local_addr().map_err(io)?, OwnedFd::from(socket))
                }
            };
            let _ = events.send(NetEvent::Serving(*transport, local));
            let access = Access::Socket {
                transport: *transport,
                local,
                remote: None,
            };
            Ok((access, Some(fd)))
        }
        other => Err(Denial::NotGranted(format!(
            "{} is not allowed for this app",
            other.describe()
        ))),
    }
}
