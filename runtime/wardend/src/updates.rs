//! Staged app updates, their notice to apps (`SystemEventNotifications`) and deferrals
//! (`SoftwareUpdateDeferral`). IN PROGRESS.

use std::os::fd::OwnedFd;

use warden_ipc::broker::{Access, Denial, ResourceRequest};

use crate::supervisor::WeakSupervisor;
use crate::system::SystemGrant;

/// The device's pending updates and who is waiting for news of them.
#[derive(Debug, Default)]
pub struct Updates {}

impl Updates {
    pub fn new() -> Updates {
        Updates {}
    }

    /// Gives the coordinator the supervisor it installs through.
    pub fn attach(&self, _supervisor: WeakSupervisor) {}

    /// Answers an `events`, `defer_update` or `resume_update` request of `app`.
    pub fn answer(
        &self,
        _app: &str,
        _grant: &SystemGrant,
        _request: &ResourceRequest,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        Err(Denial::Io("update events: in progress".into()))
    }
}
