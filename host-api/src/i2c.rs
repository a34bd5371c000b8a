//! `warden:device/i2c`: an I2C controller — simulated (`Access::Sim { detail: i2c }`) or an
//! i2c-dev bus (`Access::I2cDev`). Every call is one transaction, checked against the same
//! bounds on both (7-bit address, at most 16 operations of at most 4096 bytes).

use warden_ipc::broker::{Access, Detail, ResourceRequest};
use warden_ipc::sim::{BusOp, SimRequest};
use wasmtime::component::Resource;

use crate::bindings::warden::device::i2c::{Address, Host, HostBus, Operation};
use crate::bindings::warden::device::types::Error;
use crate::devices::{Claim, Devices, Held};
use crate::error;
use crate::linux::i2c::I2cDev;
use crate::sim::{self, SimLink};

/// An I2C controller granted by `I2cMaster`.
#[derive(Debug)]
pub struct Bus {
    claim: Claim,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sim(SimLink),
    Linux { label: String, bus: I2cDev },
}

impl Held for Bus {
    fn claim(&self) -> &Claim {
        &self.claim
    }
}

impl Bus {
    /// Runs `ops` as one transaction with `address`; one buffer per read, in order.
    fn transaction(&mut self, address: Address, ops: Vec<BusOp>) -> Result<Vec<Vec<u8>>, Error> {
        let request = SimRequest::I2c { address, ops };
        sim::check(&request)?;
        match (&mut self.backend, request) {
            (Backend::Sim(link), request) => sim::bus(link, request),
            (Backend::Linux { label, bus }, SimRequest::I2c { address, ops }) => bus
                .transaction(address, ops)
                .map_err(|e| error::from_os(label, "an I2C transaction", &e)),
            (Backend::Linux { label, .. }, _) => Err(error::io(format!("{label}: not I2C"))),
        }
    }
}

/// The one buffer of a transaction with one read.
fn single(label: &str, mut buffers: Vec<Vec<u8>>) -> Result<Vec<u8>, Error> {
    match (buffers.pop(), buffers.is_empty()) {
        (Some(buffer), true) => Ok(buffer),
        _ => Err(error::io(format!("{label}: a read returned no data"))),
    }
}

impl HostBus for Devices {
    fn open(&mut self, name: String) -> Result<Resource<Bus>, Error> {
        self.acquire(ResourceRequest::I2c { name }, |claim, granted| {
            let label = granted.label.clone();
            let backend = match granted.access {
                Access::Sim {
                    detail: Detail::I2c,
                } => Backend::Sim(SimLink::new(label, granted.single()?)),
                Access::I2cDev => Backend::Linux {
                    label,
                    bus: I2cDev::new(granted.single()?),
                },
                _ => return Err(granted.unusable("an I2C controller")),
            };
            Ok(Bus { claim, backend })
        })
    }

    fn read(&mut self, bus: Resource<Bus>, address: Address, len: u32) -> Result<Vec<u8>, Error> {
        let buffers = self
            .held(&bus)?
            .transaction(address, vec![BusOp::Read(len)])?;
        single("i2c read", buffers)
    }

    fn write(&mut self, bus: Resource<Bus>, address: Address, data: Vec<u8>) -> Result<(), Error> {
        self.held(&bus)?
            .transaction(address, vec![BusOp::Write(data)])
            .map(drop)
    }

    fn write_read(
        &mut self,
        bus: Resource<Bus>,
        address: Address,
        data: Vec<u8>,
        read_len: u32,
    ) -> Result<Vec<u8>, Error> {
        let ops = vec![BusOp::Write(data), BusOp::Read(read_len)];
        let buffers = self.held(&bus)?.transaction(address, ops)?;
        single("i2c write-read", buffers)
    }

    fn transaction(
        &mut self,
        bus: Resource<Bus>,
        address: Address,
        operations: Vec<Operation>,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let ops = operations
            .into_iter()
            .map(|op| match op {
                Operation::Read(len) => BusOp::Read(len),
                Operation::Write(bytes) => BusOp::Write(bytes),
            })
            .collect();
        self.held(&bus)?.transaction(address, ops)
    }

    fn drop(&mut self, bus: Resource<Bus>) -> wasmtime::Result<()> {
        self.release(bus)
    }
}

impl Host for Devices {}
