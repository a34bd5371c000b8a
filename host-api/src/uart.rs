//! `warden:device/uart`: a tty (`Access::Tty`) — a real UART or the simulated board's pty;
//! the calls are the same on both.

use warden_ipc::broker::{Access, ResourceRequest};
use warden_ipc::sim::MAX_TRANSFER;
use wasmtime::component::Resource;

use crate::bindings::warden::device::types::Error;
use crate::bindings::warden::device::uart::{Host, HostPort};
use crate::devices::{Claim, Devices, Held};
use crate::error;
use crate::linux::deadline_in;
use crate::linux::tty::Tty;

/// A UART port.
#[derive(Debug)]
pub struct Port {
    claim: Claim,
    label: String,
    tty: Tty,
}

impl Held for Port {
    fn claim(&self) -> &Claim {
        &self.claim
    }
}

impl HostPort for Devices {
    fn open(&mut self, name: String) -> Result<Resource<Port>, Error> {
        self.acquire(ResourceRequest::Uart { name }, |claim, granted| {
            let Access::Tty { .. } = granted.access else {
                return Err(granted.unusable("a tty"));
            };
            let label = granted.label.clone();
            Ok(Port {
                claim,
                label,
                tty: Tty::new(granted.single()?),
            })
        })
    }

    fn write(&mut self, port: Resource<Port>, data: Vec<u8>) -> Result<(), Error> {
        let port = self.held(&port)?;
        port.tty
            .write_all(&data)
            .map_err(|e| error::from_os(&port.label, "writing", &e))
    }

    fn read(&mut self, port: Resource<Port>, max: u32, timeout_ms: u32) -> Result<Vec<u8>, Error> {
        let port = self.held(&port)?;
        // Bounded like every other transfer, so an app cannot make the host allocate 4 GiB.
        let max = usize::try_from(max).unwrap_or(usize::MAX).min(MAX_TRANSFER);
        port.tty
            .read(max, deadline_in(timeout_ms))
            .map_err(|e| error::from_os(&port.label, "reading", &e))
    }

    fn flush(&mut self, port: Resource<Port>) -> Result<(), Error> {
        let port = self.held(&port)?;
        port.tty
            .drain()
            .map_err(|e| error::from_os(&port.label, "draining", &e))
    }

    fn drop(&mut self, port: Resource<Port>) -> wasmtime::Result<()> {
        self.release(port)
    }
}

impl Host for Devices {}
