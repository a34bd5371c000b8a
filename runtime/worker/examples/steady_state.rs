//! Measures what the worker does after the point where seccomp is installed.
//!
//! `steady_state APP.wasm|APP.wat [STORAGE_DIR]` compiles the app, opens every descriptor the
//! supervisor would hand over, runs `Prepared::new` (the before-seccomp hook), then calls
//! `getppid()` as a marker and runs the app and reports its outcome over a socket, as a worker
//! does after seccomp. Under `strace -f`, the calls after `getppid` are the steady state:
//!
//! ```text
//! strace -f -o trace.txt target/debug/examples/steady_state tests/guests/hello.wat
//! sed -n '/getppid/,/getppid/p' trace.txt
//! ```
//!
//! `--broker` (anywhere after the app) adds a broker socket, as for an app granted
//! peripherals: a thread answers it, granting every GPIO name as a simulated line served by a
//! thread of its own (their calls carry other thread ids in the trace; the worker's are the
//! main thread's), e.g. with `tests/guests/gpio_blink_component.wat`.
//!
//! `steady_state --compile APP.wasm [TARGET]` does the same for a compiler worker: input and
//! output descriptors open, marker, read + compile + write + report.
#![forbid(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, bail};
use warden_ipc::broker::{Access, BrokerReply, BrokerRequest, Detail, Grant};
use warden_ipc::sim::{SimReply, SimRequest};
use warden_ipc::{Channel, CodeKind, FromWorker, RunRequest};
use warden_worker::{Prepared, WasmKind};

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let brokered = args.iter().skip(1).any(|a| a == "--broker");
    args.retain(|a| a != "--broker");
    let Some(app) = args.first() else {
        bail!("usage: steady_state APP.wasm|APP.wat [STORAGE_DIR]");
    };
    if app == "--compile" {
        return compile_steady_state(args.get(1).map(String::as_str), args.get(2));
    }
    let wasm = if app.ends_with(".wat") {
        wat::parse_file(app)?
    } else {
        std::fs::read(app)?
    };
    let kind = match warden_worker::wasm_kind(&wasm).context("not wasm")? {
        WasmKind::Component => CodeKind::Component,
        _ => CodeKind::Module,
    };
    let artefact = warden_worker::compile(&wasm, None)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("app.cwasm");
    std::fs::write(&path, &artefact)?;
    let code = File::open(&path)?;
    let stdout = File::create(dir.path().join("stdout"))?;
    let stderr = File::create(dir.path().join("stderr"))?;
    let storage = match args.get(1) {
        Some(dir) => Some(File::open(dir)?.into()),
        None => None,
    };
    let (worker_end, supervisor_end) = Channel::pair()?;
    let request = RunRequest {
        kind,
        code_sha256: {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&artefact))
        },
        code_bytes: u64::try_from(artefact.len())?,
        args: vec!["app".to_owned()],
        env: vec![],
        memory_limit_bytes: 64 << 20,
        watchdog_ms: 1000,
        storage_quota_bytes: None,
        broker: brokered,
        tls_roots: vec![],
    };
    let broker = if brokered { Some(fake_broker()?) } else { None };

    let prepared = Prepared::new(request.kind, false)?;
    // ---- seccomp would be installed here ----
    let _ = rustix::process::getppid();
    let outcome = prepared.run(&request, code, stdout, stderr, storage, broker)?;
    worker_end.send(&FromWorker::Outcome(outcome), &[])?;
    // ---- the worker exits here; the rest is this measurement's own reporting ----
    let _ = rustix::process::getppid();
    let (reply, _) = supervisor_end.recv::<FromWorker>()?;
    eprintln!("{reply:?}");
    Ok(())
}

fn compile_steady_state(input: Option<&str>, target: Option<&String>) -> anyhow::Result<()> {
    use std::io::{Read, Write};

    let input = input.context("usage: steady_state --compile APP.wasm [TARGET]")?;
    let mut input = File::open(input)?;
    let dir = tempfile::tempdir()?;
    let mut output = File::create(dir.path().join("out.cwasm"))?;
    let (worker_end, supervisor_end) = Channel::pair()?;
    warden_worker::prepare_compiler()?;
    // ---- seccomp would be installed here ----
    let _ = rustix::process::getppid();
    let mut wasm = Vec::new();
    input.read_to_end(&mut wasm)?;
    let artefact = warden_worker::compile(&wasm, target.map(String::as_str))?;
    output.write_all(&artefact)?;
    worker_end.send(
        &FromWorker::Compiled {
            size: u64::try_from(artefact.len())?,
            sha256: String::new(),
        },
        &[],
    )?;
    let _ = rustix::process::getppid();
    let (reply, _) = supervisor_end.recv::<FromWorker>()?;
    eprintln!("{reply:?}");
    Ok(())
}

/// The worker's end of a broker socket whose other end a thread serves: every GPIO request is
/// granted as a simulated line (a thread answering `Done` and `Level(false)`), anything else
/// refused.
fn fake_broker() -> anyhow::Result<OwnedFd> {
    let (worker, supervisor) = Channel::pair()?;
    std::thread::spawn(move || {
        while let Ok((request, _)) = supervisor.recv::<BrokerRequest>() {
            let line = match Channel::pair() {
                Ok((line, board)) => {
                    std::thread::spawn(move || {
                        while let Ok((request, _)) = board.recv::<SimRequest>() {
                            let reply = match request {
                                SimRequest::GpioGet => SimReply::Level(false),
                                _ => SimReply::Done,
                            };
                            if board.send(&reply, &[]).is_err() {
                                return;
                            }
                        }
                    });
                    line
                }
                Err(_) => return,
            };
            let result = match request.open {
                warden_ipc::broker::ResourceRequest::Gpio { name, .. } => Ok(Grant {
                    peripheral: name,
                    access: Access::Sim {
                        detail: Detail::Gpio,
                    },
                }),
                other => Err(warden_ipc::broker::Denial::NotGranted(other.describe())),
            };
            let fds = if result.is_ok() {
                vec![line.as_fd()]
            } else {
                vec![]
            };
            let reply = BrokerReply {
                seq: request.seq,
                result,
            };
            if supervisor.send(&reply, &fds).is_err() {
                return;
            }
        }
    });
    Ok(worker.into_fd())
}
