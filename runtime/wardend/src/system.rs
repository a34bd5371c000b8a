//! The device services an app may ask the broker for besides peripherals and the network:
//! power (`PowerControls`, see [`crate::power`]) and update events and deferrals
//! (`SystemEventNotifications`, `SoftwareUpdateDeferral`, see [`crate::updates`]).

use std::sync::Arc;

use warden_policy::manifest::{Capabilities, PowerControl, ServiceCapability};

use crate::power::PowerBackend;
use crate::updates::Updates;

/// What one app may ask of the device's services: its manifest's capabilities, except keys
/// the board cannot back and withheld at install (`ResolvedApp::withheld`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemGrant {
    /// `PowerControls`: which power actions.
    pub power: Vec<PowerControl>,
    /// `SystemEventNotifications`: may subscribe to update events.
    pub events: bool,
    /// `SoftwareUpdateDeferral`: may defer and resume updates.
    pub deferral: bool,
    /// `AllowedApplicationConnections`: the apps it may open a channel to (lower-case ids).
    pub connections: Vec<String>,
}

impl SystemGrant {
    pub fn from_capabilities(capabilities: &Capabilities, withheld: &[String]) -> SystemGrant {
        let kept = |key: &str| !withheld.iter().any(|w| w == key);
        let service = |s: ServiceCapability| kept(s.name()) && capabilities.services.contains(&s);
        SystemGrant {
            power: if kept("PowerControls") {
                capabilities.power_controls.clone()
            } else {
                vec![]
            },
            events: service(ServiceCapability::SystemEventNotifications),
            deferral: service(ServiceCapability::SoftwareUpdateDeferral),
            connections: if kept("AllowedApplicationConnections") {
                capabilities
                    .allowed_application_connections
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            } else {
                vec![]
            },
        }
    }

    /// Whether the app may use no device service (then it needs no broker for them).
    pub fn is_empty(&self) -> bool {
        self.power.is_empty() && !self.events && !self.deferral && self.connections.is_empty()
    }
}

/// The device services every broker answers through: one of each per supervisor.
#[derive(Clone, Debug)]
pub struct System {
    pub power: Arc<dyn PowerBackend>,
    pub updates: Arc<Updates>,
    /// Inter-core channels (`AllowedApplicationConnections`).
    pub channels: Arc<crate::intercore::Channels>,
}
