//! `warden hwdef check`: loads and validates a hardware-definition set (or a board file with
//! its set), optionally resolves an app manifest against it, and prints the resolution table
//! (`$SAMPLE_LED -> LED_RED -> SIM_GPIO0 -> sim line 0`) or every problem found.
//!
//! Files are found like the Azure Sphere SDK finds them: an import is looked up in the
//! importing file's directory first, then in each `--search` directory in order.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use warden_policy::board::{Board, MAX_BOARD_BYTES};
use warden_policy::diag::{Problem, Report, Severity};
use warden_policy::hwdef::{HwdefSet, HwdefSource, SetLimits, SourceError, SourceFile};
use warden_policy::install::{self, Device};
use warden_policy::json::{self, Kind, Limits};
use warden_policy::manifest::{MAX_MANIFEST_BYTES, Manifest};

/// `warden hwdef …`
#[derive(Debug, clap::Subcommand)]
pub(crate) enum HwdefCommand {
    /// Validate a hardware-definition set or a board file, optionally resolving a manifest.
    Check(HwdefCheckArgs),
}

/// `warden hwdef check FILE.json [--search DIR]... [--board board.json] [--manifest M] [--json]`
#[derive(Debug, clap::Args)]
pub(crate) struct HwdefCheckArgs {
    /// A hardware-definition file (its imports are followed) or a Warden board file.
    #[arg(value_name = "FILE.json")]
    pub(crate) file: PathBuf,
    /// A directory to search for imports after the importing file's own directory.
    #[arg(long = "search", value_name = "DIR")]
    pub(crate) search: Vec<PathBuf>,
    /// A board file: FILE is then an app abstraction loaded with the board's own set.
    #[arg(long, value_name = "board.json")]
    pub(crate) board: Option<PathBuf>,
    /// An app manifest to resolve against the set (and the board, when there is one).
    #[arg(long, value_name = "app_manifest.json")]
    pub(crate) manifest: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Runs a `warden hwdef` subcommand.
pub(crate) fn run(cmd: &HwdefCommand) -> Result<()> {
    match cmd {
        HwdefCommand::Check(args) => check(args),
    }
}

/// Files from the file system: the importer's directory first, then the search directories.
#[derive(Debug)]
struct DirSource {
    search: Vec<PathBuf>,
}

impl DirSource {
    fn read(path: &Path, max_bytes: usize) -> Result<SourceFile, SourceError> {
        let id = path.display().to_string();
        let unreadable = |e: std::io::Error| SourceError::Unreadable {
            id: id.clone(),
            message: e.to_string(),
        };
        let file = File::open(path).map_err(unreadable)?;
        let size = file.metadata().map_err(unreadable)?.len();
        let limit = u64::try_from(max_bytes).unwrap_or(u64::MAX);
        if size > limit {
            return Err(SourceError::TooLarge {
                id,
                size,
                limit: max_bytes,
            });
        }
        let mut bytes = Vec::new();
        // The file may grow between the check and the read; never read more than the limit.
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
        if bytes.len() > max_bytes {
            return Err(SourceError::TooLarge {
                id,
                size: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                limit: max_bytes,
            });
        }
        Ok(SourceFile { id, bytes })
    }
}

impl HwdefSource for DirSource {
    fn open(
        &self,
        from: Option<&str>,
        path: &str,
        max_bytes: usize,
    ) -> Result<SourceFile, SourceError> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        match from {
            Some(from) => {
                let dir = Path::new(from).parent().unwrap_or(Path::new("."));
                candidates.push(dir.join(path));
                candidates.extend(self.search.iter().map(|d| d.join(path)));
            }
            None => candidates.push(PathBuf::from(path)),
        }
        for candidate in &candidates {
            if candidate.is_file() {
                // One id per file, however it was reached: cycles and shared imports are
                // recognised by it.
                let canonical = candidate
                    .canonicalize()
                    .unwrap_or_else(|_| candidate.clone());
                return Self::read(&canonical, max_bytes);
            }
        }
        Err(SourceError::NotFound {
            path: path.to_owned(),
            searched: candidates.iter().map(|c| c.display().to_string()).collect(),
        })
    }
}

/// One row of the resolution table.
#[derive(Debug, serde::Serialize)]
struct Row {
    capability: String,
    manifest_path: String,
    reference: String,
    chain: Vec<String>,
    chip: String,
    resource: Option<String>,
}

#[derive(Debug, serde::Serialize)]
struct Output {
    ok: bool,
    files: Vec<String>,
    board: Option<String>,
    resolution: Vec<Row>,
    withheld: Vec<String>,
    reports: Vec<Report>,
}

fn is_hwdef(bytes: &[u8]) -> bool {
    let limits = Limits {
        max_bytes: usize::MAX,
        max_depth: 64,
    };
    match json::parse(bytes, limits) {
        Ok(v) => match v.kind {
            Kind::Object(members) => members.iter().any(|m| m.key == "Metadata"),
            _ => true,
        },
        Err(_) => true,
    }
}

/// Runs `warden hwdef check`.
pub(crate) fn check(args: &HwdefCheckArgs) -> Result<()> {
    let source = DirSource {
        search: args.search.clone(),
    };
    let file = args
        .file
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", args.file.display()))?;
    let head = DirSource::read(&args.file, SetLimits::default().max_file_bytes)
        .with_context(|| format!("cannot read {file}"))?;
    let file_is_hwdef = is_hwdef(&head.bytes);

    let mut out = Output {
        ok: true,
        files: Vec::new(),
        board: None,
        resolution: Vec::new(),
        withheld: Vec::new(),
        reports: Vec::new(),
    };

    let board_path = match (&args.board, file_is_hwdef) {
        (Some(board), true) => Some(board.clone()),
        (Some(_), false) => {
            bail!("{file} is a board file; --board goes with a hardware definition")
        }
        (None, true) => None,
        (None, false) => Some(args.file.clone()),
    };

    let loaded: Option<(Option<Board>, HwdefSet)> = match &board_path {
        Some(board_path) => {
            let board_path = board_path
                .to_str()
                .with_context(|| format!("{} is not a UTF-8 path", board_path.display()))?;
            load_board(&source, board_path, file_is_hwdef.then_some(file), &mut out)
                .map(|(b, s)| (Some(b), s))
        }
        None => match HwdefSet::load(&source, None, &[file], SetLimits::default()) {
            Ok(set) => Some((None, set)),
            Err(e) => {
                out.reports.extend(e.reports);
                None
            }
        },
    };

    if let Some((board, set)) = &loaded {
        out.files = set.files().iter().map(|f| f.id.clone()).collect();
        out.board = board.as_ref().map(|b| b.name.clone());
        if let Some(manifest_path) = &args.manifest {
            resolve_manifest(manifest_path, board.as_ref(), set, &mut out)?;
        }
    }
    out.ok = loaded.is_some() && !out.reports.iter().any(Report::has_errors);

    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &out)?;
        writeln!(stdout)?;
    } else {
        write_text(&mut stdout, &out, loaded.as_ref().map(|(_, s)| s))?;
    }
    if !out.ok {
        let errors: usize = out.reports.iter().map(|r| r.errors().count()).sum();
        if !args.json {
            let mut stderr = std::io::stderr().lock();
            for report in &out.reports {
                writeln!(stderr, "{report}")?;
            }
        }
        bail!("{errors} error(s)");
    }
    Ok(())
}

fn load_board(
    source: &DirSource,
    board_path: &str,
    extra_root: Option<&str>,
    out: &mut Output,
) -> Option<(Board, HwdefSet)> {
    let file = match source.open(None, board_path, MAX_BOARD_BYTES) {
        Ok(f) => f,
        Err(e) => {
            let mut report = Report::new(board_path);
            report
                .problems
                .push(problem(Severity::Error, "", e.to_string()));
            out.reports.push(report);
            return None;
        }
    };
    let board = match Board::parse(&file.id, &file.bytes) {
        Ok(b) => b,
        Err(e) => {
            out.reports.extend(e.reports);
            return None;
        }
    };
    // An extra app abstraction is given relative to the working directory, not the board.
    let extra = extra_root.and_then(|p| {
        Path::new(p)
            .canonicalize()
            .ok()
            .map(|c| c.display().to_string())
    });
    let mut roots: Vec<&str> = vec![&board.hardware_definition];
    roots.extend(board.app_abstractions.iter().map(String::as_str));
    roots.extend(extra.as_deref());
    let set = match HwdefSet::load(source, Some(&file.id), &roots, SetLimits::default()) {
        Ok(set) => set,
        Err(e) => {
            out.reports.extend(e.reports);
            return None;
        }
    };
    if let Err(e) = board.check(&set) {
        out.reports.extend(e.reports);
        return None;
    }
    Some((board, set))
}

fn problem(severity: Severity, path: &str, message: String) -> Problem {
    Problem {
        severity,
        path: path.to_owned(),
        line: 0,
        column: 0,
        message,
    }
}

fn resolve_manifest(
    manifest_path: &Path,
    board: Option<&Board>,
    set: &HwdefSet,
    out: &mut Output,
) -> Result<()> {
    let name = manifest_path.display().to_string();
    let bytes = DirSource::read(manifest_path, MAX_MANIFEST_BYTES)
        .with_context(|| format!("cannot read {name}"))?
        .bytes;
    let manifest = match Manifest::parse(&name, &bytes) {
        Ok(m) => m,
        Err(e) => {
            out.reports.push(e.report);
            return Ok(());
        }
    };
    match board {
        Some(board) => {
            let device = Device {
                hwdefs: set,
                board,
                installed: &[],
            };
            match install::resolve(&name, &manifest, &device) {
                Ok(app) => {
                    for g in &app.grants {
                        out.resolution.push(Row {
                            capability: g.capability.to_string(),
                            manifest_path: g.manifest_path.clone(),
                            reference: g.requested.to_string(),
                            chain: g.chain.clone(),
                            chip: g.chip_peripheral.clone(),
                            resource: Some(g.resource.backend.to_string()),
                        });
                    }
                    out.withheld = app.withheld;
                    let mut report = Report::new(name);
                    report.problems = app.warnings;
                    install::locate(&mut report, &bytes);
                    if !report.problems.is_empty() {
                        out.reports.push(report);
                    }
                }
                Err(e) => {
                    let mut report = e.report;
                    install::locate(&mut report, &bytes);
                    out.reports.push(report);
                }
            }
        }
        None => {
            // Without a board, references resolve down to the chip and stop there.
            let mut report = Report::new(name);
            for (kind, refs) in &manifest.capabilities.peripherals {
                for (i, reference) in refs.iter().enumerate() {
                    let path = format!("Capabilities.{kind}[{i}]");
                    match set.resolve(*kind, reference) {
                        Ok(r) => out.resolution.push(Row {
                            capability: kind.to_string(),
                            manifest_path: path,
                            reference: reference.to_string(),
                            chain: r.chain,
                            chip: r.chip,
                            resource: None,
                        }),
                        Err(e) => {
                            report
                                .problems
                                .push(problem(Severity::Error, &path, e.to_string()));
                        }
                    }
                }
            }
            install::locate(&mut report, &bytes);
            if !report.problems.is_empty() {
                out.reports.push(report);
            }
        }
    }
    Ok(())
}

fn write_text(w: &mut impl Write, out: &Output, set: Option<&HwdefSet>) -> Result<()> {
    if let Some(set) = set {
        let chips = set.chip_peripherals().len();
        writeln!(
            w,
            "hardware definition set: {} file(s), {chips} chip peripheral(s)",
            out.files.len()
        )?;
        for file in &out.files {
            writeln!(w, "  {file}")?;
        }
    }
    if let Some(board) = &out.board {
        writeln!(w, "board: {board}")?;
    }
    for row in &out.resolution {
        let mut line = row.reference.clone();
        // A `$NAME` reference's chain starts with that name; a raw value's does not.
        let skip = usize::from(row.reference.starts_with('$'));
        for name in row.chain.iter().skip(skip) {
            line.push_str(" -> ");
            line.push_str(name);
        }
        if let Some(resource) = &row.resource {
            line.push_str(" -> ");
            line.push_str(resource);
        }
        writeln!(w, "{line}")?;
    }
    for key in &out.withheld {
        writeln!(w, "withheld: {key} (the board cannot back it)")?;
    }
    for report in &out.reports {
        for p in report.warnings() {
            writeln!(w, "{}:{p}", report.source)?;
        }
    }
    if out.ok {
        writeln!(w, "ok")?;
    }
    Ok(())
}
