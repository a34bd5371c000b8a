//! Warden's board file: what a device's board backs. It names the board-level hardware
//! definition it implements, says which device services and capability kinds the board can
//! back, sets the defaults apps run with, lists the real-time cores, and maps every chip
//! peripheral it offers to a Linux resource (a GPIO line, a tty, an i2c-dev bus …), a simulated
//! one, or the real-time core alone. Read as strictly as manifests; see
//! `docs/formats/board.md`.

mod backend;

use std::collections::BTreeMap;
use std::fmt;

pub use backend::{
    BACKEND_KEYS, Backend, FlowControl, Level, Parity, SIM_I2C_MODELS, SIM_I2S_RATES,
    SIM_SPI_MODELS, STANDARD_BAUD_RATES, SerialSettings, SimI2cDevice, SimSpiDevice, fits_key,
    fitting_keys, is_device_path,
};

use crate::diag::{self, Fields, Path, Report};
use crate::hwdef::{HwdefSet, HwdefSource, SetLimits, closest};
use crate::ids::PeripheralType;
use crate::json::{self, Limits, Pos, Value};
use crate::manifest::{CAPABILITY_KEYS, MAX_STORAGE_KB};

/// The one board-file schema version.
pub const SCHEMA_VERSION: u64 = 1;

/// Largest accepted board file.
pub const MAX_BOARD_BYTES: usize = 256 * 1024;

/// Most `Resources` entries in one board file.
pub const MAX_RESOURCES: usize = 1024;

/// The manifest capability keys a board says it can or cannot back in `Services`: every
/// capability key except the peripheral lists, which `Resources` backs one by one.
pub fn service_keys() -> impl Iterator<Item = &'static str> {
    CAPABILITY_KEYS
        .iter()
        .copied()
        .filter(|k| PeripheralType::from_name(k).is_none())
}

/// What to do with an app asking for a capability the board cannot back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum UnsupportedPolicy {
    /// Install the app without that capability, with a warning.
    Warn,
    /// Refuse the app.
    Refuse,
}

/// What apps run with when their manifest does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Defaults {
    pub memory_limit_kb: u64,
    pub watchdog_ms: u64,
    /// Largest `MutableStorage.SizeKB` an app may ask for on this board.
    pub max_storage_kb: u64,
}

/// How a real-time core is provided.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum CoreBacking {
    /// A Linux remoteproc instance (`/sys/class/remoteproc/remoteprocN`).
    Remoteproc(String),
    /// An emulated core (a QEMU machine such as `mps2-an386`).
    Emulated { machine: String },
}

/// One real-time core.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RealTimeCore {
    pub name: String,
    pub backing: CoreBacking,
    /// Where its firmware may be loaded, as the core sees its address space: every loadable
    /// segment of a real-time app's ELF must lie within one region (`Memory`, 1 to 8 regions,
    /// not overlapping).
    pub memory: Vec<MemoryRegion>,
    /// What the supervisor does when the core's firmware crashes (`Restart`).
    pub restart: CoreRestart,
}

/// The board's restart policy for a real-time core (`RealTimeCores[].Restart`): an OEM knows
/// whether its firmware may simply be restarted after a crash or must stay down for someone to
/// look. Absent values are the supervisor's defaults (the policy every app has).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CoreRestart {
    pub on_crash: OnCrash,
    /// Wait before the first restart, in ms; doubled after each further consecutive crash.
    pub initial_backoff_ms: Option<u64>,
    /// The longest wait between restarts, in ms.
    pub max_backoff_ms: Option<u64>,
    /// This many crashes within `within_s` stop the restarts (quarantine).
    pub quarantine_after: Option<u32>,
    pub within_s: Option<u64>,
}

/// What a firmware crash leads to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum OnCrash {
    /// A failure report, and a restart after the backoff (the default).
    #[default]
    Restart,
    /// A failure report, and the core stays stopped until the firmware is started explicitly.
    Stop,
}

/// A range of a real-time core's address space that firmware may be loaded into.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MemoryRegion {
    /// For messages (`TCM`, `SRAM`).
    pub name: String,
    pub origin: u32,
    /// In bytes; `origin + size` does not pass 2^32.
    pub size: u64,
}

impl MemoryRegion {
    /// Whether `[address, address + size)` lies within this region.
    pub fn contains(&self, address: u64, size: u64) -> bool {
        let start = u64::from(self.origin);
        address >= start && address.saturating_add(size) <= start + self.size
    }
}

/// Most memory regions one core lists.
pub const MAX_CORE_REGIONS: usize = 8;

/// One `Resources` entry: what backs one chip peripheral.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Resource {
    /// The chip peripheral's name (`MT3620_GPIO8`).
    pub peripheral: String,
    pub backend: Backend,
    /// Physical pins the resource uses (`"H2-1"`); two resources never share one unless
    /// they are alternative functions of one block.
    pub pins: Vec<String>,
    pub comment: Option<String>,
    /// JSON path of the entry (`Resources[3]`).
    #[serde(skip)]
    pub path: String,
    #[serde(skip)]
    pub peripheral_pos: Pos,
    /// Where the backend key is.
    #[serde(skip)]
    pub backend_pos: Pos,
    #[serde(skip)]
    pub pin_pos: Vec<Pos>,
}

/// A validated board file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Board {
    /// The file's id, as its source named it.
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Path (relative to the board file) of the board-level hardware definition.
    pub hardware_definition: String,
    /// Paths of app-abstraction hardware definitions (e.g. `sample_appliance.json`) loaded with
    /// it, so apps written against them resolve on this board.
    pub app_abstractions: Vec<String>,
    /// `Services`: each capability key the board file lists, and whether it can back it.
    pub services: BTreeMap<String, bool>,
    pub unsupported: UnsupportedPolicy,
    pub defaults: Defaults,
    pub real_time_cores: Vec<RealTimeCore>,
    pub resources: Vec<Resource>,
    #[serde(skip)]
    hardware_definition_pos: Pos,
    #[serde(skip)]
    abstraction_pos: Vec<Pos>,
}

/// Why a board (or its hardware-definition set) was refused: one report per file with problems.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct BoardError {
    pub reports: Vec<Report>,
}

impl BoardError {
    /// Every error in every file.
    pub fn errors(&self) -> impl Iterator<Item = (&str, &diag::Problem)> {
        self.reports
            .iter()
            .flat_map(|r| r.errors().map(move |p| (r.source.as_str(), p)))
    }
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid board")?;
        for report in &self.reports {
            write!(f, "\n{report}")?;
        }
        Ok(())
    }
}

const TOP_KEYS: &[&str] = &[
    "SchemaVersion",
    "Name",
    "Description",
    "HardwareDefinition",
    "AppAbstractions",
    "Services",
    "UnsupportedCapabilities",
    "Defaults",
    "RealTimeCores",
    "Resources",
];
const DEFAULTS_KEYS: &[&str] = &["MemoryLimitKB", "WatchdogMs", "MaxStorageKB"];
const CORE_KEYS: &[&str] = &["Name", "Remoteproc", "Emulated", "Memory", "Restart"];
const RESTART_KEYS: &[&str] = &[
    "OnCrash",
    "InitialBackoffMs",
    "MaxBackoffMs",
    "QuarantineAfter",
    "WithinS",
];
const REGION_KEYS: &[&str] = &["Name", "Origin", "SizeKB"];
const EMULATED_KEYS: &[&str] = &["Machine"];

impl Board {
    /// Reads and validates a board file on its own (its hardware definition is checked by
    /// [`Board::check`] or [`Board::load`]).
    pub fn parse(source: &str, bytes: &[u8]) -> Result<Board, BoardError> {
        let mut report = Report::new(source);
        let limits = Limits {
            max_bytes: MAX_BOARD_BYTES,
            max_depth: 8,
        };
        let board = match json::parse(bytes, limits) {
            Ok(root) => read_board(&mut report, source, &root),
            Err(e) => {
                report.error(&Path::root(), Some(e.pos), e.message);
                None
            }
        };
        report.sort();
        match board {
            Some(board) if !report.has_errors() => Ok(board),
            _ => Err(BoardError {
                reports: vec![report],
            }),
        }
    }

    /// Opens the board file `path` through `source`, then its hardware definition and app
    /// abstractions (relative to the board file), and checks the board against them.
    pub fn load(
        source: &dyn HwdefSource,
        path: &str,
        limits: SetLimits,
    ) -> Result<(Board, HwdefSet), BoardError> {
        let file = source.open(None, path, MAX_BOARD_BYTES).map_err(|e| {
            let mut report = Report::new(path);
            report.error(&Path::root(), None, e.to_string());
            BoardError {
                reports: vec![report],
            }
        })?;
        let board = Board::parse(&file.id, &file.bytes)?;
        let mut roots: Vec<&str> = vec![&board.hardware_definition];
        roots.extend(board.app_abstractions.iter().map(String::as_str));
        let set = HwdefSet::load(source, Some(&file.id), &roots, limits)
            .map_err(|e| BoardError { reports: e.reports })?;
        board.check(&set)?;
        Ok((board, set))
    }

    /// Whether the board can back capability `key` (a [`service_keys`] entry).
    pub fn backs(&self, key: &str) -> bool {
        self.services.get(key).copied().unwrap_or(false)
    }

    /// The resource backing chip peripheral `chip`.
    pub fn resource(&self, chip: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.peripheral == chip)
    }

    /// Checks the board against its hardware-definition set: the set's first root is the
    /// board-level definition, the others are app abstractions that must import it.
    pub fn check(&self, set: &HwdefSet) -> Result<(), BoardError> {
        let mut report = Report::new(self.id.clone());
        let root = Path::root();
        let board_hwdef = set.roots().next().map(|f| f.id.clone()).unwrap_or_default();
        for (i, abstraction) in set.roots().skip(1).enumerate() {
            if !set.imports(&abstraction.id, &board_hwdef) {
                report.error(
                    &root.key("AppAbstractions").index(i),
                    self.abstraction_pos.get(i).copied(),
                    format!(
                        "`{}` does not import `{board_hwdef}`: an app abstraction maps names onto \
                         this board's definition",
                        abstraction.id
                    ),
                );
            }
        }
        let in_board_layer = |file: &str| file == board_hwdef || set.imports(&board_hwdef, file);
        let chips: Vec<&str> = set
            .chip_peripherals()
            .into_iter()
            .filter(|c| in_board_layer(c.file))
            .map(|c| c.name)
            .collect();

        let mut blocks = Vec::with_capacity(self.resources.len());
        for res in &self.resources {
            let p = json_path_of(&res.path);
            let chip = set.chip(&res.peripheral).filter(|c| in_board_layer(c.file));
            blocks.push(chip.map(|c| c.block.clone()));
            let Some(chip) = chip else {
                let message = match set.definition(&res.peripheral) {
                    Some((file, def)) if !def.is_chip() => format!(
                        "`{}` ({file}) is not a chip peripheral: resources back the chip \
                         peripherals (those with an AppManifestValue) that names map down to",
                        res.peripheral
                    ),
                    _ => {
                        let hint = closest(&res.peripheral, chips.iter().copied())
                            .map(|n| format!("; did you mean `{n}`?"))
                            .unwrap_or_default();
                        format!(
                            "unknown peripheral `{}`: not a chip peripheral of `{board_hwdef}` or \
                             its imports{hint}",
                            res.peripheral
                        )
                    }
                };
                report.error(&p.key("Peripheral"), Some(res.peripheral_pos), message);
                continue;
            };
            if !res.backend.fits(chip.kind) {
                let options: Vec<String> = fitting_keys(chip.kind)
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect();
                report.error(
                    &p.key(res.backend.key()),
                    Some(res.backend_pos),
                    format!(
                        "backend `{}` does not fit `{}`, a {} peripheral: use {}",
                        res.backend.key(),
                        res.peripheral,
                        chip.kind,
                        options.join(", ")
                    ),
                );
            }
        }

        // Two resources on one Linux resource or one pin must be alternative functions of one
        // hardware block (one AppManifestValue); those are then never granted together.
        for (j, res) in self.resources.iter().enumerate() {
            let block = blocks.get(j).cloned().flatten();
            let claims = res.backend.claims();
            for (i, earlier) in self.resources.iter().enumerate().take(j) {
                let earlier_block = blocks.get(i).cloned().flatten();
                let same_block = block.is_some() && block == earlier_block;
                if same_block {
                    continue;
                }
                let earlier_claims = earlier.backend.claims();
                if let Some(shared) = claims.iter().find(|c| earlier_claims.contains(c)) {
                    report.error(
                        &json_path_of(&res.path).key(res.backend.key()),
                        Some(res.backend_pos),
                        format!(
                            "two peripherals on one resource: `{}` and `{}` (at {}) both use \
                             {shared}; only alternative functions of one hardware block may share",
                            res.peripheral, earlier.peripheral, earlier.backend_pos
                        ),
                    );
                }
                for (k, pin) in res.pins.iter().enumerate() {
                    if earlier.pins.contains(pin) {
                        report.error(
                            &json_path_of(&res.path).key("Pins").index(k),
                            res.pin_pos.get(k).copied(),
                            format!(
                                "two peripherals on one pin: `{}` and `{}` (at {}) both use pin \
                                 `{pin}`; only alternative functions of one hardware block may \
                                 share",
                                res.peripheral, earlier.peripheral, earlier.peripheral_pos
                            ),
                        );
                    }
                }
            }
        }
        report.sort();
        if report.has_errors() {
            return Err(BoardError {
                reports: vec![report],
            });
        }
        Ok(())
    }
}

/// Rebuilds a `Resources[i]` path.
fn json_path_of(text: &str) -> Path {
    let index = text
        .strip_prefix("Resources[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Path::root().key("Resources").index(index)
}

fn read_name(report: &mut Report, path: &Path, v: &Value) -> Option<String> {
    let text = diag::expect_str(report, path, v)?;
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Some(text.to_owned())
    } else {
        report.error(
            path,
            Some(v.pos),
            format!("`{text}` is not a name: expected 1 to 64 letters, digits, `.`, `_` and `-`"),
        );
        None
    }
}

fn read_relative(report: &mut Report, path: &Path, v: &Value) -> Option<(String, Pos)> {
    let text = diag::expect_str(report, path, v)?;
    match crate::hwdef::check_import_path(text) {
        Ok(()) => Some((text.to_owned(), v.pos)),
        Err(why) => {
            report.error(path, Some(v.pos), why);
            None
        }
    }
}

fn read_board(report: &mut Report, id: &str, root: &Value) -> Option<Board> {
    let path = Path::root();
    let mut fields = Fields::open(report, &path, root)?;
    let pos = root.pos;
    let before = report.errors().count();

    if let Some(v) = fields.require(report, "SchemaVersion", pos, "must be 1") {
        let p = path.key("SchemaVersion");
        if let Some(n) = diag::expect_int(report, &p, v, 0..=u64::MAX)
            && n != SCHEMA_VERSION
        {
            report.error(
                &p,
                Some(v.pos),
                format!("unsupported schema version {n}; this Warden reads version 1"),
            );
        }
    }
    let name = fields
        .require(report, "Name", pos, "the board's name")
        .and_then(|v| read_name(report, &path.key("Name"), v));
    let description = fields
        .take("Description")
        .and_then(|v| diag::expect_str(report, &path.key("Description"), v))
        .map(str::to_owned);
    let hardware_definition = fields
        .require(
            report,
            "HardwareDefinition",
            pos,
            "the board-level hardware definition, relative to this file",
        )
        .and_then(|v| read_relative(report, &path.key("HardwareDefinition"), v));
    let mut app_abstractions = Vec::new();
    if let Some(v) = fields.take("AppAbstractions") {
        let p = path.key("AppAbstractions");
        if let Some(items) = diag::expect_array(report, &p, v, crate::hwdef::MAX_IMPORTS) {
            for (i, item) in items.iter().enumerate() {
                if let Some(entry) = read_relative(report, &p.index(i), item) {
                    app_abstractions.push(entry);
                }
            }
        }
    }
    let services = fields
        .take("Services")
        .map(|v| read_services(report, &path.key("Services"), v))
        .unwrap_or_default();
    let unsupported = match fields.take("UnsupportedCapabilities") {
        None => Some(UnsupportedPolicy::Refuse),
        Some(v) => {
            let p = path.key("UnsupportedCapabilities");
            match diag::expect_str(report, &p, v) {
                Some("Warn") => Some(UnsupportedPolicy::Warn),
                Some("Refuse") => Some(UnsupportedPolicy::Refuse),
                Some(other) => {
                    report.error(
                        &p,
                        Some(v.pos),
                        format!("unknown policy `{other}`: expected `Warn` or `Refuse`"),
                    );
                    None
                }
                None => None,
            }
        }
    };
    let defaults = fields
        .require(
            report,
            "Defaults",
            pos,
            "memory, watchdog and storage defaults",
        )
        .and_then(|v| read_defaults(report, &path.key("Defaults"), v));
    let real_time_cores = fields
        .take("RealTimeCores")
        .map(|v| read_cores(report, &path.key("RealTimeCores"), v))
        .unwrap_or_default();
    let core_names: Vec<String> = real_time_cores.iter().map(|c| c.name.clone()).collect();
    let resources = fields
        .require(
            report,
            "Resources",
            pos,
            "the chip peripherals this board backs",
        )
        .map(|v| read_resources(report, &path.key("Resources"), v, &core_names))
        .unwrap_or_default();
    fields.finish(report, TOP_KEYS);

    if report.errors().count() != before {
        return None;
    }
    let (hardware_definition, hardware_definition_pos) = hardware_definition?;
    let (app_abstractions, abstraction_pos) = app_abstractions.into_iter().unzip();
    Some(Board {
        id: id.to_owned(),
        name: name?,
        description,
        hardware_definition,
        app_abstractions,
        services,
        unsupported: unsupported?,
        defaults: defaults?,
        real_time_cores,
        resources,
        hardware_definition_pos,
        abstraction_pos,
    })
}

fn read_services(report: &mut Report, path: &Path, v: &Value) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    let json::Kind::Object(members) = &v.kind else {
        report.error(
            path,
            Some(v.pos),
            format!("expected an object, found {}", v.kind.type_name()),
        );
        return out;
    };
    for member in members {
        let p = path.key(&member.key);
        if service_keys().any(|k| k == member.key) {
            if let Some(b) = diag::expect_bool(report, &p, &member.value) {
                out.insert(member.key.clone(), b);
            }
        } else if PeripheralType::from_name(&member.key).is_some() {
            report.error(
                &p,
                Some(member.key_pos),
                format!(
                    "`{}` is a peripheral capability: the board backs peripherals one by one in \
                     `Resources`",
                    member.key
                ),
            );
        } else {
            let hint = closest(&member.key, service_keys())
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            report.error(
                &p,
                Some(member.key_pos),
                format!("unknown capability `{}`{hint}", member.key),
            );
        }
    }
    out
}

fn read_defaults(report: &mut Report, path: &Path, v: &Value) -> Option<Defaults> {
    let mut fields = Fields::open(report, path, v)?;
    let memory = fields
        .require(
            report,
            "MemoryLimitKB",
            v.pos,
            "the default memory limit in KiB",
        )
        .and_then(|m| {
            diag::expect_int(report, &path.key("MemoryLimitKB"), m, 64..=4 * 1024 * 1024)
        });
    let watchdog = fields
        .require(report, "WatchdogMs", v.pos, "the default watchdog in ms")
        .and_then(|m| diag::expect_int(report, &path.key("WatchdogMs"), m, 10..=3_600_000));
    let storage = fields
        .require(
            report,
            "MaxStorageKB",
            v.pos,
            "the largest MutableStorage an app may have",
        )
        .and_then(|m| diag::expect_int(report, &path.key("MaxStorageKB"), m, 0..=MAX_STORAGE_KB));
    fields.finish(report, DEFAULTS_KEYS);
    Some(Defaults {
        memory_limit_kb: memory?,
        watchdog_ms: watchdog?,
        max_storage_kb: storage?,
    })
}

fn is_machine_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
}

fn read_cores(report: &mut Report, path: &Path, v: &Value) -> Vec<RealTimeCore> {
    let Some(items) = diag::expect_array(report, path, v, 8) else {
        return Vec::new();
    };
    let mut cores: Vec<(RealTimeCore, Pos)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(mut fields) = Fields::open(report, &p, item) else {
            continue;
        };
        let name = fields
            .require(report, "Name", item.pos, "the core's name")
            .and_then(|n| read_name(report, &p.key("Name"), n).map(|name| (name, n.pos)));
        let remoteproc = fields.take("Remoteproc");
        let emulated = fields.take("Emulated");
        let backing = match (remoteproc, emulated) {
            (Some(r), None) => diag::expect_str(report, &p.key("Remoteproc"), r).and_then(|text| {
                let ok = text.strip_prefix("remoteproc").is_some_and(|n| {
                    !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit())
                });
                if ok {
                    Some(CoreBacking::Remoteproc(text.to_owned()))
                } else {
                    report.error(
                        &p.key("Remoteproc"),
                        Some(r.pos),
                        format!("`{text}` is not a remoteproc instance: expected `remoteprocN`"),
                    );
                    None
                }
            }),
            (None, Some(e)) => {
                let ep = p.key("Emulated");
                Fields::open(report, &ep, e).and_then(|mut f| {
                    let machine = f
                        .require(
                            report,
                            "Machine",
                            e.pos,
                            "the QEMU machine, e.g. `mps2-an386`",
                        )
                        .and_then(|m| {
                            let text = diag::expect_str(report, &ep.key("Machine"), m)?;
                            if is_machine_name(text) {
                                Some(text.to_owned())
                            } else {
                                report.error(
                                    &ep.key("Machine"),
                                    Some(m.pos),
                                    format!("`{text}` is not a machine name such as `mps2-an386`"),
                                );
                                None
                            }
                        });
                    f.finish(report, EMULATED_KEYS);
                    machine.map(|machine| CoreBacking::Emulated { machine })
                })
            }
            (Some(_), Some(e)) => {
                report.error(
                    &p.key("Emulated"),
                    Some(e.pos),
                    "a core is either `Remoteproc` or `Emulated`, not both",
                );
                None
            }
            (None, None) => {
                report.error(
                    &p,
                    Some(item.pos),
                    "needs `Remoteproc` (e.g. `remoteproc0`) or `Emulated` (e.g. `{\"Machine\": \"mps2-an386\"}`)",
                );
                None
            }
        };
        let memory = fields
            .require(
                report,
                "Memory",
                item.pos,
                "where firmware may be loaded, e.g. `[{\"Name\": \"SRAM\", \"Origin\": \"0x20000000\", \"SizeKB\": 256}]`",
            )
            .and_then(|m| read_regions(report, &p.key("Memory"), m));
        let restart = match fields.take("Restart") {
            Some(r) => read_restart(report, &p.key("Restart"), r),
            None => Some(CoreRestart::default()),
        };
        fields.finish(report, CORE_KEYS);
        let (Some((name, name_pos)), Some(backing), Some(memory), Some(restart)) =
            (name, backing, memory, restart)
        else {
            continue;
        };
        if let Some((_, first)) = cores.iter().find(|(c, _)| c.name == name) {
            report.error(
                &p.key("Name"),
                Some(name_pos),
                format!("duplicate core name `{name}` (first at {first})"),
            );
            continue;
        }
        if let CoreBacking::Remoteproc(instance) = &backing
            && let Some((other, _)) = cores
                .iter()
                .find(|(c, _)| c.backing == CoreBacking::Remoteproc(instance.clone()))
        {
            report.error(
                &p.key("Remoteproc"),
                remoteproc.map(|r| r.pos),
                format!("`{instance}` already backs core `{}`", other.name),
            );
            continue;
        }
        cores.push((
            RealTimeCore {
                name,
                backing,
                memory,
                restart,
            },
            name_pos,
        ));
    }
    cores.into_iter().map(|(c, _)| c).collect()
}

/// A core's `Restart`: `OnCrash` (`Restart` or `Stop`) and, for `Restart`, the backoff and
/// quarantine numbers. `None` if any is wrong (each problem reported).
fn read_restart(report: &mut Report, path: &Path, v: &Value) -> Option<CoreRestart> {
    let mut fields = Fields::open(report, path, v)?;
    let mut ok = true;
    let on_crash = match fields.take("OnCrash") {
        None => Some(OnCrash::Restart),
        Some(o) => match diag::expect_str(report, &path.key("OnCrash"), o) {
            Some("Restart") => Some(OnCrash::Restart),
            Some("Stop") => Some(OnCrash::Stop),
            Some(other) => {
                report.error(
                    &path.key("OnCrash"),
                    Some(o.pos),
                    format!("`{other}` is not `Restart` or `Stop`"),
                );
                None
            }
            None => None,
        },
    };
    let mut int = |key: &str, range: std::ops::RangeInclusive<u64>| match fields.take(key) {
        None => (None, None),
        Some(n) => {
            let value = diag::expect_int(report, &path.key(key), n, range);
            if value.is_none() {
                ok = false;
            }
            (value, Some(n.pos))
        }
    };
    let (initial, initial_pos) = int("InitialBackoffMs", 10..=3_600_000);
    let (max, max_pos) = int("MaxBackoffMs", 10..=86_400_000);
    let (quarantine, quarantine_pos) = int("QuarantineAfter", 1..=1000);
    let (within, within_pos) = int("WithinS", 1..=86_400);
    fields.finish(report, RESTART_KEYS);
    let on_crash = on_crash?;
    if let (Some(initial), Some(max)) = (initial, max)
        && max < initial
    {
        report.error(
            &path.key("MaxBackoffMs"),
            max_pos,
            format!("{max} is less than `InitialBackoffMs` ({initial})"),
        );
        ok = false;
    }
    if on_crash == OnCrash::Stop {
        let set = [
            ("InitialBackoffMs", initial_pos),
            ("MaxBackoffMs", max_pos),
            ("QuarantineAfter", quarantine_pos),
            ("WithinS", within_pos),
        ];
        for (key, pos) in set {
            if let Some(pos) = pos {
                report.error(
                    &path.key(key),
                    Some(pos),
                    "applies only with `\"OnCrash\": \"Restart\"`: a core that stops on a crash is never restarted",
                );
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    Some(CoreRestart {
        on_crash,
        initial_backoff_ms: initial,
        max_backoff_ms: max,
        quarantine_after: quarantine.and_then(|q| u32::try_from(q).ok()),
        within_s: within,
    })
}

/// A core's `Memory`: 1 to 8 regions `{"Name", "Origin": "0x…", "SizeKB"}` inside the 32-bit
/// address space, none overlapping another. `None` if any is wrong (each problem reported).
fn read_regions(report: &mut Report, path: &Path, v: &Value) -> Option<Vec<MemoryRegion>> {
    let items = diag::expect_array(report, path, v, MAX_CORE_REGIONS)?;
    if items.is_empty() {
        report.error(path, Some(v.pos), "a core needs at least one memory region");
        return None;
    }
    let mut regions: Vec<MemoryRegion> = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(mut fields) = Fields::open(report, &p, item) else {
            ok = false;
            continue;
        };
        let name = fields
            .require(report, "Name", item.pos, "the region's name, e.g. `SRAM`")
            .and_then(|n| read_name(report, &p.key("Name"), n));
        let origin = fields
            .require(
                report,
                "Origin",
                item.pos,
                "its first address, e.g. `\"0x20000000\"`",
            )
            .and_then(|o| {
                let text = diag::expect_str(report, &p.key("Origin"), o)?;
                let parsed = text
                    .strip_prefix("0x")
                    .filter(|h| !h.is_empty() && h.len() <= 8)
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                if parsed.is_none() {
                    report.error(
                        &p.key("Origin"),
                        Some(o.pos),
                        format!("`{text}` is not a 32-bit address such as `0x20000000`"),
                    );
                }
                parsed
            });
        let size_kb = fields
            .require(report, "SizeKB", item.pos, "its size in KiB")
            .and_then(|s| diag::expect_int(report, &p.key("SizeKB"), s, 1..=4 * 1024 * 1024));
        fields.finish(report, REGION_KEYS);
        let (Some(name), Some(origin), Some(size_kb)) = (name, origin, size_kb) else {
            ok = false;
            continue;
        };
        let region = MemoryRegion {
            name,
            origin,
            size: size_kb * 1024,
        };
        if u64::from(origin) + region.size > 1 << 32 {
            report.error(
                &p.key("SizeKB"),
                Some(item.pos),
                format!(
                    "region `{}` at {origin:#010x} of {size_kb} KiB passes the end of the 32-bit \
                     address space",
                    region.name
                ),
            );
            ok = false;
            continue;
        }
        if let Some(other) = regions.iter().find(|r| {
            u64::from(r.origin) < u64::from(origin) + region.size
                && u64::from(origin) < u64::from(r.origin) + r.size
        }) {
            report.error(
                &p,
                Some(item.pos),
                format!("region `{}` overlaps region `{}`", region.name, other.name),
            );
            ok = false;
            continue;
        }
        regions.push(region);
    }
    ok.then_some(regions)
}

fn read_resources(report: &mut Report, path: &Path, v: &Value, cores: &[String]) -> Vec<Resource> {
    let Some(items) = diag::expect_array(report, path, v, MAX_RESOURCES) else {
        return Vec::new();
    };
    let mut out: Vec<Resource> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        if let Some(res) = read_resource(report, &p, item, cores) {
            if let Some(first) = out.iter().find(|r| r.peripheral == res.peripheral) {
                report.error(
                    &p.key("Peripheral"),
                    Some(res.peripheral_pos),
                    format!(
                        "`{}` already has a resource (at {})",
                        res.peripheral, first.peripheral_pos
                    ),
                );
                continue;
            }
            out.push(res);
        }
    }
    out
}

fn read_resource(
    report: &mut Report,
    p: &Path,
    item: &Value,
    cores: &[String],
) -> Option<Resource> {
    let json::Kind::Object(members) = &item.kind else {
        report.error(
            p,
            Some(item.pos),
            format!("expected an object, found {}", item.kind.type_name()),
        );
        return None;
    };
    let mut fields = Fields::open(report, p, item)?;
    let before = report.errors().count();
    let peripheral = fields
        .require(
            report,
            "Peripheral",
            item.pos,
            "the chip peripheral it backs",
        )
        .and_then(|v| {
            let text = diag::expect_str(report, &p.key("Peripheral"), v)?;
            if crate::ids::is_peripheral_name(text) {
                Some((text.to_owned(), v.pos))
            } else {
                report.error(
                    &p.key("Peripheral"),
                    Some(v.pos),
                    format!("`{text}` is not a peripheral name"),
                );
                None
            }
        });
    let backend_members: Vec<&json::Member> = members
        .iter()
        .filter(|m| BACKEND_KEYS.contains(&m.key.as_str()))
        .collect();
    let mut backend = None;
    match backend_members.as_slice() {
        [] => report.error(
            p,
            Some(item.pos),
            format!(
                "needs exactly one backend key: one of {}",
                BACKEND_KEYS.join(", ")
            ),
        ),
        [only] => {
            fields.take(&only.key);
            let mut ctx = backend::Ctx { report, cores };
            backend = backend::read(&mut ctx, &only.key, &p.key(&only.key), &only.value)
                .map(|b| (b, only.key_pos));
        }
        [first, rest @ ..] => {
            for extra in rest {
                fields.take(&extra.key);
                report.error(
                    &p.key(&extra.key),
                    Some(extra.key_pos),
                    format!(
                        "a resource has exactly one backend: `{}` and `{}` are both given",
                        first.key, extra.key
                    ),
                );
            }
            fields.take(&first.key);
        }
    }
    let mut pins = Vec::new();
    let mut pin_pos = Vec::new();
    if let Some(v) = fields.take("Pins") {
        let pp = p.key("Pins");
        if let Some(items) = diag::expect_array(report, &pp, v, 64) {
            for (k, pin) in items.iter().enumerate() {
                let Some(text) = diag::expect_str(report, &pp.index(k), pin) else {
                    continue;
                };
                let ok = !text.is_empty()
                    && text.len() <= 32
                    && text
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
                if !ok {
                    report.error(
                        &pp.index(k),
                        Some(pin.pos),
                        format!("`{text}` is not a pin name: expected 1 to 32 letters, digits, `.`, `_` and `-`"),
                    );
                } else if pins.iter().any(|x| x == text) {
                    report.error(
                        &pp.index(k),
                        Some(pin.pos),
                        format!("pin `{text}` is listed twice"),
                    );
                } else {
                    pins.push(text.to_owned());
                    pin_pos.push(pin.pos);
                }
            }
        }
    }
    let comment = fields
        .take("Comment")
        .and_then(|v| diag::expect_str(report, &p.key("Comment"), v))
        .map(str::to_owned);
    let mut known: Vec<&str> = vec!["Peripheral", "Pins", "Comment"];
    known.extend_from_slice(BACKEND_KEYS);
    fields.finish(report, &known);
    if report.errors().count() != before {
        return None;
    }
    let (peripheral, peripheral_pos) = peripheral?;
    let (backend, backend_pos) = backend?;
    Some(Resource {
        peripheral,
        backend,
        pins,
        comment,
        path: p.to_string(),
        peripheral_pos,
        backend_pos,
        pin_pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_keys_are_the_non_peripheral_capability_keys() {
        let keys: Vec<&str> = service_keys().collect();
        assert_eq!(keys.len(), 19);
        for service in [
            "AllowedConnections",
            "MutableStorage",
            "WifiConfig",
            "PowerControls",
        ] {
            assert!(keys.contains(&service), "{service}");
        }
        for peripheral in PeripheralType::ALL {
            assert!(!keys.contains(&peripheral.name()), "{peripheral}");
        }
    }

    #[test]
    fn every_peripheral_type_has_a_linux_a_sim_and_a_real_time_backend() {
        for kind in PeripheralType::ALL {
            let keys = fitting_keys(kind);
            assert_eq!(keys.len(), 3, "{kind}");
            assert!(keys.iter().any(|k| k.starts_with("Sim")), "{kind}");
            assert!(keys.contains(&"RealTimeCoreOnly"), "{kind}");
            for key in keys {
                assert!(BACKEND_KEYS.contains(key), "{key}");
            }
        }
    }
}
