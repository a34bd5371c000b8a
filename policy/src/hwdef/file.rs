//! One hardware-definition file, read strictly: Azure Sphere's schema, every problem reported
//! with its JSON path and line:column.

use crate::diag::{self, Fields, Path, Report};
use crate::ids::{AppManifestValue, PeripheralType, is_peripheral_name};
use crate::json::{self, Kind, Limits, Pos, Value};

/// The `Metadata.Type` every hardware definition carries.
pub const METADATA_TYPE: &str = "Azure Sphere Hardware Definition";

/// Most `Peripherals` entries accepted in one file (MT3620's own file has about 150).
pub const MAX_PERIPHERALS: usize = 2048;

/// Most `Imports` entries accepted in one file.
pub const MAX_IMPORTS: usize = 16;

/// What a `Peripherals` entry's `Type` says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum DefinitionType {
    /// A peripheral an app manifest can request.
    Peripheral(PeripheralType),
    /// `"int"`: a constant for C headers (an ADC channel, a chip-select); never a capability.
    Int,
}

impl std::fmt::Display for DefinitionType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefinitionType::Peripheral(kind) => write!(f, "{kind}"),
            DefinitionType::Int => f.write_str("int"),
        }
    }
}

/// Where a definition leads.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `Mapping`: another name, defined in a file this one imports.
    Mapping(String),
    /// `AppManifestValue`: a chip-level peripheral, named by this value in manifests.
    Value(AppManifestValue),
    /// An `int` given only by its `MainCoreHeaderValue`.
    Constant,
}

/// One `Peripherals` entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Definition {
    pub name: String,
    pub kind: DefinitionType,
    pub target: Target,
    pub main_core_header_value: Option<String>,
    pub comment: Option<String>,
    /// JSON path of the entry (`Peripherals[3]`).
    pub path: String,
    /// Where the entry's `Name` value is.
    #[serde(skip)]
    pub name_pos: Pos,
    /// Where the `Mapping` or `AppManifestValue` value is (the entry's start for a constant).
    #[serde(skip)]
    pub target_pos: Pos,
}

impl Definition {
    /// True for a chip-level peripheral (one with an `AppManifestValue`).
    pub fn is_chip(&self) -> bool {
        matches!(self.target, Target::Value(_))
    }
}

/// One `Imports` entry.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Import {
    pub path: String,
    /// Where the `Path` value is.
    #[serde(skip)]
    pub pos: Pos,
}

/// One validated hardware-definition file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HardwareDefinition {
    /// The file's id (as its source named it).
    pub id: String,
    /// `Description.Name`.
    pub name: Option<String>,
    /// `Description.MainCoreHeaderFileTopContent`, kept for tools that generate C headers.
    pub header_top: Vec<String>,
    pub imports: Vec<Import>,
    pub peripherals: Vec<Definition>,
}

const TOP_KEYS: &[&str] = &["Metadata", "Description", "Imports", "Peripherals"];
const METADATA_KEYS: &[&str] = &["Type", "Version"];
const DESCRIPTION_KEYS: &[&str] = &["Name", "MainCoreHeaderFileTopContent"];
const IMPORT_KEYS: &[&str] = &["Path"];
const PERIPHERAL_KEYS: &[&str] = &[
    "Name",
    "Type",
    "Mapping",
    "AppManifestValue",
    "MainCoreHeaderValue",
    "Comment",
];

/// Reads one file into `report`. What could be read is returned even when `report` has errors,
/// so a set loader can still follow the imports and report their problems in the same pass;
/// `None` only when the text is not a JSON object.
pub(crate) fn read(report: &mut Report, id: &str, bytes: &[u8]) -> Option<HardwareDefinition> {
    let limits = Limits {
        max_bytes: usize::MAX,
        max_depth: 8,
    };
    let root = match json::parse(bytes, limits) {
        Ok(root) => root,
        Err(e) => {
            report.error(&Path::root(), Some(e.pos), e.message);
            return None;
        }
    };
    let path = Path::root();
    let mut fields = Fields::open(report, &path, &root)?;

    if let Some(v) = fields.require(
        report,
        "Metadata",
        root.pos,
        "the hardware-definition header",
    ) {
        read_metadata(report, &path.key("Metadata"), v);
    }
    let (name, header_top) = match fields.take("Description") {
        Some(v) => read_description(report, &path.key("Description"), v),
        None => (None, Vec::new()),
    };
    let imports = fields
        .take("Imports")
        .map(|v| read_imports(report, &path.key("Imports"), v))
        .unwrap_or_default();
    let peripherals = fields
        .require(report, "Peripherals", root.pos, "the list of peripherals")
        .map(|v| read_peripherals(report, &path.key("Peripherals"), v))
        .unwrap_or_default();
    fields.finish(report, TOP_KEYS);

    Some(HardwareDefinition {
        id: id.to_owned(),
        name,
        header_top,
        imports,
        peripherals,
    })
}

fn read_metadata(report: &mut Report, path: &Path, v: &Value) {
    let Some(mut fields) = Fields::open(report, path, v) else {
        return;
    };
    if let Some(t) = fields.require(
        report,
        "Type",
        v.pos,
        "must be `Azure Sphere Hardware Definition`",
    ) && let Some(text) = diag::expect_str(report, &path.key("Type"), t)
        && text != METADATA_TYPE
    {
        report.error(
            &path.key("Type"),
            Some(t.pos),
            format!("`{text}` is not a hardware definition: expected `{METADATA_TYPE}`"),
        );
    }
    if let Some(version) = fields.require(report, "Version", v.pos, "must be 1") {
        let p = path.key("Version");
        if let Some(n) = diag::expect_int(report, &p, version, 0..=u64::MAX)
            && n != 1
        {
            report.error(
                &p,
                Some(version.pos),
                format!("unsupported hardware-definition version {n}; this Warden reads version 1"),
            );
        }
    }
    fields.finish(report, METADATA_KEYS);
}

fn read_description(report: &mut Report, path: &Path, v: &Value) -> (Option<String>, Vec<String>) {
    let Some(mut fields) = Fields::open(report, path, v) else {
        return (None, Vec::new());
    };
    let name = fields
        .take("Name")
        .and_then(|n| diag::expect_str(report, &path.key("Name"), n))
        .map(str::to_owned);
    let mut lines = Vec::new();
    if let Some(content) = fields.take("MainCoreHeaderFileTopContent") {
        let p = path.key("MainCoreHeaderFileTopContent");
        if let Some(items) = diag::expect_array(report, &p, content, 256) {
            for (i, item) in items.iter().enumerate() {
                if let Some(line) = diag::expect_str(report, &p.index(i), item) {
                    lines.push(line.to_owned());
                }
            }
        }
    }
    fields.finish(report, DESCRIPTION_KEYS);
    (name, lines)
}

fn read_imports(report: &mut Report, path: &Path, v: &Value) -> Vec<Import> {
    let Some(items) = diag::expect_array(report, path, v, MAX_IMPORTS) else {
        return Vec::new();
    };
    let mut imports: Vec<Import> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(mut fields) = Fields::open(report, &p, item) else {
            continue;
        };
        if let Some(value) = fields.require(report, "Path", item.pos, "the imported file")
            && let Some(text) = diag::expect_str(report, &p.key("Path"), value)
        {
            if let Err(why) = check_import_path(text) {
                report.error(&p.key("Path"), Some(value.pos), why);
            } else if let Some(first) = imports.iter().find(|i| i.path == text) {
                report.error(
                    &p.key("Path"),
                    Some(value.pos),
                    format!("`{text}` is imported twice (first at {})", first.pos),
                );
            } else {
                imports.push(Import {
                    path: text.to_owned(),
                    pos: value.pos,
                });
            }
        }
        fields.finish(report, IMPORT_KEYS);
    }
    imports
}

/// An import path is relative, `/`-separated, of ordinary file-name characters, and names a
/// `.json` file. Absolute paths would make a definition set depend on one machine's layout.
pub(crate) fn check_import_path(text: &str) -> Result<(), String> {
    if text.is_empty() || text.len() > 256 {
        return Err(format!(
            "`{text}` is not an import path: expected 1 to 256 characters"
        ));
    }
    if text.starts_with('/') || text.contains('\\') || text.contains(':') {
        return Err(format!(
            "`{text}` is not a relative path: write `/`-separated segments relative to this file \
             or to a search directory"
        ));
    }
    let clean = text.split('/').all(|segment| {
        !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    });
    if !clean {
        return Err(format!(
            "`{text}` is not an import path: segments are letters, digits, `.`, `_` and `-`"
        ));
    }
    if !text.ends_with(".json") {
        return Err(format!("`{text}` does not name a `.json` file"));
    }
    Ok(())
}

fn read_peripherals(report: &mut Report, path: &Path, v: &Value) -> Vec<Definition> {
    let Some(items) = diag::expect_array(report, path, v, MAX_PERIPHERALS) else {
        return Vec::new();
    };
    let mut out: Vec<Definition> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = path.index(i);
        let Some(def) = read_definition(report, &p, item) else {
            continue;
        };
        if let Some(first) = out.iter().find(|d| d.name == def.name) {
            report.error(
                &p.key("Name"),
                Some(def.name_pos),
                format!(
                    "duplicate peripheral name `{}` (first defined at {})",
                    def.name, first.name_pos
                ),
            );
            continue;
        }
        out.push(def);
    }
    out
}

fn read_type(report: &mut Report, path: &Path, v: &Value) -> Option<DefinitionType> {
    let text = diag::expect_str(report, path, v)?;
    if text == "int" {
        return Some(DefinitionType::Int);
    }
    if let Some(kind) = PeripheralType::from_name(text) {
        return Some(DefinitionType::Peripheral(kind));
    }
    let hint = PeripheralType::ALL
        .into_iter()
        .map(PeripheralType::name)
        .chain(["int"])
        .find(|k| k.eq_ignore_ascii_case(text))
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    report.error(
        path,
        Some(v.pos),
        format!(
            "unknown peripheral type `{text}`: expected Gpio, Uart, I2cMaster, SpiMaster, Adc, \
             Pwm, I2sSubordinate, ExternalInterrupt or int{hint}"
        ),
    );
    None
}

fn read_value(
    report: &mut Report,
    path: &Path,
    v: &Value,
    kind: Option<DefinitionType>,
) -> Option<AppManifestValue> {
    match (&v.kind, kind) {
        (_, Some(DefinitionType::Int)) => {
            report.error(
                path,
                Some(v.pos),
                "an `int` is a header constant, not a peripheral: it has no AppManifestValue",
            );
            None
        }
        (Kind::Number(_), Some(DefinitionType::Peripheral(PeripheralType::Gpio)) | None) => {
            diag::expect_int(report, path, v, 0..=u64::from(u16::MAX)).map(AppManifestValue::Number)
        }
        (Kind::Number(n), Some(DefinitionType::Peripheral(kind))) => {
            report.error(
                path,
                Some(v.pos),
                format!(
                    "a {kind} peripheral's AppManifestValue is a string such as `ISU0`, found the \
                     number {}",
                    n.as_str()
                ),
            );
            None
        }
        (Kind::String(s), Some(DefinitionType::Peripheral(PeripheralType::Gpio))) => {
            report.error(
                path,
                Some(v.pos),
                format!("a Gpio's AppManifestValue is its number, found the string `{s}`"),
            );
            None
        }
        (Kind::String(s), _) => {
            let valid = !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if valid {
                Some(AppManifestValue::Text(s.clone()))
            } else {
                report.error(
                    path,
                    Some(v.pos),
                    format!(
                        "`{s}` is not an AppManifestValue: expected 1 to 64 letters, digits, `-` \
                         and `_`, as manifests write them"
                    ),
                );
                None
            }
        }
        (other, _) => {
            report.error(
                path,
                Some(v.pos),
                format!("expected a number or a string, found {}", other.type_name()),
            );
            None
        }
    }
}

fn read_definition(report: &mut Report, p: &Path, item: &Value) -> Option<Definition> {
    let mut fields = Fields::open(report, p, item)?;
    let before = report.errors().count();

    let name = fields
        .require(report, "Name", item.pos, "the peripheral's name")
        .and_then(|v| {
            let text = diag::expect_str(report, &p.key("Name"), v)?;
            if is_peripheral_name(text) {
                Some((text.to_owned(), v.pos))
            } else {
                report.error(
                    &p.key("Name"),
                    Some(v.pos),
                    format!(
                        "`{text}` is not a peripheral name: expected letters, digits and `_`, not \
                         starting with a digit, at most 64 characters"
                    ),
                );
                None
            }
        });
    let kind = fields
        .require(report, "Type", item.pos, "e.g. `Gpio`")
        .and_then(|v| read_type(report, &p.key("Type"), v));
    let mapping = fields.take("Mapping").and_then(|v| {
        let text = diag::expect_str(report, &p.key("Mapping"), v)?;
        if is_peripheral_name(text) {
            Some((text.to_owned(), v.pos))
        } else {
            report.error(
                &p.key("Mapping"),
                Some(v.pos),
                format!("`{text}` is not a peripheral name to map to"),
            );
            None
        }
    });
    let value_raw = fields.take("AppManifestValue");
    let value = value_raw.and_then(|v| read_value(report, &p.key("AppManifestValue"), v, kind));
    let header = fields
        .take("MainCoreHeaderValue")
        .and_then(|v| diag::expect_str(report, &p.key("MainCoreHeaderValue"), v))
        .map(str::to_owned);
    let comment = fields
        .take("Comment")
        .and_then(|v| diag::expect_str(report, &p.key("Comment"), v))
        .map(str::to_owned);
    fields.finish(report, PERIPHERAL_KEYS);

    let target = match (mapping, value_raw, value, kind) {
        (Some(_), Some(raw), _, _) => {
            report.error(
                &p.key("AppManifestValue"),
                Some(raw.pos),
                "has both `Mapping` and `AppManifestValue`: an entry either maps to a peripheral \
                 of an imported file or is a chip peripheral, not both",
            );
            None
        }
        (Some((target, pos)), None, _, _) => Some((Target::Mapping(target), pos)),
        (None, Some(raw), Some(value), _) => Some((Target::Value(value), raw.pos)),
        (None, Some(_), None, _) => None,
        (None, None, _, Some(DefinitionType::Int)) if header.is_some() => {
            Some((Target::Constant, item.pos))
        }
        (None, None, _, Some(DefinitionType::Int)) => {
            report.error(
                p,
                Some(item.pos),
                "an `int` needs a `Mapping` or a `MainCoreHeaderValue`",
            );
            None
        }
        (None, None, _, _) => {
            report.error(
                p,
                Some(item.pos),
                "needs `Mapping` (a peripheral of an imported file) or `AppManifestValue` (a chip \
                 peripheral)",
            );
            None
        }
    };
    if report.errors().count() != before {
        return None;
    }
    let (name, name_pos) = name?;
    let (target, target_pos) = target?;
    Some(Definition {
        name,
        kind: kind?,
        target,
        main_core_header_value: header,
        comment,
        path: p.to_string(),
        name_pos,
        target_pos,
    })
}
