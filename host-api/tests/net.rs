//! The `wasi:sockets` host (`warden_host_api::net`) driven through its `Host` traits, as the
//! guest's calls reach it, with an opener standing in for the broker: it makes real loopback
//! sockets here, as the supervisor would, and the peers are this test's own sockets. Runs on a
//! current-thread tokio runtime with the I/O driver, like a network worker's.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use warden_host_api::net::{Net, NetCtxView};
use warden_host_api::{Opener, SharedOpener};
use warden_ipc::broker::{Access, Denial, Grant, ResourceRequest, Transport};
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sockets::instance_network::Host as _;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    Host as _, HostResolveAddressStream as _,
};
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::tcp::{HostTcpSocket, ShutdownType, TcpSocket};
use wasmtime_wasi::p2::bindings::sockets::tcp_create_socket::Host as _;
use wasmtime_wasi::p2::bindings::sockets::udp::{
    HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket, OutgoingDatagram,
};
use wasmtime_wasi::p2::bindings::sockets::udp_create_socket::Host as _;
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, SocketError, StreamError};

type Answer = Result<(Access, Option<OwnedFd>), Denial>;

/// An opener answering with `answer` and recording every request.
struct FakeBroker<F> {
    answer: F,
    asked: Arc<Mutex<Vec<ResourceRequest>>>,
}

impl<F: FnMut(&ResourceRequest) -> Answer + Send> Opener for FakeBroker<F> {
    fn open(&mut self, request: ResourceRequest) -> Result<(Grant, Vec<OwnedFd>), Denial> {
        self.asked.lock().unwrap().push(request.clone());
        let (access, fd) = (self.answer)(&request)?;
        let grant = Grant {
            peripheral: "network".into(),
            access,
        };
        Ok((grant, fd.into_iter().collect()))
    }
}

/// The store side of one app: the WASI table and its network state.
struct App {
    table: ResourceTable,
    net: Net,
    asked: Arc<Mutex<Vec<ResourceRequest>>>,
    runtime: tokio::runtime::Runtime,
}

impl App {
    fn brokered(answer: impl FnMut(&ResourceRequest) -> Answer + Send + 'static) -> App {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let opener = FakeBroker {
            answer,
            asked: Arc::clone(&asked),
        };
        App::with(Net::brokered(SharedOpener::new(Box::new(opener))), asked)
    }

    fn with(net: Net, asked: Arc<Mutex<Vec<ResourceRequest>>>) -> App {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        App {
            table: ResourceTable::new(),
            net,
            asked,
            runtime,
        }
    }

    /// The view the host functions get, and the runtime to run async ones on (entered, so
    /// sockets can register with its I/O driver).
    fn host(&mut self) -> (NetCtxView<'_>, &tokio::runtime::Runtime) {
        (
            NetCtxView {
                table: &mut self.table,
                net: &mut self.net,
            },
            &self.runtime,
        )
    }

    fn asked(&self) -> Vec<ResourceRequest> {
        self.asked.lock().unwrap().clone()
    }

    fn network(&mut self) -> Resource<Network> {
        self.host().0.instance_network().unwrap()
    }

    fn tcp(&mut self, family: IpAddressFamily) -> Resource<TcpSocket> {
        let (mut host, runtime) = self.host();
        let _entered = runtime.enter();
        host.create_tcp_socket(family).unwrap()
    }

    /// The guest's `connect`: start, wait on the socket's pollable, finish.
    fn connect(
        &mut self,
        socket: &Resource<TcpSocket>,
        to: SocketAddr,
    ) -> Result<(Resource<DynInputStream>, Resource<DynOutputStream>), SocketError> {
        let network = self.network();
        let (mut host, runtime) = self.host();
        let _entered = runtime.enter();
        HostTcpSocket::start_connect(&mut host, borrow(socket), network, to.into())?;
        HostTcpSocket::finish_connect(&mut host, borrow(socket))
    }

    /// Writes all of `bytes` to `output` as a guest does: check-write, wait, write.
    fn write_all(&mut self, output: &Resource<DynOutputStream>, bytes: &[u8]) {
        let (table, runtime) = (&mut self.table, &self.runtime);
        let _entered = runtime.enter();
        let stream = table.get_mut(output).unwrap();
        let mut rest = bytes;
        while !rest.is_empty() {
            let permit = runtime.block_on(stream.write_ready()).unwrap();
            let n = permit.min(rest.len());
            stream.write(rest[..n].to_vec().into()).unwrap();
            rest = &rest[n..];
        }
    }

    /// Reads until `len` bytes came or the stream ended, waiting as a guest does.
    fn read(&mut self, input: &Resource<DynInputStream>, len: usize) -> Vec<u8> {
        let (table, runtime) = (&mut self.table, &self.runtime);
        let stream = table.get_mut(input).unwrap();
        let mut got = Vec::new();
        while got.len() < len {
            match runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(20),
                    stream.blocking_read(len - got.len()),
                )
                .await
                .unwrap()
            }) {
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(StreamError::Closed) => break,
                Err(e) => panic!("read: {e}"),
            }
        }
        got
    }
}

fn borrow<T: 'static>(handle: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(handle.rep())
}

fn code(error: SocketError) -> ErrorCode {
    error.downcast().unwrap()
}

/// What the supervisor makes: a connected TCP stream, non-blocking.
fn connected_tcp(to: SocketAddr) -> Answer {
    let stream = TcpStream::connect(to).map_err(|e| Denial::Io(e.to_string()))?;
    stream.set_nonblocking(true).unwrap();
    let access = Access::Socket {
        transport: Transport::Tcp,
        local: stream.local_addr().unwrap(),
        remote: Some(to),
    };
    Ok((access, Some(stream.into())))
}

/// A TCP echo server for one connection.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            stream.write_all(&buf[..n]).unwrap();
        }
    });
    address
}

#[test]
fn a_lookup_yields_the_addresses_the_broker_answered() {
    let found = vec![
        IpAddr::from(Ipv4Addr::new(192, 0, 2, 7)),
        IpAddr::from(Ipv6Addr::LOCALHOST),
    ];
    let answer = found.clone();
    let mut app = App::brokered(move |request| match request {
        ResourceRequest::Lookup { host } if host == "allowed.test" => Ok((
            Access::Addresses {
                addresses: answer.clone(),
            },
            None,
        )),
        _ => Err(Denial::NotGranted("not this one".into())),
    });
    let network = app.network();
    let (mut host, _) = app.host();
    let stream = host
        .resolve_addresses(borrow(&network), "allowed.test".into())
        .unwrap();
    let mut addresses = Vec::new();
    while let Some(address) = host.resolve_next_address(borrow(&stream)).unwrap() {
        addresses.push(address);
    }
    let expected: Vec<IpAddress> = found.into_iter().map(IpAddress::from).collect();
    assert_eq!(format!("{addresses:?}"), format!("{expected:?}"));
    // An unlisted name: the broker's `not-granted` is `access-denied`.
    let refused = host
        .resolve_addresses(network, "other.test".into())
        .unwrap_err();
    assert_eq!(code(refused), ErrorCode::AccessDenied);
    assert_eq!(
        app.asked(),
        [
            ResourceRequest::Lookup {
                host: "allowed.test".into()
            },
            ResourceRequest::Lookup {
                host: "other.test".into()
            }
        ]
    );
}

#[test]
fn tcp_connects_through_the_broker_and_carries_bytes_both_ways() {
    let server = echo_server();
    let mut app = App::brokered(|request| match request {
        ResourceRequest::Connect {
            transport: Transport::Tcp,
            address,
        } => connected_tcp(*address),
        _ => Err(Denial::NotGranted("no".into())),
    });
    let socket = app.tcp(IpAddressFamily::Ipv4);
    let (input, output) = app.connect(&socket, server).unwrap();
    app.write_all(&output, b"through a passed descriptor");
    assert_eq!(app.read(&input, 27), b"through a passed descriptor");
    let (mut host, _) = app.host();
    let remote: SocketAddr = HostTcpSocket::remote_address(&mut host, borrow(&socket))
        .unwrap()
        .into();
    assert_eq!(remote, server);
    let local: SocketAddr = HostTcpSocket::local_address(&mut host, borrow(&socket))
        .unwrap()
        .into();
    assert_eq!(local.ip(), IpAddr::from(Ipv4Addr::LOCALHOST));
    assert_eq!(
        app.asked(),
        [ResourceRequest::Connect {
            transport: Transport::Tcp,
            address: server,
        }]
    );
}

#[test]
fn a_denied_connection_is_access_denied_and_leaves_the_socket_usable() {
    let server = echo_server();
    let mut app = App::brokered(move |request| match request {
        ResourceRequest::Connect { address, .. } if *address == server => connected_tcp(server),
        other => Err(Denial::NotGranted(format!(
            "{} is not allowed",
            other.describe()
        ))),
    });
    let socket = app.tcp(IpAddressFamily::Ipv4);
    let refused = app
        .connect(&socket, "192.0.2.1:443".parse().unwrap())
        .unwrap_err();
    assert_eq!(code(refused), ErrorCode::AccessDenied);
    // Refused before anything left: the same socket may try an allowed address.
    let (input, output) = app.connect(&socket, server).unwrap();
    app.write_all(&output, b"second try");
    assert_eq!(app.read(&input, 10), b"second try");
}

#[test]
fn what_the_network_answered_comes_with_finish_connect() {
    let mut app = App::brokered(|request| {
        Err(Denial::Network {
            error: warden_ipc::broker::NetError::ConnectionRefused,
            detail: format!("{}: ECONNREFUSED", request.describe()),
        })
    });
    let socket = app.tcp(IpAddressFamily::Ipv4);
    let network = app.network();
    let (mut host, _) = app.host();
    HostTcpSocket::start_connect(
        &mut host,
        borrow(&socket),
        network,
        "127.0.0.1:9".parse::<SocketAddr>().unwrap().into(),
    )
    .unwrap();
    let refused = HostTcpSocket::finish_connect(&mut host, borrow(&socket)).unwrap_err();
    assert_eq!(code(refused), ErrorCode::ConnectionRefused);
    // The attempt is over; a second finish has nothing in progress.
    let again = HostTcpSocket::finish_connect(&mut host, borrow(&socket)).unwrap_err();
    assert_eq!(code(again), ErrorCode::NotInProgress);
}

#[test]
fn without_network_everything_is_access_denied_and_the_broker_is_not_asked() {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let mut app = App::with(Net::denied(), asked);
    let network = app.network();
    let (mut host, runtime) = app.host();
    let tcp = host.create_tcp_socket(IpAddressFamily::Ipv4).unwrap_err();
    assert_eq!(code(tcp), ErrorCode::AccessDenied);
    let udp = runtime
        .block_on(host.create_udp_socket(IpAddressFamily::Ipv4))
        .unwrap_err();
    assert_eq!(code(udp), ErrorCode::AccessDenied);
    let lookup = host
        .resolve_addresses(network, "allowed.test".into())
        .unwrap_err();
    assert_eq!(code(lookup), ErrorCode::AccessDenied);
    assert!(app.asked().is_empty());
}

#[test]
fn a_server_accepts_on_the_passed_listener() {
    let mut app = App::brokered(|request| match request {
        ResourceRequest::Listen {
            transport: Transport::Tcp,
            ..
        } => {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let access = Access::Socket {
                transport: Transport::Tcp,
                local: listener.local_addr().unwrap(),
                remote: None,
            };
            Ok((access, Some(listener.into())))
        }
        _ => Err(Denial::NotGranted("no".into())),
    });
    let socket = app.tcp(IpAddressFamily::Ipv4);
    let network = app.network();
    let (mut host, runtime) = app.host();
    let bound: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    runtime
        .block_on(HostTcpSocket::start_bind(
            &mut host,
            borrow(&socket),
            network,
            bound.into(),
        ))
        .unwrap();
    HostTcpSocket::finish_bind(&mut host, borrow(&socket)).unwrap();
    HostTcpSocket::set_listen_backlog_size(&mut host, borrow(&socket), 5).unwrap();
    {
        let _entered = runtime.enter();
        runtime
            .block_on(HostTcpSocket::start_listen(&mut host, borrow(&socket)))
            .unwrap();
    }
    HostTcpSocket::finish_listen(&mut host, borrow(&socket)).unwrap();
    assert!(HostTcpSocket::is_listening(&mut host, borrow(&socket)).unwrap());
    // Nothing pending yet.
    let early = HostTcpSocket::accept(&mut host, borrow(&socket)).unwrap_err();
    assert_eq!(code(early), ErrorCode::WouldBlock);

    let listening: SocketAddr = HostTcpSocket::local_address(&mut host, borrow(&socket))
        .unwrap()
        .into();
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(listening).unwrap();
        stream.write_all(b"hello server").unwrap();
        stream.local_addr().unwrap()
    });
    // The socket's pollable is ready once a connection is pending.
    let pollable = HostTcpSocket::subscribe(&mut host, borrow(&socket)).unwrap();
    let ready = {
        let table = &mut *host.table;
        wasmtime_wasi_ready(table, &pollable, runtime)
    };
    assert!(ready);
    let (accepted, input, _output) = HostTcpSocket::accept(&mut host, borrow(&socket)).unwrap();
    let peer = client.join().unwrap();
    let remote: SocketAddr = HostTcpSocket::remote_address(&mut host, borrow(&accepted))
        .unwrap()
        .into();
    assert_eq!(remote, peer);
    assert_eq!(app.read(&input, 12), b"hello server");
    assert_eq!(
        app.asked(),
        [ResourceRequest::Listen {
            transport: Transport::Tcp,
            address: bound,
            backlog: 5,
        }]
    );
}

/// Waits (at most 20 s) for the pollable behind `pollable` as `wasi:io/poll` does: the
/// pollable's parent's `ready`.
fn wasmtime_wasi_ready(
    table: &mut ResourceTable,
    pollable: &Resource<wasmtime_wasi::p2::DynPollable>,
    runtime: &tokio::runtime::Runtime,
) -> bool {
    use wasmtime_wasi::p2::bindings::io::poll::Host as _;
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(20), table.poll(vec![borrow(pollable)]))
            .await
            .is_ok_and(|ready| ready.is_ok_and(|ready| ready == [0]))
    })
}

#[test]
fn a_shutdown_during_a_background_write_waits_for_it() {
    // The peer reads nothing until the app has written a lot (the socket's buffers fill and
    // the rest is written in the background), then reads to the end and answers the count.
    let sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = sink.local_addr().unwrap();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let (mut stream, _) = sink.accept().unwrap();
        go_rx.recv().unwrap();
        let mut received = Vec::new();
        stream.read_to_end(&mut received).unwrap();
        stream
            .write_all(received.len().to_string().as_bytes())
            .unwrap();
        received.iter().all(|&b| b == 0x5a)
    });
    let mut app = App::brokered(|request| match request {
        ResourceRequest::Connect { address, .. } => connected_tcp(*address),
        _ => Err(Denial::NotGranted("no".into())),
    });
    let socket = app.tcp(IpAddressFamily::Ipv4);
    let (input, output) = app.connect(&socket, address).unwrap();
    // Write until the host holds a background write (check-write permits nothing).
    let mut written = 0usize;
    loop {
        let (table, runtime) = (&mut app.table, &app.runtime);
        let _entered = runtime.enter();
        let stream = table.get_mut(&output).unwrap();
        let permit = stream.check_write().unwrap();
        if permit == 0 {
            break;
        }
        stream.write(vec![0x5a; permit].into()).unwrap();
        written += permit;
        assert!(written < 1 << 30, "the socket never filled");
    }
    let (mut host, _) = app.host();
    HostTcpSocket::shutdown(&mut host, borrow(&socket), ShutdownType::Send).unwrap();
    go_tx.send(()).unwrap();
    // The app now waits for the answer: the background write finishes first, then the
    // sending side is shut down and the peer sees the end.
    let answer = app.read(&input, 64);
    assert_eq!(String::from_utf8(answer).unwrap(), written.to_string());
    assert!(peer.join().unwrap());
    // After the shutdown, the output stream is closed.
    let stream = app.table.get_mut(&output).unwrap();
    assert!(matches!(stream.check_write(), Err(StreamError::Closed)));
}

#[test]
fn socket_options_are_not_supported_and_never_trap() {
    let mut app = App::brokered(|_| Err(Denial::NotGranted("no".into())));
    let socket = app.tcp(IpAddressFamily::Ipv6);
    let (mut host, _) = app.host();
    assert_eq!(
        code(HostTcpSocket::keep_alive_enabled(&mut host, borrow(&socket)).unwrap_err()),
        ErrorCode::NotSupported
    );
    assert_eq!(
        code(HostTcpSocket::set_hop_limit(&mut host, borrow(&socket), 9).unwrap_err()),
        ErrorCode::NotSupported
    );
    assert_eq!(
        code(HostTcpSocket::receive_buffer_size(&mut host, borrow(&socket)).unwrap_err()),
        ErrorCode::NotSupported
    );
    assert_eq!(
        HostTcpSocket::address_family(&mut host, borrow(&socket)).unwrap(),
        IpAddressFamily::Ipv6
    );
    // An address of the other family, and a state the call does not fit.
    let network = host.instance_network().unwrap();
    let v4: IpSocketAddress = "127.0.0.1:80".parse::<SocketAddr>().unwrap().into();
    let mismatch =
        HostTcpSocket::start_connect(&mut host, borrow(&socket), network, v4).unwrap_err();
    assert_eq!(code(mismatch), ErrorCode::InvalidArgument);
    assert_eq!(
        code(HostTcpSocket::remote_address(&mut host, borrow(&socket)).unwrap_err()),
        ErrorCode::InvalidState
    );
    HostTcpSocket::drop(&mut host, socket).unwrap();
}

#[test]
fn udp_echo_over_a_socket_the_broker_connected() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let server_address = server.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0; 2048];
        let (n, from) = server.recv_from(&mut buf).unwrap();
        server.send_to(&buf[..n], from).unwrap();
    });
    let mut app = App::brokered(|request| match request {
        ResourceRequest::Connect {
            transport: Transport::Udp,
            address,
        } => {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(address).unwrap();
            socket.set_nonblocking(true).unwrap();
            let access = Access::Socket {
                transport: Transport::Udp,
                local: socket.local_addr().unwrap(),
                remote: Some(*address),
            };
            Ok((access, Some(socket.into())))
        }
        _ => Err(Denial::NotGranted("no".into())),
    });
    let network = app.network();
    let (mut host, runtime) = app.host();
    let _entered = runtime.enter();
    let socket = runtime
        .block_on(host.create_udp_socket(IpAddressFamily::Ipv4))
        .unwrap();
    // An ephemeral bind is only recorded: the broker is not asked.
    let ephemeral: SocketAddr = "0.0.0.0:0".parse().unwrap();
    runtime
        .block_on(HostUdpSocket::start_bind(
            &mut host,
            borrow(&socket),
            network,
            ephemeral.into(),
        ))
        .unwrap();
    HostUdpSocket::finish_bind(&mut host, borrow(&socket)).unwrap();
    // Unconnected streams on a client socket could send anywhere: refused.
    let unconnected = runtime
        .block_on(HostUdpSocket::stream(&mut host, borrow(&socket), None))
        .unwrap_err();
    assert_eq!(code(unconnected), ErrorCode::AccessDenied);
    let (incoming, outgoing) = runtime
        .block_on(HostUdpSocket::stream(
            &mut host,
            borrow(&socket),
            Some(server_address.into()),
        ))
        .unwrap();
    // Like a guest: wait until the socket takes datagrams, then ask how many.
    let writable = HostOutgoingDatagramStream::subscribe(&mut host, borrow(&outgoing)).unwrap();
    assert!(wasmtime_wasi_ready(host.table, &writable, runtime));
    assert_eq!(host.check_send(borrow(&outgoing)).unwrap(), 16);
    let sent = host
        .send(
            borrow(&outgoing),
            vec![OutgoingDatagram {
                data: b"datagram".to_vec(),
                remote_address: None,
            }],
        )
        .unwrap();
    assert_eq!(sent, 1);
    let pollable = HostIncomingDatagramStream::subscribe(&mut host, borrow(&incoming)).unwrap();
    assert!(wasmtime_wasi_ready(host.table, &pollable, runtime));
    let received = host.receive(borrow(&incoming), 4).unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].data, b"datagram");
    let from: SocketAddr = received[0].remote_address.into();
    assert_eq!(from, server_address);
    let remote: SocketAddr = HostUdpSocket::remote_address(&mut host, borrow(&socket))
        .unwrap()
        .into();
    assert_eq!(remote, server_address);
    assert_eq!(
        app.asked(),
        [ResourceRequest::Connect {
            transport: Transport::Udp,
            address: server_address,
        }]
    );
}
