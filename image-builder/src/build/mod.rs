//! `warden app build [DIR]`: turns an app project in any supported language into the
//! WebAssembly its manifest's `EntryPoint` names.
//!
//! A project is a directory with an `app_manifest.json` (Azure Sphere's schema) and the sources
//! of exactly one language, recognised by one marker file:
//!
//! | language       | marker              | what is built                                            |
//! |----------------|---------------------|----------------------------------------------------------|
//! | Rust           | `Cargo.toml`        | `cargo build --release --target wasm32-wasip2`: a component |
//! | C              | `src/*.c`           | clang + wasi-libc, bindings generated from the WIT, linked by `wasm-component-ld`: a component |
//! | Python         | `app.py`            | componentize-py against the app world: a component       |
//! | JavaScript     | `app.js`            | componentize-js against the app world: a component       |
//! | AssemblyScript | `assembly/index.ts` | asc with the WASI shim: a preview-1 core module          |
//!
//! Every language but Rust takes its tools and generated bindings from the SDK directory
//! ([`Sdk`], written by `cargo xtask sdk`); Rust apps depend on the `warden-sdk` crate
//! (`host-api/sdk/rust`), whose bindings `wit-bindgen` generates from the WIT at compile time.
//! The output is `DIR/build/<file name of EntryPoint>` unless `-o` says otherwise, and it is
//! checked to be what the language produces (a component, or for AssemblyScript a core module)
//! before the command succeeds.

mod assemblyscript;
mod c;
mod javascript;
mod python;
mod rust;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use warden_policy::manifest::{MAX_MANIFEST_BYTES, Manifest};

use crate::{files, output};

/// The languages an app can be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Language {
    Rust,
    C,
    Python,
    #[value(name = "js", alias = "javascript")]
    JavaScript,
    #[value(name = "assemblyscript", alias = "as")]
    AssemblyScript,
}

impl Language {
    /// Every language, in the order markers are looked for.
    pub(crate) const ALL: [Language; 5] = [
        Language::Rust,
        Language::C,
        Language::Python,
        Language::JavaScript,
        Language::AssemblyScript,
    ];

    /// The name users type (`--lang`) and read.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::C => "c",
            Language::Python => "python",
            Language::JavaScript => "js",
            Language::AssemblyScript => "assemblyscript",
        }
    }

    /// The file (relative to the project) whose presence says a project is in this language.
    pub(crate) fn marker(self) -> &'static str {
        match self {
            Language::Rust => "Cargo.toml",
            Language::C => "src/*.c",
            Language::Python => "app.py",
            Language::JavaScript => "app.js",
            Language::AssemblyScript => "assembly/index.ts",
        }
    }

    fn present_in(self, dir: &Path) -> bool {
        match self {
            Language::C => c_sources(dir).is_ok_and(|s| !s.is_empty()),
            other => dir.join(other.marker()).is_file(),
        }
    }

    /// What a build in this language produces.
    pub(crate) fn output_kind(self) -> WasmKind {
        match self {
            Language::AssemblyScript => WasmKind::CoreModule,
            _ => WasmKind::Component,
        }
    }

    /// The files `warden app new` writes for this language: (path relative to the project,
    /// contents). `{{name}}` in a path or contents is replaced by the app's name,
    /// `{{component_id}}` by its new component id, `{{sdk_rust}}` by the absolute path of the
    /// Rust SDK crate. Every template includes its `app_manifest.json`.
    pub(crate) fn template(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Language::Rust => rust::TEMPLATE,
            Language::C => c::TEMPLATE,
            Language::Python => python::TEMPLATE,
            Language::JavaScript => javascript::TEMPLATE,
            Language::AssemblyScript => assemblyscript::TEMPLATE,
        }
    }
}

/// The two kinds of WebAssembly binary an app can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WasmKind {
    Component,
    CoreModule,
}

impl WasmKind {
    /// The 8-byte preamble: `\0asm`, then the version and layer (component: 0x0d, layer 1;
    /// core module: version 1, layer 0).
    fn preamble(self) -> [u8; 8] {
        match self {
            WasmKind::Component => [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00],
            WasmKind::CoreModule => [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
        }
    }

    fn name(self) -> &'static str {
        match self {
            WasmKind::Component => "a WebAssembly component",
            WasmKind::CoreModule => "a WebAssembly core module",
        }
    }
}

/// An app project: its directory, language and manifest.
#[derive(Debug)]
pub(crate) struct Project {
    /// The project directory, absolute.
    pub(crate) dir: PathBuf,
    pub(crate) language: Language,
    pub(crate) manifest: Manifest,
}

impl Project {
    /// Reads `dir/app_manifest.json` and recognises the language by its marker; exactly one
    /// language's marker must be there.
    pub(crate) fn open(dir: &Path) -> Result<Project> {
        let dir = std::fs::canonicalize(dir)
            .with_context(|| format!("app project directory {}", dir.display()))?;
        let manifest_path = dir.join("app_manifest.json");
        if !manifest_path.is_file() {
            bail!(
                "{} is not an app project: it has no app_manifest.json",
                dir.display()
            );
        }
        let text = files::read_text(&manifest_path, MAX_MANIFEST_BYTES, "manifest")?;
        let manifest = Manifest::parse(&manifest_path.display().to_string(), text.as_bytes())?;
        let found: Vec<Language> = Language::ALL
            .into_iter()
            .filter(|l| l.present_in(&dir))
            .collect();
        let language = match found.as_slice() {
            [one] => *one,
            [] => bail!(
                "{} has no app sources: expected one of {}",
                dir.display(),
                Language::ALL
                    .iter()
                    .map(|l| format!("{} ({})", l.marker(), l.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            several => bail!(
                "{} has the sources of several languages ({}): a project is in one",
                dir.display(),
                several
                    .iter()
                    .map(|l| format!("{} for {}", l.marker(), l.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Ok(Project {
            dir,
            language,
            manifest,
        })
    }

    /// The manifest's `Name`, as a file-name-safe word (what Rust's package name and the
    /// default output are derived from).
    pub(crate) fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Where the build goes without `-o`: `DIR/build/<file name of EntryPoint>`.
    pub(crate) fn default_output(&self) -> PathBuf {
        let entry = self.manifest.entry_payload_name();
        let file = Path::new(entry)
            .file_name()
            .map_or_else(|| "app.wasm".into(), |f| f.to_os_string());
        self.dir.join("build").join(file)
    }
}

/// The SDK directory: tools and bindings generated from the WIT world by `cargo xtask sdk`
/// (`target/sdk/` of a Warden checkout).
///
/// ```text
/// wit/                       the app world's complete WIT tree (world warden:app/app)
/// bin/wasm-component-ld      the linker that makes a component of a core module (C)
/// bin/node                   Node.js 20 from the npm registry, only where the machine's
///                            `node` is older (Debian 12 ships 18); taken before `PATH`'s
/// c/                         C bindings of warden:device/app (wit-bindgen's C generator):
///                            warden_device.h, warden_device.c, warden_device_component_type.o
/// python/venv/               componentize-py, pinned
/// python/bindings/           the Python bindings (`wit_world`), for editors and type checkers
/// js/                        package.json, build.mjs and node_modules: componentize-js,
///                            AssemblyScript and its WASI shim, pinned by package-lock.json
/// ```
#[derive(Clone, Debug)]
pub(crate) struct Sdk {
    pub(crate) root: PathBuf,
}

/// The environment variable that names the SDK directory.
pub(crate) const SDK_ENV: &str = "WARDEN_SDK";

impl Sdk {
    /// The SDK named by `explicit`, else by `$WARDEN_SDK`, else the checkout's `target/sdk`
    /// beside this `warden` binary (`target/debug/warden` → `target/sdk`). Made absolute: the
    /// tools run in the project directory, and clang takes a relative `-fuse-ld=` for a
    /// linker's name, not its path.
    pub(crate) fn locate(explicit: Option<&Path>) -> Result<Sdk> {
        let root = match (explicit, std::env::var_os(SDK_ENV)) {
            (Some(dir), _) => dir.to_path_buf(),
            (None, Some(dir)) => PathBuf::from(dir),
            (None, None) => {
                let exe = std::env::current_exe().context("locating the warden binary")?;
                exe.parent()
                    .and_then(Path::parent)
                    .map(|target| target.join("sdk"))
                    .context("the warden binary has no parent directory")?
            }
        };
        let root = std::path::absolute(&root).with_context(|| format!("SDK {}", root.display()))?;
        Ok(Sdk { root })
    }

    /// The directory `what` of the SDK, which must exist: a missing one is an error that says
    /// how to make it.
    pub(crate) fn dir(&self, what: &str) -> Result<PathBuf> {
        let dir = self.root.join(what);
        if !dir.exists() {
            bail!(
                "the SDK has no {what}/ ({} is missing): run `cargo xtask sdk` in the Warden \
                 checkout, or point --sdk or ${SDK_ENV} at an SDK directory",
                dir.display()
            );
        }
        Ok(dir)
    }

    /// The file `path` (relative to the SDK), which must exist: a missing one is an error
    /// naming `what` it is and how to make it.
    pub(crate) fn file(&self, path: &str, what: &str) -> Result<PathBuf> {
        let file = self.root.join(path);
        if !file.exists() {
            bail!(
                "the SDK has no {what} ({} is missing): run `cargo xtask sdk` in the Warden \
                 checkout",
                file.display()
            );
        }
        Ok(file)
    }

    /// The app world's WIT tree.
    pub(crate) fn wit(&self) -> Result<PathBuf> {
        self.dir("wit")
    }

    /// The Warden checkout the SDK belongs to (`<checkout>/target/sdk`).
    pub(crate) fn checkout(&self) -> Result<PathBuf> {
        self.root
            .parent()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .with_context(|| {
                format!(
                    "the SDK directory {} is not the target/sdk of a Warden checkout",
                    self.root.display()
                )
            })
    }

    /// The Rust SDK crate, `host-api/sdk/rust` of the checkout.
    pub(crate) fn rust_crate(&self) -> Result<PathBuf> {
        let krate = self.checkout()?.join("host-api/sdk/rust");
        if !krate.join("Cargo.toml").is_file() {
            bail!(
                "the Rust SDK crate is not at {} (the SDK directory {} should be the \
                 checkout's target/sdk)",
                krate.display(),
                self.root.display()
            );
        }
        Ok(krate)
    }
}

/// Prints each long step as it starts and how long it took, so a developer sees progress.
pub(crate) struct Progress {
    started: Instant,
}

impl Progress {
    pub(crate) fn new() -> Progress {
        Progress {
            started: Instant::now(),
        }
    }

    /// Runs `cmd` as the step `what`: its output goes to the terminal, and a failure names the
    /// step and the command.
    pub(crate) fn run(&mut self, what: &str, cmd: &mut Command) -> Result<()> {
        let step = Instant::now();
        output::line(format!("==> {what}"));
        let status = cmd
            .status()
            .with_context(|| format!("{what}: could not start {}", render(cmd)))?;
        if !status.success() {
            bail!("{what} failed ({status}): {}", render(cmd));
        }
        output::line(format!("    done in {:.1} s", step.elapsed().as_secs_f64()));
        Ok(())
    }

    /// Prints the end of the build.
    pub(crate) fn finish(&self, out: &Path, bytes: u64) {
        output::line(format!(
            "built {} ({} KiB) in {:.1} s",
            out.display(),
            bytes.div_ceil(1024),
            self.started.elapsed().as_secs_f64()
        ));
    }
}

/// A command as a developer would type it.
pub(crate) fn render(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// `program` in a `$PATH` directory, if it is there.
pub(crate) fn on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// The C sources of a project: `src/*.c`, sorted.
pub(crate) fn c_sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let src = dir.join("src");
    if !src.is_dir() {
        return Ok(Vec::new());
    }
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&src).with_context(|| format!("reading {}", src.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "c") {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}

/// `warden app build`: builds the project at `dir` into `out` (default: see
/// [`Project::default_output`]) and returns where it went.
pub(crate) fn build(dir: &Path, out: Option<&Path>, sdk: Option<&Path>) -> Result<PathBuf> {
    let project = Project::open(dir)?;
    if project.manifest.application_type
        == warden_policy::manifest::ApplicationType::RealTimeCapable
    {
        bail!(
            "{} is a real-time app (ApplicationType RealTimeCapable): build its firmware with \
             its own toolchain and pack it with `warden rtcore pack`",
            project.dir.display()
        );
    }
    let sdk = Sdk::locate(sdk)?;
    let out = out.map_or_else(|| project.default_output(), Path::to_path_buf);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let out = std::path::absolute(&out).with_context(|| format!("{}", out.display()))?;
    let mut progress = Progress::new();
    output::line(format!(
        "building {} ({}) from {}",
        project.name(),
        project.language.name(),
        project.dir.display()
    ));
    match project.language {
        Language::Rust => rust::build(&project, &sdk, &out, &mut progress)?,
        Language::C => c::build(&project, &sdk, &out, &mut progress)?,
        Language::Python => python::build(&project, &sdk, &out, &mut progress)?,
        Language::JavaScript => javascript::build(&project, &sdk, &out, &mut progress)?,
        Language::AssemblyScript => assemblyscript::build(&project, &sdk, &out, &mut progress)?,
    }
    let bytes = check_output(&out, project.language.output_kind())?;
    progress.finish(&out, bytes);
    Ok(out)
}

/// Fails unless `out` exists and is `kind`; returns its size.
fn check_output(out: &Path, kind: WasmKind) -> Result<u64> {
    let mut preamble = [0u8; 8];
    let mut file = std::fs::File::open(out)
        .with_context(|| format!("the build wrote no {}", out.display()))?;
    std::io::Read::read_exact(&mut file, &mut preamble)
        .with_context(|| format!("{} is too short to be WebAssembly", out.display()))?;
    if preamble != kind.preamble() {
        bail!(
            "{} is not {} (it starts {:02x?})",
            out.display(),
            kind.name(),
            preamble
        );
    }
    Ok(file.metadata()?.len())
}
