//! `wasi:sockets/udp` and `udp-create-socket` over descriptors the broker passes.
//!
//! | WASI call | here |
//! |---|---|
//! | `create-udp-socket` | records the family |
//! | `start-bind` to port 0 | records the address: an ephemeral client socket, no broker call |
//! | `start-bind` to another port | broker `Listen { udp, address }`: a server socket bound on an allowed port |
//! | `stream(some(remote))`, ephemeral | broker `Connect { udp, remote }`: a socket the supervisor connected; datagrams to and from `remote` only |
//! | `stream(some(remote))`, server | datagrams to `remote` (`sendto`), and only those from it |
//! | `stream(none)`, server | datagrams to and from any peer (`recvfrom`/`sendto`) |
//! | `stream(none)`, ephemeral | `access-denied`: an unconnected client socket could send anywhere |
//! | `local-address`, `remote-address` | from the grant and the stream's peer |
//! | socket options | `not-supported` (the supervisor made the socket) |

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::net::UdpSocket;
use warden_ipc::broker::{ResourceRequest, Transport};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::udp::{
    self as wasi_udp, HostIncomingDatagramStream, HostOutgoingDatagramStream, HostUdpSocket,
    IncomingDatagram, IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream,
    UdpSocket as WasiUdpSocket,
};
use wasmtime_wasi::p2::bindings::sockets::udp_create_socket;
use wasmtime_wasi::p2::{DynPollable, Pollable, SocketError};

use super::error::{self, with_reason};
use super::{NetCtxView, handle, same_family};

/// Most datagrams one `receive` returns and one `check-send` permits (wasmtime-wasi's bound).
const MAX_DATAGRAMS: usize = 16;

/// Most payload bytes one `receive` returns in all (wasmtime-wasi's bound on a host allocation
/// per read); the first datagram is always returned whole.
const MAX_RECEIVE: usize = 64 * 1024;

/// Room for the largest UDP payload.
const MAX_DATAGRAM: usize = 65_536;

/// A UDP socket of the app.
pub(super) struct Socket {
    family: IpAddressFamily,
    state: State,
}

enum State {
    Unbound,
    BindStarted(Binding),
    Bound(Binding),
}

enum Binding {
    /// Bound to port 0: recorded only, no socket yet. `stream` with a remote address asks the
    /// broker to connect one.
    Ephemeral(SocketAddr),
    /// A server socket the broker bound on an allowed port. `peer`: the remote address the
    /// current streams are limited to, if `stream` was given one.
    Server {
        socket: Arc<UdpSocket>,
        local: SocketAddr,
        peer: Option<SocketAddr>,
    },
    /// A socket the broker connected to `remote`.
    Connected {
        socket: Arc<UdpSocket>,
        local: SocketAddr,
        remote: SocketAddr,
    },
}

impl Binding {
    fn local(&self) -> SocketAddr {
        match self {
            Binding::Ephemeral(local)
            | Binding::Server { local, .. }
            | Binding::Connected { local, .. } => *local,
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Socket {
    /// `finish-bind` never blocks: the broker answered in `start-bind`.
    async fn ready(&mut self) {}
}

/// Datagrams in: from `peer` only, if set.
struct Incoming {
    socket: Arc<UdpSocket>,
    peer: Option<SocketAddr>,
    buf: Vec<u8>,
}

/// Datagrams out: to `peer` (the only address allowed) if set, else to each datagram's own.
struct Outgoing {
    socket: Arc<UdpSocket>,
    family: IpAddressFamily,
    peer: Option<SocketAddr>,
    /// The supervisor connected the socket to `peer`: plain `send`.
    connected: bool,
    /// Datagrams the last `check-send` permitted.
    permits: usize,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Incoming {
    async fn ready(&mut self) {
        // An error is reported by the next `receive`.
        let _ = self.socket.readable().await;
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Outgoing {
    async fn ready(&mut self) {
        let _ = self.socket.writable().await;
    }
}

/// The same address, by IP and port (IPv6 flow labels aside).
fn same_peer(a: SocketAddr, b: SocketAddr) -> bool {
    a.ip() == b.ip() && a.port() == b.port()
}

/// A remote address a datagram can go to: a unicast address with a port.
fn sendable(address: SocketAddr) -> Result<(), SocketError> {
    if address.port() == 0 || address.ip().is_unspecified() {
        return Err(with_reason(
            ErrorCode::InvalidArgument,
            format!("{address} is not an address a datagram can go to"),
        ));
    }
    Ok(())
}

impl Incoming {
    fn receive(&mut self, max: usize) -> Result<Vec<IncomingDatagram>, SocketError> {
        let mut datagrams = Vec::new();
        let mut total = 0;
        while datagrams.len() < max && total < MAX_RECEIVE {
            match self.socket.try_recv_from(&mut self.buf) {
                Ok((_, from)) if self.peer.is_some_and(|peer| !same_peer(peer, from)) => {}
                Ok((n, from)) => {
                    total += n;
                    datagrams.push(IncomingDatagram {
                        data: self.buf[..n].to_vec(),
                        remote_address: from.into(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) if !datagrams.is_empty() => break,
                Err(e) => return Err(error::from_io(&e)),
            }
        }
        Ok(datagrams)
    }
}

impl Outgoing {
    fn send_one(&self, datagram: OutgoingDatagram) -> Result<bool, SocketError> {
        let named = datagram.remote_address.map(SocketAddr::from);
        let to = match (self.peer, named) {
            (Some(peer), Some(named)) if !same_peer(peer, named) => {
                return Err(with_reason(
                    ErrorCode::InvalidArgument,
                    format!("a datagram to {named} on a stream limited to {peer}"),
                ));
            }
            (Some(peer), _) => peer,
            (None, Some(named)) => named,
            (None, None) => {
                return Err(with_reason(
                    ErrorCode::InvalidArgument,
                    "a datagram without a remote address on an unconnected stream",
                ));
            }
        };
        same_family(self.family, &to)?;
        sendable(to)?;
        let sent = if self.connected {
            self.socket.try_send(&datagram.data)
        } else {
            self.socket.try_send_to(&datagram.data, to)
        };
        match sent {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(error::from_io(&e)),
        }
    }
}

impl NetCtxView<'_> {
    fn udp(&mut self, this: &Resource<WasiUdpSocket>) -> Result<&mut Socket, SocketError> {
        Ok(self.table.get_mut(&handle::retype::<Socket, _>(this))?)
    }

    /// A UDP socket from the broker's grant for `request`.
    fn udp_socket(
        &mut self,
        request: ResourceRequest,
        connected: bool,
    ) -> Result<Binding, SocketError> {
        let granted = self.net.open(request.clone())?;
        let granted = error::socket(&request, granted, Transport::Udp, connected)?;
        let socket = Arc::new(
            UdpSocket::from_std(std::net::UdpSocket::from(granted.fd))
                .map_err(|e| error::from_io(&e))?,
        );
        Ok(match granted.remote {
            Some(remote) => Binding::Connected {
                socket,
                local: granted.local,
                remote,
            },
            None => Binding::Server {
                socket,
                local: granted.local,
                peer: None,
            },
        })
    }
}

impl udp_create_socket::Host for NetCtxView<'_> {
    async fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> Result<Resource<WasiUdpSocket>, SocketError> {
        self.net.allowed()?;
        let socket = self.table.push(Socket {
            family: address_family,
            state: State::Unbound,
        })?;
        Ok(handle::retype(&socket))
    }
}

impl wasi_udp::Host for NetCtxView<'_> {}

impl HostUdpSocket for NetCtxView<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<WasiUdpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> Result<(), SocketError> {
        self.network(&network)?;
        let local = SocketAddr::from(local_address);
        let socket = self.udp(&this)?;
        match socket.state {
            State::Unbound => {}
            State::BindStarted(_) => {
                return Err(error::state(ErrorCode::ConcurrencyConflict, "start-bind"));
            }
            State::Bound(_) => return Err(error::state(ErrorCode::InvalidState, "start-bind")),
        }
        same_family(socket.family, &local)?;
        let binding = if local.port() == 0 {
            Binding::Ephemeral(local)
        } else {
            self.udp_socket(
                ResourceRequest::Listen {
                    transport: Transport::Udp,
                    address: local,
                    backlog: 0,
                },
                false,
            )?
        };
        self.udp(&this)?.state = State::BindStarted(binding);
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<WasiUdpSocket>) -> Result<(), SocketError> {
        let socket = self.udp(&this)?;
        match std::mem::replace(&mut socket.state, State::Unbound) {
            State::BindStarted(binding) => {
                socket.state = State::Bound(binding);
                Ok(())
            }
            other => {
                socket.state = other;
                Err(error::state(ErrorCode::NotInProgress, "finish-bind"))
            }
        }
    }

    async fn stream(
        &mut self,
        this: Resource<WasiUdpSocket>,
        remote_address: Option<IpSocketAddress>,
    ) -> Result<
        (
            Resource<IncomingDatagramStream>,
            Resource<OutgoingDatagramStream>,
        ),
        SocketError,
    > {
        let parent = handle::retype::<Socket, _>(&this);
        if self
            .table
            .iter_children(&parent)?
            .any(|child| child.is::<Incoming>() || child.is::<Outgoing>())
        {
            return Err(SocketError::trap(wasmtime::format_err!(
                "UDP streams not dropped yet"
            )));
        }
        let remote = remote_address.map(SocketAddr::from);
        let socket = self.udp(&this)?;
        let family = socket.family;
        if let Some(remote) = remote {
            same_family(family, &remote)?;
            sendable(remote)?;
        }
        let State::Bound(binding) = &mut socket.state else {
            return Err(error::state(ErrorCode::InvalidState, "stream"));
        };
        // Connect through the broker: a client socket given a (new) remote address.
        let connect = match (&mut *binding, remote) {
            (Binding::Ephemeral(_), None) => {
                return Err(with_reason(
                    ErrorCode::AccessDenied,
                    "an unconnected UDP client socket could send anywhere: give `stream` the \
                     remote address (the broker connects the socket to it), or bind an allowed \
                     server port",
                ));
            }
            (Binding::Connected { .. }, None) => {
                return Err(with_reason(
                    ErrorCode::AccessDenied,
                    "a UDP socket the broker connected cannot be disconnected: it could then \
                     send anywhere",
                ));
            }
            (
                Binding::Connected {
                    remote: current, ..
                },
                Some(remote),
            ) if same_peer(*current, remote) => None,
            (Binding::Ephemeral(_) | Binding::Connected { .. }, Some(remote)) => Some(remote),
            (Binding::Server { peer, .. }, remote) => {
                *peer = remote;
                None
            }
        };
        if let Some(remote) = connect {
            let binding = self.udp_socket(
                ResourceRequest::Connect {
                    transport: Transport::Udp,
                    address: remote,
                },
                true,
            )?;
            self.udp(&this)?.state = State::Bound(binding);
        }
        let State::Bound(binding) = &self.udp(&this)?.state else {
            return Err(error::state(ErrorCode::InvalidState, "stream"));
        };
        let (socket, peer, connected) = match binding {
            Binding::Server { socket, peer, .. } => (Arc::clone(socket), *peer, false),
            Binding::Connected { socket, remote, .. } => (Arc::clone(socket), Some(*remote), true),
            Binding::Ephemeral(_) => {
                return Err(error::state(ErrorCode::InvalidState, "stream"));
            }
        };
        let incoming = Incoming {
            socket: Arc::clone(&socket),
            peer,
            buf: vec![0; MAX_DATAGRAM],
        };
        let outgoing = Outgoing {
            socket,
            family,
            peer,
            connected,
            permits: 0,
        };
        let incoming = self.table.push_child(incoming, &parent)?;
        let outgoing = self.table.push_child(outgoing, &parent)?;
        Ok((handle::retype(&incoming), handle::retype(&outgoing)))
    }

    fn local_address(
        &mut self,
        this: Resource<WasiUdpSocket>,
    ) -> Result<IpSocketAddress, SocketError> {
        match &self.udp(&this)?.state {
            State::Bound(binding) => Ok(binding.local().into()),
            _ => Err(error::state(ErrorCode::InvalidState, "local-address")),
        }
    }

    fn remote_address(
        &mut self,
        this: Resource<WasiUdpSocket>,
    ) -> Result<IpSocketAddress, SocketError> {
        match &self.udp(&this)?.state {
            State::Bound(Binding::Connected { remote, .. }) => Ok((*remote).into()),
            State::Bound(Binding::Server {
                peer: Some(peer), ..
            }) => Ok((*peer).into()),
            _ => Err(error::state(ErrorCode::InvalidState, "remote-address")),
        }
    }

    fn address_family(
        &mut self,
        this: Resource<WasiUdpSocket>,
    ) -> wasmtime::Result<IpAddressFamily> {
        Ok(self.table.get(&handle::retype::<Socket, _>(&this))?.family)
    }

    fn unicast_hop_limit(&mut self, _this: Resource<WasiUdpSocket>) -> Result<u8, SocketError> {
        error::options()
    }

    fn set_unicast_hop_limit(
        &mut self,
        _this: Resource<WasiUdpSocket>,
        _value: u8,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn receive_buffer_size(&mut self, _this: Resource<WasiUdpSocket>) -> Result<u64, SocketError> {
        error::options()
    }

    fn set_receive_buffer_size(
        &mut self,
        _this: Resource<WasiUdpSocket>,
        _value: u64,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn send_buffer_size(&mut self, _this: Resource<WasiUdpSocket>) -> Result<u64, SocketError> {
        error::options()
    }

    fn set_send_buffer_size(
        &mut self,
        _this: Resource<WasiUdpSocket>,
        _value: u64,
    ) -> Result<(), SocketError> {
        error::options()
    }

    fn subscribe(
        &mut self,
        this: Resource<WasiUdpSocket>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, handle::retype::<Socket, _>(&this))
    }

    fn drop(&mut self, this: Resource<WasiUdpSocket>) -> wasmtime::Result<()> {
        self.table.delete(handle::retype::<Socket, _>(&this))?;
        Ok(())
    }
}

impl HostIncomingDatagramStream for NetCtxView<'_> {
    fn receive(
        &mut self,
        this: Resource<IncomingDatagramStream>,
        max_results: u64,
    ) -> Result<Vec<IncomingDatagram>, SocketError> {
        let max = usize::try_from(max_results)
            .unwrap_or(usize::MAX)
            .min(MAX_DATAGRAMS);
        if max == 0 {
            return Ok(Vec::new());
        }
        self.table
            .get_mut(&handle::retype::<Incoming, _>(&this))?
            .receive(max)
    }

    fn subscribe(
        &mut self,
        this: Resource<IncomingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, handle::retype::<Incoming, _>(&this))
    }

    fn drop(&mut self, this: Resource<IncomingDatagramStream>) -> wasmtime::Result<()> {
        self.table.delete(handle::retype::<Incoming, _>(&this))?;
        Ok(())
    }
}

impl HostOutgoingDatagramStream for NetCtxView<'_> {
    fn check_send(&mut self, this: Resource<OutgoingDatagramStream>) -> Result<u64, SocketError> {
        let stream = self.table.get_mut(&handle::retype::<Outgoing, _>(&this))?;
        // Ready (or failed: the error comes with the send) means the socket takes a datagram
        // now; how many more it takes is unknown, and a refused one ends `send` early.
        stream.permits = match stream
            .socket
            .poll_send_ready(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(_) => MAX_DATAGRAMS,
            Poll::Pending => 0,
        };
        Ok(stream.permits as u64)
    }

    fn send(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
        datagrams: Vec<OutgoingDatagram>,
    ) -> Result<u64, SocketError> {
        let stream = self.table.get_mut(&handle::retype::<Outgoing, _>(&this))?;
        if datagrams.is_empty() {
            return Ok(0);
        }
        if datagrams.len() > stream.permits {
            return Err(SocketError::trap(wasmtime::format_err!(
                "unpermitted: {} datagrams, check-send permitted {}",
                datagrams.len(),
                stream.permits
            )));
        }
        // Each `send` needs a `check-send` before it.
        stream.permits = 0;
        let mut sent = 0;
        for datagram in datagrams {
            match stream.send_one(datagram) {
                Ok(true) => sent += 1,
                Ok(false) => break,
                // Once one datagram is sent, `send` reports how many, never an error.
                Err(_) if sent > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(sent)
    }

    fn subscribe(
        &mut self,
        this: Resource<OutgoingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, handle::retype::<Outgoing, _>(&this))
    }

    async fn drop(&mut self, this: Resource<OutgoingDatagramStream>) -> wasmtime::Result<()> {
        // Datagrams leave in `send` or not at all: nothing is left to wait for.
        self.table.delete(handle::retype::<Outgoing, _>(&this))?;
        Ok(())
    }
}
