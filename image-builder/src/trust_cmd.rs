//! `warden trust init|add|show` and `warden device unlock`.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde_json::json;
use warden_policy::keys::{KeyId, KeyRole};
use warden_policy::trust::{MAX_TRUST_FILE_LEN, TrustStore};

use crate::cli::{TrustAddArgs, TrustInitArgs, TrustShowArgs, UnlockArgs};
use crate::files::{self, Mode};
use crate::keys_cmd::{read_private, read_public};
use crate::output;

/// Reads and verifies a trust file.
pub(crate) fn load(path: &Path) -> anyhow::Result<TrustStore> {
    let bytes = files::read_bounded(path, MAX_TRUST_FILE_LEN, "trust file")?;
    TrustStore::from_json(&bytes)
        .with_context(|| format!("trust file {} is refused", path.display()))
}

pub(crate) fn init(args: &TrustInitArgs) -> anyhow::Result<()> {
    files::refuse_existing(&args.out, args.force)?;
    let root = read_private(&args.root_key)?;
    let text = TrustStore::init(&root, &args.comment)?;
    files::write_bytes(&args.out, text.as_bytes(), Mode::Public, args.force)?;
    output::line(format_args!(
        "created trust file {} (version 1) anchored on root key {}",
        args.out.display(),
        root.id()
    ));
    Ok(())
}

pub(crate) fn add(args: &TrustAddArgs) -> anyhow::Result<()> {
    let current = files::read_bounded(&args.trust, MAX_TRUST_FILE_LEN, "trust file")?;
    let root = read_private(&args.root_key)?;
    let key = read_public(&args.key)?;
    let text = TrustStore::add_key(&current, &root, &key, args.role, &args.comment)
        .with_context(|| format!("cannot add the key to {}", args.trust.display()))?;
    let store = TrustStore::from_json(text.as_bytes())?;
    // Replaces the trust file in place: atomically, so a crash leaves the old or the new one.
    files::write_bytes(&args.trust, text.as_bytes(), Mode::Public, true)?;
    output::line(format_args!(
        "added {} key {} to {} (now version {})",
        args.role,
        key.id(),
        args.trust.display(),
        store.version()
    ));
    Ok(())
}

pub(crate) fn show(args: &TrustShowArgs) -> anyhow::Result<()> {
    let store = load(&args.trust)?;
    let rollback = store.rollback_record();
    if args.json {
        let key = |k: &warden_policy::trust::TrustedKey| json!({"id": k.id().to_string(), "role": k.role, "comment": k.comment});
        output::json(&json!({
            "file": args.trust.display().to_string(),
            "signature_verified": true,
            "version": store.version(),
            "payload_sha256": hex::encode(rollback.header_sha256),
            "root_keys": store.roots().iter().map(key).collect::<Vec<_>>(),
            "keys": store.keys().iter().map(key).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    output::line(format_args!(
        "trust file {}: version {}, signed by root (verified)",
        args.trust.display(),
        store.version()
    ));
    for k in store.roots().iter().chain(store.keys()) {
        let comment = if k.comment.is_empty() {
            String::new()
        } else {
            format!("  # {}", k.comment)
        };
        output::line(format_args!(
            "  {:<16} {}{comment}",
            k.role.as_str(),
            k.id()
        ));
    }
    Ok(())
}

/// Unix seconds now.
pub(crate) fn now() -> anyhow::Result<u64> {
    Ok(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs())
}

/// Parses `30s`, `15m`, `12h` or `7d` into seconds.
fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let unit_at = text.len().saturating_sub(1);
    let (number, unit) = (text.get(..unit_at), text.get(unit_at..));
    let scale = match unit {
        Some("s") => 1,
        Some("m") => 60,
        Some("h") => 3600,
        Some("d") => 86_400,
        _ => bail!("duration `{text}` needs a unit: s, m, h or d (e.g. 7d)"),
    };
    let n: u64 = number.unwrap_or_default().parse().with_context(|| {
        format!("duration `{text}` is not a whole number followed by s, m, h or d")
    })?;
    let secs = n
        .checked_mul(scale)
        .with_context(|| format!("duration `{text}` is too long"))?;
    if secs == 0 {
        bail!("duration `{text}` is zero");
    }
    Ok(secs)
}

/// A UTC date and time for unix seconds, `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub(crate) fn unlock(args: &UnlockArgs) -> anyhow::Result<()> {
    files::refuse_existing(&args.out, args.force)?;
    let root = read_private(&args.root_key)?;
    let now = now()?;
    let expires = match (args.expires, &args.valid_for) {
        (Some(at), _) => at,
        (None, valid_for) => {
            let secs = parse_duration(valid_for.as_deref().unwrap_or("7d"))?;
            now.checked_add(secs)
                .context("expiry is too far in the future")?
        }
    };
    if expires <= now {
        bail!(
            "expiry {expires} ({}) is not in the future; the token would never be honoured",
            utc(expires)
        );
    }

    let mut keys: Vec<KeyId> = Vec::new();
    let store = args.trust.as_deref().map(load).transpose()?;
    if let Some(store) = &store {
        if !store.roots().iter().any(|k| k.id() == root.id()) {
            bail!(
                "root key {} is not a root key of trust file {}; a device trusting that file would \
                 refuse the token",
                root.id(),
                args.trust
                    .as_deref()
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            );
        }
        keys.extend(
            store
                .keys()
                .iter()
                .filter(|k| k.role == KeyRole::Development)
                .map(|k| k.id()),
        );
    }
    for spec in &args.dev_keys {
        let id = match spec.parse::<KeyId>() {
            Ok(id) => id,
            Err(_) => read_public(Path::new(spec))?.id(),
        };
        if let Some(store) = &store
            && !store.is_trusted_for(&id, KeyRole::Development)
        {
            bail!("key {id} is not listed as a development key in the trust file");
        }
        if !keys.contains(&id) {
            keys.push(id);
        }
    }
    if keys.is_empty() {
        bail!(
            "no development key to unlock: name them with --dev-key, or give --trust with a \
             trust file listing development keys"
        );
    }

    let text = TrustStore::issue_unlock(&root, &args.device_id, expires, &keys)?;
    files::write_bytes(&args.out, text.as_bytes(), Mode::Public, args.force)?;
    output::line(format_args!(
        "wrote unlock token {} for device `{}`, valid until {} ({expires})",
        args.out.display(),
        args.device_id,
        utc(expires)
    ));
    for id in &keys {
        output::line(format_args!("  honours development key {id}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("7d").unwrap(), 7 * 86_400);
        assert_eq!(parse_duration("12h").unwrap(), 12 * 3600);
        assert_eq!(parse_duration("90m").unwrap(), 5400);
        assert_eq!(parse_duration("30s").unwrap(), 30);
        for bad in [
            "",
            "7",
            "d",
            "7w",
            "-1d",
            "0d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_750_000_000), "2025-06-15 15:06:40 UTC");
    }
}
