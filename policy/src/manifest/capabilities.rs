//! The `Capabilities` object: every key Azure Sphere defines, each read into a typed value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::network::AllowedHost;
use super::{ApplicationType, read_guid};
use crate::diag::{self, Fields, Path, Report};
use crate::ids::{AppManifestValue, ComponentId, Guid, PeripheralType, is_peripheral_name};
use crate::json::{Kind, Pos, Value};

/// Most entries accepted in one capability list.
pub const MAX_LIST_ENTRIES: usize = 256;

/// How a manifest names a peripheral.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeripheralRef {
    /// `"$NAME"`: a name from the device's hardware definition, resolved at install.
    Named(String),
    /// A raw chip value (`8`, `"ISU0"`), as real-time apps and older manifests write them.
    Value(AppManifestValue),
}

impl fmt::Display for PeripheralRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeripheralRef::Named(name) => write!(f, "${name}"),
            PeripheralRef::Value(value) => write!(f, "{value}"),
        }
    }
}

/// `MutableStorage`: a private, persistent directory with a size quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MutableStorage {
    pub size_kb: u64,
}

/// The fine-grained power rights of `PowerControls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum PowerControl {
    ForcePowerDown,
    ForceReboot,
    SetPowerProfile,
}

impl PowerControl {
    pub const ALL: [PowerControl; 3] = [
        PowerControl::ForcePowerDown,
        PowerControl::ForceReboot,
        PowerControl::SetPowerProfile,
    ];

    /// The manifest's spelling (`ForceReboot`).
    pub fn name(self) -> &'static str {
        match self {
            PowerControl::ForcePowerDown => "ForcePowerDown",
            PowerControl::ForceReboot => "ForceReboot",
            PowerControl::SetPowerProfile => "SetPowerProfile",
        }
    }
}

/// The boolean capabilities: rights over device services rather than over a named resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum ServiceCapability {
    CertStore,
    WifiConfig,
    EnterpriseWifiConfig,
    NetworkConfig,
    ReadNetworkProxyConfig,
    DhcpService,
    SntpService,
    SystemTime,
    TimeSyncConfig,
    HardwareAddressConfig,
    SystemEventNotifications,
    SoftwareUpdateDeferral,
}

impl ServiceCapability {
    pub const ALL: [ServiceCapability; 12] = [
        ServiceCapability::CertStore,
        ServiceCapability::WifiConfig,
        ServiceCapability::EnterpriseWifiConfig,
        ServiceCapability::NetworkConfig,
        ServiceCapability::ReadNetworkProxyConfig,
        ServiceCapability::DhcpService,
        ServiceCapability::SntpService,
        ServiceCapability::SystemTime,
        ServiceCapability::TimeSyncConfig,
        ServiceCapability::HardwareAddressConfig,
        ServiceCapability::SystemEventNotifications,
        ServiceCapability::SoftwareUpdateDeferral,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ServiceCapability::CertStore => "CertStore",
            ServiceCapability::WifiConfig => "WifiConfig",
            ServiceCapability::EnterpriseWifiConfig => "EnterpriseWifiConfig",
            ServiceCapability::NetworkConfig => "NetworkConfig",
            ServiceCapability::ReadNetworkProxyConfig => "ReadNetworkProxyConfig",
            ServiceCapability::DhcpService => "DhcpService",
            ServiceCapability::SntpService => "SntpService",
            ServiceCapability::SystemTime => "SystemTime",
            ServiceCapability::TimeSyncConfig => "TimeSyncConfig",
            ServiceCapability::HardwareAddressConfig => "HardwareAddressConfig",
            ServiceCapability::SystemEventNotifications => "SystemEventNotifications",
            ServiceCapability::SoftwareUpdateDeferral => "SoftwareUpdateDeferral",
        }
    }
}

impl fmt::Display for ServiceCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a manifest asks for. Absent keys grant nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    pub allowed_connections: Vec<AllowedHost>,
    pub allowed_tcp_server_ports: Vec<u16>,
    pub allowed_udp_server_ports: Vec<u16>,
    pub allowed_application_connections: Vec<ComponentId>,
    /// Peripheral lists by type (`Gpio`, `Uart`, …), in manifest order; empty lists omitted.
    pub peripherals: BTreeMap<PeripheralType, Vec<PeripheralRef>>,
    pub mutable_storage: Option<MutableStorage>,
    /// The tenant whose certificate the app may use (`DeviceAuthentication`).
    pub device_authentication: Option<Guid>,
    pub power_controls: Vec<PowerControl>,
    /// The boolean capabilities set to `true`.
    pub services: BTreeSet<ServiceCapability>,
}

impl Capabilities {
    /// The peripherals of one type the manifest lists.
    pub fn peripherals_of(&self, kind: PeripheralType) -> &[PeripheralRef] {
        self.peripherals.get(&kind).map_or(&[], Vec::as_slice)
    }

    /// The capability keys present in this manifest, spelled as in the manifest.
    pub fn keys(&self) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if !self.allowed_connections.is_empty() {
            keys.push("AllowedConnections");
        }
        if !self.allowed_tcp_server_ports.is_empty() {
            keys.push("AllowedTcpServerPorts");
        }
        if !self.allowed_udp_server_ports.is_empty() {
            keys.push("AllowedUdpServerPorts");
        }
        if !self.allowed_application_connections.is_empty() {
            keys.push("AllowedApplicationConnections");
        }
        keys.extend(self.peripherals.keys().map(|k| k.name()));
        if self.mutable_storage.is_some() {
            keys.push("MutableStorage");
        }
        if self.device_authentication.is_some() {
            keys.push("DeviceAuthentication");
        }
        if !self.power_controls.is_empty() {
            keys.push("PowerControls");
        }
        keys.extend(self.services.iter().map(|s| s.name()));
        keys
    }
}

/// Every key the `Capabilities` object accepts.
pub const CAPABILITY_KEYS: &[&str] = &[
    "AllowedConnections",
    "AllowedTcpServerPorts",
    "AllowedUdpServerPorts",
    "AllowedApplicationConnections",
    "Gpio",
    "Uart",
    "I2cMaster",
    "SpiMaster",
    "Adc",
    "Pwm",
    "I2sSubordinate",
    "ExternalInterrupt",
    "MutableStorage",
    "DeviceAuthentication",
    "CertStore",
    "WifiConfig",
    "EnterpriseWifiConfig",
    "NetworkConfig",
    "ReadNetworkProxyConfig",
    "DhcpService",
    "SntpService",
    "SystemTime",
    "TimeSyncConfig",
    "HardwareAddressConfig",
    "SystemEventNotifications",
    "SoftwareUpdateDeferral",
    "PowerControls",
];

/// The keys a real-time app may use: peripherals and inter-core connections. Everything else
/// is a service of the high-level OS that firmware on another core cannot reach.
const REAL_TIME_KEYS: &[&str] = &[
    "AllowedApplicationConnections",
    "Gpio",
    "Uart",
    "I2cMaster",
    "SpiMaster",
    "Adc",
    "Pwm",
    "I2sSubordinate",
    "ExternalInterrupt",
];

/// Largest `MutableStorage.SizeKB` accepted (4 GiB); a board may allow less.
pub const MAX_STORAGE_KB: u64 = 4 * 1024 * 1024;

pub(super) fn read(
    report: &mut Report,
    path: &Path,
    value: &Value,
    app_type: ApplicationType,
    own_id: Option<ComponentId>,
) -> Option<Capabilities> {
    let mut fields = Fields::open(report, path, value)?;
    let errors_before = report.errors().count();
    let mut caps = Capabilities::default();

    // Keys that do not apply to this kind of app are refused by name, before their values
    // are read, so the author learns the real problem first.
    for key in CAPABILITY_KEYS {
        let Some(v) = fields.take(key) else { continue };
        let p = path.key(key);
        if app_type == ApplicationType::RealTimeCapable && !REAL_TIME_KEYS.contains(key) {
            report.error(
                &p,
                Some(v.pos),
                format!(
                    "`{key}` is a high-level app capability; a RealTimeCapable app cannot use it"
                ),
            );
            continue;
        }
        if app_type == ApplicationType::Default && *key == "ExternalInterrupt" {
            report.error(
                &p,
                Some(v.pos),
                "`ExternalInterrupt` is for RealTimeCapable apps only",
            );
            continue;
        }
        read_key(report, &p, key, v, own_id, &mut caps);
    }
    fields.finish(report, CAPABILITY_KEYS);
    (report.errors().count() == errors_before).then_some(caps)
}

fn read_key(
    report: &mut Report,
    p: &Path,
    key: &str,
    v: &Value,
    own_id: Option<ComponentId>,
    caps: &mut Capabilities,
) {
    if let Some(kind) = PeripheralType::from_name(key) {
        if let Some(refs) = read_list(report, p, v, |report, p, item| {
            read_peripheral(report, p, item, kind)
        }) && !refs.is_empty()
        {
            caps.peripherals.insert(kind, refs);
        }
        return;
    }
    if let Some(service) = ServiceCapability::ALL.into_iter().find(|s| s.name() == key) {
        if diag::expect_bool(report, p, v) == Some(true) {
            caps.services.insert(service);
        }
        return;
    }
    match key {
        "AllowedConnections" => {
            caps.allowed_connections = read_list(report, p, v, |report, p, item| {
                let text = diag::expect_str(report, p, item)?;
                AllowedHost::parse(text)
                    .map_err(|e| report.error(p, Some(item.pos), e))
                    .ok()
            })
            .unwrap_or_default();
        }
        "AllowedTcpServerPorts" | "AllowedUdpServerPorts" => {
            let ports = read_list(report, p, v, |report, p, item| {
                diag::expect_int(report, p, item, 1..=65535).and_then(|n| u16::try_from(n).ok())
            })
            .unwrap_or_default();
            if key == "AllowedTcpServerPorts" {
                caps.allowed_tcp_server_ports = ports;
            } else {
                caps.allowed_udp_server_ports = ports;
            }
        }
        "AllowedApplicationConnections" => {
            caps.allowed_application_connections = read_list(report, p, v, |report, p, item| {
                let id = read_guid(report, p, item)?;
                if Some(id) == own_id {
                    report.error(
                        p,
                        Some(item.pos),
                        "an app cannot list itself as a connection",
                    );
                    return None;
                }
                Some(id)
            })
            .unwrap_or_default();
        }
        "MutableStorage" => caps.mutable_storage = read_storage(report, p, v),
        "DeviceAuthentication" => caps.device_authentication = read_guid(report, p, v),
        "PowerControls" => {
            caps.power_controls = read_list(report, p, v, |report, p, item| {
                let text = diag::expect_str(report, p, item)?;
                let control = PowerControl::ALL.into_iter().find(|c| c.name() == text);
                if control.is_none() {
                    report.error(
                        p,
                        Some(item.pos),
                        format!(
                            "unknown power control `{text}`: expected `ForcePowerDown`, \
                             `ForceReboot` or `SetPowerProfile`"
                        ),
                    );
                }
                control
            })
            .unwrap_or_default();
        }
        // Every key in CAPABILITY_KEYS is handled above; this arm is unreachable by
        // construction, but an error is safer than a panic if the lists ever drift.
        other => report.error(
            p,
            Some(v.pos),
            format!("capability `{other}` is not supported"),
        ),
    }
}

/// Reads an array whose items all go through `item`, refusing duplicates by position.
fn read_list<T: PartialEq>(
    report: &mut Report,
    path: &Path,
    value: &Value,
    mut item: impl FnMut(&mut Report, &Path, &Value) -> Option<T>,
) -> Option<Vec<T>> {
    let items = diag::expect_array(report, path, value, MAX_LIST_ENTRIES)?;
    let mut out: Vec<(T, Pos)> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, raw) in items.iter().enumerate() {
        let p = path.index(i);
        match item(report, &p, raw) {
            Some(v) => {
                if let Some((_, first)) = out.iter().find(|(seen, _)| *seen == v) {
                    report.error(
                        &p,
                        Some(raw.pos),
                        format!("duplicate entry (first listed at {first})"),
                    );
                    ok = false;
                } else {
                    out.push((v, raw.pos));
                }
            }
            None => ok = false,
        }
    }
    ok.then(|| out.into_iter().map(|(v, _)| v).collect())
}

fn read_peripheral(
    report: &mut Report,
    p: &Path,
    item: &Value,
    kind: PeripheralType,
) -> Option<PeripheralRef> {
    match &item.kind {
        Kind::String(s) => {
            if let Some(name) = s.strip_prefix('$') {
                if is_peripheral_name(name) {
                    return Some(PeripheralRef::Named(name.to_owned()));
                }
                report.error(
                    p,
                    Some(item.pos),
                    format!(
                        "`{s}` is not a peripheral reference: after `$` comes a hardware-definition \
                         name (letters, digits and `_`, not starting with a digit)"
                    ),
                );
                return None;
            }
            if kind == PeripheralType::Gpio {
                report.error(
                    p,
                    Some(item.pos),
                    format!("`{s}`: a GPIO is a number or a `$NAME` from the hardware definition"),
                );
                return None;
            }
            let valid = !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if !valid {
                report.error(
                    p,
                    Some(item.pos),
                    format!(
                        "`{s}` is not a {kind} value: expected a chip value such as `ISU0` or a \
                         `$NAME` from the hardware definition"
                    ),
                );
                return None;
            }
            Some(PeripheralRef::Value(AppManifestValue::Text(s.clone())))
        }
        Kind::Number(_) if kind == PeripheralType::Gpio => {
            diag::expect_int(report, p, item, 0..=u64::from(u16::MAX))
                .map(|n| PeripheralRef::Value(AppManifestValue::Number(n)))
        }
        Kind::Number(n) => {
            report.error(
                p,
                Some(item.pos),
                format!(
                    "{kind} peripherals are named by a string (e.g. `ISU0`) or `$NAME`, found the number {}",
                    n.as_str()
                ),
            );
            None
        }
        other => {
            report.error(
                p,
                Some(item.pos),
                format!(
                    "expected a `$NAME` string or a chip value, found {}",
                    other.type_name()
                ),
            );
            None
        }
    }
}

fn read_storage(report: &mut Report, p: &Path, v: &Value) -> Option<MutableStorage> {
    let mut fields = Fields::open(report, p, v)?;
    let size = fields
        .require(report, "SizeKB", v.pos, "the storage quota in KiB")
        .and_then(|s| diag::expect_int(report, &p.key("SizeKB"), s, 1..=MAX_STORAGE_KB));
    fields.finish(report, &["SizeKB"]);
    size.map(|size_kb| MutableStorage { size_kb })
}
