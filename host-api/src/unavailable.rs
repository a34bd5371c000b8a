//! `intercore`: in the world, so apps that import it load, but not built in this version
//! (it comes with the real-time core manager). Every call fails `not-granted`, saying so
//! (docs/api/device.md).

use wasmtime::component::Resource;

use crate::bindings::warden::device::intercore;
use crate::bindings::warden::device::types::Error;
use crate::devices::Devices;

/// An inter-app channel. None can exist yet (`open` always fails), hence no value.
#[derive(Debug)]
pub enum Channel {}

fn not_available(interface: &str) -> Error {
    Error::NotGranted(format!("{interface} is not available on this device yet"))
}

impl intercore::HostChannel for Devices {
    fn open(&mut self, _component_id: String) -> Result<Resource<Channel>, Error> {
        Err(not_available("intercore"))
    }

    fn send(&mut self, _channel: Resource<Channel>, _message: Vec<u8>) -> Result<(), Error> {
        Err(not_available("intercore"))
    }

    fn receive(
        &mut self,
        _channel: Resource<Channel>,
        _timeout_ms: u32,
    ) -> Result<Option<Vec<u8>>, Error> {
        Err(not_available("intercore"))
    }

    fn max_message_size(&mut self, _channel: Resource<Channel>) -> u32 {
        0
    }

    fn drop(&mut self, _channel: Resource<Channel>) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl intercore::Host for Devices {}
