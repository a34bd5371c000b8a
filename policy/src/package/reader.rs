//! Verifying a package in one streaming pass with bounded memory.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::format::{
    ENTRY_SNIFF_LEN, PREFIX_LEN, PackageHeader, PackageKind, PayloadEntry, Prefix,
};
use super::format::{PayloadRole, SIGNATURE_BLOCK_LEN, check_header, sniff_entry};
use super::{Limits, PackageError};
use crate::keys::{KEY_ID_LEN, KeyId, KeyRole, SIGNATURE_LEN};
use crate::manifest::Manifest;
use crate::rollback::RollbackRecord;
use crate::trust::{TrustStore, VerifyContext};

/// Payload bytes are read and hashed in chunks of this size.
pub const CHUNK_LEN: usize = 64 * 1024;

/// Where verified payload bytes go. [`verify`] calls [`PayloadSink::open`] for each payload in
/// header order, writes its bytes to the returned writer as they stream past, and calls
/// [`PayloadSink::finish`] only after the payload's size and digest matched.
///
/// Bytes reach the writer *before* their digest is known: a sink must treat them as untrusted
/// until `finish` (for example, write a temporary file and rename it in `finish`), and discard
/// everything if `verify` returns an error.
pub trait PayloadSink {
    type Writer: Write;

    /// Starts payload `entry`.
    fn open(&mut self, entry: &PayloadEntry) -> io::Result<Self::Writer>;

    /// Payload `entry` was complete and matched its signed digest.
    fn finish(&mut self, entry: &PayloadEntry, writer: Self::Writer) -> io::Result<()> {
        let _ = entry;
        let mut writer = writer;
        writer.flush()
    }
}

/// A sink that checks and drops every byte: verification only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Discard;

impl PayloadSink for Discard {
    type Writer = io::Sink;

    fn open(&mut self, _: &PayloadEntry) -> io::Result<io::Sink> {
        Ok(io::sink())
    }
}

/// Any `FnMut(&PayloadEntry) -> io::Result<W>` is a sink that opens `W` per payload.
impl<F, W> PayloadSink for F
where
    F: FnMut(&PayloadEntry) -> io::Result<W>,
    W: Write,
{
    type Writer = W;

    fn open(&mut self, entry: &PayloadEntry) -> io::Result<W> {
        self(entry)
    }
}

/// A package whose signature, signer, header, manifest and payloads all checked out.
#[derive(Clone, Debug)]
pub struct VerifiedPackage {
    header: PackageHeader,
    manifest: Manifest,
    header_sha256: [u8; 32],
    signer: KeyId,
    signer_role: KeyRole,
    via_unlock: bool,
    total_len: u64,
}

impl VerifiedPackage {
    pub fn header(&self) -> &PackageHeader {
        &self.header
    }

    /// The manifest in the header, parsed and checked against the header.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// SHA-256 of the signed bytes (prefix and header): what the signature covers.
    pub fn header_sha256(&self) -> &[u8; 32] {
        &self.header_sha256
    }

    pub fn signer(&self) -> KeyId {
        self.signer
    }

    pub fn signer_role(&self) -> KeyRole {
        self.signer_role
    }

    /// True when a development key signed it and an unlock token made that acceptable.
    pub fn via_unlock(&self) -> bool {
        self.via_unlock
    }

    /// Length of the whole package file.
    pub fn total_len(&self) -> u64 {
        self.total_len
    }

    /// What to record, and check with [`crate::rollback::check`], for this component.
    pub fn rollback_record(&self) -> RollbackRecord {
        RollbackRecord {
            version: self.header.version,
            header_sha256: self.header_sha256,
        }
    }
}

/// A package header read without checking its signature: for display by tools that have no
/// trust store. Nothing in it may be relied on.
#[derive(Clone, Debug)]
pub struct UnverifiedPackage {
    pub kind: PackageKind,
    pub header: PackageHeader,
    /// Key id in the signature block: who *claims* to have signed it.
    pub claimed_signer: KeyId,
    pub header_sha256: [u8; 32],
}

/// Reads until `buf` is full or the input ends; returns how many bytes were read.
fn fill(reader: &mut dyn Read, buf: &mut [u8], section: &str) -> Result<usize, PackageError> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..) {
        if rest.is_empty() {
            break;
        }
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => done += n.min(rest.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(PackageError::Io {
                    section: section.to_owned(),
                    source,
                });
            }
        }
    }
    Ok(done)
}

fn fill_exact(reader: &mut dyn Read, buf: &mut [u8], section: &str) -> Result<(), PackageError> {
    let got = fill(reader, buf, section)?;
    if got < buf.len() {
        return Err(PackageError::Truncated {
            section: section.to_owned(),
            missing: (buf.len() - got) as u64,
            expected: buf.len() as u64,
        });
    }
    Ok(())
}

/// The signed part of a package, read and bound-checked but not yet trusted.
struct SignedPart {
    prefix: Prefix,
    header_bytes: Vec<u8>,
    digest: [u8; 32],
    key_id: KeyId,
    signature: [u8; SIGNATURE_LEN],
}

fn read_signed_part(reader: &mut dyn Read, limits: &Limits) -> Result<SignedPart, PackageError> {
    let mut prefix_bytes = [0u8; PREFIX_LEN];
    fill_exact(reader, &mut prefix_bytes, "the fixed prefix")?;
    // Bound-checked here, before the header buffer is allocated.
    let prefix = Prefix::decode(&prefix_bytes, limits.header_len_bound())?;
    let mut header_bytes = vec![0u8; prefix.header_len as usize];
    fill_exact(reader, &mut header_bytes, "the header")?;
    let mut block = [0u8; SIGNATURE_BLOCK_LEN];
    fill_exact(reader, &mut block, "the signature block")?;
    let (id, sig) = block.split_at(KEY_ID_LEN);
    let key_id = KeyId::from_bytes(id.try_into().unwrap_or([0; KEY_ID_LEN]));
    let signature: [u8; SIGNATURE_LEN] = sig.try_into().unwrap_or([0; SIGNATURE_LEN]);
    let mut hasher = Sha256::new();
    hasher.update(prefix_bytes);
    hasher.update(&header_bytes);
    Ok(SignedPart {
        prefix,
        header_bytes,
        digest: hasher.finalize().into(),
        key_id,
        signature,
    })
}

fn parse_header(bytes: &[u8]) -> Result<PackageHeader, PackageError> {
    serde_json::from_slice(bytes).map_err(|e| PackageError::HeaderJson(e.to_string()))
}

/// Verifies a package from `reader` against `trust` on the device described by `ctx`, streaming
/// each payload into `sink`, and requires the input to end right after the last payload.
///
/// Order of checks: prefix and bounds; signer known and allowed for the package kind (a
/// development key only with a valid unlock token); signature over the exact signed bytes; only
/// then the header is parsed and checked against its manifest and `limits`; then every payload's
/// size and digest; then end of input. Memory use is bounded by the header limit plus one chunk.
pub fn verify<R: Read, S: PayloadSink + ?Sized>(
    mut reader: R,
    trust: &TrustStore,
    ctx: &VerifyContext,
    limits: &Limits,
    sink: &mut S,
) -> Result<VerifiedPackage, PackageError> {
    let reader: &mut dyn Read = &mut reader;
    let signed = read_signed_part(reader, limits)?;

    let signer = trust
        .authorize(&signed.key_id, signed.prefix.kind.signing_role(), ctx)
        .map_err(PackageError::Signer)?;
    signer
        .key
        .key
        .verify_prehash(&signed.digest, &signed.signature)
        .map_err(|reason| PackageError::Signature {
            key: signed.key_id,
            reason,
        })?;

    // The bytes are authentic from here on; parse them.
    let header = parse_header(&signed.header_bytes)?;
    let manifest = check_header(&header, signed.prefix.kind, limits)?;
    drop(signed.header_bytes);

    let mut buf = vec![0u8; CHUNK_LEN];
    let mut total_len =
        (PREFIX_LEN + SIGNATURE_BLOCK_LEN) as u64 + u64::from(signed.prefix.header_len);
    for entry in &header.payloads {
        stream_payload(
            reader,
            entry,
            header.entry_format,
            header.kind,
            &mut buf,
            sink,
        )?;
        total_len = total_len.saturating_add(entry.size);
    }
    let last = header
        .payloads
        .last()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let mut probe = [0u8; 1];
    if fill(reader, &mut probe, "the end of the package")? != 0 {
        return Err(PackageError::TrailingData { last });
    }

    Ok(VerifiedPackage {
        header,
        manifest,
        header_sha256: signed.digest,
        signer: signed.key_id,
        signer_role: signer.key.role,
        via_unlock: signer.via_unlock,
        total_len,
    })
}

fn stream_payload<S: PayloadSink + ?Sized>(
    reader: &mut dyn Read,
    entry: &PayloadEntry,
    declared: super::EntryFormat,
    kind: PackageKind,
    buf: &mut [u8],
    sink: &mut S,
) -> Result<(), PackageError> {
    let sink_err = |source| PackageError::Sink {
        name: entry.name.clone(),
        source,
    };
    let section = format!("payload `{}`", entry.name);
    let mut writer = sink.open(entry).map_err(sink_err)?;
    let mut hasher = Sha256::new();
    let is_entry = entry.role == PayloadRole::Entry;
    let mut head: Vec<u8> = Vec::new();
    let mut remaining = entry.size;
    while remaining > 0 {
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = fill(reader, chunk, &section)?;
        let Some(got) = chunk.get(..n) else { break };
        if is_entry && head.len() < ENTRY_SNIFF_LEN {
            let take = (ENTRY_SNIFF_LEN - head.len()).min(got.len());
            head.extend_from_slice(got.get(..take).unwrap_or_default());
        }
        hasher.update(got);
        writer.write_all(got).map_err(sink_err)?;
        remaining -= n as u64;
        if n < want {
            return Err(PackageError::Truncated {
                section,
                missing: remaining,
                expected: entry.size,
            });
        }
    }
    let actual: [u8; 32] = hasher.finalize().into();
    if actual != entry.sha256 {
        return Err(PackageError::PayloadDigest {
            name: entry.name.clone(),
            expected: hex::encode(entry.sha256),
            actual: hex::encode(actual),
        });
    }
    if is_entry {
        // The packer checked this too; checking again costs nothing and keeps a signer's
        // mistake from reaching the engine as the wrong kind of file.
        let actual = sniff_entry(kind, &head).map_err(|reason| PackageError::EntryFormat {
            name: entry.name.clone(),
            reason,
        })?;
        if actual != declared {
            return Err(PackageError::EntryFormatMismatch {
                name: entry.name.clone(),
                declared,
                actual,
            });
        }
    }
    sink.finish(entry, writer).map_err(sink_err)
}

/// Reads a package's prefix, header and signature block *without verifying the signature*, for
/// tools with no trust store; the header is parsed and checked like [`verify`] would, but
/// payloads are not read.
pub fn inspect_unverified<R: Read>(
    mut reader: R,
    limits: &Limits,
) -> Result<UnverifiedPackage, PackageError> {
    let signed = read_signed_part(&mut reader, limits)?;
    let header = parse_header(&signed.header_bytes)?;
    check_header(&header, signed.prefix.kind, limits)?;
    Ok(UnverifiedPackage {
        kind: signed.prefix.kind,
        header,
        claimed_signer: signed.key_id,
        header_sha256: signed.digest,
    })
}
