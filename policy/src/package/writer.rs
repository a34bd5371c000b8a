//! Writing a signed package.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::format::{
    ENTRY_SNIFF_LEN, FORMAT_VERSION, PackageHeader, PackageKind, PayloadEntry, PayloadRole, Prefix,
    check_header, check_payloads, sniff_entry,
};
use super::reader::CHUNK_LEN;
use super::{EntryFormat, Limits, PackageError};
use crate::keys::{KeyError, KeyId, PrivateKey};
use crate::manifest::{Manifest, ManifestError};

/// Bytes of one payload. [`pack`] opens each source twice: once to measure and hash it, once to
/// copy it, and refuses the package if the two reads differ.
pub trait PayloadSource {
    /// The payload's bytes from the start.
    fn open(&self) -> io::Result<Box<dyn Read + '_>>;
}

impl PayloadSource for &[u8] {
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(*self))
    }
}

impl PayloadSource for Vec<u8> {
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.as_slice()))
    }
}

/// One payload to pack.
pub struct PayloadInput<'a> {
    pub name: String,
    pub role: PayloadRole,
    /// Required for, and only allowed on, precompiled payloads.
    pub target: Option<String>,
    pub engine: Option<String>,
    pub source: &'a dyn PayloadSource,
}

impl std::fmt::Debug for PayloadInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadInput")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("target", &self.target)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

/// What to pack.
#[derive(Debug)]
pub struct PackRequest<'a> {
    /// The kind the caller means to build; the manifest's `ApplicationType` must agree.
    pub kind: PackageKind,
    /// The exact `app_manifest.json` text; stored verbatim.
    pub manifest_text: &'a str,
    pub version: u64,
    pub payloads: Vec<PayloadInput<'a>>,
    pub limits: Limits,
}

/// What [`pack`] wrote.
#[derive(Clone, Debug)]
pub struct PackSummary {
    pub header: PackageHeader,
    /// SHA-256 of the signed bytes: the package's rollback identity.
    pub header_sha256: [u8; 32],
    pub signer: KeyId,
    /// Length of the whole package file.
    pub total_len: u64,
}

/// Why a package could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackError {
    #[error("manifest is refused: {0}")]
    Manifest(#[source] ManifestError),
    #[error(
        "manifest ApplicationType is {found}, but a {kind} package needs ApplicationType {needed}"
    )]
    KindMismatch {
        kind: PackageKind,
        found: String,
        needed: String,
    },
    #[error(
        "entry payload is named `{found}`, but the manifest's EntryPoint `{entry_point}` names \
         `{expected}`"
    )]
    EntryName {
        entry_point: String,
        expected: String,
        found: String,
    },
    #[error("version must be at least 1")]
    VersionZero,
    #[error("reading payload `{name}` failed: {source}")]
    Read {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("payload `{name}` changed while it was being packed; pack again")]
    PayloadChanged { name: String },
    #[error("entry payload `{name}` {reason}")]
    EntryFormat { name: String, reason: String },
    #[error("{0}")]
    Invalid(#[source] PackageError),
    #[error("package header is {len} bytes, more than the limit of {max}")]
    HeaderTooLarge { len: usize, max: u32 },
    #[error("signing failed: {0}")]
    Sign(#[source] KeyError),
    #[error("writing the package failed: {0}")]
    Write(#[source] io::Error),
}

struct Measured {
    size: u64,
    sha256: [u8; 32],
    head: Vec<u8>,
}

/// Streams a source through SHA-256, stopping with an error past `max` bytes; optionally copies
/// it to `out`.
fn copy_hashing(
    input: &PayloadInput<'_>,
    max: u64,
    buf: &mut [u8],
    mut out: Option<&mut dyn Write>,
) -> Result<Measured, PackError> {
    let read_err = |source| PackError::Read {
        name: input.name.clone(),
        source,
    };
    let mut reader = input.source.open().map_err(read_err)?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let mut head = Vec::new();
    loop {
        let n = match reader.read(buf) {
            Ok(n) => n.min(buf.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_err(e)),
        };
        let Some(chunk) = buf.get(..n) else { break };
        if chunk.is_empty() {
            break;
        }
        size = size.saturating_add(n as u64);
        if size > max {
            return Err(PackError::Invalid(PackageError::PayloadTooLarge {
                name: input.name.clone(),
                size,
                max,
            }));
        }
        if head.len() < ENTRY_SNIFF_LEN {
            let take = (ENTRY_SNIFF_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(chunk.get(..take).unwrap_or_default());
        }
        hasher.update(chunk);
        if let Some(out) = out.as_mut() {
            out.write_all(chunk).map_err(PackError::Write)?;
        }
    }
    Ok(Measured {
        size,
        sha256: hasher.finalize().into(),
        head,
    })
}

/// Builds, signs with `key`, and writes a package to `out`.
///
/// Checks before writing anything: the manifest parses and its `ApplicationType` matches
/// `request.kind`; exactly one entry payload, named as the manifest's `EntryPoint` (without its
/// leading `/`); the entry's magic bytes (a WebAssembly module or component for `app`, a 32-bit
/// little-endian ARM ELF executable for `rtcore`); payload names, roles and sizes within
/// `request.limits`. The result passes [`super::verify`] with a trust store that trusts `key`
/// for the kind's role.
pub fn pack<W: Write>(
    request: &PackRequest<'_>,
    key: &PrivateKey,
    mut out: W,
) -> Result<PackSummary, PackError> {
    let kind = request.kind;
    let limits = &request.limits;
    if request.version == 0 {
        return Err(PackError::VersionZero);
    }
    let manifest = Manifest::parse("app_manifest.json", request.manifest_text.as_bytes())
        .map_err(PackError::Manifest)?;
    if manifest.application_type != kind.application_type() {
        return Err(PackError::KindMismatch {
            kind,
            found: manifest.application_type.to_string(),
            needed: kind.application_type().to_string(),
        });
    }
    let expected_entry = manifest.entry_payload_name();
    let mut entry_names = request
        .payloads
        .iter()
        .filter(|p| p.role == PayloadRole::Entry)
        .map(|p| p.name.as_str());
    if let (Some(found), None) = (entry_names.next(), entry_names.next())
        && found != expected_entry
    {
        return Err(PackError::EntryName {
            entry_point: manifest.entry_point.clone(),
            expected: expected_entry.to_owned(),
            found: found.to_owned(),
        });
    }

    // Pass 1: measure and hash every payload, bounded by the limits.
    let mut buf = vec![0u8; CHUNK_LEN];
    let mut entries = Vec::with_capacity(request.payloads.len());
    let mut entry_format: Option<EntryFormat> = None;
    for input in &request.payloads {
        let max = match input.role {
            PayloadRole::Entry => limits.max_entry_size.min(limits.max_payload_size),
            _ => limits.max_payload_size,
        };
        let m = copy_hashing(input, max, &mut buf, None)?;
        if input.role == PayloadRole::Entry {
            let format = sniff_entry(kind, &m.head).map_err(|reason| PackError::EntryFormat {
                name: input.name.clone(),
                reason,
            })?;
            entry_format = Some(format);
        }
        entries.push(PayloadEntry {
            name: input.name.clone(),
            role: input.role,
            target: input.target.clone(),
            engine: input.engine.clone(),
            size: m.size,
            sha256: m.sha256,
        });
    }
    check_payloads(kind, &entries, limits).map_err(PackError::Invalid)?;
    // check_payloads guarantees exactly one entry, so the format was sniffed.
    let entry_format = entry_format.ok_or(PackError::Invalid(PackageError::InvalidHeader {
        field: "payloads".into(),
        reason: "has no entry payload".into(),
    }))?;

    let header = PackageHeader {
        format: FORMAT_VERSION,
        kind,
        component_id: manifest.component_id,
        name: manifest.name.clone(),
        version: request.version,
        entry_format,
        manifest: request.manifest_text.to_owned(),
        payloads: entries,
    };
    check_header(&header, kind, limits).map_err(PackError::Invalid)?;
    let header_bytes = serde_json::to_vec(&header)
        .map_err(|e| PackError::Invalid(PackageError::HeaderJson(e.to_string())))?;
    let bound = limits.header_len_bound();
    let header_len = u32::try_from(header_bytes.len())
        .ok()
        .filter(|len| *len <= bound)
        .ok_or(PackError::HeaderTooLarge {
            len: header_bytes.len(),
            max: bound,
        })?;

    let prefix = Prefix { kind, header_len }.encode();
    let mut hasher = Sha256::new();
    hasher.update(prefix);
    hasher.update(&header_bytes);
    let digest: [u8; 32] = hasher.finalize().into();
    let signature = key.sign_prehash(&digest).map_err(PackError::Sign)?;

    out.write_all(&prefix).map_err(PackError::Write)?;
    out.write_all(&header_bytes).map_err(PackError::Write)?;
    out.write_all(key.id().as_bytes())
        .map_err(PackError::Write)?;
    out.write_all(&signature).map_err(PackError::Write)?;

    // Pass 2: copy, re-hashing so a file that changed since pass 1 is caught.
    let mut total_len =
        (prefix.len() + header_bytes.len() + key.id().as_bytes().len() + signature.len()) as u64;
    for (input, entry) in request.payloads.iter().zip(&header.payloads) {
        let m = copy_hashing(input, entry.size, &mut buf, Some(&mut out)).map_err(|e| match e {
            PackError::Invalid(PackageError::PayloadTooLarge { name, .. }) => {
                PackError::PayloadChanged { name }
            }
            other => other,
        })?;
        if m.size != entry.size || m.sha256 != entry.sha256 {
            return Err(PackError::PayloadChanged {
                name: input.name.clone(),
            });
        }
        total_len = total_len.saturating_add(m.size);
    }
    out.flush().map_err(PackError::Write)?;

    Ok(PackSummary {
        header,
        header_sha256: digest,
        signer: key.id(),
        total_len,
    })
}
