//! `warden:device/adc`: an ADC controller — simulated (`Access::Sim { detail: adc }`) or IIO
//! channels (`Access::IioAdc`, one `in_voltageN_raw` file per channel). The app numbers the
//! channels 0 to `channel-count` - 1, in the order of the grant.

use std::os::fd::OwnedFd;

use warden_ipc::broker::{Access, Detail, ResourceRequest};
use warden_ipc::sim::{SimReply, SimRequest};
use wasmtime::component::Resource;

use crate::bindings::warden::device::adc::{Host, HostController};
use crate::bindings::warden::device::types::Error;
use crate::devices::{Claim, Devices, Held};
use crate::error::{self, invalid, io};
use crate::linux::iio;
use crate::sim::SimLink;

/// An ADC controller.
#[derive(Debug)]
pub struct Controller {
    claim: Claim,
    label: String,
    channels: u32,
    bits: u32,
    reference_microvolts: u32,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sim(SimLink),
    /// One raw-value file per channel, in the app's channel order.
    Iio(Vec<OwnedFd>),
}

impl Held for Controller {
    fn claim(&self) -> &Claim {
        &self.claim
    }
}

impl Controller {
    fn sample(&mut self, channel: u32) -> Result<u32, Error> {
        if channel >= self.channels {
            return Err(invalid(format!(
                "{}: channel {channel} (it has {})",
                self.label, self.channels
            )));
        }
        let value = match &mut self.backend {
            Backend::Sim(link) => match link.call(SimRequest::AdcSample { channel })? {
                SimReply::Sample(value) => value,
                other => return Err(link.unexpected(&other, "adc_sample")),
            },
            Backend::Iio(files) => {
                let file = usize::try_from(channel)
                    .ok()
                    .and_then(|i| files.get(i))
                    .ok_or_else(|| io(format!("{}: no file for channel {channel}", self.label)))?;
                iio::sample(file).map_err(|e| {
                    error::from_os(&self.label, &format!("sampling channel {channel}"), &e)
                })?
            }
        };
        // A sample beyond the resolution would be misread by the app: refuse it.
        if self.bits < 32 && value >> self.bits != 0 {
            return Err(io(format!(
                "{}: a sample of {value} from a {}-bit converter",
                self.label, self.bits
            )));
        }
        Ok(value)
    }
}

impl HostController for Devices {
    fn open(&mut self, name: String) -> Result<Resource<Controller>, Error> {
        self.acquire(ResourceRequest::Adc { name }, |claim, granted| {
            let label = granted.label.clone();
            match granted.access {
                Access::Sim {
                    detail:
                        Detail::Adc {
                            channels,
                            bits,
                            reference_microvolts,
                        },
                } => Ok(Controller {
                    claim,
                    label: label.clone(),
                    channels,
                    bits,
                    reference_microvolts,
                    backend: Backend::Sim(SimLink::new(label, granted.single()?)),
                }),
                Access::IioAdc {
                    ref channels,
                    bits,
                    reference_microvolts,
                } => {
                    if granted.fds.len() != channels.len() {
                        return Err(io(format!(
                            "{label}: {} files for {} channels",
                            granted.fds.len(),
                            channels.len()
                        )));
                    }
                    Ok(Controller {
                        claim,
                        channels: u32::try_from(channels.len()).unwrap_or(u32::MAX),
                        label,
                        bits,
                        reference_microvolts,
                        backend: Backend::Iio(granted.fds),
                    })
                }
                _ => Err(granted.unusable("an ADC")),
            }
        })
    }

    fn sample(&mut self, adc: Resource<Controller>, channel: u32) -> Result<u32, Error> {
        self.held(&adc)?.sample(channel)
    }

    fn channel_count(&mut self, adc: Resource<Controller>) -> u32 {
        self.held(&adc).map_or(0, |adc| adc.channels)
    }

    fn bits(&mut self, adc: Resource<Controller>) -> u32 {
        self.held(&adc).map_or(0, |adc| adc.bits)
    }

    fn reference_microvolts(&mut self, adc: Resource<Controller>) -> u32 {
        self.held(&adc).map_or(0, |adc| adc.reference_microvolts)
    }

    fn drop(&mut self, adc: Resource<Controller>) -> wasmtime::Result<()> {
        self.release(adc)
    }
}

impl Host for Devices {}
