//! Problems found in a document, each with its JSON path and line:column, and the helpers the
//! schema readers use to collect *all* of them in one pass instead of stopping at the first.

use std::fmt;

use crate::json::{Kind, Member, Pos, Value};

/// How bad a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The document is refused.
    Error,
    /// The document is accepted, but something in it deserves the author's attention.
    Warning,
}

/// One problem in a document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// Where in the document, as a JSON path (`Capabilities.Gpio[1]`); empty for the root.
    pub path: String,
    /// Line and column of the offending key or value, when the document has one.
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        write!(f, "{severity}: ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in one document.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// The document's name (usually its file path), prefixed to every line.
    pub source: String,
    pub problems: Vec<Problem>,
}

impl Report {
    pub fn new(source: impl Into<String>) -> Self {
        Report {
            source: source.into(),
            problems: Vec::new(),
        }
    }

    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
    }

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        path: &Path,
        pos: Option<Pos>,
        message: impl Into<String>,
    ) {
        let pos = pos.unwrap_or_default();
        self.problems.push(Problem {
            severity,
            path: path.to_string(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        });
    }

    pub(crate) fn error(&mut self, path: &Path, pos: Option<Pos>, message: impl Into<String>) {
        self.push(Severity::Error, path, pos, message);
    }

    pub(crate) fn warning(&mut self, path: &Path, pos: Option<Pos>, message: impl Into<String>) {
        self.push(Severity::Warning, path, pos, message);
    }

    /// Sorts problems by position, so the report reads top to bottom.
    pub(crate) fn sort(&mut self) {
        self.problems.sort_by_key(|p| (p.line, p.column));
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        let warnings = self.warnings().count();
        write!(
            f,
            "{}: {errors} error(s), {warnings} warning(s)",
            self.source
        )?;
        for p in &self.problems {
            write!(f, "\n  {}:{p}", self.source)?;
        }
        Ok(())
    }
}

/// A JSON path such as `Capabilities.Gpio[1]`, built while descending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn root() -> Self {
        Path(String::new())
    }

    pub fn key(&self, key: &str) -> Self {
        if self.0.is_empty() {
            Path(key.to_owned())
        } else {
            Path(format!("{}.{key}", self.0))
        }
    }

    pub fn index(&self, index: usize) -> Self {
        Path(format!("{}[{index}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The members of one JSON object being read by a schema reader: takes known keys one by one,
/// then reports every key nobody asked for.
#[derive(Debug)]
pub(crate) struct Fields<'v> {
    members: &'v [Member],
    taken: Vec<bool>,
    path: Path,
}

impl<'v> Fields<'v> {
    /// Opens `value` as an object, or reports that it is not one.
    pub(crate) fn open(report: &mut Report, path: &Path, value: &'v Value) -> Option<Self> {
        match &value.kind {
            Kind::Object(members) => Some(Fields {
                members,
                taken: vec![false; members.len()],
                path: path.clone(),
            }),
            other => {
                report.error(
                    path,
                    Some(value.pos),
                    format!("expected an object, found {}", other.type_name()),
                );
                None
            }
        }
    }

    /// Takes an optional key.
    pub(crate) fn take(&mut self, key: &str) -> Option<&'v Value> {
        let index = self.members.iter().position(|m| m.key == key)?;
        if let Some(taken) = self.taken.get_mut(index) {
            *taken = true;
        }
        self.members.get(index).map(|m| &m.value)
    }

    /// Takes a key that must be present, reporting its absence at the object's position.
    pub(crate) fn require(
        &mut self,
        report: &mut Report,
        key: &str,
        object_pos: Pos,
        what: &str,
    ) -> Option<&'v Value> {
        let value = self.take(key);
        if value.is_none() {
            report.error(
                &self.path,
                Some(object_pos),
                format!("missing required key `{key}` ({what})"),
            );
        }
        value
    }

    /// Reports every key that was not taken. `known` lists the keys this object accepts, so a
    /// near miss (wrong case, typo) is answered with the right spelling.
    pub(crate) fn finish(self, report: &mut Report, known: &[&str]) {
        for (member, taken) in self.members.iter().zip(&self.taken) {
            if *taken {
                continue;
            }
            let hint = suggestion(&member.key, known)
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            report.error(
                &self.path.key(&member.key),
                Some(member.key_pos),
                format!("unknown key `{}`{hint}", member.key),
            );
        }
    }
}

/// The known key closest to `key`, for "did you mean" hints.
fn suggestion<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    closest(key, known.iter().copied())
}

/// The candidate closest to `name`: the same letters ignoring case, else the nearest at most
/// two edits away, else one that starts with it (`Wifi` → `WifiConfig`). Shared by every
/// reader's "did you mean" hints.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    let mut prefixed = None;
    for candidate in candidates {
        let folded = candidate.to_ascii_lowercase();
        let d = edit_distance(&folded, &lower);
        if d <= 2 && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, candidate));
        }
        if prefixed.is_none() && lower.len() >= 3 && folded.starts_with(&lower) {
            prefixed = Some(candidate);
        }
    }
    best.map(|(_, c)| c).or(prefixed)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = i;
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let value = (previous + usize::from(ca != *cb))
                .min(left.saturating_add(1))
                .min(above.saturating_add(1));
            previous = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = value;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

/// Reads a string, or reports what was found instead.
pub(crate) fn expect_str<'v>(
    report: &mut Report,
    path: &Path,
    value: &'v Value,
) -> Option<&'v str> {
    match &value.kind {
        Kind::String(s) => Some(s),
        other => {
            report.error(
                path,
                Some(value.pos),
                format!("expected a string, found {}", other.type_name()),
            );
            None
        }
    }
}

/// Reads a boolean, or reports what was found instead.
pub(crate) fn expect_bool(report: &mut Report, path: &Path, value: &Value) -> Option<bool> {
    match &value.kind {
        Kind::Bool(b) => Some(*b),
        other => {
            report.error(
                path,
                Some(value.pos),
                format!("expected `true` or `false`, found {}", other.type_name()),
            );
            None
        }
    }
}

/// Reads an integer within `range`, or reports why it is not one.
pub(crate) fn expect_int(
    report: &mut Report,
    path: &Path,
    value: &Value,
    range: std::ops::RangeInclusive<u64>,
) -> Option<u64> {
    let found = match &value.kind {
        Kind::Number(n) => match n.as_u64() {
            Some(v) if range.contains(&v) => return Some(v),
            _ => n.as_str().to_owned(),
        },
        other => other.type_name().to_owned(),
    };
    report.error(
        path,
        Some(value.pos),
        format!(
            "expected an integer from {} to {}, found {found}",
            range.start(),
            range.end()
        ),
    );
    None
}

/// Reads an array of at most `max` items, or reports why it is not one.
pub(crate) fn expect_array<'v>(
    report: &mut Report,
    path: &Path,
    value: &'v Value,
    max: usize,
) -> Option<&'v [Value]> {
    match &value.kind {
        Kind::Array(items) if items.len() <= max => Some(items),
        Kind::Array(items) => {
            report.error(
                path,
                Some(value.pos),
                format!("too many entries: {} (at most {max})", items.len()),
            );
            None
        }
        other => {
            report.error(
                path,
                Some(value.pos),
                format!("expected an array, found {}", other.type_name()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_case_and_typos() {
        let known = ["Gpio", "Uart", "AllowedConnections"];
        assert_eq!(suggestion("gpio", &known), Some("Gpio"));
        assert_eq!(
            suggestion("AllowedConnection", &known),
            Some("AllowedConnections")
        );
        assert_eq!(suggestion("Bluetooth", &known), None);
        assert_eq!(suggestion("allowed", &known), Some("AllowedConnections"));
    }

    #[test]
    fn paths_read_like_json_paths() {
        let p = Path::root().key("Capabilities").key("Gpio").index(2);
        assert_eq!(p.to_string(), "Capabilities.Gpio[2]");
    }
}
