//! `sysevent`: update events and deferrals (`SystemEventNotifications`,
//! `SoftwareUpdateDeferral`). IN PROGRESS.

use crate::bindings::warden::device::sysevent::{self, UpdateEvent, UpdateKind};
use crate::bindings::warden::device::types::Error;
use crate::devices::Devices;

/// The app's subscription to update events, made by its first `next-event`.
#[derive(Debug, Default)]
pub(crate) struct SysEvents {}

impl sysevent::Host for Devices {
    fn next_event(&mut self, _timeout_ms: u32) -> Result<Option<UpdateEvent>, Error> {
        Err(Error::Io("sysevent: in progress".into()))
    }

    fn defer_update(&mut self, _kind: UpdateKind, _minutes: u32) -> Result<u32, Error> {
        Err(Error::Io("sysevent: in progress".into()))
    }

    fn resume_update(&mut self, _kind: UpdateKind) -> Result<(), Error> {
        Err(Error::Io("sysevent: in progress".into()))
    }
}
