//! `warden keys new|show`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::json;
use warden_policy::keys::{PrivateKey, PublicKey};

use crate::cli::{KeysNewArgs, KeysShowArgs};
use crate::files::{self, Mode};
use crate::output;

/// Largest key file read, in bytes; a P-256 PEM key is a few hundred.
pub(crate) const MAX_KEY_FILE: usize = 64 * 1024;

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(stem.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

pub(crate) fn new(args: &KeysNewArgs) -> anyhow::Result<()> {
    let stem = match (&args.out, &args.out_dir, &args.name) {
        (Some(prefix), _, _) => prefix.clone(),
        (None, dir, name) => {
            let name = name.as_deref().unwrap_or(args.role.as_str());
            if name.is_empty() || name.contains('/') || name.starts_with('.') {
                bail!("--name `{name}` must be a plain file name stem (no `/`, not hidden)");
            }
            dir.clone().unwrap_or_else(|| PathBuf::from(".")).join(name)
        }
    };
    // A key directory is private: create it (0700) if it does not exist yet.
    if let Some(dir) = stem
        .parent()
        .filter(|d| !d.as_os_str().is_empty() && !d.exists())
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create key directory {}", dir.display()))?;
    }
    let private_path = with_suffix(&stem, ".key.pem");
    let public_path = with_suffix(&stem, ".pub.pem");
    // Check both before generating anything, so a refusal leaves no half-made pair.
    files::refuse_existing(&private_path, args.force)?;
    files::refuse_existing(&public_path, args.force)?;

    let key = PrivateKey::generate().context("cannot generate a key")?;
    let private_pem = key.to_pem().context("cannot encode the private key")?;
    let public_pem = key
        .public_key()
        .to_pem()
        .context("cannot encode the public key")?;
    files::write_bytes(
        &private_path,
        private_pem.as_bytes(),
        Mode::Private,
        args.force,
    )?;
    files::write_bytes(
        &public_path,
        public_pem.as_bytes(),
        Mode::Public,
        args.force,
    )?;

    if args.json {
        output::json(&json!({
            "role": args.role,
            "key_id": key.id().to_string(),
            "private_key": private_path.display().to_string(),
            "public_key": public_path.display().to_string(),
        }));
    } else {
        output::line(format_args!("created {} key {}", args.role, key.id()));
        output::line(format_args!(
            "  private key  {} (mode 0600: keep it secret)",
            private_path.display()
        ));
        output::line(format_args!("  public key   {}", public_path.display()));
    }
    Ok(())
}

/// Reads a private key file.
pub(crate) fn read_private(path: &Path) -> anyhow::Result<PrivateKey> {
    let pem = files::read_text(path, MAX_KEY_FILE, "private key")?;
    PrivateKey::from_pem(&pem)
        .with_context(|| format!("cannot read private key {}", path.display()))
}

/// Reads a public key file.
pub(crate) fn read_public(path: &Path) -> anyhow::Result<PublicKey> {
    let pem = files::read_text(path, MAX_KEY_FILE, "public key")?;
    PublicKey::from_pem(&pem).with_context(|| format!("cannot read public key {}", path.display()))
}

pub(crate) fn show(args: &KeysShowArgs) -> anyhow::Result<()> {
    let pem = files::read_text(&args.key, MAX_KEY_FILE, "key")?;
    let (kind, id) = if pem.contains("-----BEGIN PRIVATE KEY-----") {
        let key = PrivateKey::from_pem(&pem)
            .with_context(|| format!("cannot read private key {}", args.key.display()))?;
        ("private", key.id())
    } else {
        let key = PublicKey::from_pem(&pem)
            .with_context(|| format!("cannot read public key {}", args.key.display()))?;
        ("public", key.id())
    };
    if args.json {
        output::json(&json!({
            "file": args.key.display().to_string(),
            "kind": kind,
            "algorithm": "ecdsa-p256-sha256",
            "key_id": id.to_string(),
        }));
    } else {
        output::line(format_args!("{kind} P-256 key {id}"));
    }
    Ok(())
}
