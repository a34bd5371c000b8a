//! `warden app|rtcore pack|inspect|verify`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::json;
use warden_policy::manifest::{MAX_MANIFEST_BYTES, Manifest};
use warden_policy::package::{
    self, CHUNK_LEN, Discard, Limits, PackRequest, PackageHeader, PayloadInput, PayloadRole,
    PayloadSource, UnverifiedPackage, VerifiedPackage,
};
use warden_policy::trust::{MAX_TRUST_FILE_LEN, UnlockToken, VerifyContext};

pub(crate) use warden_policy::package::PackageKind as Kind;

use crate::cli::{AppPackArgs, CommonPackArgs, InspectArgs, RtcorePackArgs, VerifyArgs};
use crate::files::{self, Mode};
use crate::keys_cmd::read_private;
use crate::output;
use crate::trust_cmd;

/// A payload read from a file (opened twice by `pack`: to hash, then to copy).
pub(crate) struct FilePayload(pub(crate) PathBuf);

impl PayloadSource for FilePayload {
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        let file = File::open(&self.0)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", self.0.display())))?;
        Ok(Box::new(file))
    }
}

/// One `--resource` or `--precompiled` payload, parsed.
struct ExtraPayload {
    name: String,
    role: PayloadRole,
    target: Option<String>,
    engine: Option<String>,
    source: FilePayload,
}

fn parse_resource(spec: &str) -> anyhow::Result<ExtraPayload> {
    let Some((name, path)) = spec.split_once('=') else {
        bail!("--resource `{spec}` is not NAME=PATH");
    };
    if name.is_empty() || path.is_empty() {
        bail!("--resource `{spec}` is not NAME=PATH");
    }
    Ok(ExtraPayload {
        name: name.to_owned(),
        role: PayloadRole::Resource,
        target: None,
        engine: None,
        source: FilePayload(PathBuf::from(path)),
    })
}

fn parse_precompiled(spec: &str) -> anyhow::Result<ExtraPayload> {
    let mut parts = spec.split(',');
    let first = parts.next().unwrap_or_default();
    let Some((target, path)) = first.split_once('=') else {
        bail!("--precompiled `{spec}` is not TARGET=PATH[,engine=...][,name=...]");
    };
    if target.is_empty() || path.is_empty() {
        bail!("--precompiled `{spec}` is not TARGET=PATH[,engine=...][,name=...]");
    }
    let mut engine = None;
    let mut name = None;
    for option in parts {
        match option.split_once('=') {
            Some(("engine", v)) if engine.is_none() => engine = Some(v.to_owned()),
            Some(("name", v)) if name.is_none() => name = Some(v.to_owned()),
            _ => bail!(
                "--precompiled `{spec}`: unknown or repeated option `{option}` (expected \
                 engine=... or name=...)"
            ),
        }
    }
    Ok(ExtraPayload {
        name: name.unwrap_or_else(|| format!("precompiled/{target}")),
        role: PayloadRole::Precompiled,
        target: Some(target.to_owned()),
        engine,
        source: FilePayload(PathBuf::from(path)),
    })
}

pub(crate) fn pack_app(args: &AppPackArgs) -> anyhow::Result<()> {
    let extras = args
        .precompiled
        .iter()
        .map(|s| parse_precompiled(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    pack(Kind::App, &args.wasm, extras, &args.common)
}

pub(crate) fn pack_rtcore(args: &RtcorePackArgs) -> anyhow::Result<()> {
    pack(Kind::Rtcore, &args.elf, Vec::new(), &args.common)
}

fn pack(
    kind: Kind,
    entry_path: &Path,
    mut extras: Vec<ExtraPayload>,
    args: &CommonPackArgs,
) -> anyhow::Result<()> {
    files::refuse_existing(&args.out, args.force)?;
    let manifest_text = files::read_text(&args.manifest, MAX_MANIFEST_BYTES, "manifest")?;
    // Parsed here for its EntryPoint (the entry payload's name) and to report problems against
    // the file's own path; `pack` parses it again as part of its checks.
    let manifest = Manifest::parse(
        &args.manifest.display().to_string(),
        manifest_text.as_bytes(),
    )?;
    for spec in &args.resources {
        extras.push(parse_resource(spec)?);
    }
    let key = read_private(&args.key)?;

    let entry = FilePayload(entry_path.to_path_buf());
    let mut payloads = vec![PayloadInput {
        name: manifest.entry_payload_name().to_owned(),
        role: PayloadRole::Entry,
        target: None,
        engine: None,
        source: &entry,
    }];
    payloads.extend(extras.iter().map(|e| PayloadInput {
        name: e.name.clone(),
        role: e.role,
        target: e.target.clone(),
        engine: e.engine.clone(),
        source: &e.source,
    }));
    let request = PackRequest {
        kind,
        manifest_text: &manifest_text,
        version: args.version,
        payloads,
        limits: Limits::default(),
    };

    let mut summary = None;
    files::write_atomic(&args.out, Mode::Public, args.force, |out| {
        summary = Some(
            package::pack(&request, &key, out)
                .with_context(|| format!("cannot pack {}", args.manifest.display()))?,
        );
        Ok(())
    })?;
    let Some(summary) = summary else {
        bail!("internal error: package written without a summary");
    };
    let h = &summary.header;
    output::line(format_args!(
        "packed {kind} `{}` ({}) version {} into {} ({} bytes)",
        h.name,
        h.component_id,
        h.version,
        args.out.display(),
        summary.total_len
    ));
    output::line(format_args!("  signed by     {}", summary.signer));
    output::line(format_args!(
        "  header sha256 {}",
        hex::encode(summary.header_sha256)
    ));
    print_payloads(h);
    print_warnings(&args.manifest.display().to_string(), &manifest);
    Ok(())
}

/// Manifest warnings do not refuse a package, but the developer should see them.
fn print_warnings(source: &str, manifest: &Manifest) {
    for p in &manifest.warnings {
        output::line(format_args!("{source}:{p}"));
    }
}

fn warnings_json(manifest: &Manifest) -> Vec<String> {
    manifest.warnings.iter().map(|p| p.to_string()).collect()
}

/// The in-package manifest's name in messages.
const PACKAGED_MANIFEST: &str = "app_manifest.json (in package)";

fn print_payloads(h: &PackageHeader) {
    output::line(format_args!("  entry format  {}", h.entry_format));
    output::line("  payloads:");
    for p in &h.payloads {
        let extra = match (&p.target, &p.engine) {
            (Some(t), Some(e)) => format!("  target {t}, engine {e}"),
            (Some(t), None) => format!("  target {t}"),
            _ => String::new(),
        };
        output::line(format_args!(
            "    {:<11} {}  {} bytes  sha256 {}{extra}",
            p.role.to_string(),
            p.name,
            p.size,
            hex::encode(p.sha256)
        ));
    }
}

fn open_package(path: &Path) -> anyhow::Result<BufReader<File>> {
    let file =
        File::open(path).with_context(|| format!("cannot open package {}", path.display()))?;
    Ok(BufReader::with_capacity(CHUNK_LEN, file))
}

fn check_kind(path: &Path, found: Kind, expected: Kind) -> anyhow::Result<()> {
    if found != expected {
        bail!(
            "{} is an {found} package, not an {expected} package; use `warden {found} ...`",
            path.display()
        );
    }
    Ok(())
}

fn verify_file(
    path: &Path,
    trust_path: &Path,
    ctx: &VerifyContext,
    kind: Kind,
) -> anyhow::Result<VerifiedPackage> {
    let trust = trust_cmd::load(trust_path)?;
    let reader = open_package(path)?;
    let verified = package::verify(reader, &trust, ctx, &Limits::default(), &mut Discard)
        .with_context(|| path.display().to_string())?;
    check_kind(path, verified.header().kind, kind)?;
    Ok(verified)
}

fn verified_json(path: &Path, v: &VerifiedPackage) -> serde_json::Value {
    let h = v.header();
    json!({
        "ok": true,
        "signature_verified": true,
        "file": path.display().to_string(),
        "kind": h.kind,
        "component_id": h.component_id.to_string(),
        "name": h.name,
        "version": h.version,
        "entry_format": h.entry_format,
        "signer": v.signer().to_string(),
        "signer_role": v.signer_role(),
        "via_unlock": v.via_unlock(),
        "header_sha256": hex::encode(v.header_sha256()),
        "total_len": v.total_len(),
        "payloads": h.payloads,
        "rollback": v.rollback_record(),
        "manifest_warnings": warnings_json(v.manifest()),
    })
}

fn print_verified(path: &Path, v: &VerifiedPackage) {
    let h = v.header();
    output::line(format_args!(
        "OK: {} is a valid {} package (signature verified)",
        path.display(),
        h.kind
    ));
    output::line(format_args!("  name          {}", h.name));
    output::line(format_args!("  component id  {}", h.component_id));
    output::line(format_args!("  version       {}", h.version));
    let via = if v.via_unlock() {
        " (honoured by the development unlock token)"
    } else {
        ""
    };
    output::line(format_args!(
        "  signed by     {} (role {}){via}",
        v.signer(),
        v.signer_role()
    ));
    output::line(format_args!(
        "  header sha256 {}",
        hex::encode(v.header_sha256())
    ));
    print_payloads(h);
    print_warnings(PACKAGED_MANIFEST, v.manifest());
}

pub(crate) fn verify(args: &VerifyArgs, kind: Kind) -> anyhow::Result<()> {
    let result = verify_command(args, kind);
    match (&result, args.json) {
        (Ok(v), true) => output::json(&verified_json(&args.package, v)),
        (Ok(v), false) => print_verified(&args.package, v),
        (Err(e), true) => output::json(&json!({
            "ok": false,
            "file": args.package.display().to_string(),
            "error": output::error_text(e),
        })),
        (Err(_), false) => {}
    }
    result.map(|_| ())
}

fn verify_command(args: &VerifyArgs, kind: Kind) -> anyhow::Result<VerifiedPackage> {
    let mut ctx = VerifyContext::locked(trust_cmd::now()?);
    if let (Some(device), Some(unlock)) = (&args.device_id, &args.unlock) {
        let bytes = files::read_bounded(unlock, MAX_TRUST_FILE_LEN, "unlock token")?;
        let token = UnlockToken::from_json(&bytes)
            .with_context(|| format!("unlock token {} is not valid", unlock.display()))?;
        ctx = VerifyContext::unlocked(device.clone(), ctx.now, token);
    }
    verify_file(&args.package, &args.trust, &ctx, kind)
}

pub(crate) fn inspect(args: &InspectArgs, kind: Kind) -> anyhow::Result<()> {
    if let Some(trust) = &args.trust {
        let ctx = VerifyContext::locked(trust_cmd::now()?);
        let v = verify_file(&args.package, trust, &ctx, kind)?;
        if args.json {
            output::json(&verified_json(&args.package, &v));
        } else {
            print_verified(&args.package, &v);
        }
        return Ok(());
    }
    let reader = open_package(&args.package)?;
    let p: UnverifiedPackage = package::inspect_unverified(reader, &Limits::default())
        .with_context(|| format!("cannot read package {}", args.package.display()))?;
    check_kind(&args.package, p.kind, kind)?;
    let h = &p.header;
    // `inspect_unverified` already checked that the manifest parses; this is for its warnings.
    let manifest = Manifest::parse(PACKAGED_MANIFEST, h.manifest.as_bytes())
        .with_context(|| format!("cannot read the manifest in {}", args.package.display()))?;
    if args.json {
        output::json(&json!({
            "signature_verified": false,
            "warning": "signature NOT verified: no trust file was given, nothing here is authenticated",
            "file": args.package.display().to_string(),
            "kind": h.kind,
            "component_id": h.component_id.to_string(),
            "name": h.name,
            "version": h.version,
            "entry_format": h.entry_format,
            "claimed_signer": p.claimed_signer.to_string(),
            "header_sha256": hex::encode(p.header_sha256),
            "payloads": h.payloads,
            "manifest": h.manifest,
            "manifest_warnings": warnings_json(&manifest),
        }));
        return Ok(());
    }
    output::line(
        "WARNING: signature NOT verified (no --trust given); nothing below is authenticated",
    );
    output::line(format_args!(
        "{} package {}",
        h.kind,
        args.package.display()
    ));
    output::line(format_args!("  name           {}", h.name));
    output::line(format_args!("  component id   {}", h.component_id));
    output::line(format_args!("  version        {}", h.version));
    output::line(format_args!(
        "  claimed signer {} (unverified)",
        p.claimed_signer
    ));
    output::line(format_args!(
        "  header sha256  {}",
        hex::encode(p.header_sha256)
    ));
    print_payloads(h);
    print_warnings(PACKAGED_MANIFEST, &manifest);
    Ok(())
}
