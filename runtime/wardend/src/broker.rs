//! The capability broker, supervisor side (decision 1): while an app runs, its worker asks for
//! peripherals by the name the app used, and for name lookups, connections and server sockets,
//! on the broker socket (`warden_ipc::broker`). For each request, in order:
//!
//! 1. decode (bounded by the channel: one packet, at most 64 KiB) and [`BrokerRequest::validate`]
//!    — a malformed request is answered `invalid-argument`, and the broker keeps serving;
//! 2. a network request (lookup, connect, listen) goes to this worker's
//!    [`NetworkSession`](crate::network::NetworkSession), which decides it from the app's
//!    [`NetworkGrant`] (its signed manifest's `AllowedConnections` and server ports), resolves
//!    or makes the socket in the supervisor's network namespace, and remembers what lookups
//!    returned (see [`crate::network`]); steps 3 and 4 are for peripherals;
//! 3. [`authorize`]: the name must resolve, through the app's own resolved grants (made from
//!    its signed manifest and the hardware definitions at install, ownership checked there),
//!    to a peripheral of the kind asked for — otherwise `not-granted` (the board has it, the
//!    manifest does not grant it) or `unknown-name` (no such peripheral of that kind);
//! 4. the [`DeviceOpener`] opens exactly that resource (the simulated board's endpoint, or the
//!    Linux device) and the reply carries its descriptors.
//!
//! Device services — power (`PowerControls`), update events and deferrals
//! (`SystemEventNotifications`, `SoftwareUpdateDeferral`) — go to [`crate::power`] and
//! [`crate::updates`] with the app's [`SystemGrant`] instead of steps 3 and 4.
//!
//! Either way the number of descriptors must match the grant's access, else `io`.
//!
//! `busy` within one app is the worker's own bookkeeping (it sees its resources dropped and
//! reopened); across apps, install refuses a second owner of a peripheral, and the simulated
//! board refuses a line another worker holds.
//!
//! A broker serves one worker on one thread, so its state (the addresses that worker looked
//! up) needs no lock: [`Broker::answer`] and [`Broker::serve`] take `&mut self`.
//!
//! The broker knows nothing of WebAssembly and reads nothing but these requests.

use std::os::fd::{AsFd, OwnedFd};

use warden_ipc::Channel;
use warden_ipc::broker::{Access, BrokerReply, BrokerRequest, Denial, ResourceRequest};
use warden_policy::hwdef::{HwdefSet, ResolveError};
use warden_policy::ids::PeripheralType;
use warden_policy::install::Grant;

use crate::network::{Network, NetworkGrant, NetworkSession};
use crate::system::{System, SystemGrant};

/// Opens granted resources: the simulated board, or the Linux devices a board file names.
pub trait DeviceOpener: Send + Sync + std::fmt::Debug {
    /// Opens `grant`'s resource for `app` as `request` asks; the descriptors go to the worker.
    fn open(
        &self,
        app: &str,
        grant: &Grant,
        request: &ResourceRequest,
    ) -> Result<(Access, Vec<OwnedFd>), Denial>;
}

/// The manifest capability a peripheral request needs, and the name it used; `None` for a
/// network request.
fn peripheral_of(request: &ResourceRequest) -> Option<(PeripheralType, &str)> {
    let kind = match request {
        ResourceRequest::Gpio { .. } => PeripheralType::Gpio,
        ResourceRequest::I2c { .. } => PeripheralType::I2cMaster,
        ResourceRequest::Spi { .. } => PeripheralType::SpiMaster,
        ResourceRequest::Uart { .. } => PeripheralType::Uart,
        ResourceRequest::Adc { .. } => PeripheralType::Adc,
        ResourceRequest::Pwm { .. } => PeripheralType::Pwm,
        ResourceRequest::Lookup { .. }
        | ResourceRequest::Connect { .. }
        | ResourceRequest::Listen { .. }
        | ResourceRequest::Power { .. }
        | ResourceRequest::Events
        | ResourceRequest::DeferUpdate { .. }
        | ResourceRequest::ResumeUpdate { .. }
        | ResourceRequest::Intercore { .. } => return None,
    };
    Some((kind, request.peripheral()?))
}

/// Finds the grant that lets the app open `request`'s name, or says why not. The name may be
/// any name on the grant's resolution chain (the manifest's `SAMPLE_LED`, the board's
/// `LED_RED`, the chip's `SIM_GPIO8`), with or without the manifest's `$`.
pub fn authorize<'g>(
    grants: &'g [Grant],
    hwdefs: &HwdefSet,
    request: &ResourceRequest,
) -> Result<&'g Grant, Denial> {
    let Some((kind, name)) = peripheral_of(request) else {
        return Err(Denial::InvalidArgument(format!(
            "a {} is not a peripheral",
            request.describe()
        )));
    };
    let name = name.strip_prefix('$').unwrap_or(name);
    if let Some(grant) = grants.iter().find(|g| {
        g.capability == kind && (g.chip_peripheral == name || g.chain.iter().any(|n| n == name))
    }) {
        return Ok(grant);
    }
    match hwdefs.resolve_name(kind, name) {
        Ok(resolution) => Err(Denial::NotGranted(format!(
            "this app's manifest grants no {} `{name}` ({})",
            kind.name(),
            resolution.chip
        ))),
        Err(ResolveError::WrongType { found, .. }) => Err(Denial::UnknownName(format!(
            "`{name}` is a {found:?} on this board, not a {}",
            kind.name()
        ))),
        Err(_) => Err(Denial::UnknownName(format!(
            "this board has no {} named `{name}`",
            kind.name()
        ))),
    }
}

/// One worker's broker: what it may open, and how.
pub struct Broker<'a> {
    pub app: &'a str,
    pub grants: &'a [Grant],
    pub hwdefs: &'a HwdefSet,
    pub opener: &'a dyn DeviceOpener,
    /// Its network rights and what its lookups returned.
    network: NetworkSession<'a>,
    /// Its device-service rights and the services that answer them.
    system: Option<(&'a SystemGrant, &'a System)>,
}

impl std::fmt::Debug for Broker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl<'a> Broker<'a> {
    /// A broker for an app with these peripheral grants and no network rights (every network
    /// request is `not-granted`); see [`Broker::with_network`].
    pub fn new(
        app: &'a str,
        grants: &'a [Grant],
        hwdefs: &'a HwdefSet,
        opener: &'a dyn DeviceOpener,
    ) -> Broker<'a> {
        Broker {
            app,
            grants,
            hwdefs,
            opener,
            network: NetworkSession::none(),
            system: None,
        }
    }

    /// The same broker with the app's device-service rights, answered by `system`. Without it
    /// every power and update request is `not-granted`.
    pub fn with_system(mut self, grant: &'a SystemGrant, system: &'a System) -> Broker<'a> {
        self.system = Some((grant, system));
        self
    }

    fn answer_system(
        &self,
        request: &ResourceRequest,
    ) -> Result<(warden_ipc::broker::Grant, Vec<OwnedFd>), Denial> {
        let Some((grant, system)) = self.system else {
            return Err(Denial::NotGranted(format!(
                "this app's manifest does not grant {} (a {})",
                request.capability(),
                request.describe()
            )));
        };
        let (access, fds) = match request {
            ResourceRequest::Intercore { component_id } => {
                let peer = component_id.to_ascii_lowercase();
                if !grant.connections.contains(&peer) {
                    return Err(Denial::NotGranted(format!(
                        "this app's manifest does not list `{peer}` in \
                         AllowedApplicationConnections"
                    )));
                }
                system.channels.open(self.app, &peer)?
            }
            ResourceRequest::Power { action } => {
                crate::power::answer(self.app, grant, system.power.as_ref(), *action)?
            }
            other => system.updates.answer(self.app, grant, other)?,
        };
        Ok((
            warden_ipc::broker::Grant {
                peripheral: request.capability().to_owned(),
                access,
            },
            fds,
        ))
    }

    /// The same broker with the app's network rights, answered through `network`.
    pub fn with_network(mut self, grant: &'a NetworkGrant, network: &'a Network) -> Broker<'a> {
        self.network = NetworkSession::new(grant, network);
        self
    }

    /// Answers one decoded request (steps 1–4 of the module documentation): the grant (the
    /// chip peripheral or network resource, and how to use it) and its descriptors.
    pub fn answer(
        &mut self,
        request: &BrokerRequest,
    ) -> Result<(warden_ipc::broker::Grant, Vec<OwnedFd>), Denial> {
        request.validate()?;
        let (grant, fds) = if request.open.is_network() {
            self.network.answer(&request.open)?
        } else if request.open.peripheral().is_none() {
            self.answer_system(&request.open)?
        } else {
            let grant = authorize(self.grants, self.hwdefs, &request.open)?;
            let (access, fds) = self.opener.open(self.app, grant, &request.open)?;
            (
                warden_ipc::broker::Grant {
                    peripheral: grant.chip_peripheral.clone(),
                    access,
                },
                fds,
            )
        };
        if fds.len() != grant.access.descriptors() {
            return Err(Denial::Io(format!(
                "opening {} gave {} descriptors, its access needs {}",
                if request.open.peripheral().is_some() {
                    format!("`{}`", grant.peripheral)
                } else {
                    request.open.describe()
                },
                fds.len(),
                grant.access.descriptors()
            )));
        }
        Ok((grant, fds))
    }

    /// Serves the worker's broker socket until the worker closes it (or dies). Returns how
    /// many requests were answered.
    pub fn serve(&mut self, channel: &Channel) -> u64 {
        let mut answered = 0;
        loop {
            let (reply, fds) = match channel.recv::<BrokerRequest>() {
                Ok((request, passed)) => {
                    // A worker has no business sending descriptors to the broker.
                    drop(passed);
                    match self.answer(&request) {
                        Ok((grant, fds)) => (
                            BrokerReply {
                                seq: request.seq,
                                result: Ok(grant),
                            },
                            fds,
                        ),
                        Err(denial) => (
                            BrokerReply {
                                seq: request.seq,
                                result: Err(denial),
                            },
                            vec![],
                        ),
                    }
                }
                Err(warden_ipc::IpcError::Closed) => return answered,
                Err(e @ warden_ipc::IpcError::Malformed(_)) => (
                    BrokerReply {
                        seq: 0,
                        result: Err(Denial::InvalidArgument(format!(
                            "the broker could not read the request: {e}"
                        ))),
                    },
                    vec![],
                ),
                // Anything else on the socket itself (truncated packet, too many descriptors,
                // a dead peer): the worker is broken or gone; stop serving it.
                Err(_) => return answered,
            };
            let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
            if channel.send(&reply, &borrowed).is_err() {
                return answered;
            }
            answered += 1;
        }
    }
}
