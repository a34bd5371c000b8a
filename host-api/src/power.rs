//! `power`: reboot, power down and the power profile, each asked of the broker, which checks the
//! manifest's `PowerControls` and has the supervisor carry it out. The worker itself can do
//! none of it (no `reboot(2)`, no sysfs): a grant is only the supervisor's word that it took
//! the request on.

use warden_ipc::broker::{Access, PowerAction, PowerProfile, ResourceRequest};

use crate::bindings::warden::device::power::{self, PowerProfile as WitProfile};
use crate::bindings::warden::device::types::Error;
use crate::devices::Devices;
use crate::error::io;

impl Devices {
    fn power(&mut self, action: PowerAction) -> Result<(), Error> {
        let (grant, _fds) = self.ask(ResourceRequest::Power { action })?;
        match grant.access {
            Access::Accepted => Ok(()),
            other => Err(io(format!(
                "the capability broker answered a power request with {other:?}"
            ))),
        }
    }
}

impl power::Host for Devices {
    fn reboot(&mut self) -> Result<(), Error> {
        self.power(PowerAction::Reboot)
    }

    fn power_down(&mut self, max_residency_s: u32) -> Result<(), Error> {
        self.power(PowerAction::PowerDown { max_residency_s })
    }

    fn set_power_profile(&mut self, profile: WitProfile) -> Result<(), Error> {
        let profile = match profile {
            WitProfile::PowerSaver => PowerProfile::PowerSaver,
            WitProfile::Balanced => PowerProfile::Balanced,
            WitProfile::HighPerformance => PowerProfile::HighPerformance,
        };
        self.power(PowerAction::SetProfile { profile })
    }
}
