//! `wasi:sockets/ip-name-lookup`: a name is looked up by the broker (`Lookup`), which answers
//! only for names the manifest allows — IP literals included: the supervisor decides. The
//! addresses it found come back at once, so the stream is always ready.

use std::collections::VecDeque;
use std::net::IpAddr;

use warden_ipc::broker::{Access, ResourceRequest};
use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    Host, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, Pollable, SocketError};

use super::{NetCtxView, error, handle};

/// The addresses one lookup found, handed out one by one.
struct Addresses(VecDeque<IpAddr>);

#[wasmtime_wasi::async_trait]
impl Pollable for Addresses {
    async fn ready(&mut self) {}
}

impl Host for NetCtxView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        self.network(&network)?;
        let request = ResourceRequest::Lookup { host: name };
        let (grant, fds) = self.net.open(request.clone())?;
        drop(fds);
        let addresses = match grant.access {
            Access::Addresses { addresses } if !addresses.is_empty() => addresses,
            Access::Addresses { .. } => {
                return Err(error::with_reason(
                    ErrorCode::NameUnresolvable,
                    format!("{}: the broker found no address", request.describe()),
                ));
            }
            other => {
                return Err(error::with_reason(
                    ErrorCode::Unknown,
                    format!(
                        "{}: the broker granted {other:?}, not addresses",
                        request.describe()
                    ),
                ));
            }
        };
        let stream = self
            .table
            .push(Addresses(addresses.into()))
            .map_err(SocketError::trap)?;
        Ok(handle::retype(&stream))
    }
}

impl HostResolveAddressStream for NetCtxView<'_> {
    fn resolve_next_address(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let addresses = self
            .table
            .get_mut(&handle::retype::<Addresses, _>(&this))
            .map_err(SocketError::trap)?;
        Ok(addresses.0.pop_front().map(IpAddress::from))
    }

    fn subscribe(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        wasmtime_wasi::p2::subscribe(self.table, handle::retype::<Addresses, _>(&this))
    }

    fn drop(&mut self, this: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.table.delete(handle::retype::<Addresses, _>(&this))?;
        Ok(())
    }
}
