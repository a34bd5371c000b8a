//! Shared test fixtures: keys and a trust store, the simulated board, packages, a compiler
//! that only marks its input.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use warden_policy::keys::{KeyRole, PrivateKey};
use warden_policy::package::{self, Limits, PackRequest, PackageKind, PayloadInput, PayloadRole};
use warden_policy::trust::TrustStore;
use wardend::device::DeviceConfig;
use wardend::install::Compiler;
use wardend::logs::Log;
use wardend::reports::FailureKind;
use wardend::state::StateDir;
use wardend::supervisor::{End, LaunchSpec, Launcher, RunningWorker};

pub mod daemon;
pub mod guest;
pub mod rtcore;
pub mod samples;

pub const COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00 a test component";

/// Opens a simulated UART's other end (the pty `GET /sim/uart/NAME` names) in raw mode, so
/// the line discipline neither echoes nor rewrites what crosses it.
pub fn open_raw_pty(path: &str) -> File {
    use std::os::fd::AsFd as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut termios = nix::sys::termios::tcgetattr(file.as_fd()).unwrap();
    nix::sys::termios::cfmakeraw(&mut termios);
    nix::sys::termios::tcsetattr(file.as_fd(), nix::sys::termios::SetArg::TCSANOW, &termios)
        .unwrap();
    file
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// "Compiles" by prefixing the input, and counts its calls.
pub struct FakeCompiler {
    pub calls: AtomicUsize,
    pub available: bool,
}

impl Compiler for FakeCompiler {
    fn target(&self) -> &str {
        "test-target"
    }
    fn fingerprint(&self) -> &str {
        "fake-engine-1"
    }
    fn compile(&self, mut wasm: File, mut out: File) -> Option<Result<(), String>> {
        if !self.available {
            return None;
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut bytes = Vec::new();
        wasm.read_to_end(&mut bytes).unwrap();
        out.write_all(b"compiled:").unwrap();
        out.write_all(&bytes).unwrap();
        Some(Ok(()))
    }
}

pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub state_path: PathBuf,
    pub state: StateDir,
    pub device: DeviceConfig,
    pub app_key: PrivateKey,
    pub compiler: FakeCompiler,
}

pub fn fixture() -> Fixture {
    fixture_with_keys(&[])
}

/// [`fixture`] whose trust store also lists `extra` keys (public key, role, label).
pub fn fixture_with_keys(extra: &[(&PrivateKey, KeyRole, &str)]) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = PrivateKey::generate().unwrap();
    let app_key = PrivateKey::generate().unwrap();
    let mut trust = TrustStore::init(&root, "test root").unwrap();
    for (key, role, label) in std::iter::once((&app_key, KeyRole::App, "app"))
        .chain(extra.iter().map(|(key, role, label)| (*key, *role, *label)))
    {
        trust =
            TrustStore::add_key(trust.as_bytes(), &root, key.public_key(), role, label).unwrap();
    }
    let trust_path = tmp.path().join("trust.json");
    std::fs::write(&trust_path, trust).unwrap();
    let board = repo().join("buildroot-overlay/board/warden-sim/board.json");
    let device = DeviceConfig::load(&board, &trust_path, None, None).unwrap();
    let state_path = tmp.path().join("state");
    let state = StateDir::open(&state_path).unwrap();
    Fixture {
        tmp,
        state_path,
        state,
        device,
        app_key,
        compiler: FakeCompiler {
            calls: AtomicUsize::new(0),
            available: true,
        },
    }
}

pub fn manifest(id: &str, gpio: &str) -> String {
    format!(
        r#"{{"SchemaVersion": 1, "Name": "t", "ComponentId": "{id}", "EntryPoint": "/bin/app.wasm",
            "Capabilities": {{"Gpio": ["{gpio}"]}}, "ApplicationType": "Default"}}"#
    )
}

pub const APP_A: &str = "6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b";
pub const APP_B: &str = "7b1d2f9a-4c3e-4f60-8b8c-2d3e4f5a6b7c";

pub fn pack(f: &Fixture, manifest: &str, version: u64, precompiled: Option<&[u8]>) -> Vec<u8> {
    pack_code(f, manifest, version, COMPONENT, precompiled)
}

/// A package of `kind` whose one payload, `code`, is the entry `entry` (the manifest's
/// `EntryPoint` without its leading `/`), signed by `key`.
pub fn pack_entry(
    kind: PackageKind,
    key: &PrivateKey,
    manifest: &str,
    version: u64,
    code: &[u8],
    entry: &str,
) -> Vec<u8> {
    let request = PackRequest {
        kind,
        manifest_text: manifest,
        version,
        payloads: vec![PayloadInput {
            name: entry.into(),
            role: PayloadRole::Entry,
            target: None,
            engine: None,
            source: &code,
        }],
        limits: Limits::default(),
    };
    let mut out = Vec::new();
    package::pack(&request, key, &mut out).unwrap();
    out
}

/// Packs `code` as the entry `bin/app.wasm`.
pub fn pack_code(
    f: &Fixture,
    manifest: &str,
    version: u64,
    code: &[u8],
    precompiled: Option<&[u8]>,
) -> Vec<u8> {
    let entry: &[u8] = code;
    let mut payloads = vec![PayloadInput {
        name: "bin/app.wasm".into(),
        role: PayloadRole::Entry,
        target: None,
        engine: None,
        source: &entry,
    }];
    let artefact;
    if let Some(bytes) = precompiled {
        artefact = bytes;
        payloads.push(PayloadInput {
            name: "bin/app.test-target.cwasm".into(),
            role: PayloadRole::Precompiled,
            target: Some("test-target".into()),
            engine: Some("fake-engine-1".into()),
            source: &artefact,
        });
    }
    let request = PackRequest {
        kind: PackageKind::App,
        manifest_text: manifest,
        version,
        payloads,
        limits: Limits::default(),
    };
    let mut out = Vec::new();
    package::pack(&request, &f.app_key, &mut out).unwrap();
    out
}

impl FakeCompiler {
    pub fn new() -> FakeCompiler {
        FakeCompiler {
            calls: AtomicUsize::new(0),
            available: true,
        }
    }
}

/// A fresh device config (the fixture's own is moved into a supervisor).
pub fn device(f: &Fixture) -> DeviceConfig {
    let board = repo().join("buildroot-overlay/board/warden-sim/board.json");
    DeviceConfig::load(&board, &f.tmp.path().join("trust.json"), None, None).unwrap()
}

/// What the next launches do: end after a delay with an `End`, or run until killed (`None`).
#[derive(Clone, Default)]
pub struct Script {
    pub plan: Arc<Mutex<VecDeque<Option<End>>>>,
    pub launches: Arc<Mutex<Vec<LaunchSpecSummary>>>,
    /// How long a killed worker takes to be reaped (its `wait` to return after `kill`).
    pub reap_delay: Arc<Mutex<Duration>>,
    /// Workers launched to run until killed that have not been killed yet.
    pub alive: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Clone, Debug)]
pub struct LaunchSpecSummary {
    pub args: Vec<String>,
    pub version: u64,
    pub uid: u32,
}

pub struct FakeWorker {
    end: Option<End>,
    killed: Mutex<bool>,
    cond: Condvar,
    reap_delay: Duration,
    alive: Arc<std::sync::atomic::AtomicUsize>,
}

impl RunningWorker for FakeWorker {
    fn pid(&self) -> u32 {
        4242
    }
    fn kill(&self) {
        let mut killed = self.killed.lock().unwrap();
        if self.end.is_none() && !*killed {
            self.alive.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        *killed = true;
        self.cond.notify_all();
    }
    fn wait(&self) -> End {
        if let Some(end) = &self.end {
            std::thread::sleep(Duration::from_millis(5));
            return end.clone();
        }
        let mut killed = self.killed.lock().unwrap();
        while !*killed {
            killed = self.cond.wait(killed).unwrap();
        }
        drop(killed);
        std::thread::sleep(self.reap_delay);
        End::Failed {
            failure: FailureKind::Signal { signal: 9 },
            detail: "killed".into(),
            backtrace: vec![],
        }
    }
    fn memory_bytes(&self) -> Option<u64> {
        Some(1234)
    }
}

impl Launcher for Script {
    fn launch(&self, spec: LaunchSpec, log: Log) -> Result<Arc<dyn RunningWorker>, String> {
        log.push(wardend::logs::Stream::Stdout, b"hello from the fake");
        self.launches.lock().unwrap().push(LaunchSpecSummary {
            args: spec.args.clone(),
            version: spec.version,
            uid: spec.uid,
        });
        let end = self.plan.lock().unwrap().pop_front().unwrap_or(None);
        if end.is_none() {
            self.alive.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(Arc::new(FakeWorker {
            end,
            killed: Mutex::new(false),
            cond: Condvar::new(),
            reap_delay: *self.reap_delay.lock().unwrap(),
            alive: Arc::clone(&self.alive),
        }))
    }
}

/// Polls `cond` until it holds, failing after 10 s.
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
