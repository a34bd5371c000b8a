//! The broker's decisions against the simulated board's real hardware definitions: which
//! names a manifest's grants open, the precise denials, `busy`, and a serving loop that
//! survives malformed requests. Then the network: lookups, connections and server sockets
//! decided from a real manifest's `AllowedConnections` and server ports, with a hosts table
//! mapping an allowed and an unlisted name to different loopback addresses (all of 127/8 is
//! loopback on Linux), real sockets made by the broker and passed over a real broker socket.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use warden_ipc::Channel;
use warden_ipc::broker::{
    Access, BrokerReply, BrokerRequest, Denial, Detail, GpioMode, NetError, ResourceRequest,
    Transport,
};
use warden_policy::hwdef::HwdefSet;
use warden_policy::install::{Device, Grant, resolve};
use warden_policy::manifest::Manifest;
use wardend::broker::{Broker, DeviceOpener, authorize};
use wardend::device::load_board;
use wardend::network::{HostsTable, Network, NetworkGrant, Resolver};

fn grants_for(capabilities: &str) -> (Vec<Grant>, warden_policy::hwdef::HwdefSet) {
    let (board, hwdefs) =
        load_board(&common::repo().join("buildroot-overlay/board/warden-sim/board.json")).unwrap();
    let text = format!(
        r#"{{"SchemaVersion": 1, "Name": "t", "ComponentId": "{}", "EntryPoint": "/bin/app.wasm",
            "Capabilities": {capabilities}, "ApplicationType": "Default"}}"#,
        common::APP_A
    );
    let manifest = Manifest::parse("test", text.as_bytes()).unwrap();
    let device = Device {
        hwdefs: &hwdefs,
        board: &board,
        installed: &[],
    };
    let resolved = resolve("test", &manifest, &device).unwrap();
    (resolved.grants, hwdefs)
}

fn gpio(name: &str) -> ResourceRequest {
    ResourceRequest::Gpio {
        name: name.into(),
        mode: GpioMode::Input,
    }
}

#[test]
fn a_granted_peripheral_opens_by_any_name_on_its_chain() {
    let (grants, hwdefs) = grants_for(r#"{"Gpio": ["$SAMPLE_LED"]}"#);
    for name in ["SAMPLE_LED", "$SAMPLE_LED", "LED_RED", "SIM_GPIO0"] {
        let grant =
            authorize(&grants, &hwdefs, &gpio(name)).unwrap_or_else(|d| panic!("{name}: {d:?}"));
        assert_eq!(grant.chip_peripheral, "SIM_GPIO0", "{name}");
    }
}

#[test]
fn denials_say_precisely_why() {
    let (grants, hwdefs) = grants_for(r#"{"Gpio": ["$SAMPLE_LED"]}"#);
    // On the board, not in the manifest.
    let denial = authorize(&grants, &hwdefs, &gpio("SAMPLE_BUTTON_1")).unwrap_err();
    assert!(
        matches!(&denial, Denial::NotGranted(m) if m.contains("SAMPLE_BUTTON_1")),
        "{denial:?}"
    );
    // Granted as a Gpio, asked for as a UART.
    let uart = ResourceRequest::Uart {
        name: "SAMPLE_LED".into(),
    };
    let denial = authorize(&grants, &hwdefs, &uart).unwrap_err();
    assert!(
        matches!(&denial, Denial::UnknownName(m) if m.contains("not a Uart")),
        "{denial:?}"
    );
    // Not on this board at all.
    let denial = authorize(&grants, &hwdefs, &gpio("NO_SUCH_PIN")).unwrap_err();
    assert!(
        matches!(&denial, Denial::UnknownName(m) if m.contains("NO_SUCH_PIN")),
        "{denial:?}"
    );
    // Nothing granted: every open is refused, never an error of the supervisor.
    let (none, hwdefs) = grants_for("{}");
    assert!(matches!(
        authorize(&none, &hwdefs, &gpio("SAMPLE_LED")),
        Err(Denial::NotGranted(_))
    ));
}

/// Opens nothing real: a socketpair end per grant, or a wrong number of them on request.
#[derive(Debug)]
struct FakeOpener {
    descriptors: usize,
}

impl DeviceOpener for FakeOpener {
    fn open(
        &self,
        _app: &str,
        _grant: &Grant,
        _request: &ResourceRequest,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let fds = (0..self.descriptors)
            .map(|_| {
                let (a, _b) = Channel::pair().unwrap();
                a.into_fd()
            })
            .collect();
        Ok((
            Access::Sim {
                detail: Detail::Gpio,
            },
            fds,
        ))
    }
}

#[test]
fn a_bad_opener_is_an_io_denial_and_long_names_never_reach_it() {
    let (grants, hwdefs) = grants_for(r#"{"Gpio": ["$SAMPLE_LED", "$SAMPLE_BUTTON_1"]}"#);
    let opener = FakeOpener { descriptors: 1 };
    let mut broker = Broker::new(common::APP_A, &grants, &hwdefs, &opener);
    let request = |name: &str| BrokerRequest {
        seq: 1,
        open: gpio(name),
    };
    let (grant, fds) = broker.answer(&request("SAMPLE_LED")).unwrap();
    assert_eq!(grant.peripheral, "SIM_GPIO0");
    assert_eq!(fds.len(), 1);
    let wrong = FakeOpener { descriptors: 2 };
    let mut broker = Broker::new(common::APP_A, &grants, &hwdefs, &wrong);
    assert!(matches!(
        broker.answer(&request("SAMPLE_BUTTON_1")),
        Err(Denial::Io(m)) if m.contains("2 descriptors")
    ));
    // An over-long name is refused before any lookup.
    assert!(matches!(
        broker.answer(&request(&"X".repeat(500))),
        Err(Denial::InvalidArgument(_))
    ));
}

#[test]
fn the_serving_loop_answers_in_order_survives_garbage_and_ends_with_the_worker() {
    let (grants, hwdefs) = grants_for(r#"{"Gpio": ["$SAMPLE_LED"]}"#);
    let (worker, supervisor) = Channel::pair().unwrap();
    let server = std::thread::spawn(move || {
        let opener = FakeOpener { descriptors: 1 };
        let mut broker = Broker::new(common::APP_A, &grants, &hwdefs, &opener);
        broker.serve(&supervisor)
    });
    // Garbage: answered, not fatal.
    worker
        .send(
            &serde_json::json!({"seq": 5, "open": {"kind": "teleport"}}),
            &[],
        )
        .unwrap();
    let (reply, fds) = worker.recv::<BrokerReply>().unwrap();
    assert!(fds.is_empty());
    assert!(
        matches!(reply.result, Err(Denial::InvalidArgument(_))),
        "{reply:?}"
    );
    worker
        .send(
            &BrokerRequest {
                seq: 6,
                open: gpio("SAMPLE_LED"),
            },
            &[],
        )
        .unwrap();
    let (reply, fds) = worker.recv::<BrokerReply>().unwrap();
    assert_eq!(reply.seq, 6);
    assert!(reply.result.is_ok(), "{reply:?}");
    assert_eq!(fds.len(), 1);
    worker
        .send(
            &BrokerRequest {
                seq: 7,
                open: gpio("SAMPLE_BUTTON_1"),
            },
            &[],
        )
        .unwrap();
    let (reply, _) = worker.recv::<BrokerReply>().unwrap();
    assert_eq!(reply.seq, 7);
    assert!(matches!(reply.result, Err(Denial::NotGranted(_))));
    drop(worker);
    assert_eq!(server.join().unwrap(), 3);
}

// ---------------------------------------------------------------------------------------------
// Network

/// The hosts table of these tests: `allowed.test` and `other.test` on different loopback
/// addresses; `a.wild.test` under a wildcard entry.
const HOSTS: &str = "127.0.0.2 allowed.test\n\
                     127.0.0.3 other.test\n\
                     127.0.0.4 a.wild.test\n\
                     127.0.0.6 wild.test\n";

/// An app allowed `allowed.test`, `*.wild.test` and the literal `127.0.0.5`, TCP server port
/// `tcp` and UDP server port `udp`, as its manifest is parsed and resolved at install.
fn network_app(tcp: u16, udp: u16) -> (Vec<Grant>, HwdefSet, NetworkGrant) {
    let (board, hwdefs) =
        load_board(&common::repo().join("buildroot-overlay/board/warden-sim/board.json")).unwrap();
    let text = format!(
        r#"{{"SchemaVersion": 1, "Name": "t", "ComponentId": "{}", "EntryPoint": "/bin/app.wasm",
            "Capabilities": {{"AllowedConnections": ["allowed.test", "*.wild.test", "127.0.0.5"],
                              "AllowedTcpServerPorts": [{tcp}], "AllowedUdpServerPorts": [{udp}]}},
            "ApplicationType": "Default"}}"#,
        common::APP_A
    );
    let manifest = Manifest::parse("test", text.as_bytes()).unwrap();
    let device = Device {
        hwdefs: &hwdefs,
        board: &board,
        installed: &[],
    };
    let resolved = resolve("test", &manifest, &device).unwrap();
    let network = NetworkGrant::from_capabilities(&manifest.capabilities, &resolved.withheld);
    (resolved.grants, hwdefs, network)
}

fn hosts_network() -> Network {
    Network::new(Resolver::Table(
        HostsTable::parse(Path::new("hosts"), HOSTS).unwrap(),
    ))
}

/// A port nothing listens on at `ip` right now.
fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn lookup(host: &str) -> BrokerRequest {
    BrokerRequest {
        seq: 1,
        open: ResourceRequest::Lookup { host: host.into() },
    }
}

fn connect(transport: Transport, address: SocketAddr) -> BrokerRequest {
    BrokerRequest {
        seq: 1,
        open: ResourceRequest::Connect { transport, address },
    }
}

fn listen(transport: Transport, address: &str) -> BrokerRequest {
    BrokerRequest {
        seq: 1,
        open: ResourceRequest::Listen {
            transport,
            address: address.parse().unwrap(),
            backlog: 4,
        },
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Asks `request` on the worker's end of a broker socket; the reply and its descriptors.
fn ask(worker: &Channel, request: &BrokerRequest) -> (BrokerReply, Vec<OwnedFd>) {
    worker.send(request, &[]).unwrap();
    worker.recv::<BrokerReply>().unwrap()
}

fn is_nonblocking(fd: &OwnedFd) -> bool {
    rustix::fs::fcntl_getfl(fd)
        .unwrap()
        .contains(rustix::fs::OFlags::NONBLOCK)
}

#[test]
fn an_allowed_name_connects_and_data_flows_through_the_passed_socket() {
    let server = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let echo = std::thread::spawn(move || {
        let (mut stream, peer) = server.accept().unwrap();
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).unwrap();
        stream.write_all(b"pong").unwrap();
        (buf, peer)
    });
    let (grants, hwdefs, rights) = network_app(1, 1);
    let network = hosts_network();
    let (worker, supervisor) = Channel::pair().unwrap();
    let broker = std::thread::spawn(move || {
        let opener = FakeOpener { descriptors: 1 };
        let mut broker =
            Broker::new(common::APP_A, &grants, &hwdefs, &opener).with_network(&rights, &network);
        broker.serve(&supervisor)
    });

    let (reply, fds) = ask(&worker, &lookup("Allowed.Test"));
    let grant = reply.result.unwrap();
    assert!(fds.is_empty());
    assert_eq!(grant.peripheral, "allowed.test");
    assert_eq!(
        grant.access,
        Access::Addresses {
            addresses: vec![IpAddr::from([127, 0, 0, 2])]
        }
    );

    let remote = SocketAddr::from(([127, 0, 0, 2], port));
    let (reply, mut fds) = ask(&worker, &connect(Transport::Tcp, remote));
    let grant = reply.result.unwrap();
    assert_eq!(grant.peripheral, "allowed.test");
    let Access::Socket {
        transport: Transport::Tcp,
        local,
        remote: Some(to),
    } = grant.access
    else {
        panic!("{grant:?}");
    };
    assert_eq!(to, remote);
    assert_eq!(fds.len(), 1);
    let fd = fds.pop().unwrap();
    assert!(
        is_nonblocking(&fd),
        "the passed socket must be non-blocking"
    );
    let mut stream = TcpStream::from(fd);
    assert_eq!(stream.local_addr().unwrap(), local);
    stream.set_nonblocking(false).unwrap();
    stream.write_all(b"ping").unwrap();
    let mut answer = [0u8; 4];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"pong");
    let (heard, peer) = echo.join().unwrap();
    assert_eq!(&heard, b"ping");
    assert_eq!(peer, local);

    drop(worker);
    assert_eq!(broker.join().unwrap(), 2);
}

#[test]
fn a_name_not_in_allowed_connections_is_refused_at_lookup() {
    let (grants, hwdefs, rights) = network_app(1, 1);
    let network = hosts_network();
    let opener = FakeOpener { descriptors: 1 };
    let mut broker =
        Broker::new(common::APP_A, &grants, &hwdefs, &opener).with_network(&rights, &network);
    for host in ["other.test", "nowhere.test", "allowed.test.evil"] {
        let denial = broker.answer(&lookup(host)).unwrap_err();
        assert!(
            matches!(&denial, Denial::NotGranted(m)
                if m.contains(&format!("`{host}`")) && m.contains("not in this app's AllowedConnections")),
            "{host}: {denial:?}"
        );
    }
}

#[test]
fn a_literal_address_not_on_the_list_is_refused() {
    // Something listens there: the refusal is the broker's, not the network's.
    let server = TcpListener::bind("127.0.0.7:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let port = server.local_addr().unwrap().port();
    let (grants, hwdefs, rights) = network_app(1, 1);
    let network = hosts_network();
    let opener = FakeOpener { descriptors: 1 };
    let mut broker =
        Broker::new(common::APP_A, &grants, &hwdefs, &opener).with_network(&rights, &network);
    let denial = broker
        .answer(&connect(
            Transport::Tcp,
            SocketAddr::from(([127, 0, 0, 7], port)),
        ))
        .unwrap_err();
    assert!(
        matches!(&denial, Denial::NotGranted(m)
            if m.contains("127.0.0.7 is not an address in this app's AllowedConnections")
                && m.contains("no lookup of an allowed name returned it")),
        "{denial:?}"
    );
    // Nor may its libc "look it up".
    assert!(matches!(
        broker.answer(&lookup("127.0.0.7")),
        Err(Denial::NotGranted(m)) if m.contains("`127.0.0.7`")
    ));
    assert_eq!(
        server.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "no packet may leave for a refused address"
    );
}

#[test]
fn an_allowed_literal_address_connects_without_a_lookup() {
    let server = TcpListener::bind("127.0.0.5:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let (grants, hwdefs, rights) = network_app(1, 1);
    let network = hosts_network();
    let opener = FakeOpener { descriptors: 1 };
    let mut broker =
        Broker::new(common::APP_A, &grants, &hwdefs, &opener).with_network(&rights, &network);
    let (grant, fds) = broker.answer(&lookup("127.0.0.5")).unwrap();
    assert!(fds.is_empty());
    assert_eq!(
        grant.access,
        Access::Addresses {
            addresses: vec![IpAddr::from([127, 0, 0, 5])]
        }
    );
    let (grant, fds) = broker
        .answer(&connect(
            Transport::Tcp,
            SocketAddr::from(([127, 0, 0, 5], port)),
        ))
        .unwrap();
    assert_eq!(grant.peripheral, "127.0.0.5");
    assert_eq!(fds.len(), 1);
    server.accept().unwrap();
}

#[test]
fn an_address_only_an_unlisted_name_resolves_to_is_refused() {
    let server = TcpListener::bind("127.0.0.3:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let port = server.local_addr().unwrap().port();
    let (grants, hwdefs, rights) = network_app(1, 1);
    let network = hosts_network();
    let opener = FakeOpener { descriptors: 1 };
    let mut broker =
        Broker::new(common::APP_A, &grants, &hwdefs, &opener).with_network(&rights, &network);
    // The unlisted name is not resolved for the app …
    assert!(matches!(
        broker.answer(&lookup("other.test")),
        Err(Denial::NotGranted(_))
    ));
    // … and looking up the allowed one does not open its address either.
    broker.answer(&lookup("allowed.test")).unwrap();
    for transport in [Transport::Tcp, Transport::Udp] {
        let denial = broker
            .answer(&connect(
                transport,
                SocketAddr::from(([127, 0, 0, 3], port)),
            ))
            .unwrap_err();
        assert!(
            matches!(&denial, Denial::NotGranted(m) if m.contains("127.0.0.3")),
            "{denial:?}"
        );
    }
    assert_eq!(
        server.accept().unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
}

#[test]
fn a_wildcard_entry_covers_the_names_below_it() {
    let server = TcpListener::bind("127.0.0.4:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let (grants, hwdefs, rights) = network_app(1, 1);
    let network = hosts_network();
    let opener = FakeOpener { descriptors: 1 };
    let mut broker =
        Broker::new(common::APP_A, &grants, &hwdefs, &opener).with_network(&rights, &network);
    let (grant, _) = broker.answer(&lookup("a.wild.test")).unwrap();
    assert_eq!(grant.peripheral, "a.wild.test (*.wild.test)");
    let (grant, fds) = broker
        .answer(&connect(
            Transport::Tcp,
            SocketAddr::from(([127, 0, 0, 4], port)),
        ))
        .unwrap();
    assert_eq!(grant.peripheral, "a.wild.test");
    assert_eq!(fds.len(), 1);
    server.accept().unwrap();
    // Not the domain itself …
    assert!(matches!(
        broker.answer(&lookup("wild.test")),
        Err(Denial::NotGranted(_))
    ));
    // … and an allowed name the resolver does not know is the network's answer.
    let denial = broker.answer(&lookup("b.wild.test")).unwrap_err();
    assert!(
        matches!(&denial, Denial::Network { error: NetError::NameUnresolvable, detail }
            if detail.contains("b.wild.test")),
        "{denial:?}"
    );
}

#[test]
fn a_refused_connection_is_connection_refused() {
    let port = free_port("127.0.0.2");
    let (grants, hwdefs, rights) = network_app(1, 1);
    let network = hosts_network();
    let opener = FakeOpener { descriptors: 1 };
    let mut broker =
        Broker::new(common::APP_A, &grants, &hwdefs, &opener).with_network(&rights, &network);
    broker.answer(&lookup("allowed.test")).unwrap();
    let denial = broker
        .answer(&connect(
            Transport::Tcp,
            SocketAddr::from(([127, 0, 0, 2], port)),
        ))
        .unwrap_err();
    assert!(
        matches!(&denial, Denial::Network { error: NetError::ConnectionRefused, detail }
            if detail.contains(&format!("127.0.0.2:{port}"))),
        "{denial:?}"
    );
}

#[test]
fn a_server_socket_on_an_allowed_port_works_and_others_are_refused() {
    let tcp = free_port("127.0.0.1");
    let (grants, hwdefs, rights) = network_app(tcp, 1);
    let network = hosts_network();
    let opener = FakeOpener { descriptors: 1 };
    let mut broker =
        Broker::new(common::APP_A, &grants, &hwdefs, &opener).with_network(&rights, &network);
    let (grant, mut fds) = broker
        .answer(&listen(Transport::Tcp, &format!("127.0.0.1:{tcp}")))
        .unwrap();
    assert_eq!(grant.peripheral, format!("AllowedTcpServerPorts {tcp}"));
    assert_eq!(
        grant.access,
        Access::Socket {
            transport: Transport::Tcp,
            local: addr(&format!("127.0.0.1:{tcp}")),
            remote: None
        }
    );
    let fd = fds.pop().unwrap();
    assert!(is_nonblocking(&fd));
    let listener = TcpListener::from(fd);
    let mut client = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    listener.set_nonblocking(false).unwrap();
    let (mut accepted, _) = listener.accept().unwrap();
    client.write_all(b"hi").unwrap();
    let mut buf = [0u8; 2];
    accepted.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    // The port is taken while the app holds it.
    assert!(matches!(
        broker.answer(&listen(Transport::Tcp, &format!("0.0.0.0:{tcp}"))),
        Err(Denial::Network {
            error: NetError::AddressInUse,
            ..
        })
    ));
    // Another port, or the port for the other transport: refused, naming port and key.
    let other = free_port("127.0.0.1");
    let denial = broker
        .answer(&listen(Transport::Tcp, &format!("127.0.0.1:{other}")))
        .unwrap_err();
    assert!(
        matches!(&denial, Denial::NotGranted(m)
            if m.contains(&format!("port {other}")) && m.contains("AllowedTcpServerPorts")),
        "{denial:?}"
    );
    let denial = broker
        .answer(&listen(Transport::Udp, &format!("127.0.0.1:{tcp}")))
        .unwrap_err();
    assert!(
        matches!(&denial, Denial::NotGranted(m)
            if m.contains(&format!("port {tcp}")) && m.contains("AllowedUdpServerPorts")),
        "{denial:?}"
    );
    // An address of no interface here.
    assert!(matches!(
        broker.answer(&listen(Transport::Tcp, &format!("192.0.2.1:{tcp}"))),
        Err(Denial::Network {
            error: NetError::AddressNotBindable,
            ..
        })
    ));
}

#[test]
fn udp_connects_to_an_allowed_name_and_a_udp_server_socket_receives() {
    let echo = UdpSocket::bind("127.0.0.2:0").unwrap();
    let port = echo.local_addr().unwrap().port();
    let udp = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (grants, hwdefs, rights) = network_app(1, udp);
    let network = hosts_network();
    let opener = FakeOpener { descriptors: 1 };
    let mut broker =
        Broker::new(common::APP_A, &grants, &hwdefs, &opener).with_network(&rights, &network);
    broker.answer(&lookup("allowed.test")).unwrap();
    let remote = SocketAddr::from(([127, 0, 0, 2], port));
    let (grant, mut fds) = broker.answer(&connect(Transport::Udp, remote)).unwrap();
    let Access::Socket {
        transport: Transport::Udp,
        local,
        remote: Some(to),
    } = grant.access
    else {
        panic!("{grant:?}");
    };
    assert_eq!(to, remote);
    let fd = fds.pop().unwrap();
    assert!(is_nonblocking(&fd));
    let socket = UdpSocket::from(fd);
    socket.set_nonblocking(false).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send(b"ping").unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = echo.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"ping"[..], local));
    echo.send_to(b"pong", from).unwrap();
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"pong");

    // A UDP server socket on the allowed port.
    let (grant, mut fds) = broker
        .answer(&listen(Transport::Udp, &format!("127.0.0.1:{udp}")))
        .unwrap();
    assert_eq!(
        grant.access,
        Access::Socket {
            transport: Transport::Udp,
            local: addr(&format!("127.0.0.1:{udp}")),
            remote: None
        }
    );
    let server = UdpSocket::from(fds.pop().unwrap());
    server.set_nonblocking(false).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    echo.send_to(b"hello", ("127.0.0.1", udp)).unwrap();
    let (n, _) = server.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
}

#[test]
fn without_network_rights_every_network_request_is_not_granted() {
    let (grants, hwdefs) = grants_for(r#"{"Gpio": ["$SAMPLE_LED"]}"#);
    let opener = FakeOpener { descriptors: 1 };
    // No `with_network`: the broker of an app with peripherals only.
    let mut broker = Broker::new(common::APP_A, &grants, &hwdefs, &opener);
    assert!(matches!(
        broker.answer(&lookup("allowed.test")),
        Err(Denial::NotGranted(_))
    ));
    assert!(matches!(
        broker.answer(&connect(Transport::Tcp, addr("127.0.0.2:80"))),
        Err(Denial::NotGranted(_))
    ));
    assert!(matches!(
        broker.answer(&listen(Transport::Udp, "0.0.0.0:5683")),
        Err(Denial::NotGranted(m)) if m.contains("AllowedUdpServerPorts")
    ));
    // And `authorize` is for peripherals only.
    assert!(matches!(
        authorize(&grants, &hwdefs, &lookup("allowed.test").open),
        Err(Denial::InvalidArgument(_))
    ));
}

#[test]
fn a_bad_hosts_table_stops_wardend_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.2 allowed.test\nnot-an-address allowed.test\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wardend"))
        .arg("--hosts")
        .arg(&hosts)
        .arg("--board")
        .arg(dir.path().join("no-board.json"))
        .arg("--trust")
        .arg(dir.path().join("no-trust.json"))
        .arg("--state")
        .arg(dir.path().join("state"))
        .arg("--socket")
        .arg(dir.path().join("control.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:2: `not-an-address` is not an IP address",
            hosts.display()
        )),
        "{stderr}"
    );
    assert!(
        !dir.path().join("state").exists(),
        "nothing is touched first"
    );
}
