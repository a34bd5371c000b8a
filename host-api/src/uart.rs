//! `warden:device/uart`: a tty (`Access::Tty`) — a real UART or the simulated board's pty;
//! the calls are the same on both.

use warden_ipc::broker::{Access, ResourceRequest};
use warden_ipc::sim::MAX_TRANSFER;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, WasmList};

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

/// Replaces the generated `port.write` in `linker` (added with the rest of the world just
/// before) by one that writes the bytes straight from the app's linear memory: the generated
/// one copies the list into a new buffer first, which is most of what a short write costs
/// beyond the syscall itself (`cargo xtask bench devices`). Same checks, same errors.
pub(crate) fn link_write_in_place<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut Devices,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = linker
        .instance("warden:device/uart@0.1.0")
        .and_then(|mut uart| {
            uart.func_wrap(
                "[method]port.write",
                move |mut store: StoreContextMut<'_, T>,
                      (port, data): (Resource<Port>, WasmList<u8>)| {
                    // The descriptor (shared, so the borrow of the store ends here) ...
                    let fd = match get(store.data_mut()).held(&port) {
                        Ok(p) => p.tty.shared_fd(),
                        Err(e) => return Ok((Err(e),)),
                    };
                    // ... and the bytes, read where the app keeps them.
                    let written = crate::linux::tty::write_all_to(&fd, data.as_le_slice(&store));
                    let result = written.map_err(|e| {
                        let label = get(store.data_mut())
                            .held(&port)
                            .map(|p| p.label.clone())
                            .unwrap_or_default();
                        error::from_os(&label, "writing", &e)
                    });
                    Ok((result,))
                },
            )
        });
    linker.allow_shadowing(false);
    defined
}
