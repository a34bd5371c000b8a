//! The capability broker's messages: while its app runs, a worker asks the supervisor for a
//! resource by the name the app used; the supervisor checks the signed manifest, the hardware
//! definition and ownership, opens exactly that resource and passes its descriptor, or answers
//! with a [`Denial`] the app receives as an error value.
//!
//! **Transport**: a second `SOCK_SEQPACKET` pair, the *broker socket*, attached to
//! `ToWorker::Run` (after code, stdout and stderr) when `RunRequest::broker` says so. The
//! supervisor serves it on a thread of its own until the worker ends; the main channel keeps
//! carrying only the run's outcome. Same framing as [`crate::Channel`]: one JSON document per
//! packet, descriptors by `SCM_RIGHTS`.
//!
//! ```text
//! worker (app running)                                 supervisor (broker thread)
//!   ── BrokerRequest { seq, open: ResourceRequest } ──▶  decode, validate, authorise, open
//!   ◀── BrokerReply { seq, result } [+ descriptors of the grant] ──
//! ```
//!
//! One request at a time, answered in order; `seq` pairs an answer with its request. Every
//! request is checked by [`BrokerRequest::validate`] before anything looks at it: names are
//! bounded identifiers, so the supervisor never looks up a multi-kilobyte or odd string.
//!
//! **Network** (`AllowedConnections`, `AllowedTcpServerPorts`, `AllowedUdpServerPorts`) goes
//! the same way: the worker has no `socket(2)`, `connect(2)` or `bind(2)`, and lives in an
//! empty network namespace. It asks the broker to [`ResourceRequest::Lookup`] a host name (the
//! supervisor resolves only names the manifest allows, and remembers what it answered), to
//! [`ResourceRequest::Connect`] (only to an allowed literal address or one a lookup of an
//! allowed name returned; the supervisor makes the socket and the connection) and to
//! [`ResourceRequest::Listen`] (only on an allowed server port); a socket comes back as one
//! descriptor ([`Access::Socket`]).
//!
//! **Device services** go the same way. [`ResourceRequest::Power`] (`PowerControls`: reboot,
//! power down, power profile) is answered [`Access::Accepted`] once the supervisor has taken it
//! on. [`ResourceRequest::Events`] (`SystemEventNotifications`) subscribes the app to update
//! events: one descriptor ([`Access::Events`]), a `SOCK_SEQPACKET` socket on which the
//! supervisor sends one [`SysEvent`] per packet and never reads. [`ResourceRequest::DeferUpdate`]
//! and [`ResourceRequest::ResumeUpdate`] (`SoftwareUpdateDeferral`) put pending updates off and
//! let them go ahead.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Longest peripheral name or component id a worker may send. Hardware-definition names are
/// short identifiers; the supervisor refuses anything longer before looking it up.
pub const MAX_NAME: usize = 128;

/// Most descriptors one grant carries (a grant is one resource; today one descriptor).
pub const MAX_GRANT_FDS: usize = 4;

/// Longest host name a worker may ask to look up (DNS's own limit).
pub const MAX_HOST: usize = 253;

/// Most addresses one lookup answers with.
pub const MAX_ADDRESSES: usize = 32;

/// Largest listen backlog a worker may ask for.
pub const MAX_BACKLOG: u32 = 1024;

/// A worker's request for one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerRequest {
    /// Chosen by the worker, echoed in the answer.
    pub seq: u64,
    pub open: ResourceRequest,
}

/// What the app asked to open, by the name it used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResourceRequest {
    Gpio {
        name: String,
        mode: GpioMode,
    },
    I2c {
        name: String,
    },
    Spi {
        name: String,
    },
    Uart {
        name: String,
    },
    Adc {
        name: String,
    },
    Pwm {
        name: String,
    },
    /// The addresses of a host name (`wasi:sockets/ip-name-lookup`). Answered with
    /// [`Access::Addresses`], no descriptor.
    Lookup {
        host: String,
    },
    /// A socket connected to `address`: a TCP stream, or a UDP socket `connect(2)`ed to it.
    Connect {
        transport: Transport,
        address: SocketAddr,
    },
    /// A server socket on `address` (its port an allowed server port, its IP a local one or
    /// unspecified): a TCP socket listening with `backlog`, or a bound UDP socket.
    Listen {
        transport: Transport,
        address: SocketAddr,
        backlog: u32,
    },
    /// Device power (`PowerControls`); answered [`Access::Accepted`].
    Power {
        action: PowerAction,
    },
    /// A subscription to update events (`SystemEventNotifications`); answered
    /// [`Access::Events`] with one descriptor.
    Events,
    /// Puts updates of `kind` off by `minutes` from now (`SoftwareUpdateDeferral`); answered
    /// [`Access::Deferred`] with the minutes granted (the board caps them).
    DeferUpdate {
        update: UpdateKind,
        minutes: u32,
    },
    /// Withdraws this app's deferral of updates of `kind` (`SoftwareUpdateDeferral`); answered
    /// [`Access::Accepted`].
    ResumeUpdate {
        update: UpdateKind,
    },
    /// A message channel to the real-time app `component_id` (both manifests list each other
    /// in `AllowedApplicationConnections`); answered [`Access::Channel`] with one descriptor.
    Intercore {
        component_id: String,
    },
}

/// Longest power-down an app may ask for (`max_residency_s`): one year.
pub const MAX_RESIDENCY_S: u32 = 365 * 24 * 3600;

/// Most minutes one deferral may ask for (Azure Sphere's limit for app updates, 167 hours);
/// the board may cap it lower.
pub const MAX_DEFERRAL_MINUTES: u32 = 10_020;

/// What an app asks of the device's power (`PowerControls`: `ForceReboot`, `ForcePowerDown`,
/// `SetPowerProfile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum PowerAction {
    /// Stop every app and restart the device.
    Reboot,
    /// Stop every app and power the device down for at most `max_residency_s` seconds (an RTC
    /// alarm wakes it).
    PowerDown { max_residency_s: u32 },
    /// Run the CPUs for power saving, balance, or speed.
    SetProfile { profile: PowerProfile },
}

/// A power profile (Azure Sphere `PowerManagement_SetSystemPowerProfile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerProfile {
    PowerSaver,
    Balanced,
    HighPerformance,
}

impl PowerAction {
    /// The manifest's `PowerControls` value that grants it.
    pub fn control(&self) -> &'static str {
        match self {
            PowerAction::Reboot => "ForceReboot",
            PowerAction::PowerDown { .. } => "ForcePowerDown",
            PowerAction::SetProfile { .. } => "SetPowerProfile",
        }
    }
}

/// What an update replaces: an app, or the OS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateKind {
    App,
    Os,
}

/// Where an update stands, as [`SysEvent`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateStatus {
    /// Staged; installs in `seconds_to_install` unless an app defers it.
    Pending,
    /// Put off by an app; installs in `seconds_to_install`.
    Deferred,
    /// Installing now.
    Installing,
    /// Installed.
    Complete,
    /// Given up (it no longer verifies, or the install failed); nothing changed.
    Abandoned,
}

/// One update event, sent by the supervisor on an [`Access::Events`] socket, one per packet.
/// Each event carries the whole state of one update, so a newer event supersedes an older one
/// (a subscriber that reads late loses nothing it needs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SysEvent {
    pub update: UpdateKind,
    pub status: UpdateStatus,
    /// The component an app update is for.
    pub component_id: Option<String>,
    /// The version it installs.
    pub version: u64,
    /// Seconds until it installs, unless (further) deferred; 0 once installing or done.
    pub seconds_to_install: u64,
    /// How many more minutes it may be deferred.
    pub max_deferral_minutes: u32,
}

/// A socket's transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tcp,
    Udp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "TCP",
            Transport::Udp => "UDP",
        })
    }
}

impl ResourceRequest {
    /// The peripheral name the app used; `None` for a network request.
    pub fn peripheral(&self) -> Option<&str> {
        match self {
            ResourceRequest::Gpio { name, .. }
            | ResourceRequest::I2c { name }
            | ResourceRequest::Spi { name }
            | ResourceRequest::Uart { name }
            | ResourceRequest::Adc { name }
            | ResourceRequest::Pwm { name } => Some(name),
            ResourceRequest::Lookup { .. }
            | ResourceRequest::Connect { .. }
            | ResourceRequest::Listen { .. }
            | ResourceRequest::Power { .. }
            | ResourceRequest::Events
            | ResourceRequest::DeferUpdate { .. }
            | ResourceRequest::ResumeUpdate { .. }
            | ResourceRequest::Intercore { .. } => None,
        }
    }

    /// Whether this is a network request (lookup, connect, listen).
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            ResourceRequest::Lookup { .. }
                | ResourceRequest::Connect { .. }
                | ResourceRequest::Listen { .. }
        )
    }

    /// What was asked for, for messages: `` `SAMPLE_LED` ``, `` lookup of `example.com` ``,
    /// `TCP connection to 10.0.0.1:443`, `UDP server socket on 0.0.0.0:5683`.
    pub fn describe(&self) -> String {
        match self {
            ResourceRequest::Lookup { host } => format!("lookup of `{host}`"),
            ResourceRequest::Connect { transport, address } => {
                format!("{transport} connection to {address}")
            }
            ResourceRequest::Listen {
                transport, address, ..
            } => format!("{transport} server socket on {address}"),
            ResourceRequest::Power { action } => match action {
                PowerAction::Reboot => "reboot".to_owned(),
                PowerAction::PowerDown { max_residency_s } => {
                    format!("power-down for at most {max_residency_s} s")
                }
                PowerAction::SetProfile { profile } => format!("power profile {profile:?}"),
            },
            ResourceRequest::Events => "subscription to update events".to_owned(),
            ResourceRequest::DeferUpdate { update, minutes } => {
                format!("deferral of {update:?} updates by {minutes} minutes")
            }
            ResourceRequest::ResumeUpdate { update } => {
                format!("resumption of {update:?} updates")
            }
            ResourceRequest::Intercore { component_id } => {
                format!("channel to `{component_id}`")
            }
            peripheral => format!("`{}`", peripheral.peripheral().unwrap_or_default()),
        }
    }

    /// The kind, as a manifest's capability (and a hardware definition's `Type`) names it.
    pub fn capability(&self) -> &'static str {
        match self {
            ResourceRequest::Gpio { .. } => "Gpio",
            ResourceRequest::I2c { .. } => "I2cMaster",
            ResourceRequest::Spi { .. } => "SpiMaster",
            ResourceRequest::Uart { .. } => "Uart",
            ResourceRequest::Adc { .. } => "Adc",
            ResourceRequest::Pwm { .. } => "Pwm",
            ResourceRequest::Lookup { .. } | ResourceRequest::Connect { .. } => {
                "AllowedConnections"
            }
            ResourceRequest::Listen {
                transport: Transport::Tcp,
                ..
            } => "AllowedTcpServerPorts",
            ResourceRequest::Listen {
                transport: Transport::Udp,
                ..
            } => "AllowedUdpServerPorts",
            ResourceRequest::Power { .. } => "PowerControls",
            ResourceRequest::Events => "SystemEventNotifications",
            ResourceRequest::DeferUpdate { .. } | ResourceRequest::ResumeUpdate { .. } => {
                "SoftwareUpdateDeferral"
            }
            ResourceRequest::Intercore { .. } => "AllowedApplicationConnections",
        }
    }
}

impl BrokerRequest {
    /// Refuses what no honest worker sends: an empty or over-long name, or one with characters
    /// outside `[A-Za-z0-9_$.-]` (hardware-definition names are C identifiers; `$` prefixes a
    /// manifest reference); a host name over [`MAX_HOST`] bytes or outside `[A-Za-z0-9_.-]`
    /// (an IP literal, IPv6 included, is accepted as it is);
    /// a connection to port 0 or an unspecified or multicast address; a server socket on port
    /// 0 or with a backlog over [`MAX_BACKLOG`]. The denial names the problem; the app sees
    /// `invalid-argument`.
    pub fn validate(&self) -> Result<(), Denial> {
        match &self.open {
            ResourceRequest::Lookup { host } => validate_host(host),
            ResourceRequest::Connect { address, .. } => {
                if address.port() == 0 {
                    return Err(Denial::InvalidArgument(format!(
                        "a connection to port 0 ({address})"
                    )));
                }
                if address.ip().is_unspecified() || address.ip().is_multicast() {
                    return Err(Denial::InvalidArgument(format!(
                        "a connection to the unspecified or multicast address {address}"
                    )));
                }
                Ok(())
            }
            ResourceRequest::Listen {
                address, backlog, ..
            } => {
                if address.port() == 0 {
                    return Err(Denial::InvalidArgument(format!(
                        "a server socket on port 0 ({address}): servers listen on an \
                         allowed port"
                    )));
                }
                if *backlog > MAX_BACKLOG {
                    return Err(Denial::InvalidArgument(format!(
                        "a listen backlog of {backlog} (at most {MAX_BACKLOG})"
                    )));
                }
                Ok(())
            }
            ResourceRequest::Power {
                action: PowerAction::PowerDown { max_residency_s },
            } => {
                if *max_residency_s == 0 || *max_residency_s > MAX_RESIDENCY_S {
                    return Err(Denial::InvalidArgument(format!(
                        "a power-down for {max_residency_s} s (1 to {MAX_RESIDENCY_S})"
                    )));
                }
                Ok(())
            }
            ResourceRequest::DeferUpdate { minutes, .. } => {
                if *minutes == 0 || *minutes > MAX_DEFERRAL_MINUTES {
                    return Err(Denial::InvalidArgument(format!(
                        "a deferral of {minutes} minutes (1 to {MAX_DEFERRAL_MINUTES})"
                    )));
                }
                Ok(())
            }
            ResourceRequest::Intercore { component_id } => validate_component_id(component_id),
            ResourceRequest::Power { .. }
            | ResourceRequest::Events
            | ResourceRequest::ResumeUpdate { .. } => Ok(()),
            peripheral => validate_name(peripheral.peripheral().unwrap_or_default()),
        }
    }
}

fn validate_name(name: &str) -> Result<(), Denial> {
    if name.is_empty() {
        return Err(Denial::InvalidArgument("an empty peripheral name".into()));
    }
    if name.len() > MAX_NAME {
        return Err(Denial::InvalidArgument(format!(
            "a peripheral name of {} bytes (at most {MAX_NAME})",
            name.len()
        )));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.' | '-')))
    {
        return Err(Denial::InvalidArgument(format!(
            "the peripheral name {:?} has the character {bad:?}",
            name.chars().take(MAX_NAME).collect::<String>()
        )));
    }
    Ok(())
}

/// A component id is a GUID, `8-4-4-4-12` hex digits (either case).
fn validate_component_id(id: &str) -> Result<(), Denial> {
    let groups: Vec<&str> = id.split('-').collect();
    let shaped = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if shaped {
        Ok(())
    } else {
        Err(Denial::InvalidArgument(format!(
            "{:?} is not a component id (a GUID such as 005180bc-402f-4cb3-a662-72937dbcde47)",
            id.chars().take(64).collect::<String>()
        )))
    }
}

fn validate_host(host: &str) -> Result<(), Denial> {
    // A libc may "look up" a literal address (`getaddrinfo("::1")`); the broker decides.
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if host.is_empty() {
        return Err(Denial::InvalidArgument("an empty host name".into()));
    }
    if host.len() > MAX_HOST {
        return Err(Denial::InvalidArgument(format!(
            "a host name of {} bytes (at most {MAX_HOST})",
            host.len()
        )));
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Denial::InvalidArgument(format!(
            "the host name {:?} has the character {bad:?}",
            host.chars().take(MAX_HOST).collect::<String>()
        )));
    }
    Ok(())
}

/// How a GPIO line is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "as", rename_all = "snake_case", deny_unknown_fields)]
pub enum GpioMode {
    /// Driven by the app, to `initial_high` at once.
    Output { initial_high: bool },
    /// Read by the app.
    Input,
    /// Switched between the two by the app; starts as an input.
    InOut,
}

/// The supervisor's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerReply {
    pub seq: u64,
    pub result: Result<Grant, Denial>,
}

/// A granted resource. Its descriptors are attached to the reply, in the order [`Access`]
/// describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The peripheral the name resolved to on this board (for messages and logs).
    pub peripheral: String,
    /// How the worker uses the attached descriptors.
    pub access: Access,
}

/// What the attached descriptors are, and what the worker needs to know to use them. Only the
/// lowest layer differs between a real board and the simulated one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case", deny_unknown_fields)]
pub enum Access {
    /// One descriptor: one end of a `SOCK_SEQPACKET` pair whose other end is the simulated
    /// board, speaking [`crate::sim`] for this one resource.
    Sim { detail: Detail },
    /// One descriptor: a tty (a real UART, or the simulated board's pty) with the line
    /// settings of the board file already applied by the supervisor.
    Tty { baud: u32 },
    /// One descriptor: a GPIO character device v2 line request holding exactly the one line.
    GpioLine,
    /// One descriptor: an i2c-dev bus (`I2C_RDWR`).
    I2cDev,
    /// One descriptor: a spidev device (`SPI_IOC_MESSAGE`).
    SpiDev,
    /// One descriptor per channel, in `channels` order: the IIO `in_voltageN_raw` files, open
    /// read-only.
    IioAdc {
        channels: Vec<u32>,
        bits: u32,
        reference_microvolts: u32,
    },
    /// Four descriptors per channel, in `channels` order: the sysfs PWM channel's `period`,
    /// `duty_cycle`, `polarity` and `enable` files, open write-only.
    SysfsPwm { channels: Vec<u32> },
    /// No descriptor: what a [`ResourceRequest::Lookup`] of an allowed name found (at most
    /// [`MAX_ADDRESSES`], never empty). The worker may now connect to each of them.
    Addresses { addresses: Vec<IpAddr> },
    /// One descriptor: a socket the supervisor made, non-blocking and close-on-exec — a
    /// connected TCP stream or UDP socket (`remote` set), a listening TCP socket or a bound UDP
    /// socket (`remote` unset). `local` is its own address.
    Socket {
        transport: Transport,
        local: SocketAddr,
        remote: Option<SocketAddr>,
    },
    /// No descriptor: the supervisor has taken the request on (a power action, a resumption).
    Accepted,
    /// One descriptor: the receiving end of the app's update events, a `SOCK_SEQPACKET` socket
    /// carrying one [`SysEvent`] per packet. The supervisor sends the state of every pending
    /// update at once, then each change.
    Events,
    /// No descriptor: the deferral granted, in minutes from now (at most what was asked).
    Deferred { minutes: u32 },
    /// One descriptor carrying one message per `read` and per `write`, each at most
    /// `max_message` bytes: a Linux rpmsg endpoint, or one end of a `SOCK_SEQPACKET` pair
    /// whose other end is the supervisor's bridge to an emulated core
    /// (docs/formats/intercore.md).
    Channel { max_message: u32 },
}

/// What the worker needs to know about a simulated resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Detail {
    Gpio,
    I2c,
    Spi,
    Adc {
        channels: u32,
        bits: u32,
        reference_microvolts: u32,
    },
    Pwm {
        channels: u32,
    },
}

impl Access {
    /// How many descriptors the reply carries for this grant.
    pub fn descriptors(&self) -> usize {
        match self {
            Access::Sim { .. }
            | Access::Tty { .. }
            | Access::GpioLine
            | Access::I2cDev
            | Access::SpiDev => 1,
            Access::IioAdc { channels, .. } => channels.len(),
            Access::SysfsPwm { channels } => channels.len() * 4,
            Access::Addresses { .. } => 0,
            Access::Socket { .. } => 1,
            Access::Accepted | Access::Deferred { .. } => 0,
            Access::Events | Access::Channel { .. } => 1,
        }
    }
}

/// Why a request was refused; the app sees it as the matching `warden:device/types.error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "denial", content = "detail", rename_all = "snake_case")]
pub enum Denial {
    /// The manifest grants this app no such peripheral (the board has it).
    #[error("{0}")]
    NotGranted(String),
    /// The board has no peripheral of that name and kind.
    #[error("{0}")]
    UnknownName(String),
    /// In use: already open in this app, or held by another app's worker.
    #[error("{0}")]
    Busy(String),
    /// A malformed request.
    #[error("{0}")]
    InvalidArgument(String),
    /// Opening the granted resource failed on the device.
    #[error("{0}")]
    Io(String),
    /// The request was allowed, and the network said no: the app sees the matching
    /// `wasi:sockets` error code.
    #[error("{detail}")]
    Network { error: NetError, detail: String },
}

/// What the network answered an allowed lookup, connection or server socket with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetError {
    /// No address for the name (`name-unresolvable`).
    NameUnresolvable,
    /// The resolver failed (`temporary-resolver-failure`).
    ResolverFailure,
    /// `ECONNREFUSED` (`connection-refused`).
    ConnectionRefused,
    /// No answer in time (`timeout`).
    Timeout,
    /// `ENETUNREACH`, `EHOSTUNREACH` (`remote-unreachable`).
    Unreachable,
    /// `EADDRINUSE` (`address-in-use`).
    AddressInUse,
    /// `EADDRNOTAVAIL` (`address-not-bindable`).
    AddressNotBindable,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpio(name: &str) -> BrokerRequest {
        BrokerRequest {
            seq: 1,
            open: ResourceRequest::Gpio {
                name: name.into(),
                mode: GpioMode::Input,
            },
        }
    }

    #[test]
    fn names_are_bounded_identifiers() {
        assert!(gpio("SAMPLE_LED").validate().is_ok());
        assert!(gpio("$SAMPLE_LED").validate().is_ok());
        assert!(matches!(
            gpio("").validate(),
            Err(Denial::InvalidArgument(_))
        ));
        assert!(matches!(
            gpio(&"A".repeat(MAX_NAME + 1)).validate(),
            Err(Denial::InvalidArgument(m)) if m.contains("129 bytes")
        ));
        assert!(matches!(
            gpio("LED/../x").validate(),
            Err(Denial::InvalidArgument(m)) if m.contains("'/'")
        ));
        assert!(gpio("LED\0").validate().is_err());
    }

    #[test]
    fn a_channel_names_its_peer_by_a_component_id() {
        let open = |id: &str| BrokerRequest {
            seq: 1,
            open: ResourceRequest::Intercore {
                component_id: id.into(),
            },
        };
        assert!(
            open("005180bc-402f-4cb3-a662-72937dbcde47")
                .validate()
                .is_ok()
        );
        assert!(
            open("005180BC-402F-4CB3-A662-72937DBCDE47")
                .validate()
                .is_ok()
        );
        for bad in [
            "",
            "rt-app",
            "005180bc402f4cb3a66272937dbcde47",
            "005180bc-402f-4cb3-a662-72937dbcde4",
            "005180bc-402f-4cb3-a662-72937dbcde4g",
            "005180bc-402f-4cb3-a662-72937dbcde47-",
        ] {
            assert!(
                matches!(open(bad).validate(), Err(Denial::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn hosts_are_bounded_names_or_ip_literals() {
        let lookup = |host: &str| BrokerRequest {
            seq: 1,
            open: ResourceRequest::Lookup { host: host.into() },
        };
        assert!(lookup("allowed.test").validate().is_ok());
        assert!(lookup("127.0.0.1").validate().is_ok());
        assert!(lookup("::1").validate().is_ok());
        assert!(lookup("fe80::1:2").validate().is_ok());
        assert!(matches!(
            lookup("a:b").validate(),
            Err(Denial::InvalidArgument(m)) if m.contains("':'")
        ));
        assert!(lookup("").validate().is_err());
        assert!(lookup(&"a".repeat(MAX_HOST + 1)).validate().is_err());
        assert!(lookup("a b").validate().is_err());
    }

    #[test]
    fn the_wire_form_is_tagged_and_strict() {
        let text = serde_json::to_string(&gpio("SAMPLE_LED")).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"seq":1,"open":{"kind":"gpio","name":"SAMPLE_LED","mode":{"as":"input"}}}"#
        );
        let extra = r#"{"seq":1,"open":{"kind":"uart","name":"U","baud":9600}}"#;
        assert!(serde_json::from_str::<BrokerRequest>(extra).is_err());
        let reply = BrokerReply {
            seq: 7,
            result: Err(Denial::NotGranted("SAMPLE_LED".into())),
        };
        let text = serde_json::to_string(&reply).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"seq":7,"result":{"Err":{"denial":"not_granted","detail":"SAMPLE_LED"}}}"#
        );
    }
}
