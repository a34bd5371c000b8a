//! The real `warden-worker` binary, spawned and confined by `warden-sandbox` as `wardend` does,
//! running a component that opens a GPIO pin through a broker socket: under `worker_devices`
//! it runs to its end; under `worker` (no device rules) seccomp kills it at its first request
//! to the broker. Proves the device profile is both needed and enough for this path. Needs
//! root (namespaces, uid change), as CI runs it.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::fd::AsFd;
use std::sync::mpsc;

use common::{Artefact, broker, gpio_line, precompile, request, wat};
use warden_ipc::sim::SimRequest;
use warden_ipc::{
    Channel, CodeKind, ConfinePlan, FromWorker, Outcome, PROTOCOL_VERSION, Rlimits, SeccompProfile,
    ToWorker,
};
use warden_sandbox::{SpawnRequest, WorkerExit, spawn};

/// What a confined run ended with: the worker's last message (if any), how it exited, and what
/// the board was asked.
struct Confined {
    outcome: Option<FromWorker>,
    exit: WorkerExit,
    board: Vec<SimRequest>,
    stderr: String,
}

fn run_confined(app: &Artefact, seccomp: SeccompProfile) -> Confined {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the confined worker tests need root (namespaces, uid change), as CI runs them"
    );
    let (supervisor, worker) = Channel::pair().unwrap();
    let mut child = spawn(&SpawnRequest::new(
        env!("CARGO_BIN_EXE_warden-worker"),
        worker.as_fd(),
    ))
    .unwrap();
    drop(worker);
    let plan = ConfinePlan {
        protocol: PROTOCOL_VERSION,
        app: "gpio-blink".into(),
        uid: 200_123,
        gid: 200_123,
        rlimits: Rlimits {
            nofile: 64,
            fsize_bytes: None,
        },
        storage: false,
        seccomp,
        runs: Some(CodeKind::Component),
    };
    supervisor.send(&ToWorker::Confine(plan), &[]).unwrap();
    let (confined, _) = supervisor.recv::<FromWorker>().unwrap();
    assert!(matches!(confined, FromWorker::Confined(_)), "{confined:?}");

    let (board_tx, board_rx) = mpsc::channel();
    let (broker_tx, _broker_rx) = mpsc::channel();
    let broker = broker(gpio_line(board_tx), broker_tx);
    let stdout = tempfile::tempfile().unwrap();
    let mut stderr = tempfile::tempfile().unwrap();
    let mut req = request(app);
    req.broker = true;
    let code = app.open();
    supervisor
        .send(
            &ToWorker::Run(req),
            &[code.as_fd(), stdout.as_fd(), stderr.as_fd(), broker.as_fd()],
        )
        .unwrap();
    drop(broker);
    let outcome = supervisor.recv::<FromWorker>().ok().map(|(m, _)| m);
    let exit = child.wait().unwrap();
    let mut text = String::new();
    std::io::Seek::rewind(&mut stderr).unwrap();
    std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
    Confined {
        outcome,
        exit,
        board: board_rx.try_iter().collect(),
        stderr: text,
    }
}

#[test]
fn under_worker_devices_a_brokered_app_drives_its_pin() {
    let app = precompile(&wat("gpio_blink_component.wat"));
    let ran = run_confined(&app, SeccompProfile::WorkerDevices);
    assert_eq!(
        ran.outcome,
        Some(FromWorker::Outcome(Outcome::Exited { code: 0 })),
        "stderr: {}",
        ran.stderr
    );
    assert_eq!(ran.exit, WorkerExit::Exited(0));
    assert_eq!(ran.board, [SimRequest::GpioSet { high: true }]);
}

#[test]
fn under_the_plain_worker_profile_the_first_broker_request_is_a_security_violation() {
    let app = precompile(&wat("gpio_blink_component.wat"));
    let ran = run_confined(&app, SeccompProfile::Worker);
    assert_eq!(ran.outcome, None);
    assert_eq!(ran.exit, WorkerExit::SecurityViolation);
    assert!(ran.board.is_empty());
}
