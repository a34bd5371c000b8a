//! `cargo xtask wit [--out DIR]`: the app-facing WIT world as one self-contained tree, for
//! guest SDK generators (wit-bindgen, componentize-py, jco); and, as the library
//! `warden_wit`, the same tree for the worker's world test (`runtime/worker/tests/world.rs`).
//!
//! The repository holds only Warden's own WIT: the world (`host-api/wit-app/`, package
//! `warden:app`) and the device API (`host-api/wit/`, `warden:device`). The WASI 0.2 packages
//! are taken from the sources of the exact `wasmtime-wasi` and `wasmtime-wasi-http` crates the
//! worker is built with (found through `cargo metadata`, so as Cargo.lock has them): the tree
//! always declares the WASI the worker links, and no WASI text is copied into the repository.
//!
//! The tree (default `target/wit/`):
//!
//! ```text
//! app.wit                               host-api/wit-app/  (warden:app, world `app`)
//! deps/warden-device-0.1.0/device.wit   host-api/wit/
//! deps/wasi-cli-0.2.12/cli.wit          wasmtime-wasi: src/p2/wit/deps/   (and clocks,
//! …                                                                      filesystem, io, …)
//! deps/wasi-http-0.2.12/http.wit        wasmtime-wasi-http: wit/deps/
//! README.md                             where each package came from
//! ```
//!
//! It is checked twice with `wit-parser`: from the sources before anything is written (an
//! error names the source file and line), and as written, the way a generator reads it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use wit_parser::{Resolve, UnresolvedPackageGroup, WorldId};

/// The world apps target, in the tree's main package.
pub const WORLD: &str = "app";
/// The world's package directory, relative to the repository root.
pub const WORLD_DIR: &str = "host-api/wit-app";
/// The `warden:device` package directory, relative to the repository root.
pub const DEVICE_DIR: &str = "host-api/wit";
/// Where the tree goes without `--out`, relative to the repository root.
pub const DEFAULT_OUT: &str = "target/wit";

/// The first line of the README written into the tree: a directory that starts with it was
/// written by this command and may be replaced by it; any other is left alone.
const MARK: &str = "# The Warden app world as one WIT tree (written by `cargo xtask wit`)";

/// The crates whose WIT the worker's WASI comes from, and where in each the WIT packages are
/// (the `deps` directory their `bindgen!` reads). Earlier crates win where packages repeat;
/// a repeated package must be the same text.
const WASI_CRATES: [(&str, &str); 2] = [
    ("wasmtime-wasi", "src/p2/wit/deps"),
    ("wasmtime-wasi-http", "wit/deps"),
];

/// `cargo xtask wit [--out DIR]`.
#[allow(clippy::print_stdout)] // a developer tool: its output is the product
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let out = match args {
        [] => root.join(DEFAULT_OUT),
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        _ => bail!("usage: cargo xtask wit [--out DIR]"),
    };
    let sources = Sources::locate(root)?;
    let tree = materialise(&sources, &out)?;
    println!(
        "wrote the WIT tree of world {} to {}",
        tree.world,
        tree.dir.display()
    );
    for package in &tree.packages {
        println!("  {:<22} {}", package.name, package.origin);
    }
    println!(
        "(see {}/README.md and docs/api/world.md)",
        tree.dir.display()
    );
    Ok(())
}

/// Where every package of the tree comes from.
#[derive(Clone, Debug)]
pub struct Sources {
    /// The repository root (origins are printed relative to it).
    pub root: PathBuf,
    /// The world's package directory (`host-api/wit-app`).
    pub world: PathBuf,
    /// The `warden:device` package directory (`host-api/wit`).
    pub device: PathBuf,
    /// The WASI packages: one `deps` directory per crate, in [`WASI_CRATES`] order.
    pub wasi: Vec<CrateWit>,
}

/// The WIT packages one wasmtime crate carries.
#[derive(Clone, Debug)]
pub struct CrateWit {
    /// `wasmtime-wasi 48.0.8`.
    pub krate: String,
    /// Its source directory (where its Cargo.toml is).
    pub dir: PathBuf,
    /// Its `deps` directory: one `*.wit` file or directory per package.
    pub deps: PathBuf,
}

impl Sources {
    /// The sources for the repository at `root`: its own WIT, and the WASI crates the
    /// `warden-worker` package depends on, as `cargo metadata` resolves them from Cargo.lock
    /// (`--locked --offline`: nothing is fetched, and a stale lock is an error; for this host
    /// only, as the crates of other platforms need not be downloaded).
    pub fn locate(root: &Path) -> Result<Sources> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = root.join("Cargo.toml");
        let output = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--locked", "--offline"])
            .args(["--filter-platform", &host_triple(&cargo)?])
            .arg("--manifest-path")
            .arg(&manifest)
            .output()
            .with_context(|| format!("cannot run {} metadata", cargo.to_string_lossy()))?;
        if !output.status.success() {
            bail!(
                "cargo metadata for {} failed ({}); if a crate is missing, run `cargo fetch \
                 --locked` first:\n{}",
                manifest.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let metadata: serde_json::Value =
            serde_json::from_slice(&output.stdout).context("cargo metadata printed no JSON")?;
        let wasi = WASI_CRATES
            .iter()
            .map(|(name, wit)| {
                let (version, dir) = worker_dependency(&metadata, name)?;
                let deps = dir.join(wit);
                if !deps.is_dir() {
                    bail!(
                        "{name} {version} has no WIT directory {}: its layout changed, update \
                         WASI_CRATES in xtask/src/wit.rs",
                        deps.display()
                    );
                }
                Ok(CrateWit {
                    krate: format!("{name} {version}"),
                    dir,
                    deps,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Sources {
            root: root.to_path_buf(),
            world: root.join(WORLD_DIR),
            device: root.join(DEVICE_DIR),
            wasi,
        })
    }
}

/// The build host's target triple, as `cargo -vV` says.
fn host_triple(cargo: &std::ffi::OsStr) -> Result<String> {
    let output = Command::new(cargo)
        .arg("-vV")
        .output()
        .with_context(|| format!("cannot run {} -vV", cargo.to_string_lossy()))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .with_context(|| format!("{} -vV names no host", cargo.to_string_lossy()))
}

/// The version and source directory of `name` as a dependency of `warden-worker`.
fn worker_dependency(metadata: &serde_json::Value, name: &str) -> Result<(String, PathBuf)> {
    let packages = metadata["packages"]
        .as_array()
        .context("cargo metadata: no `packages`")?;
    let package = |id: &str| packages.iter().find(|p| p["id"].as_str() == Some(id));
    let worker = packages
        .iter()
        .find(|p| p["name"] == "warden-worker")
        .and_then(|p| p["id"].as_str())
        .context("cargo metadata: no warden-worker package in the workspace")?;
    let node = metadata["resolve"]["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"].as_str() == Some(worker)))
        .context("cargo metadata: warden-worker is not in `resolve.nodes`")?;
    let found = node["dependencies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|id| package(id.as_str()?))
        .find(|p| p["name"] == name)
        .with_context(|| format!("cargo metadata: warden-worker does not depend on {name}"))?;
    let version = found["version"].as_str().unwrap_or("?").to_owned();
    let manifest = found["manifest_path"]
        .as_str()
        .with_context(|| format!("cargo metadata: {name} has no manifest_path"))?;
    let dir = Path::new(manifest)
        .parent()
        .with_context(|| format!("cargo metadata: {name}'s manifest_path {manifest}"))?;
    Ok((version, dir.to_path_buf()))
}

/// The tree as written.
#[derive(Clone, Debug)]
pub struct Tree {
    /// Its root directory: pass it to a generator (or `Resolve::push_dir`).
    pub dir: PathBuf,
    /// The world, fully qualified (`warden:app/app@0.1.0`).
    pub world: String,
    /// Every package, the world's first.
    pub packages: Vec<WrittenPackage>,
}

/// One package of the tree.
#[derive(Clone, Debug)]
pub struct WrittenPackage {
    /// `wasi:cli@0.2.12`.
    pub name: String,
    /// Where it came from: `host-api/wit/`, `wasmtime-wasi 48.0.8: src/p2/wit/deps/cli.wit`.
    pub origin: String,
    /// Where it is in the tree, relative to its root: `.` or `deps/wasi-cli-0.2.12`.
    pub path: String,
}

/// One package to write: its name, its `*.wit` files, where they came from.
struct Package {
    name: String,
    files: Vec<PathBuf>,
    origin: String,
}

impl Package {
    /// A directory of `*.wit` files (one package).
    fn from_dir(dir: &Path, origin: String) -> Result<(Package, UnresolvedPackageGroup)> {
        let group = UnresolvedPackageGroup::parse_dir(dir)
            .with_context(|| format!("cannot parse the WIT package in {}", dir.display()))?;
        let mut files = wit_files(dir)?;
        files.sort();
        if files.is_empty() {
            bail!("{} holds no *.wit file", dir.display());
        }
        let package = Package {
            name: group.main.name.to_string(),
            files,
            origin,
        };
        Ok((package, group))
    }

    /// The directory name in `deps/`: `wasi-cli-0.2.12`.
    fn dir_name(&self) -> String {
        self.name.replace([':', '@'], "-")
    }
}

/// The `*.wit` files directly in `dir`.
fn wit_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        if path.is_file() && path.extension().is_some_and(|e| e == "wit") {
            files.push(path);
        }
    }
    Ok(files)
}

/// The WASI packages of every crate, deduplicated: each `(package, parsed)` once.
fn wasi_packages(sources: &Sources) -> Result<Vec<(Package, UnresolvedPackageGroup)>> {
    let mut found: BTreeMap<String, (Package, UnresolvedPackageGroup)> = BTreeMap::new();
    for krate in &sources.wasi {
        let mut entries = std::fs::read_dir(&krate.deps)
            .and_then(|d| d.collect::<std::io::Result<Vec<_>>>())
            .with_context(|| format!("cannot read {}", krate.deps.display()))?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let relative = path.strip_prefix(&krate.dir).unwrap_or(&path);
            let origin = format!("{}: {}", krate.krate, relative.display());
            let (package, group) = if path.is_dir() {
                Package::from_dir(&path, origin)?
            } else if path.extension().is_some_and(|e| e == "wit") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let group = UnresolvedPackageGroup::parse(&path, &text).map_err(|(map, e)| {
                    anyhow::anyhow!("{}", e.render(&map))
                        .context(format!("cannot parse {}", path.display()))
                })?;
                let package = Package {
                    name: group.main.name.to_string(),
                    files: vec![path.clone()],
                    origin,
                };
                (package, group)
            } else {
                continue;
            };
            match found.get(&package.name) {
                None => {
                    found.insert(package.name.clone(), (package, group));
                }
                Some((first, _)) => same_text(first, &package)?,
            }
        }
    }
    Ok(found.into_values().collect())
}

/// Fails unless two copies of one package (in two wasmtime crates) are the same text: the
/// worker links both crates' bindings, so they must have been generated from one WIT.
fn same_text(first: &Package, second: &Package) -> Result<()> {
    let read = |p: &Package| -> Result<Vec<Vec<u8>>> {
        p.files
            .iter()
            .map(|f| std::fs::read(f).with_context(|| format!("cannot read {}", f.display())))
            .collect()
    };
    if read(first)? != read(second)? {
        bail!(
            "{} differs between {} and {}: the worker's WASI crates disagree on its WIT",
            first.name,
            first.origin,
            second.origin
        );
    }
    Ok(())
}

/// Writes the tree for `sources` to `out` (replacing a tree this command wrote there before;
/// refusing any other non-empty directory) and checks it resolves, with the world in it.
pub fn materialise(sources: &Sources, out: &Path) -> Result<Tree> {
    let relative = |p: &Path| {
        p.strip_prefix(&sources.root)
            .unwrap_or(p)
            .display()
            .to_string()
    };
    let (world, world_group) =
        Package::from_dir(&sources.world, format!("{}/", relative(&sources.world)))?;
    let (device, device_group) =
        Package::from_dir(&sources.device, format!("{}/", relative(&sources.device)))?;
    let wasi = wasi_packages(sources)?;

    // From the sources first: an error names the file the developer edits.
    let mut deps = vec![device_group];
    let mut packages = vec![device];
    for (package, group) in wasi {
        deps.push(group);
        packages.push(package);
    }
    let mut resolve = Resolve::default();
    let main = resolve
        .push_groups(world_group, deps)
        .map_err(anyhow::Error::from)
        .map_err(|e| anyhow::anyhow!("{}", resolve.render_error(&e)))
        .context("the app world's WIT does not resolve")?;
    resolve
        .select_world(&[main], Some(WORLD))
        .with_context(|| format!("{} has no world `{WORLD}`", relative(&sources.world)))?;

    prepare_out(out)?;
    let mut written = Vec::new();
    copy_files(&world, out)?;
    written.push(WrittenPackage {
        name: world.name.clone(),
        origin: world.origin.clone(),
        path: ".".to_owned(),
    });
    for package in &packages {
        let path = format!("deps/{}", package.dir_name());
        copy_files(package, &out.join(&path))?;
        written.push(WrittenPackage {
            name: package.name.clone(),
            origin: package.origin.clone(),
            path,
        });
    }
    let name = &resolve.packages[main].name;
    let version = name.version.as_ref().map(|v| format!("@{v}"));
    let tree = Tree {
        dir: out.to_path_buf(),
        world: format!(
            "{}:{}/{WORLD}{}",
            name.namespace,
            name.name,
            version.unwrap_or_default()
        ),
        packages: written,
    };
    write_readme(&tree)?;

    // As written, the way a generator reads it.
    resolve_tree(out).context("the WIT tree as written does not resolve")?;
    Ok(tree)
}

/// Resolves the tree at `dir` (default features: what a generator sees without `--features`)
/// and returns the world apps target.
pub fn resolve_tree(dir: &Path) -> Result<(Resolve, WorldId)> {
    resolve_tree_with(Resolve::default(), dir)
}

/// Resolves the tree at `dir` into `resolve` (whose `features` or `all_features` the caller
/// has set: what a generator sees with `--features`) and returns it with the world apps
/// target.
pub fn resolve_tree_with(mut resolve: Resolve, dir: &Path) -> Result<(Resolve, WorldId)> {
    let (main, _) = resolve
        .push_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}", resolve.render_error(&e)))
        .with_context(|| format!("the WIT tree in {} does not resolve", dir.display()))?;
    let world = resolve
        .select_world(&[main], Some(WORLD))
        .with_context(|| format!("the WIT tree in {} has no world `{WORLD}`", dir.display()))?;
    Ok((resolve, world))
}

/// Makes `out` an empty directory: creates it, or empties a tree this command wrote before.
fn prepare_out(out: &Path) -> Result<()> {
    if out.exists() {
        let ours = std::fs::read_to_string(out.join("README.md"))
            .is_ok_and(|readme| readme.starts_with(MARK));
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .next()
            .is_none();
        if !ours && !empty {
            bail!(
                "refusing to replace {}: it is not empty and not a tree `cargo xtask wit` wrote \
                 (its README.md does not start with {MARK:?})",
                out.display()
            );
        }
        std::fs::remove_dir_all(out).with_context(|| format!("cannot remove {}", out.display()))?;
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))
}

/// Copies `package`'s files into `dir`.
fn copy_files(package: &Package, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for file in &package.files {
        let name = file
            .file_name()
            .with_context(|| format!("{} has no file name", file.display()))?;
        let to = dir.join(name);
        std::fs::copy(file, &to)
            .with_context(|| format!("cannot copy {} to {}", file.display(), to.display()))?;
    }
    Ok(())
}

/// The tree's README: what it is and where each package came from.
fn write_readme(tree: &Tree) -> Result<()> {
    let mut text = format!(
        "{MARK}\n\nDo not edit: the next `cargo xtask wit` replaces this directory.\n\n\
         World: `{}` (`app.wit`). Reference: docs/api/world.md in the Warden repository.\n\n\
         | package | in this tree | from |\n|---|---|---|\n",
        tree.world
    );
    for package in &tree.packages {
        let _ = writeln!(
            text,
            "| `{}` | `{}` | {} |",
            package.name, package.path, package.origin
        );
    }
    let path = tree.dir.join("README.md");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}
