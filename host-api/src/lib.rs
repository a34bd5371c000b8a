//! The host side of the `warden:device` world (`wit/device.wit`), as the worker runs it.
//!
//! An app opens a peripheral by its hardware-definition name; the host asks the capability
//! broker (the supervisor) through an [`Opener`], and uses only the descriptors the broker
//! hands back. It knows the resource it was given, not the policy that granted it.
//!
//! The worker's whole use of this crate:
//!
//! ```text
//! Prepared::new (before seccomp)   add_to_linker(&mut component_linker, |host| &mut host.devices)
//! Prepared::run (after seccomp)    Devices::new(BrokerClient::new(broker) or NoBroker, stderr)
//! ```
//!
//! The same crate holds the worker's `wasi:sockets` host ([`net`]): lookups, connections and
//! server sockets through the same broker, over the descriptors it passes; and
//! [`fs_streams`]: `wasi:filesystem` file streams served on the worker's one thread.
//!
//! One module per WIT interface (`gpio`, `i2c`, `spi`, `uart`, `adc`, `pwm`, `log`, `power`,
//! `sysevent`, `intercore`); each resource speaks either the simulated board's
//! protocol over its descriptor (`sim`) or the Linux device interface (`linux`). Every `unsafe`
//! block of the crate is in `linux/sys.rs`.
#![deny(unsafe_code)]

mod adc;
pub mod bindings;
mod devices;
mod error;
pub mod fs_streams;
mod gpio;
pub mod http;
mod i2c;
mod intercore;
mod linux;
mod log;
pub mod net;
mod opener;
mod power;
mod pwm;
mod sim;
mod spi;
mod sysevent;
mod uart;

pub use devices::{Devices, add_to_linker};
pub use opener::{BrokerClient, NoBroker, Opener, SharedOpener};
