//! `warden:device/pwm`: a PWM controller — simulated (`Access::Sim { detail: pwm }`) or
//! sysfs PWM channels (`Access::SysfsPwm`, four files per channel). The app numbers the
//! channels 0 to `channel-count` - 1, in the order of the grant.

use std::os::fd::OwnedFd;

use warden_ipc::broker::{Access, Detail, ResourceRequest};
use warden_ipc::sim::{PwmState, SimReply, SimRequest};
use wasmtime::component::Resource;

use crate::bindings::warden::device::pwm::{Host, HostController, Polarity, State};
use crate::bindings::warden::device::types::Error;
use crate::devices::{Claim, Devices, Held};
use crate::error::{self, invalid, io};
use crate::linux::pwm::SysfsChannel;
use crate::sim::SimLink;

/// A PWM controller.
#[derive(Debug)]
pub struct Controller {
    claim: Claim,
    label: String,
    channels: u32,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Sim(SimLink),
    Sysfs(Vec<SysfsChannel>),
}

impl Held for Controller {
    fn claim(&self) -> &Claim {
        &self.claim
    }
}

impl Controller {
    fn apply(&mut self, channel: u32, state: State) -> Result<(), Error> {
        if channel >= self.channels {
            return Err(invalid(format!(
                "{}: channel {channel} (it has {})",
                self.label, self.channels
            )));
        }
        if state.duty_ns > state.period_ns {
            return Err(invalid(format!(
                "{}: a duty cycle of {} ns in a period of {} ns",
                self.label, state.duty_ns, state.period_ns
            )));
        }
        let inversed = matches!(state.polarity, Polarity::Inversed);
        match &mut self.backend {
            Backend::Sim(link) => {
                let state = PwmState {
                    period_ns: state.period_ns,
                    duty_ns: state.duty_ns,
                    inversed,
                    enabled: state.enabled,
                };
                match link.call(SimRequest::PwmApply { channel, state })? {
                    SimReply::Done => Ok(()),
                    other => Err(link.unexpected(&other, "pwm_apply")),
                }
            }
            Backend::Sysfs(channels) => {
                let sysfs = usize::try_from(channel)
                    .ok()
                    .and_then(|i| channels.get_mut(i))
                    .ok_or_else(|| io(format!("{}: no files for channel {channel}", self.label)))?;
                sysfs
                    .apply(state.period_ns, state.duty_ns, inversed, state.enabled)
                    .map_err(|e| {
                        error::from_os(&self.label, &format!("applying channel {channel}"), &e)
                    })
            }
        }
    }
}

/// The grant's files, four per channel, as channels.
fn sysfs_channels(
    label: &str,
    count: usize,
    fds: Vec<OwnedFd>,
) -> Result<Vec<SysfsChannel>, Error> {
    if fds.len() != count * 4 {
        return Err(io(format!(
            "{label}: {} files for {count} channels (four each)",
            fds.len()
        )));
    }
    let mut fds = fds.into_iter();
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let four: Vec<OwnedFd> = fds.by_ref().take(4).collect();
        let four: [OwnedFd; 4] = four
            .try_into()
            .map_err(|_| io(format!("{label}: a channel without its four files")))?;
        channels.push(SysfsChannel::new(four));
    }
    Ok(channels)
}

impl HostController for Devices {
    fn open(&mut self, name: String) -> Result<Resource<Controller>, Error> {
        self.acquire(ResourceRequest::Pwm { name }, |claim, granted| {
            let label = granted.label.clone();
            match granted.access {
                Access::Sim {
                    detail: Detail::Pwm { channels },
                } => Ok(Controller {
                    claim,
                    label: label.clone(),
                    channels,
                    backend: Backend::Sim(SimLink::new(label, granted.single()?)),
                }),
                Access::SysfsPwm { ref channels } => {
                    let count = channels.len();
                    Ok(Controller {
                        claim,
                        channels: u32::try_from(count).unwrap_or(u32::MAX),
                        backend: Backend::Sysfs(sysfs_channels(&label, count, granted.fds)?),
                        label,
                    })
                }
                _ => Err(granted.unusable("a PWM controller")),
            }
        })
    }

    fn apply(
        &mut self,
        pwm: Resource<Controller>,
        channel: u32,
        state: State,
    ) -> Result<(), Error> {
        self.held(&pwm)?.apply(channel, state)
    }

    fn channel_count(&mut self, pwm: Resource<Controller>) -> u32 {
        self.held(&pwm).map_or(0, |pwm| pwm.channels)
    }

    fn drop(&mut self, pwm: Resource<Controller>) -> wasmtime::Result<()> {
        self.release(pwm)
    }
}

impl Host for Devices {}
