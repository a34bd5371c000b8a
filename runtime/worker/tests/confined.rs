//! The real `warden-worker` binary, spawned and confined by `warden-sandbox` as `wardend` does,
//! running a component that opens a GPIO pin through a broker socket: under `worker_devices`
//! it runs to its end; under `worker` (no device rules) seccomp kills it at its first request
//! to the broker. Proves the device profile is both needed and enough for this path. And the
//! `sample-apps/net-probe` component using TCP and UDP, client and server, over sockets a fake
//! broker passes into the worker's empty network namespace: under `worker_network` it runs to
//! its end; under `worker_devices` the worker has no network and refuses every step itself.
//! Needs root (namespaces, uid change), as CI runs it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;

use common::{
    Artefact, NetEvent, broker, gpio_line, net_probe_component, network_broker, precompile,
    request, wat,
};
use warden_ipc::broker::Transport;
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
    stdout: String,
    stderr: String,
}

fn run_confined(app: &Artefact, seccomp: SeccompProfile) -> Confined {
    let (board_tx, board_rx) = mpsc::channel();
    let (broker_tx, _broker_rx) = mpsc::channel();
    let broker = broker(gpio_line(board_tx), broker_tx);
    let mut ran = spawn_confined(app, seccomp, &[], broker);
    ran.board = board_rx.try_iter().collect();
    ran
}

/// Spawns and confines the worker under `seccomp`, runs `app` with `args` and `broker` as its
/// broker socket, and waits for its end.
fn spawn_confined(
    app: &Artefact,
    seccomp: SeccompProfile,
    args: &[String],
    broker: OwnedFd,
) -> Confined {
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

    let mut stdout = tempfile::tempfile().unwrap();
    let mut stderr = tempfile::tempfile().unwrap();
    let mut req = request(app);
    req.broker = true;
    if !args.is_empty() {
        req.args = args.to_vec();
        req.watchdog_ms = 5_000;
    }
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
    let read = |file: &mut std::fs::File| {
        let mut text = String::new();
        std::io::Seek::rewind(file).unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    };
    Confined {
        outcome,
        exit,
        board: Vec::new(),
        stdout: read(&mut stdout),
        stderr: read(&mut stderr),
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

/// A TCP echo server and a UDP echo server on loopback (in the test's network namespace), each
/// for one peer, and a TCP sink that reads a connection to its end and answers the byte count.
fn echo_servers() -> (SocketAddr, SocketAddr, SocketAddr) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let addresses = (
        tcp.local_addr().unwrap(),
        udp.local_addr().unwrap(),
        sink.local_addr().unwrap(),
    );
    std::thread::spawn(move || {
        let (mut stream, _) = tcp.accept().unwrap();
        let mut buf = [0; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            stream.write_all(&buf[..n]).unwrap();
        }
    });
    std::thread::spawn(move || {
        let (mut stream, _) = sink.accept().unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        stream
            .write_all(received.len().to_string().as_bytes())
            .unwrap();
    });
    std::thread::spawn(move || {
        let mut buf = [0; 2048];
        let (n, from) = udp.recv_from(&mut buf).unwrap();
        udp.send_to(&buf[..n], from).unwrap();
    });
    addresses
}

/// The net-probe's steps for every path: a lookup, TCP and UDP clients, 2 MiB sent and the
/// sending side shut down, a TCP server.
fn network_steps((tcp, udp, sink): (SocketAddr, SocketAddr, SocketAddr)) -> Vec<String> {
    vec![
        "net-probe".into(),
        "lookup allowed.test".into(),
        format!("tcp-echo allowed.test {} over a passed socket", tcp.port()),
        format!("udp-echo 127.0.0.1 {} datagram", udp.port()),
        format!("tcp-send 127.0.0.1 {} 2097152", sink.port()),
        "tcp-serve 8080 1".into(),
    ]
}

/// A broker whose TCP server socket gets one client: connects, sends, reads the echo.
fn network_broker_with_client() -> (OwnedFd, std::thread::JoinHandle<Option<Vec<u8>>>) {
    let (events_tx, events) = mpsc::channel();
    let broker = network_broker(events_tx);
    let client = std::thread::spawn(move || {
        let address = events.iter().find_map(|event| match event {
            NetEvent::Serving(Transport::Tcp, address) => Some(address),
            _ => None,
        })?;
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.write_all(b"to the app's server").unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed).unwrap();
        Some(echoed)
    });
    (broker, client)
}

#[test]
fn under_worker_network_an_app_uses_the_sockets_the_broker_passes() {
    let app = precompile(&net_probe_component());
    let (broker, client) = network_broker_with_client();
    let ran = spawn_confined(
        &app,
        SeccompProfile::WorkerNetwork,
        &network_steps(echo_servers()),
        broker,
    );
    assert_eq!(
        ran.outcome,
        Some(FromWorker::Outcome(Outcome::Exited { code: 0 })),
        "exit: {:?}\nstdout: {}\nstderr: {}",
        ran.exit,
        ran.stdout,
        ran.stderr
    );
    assert_eq!(ran.exit, WorkerExit::Exited(0));
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(lines[0], "lookup ok 127.0.0.1 ::1");
    assert_eq!(lines[1], "tcp-echo ok \"over a passed socket\"");
    assert_eq!(lines[2], "udp-echo ok \"datagram\"");
    // Every byte arrived before the shutdown ended the stream: the sink counted them all.
    assert!(
        lines[3].starts_with("tcp-send ok 2097152 ") && lines[3].ends_with(" \"2097152\""),
        "{}",
        lines[3]
    );
    assert_eq!(lines[4..], ["tcp-serve listening", "tcp-serve ok 19"]);
    assert_eq!(client.join().unwrap().unwrap(), b"to the app's server");
}

#[test]
fn under_worker_devices_the_worker_has_no_network_and_refuses_every_step() {
    let app = precompile(&net_probe_component());
    let (broker, _client) = network_broker_with_client();
    let ran = spawn_confined(
        &app,
        SeccompProfile::WorkerDevices,
        &network_steps(echo_servers()),
        broker,
    );
    assert_eq!(ran.exit, WorkerExit::Exited(0), "stderr: {}", ran.stderr);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{lines:?}");
    for line in lines {
        assert!(line.contains(" error PermissionDenied "), "{line}");
    }
}
