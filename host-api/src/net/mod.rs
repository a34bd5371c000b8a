//! `wasi:sockets` 0.2 for a confined worker (`network`, `instance-network`, `ip-name-lookup`,
//! `tcp`, `tcp-create-socket`, `udp`, `udp-create-socket`). The worker has no `socket`,
//! `connect` or `bind` and lives in an empty network namespace, so every socket comes from the
//! capability broker (`warden_ipc::broker`): a name lookup, `start-connect`, `start-listen`, a
//! UDP server bind and a UDP connect each become one broker request, and the socket the
//! supervisor made comes back as a descriptor. This host only reads, writes, accepts on and
//! shuts down those descriptors.
//!
//! **Bindings.** wasmtime-wasi's generated `Host` traits
//! (`wasmtime_wasi::p2::bindings::sockets`) are implemented for [`NetCtxView`] and linked
//! with their generated `add_to_linker` functions ([`add_to_linker`]), so a guest finds
//! exactly the interfaces and versions wasmtime-wasi would give it. The traits name
//! wasmtime-wasi's resource types, which only wasmtime-wasi can build; the table holds this
//! module's own objects under the same handles (`handle::retype`).
//!
//! **Readiness.** Descriptors are wrapped in tokio's `TcpStream`, `TcpListener` and
//! `UdpSocket`, registered with the I/O driver (epoll) of the worker's current-thread runtime,
//! which the worker builds only for an app that may use the network. Streams and pollables
//! implement `wasmtime_wasi_io`'s traits, so a guest's `wasi:io/poll` waits on sockets and
//! clocks together.
//!
//! **Deny by default.** With [`Net::denied`] every operation is `access-denied` before anything
//! touches tokio (whose socket types need the I/O driver). With [`Net::brokered`] the broker
//! decides; its denials become `wasi:sockets` error codes (`error::from_denial`).

mod error;
mod handle;
mod lookup;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use warden_ipc::broker::{BrokerRequest, Grant, ResourceRequest};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::{
    instance_network, ip_name_lookup, tcp as wasi_tcp, tcp_create_socket, udp as wasi_udp,
    udp_create_socket,
};

use crate::opener::{Opener, SharedOpener};

/// The network state of one running app: whether it may use the network at all, and the
/// opener that answers its requests.
pub struct Net {
    /// `None`: the app may not use the network; the worker's runtime then has no I/O driver.
    opener: Option<SharedOpener>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("brokered", &self.opener.is_some())
            .finish()
    }
}

impl Net {
    /// An app that may use the network: `opener` (the broker) decides each lookup, connection
    /// and server socket. Sockets are registered with the current tokio runtime's I/O driver,
    /// so use this only inside a runtime built with `enable_io`.
    pub fn brokered(opener: SharedOpener) -> Net {
        Net {
            opener: Some(opener),
        }
    }

    /// An app that may not use the network: every operation is `access-denied`, and nothing
    /// needs the I/O driver.
    pub fn denied() -> Net {
        Net { opener: None }
    }

    /// Refuses everything unless the app may use the network.
    fn allowed(&mut self) -> Result<&mut SharedOpener, SocketError> {
        self.opener.as_mut().ok_or_else(|| {
            error::with_reason(
                ErrorCode::AccessDenied,
                "this app's manifest grants it no network access",
            )
        })
    }

    /// Asks the broker for `request`, after the same validation the supervisor makes (so a
    /// malformed request is `invalid-argument` without a round trip).
    fn open(&mut self, request: ResourceRequest) -> Result<(Grant, Vec<OwnedFd>), SocketError> {
        let opener = self.allowed()?;
        BrokerRequest {
            seq: 0,
            open: request.clone(),
        }
        .validate()
        .map_err(|denial| error::from_denial(denial, &request))?;
        opener
            .open(request.clone())
            .map_err(|denial| error::from_denial(denial, &request))
    }
}

/// What the `wasi:sockets` host functions work on: the WASI resource table (streams and
/// pollables must be in it for `wasi:io` to find them) and the app's [`Net`].
pub struct NetCtxView<'a> {
    pub table: &'a mut ResourceTable,
    pub net: &'a mut Net,
}

impl std::fmt::Debug for NetCtxView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetCtxView")
            .field("net", &self.net)
            .finish_non_exhaustive()
    }
}

/// Store data that can lend out its [`NetCtxView`]; the table must be the one WASI's
/// `wasi:io` interfaces use.
pub trait NetView: Send {
    fn net(&mut self) -> NetCtxView<'_>;
}

struct HasNet;

impl HasData for HasNet {
    type Data<'a> = NetCtxView<'a>;
}

/// Adds this crate's `wasi:sockets` interfaces to `linker` (in place of wasmtime-wasi's, which
/// would call `socket(2)`). Building the linker needs no syscall a confined worker lacks.
pub fn add_to_linker<T: NetView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let options = network::LinkOptions::default();
    network::add_to_linker::<T, HasNet>(linker, &options, T::net)?;
    instance_network::add_to_linker::<T, HasNet>(linker, T::net)?;
    ip_name_lookup::add_to_linker::<T, HasNet>(linker, T::net)?;
    tcp_create_socket::add_to_linker::<T, HasNet>(linker, T::net)?;
    wasi_tcp::add_to_linker::<T, HasNet>(linker, T::net)?;
    udp_create_socket::add_to_linker::<T, HasNet>(linker, T::net)?;
    wasi_udp::add_to_linker::<T, HasNet>(linker, T::net)?;
    Ok(())
}

/// Refuses an address of the other family than the socket's (`invalid-argument`).
fn same_family(family: IpAddressFamily, address: &SocketAddr) -> Result<(), SocketError> {
    match (family, address) {
        (IpAddressFamily::Ipv4, SocketAddr::V4(_)) | (IpAddressFamily::Ipv6, SocketAddr::V6(_)) => {
            Ok(())
        }
        _ => Err(error::with_reason(
            ErrorCode::InvalidArgument,
            format!("{address} is not an address of this {family:?} socket's family"),
        )),
    }
}

/// The `network` resource: a capability handle only. Whether the app may use the network is
/// [`Net`]'s to say, for every operation.
struct InstanceNetwork;

impl NetCtxView<'_> {
    /// Checks that `network` is a handle of this host's network resource (as wasmtime-wasi
    /// does: the handle is the capability to call the method).
    fn network(&mut self, network: &Resource<network::Network>) -> Result<(), SocketError> {
        self.table
            .get(&handle::retype::<InstanceNetwork, _>(network))
            .map_err(SocketError::trap)?;
        Ok(())
    }
}

impl network::Host for NetCtxView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        error.downcast()
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        let err = self.table.get(&err)?;
        Ok(err.downcast_ref::<std::io::Error>().map(ErrorCode::from))
    }
}

impl network::HostNetwork for NetCtxView<'_> {
    fn drop(&mut self, this: Resource<network::Network>) -> wasmtime::Result<()> {
        self.table
            .delete(handle::retype::<InstanceNetwork, _>(&this))?;
        Ok(())
    }
}

impl instance_network::Host for NetCtxView<'_> {
    fn instance_network(&mut self) -> wasmtime::Result<Resource<network::Network>> {
        let network = self.table.push(InstanceNetwork)?;
        Ok(handle::retype(&network))
    }
}
