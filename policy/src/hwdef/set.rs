//! A hardware-definition set: a root file and everything it imports (chip -> board -> app
//! abstraction), checked as a whole, and the resolution of manifest references against it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::file::{self, Definition, DefinitionType, HardwareDefinition, Target};
use super::source::HwdefSource;
use crate::diag::{Path, Report};
use crate::ids::{AppManifestValue, PeripheralType};
use crate::json::Pos;
use crate::manifest::PeripheralRef;

/// Bounds on what a set may pull in, checked before each file is read.
#[derive(Clone, Copy, Debug)]
pub struct SetLimits {
    /// Most files in one set.
    pub max_files: usize,
    /// Longest chain of imports from a root.
    pub max_depth: usize,
    /// Largest file, in bytes.
    pub max_file_bytes: usize,
}

impl Default for SetLimits {
    fn default() -> Self {
        SetLimits {
            max_files: 32,
            max_depth: 8,
            max_file_bytes: 512 * 1024,
        }
    }
}

/// Why a set was refused: one report per file that has problems (a report whose source is an
/// import path, for a root that could not be opened).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct HwdefError {
    pub reports: Vec<Report>,
}

impl HwdefError {
    /// Every error in every file, in file order.
    pub fn errors(&self) -> impl Iterator<Item = (&str, &crate::diag::Problem)> {
        self.reports
            .iter()
            .flat_map(|r| r.errors().map(move |p| (r.source.as_str(), p)))
    }
}

impl fmt::Display for HwdefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid hardware definition set")?;
        for report in &self.reports {
            write!(f, "\n{report}")?;
        }
        Ok(())
    }
}

/// A chip-level peripheral: one with an `AppManifestValue`, the bottom of every mapping chain.
#[derive(Clone, Copy, Debug)]
pub struct ChipPeripheral<'a> {
    pub name: &'a str,
    pub kind: PeripheralType,
    /// The value manifests name it by. Chip peripherals that share it (`ISU0` as UART, I2C and
    /// SPI) are alternative functions of one hardware block: at most one is granted at a time.
    pub block: &'a AppManifestValue,
    /// The id of the file that defines it.
    pub file: &'a str,
    pub definition: &'a Definition,
}

/// Where a manifest reference leads.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Resolution {
    /// Every name passed through, from the one requested down to the chip peripheral (just the
    /// chip peripheral for a raw value).
    pub chain: Vec<String>,
    /// The chip peripheral's name.
    pub chip: String,
    pub kind: PeripheralType,
    /// The chip peripheral's `AppManifestValue`: its hardware block.
    pub block: AppManifestValue,
}

/// Why a manifest reference does not resolve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    #[error("`${name}` is not defined in the device's hardware definition{hint}")]
    UnknownName { name: String, hint: String },
    #[error("`${name}` is a {found} peripheral, not {expected}")]
    WrongType {
        name: String,
        expected: PeripheralType,
        found: DefinitionType,
    },
    #[error("no {kind} peripheral of the chip has the value {value}")]
    UnknownValue {
        kind: PeripheralType,
        value: AppManifestValue,
    },
    #[error("`{value}` names a {found} peripheral of the chip, not {expected}")]
    WrongValueType {
        value: AppManifestValue,
        expected: PeripheralType,
        found: PeripheralType,
    },
}

/// A validated hardware-definition set.
#[derive(Clone, Debug)]
pub struct HwdefSet {
    files: Vec<HardwareDefinition>,
    roots: Vec<usize>,
    /// Indices of the files each file imports, directly or not.
    reach: Vec<BTreeSet<usize>>,
    /// Every name, to (file, entry).
    names: BTreeMap<String, (usize, usize)>,
    /// Chip peripherals by (type, value).
    chip_values: BTreeMap<(PeripheralType, AppManifestValue), (usize, usize)>,
}

enum Site {
    Root(String),
    Import { file: usize, path: Path, pos: Pos },
}

struct Entry {
    id: String,
    report: Report,
    def: Option<HardwareDefinition>,
    edges: Vec<usize>,
    /// The file itself or one of its imports could not be loaded.
    broken: bool,
}

struct Loader<'s> {
    source: &'s dyn HwdefSource,
    limits: SetLimits,
    ids: BTreeMap<String, usize>,
    entries: Vec<Entry>,
    root_reports: Vec<Report>,
}

impl Loader<'_> {
    fn site_error(&mut self, site: &Site, message: String) {
        match site {
            Site::Root(path) => {
                let mut report = Report::new(path.clone());
                report.error(&Path::root(), None, message);
                self.root_reports.push(report);
            }
            Site::Import { file, path, pos } => {
                if let Some(entry) = self.entries.get_mut(*file) {
                    entry.report.error(path, Some(*pos), message);
                    entry.broken = true;
                }
            }
        }
    }

    fn visit(
        &mut self,
        from: Option<&str>,
        path: &str,
        stack: &mut Vec<usize>,
        site: Site,
    ) -> Option<usize> {
        if stack.len() >= self.limits.max_depth {
            self.site_error(
                &site,
                format!(
                    "importing `{path}` nests imports deeper than the limit of {} files",
                    self.limits.max_depth
                ),
            );
            return None;
        }
        let opened = match self.source.open(from, path, self.limits.max_file_bytes) {
            Ok(f) => f,
            Err(e) => {
                self.site_error(&site, format!("missing import: {e}"));
                return None;
            }
        };
        if let Some(&index) = self.ids.get(&opened.id) {
            if let Some(at) = stack.iter().position(|&i| i == index) {
                let mut chain: Vec<&str> = stack
                    .get(at..)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|&i| self.entries.get(i).map(|e| e.id.as_str()))
                    .collect();
                chain.push(&opened.id);
                let message = format!("import cycle: {}", chain.join(" -> "));
                self.site_error(&site, message);
                return None;
            }
            return Some(index);
        }
        if self.entries.len() >= self.limits.max_files {
            self.site_error(
                &site,
                format!(
                    "importing `{path}` makes the set larger than the limit of {} files",
                    self.limits.max_files
                ),
            );
            return None;
        }
        let mut report = Report::new(opened.id.clone());
        let def = file::read(&mut report, &opened.id, &opened.bytes);
        let index = self.entries.len();
        let imports: Vec<(usize, String, Pos)> = def
            .as_ref()
            .map(|d| {
                d.imports
                    .iter()
                    .enumerate()
                    .map(|(i, imp)| (i, imp.path.clone(), imp.pos))
                    .collect()
            })
            .unwrap_or_default();
        let broken = def.is_none() || report.has_errors();
        self.entries.push(Entry {
            id: opened.id.clone(),
            report,
            broken,
            def,
            edges: Vec::new(),
        });
        self.ids.insert(opened.id.clone(), index);
        stack.push(index);
        for (i, import_path, pos) in imports {
            let site = Site::Import {
                file: index,
                path: Path::root().key("Imports").index(i).key("Path"),
                pos,
            };
            if let Some(child) = self.visit(Some(&opened.id), &import_path, stack, site)
                && let Some(entry) = self.entries.get_mut(index)
            {
                entry.edges.push(child);
            }
        }
        stack.pop();
        Some(index)
    }
}

/// Files reachable from `start` through `edges` (not counting `start` itself).
fn reachable(edges: &[Vec<usize>], start: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<usize> = edges.get(start).cloned().unwrap_or_default();
    while let Some(next) = todo.pop() {
        if next != start && seen.insert(next) {
            todo.extend(edges.get(next).into_iter().flatten().copied());
        }
    }
    seen
}

/// Imports before importers; ties in load order.
fn bottom_up(edges: &[Vec<usize>]) -> Vec<usize> {
    fn walk(i: usize, edges: &[Vec<usize>], seen: &mut Vec<bool>, out: &mut Vec<usize>) {
        match seen.get_mut(i) {
            Some(s) if !*s => *s = true,
            _ => return,
        }
        for &child in edges.get(i).into_iter().flatten() {
            walk(child, edges, seen, out);
        }
        out.push(i);
    }
    let mut seen = vec![false; edges.len()];
    let mut out = Vec::with_capacity(edges.len());
    for i in 0..edges.len() {
        walk(i, edges, &mut seen, &mut out);
    }
    out
}

pub(crate) use crate::diag::closest;

impl HwdefSet {
    /// Loads `roots` (paths as `from` would import them; `from: None` for paths given by the
    /// caller) and everything they import, and checks the whole set. Every problem in every file
    /// is reported at once.
    pub fn load(
        source: &dyn HwdefSource,
        from: Option<&str>,
        roots: &[&str],
        limits: SetLimits,
    ) -> Result<HwdefSet, HwdefError> {
        let mut loader = Loader {
            source,
            limits,
            ids: BTreeMap::new(),
            entries: Vec::new(),
            root_reports: Vec::new(),
        };
        let mut root_indices = Vec::new();
        for root in roots {
            let mut stack = Vec::new();
            if let Some(i) = loader.visit(from, root, &mut stack, Site::Root((*root).to_owned())) {
                root_indices.push(i);
            }
        }
        let Loader {
            mut entries,
            root_reports,
            ..
        } = loader;
        let edges: Vec<Vec<usize>> = entries.iter().map(|e| e.edges.clone()).collect();
        let reach: Vec<BTreeSet<usize>> =
            (0..entries.len()).map(|i| reachable(&edges, i)).collect();
        let order = bottom_up(&edges);

        let mut names: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut chip_values: BTreeMap<(PeripheralType, AppManifestValue), (usize, usize)> =
            BTreeMap::new();
        let mut problems: Vec<(usize, String, Pos, String)> = Vec::new();
        let def_of = |entries: &[Entry], f: usize, d: usize| -> Option<(String, Definition)> {
            let entry = entries.get(f)?;
            let def = entry.def.as_ref()?.peripherals.get(d)?;
            Some((entry.id.clone(), def.clone()))
        };

        // Names are unique across the set; the lower layer keeps the name, the file that
        // redefines it is told.
        for &f in &order {
            let Some(def) = entries.get(f).and_then(|e| e.def.as_ref()) else {
                continue;
            };
            for (d, p) in def.peripherals.iter().enumerate() {
                if let Some(&(g, e)) = names.get(&p.name) {
                    if let Some((other_id, other)) = def_of(&entries, g, e) {
                        problems.push((
                            f,
                            format!("{}.Name", p.path),
                            p.name_pos,
                            format!(
                                "peripheral `{}` is already defined in `{other_id}` at {}",
                                p.name, other.name_pos
                            ),
                        ));
                    }
                    continue;
                }
                names.insert(p.name.clone(), (f, d));
                if let (Target::Value(value), DefinitionType::Peripheral(kind)) =
                    (&p.target, p.kind)
                {
                    let key = (kind, value.clone());
                    if let Some(&(g, e)) = chip_values.get(&key) {
                        if let Some((other_id, other)) = def_of(&entries, g, e) {
                            problems.push((
                                f,
                                format!("{}.AppManifestValue", p.path),
                                p.target_pos,
                                format!(
                                    "`{}` and `{}` (`{other_id}` at {}) are both {kind} with \
                                     AppManifestValue {value}: a manifest value must name one \
                                     peripheral",
                                    p.name, other.name, other.name_pos
                                ),
                            ));
                        }
                    } else {
                        chip_values.insert(key, (f, d));
                    }
                }
            }
        }

        // Mappings point into imported files, at a definition of the same type. Files whose
        // imports did not all load are skipped: their targets may be in the missing file.
        for (f, entry) in entries.iter().enumerate() {
            let Some(def) = &entry.def else { continue };
            let closure_broken = entry.broken
                || reach
                    .get(f)
                    .into_iter()
                    .flatten()
                    .any(|&g| entries.get(g).is_none_or(|e| e.broken));
            if closure_broken {
                continue;
            }
            let visible = reach.get(f).cloned().unwrap_or_default();
            for p in &def.peripherals {
                let Target::Mapping(target) = &p.target else {
                    continue;
                };
                let at = format!("{}.Mapping", p.path);
                match names.get(target) {
                    None => {
                        let hint = closest(
                            target,
                            names
                                .iter()
                                .filter(|(_, (g, _))| visible.contains(g))
                                .map(|(n, _)| n.as_str()),
                        )
                        .map(|n| format!("; did you mean `{n}`?"))
                        .unwrap_or_default();
                        let message = if visible.is_empty() {
                            format!(
                                "mapping target `{target}` cannot be found: `{}` imports no files",
                                entry.id
                            )
                        } else {
                            format!(
                                "unknown mapping target `{target}`: not defined in any file `{}` \
                                 imports{hint}",
                                entry.id
                            )
                        };
                        problems.push((f, at, p.target_pos, message));
                    }
                    Some(&(g, e)) => {
                        let Some((other_id, other)) = def_of(&entries, g, e) else {
                            continue;
                        };
                        if g == f {
                            problems.push((
                                f,
                                at,
                                p.target_pos,
                                format!(
                                    "mapping target `{target}` is defined in this same file; a \
                                     mapping points into an imported file"
                                ),
                            ));
                        } else if !visible.contains(&g) {
                            problems.push((
                                f,
                                at,
                                p.target_pos,
                                format!(
                                    "mapping target `{target}` is defined in `{other_id}`, which \
                                     `{}` does not import",
                                    entry.id
                                ),
                            ));
                        } else if other.kind != p.kind {
                            problems.push((
                                f,
                                at,
                                p.target_pos,
                                format!(
                                    "type mismatch: `{}` is {} but maps to `{target}`, which is {} \
                                     (`{other_id}` at {})",
                                    p.name, p.kind, other.kind, other.name_pos
                                ),
                            ));
                        }
                    }
                }
            }
        }

        for (f, path, pos, message) in problems {
            if let Some(entry) = entries.get_mut(f) {
                entry.report.error(&json_path(&path), Some(pos), message);
            }
        }

        let mut reports = root_reports;
        let mut files = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut report = entry.report;
            if !report.problems.is_empty() {
                report.sort();
                reports.push(report);
            }
            if let Some(def) = entry.def {
                files.push(def);
            }
        }
        if reports.iter().any(Report::has_errors) || files.len() != reach.len() {
            return Err(HwdefError { reports });
        }
        Ok(HwdefSet {
            files,
            roots: root_indices,
            reach,
            names,
            chip_values,
        })
    }

    /// Every file of the set, roots first, in load order.
    pub fn files(&self) -> &[HardwareDefinition] {
        &self.files
    }

    /// The files the set was loaded from.
    pub fn roots(&self) -> impl Iterator<Item = &HardwareDefinition> {
        self.roots.iter().filter_map(|&i| self.files.get(i))
    }

    /// The file with this id.
    pub fn file(&self, id: &str) -> Option<&HardwareDefinition> {
        self.files.iter().find(|f| f.id == id)
    }

    /// Whether the file `importer` imports `imported`, directly or through other files.
    pub fn imports(&self, importer: &str, imported: &str) -> bool {
        let index = |id: &str| self.files.iter().position(|f| f.id == id);
        match (index(importer), index(imported)) {
            (Some(a), Some(b)) => self.reach.get(a).is_some_and(|r| r.contains(&b)),
            _ => false,
        }
    }

    /// The file ids `importer` imports, directly or not.
    pub fn imported_by(&self, importer: &str) -> Vec<&str> {
        let Some(a) = self.files.iter().position(|f| f.id == importer) else {
            return Vec::new();
        };
        self.reach
            .get(a)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.files.get(i).map(|f| f.id.as_str()))
            .collect()
    }

    /// The definition of a name, and the id of its file.
    pub fn definition(&self, name: &str) -> Option<(&str, &Definition)> {
        let &(f, d) = self.names.get(name)?;
        let file = self.files.get(f)?;
        Some((file.id.as_str(), file.peripherals.get(d)?))
    }

    /// The chip peripheral with this name.
    pub fn chip(&self, name: &str) -> Option<ChipPeripheral<'_>> {
        let (file, definition) = self.definition(name)?;
        chip_view(file, definition)
    }

    /// Every chip peripheral, by name.
    pub fn chip_peripherals(&self) -> Vec<ChipPeripheral<'_>> {
        self.names
            .keys()
            .filter_map(|name| self.chip(name))
            .collect()
    }

    /// Resolves a manifest reference of capability `kind`.
    pub fn resolve(
        &self,
        kind: PeripheralType,
        reference: &PeripheralRef,
    ) -> Result<Resolution, ResolveError> {
        match reference {
            PeripheralRef::Named(name) => self.resolve_name(kind, name),
            PeripheralRef::Value(value) => self.resolve_value(kind, value),
        }
    }

    /// Resolves `$name`, requested under capability `kind`, down to its chip peripheral.
    pub fn resolve_name(
        &self,
        kind: PeripheralType,
        name: &str,
    ) -> Result<Resolution, ResolveError> {
        let Some((_, mut def)) = self.definition(name) else {
            let hint = closest(name, self.names.keys().map(String::as_str))
                .map(|n| format!("; did you mean `${n}`?"))
                .unwrap_or_default();
            return Err(ResolveError::UnknownName {
                name: name.to_owned(),
                hint,
            });
        };
        if def.kind != DefinitionType::Peripheral(kind) {
            return Err(ResolveError::WrongType {
                name: name.to_owned(),
                expected: kind,
                found: def.kind,
            });
        }
        let mut chain = vec![def.name.clone()];
        // Mappings only point into imported files and imports are acyclic, so a chain is at
        // most as long as the set has files; the bound keeps that true even if that changes.
        for _ in 0..=self.files.len() {
            match &def.target {
                Target::Value(value) => {
                    return Ok(Resolution {
                        chip: def.name.clone(),
                        chain,
                        kind,
                        block: value.clone(),
                    });
                }
                Target::Mapping(next) => {
                    let Some((_, next_def)) = self.definition(next) else {
                        break;
                    };
                    def = next_def;
                    chain.push(def.name.clone());
                }
                Target::Constant => break,
            }
        }
        // Unreachable for a validated set.
        Err(ResolveError::UnknownName {
            name: name.to_owned(),
            hint: String::new(),
        })
    }

    /// Resolves a raw chip value (`8`, `"ISU0"`) requested under capability `kind`.
    pub fn resolve_value(
        &self,
        kind: PeripheralType,
        value: &AppManifestValue,
    ) -> Result<Resolution, ResolveError> {
        if let Some(&(f, d)) = self.chip_values.get(&(kind, value.clone()))
            && let Some(def) = self.files.get(f).and_then(|file| file.peripherals.get(d))
        {
            return Ok(Resolution {
                chain: vec![def.name.clone()],
                chip: def.name.clone(),
                kind,
                block: value.clone(),
            });
        }
        let other = self
            .chip_values
            .keys()
            .find(|(_, v)| v == value)
            .map(|(k, _)| *k);
        Err(match other {
            Some(found) => ResolveError::WrongValueType {
                value: value.clone(),
                expected: kind,
                found,
            },
            None => ResolveError::UnknownValue {
                kind,
                value: value.clone(),
            },
        })
    }
}

fn chip_view<'a>(file: &'a str, definition: &'a Definition) -> Option<ChipPeripheral<'a>> {
    match (&definition.target, definition.kind) {
        (Target::Value(block), DefinitionType::Peripheral(kind)) => Some(ChipPeripheral {
            name: &definition.name,
            kind,
            block,
            file,
            definition,
        }),
        _ => None,
    }
}

/// Rebuilds a [`Path`] from its display form (`Peripherals[3].Mapping`).
fn json_path(text: &str) -> Path {
    let mut path = Path::root();
    for part in text.split('.') {
        let (key, indices) = part
            .split_once('[')
            .map_or((part, ""), |(k, rest)| (k, rest));
        if !key.is_empty() {
            path = path.key(key);
        }
        for index in indices.split('[') {
            if let Ok(n) = index.trim_end_matches(']').parse::<usize>() {
                path = path.index(n);
            }
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_round_trip() {
        for p in ["Peripherals[3].Mapping", "Imports[0].Path", "A[1][2].B", ""] {
            assert_eq!(json_path(p).to_string(), p);
        }
    }

    #[test]
    fn closest_names() {
        let names = ["SAMPLE_LED", "SAMPLE_BUTTON_1"];
        assert_eq!(closest("SAMPLE_LEd", names.into_iter()), Some("SAMPLE_LED"));
        assert_eq!(
            closest("SAMPLE_LEDS", names.into_iter()),
            Some("SAMPLE_LED")
        );
        assert_eq!(closest("OTHER", names.into_iter()), None);
    }
}
