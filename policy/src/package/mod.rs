//! Signed packages (`.wpkg`): one file binding a component's id, version, exact manifest text and
//! the size and SHA-256 of every payload under one P-256 ECDSA signature.
//!
//! ```text
//! offset      size  field
//! 0           8     magic  89 57 50 4b 0d 0a 1a 0a  ("\x89WPK\r\n\x1a\n")
//! 8           2     format version, u16 LE (1)
//! 10          1     kind: 1 = app, 2 = rtcore
//! 11          1     flags (0; anything else is refused)
//! 12          4     header_len, u32 LE, 1 ..= 256 KiB
//! 16          N     header: UTF-8 JSON (PackageHeader)
//! 16+N        32    signer key id (raw SHA-256 of its SPKI DER)
//! 48+N        64    ECDSA P-256 signature r || s (low-S) over SHA-256(bytes 0 .. 16+N)
//! 112+N       ...   payloads, concatenated in header order; then end of file
//! ```
//!
//! [`verify`] reads this in one streaming pass with bounded memory and checks, in order: the
//! prefix and bounds, the signer (known key, right role for the kind in the prefix), the
//! signature over the exact bytes, and only then parses the header, checks it against its
//! manifest, and streams each payload through SHA-256. [`pack`] writes it. The specification,
//! with the reasons behind each choice, is `docs/formats/package.md`.

mod format;
mod reader;
mod writer;

pub use format::{
    EntryFormat, FORMAT_VERSION, MAGIC, MAX_ENGINE_LEN, MAX_HEADER_LEN, MAX_PAYLOAD_NAME_LEN,
    MAX_TARGET_LEN, PREFIX_LEN, PackageHeader, PackageKind, PayloadEntry, PayloadRole,
    SIGNATURE_BLOCK_LEN, check_payload_name, sniff_entry,
};
pub use reader::{
    CHUNK_LEN, Discard, PayloadSink, UnverifiedPackage, VerifiedPackage, inspect_unverified, verify,
};
pub use writer::{PackError, PackRequest, PackSummary, PayloadInput, PayloadSource, pack};

use crate::keys::{KeyId, SignatureError};
use crate::manifest::ManifestError;
use crate::trust::TrustError;

/// Bounds applied before anything they bound is read or allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest header, in bytes; never above [`MAX_HEADER_LEN`].
    pub max_header_len: u32,
    /// Most payloads in one package.
    pub max_payloads: usize,
    /// Largest entry payload, in bytes.
    pub max_entry_size: u64,
    /// Largest single payload of any role, in bytes.
    pub max_payload_size: u64,
    /// Largest sum of all payload sizes, in bytes.
    pub max_total_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_len: MAX_HEADER_LEN,
            max_payloads: 256,
            max_entry_size: 64 << 20,
            max_payload_size: 256 << 20,
            max_total_size: 512 << 20,
        }
    }
}

impl Limits {
    pub(crate) fn header_len_bound(&self) -> u32 {
        self.max_header_len.min(MAX_HEADER_LEN)
    }
}

/// Why a package was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    #[error("reading the package failed in {section}: {source}")]
    Io {
        section: String,
        #[source]
        source: std::io::Error,
    },
    #[error("package is truncated in {section}: {missing} of {expected} bytes missing")]
    Truncated {
        section: String,
        missing: u64,
        expected: u64,
    },
    #[error(
        "not a warden package: magic is {found}, expected 89575042... (\\x89WPK\\r\\n\\x1a\\n; a \
         changed \\r\\n or \\x1a means the file went through a text-mode transfer)"
    )]
    BadMagic { found: String },
    #[error("unsupported package format version {version} (this build reads version 1)")]
    UnsupportedFormat { version: u16 },
    #[error("unknown package kind code {code} at offset 10 (1 = app, 2 = rtcore)")]
    UnknownKind { code: u8 },
    #[error("package flags at offset 11 are {flags:#04x}; no flags are defined, so they must be 0")]
    Flags { flags: u8 },
    #[error("package header length {len} is out of bounds (1 ..= {max} bytes)")]
    HeaderLength { len: u32, max: u32 },
    #[error("package signer refused: {0}")]
    Signer(#[source] TrustError),
    #[error("package signature by key {key} is refused: {reason}")]
    Signature { key: KeyId, reason: SignatureError },
    #[error("signed package header is not valid JSON for this format: {0}")]
    HeaderJson(String),
    #[error("package header field `{field}`: {reason}")]
    InvalidHeader { field: String, reason: String },
    #[error("payload `{name}` is {size} bytes, more than the limit of {max}")]
    PayloadTooLarge { name: String, size: u64, max: u64 },
    #[error("payloads total {size} bytes, more than the limit of {max}")]
    TotalTooLarge { size: u64, max: u64 },
    #[error("manifest in package is refused: {0}")]
    Manifest(#[source] ManifestError),
    #[error("manifest {field} is `{manifest}` but the package header says {header}")]
    ManifestMismatch {
        field: String,
        manifest: String,
        header: String,
    },
    #[error(
        "payload `{name}` does not match its signed digest (expected sha256 {expected}, got {actual})"
    )]
    PayloadDigest {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("entry payload `{name}` {reason}")]
    EntryFormat { name: String, reason: String },
    #[error("entry payload `{name}` is a {actual} but the header says {declared}")]
    EntryFormatMismatch {
        name: String,
        declared: EntryFormat,
        actual: EntryFormat,
    },
    #[error("package has extra bytes after its last payload `{last}`")]
    TrailingData { last: String },
    #[error("storing payload `{name}` failed: {source}")]
    Sink {
        name: String,
        #[source]
        source: std::io::Error,
    },
}
