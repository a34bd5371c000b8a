//! `wasi:sockets` through the broker, with a real guest: the `sample-apps/net-probe` component
//! (Rust `std::net` on wasm32-wasip2, i.e. wasi-libc over `wasi:sockets`) runs through
//! `Prepared` in this process; a fake broker thread (`common::network_broker`) stands in for the
//! supervisor and hands out loopback sockets it made itself; the peers on the other side are
//! this test's own sockets. The worker never makes a socket: it only uses the passed ones.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use common::{
    Artefact, NetEvent, net_probe_component, network_broker, precompile, request, run_prepared,
};
use warden_ipc::broker::{ResourceRequest, Transport};
use warden_ipc::{CodeKind, Outcome};

/// The net-probe component, precompiled once for all the tests here.
fn probe_app() -> Artefact {
    static COMPILED: OnceLock<Artefact> = OnceLock::new();
    let compiled = COMPILED.get_or_init(|| precompile(&net_probe_component()));
    Artefact::from_bytes(compiled.bytes.clone(), compiled.kind)
}

/// The probe's output lines and what the broker was asked, for `steps` in a worker prepared
/// for the network (`network`) or not, with the fake broker or none.
struct Probed {
    lines: Vec<String>,
    asked: Vec<ResourceRequest>,
}

fn probe(steps: &[String], network: bool, broker: bool) -> Probed {
    let app = probe_app();
    assert_eq!(app.kind, CodeKind::Component);
    let (events_tx, events) = mpsc::channel();
    let mut req = request(&app);
    req.args = std::iter::once("net-probe".to_owned())
        .chain(steps.iter().cloned())
        .collect();
    req.broker = broker;
    req.watchdog_ms = 5_000;
    let socket = broker.then(|| network_broker(events_tx));
    let ran = run_prepared(&req, app.open(), None, socket, network);
    assert_eq!(
        ran.outcome,
        Outcome::Exited { code: 0 },
        "stdout: {}\nstderr: {}",
        ran.stdout_text(),
        String::from_utf8_lossy(&ran.stderr)
    );
    Probed {
        lines: ran.stdout_text().lines().map(str::to_owned).collect(),
        asked: events
            .try_iter()
            .filter_map(|e| match e {
                NetEvent::Asked(request) => Some(request),
                NetEvent::Serving(..) => None,
            })
            .collect(),
    }
}

/// A TCP echo server on loopback for one connection; its address.
fn tcp_echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => stream.write_all(&buf[..n]).unwrap(),
            }
        }
    });
    address
}

#[test]
fn a_lookup_returns_the_addresses_the_broker_found() {
    let probed = probe(&["lookup allowed.test".into()], true, true);
    assert_eq!(probed.lines, ["lookup ok 127.0.0.1 ::1"]);
    assert!(
        probed.asked.contains(&ResourceRequest::Lookup {
            host: "allowed.test".into()
        }),
        "{:?}",
        probed.asked
    );
}

#[test]
fn tcp_connects_sends_and_receives_over_the_passed_socket() {
    let server = tcp_echo_server();
    let step = format!("tcp-echo 127.0.0.1 {} hello\\nbroker", server.port());
    let probed = probe(&[step], true, true);
    assert_eq!(probed.lines, ["tcp-echo ok \"hello\\nbroker\""]);
    assert_eq!(
        probed.asked,
        [ResourceRequest::Connect {
            transport: Transport::Tcp,
            address: server,
        }]
    );
}

#[test]
fn a_name_the_broker_resolves_connects_and_an_unlisted_one_does_not() {
    let server = tcp_echo_server();
    let steps = [
        format!("tcp-echo allowed.test {} by-name", server.port()),
        format!("tcp-echo other.test {} refused", server.port()),
    ];
    let probed = probe(&steps, true, true);
    assert_eq!(probed.lines[0], "tcp-echo ok \"by-name\"");
    // The broker refuses to look `other.test` up (`not-granted`): `access-denied`.
    assert!(
        probed.lines[1].starts_with("tcp-echo error PermissionDenied "),
        "{:?}",
        probed.lines
    );
    assert!(probed.asked.contains(&ResourceRequest::Lookup {
        host: "other.test".into()
    }));
}

#[test]
fn a_refused_connection_is_access_denied_for_the_app() {
    // The fake broker grants connections to 127.0.0.1 only.
    let probed = probe(&["tcp-echo 10.9.8.7 443 nope".into()], true, true);
    assert_eq!(probed.lines.len(), 1);
    assert!(
        probed.lines[0].starts_with("tcp-echo error PermissionDenied "),
        "{:?}",
        probed.lines
    );
    assert_eq!(
        probed.asked,
        [ResourceRequest::Connect {
            transport: Transport::Tcp,
            address: "10.9.8.7:443".parse().unwrap(),
        }]
    );
}

#[test]
fn a_connection_the_network_refuses_is_connection_refused() {
    // A port nobody listens on (bound, then closed).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let probed = probe(&[format!("tcp-echo 127.0.0.1 {port} x")], true, true);
    assert!(
        probed.lines[0].starts_with("tcp-echo error ConnectionRefused "),
        "{:?}",
        probed.lines
    );
}

#[test]
fn a_server_accepts_on_the_passed_listener_and_echoes() {
    let (events_tx, events_rx) = mpsc::channel::<SocketAddr>();
    // The client: waits for the broker's listening socket, then connects, sends, reads back.
    let client = std::thread::spawn(move || {
        let address = events_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(b"accepted and echoed").unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut echoed = Vec::new();
        stream.read_to_end(&mut echoed).unwrap();
        echoed
    });
    let app = probe_app();
    let (broker_events, events) = mpsc::channel();
    let mut req = request(&app);
    req.args = vec!["net-probe".into(), "tcp-serve 8080 1".into()];
    req.broker = true;
    req.watchdog_ms = 5_000;
    // Forward the broker's server socket to the client as soon as it exists.
    let forward = std::thread::spawn(move || {
        let mut asked = Vec::new();
        while let Ok(event) = events.recv() {
            match event {
                NetEvent::Serving(Transport::Tcp, address) => {
                    events_tx.send(address).unwrap();
                }
                NetEvent::Asked(request) => asked.push(request),
                NetEvent::Serving(..) => {}
            }
        }
        asked
    });
    let ran = run_prepared(
        &req,
        app.open(),
        None,
        Some(network_broker(broker_events)),
        true,
    );
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 }, "{ran:?}");
    assert_eq!(
        ran.stdout_text(),
        "tcp-serve listening\ntcp-serve ok 19\n",
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    assert_eq!(client.join().unwrap(), b"accepted and echoed");
    assert_eq!(
        forward.join().unwrap(),
        [ResourceRequest::Listen {
            transport: Transport::Tcp,
            address: "0.0.0.0:8080".parse().unwrap(),
            backlog: 128,
        }]
    );
}

#[test]
fn udp_connected_echo_over_a_socket_the_broker_connected() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = server.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0; 2048];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        server.send_to(&buf[..n], from).unwrap();
    });
    let step = format!("udp-echo 127.0.0.1 {} datagram", address.port());
    let probed = probe(&[step], true, true);
    assert_eq!(probed.lines, ["udp-echo ok \"datagram\""]);
    assert_eq!(
        probed.asked,
        [ResourceRequest::Connect {
            transport: Transport::Udp,
            address,
        }]
    );
}

#[test]
fn a_udp_server_answers_each_sender_on_the_passed_socket() {
    let (events_tx, events_rx) = mpsc::channel::<SocketAddr>();
    let client = std::thread::spawn(move || {
        let address = events_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        socket.send_to(b"to the server", address).unwrap();
        let mut buf = [0; 2048];
        let (n, from) = socket.recv_from(&mut buf).unwrap();
        assert_eq!(from, address);
        (buf[..n].to_vec(), socket.local_addr().unwrap())
    });
    let app = probe_app();
    let (broker_events, events) = mpsc::channel();
    let forward = std::thread::spawn(move || {
        while let Ok(event) = events.recv() {
            if let NetEvent::Serving(Transport::Udp, address) = event {
                events_tx.send(address).unwrap();
            }
        }
    });
    let mut req = request(&app);
    req.args = vec!["net-probe".into(), "udp-serve 5683 1".into()];
    req.broker = true;
    req.watchdog_ms = 5_000;
    let ran = run_prepared(
        &req,
        app.open(),
        None,
        Some(network_broker(broker_events)),
        true,
    );
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 }, "{ran:?}");
    let (echoed, client_address) = client.join().unwrap();
    forward.join().unwrap();
    assert_eq!(echoed, b"to the server");
    assert_eq!(
        ran.stdout_text(),
        format!("udp-serve listening\nudp-serve ok {client_address}\n")
    );
}

#[test]
fn without_network_every_step_is_refused_in_the_worker() {
    let server = tcp_echo_server();
    let steps = [
        "lookup allowed.test".into(),
        format!("tcp-echo 127.0.0.1 {} x", server.port()),
        format!("udp-echo 127.0.0.1 {} x", server.port()),
        "tcp-serve 8080 1".into(),
    ];
    // Not prepared for the network (no I/O driver), no broker: nothing is asked.
    let probed = probe(&steps, false, false);
    assert_eq!(probed.lines.len(), 4, "{:?}", probed.lines);
    for line in &probed.lines {
        assert!(line.contains(" error PermissionDenied "), "{line}");
    }
    assert!(probed.asked.is_empty());
}

#[test]
fn a_network_worker_without_a_broker_refuses_as_well() {
    let steps = ["tcp-echo 127.0.0.1 7 x".into()];
    let probed = probe(&steps, true, false);
    assert!(
        probed.lines[0].starts_with("tcp-echo error PermissionDenied "),
        "{:?}",
        probed.lines
    );
}
