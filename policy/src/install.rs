//! Install-time resolution: what an app's manifest asks for, checked against the device's
//! hardware definition, its board and the apps already installed, and resolved into the grants
//! the runtime hands out.
//!
//! Every reference in the manifest becomes `(chip peripheral, board resource)`, or a problem
//! naming the manifest path (`Capabilities.Gpio[1]`) and the peripheral. All problems come in
//! one [`Report`]: unknown names, names of the wrong type, chip peripherals the board does not
//! back, real-time-only resources asked for by a high-level app, capabilities the board cannot
//! back (a warning or an error by the board's policy, never silence), storage above the board's
//! maximum, resources another app owns, and inter-app connections listed on one side only.
//!
//! [`assign_core`] then picks the real-time core a real-time app runs on: one app per core,
//! the core its peripherals are wired to, an update's own core, or the first free one.

use std::fmt;

use crate::board::{Backend, Board, Resource, UnsupportedPolicy};
use crate::diag::{Path, Problem, Report};
use crate::hwdef::HwdefSet;
use crate::ids::{AppManifestValue, ComponentId, PeripheralType};
use crate::json::{self, Kind, Limits, Value};
use crate::manifest::{ApplicationType, Manifest, PeripheralRef};

/// One peripheral an app is granted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    /// The capability key it was asked under.
    pub capability: PeripheralType,
    /// The reference as the manifest writes it.
    pub requested: PeripheralRef,
    /// Where the manifest asks for it (`Capabilities.Gpio[1]`).
    pub manifest_path: String,
    /// The names passed through, from the requested one to the chip peripheral.
    pub chain: Vec<String>,
    /// The chip peripheral.
    pub chip_peripheral: String,
    /// The chip peripheral's hardware block (its `AppManifestValue`).
    pub block: AppManifestValue,
    /// The board resource that backs it, with its backend configuration.
    pub resource: Resource,
}

/// What the runtime needs to run an app: its identity and every right resolved.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ResolvedApp {
    pub component_id: ComponentId,
    pub name: String,
    pub application_type: ApplicationType,
    pub grants: Vec<Grant>,
    /// Capability keys the manifest asks for that the board cannot back and that are withheld
    /// (under the board's `Warn` policy).
    pub withheld: Vec<String>,
    /// Apps this one may talk to, once both sides list each other.
    pub application_connections: Vec<ComponentId>,
    pub memory_limit_kb: u64,
    pub watchdog_ms: u64,
    pub storage_kb: Option<u64>,
    /// Problems that did not refuse the app.
    pub warnings: Vec<Problem>,
}

/// An app already on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledApp {
    pub manifest: Manifest,
    pub resolved: ResolvedApp,
}

/// The device an app is being installed on.
#[derive(Clone, Copy, Debug)]
pub struct Device<'a> {
    pub hwdefs: &'a HwdefSet,
    pub board: &'a Board,
    pub installed: &'a [InstalledApp],
}

/// Why an app cannot be installed: every problem found, errors and warnings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("cannot install app {report}")]
pub struct InstallError {
    pub report: Report,
}

struct Owner<'a> {
    app: &'a InstalledApp,
    grant: &'a Grant,
}

impl fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "app `{}` ({}) as `{}` ({})",
            self.app.manifest.name,
            self.app.manifest.component_id,
            self.grant.requested,
            self.grant.chip_peripheral
        )
    }
}

/// Resolves and checks `manifest` for installation on `device`. `source` names the manifest
/// in the report. An installed app with the same component id is the one being updated and
/// does not conflict with it.
pub fn resolve(
    source: &str,
    manifest: &Manifest,
    device: &Device<'_>,
) -> Result<ResolvedApp, InstallError> {
    let mut report = Report::new(source);
    let caps = &manifest.capabilities;
    let board = device.board;
    let root = Path::root();
    let real_time = manifest.application_type == ApplicationType::RealTimeCapable;
    let others: Vec<&InstalledApp> = device
        .installed
        .iter()
        .filter(|a| a.manifest.component_id != manifest.component_id)
        .collect();

    if real_time && board.real_time_cores.is_empty() {
        report.error(
            &root.key("ApplicationType"),
            None,
            format!(
                "board `{}` has no real-time core to run a RealTimeCapable app",
                board.name
            ),
        );
    }

    let mut grants: Vec<Grant> = Vec::new();
    for (&kind, refs) in &caps.peripherals {
        for (i, reference) in refs.iter().enumerate() {
            let path = root.key("Capabilities").key(kind.name()).index(i);
            let resolution = match device.hwdefs.resolve(kind, reference) {
                Ok(r) => r,
                Err(e) => {
                    report.error(&path, None, e.to_string());
                    continue;
                }
            };
            let chip = &resolution.chip;
            let Some(resource) = board.resource(chip) else {
                report.error(
                    &path,
                    None,
                    format!(
                        "`{reference}` resolves to `{chip}`, which board `{}` has no resource for",
                        board.name
                    ),
                );
                continue;
            };
            if !real_time && matches!(resource.backend, Backend::RealTimeCoreOnly { .. }) {
                report.error(
                    &path,
                    None,
                    format!(
                        "`{reference}` (`{chip}`) is wired to the real-time core only; a \
                         high-level app cannot use it"
                    ),
                );
                continue;
            }
            let grant = Grant {
                capability: kind,
                requested: reference.clone(),
                manifest_path: path.to_string(),
                chain: resolution.chain.clone(),
                chip_peripheral: chip.clone(),
                block: resolution.block.clone(),
                resource: resource.clone(),
            };
            let owner = others.iter().find_map(|app| {
                app.resolved
                    .grants
                    .iter()
                    .find(|g| conflicts(g, &grant))
                    .map(|g| Owner { app, grant: g })
            });
            if let Some(owner) = owner {
                let what = if owner.grant.chip_peripheral == *chip {
                    format!("`{reference}` (`{chip}`) is already owned by {owner}")
                } else if owner.grant.block == grant.block {
                    format!(
                        "`{reference}` (`{chip}`) shares hardware block {} with `{}`, already \
                         owned by {owner}",
                        grant.block, owner.grant.chip_peripheral
                    )
                } else {
                    format!(
                        "`{reference}` (`{chip}`) shares a resource or pin with `{}`, already \
                         owned by {owner}",
                        owner.grant.chip_peripheral
                    )
                };
                report.error(&path, None, what);
                continue;
            }
            if let Some(earlier) = grants.iter().find(|g| g.chip_peripheral == *chip) {
                report.warning(
                    &path,
                    None,
                    format!(
                        "`{reference}` and `{}` ({}) both resolve to `{chip}`; it is granted once",
                        earlier.requested, earlier.manifest_path
                    ),
                );
                continue;
            }
            if let Some(earlier) = grants.iter().find(|g| conflicts(g, &grant)) {
                report.error(
                    &path,
                    None,
                    format!(
                        "`{reference}` (`{chip}`) and `{}` (`{}`, {}) are alternative functions \
                         of hardware block {}; an app can hold only one of them",
                        earlier.requested,
                        earlier.chip_peripheral,
                        earlier.manifest_path,
                        grant.block
                    ),
                );
                continue;
            }
            grants.push(grant);
        }
    }

    let mut withheld = Vec::new();
    for key in caps.keys() {
        if PeripheralType::from_name(key).is_some() || board.backs(key) {
            continue;
        }
        let path = root.key("Capabilities").key(key);
        match board.unsupported {
            UnsupportedPolicy::Warn => {
                report.warning(
                    &path,
                    None,
                    format!(
                        "board `{}` cannot back `{key}`; the app is installed without it",
                        board.name
                    ),
                );
                withheld.push(key.to_owned());
            }
            UnsupportedPolicy::Refuse => report.error(
                &path,
                None,
                format!(
                    "board `{}` cannot back `{key}`, and its policy refuses apps that ask for \
                     what it cannot back",
                    board.name
                ),
            ),
        }
    }

    let storage_kb = caps.mutable_storage.map(|s| s.size_kb);
    if let Some(size) = storage_kb
        && size > board.defaults.max_storage_kb
    {
        report.error(
            &root.key("Capabilities").key("MutableStorage").key("SizeKB"),
            None,
            format!(
                "{size} KiB of storage is more than board `{}` allows an app ({} KiB)",
                board.name, board.defaults.max_storage_kb
            ),
        );
    }

    for (i, partner) in caps.allowed_application_connections.iter().enumerate() {
        let path = root
            .key("Capabilities")
            .key("AllowedApplicationConnections")
            .index(i);
        match others.iter().find(|a| a.manifest.component_id == *partner) {
            Some(app) => {
                let lists_us = app
                    .manifest
                    .capabilities
                    .allowed_application_connections
                    .contains(&manifest.component_id);
                if !lists_us {
                    report.error(
                        &path,
                        None,
                        format!(
                            "app `{}` ({partner}) is installed but does not list this app in its \
                             AllowedApplicationConnections; both sides must list each other",
                            app.manifest.name
                        ),
                    );
                }
            }
            None => report.warning(
                &path,
                None,
                format!(
                    "no app {partner} is installed; the channel stays closed until it is, and \
                     lists this app too"
                ),
            ),
        }
    }
    for app in &others {
        let lists_us = app
            .manifest
            .capabilities
            .allowed_application_connections
            .contains(&manifest.component_id);
        if lists_us
            && !caps
                .allowed_application_connections
                .contains(&app.manifest.component_id)
        {
            report.warning(
                &root.key("Capabilities"),
                None,
                format!(
                    "installed app `{}` ({}) lists this app in its AllowedApplicationConnections, \
                     but this app does not list it; the channel stays closed",
                    app.manifest.name, app.manifest.component_id
                ),
            );
        }
    }

    if report.has_errors() {
        return Err(InstallError { report });
    }
    Ok(ResolvedApp {
        component_id: manifest.component_id,
        name: manifest.name.clone(),
        application_type: manifest.application_type,
        grants,
        withheld,
        application_connections: caps.allowed_application_connections.clone(),
        memory_limit_kb: manifest
            .warden
            .memory_limit_kb
            .unwrap_or(board.defaults.memory_limit_kb),
        watchdog_ms: manifest
            .warden
            .watchdog_ms
            .unwrap_or(board.defaults.watchdog_ms),
        storage_kb,
        warnings: report.problems,
    })
}

/// A real-time core and the real-time app installed on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreHolder {
    /// The core's name (`RealTimeCores[].Name`).
    pub core: String,
    pub app: ComponentId,
    /// The app's name, for messages.
    pub name: String,
}

/// Why a real-time app gets no core.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CoreAssignmentError {
    #[error("board `{board}` has no real-time core to run a RealTimeCapable app")]
    NoCores { board: String },
    #[error(
        "the app claims peripherals wired to different real-time cores ({pins}); a real-time \
         app runs on one core"
    )]
    SplitPins { pins: String },
    #[error(
        "`{peripheral}` is wired to real-time core `{core}`, which board `{board}` does not list"
    )]
    UnknownCore {
        peripheral: String,
        core: String,
        board: String,
    },
    #[error(
        "`{peripheral}` is wired to real-time core `{core}` only, and `{core}` runs real-time app \
         `{holder}` ({holder_id}); a core runs one real-time app"
    )]
    Taken {
        peripheral: String,
        core: String,
        holder: String,
        holder_id: ComponentId,
    },
    #[error("every real-time core is taken: {holders}; a core runs one real-time app")]
    AllTaken { holders: String },
}

/// Picks the real-time core `app` runs on. A real-time app runs on one core and a core runs
/// one real-time app (`holders`: the cores installed apps hold; an entry for `app` itself is
/// its current core). In order:
///
/// 1. peripherals wired to one core only (`RealTimeCoreOnly` with a `Core`) put the app on that
///    core, refused if another app holds it (or if they name two cores);
/// 2. an installed app being updated keeps its core;
/// 3. otherwise the first core in board order that no other app holds;
///
/// and refused, naming every core and its holder, when none is free.
pub fn assign_core(
    board: &Board,
    app: &ResolvedApp,
    holders: &[CoreHolder],
) -> Result<String, CoreAssignmentError> {
    if board.real_time_cores.is_empty() {
        return Err(CoreAssignmentError::NoCores {
            board: board.name.clone(),
        });
    }
    let held_by_other = |core: &str| {
        holders
            .iter()
            .find(|h| h.core == core && h.app != app.component_id)
    };
    let mut pins: Vec<(&str, &str)> = Vec::new();
    for grant in &app.grants {
        if let Backend::RealTimeCoreOnly { core: Some(core) } = &grant.resource.backend
            && !pins.iter().any(|(c, _)| c == core)
        {
            pins.push((core, &grant.chip_peripheral));
        }
    }
    match pins.as_slice() {
        [] => {}
        [(core, peripheral)] => {
            if !board.real_time_cores.iter().any(|c| c.name == *core) {
                return Err(CoreAssignmentError::UnknownCore {
                    peripheral: (*peripheral).to_owned(),
                    core: (*core).to_owned(),
                    board: board.name.clone(),
                });
            }
            return match held_by_other(core) {
                Some(holder) => Err(CoreAssignmentError::Taken {
                    peripheral: (*peripheral).to_owned(),
                    core: (*core).to_owned(),
                    holder: holder.name.clone(),
                    holder_id: holder.app,
                }),
                None => Ok((*core).to_owned()),
            };
        }
        several => {
            return Err(CoreAssignmentError::SplitPins {
                pins: several
                    .iter()
                    .map(|(core, peripheral)| format!("`{peripheral}` on `{core}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let current = holders
        .iter()
        .find(|h| h.app == app.component_id)
        .map(|h| h.core.as_str());
    if let Some(core) = current
        && board.real_time_cores.iter().any(|c| c.name == core)
        && held_by_other(core).is_none()
    {
        return Ok(core.to_owned());
    }
    if let Some(free) = board
        .real_time_cores
        .iter()
        .find(|c| held_by_other(&c.name).is_none())
    {
        return Ok(free.name.clone());
    }
    Err(CoreAssignmentError::AllTaken {
        holders: board
            .real_time_cores
            .iter()
            .filter_map(|c| {
                held_by_other(&c.name)
                    .map(|h| format!("`{}` by app `{}` ({})", c.name, h.name, h.app))
            })
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Whether two grants cannot be held at the same time: same hardware block, or a shared
/// Linux resource or pin.
fn conflicts(a: &Grant, b: &Grant) -> bool {
    if a.block == b.block {
        return true;
    }
    let claims = b.resource.backend.claims();
    a.resource
        .backend
        .claims()
        .iter()
        .any(|c| claims.contains(c))
        || a.resource.pins.iter().any(|p| b.resource.pins.contains(p))
}

/// Fills in line and column for problems that have only a JSON path, from the manifest's text.
pub fn locate(report: &mut Report, manifest_text: &[u8]) {
    let Ok(root) = json::parse(manifest_text, Limits::default()) else {
        return;
    };
    for problem in &mut report.problems {
        if problem.line != 0 {
            continue;
        }
        if let Some(value) = find(&root, &problem.path) {
            problem.line = value.pos.line;
            problem.column = value.pos.column;
        }
    }
    report.sort();
}

fn find<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut value = root;
    if path.is_empty() {
        return Some(value);
    }
    for part in path.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            let Kind::Object(members) = &value.kind else {
                return None;
            };
            value = &members.iter().find(|m| m.key == key)?.value;
        }
        for index in rest.split('[').filter(|s| !s.is_empty()) {
            let n: usize = index.trim_end_matches(']').parse().ok()?;
            let Kind::Array(items) = &value.kind else {
                return None;
            };
            value = items.get(n)?;
        }
    }
    Some(value)
}
