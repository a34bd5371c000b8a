//! `app_manifest.json` in Azure Sphere's schema, read strictly, with every problem reported at
//! once with its JSON path and line:column.
//!
//! What an Azure Sphere developer wrote yesterday parses unchanged. Peripheral values keep
//! their `$NAME` form: the device resolves them against its hardware definition at install.
//! Warden's own additions live in one separate top-level section, `"Warden"`.

mod capabilities;
mod network;

use std::fmt;

pub use capabilities::{
    CAPABILITY_KEYS, Capabilities, MAX_LIST_ENTRIES, MAX_STORAGE_KB, MutableStorage, PeripheralRef,
    PowerControl, ServiceCapability,
};
pub use network::AllowedHost;

use crate::diag::{self, Fields, Path, Problem, Report};
use crate::ids::ComponentId;
use crate::json::{self, Limits};

/// Largest accepted manifest. Azure Sphere manifests are a few hundred bytes.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// The one schema version Azure Sphere defines.
pub const SCHEMA_VERSION: u64 = 1;

/// The kind of app a manifest describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ApplicationType {
    /// A high-level app: a WebAssembly component or module run by a confined worker.
    Default,
    /// A real-time capable app: firmware for a real-time core (e.g. a Cortex-M4).
    RealTimeCapable,
}

impl fmt::Display for ApplicationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApplicationType::Default => "Default",
            ApplicationType::RealTimeCapable => "RealTimeCapable",
        })
    }
}

/// Warden-only settings, from the manifest's `"Warden"` section. Absent values fall back to the
/// board's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WardenSettings {
    /// Most memory the app's WebAssembly instance may grow to, in KiB.
    pub memory_limit_kb: Option<u64>,
    /// Longest time the app may run WebAssembly code without returning to the host, in ms.
    pub watchdog_ms: Option<u64>,
}

/// A validated app manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Manifest {
    pub schema_version: u64,
    pub name: String,
    pub component_id: ComponentId,
    /// As written: for Warden, the path of the entry payload inside the package.
    pub entry_point: String,
    pub cmd_args: Vec<String>,
    pub application_type: ApplicationType,
    pub capabilities: Capabilities,
    /// Azure Sphere's allocator choice; recorded, and reported as having no effect on Warden.
    pub malloc_version: Option<u64>,
    /// Azure Sphere's API-set version; recorded, and reported as having no effect on Warden.
    pub target_application_runtime_version: Option<u64>,
    /// Azure Sphere's opt-in to beta APIs; recorded, and reported as having no effect on Warden.
    pub target_beta_apis: Option<bool>,
    pub warden: WardenSettings,
    /// Problems that do not refuse the manifest.
    #[serde(skip)]
    pub warnings: Vec<Problem>,
}

/// Why a manifest was refused: every problem found, errors and warnings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid app manifest {report}")]
pub struct ManifestError {
    pub report: Report,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "SchemaVersion",
    "Name",
    "ComponentId",
    "EntryPoint",
    "CmdArgs",
    "ApplicationType",
    "Capabilities",
    "MallocVersion",
    "TargetApplicationRuntimeVersion",
    "TargetBetaApis",
    "Warden",
];

const WARDEN_KEYS: &[&str] = &["MemoryLimitKB", "WatchdogMs"];

impl Manifest {
    /// Reads and validates a manifest. `source` names it in messages (usually its path).
    pub fn parse(source: &str, text: &[u8]) -> Result<Manifest, ManifestError> {
        let mut report = Report::new(source);
        let limits = Limits {
            max_bytes: MAX_MANIFEST_BYTES,
            max_depth: 8,
        };
        let root = match json::parse(text, limits) {
            Ok(root) => root,
            Err(e) => {
                report.error(&Path::root(), Some(e.pos), e.message);
                return Err(ManifestError { report });
            }
        };
        let manifest = read_manifest(&mut report, &root);
        report.sort();
        match manifest {
            Some(mut manifest) if !report.has_errors() => {
                manifest.warnings = report.problems;
                Ok(manifest)
            }
            _ => Err(ManifestError { report }),
        }
    }

    /// The name of the entry payload inside a package: `EntryPoint` without a leading `/`
    /// (Azure Sphere writes `/bin/app`).
    pub fn entry_payload_name(&self) -> &str {
        self.entry_point.trim_start_matches('/')
    }
}

fn read_manifest(report: &mut Report, root: &json::Value) -> Option<Manifest> {
    let path = Path::root();
    let mut fields = Fields::open(report, &path, root)?;
    let pos = root.pos;

    let schema_version = fields
        .require(report, "SchemaVersion", pos, "must be 1")
        .and_then(|v| {
            let version = diag::expect_int(report, &path.key("SchemaVersion"), v, 0..=u64::MAX)?;
            if version != SCHEMA_VERSION {
                report.error(
                    &path.key("SchemaVersion"),
                    Some(v.pos),
                    format!("unsupported schema version {version}; this Warden reads version 1"),
                );
                return None;
            }
            Some(version)
        });

    let name = fields
        .require(report, "Name", pos, "the app's name")
        .and_then(|v| read_name(report, &path.key("Name"), v));

    let component_id = fields
        .require(report, "ComponentId", pos, "the app's GUID")
        .and_then(|v| read_guid(report, &path.key("ComponentId"), v));

    let entry_point = fields
        .require(
            report,
            "EntryPoint",
            pos,
            "the entry payload, e.g. `/bin/app`",
        )
        .and_then(|v| read_entry_point(report, &path.key("EntryPoint"), v));

    let cmd_args = match fields.take("CmdArgs") {
        Some(v) => read_cmd_args(report, &path.key("CmdArgs"), v),
        None => Some(Vec::new()),
    };

    let application_type = match fields.take("ApplicationType") {
        Some(v) => read_application_type(report, &path.key("ApplicationType"), v),
        None => Some(ApplicationType::Default),
    };

    let capabilities = match fields.take("Capabilities") {
        Some(v) => capabilities::read(
            report,
            &path.key("Capabilities"),
            v,
            application_type.unwrap_or(ApplicationType::Default),
            component_id,
        ),
        None => Some(Capabilities::default()),
    };

    let malloc_version = fields.take("MallocVersion").and_then(|v| {
        let p = path.key("MallocVersion");
        let version = diag::expect_int(report, &p, v, 1..=2)?;
        report.warning(
            &p,
            Some(v.pos),
            "has no effect on Warden: each WebAssembly app brings its own allocator",
        );
        Some(version)
    });

    let target_application_runtime_version = fields
        .take("TargetApplicationRuntimeVersion")
        .and_then(|v| {
            let p = path.key("TargetApplicationRuntimeVersion");
            let version = diag::expect_int(report, &p, v, 1..=u64::from(u32::MAX))?;
            report.warning(
                &p,
                Some(v.pos),
                "has no effect on Warden: the WIT world an app imports says which API it needs",
            );
            Some(version)
        });

    let target_beta_apis = fields.take("TargetBetaApis").and_then(|v| {
        let p = path.key("TargetBetaApis");
        let beta = diag::expect_bool(report, &p, v)?;
        report.warning(&p, Some(v.pos), "has no effect on Warden");
        Some(beta)
    });

    let warden = match fields.take("Warden") {
        Some(v) => read_warden(report, &path.key("Warden"), v),
        None => Some(WardenSettings::default()),
    };

    fields.finish(report, TOP_LEVEL_KEYS);

    Some(Manifest {
        schema_version: schema_version?,
        name: name?,
        component_id: component_id?,
        entry_point: entry_point?,
        cmd_args: cmd_args?,
        application_type: application_type?,
        capabilities: capabilities?,
        malloc_version,
        target_application_runtime_version,
        target_beta_apis,
        warden: warden?,
        warnings: Vec::new(),
    })
}

fn read_name(report: &mut Report, path: &Path, v: &json::Value) -> Option<String> {
    let name = diag::expect_str(report, path, v)?;
    if name.trim().is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
        report.error(
            path,
            Some(v.pos),
            "expected a name of 1 to 128 characters, without control characters",
        );
        return None;
    }
    Some(name.to_owned())
}

pub(crate) fn read_guid(report: &mut Report, path: &Path, v: &json::Value) -> Option<ComponentId> {
    let text = diag::expect_str(report, path, v)?;
    match text.parse::<ComponentId>() {
        Ok(id) if id.is_nil() => {
            report.error(path, Some(v.pos), "the nil GUID is not an identity");
            None
        }
        Ok(id) => Some(id),
        Err(e) => {
            report.error(path, Some(v.pos), e.to_string());
            None
        }
    }
}

/// A payload path: relative segments of `[A-Za-z0-9._-]`, an optional leading `/`.
pub(crate) fn is_payload_path(path: &str) -> bool {
    let relative = path.strip_prefix('/').unwrap_or(path);
    !relative.is_empty()
        && relative.len() <= 128
        && relative.split('/').all(crate::ids::is_plain_segment)
}

fn read_entry_point(report: &mut Report, path: &Path, v: &json::Value) -> Option<String> {
    let entry = diag::expect_str(report, path, v)?;
    if !is_payload_path(entry) {
        report.error(
            path,
            Some(v.pos),
            format!(
                "`{entry}` is not a package path: expected segments of letters, digits, `.`, `_` \
                 and `-` separated by `/` (no `..`, at most 128 bytes), e.g. `/bin/app`"
            ),
        );
        return None;
    }
    Some(entry.to_owned())
}

fn read_cmd_args(report: &mut Report, path: &Path, v: &json::Value) -> Option<Vec<String>> {
    let items = diag::expect_array(report, path, v, 64)?;
    let mut args = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        match diag::expect_str(report, &p, item) {
            Some(arg) if arg.contains('\0') || arg.len() > 1024 => {
                report.error(
                    &p,
                    Some(item.pos),
                    "an argument must not contain NUL and is at most 1024 bytes",
                );
                ok = false;
            }
            Some(arg) => args.push(arg.to_owned()),
            None => ok = false,
        }
    }
    ok.then_some(args)
}

fn read_application_type(
    report: &mut Report,
    path: &Path,
    v: &json::Value,
) -> Option<ApplicationType> {
    match diag::expect_str(report, path, v)? {
        "Default" => Some(ApplicationType::Default),
        "RealTimeCapable" => Some(ApplicationType::RealTimeCapable),
        other => {
            report.error(
                path,
                Some(v.pos),
                format!(
                    "unknown application type `{other}`: expected `Default` or `RealTimeCapable`"
                ),
            );
            None
        }
    }
}

fn read_warden(report: &mut Report, path: &Path, v: &json::Value) -> Option<WardenSettings> {
    let mut fields = Fields::open(report, path, v)?;
    let memory_limit_kb = fields
        .take("MemoryLimitKB")
        .map(|v| diag::expect_int(report, &path.key("MemoryLimitKB"), v, 64..=4 * 1024 * 1024));
    let watchdog_ms = fields
        .take("WatchdogMs")
        .map(|v| diag::expect_int(report, &path.key("WatchdogMs"), v, 10..=3_600_000));
    fields.finish(report, WARDEN_KEYS);
    Some(WardenSettings {
        memory_limit_kb: memory_limit_kb.map_or(Some(None), |v| v.map(Some))?,
        watchdog_ms: watchdog_ms.map_or(Some(None), |v| v.map(Some))?,
    })
}
