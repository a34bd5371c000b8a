//! `warden:device/spi`: a logical SPI device — simulated (`Access::Sim { detail: spi }`) or
//! a spidev device (`Access::SpiDev`). Every call is one message with chip select held,
//! checked against the same bounds on both (at most 16 operations of at most 4096 bytes,
//! delays of at most 65535 µs).

use warden_ipc::broker::{Access, Detail, ResourceRequest};
use warden_ipc::sim::{BusOp, SimRequest};
use wasmtime::component::Resource;

use crate::bindings::warden::device::spi::{Host, HostDevice, Operation};
use crate::bindings::warden::device::types::Error;
use crate::devices::{Claim, Devices, Held};
use crate::error::{self, invalid};
use crate::linux::spi::{MAX_DELAY_US, SpiDev};
use crate::sim::{self, SimLink};

/// A controller (`SpiMaster`) with one chip select.
#[derive(Debug)]
pub struct Device {
    claim: Claim,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sim(SimLink),
    Linux { label: String, device: SpiDev },
}

impl Held for Device {
    fn claim(&self) -> &Claim {
        &self.claim
    }
}

impl Device {
    /// Runs `ops` with chip select held; one buffer per read and transfer, in order.
    fn transaction(&mut self, ops: Vec<BusOp>) -> Result<Vec<Vec<u8>>, Error> {
        if let Some(us) = ops.iter().find_map(|op| match op {
            BusOp::DelayUs(us) if *us > MAX_DELAY_US => Some(*us),
            _ => None,
        }) {
            return Err(invalid(format!(
                "a delay of {us} µs (at most {MAX_DELAY_US})"
            )));
        }
        let request = SimRequest::Spi { ops };
        sim::check(&request)?;
        match (&mut self.backend, request) {
            (Backend::Sim(link), request) => sim::bus(link, request),
            (Backend::Linux { label, device }, SimRequest::Spi { ops }) => device
                .transaction(ops)
                .map_err(|e| error::from_os(label, "an SPI transaction", &e)),
            (Backend::Linux { label, .. }, _) => Err(error::io(format!("{label}: not SPI"))),
        }
    }
}

fn single(mut buffers: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
    match (buffers.pop(), buffers.is_empty()) {
        (Some(buffer), true) => Ok(buffer),
        _ => Err(error::io("an SPI read returned no data")),
    }
}

impl HostDevice for Devices {
    fn open(&mut self, name: String) -> Result<Resource<Device>, Error> {
        self.acquire(ResourceRequest::Spi { name }, |claim, granted| {
            let label = granted.label.clone();
            let backend = match granted.access {
                Access::Sim {
                    detail: Detail::Spi,
                } => Backend::Sim(SimLink::new(label, granted.single()?)),
                Access::SpiDev => Backend::Linux {
                    label,
                    device: SpiDev::new(granted.single()?),
                },
                _ => return Err(granted.unusable("an SPI device")),
            };
            Ok(Device { claim, backend })
        })
    }

    fn read(&mut self, device: Resource<Device>, len: u32) -> Result<Vec<u8>, Error> {
        single(self.held(&device)?.transaction(vec![BusOp::Read(len)])?)
    }

    fn write(&mut self, device: Resource<Device>, data: Vec<u8>) -> Result<(), Error> {
        self.held(&device)?
            .transaction(vec![BusOp::Write(data)])
            .map(drop)
    }

    fn transfer(&mut self, device: Resource<Device>, data: Vec<u8>) -> Result<Vec<u8>, Error> {
        single(
            self.held(&device)?
                .transaction(vec![BusOp::Transfer(data)])?,
        )
    }

    fn transaction(
        &mut self,
        device: Resource<Device>,
        operations: Vec<Operation>,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let ops = operations
            .into_iter()
            .map(|op| match op {
                Operation::Read(len) => BusOp::Read(len),
                Operation::Write(bytes) => BusOp::Write(bytes),
                Operation::Transfer(bytes) => BusOp::Transfer(bytes),
                Operation::DelayUs(us) => BusOp::DelayUs(us),
            })
            .collect();
        self.held(&device)?.transaction(ops)
    }

    fn drop(&mut self, device: Resource<Device>) -> wasmtime::Result<()> {
        self.release(device)
    }
}

impl Host for Devices {}
