//! Installing a package: verify signature and trust → rollback rule → hardware resolution and
//! ownership → code for this device (precompiled in a confined worker, or the signed artefact
//! for this target) → atomic commit. The supervisor never parses WebAssembly: it hashes bytes
//! and hands them to a confined compiler.
//!
//! A real-time app (`kind: rtcore`) takes the same path with two differences after resolution:
//! it is assigned a real-time core ([`warden_policy::install::assign_core`]), and its ELF is
//! checked against that core's memory ([`warden_policy::firmware::check`]); nothing is
//! compiled, and the index records the core and the ELF's digest instead of code.

use std::fs::File;
use std::io::{Read, Write};

use cap_std::fs::{Dir, OpenOptions};
use sha2::{Digest, Sha256};
use warden_ipc::CodeKind;
use warden_policy::firmware::{self, FirmwareError, MAX_FIRMWARE_BYTES};
use warden_policy::install::{Device, InstalledApp, ResolvedApp};
use warden_policy::manifest::Manifest;
use warden_policy::package::{
    self, Discard, EntryFormat, Limits, PackageError, PackageHeader, PayloadEntry, PayloadRole,
    PayloadSink, VerifiedPackage,
};
use warden_policy::rollback::{self, RollbackDecision, RollbackError};

use crate::device::DeviceConfig;
use crate::error::StateError;
use crate::index::{CodeEntry, FirmwareEntry, Index, InstalledEntry};
use crate::state::{self, STAGING, STORE, StateDir};

/// Name of the precompiled code inside a store directory.
pub const CODE_FILE: &str = "code.cwasm";
/// Name of the install record inside a store directory.
pub const META_FILE: &str = "meta.json";
const PAYLOADS: &str = "payloads";

/// Turns WebAssembly into code this device's workers load. The real one runs the compiler in
/// a confined worker with no rights; tests may use another.
pub trait Compiler: Send + Sync {
    /// The engine target this device runs (`x86_64`, `pulley32`, …).
    fn target(&self) -> &str;
    /// Identifies the engine build and configuration; a signed precompiled artefact is used
    /// only when its `engine` equals this.
    fn fingerprint(&self) -> &str;
    /// Compiles `wasm` into `out`; `None` when this device has no compiler (e.g. an armv7 board).
    fn compile(&self, wasm: File, out: File) -> Option<Result<(), String>>;
}

/// Why an install was refused. Nothing was changed on the device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    #[error("package refused: {0}")]
    Package(#[from] PackageError),
    #[error("rollback refused: {0}")]
    Rollback(#[from] RollbackError),
    #[error("{0}")]
    Resolve(String),
    #[error("cannot prepare code: {0}")]
    Code(String),
    #[error("{0}")]
    Unsupported(String),
    /// No real-time core for a real-time app (every message names the cores and holders).
    #[error("no real-time core: {0}")]
    Core(String),
    /// The firmware does not fit the core it was assigned.
    #[error("firmware refused for real-time core `{core}`: {reason}")]
    Firmware { core: String, reason: String },
    #[error("{0}")]
    State(#[from] StateError),
}

/// What an install did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Installed {
    pub component_id: String,
    pub name: String,
    pub version: u64,
    /// `first install`, `upgrade from N` or `reinstall`.
    pub decision: String,
    /// Warnings from resolution (capabilities withheld by board policy, closed channels).
    pub warnings: Vec<String>,
}

/// Writes verified payloads into the staging directory. Bytes are untrusted until `finish`;
/// on any error the whole staging directory is removed.
struct StagingSink<'a> {
    dir: &'a Dir,
}

impl PayloadSink for StagingSink<'_> {
    type Writer = cap_std::fs::File;

    fn open(&mut self, entry: &PayloadEntry) -> std::io::Result<cap_std::fs::File> {
        let path = format!("{PAYLOADS}/{}", entry.name);
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir.create_dir_all(parent)?;
        }
        self.dir
            .open_with(&path, OpenOptions::new().write(true).create_new(true))
    }

    fn finish(&mut self, _: &PayloadEntry, writer: cap_std::fs::File) -> std::io::Result<()> {
        writer.sync_all()
    }
}

/// Passes every payload on to `inner`, keeping a copy of the entry payload's bytes while they
/// look like real-time firmware (an ELF of at most [`MAX_FIRMWARE_BYTES`]), for the firmware
/// check. A WebAssembly entry is dropped from memory after its first chunk.
struct KeepFirmware<'a, S> {
    inner: &'a mut S,
    /// The entry's bytes, once complete and matching their signed digest.
    entry: Option<Vec<u8>>,
}

struct KeepWriter<W> {
    inner: W,
    kept: Option<Vec<u8>>,
}

impl<W: Write> Write for KeepWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(kept) = &mut self.kept {
            kept.extend_from_slice(buf.get(..n).unwrap_or_default());
            let not_elf = kept.get(..4).is_some_and(|magic| magic != b"\x7fELF");
            if not_elf || kept.len() as u64 > MAX_FIRMWARE_BYTES {
                self.kept = None;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<S: PayloadSink> PayloadSink for KeepFirmware<'_, S> {
    type Writer = KeepWriter<S::Writer>;

    fn open(&mut self, entry: &PayloadEntry) -> std::io::Result<Self::Writer> {
        let keep = entry.role == PayloadRole::Entry && entry.size <= MAX_FIRMWARE_BYTES;
        Ok(KeepWriter {
            inner: self.inner.open(entry)?,
            kept: keep.then(Vec::new),
        })
    }

    fn finish(&mut self, entry: &PayloadEntry, writer: Self::Writer) -> std::io::Result<()> {
        if entry.role == PayloadRole::Entry {
            self.entry = writer.kept;
        }
        self.inner.finish(entry, writer.inner)
    }
}

/// Removes a staging directory unless the install committed it.
struct Staging {
    parent: Dir,
    name: String,
    dir: Dir,
    kept: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.kept {
            let _ = self.parent.remove_dir_all(&self.name);
        }
    }
}

/// Start-up recovery: removes every staging directory (installs a crash interrupted) and every
/// store directory the index does not name (published before a crash, never committed).
pub fn recover(state: &StateDir, index: &Index) -> Result<Vec<String>, StateError> {
    let mut removed = Vec::new();
    let staging = state.dir(STAGING)?;
    for entry in staging
        .entries()
        .map_err(|e| StateError::io("list", &state.path().join(STAGING), e))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        staging
            .remove_dir_all(&name)
            .or_else(|_| staging.remove_file(&name))
            .map_err(|e| StateError::io("remove", &state.path().join(STAGING).join(&name), e))?;
        removed.push(format!("{STAGING}/{name}"));
    }
    let store = state.dir(STORE)?;
    for entry in store
        .entries()
        .map_err(|e| StateError::io("list", &state.path().join(STORE), e))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !index.apps.values().any(|a| a.store == name) {
            store
                .remove_dir_all(&name)
                .or_else(|_| store.remove_file(&name))
                .map_err(|e| StateError::io("remove", &state.path().join(STORE).join(&name), e))?;
            removed.push(format!("{STORE}/{name}"));
        }
    }
    Ok(removed)
}

/// Rebuilds what the policy needs to know about every installed app (their manifests resolved
/// on this device), skipping `except`.
pub fn installed_apps(
    state: &StateDir,
    index: &Index,
    device: &DeviceConfig,
    except: Option<&str>,
) -> Result<Vec<InstalledApp>, InstallError> {
    let mut out: Vec<InstalledApp> = Vec::new();
    for (id, entry) in &index.apps {
        if Some(id.as_str()) == except {
            continue;
        }
        let header = read_meta(state, &entry.store)?;
        let manifest =
            Manifest::parse(id, header.manifest.as_bytes()).map_err(|e| StateError::Corrupt {
                what: format!("manifest of installed app {id}"),
                reason: e.to_string(),
            })?;
        let resolved = resolve(device, &manifest, &out, id)?;
        out.push(InstalledApp { manifest, resolved });
    }
    Ok(out)
}

fn resolve(
    device: &DeviceConfig,
    manifest: &Manifest,
    installed: &[InstalledApp],
    source: &str,
) -> Result<ResolvedApp, InstallError> {
    let device = Device {
        hwdefs: &device.hwdefs,
        board: &device.board,
        installed,
    };
    warden_policy::install::resolve(source, manifest, &device)
        .map_err(|e| InstallError::Resolve(e.to_string()))
}

/// Reads the signed header recorded in a store directory.
pub fn read_meta(state: &StateDir, store: &str) -> Result<PackageHeader, InstallError> {
    let dir = state.dir(STORE)?;
    let bytes = state
        .read_bounded(&dir, &format!("{store}/{META_FILE}"), 1024 * 1024)?
        .ok_or_else(|| StateError::Corrupt {
            what: format!("store {store}"),
            reason: "meta.json is missing".into(),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        InstallError::State(StateError::Corrupt {
            what: format!("store {store}/meta.json"),
            reason: e.to_string(),
        })
    })
}

/// A package that passed every check an install makes before it changes anything: signature
/// and trust, every payload's digest, the rollback rule, and resolution on this device.
#[derive(Debug)]
pub struct Checked {
    pub package: VerifiedPackage,
    pub decision: RollbackDecision,
    /// How its manifest resolves on this device; `None` when this very signed package is
    /// installed already (an install of it changes nothing).
    pub resolved: Option<ResolvedApp>,
    /// For a real-time app: the core it was assigned and its checked firmware.
    pub firmware: Option<FirmwareEntry>,
}

/// Steps 1–3 of an install, which change nothing on the device: signature, trust, header and
/// every payload's digest (the payloads go to `sink` as they are read), the rollback rule
/// against `index`, then hardware resolution and ownership against the other installed apps;
/// for a real-time app also its core and the firmware check against that core's memory.
/// An install and a staged update (`crate::updates`) both verify through this.
pub fn check<S: PayloadSink>(
    state: &StateDir,
    index: &Index,
    device: &DeviceConfig,
    reader: impl Read,
    sink: &mut S,
) -> Result<Checked, InstallError> {
    // 1. Signature (by a key whose role may sign this kind: `app` or `rtcore`), trust, header,
    //    every payload's digest — streamed into `sink`.
    let mut keep = KeepFirmware {
        inner: sink,
        entry: None,
    };
    let verified = package::verify(
        reader,
        &device.trust,
        &device.verify_context(),
        &Limits::default(),
        &mut keep,
    )?;
    let component = verified.header().component_id.to_string();

    // 2. Rollback.
    let decision = rollback::check(index.rollback.get(&component), &verified.rollback_record())?;
    let store_name = hex::encode(verified.header_sha256());
    if index
        .apps
        .get(&component)
        .is_some_and(|app| app.store == store_name)
    {
        return Ok(Checked {
            package: verified,
            decision,
            resolved: None,
            firmware: None,
        });
    }

    // 3. Hardware resolution and ownership against the other installed apps (real-time apps
    //    included: a pin is owned once, whichever core its app runs on).
    let others = installed_apps(state, index, device, Some(&component))?;
    let resolved = resolve(device, verified.manifest(), &others, &component)?;
    let firmware = match verified.header().entry_format {
        EntryFormat::WasmComponent | EntryFormat::WasmModule => None,
        EntryFormat::ElfArm32 => Some(check_firmware(
            device,
            index,
            &resolved,
            verified.header(),
            keep.entry.as_deref(),
        )?),
    };
    Ok(Checked {
        package: verified,
        decision,
        resolved: Some(resolved),
        firmware,
    })
}

/// A real-time app's core (one app per core; see [`warden_policy::install::assign_core`]) and
/// its ELF checked against that core's memory, before anything reaches the kernel or the
/// emulator.
fn check_firmware(
    device: &DeviceConfig,
    index: &Index,
    resolved: &ResolvedApp,
    header: &PackageHeader,
    elf: Option<&[u8]>,
) -> Result<FirmwareEntry, InstallError> {
    let core = warden_policy::install::assign_core(&device.board, resolved, &index.core_holders())
        .map_err(|e| InstallError::Core(e.to_string()))?;
    let entry = header
        .entry()
        .ok_or_else(|| InstallError::Code("the package has no entry payload".into()))?;
    let refused = |reason: String| InstallError::Firmware {
        core: core.clone(),
        reason,
    };
    let regions = device
        .board
        .real_time_cores
        .iter()
        .find(|c| c.name == core)
        .map(|c| c.memory.as_slice())
        .ok_or_else(|| refused(format!("board `{}` lists no such core", device.board.name)))?;
    let elf = elf.ok_or_else(|| {
        refused(if entry.size > MAX_FIRMWARE_BYTES {
            FirmwareError::TooLarge(entry.size).to_string()
        } else {
            FirmwareError::NotElf.to_string()
        })
    })?;
    firmware::check(elf, &core, regions).map_err(|e| refused(e.to_string()))?;
    Ok(FirmwareEntry {
        core,
        file: format!("{PAYLOADS}/{}", entry.name),
        sha256: hex::encode(entry.sha256),
    })
}

/// Verifies a package as an install would, keeping none of it: for a package that installs
/// later (a staged update), verified now so a bad one is refused at once.
pub fn verify_only(
    state: &StateDir,
    index: &Index,
    device: &DeviceConfig,
    reader: impl Read,
) -> Result<Checked, InstallError> {
    check(state, index, device, reader, &mut Discard)
}

/// What accepting a version means, as [`Installed::decision`] says it.
pub fn describe(decision: RollbackDecision) -> String {
    match decision {
        RollbackDecision::FirstInstall => "first install".into(),
        RollbackDecision::Upgrade { from } => format!("upgrade from {from}"),
        RollbackDecision::Reinstall => "reinstall".into(),
        _ => "install".into(),
    }
}

/// Installs one package from `reader`. `index` is the current index; on success it is updated
/// and committed.
pub fn install(
    state: &StateDir,
    index: &mut Index,
    device: &DeviceConfig,
    compiler: &dyn Compiler,
    reader: impl Read,
) -> Result<Installed, InstallError> {
    let staging_parent = state.dir(STAGING)?;
    let name = state::unique_name("install");
    staging_parent
        .create_dir(&name)
        .map_err(|e| StateError::io("create", &state.path().join(STAGING).join(&name), e))?;
    let dir = staging_parent
        .open_dir(&name)
        .map_err(|e| StateError::io("open", &state.path().join(STAGING).join(&name), e))?;
    let mut staging = Staging {
        parent: staging_parent,
        name,
        dir,
        kept: false,
    };

    // 1.–3. Verify into staging; rollback; resolution.
    let Checked {
        package: verified,
        decision,
        resolved,
        firmware,
    } = check(
        state,
        index,
        device,
        reader,
        &mut StagingSink { dir: &staging.dir },
    )?;
    let header = verified.header().clone();
    let component = header.component_id.to_string();
    let record = verified.rollback_record();
    let store_name = hex::encode(verified.header_sha256());
    let Some(resolved) = resolved else {
        // This exact signed package is installed: its committed store directory must never be
        // touched (a crash while replacing it would leave the index naming nothing).
        return Ok(Installed {
            component_id: component,
            name: header.name,
            version: header.version,
            decision: "reinstall (already installed, nothing changed)".into(),
            warnings: Vec::new(),
        });
    };

    // 4. Code for this device; real-time firmware was checked already and runs as it is.
    let code = match firmware {
        Some(_) => None,
        None => Some(prepare_code(&staging.dir, &header, compiler)?),
    };

    // 5. Publish the store directory, then commit the index.
    let meta = serde_json::to_vec_pretty(&header).map_err(|e| StateError::Corrupt {
        what: "meta.json".into(),
        reason: e.to_string(),
    })?;
    state::write_new(&staging.dir, META_FILE, &meta)
        .map_err(|e| StateError::io("write", &state.path().join(STAGING), e))?;
    state::sync_tree(&staging.dir)
        .map_err(|e| StateError::io("sync", &state.path().join(STAGING), e))?;
    let store = state.dir(STORE)?;
    if store.exists(&store_name) {
        // Not referenced by the index (that case returned above): left by an uninstall or by
        // an install interrupted before its commit. Replacing it cannot break the index.
        store
            .remove_dir_all(&store_name)
            .map_err(|e| StateError::io("replace", &state.path().join(STORE), e))?;
    }
    staging
        .parent
        .rename(&staging.name, &store, &store_name)
        .map_err(|e| StateError::io("publish", &state.path().join(STORE), e))?;
    staging.kept = true;
    state::sync_dir(&store).map_err(|e| StateError::io("sync", &state.path().join(STORE), e))?;
    state::sync_dir(&staging.parent)
        .map_err(|e| StateError::io("sync", &state.path().join(STAGING), e))?;

    let previous_store = index.apps.get(&component).map(|a| a.store.clone());
    let mut next = index.clone();
    let uid = next.uid_for(&component);
    next.apps.insert(
        component.clone(),
        InstalledEntry {
            name: header.name.clone(),
            version: header.version,
            kind: header.kind.as_str().to_owned(),
            store: store_name.clone(),
            code,
            firmware,
            uid,
            autostart: true,
            installed_at: crate::now(),
        },
    );
    next.rollback.insert(component.clone(), record);
    next.save(state)?;
    *index = next;

    // 6. The old version's files are no longer referenced.
    if let Some(old) = previous_store.filter(|old| *old != store_name) {
        let _ = store.remove_dir_all(&old);
    }

    Ok(Installed {
        component_id: component,
        name: header.name,
        version: header.version,
        decision: describe(decision),
        warnings: resolved
            .warnings
            .iter()
            .map(ToString::to_string)
            .chain(resolved.withheld.iter().map(|w| format!("withheld: {w}")))
            .collect(),
    })
}

/// Picks the signed precompiled artefact for this device's target and engine, or compiles the
/// entry in a confined worker; returns the code entry with the digest the worker must see.
fn prepare_code(
    staging: &Dir,
    header: &PackageHeader,
    compiler: &dyn Compiler,
) -> Result<CodeEntry, InstallError> {
    let kind = match header.entry_format {
        EntryFormat::WasmModule => CodeKind::Module,
        _ => CodeKind::Component,
    };
    let signed = header.payloads.iter().find(|p| {
        p.role == PayloadRole::Precompiled
            && p.target.as_deref() == Some(compiler.target())
            && p.engine.as_deref() == Some(compiler.fingerprint())
    });
    if let Some(artefact) = signed {
        return Ok(CodeEntry {
            file: format!("{PAYLOADS}/{}", artefact.name),
            sha256: hex::encode(artefact.sha256),
            kind,
        });
    }
    let entry = header
        .entry()
        .ok_or_else(|| InstallError::Code("the package has no entry payload".into()))?;
    let input = staging
        .open(format!("{PAYLOADS}/{}", entry.name))
        .map_err(|e| InstallError::Code(format!("cannot open the entry payload: {e}")))?
        .into_std();
    let output = staging
        .open_with(
            CODE_FILE,
            OpenOptions::new().read(true).write(true).create_new(true),
        )
        .map_err(|e| InstallError::Code(format!("cannot create {CODE_FILE}: {e}")))?
        .into_std();
    let out_for_hash = output
        .try_clone()
        .map_err(|e| InstallError::Code(e.to_string()))?;
    match compiler.compile(input, output) {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(InstallError::Code(format!("compilation failed: {e}"))),
        None => {
            return Err(InstallError::Code(format!(
                "this device cannot compile WebAssembly and the package has no precompiled \
                 artefact for target `{}` with engine `{}`",
                compiler.target(),
                compiler.fingerprint()
            )));
        }
    }
    let sha256 = hash_file(out_for_hash).map_err(|e| InstallError::Code(e.to_string()))?;
    Ok(CodeEntry {
        file: CODE_FILE.into(),
        sha256,
        kind,
    })
}

/// Lower-case hex SHA-256 of a whole file, read from its start.
pub fn hash_file(mut file: File) -> std::io::Result<String> {
    use std::io::Seek;
    file.rewind()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex::encode(hasher.finalize()))
}
