//! The `.wpkg` layout, the signed header's types, and the validation both the reader and the
//! writer apply, so that whatever `pack` writes `verify` accepts and nothing else.

use std::collections::BTreeSet;
use std::fmt;

use crate::ids::ComponentId;
use crate::keys::{KEY_ID_LEN, KeyRole, SIGNATURE_LEN};
use crate::manifest::{ApplicationType, Manifest};
use crate::rollback::hex_digest;

use super::{Limits, PackageError};

/// The first 8 bytes of every package. Like PNG's: the high first byte catches 7-bit
/// transports, `\r\n` and `\n` catch line-ending conversion, `\x1a` stops `type` on DOS.
pub const MAGIC: [u8; 8] = *b"\x89WPK\r\n\x1a\n";

/// The layout version this code reads and writes (bytes 8..10, little-endian).
pub const FORMAT_VERSION: u16 = 1;

/// Length of the fixed prefix: magic, format version, kind, flags, header length.
pub const PREFIX_LEN: usize = 16;

/// Length of the signature block: the signer's raw key id, then the raw `r || s` signature.
pub const SIGNATURE_BLOCK_LEN: usize = KEY_ID_LEN + SIGNATURE_LEN;

/// Hard upper bound on the header length, whatever [`Limits`] say.
pub const MAX_HEADER_LEN: u32 = 256 * 1024;

/// Longest payload name, in bytes.
pub const MAX_PAYLOAD_NAME_LEN: usize = 128;

/// Longest `target`, in bytes.
pub const MAX_TARGET_LEN: usize = 64;

/// Longest `engine` fingerprint, in bytes.
pub const MAX_ENGINE_LEN: usize = 256;

/// Bytes of the entry payload kept to check its file format.
pub(crate) const ENTRY_SNIFF_LEN: usize = 52;

/// What a package installs: an app for the application core, or real-time core firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageKind {
    App,
    Rtcore,
}

impl PackageKind {
    /// The byte at offset 10 of the prefix.
    pub fn code(self) -> u8 {
        match self {
            PackageKind::App => 1,
            PackageKind::Rtcore => 2,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(PackageKind::App),
            2 => Some(PackageKind::Rtcore),
            _ => None,
        }
    }

    /// The key role that signs this kind (a development key may stand in on an unlocked device).
    pub fn signing_role(self) -> KeyRole {
        match self {
            PackageKind::App => KeyRole::App,
            PackageKind::Rtcore => KeyRole::Rtcore,
        }
    }

    /// The manifest `ApplicationType` this kind carries.
    pub fn application_type(self) -> ApplicationType {
        match self {
            PackageKind::App => ApplicationType::Default,
            PackageKind::Rtcore => ApplicationType::RealTimeCapable,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::App => "app",
            PackageKind::Rtcore => "rtcore",
        }
    }
}

impl fmt::Display for PackageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The file format of the entry payload, recorded by the packer from its magic bytes and checked
/// again by the reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryFormat {
    /// A WebAssembly component (`\0asm`, version 0x0d, layer 1).
    WasmComponent,
    /// A core WebAssembly module (`\0asm`, version 1).
    WasmModule,
    /// A 32-bit little-endian ARM ELF executable (real-time core firmware).
    ElfArm32,
}

impl EntryFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryFormat::WasmComponent => "wasm-component",
            EntryFormat::WasmModule => "wasm-module",
            EntryFormat::ElfArm32 => "elf-arm32",
        }
    }
}

impl fmt::Display for EntryFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a payload is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadRole {
    /// The code the manifest's `EntryPoint` names; exactly one per package.
    Entry,
    /// Data the app reads at run time.
    Resource,
    /// Ahead-of-time compiled code for the entry, for one `target` and `engine`.
    Precompiled,
}

impl fmt::Display for PayloadRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PayloadRole::Entry => "entry",
            PayloadRole::Resource => "resource",
            PayloadRole::Precompiled => "precompiled",
        })
    }
}

/// One payload as the signed header describes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadEntry {
    pub name: String,
    pub role: PayloadRole,
    /// The target triple or engine target of precompiled code (`pulley32`, `x86_64`); present
    /// exactly when `role` is `precompiled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A fingerprint of the engine and configuration that produced precompiled code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    pub size: u64,
    #[serde(with = "hex_digest")]
    pub sha256: [u8; 32],
}

/// The signed header of a package.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PackageHeader {
    /// Equal to the layout version in the prefix.
    pub format: u16,
    /// Equal to the kind in the prefix.
    pub kind: PackageKind,
    /// The manifest's `ComponentId`, lower-case.
    #[serde(with = "canonical_guid")]
    pub component_id: ComponentId,
    /// The manifest's `Name`.
    pub name: String,
    /// Strictly monotonic per component, starting at 1.
    pub version: u64,
    pub entry_format: EntryFormat,
    /// The exact text of `app_manifest.json`.
    pub manifest: String,
    pub payloads: Vec<PayloadEntry>,
}

impl PackageHeader {
    /// The entry payload (validation guarantees there is exactly one).
    pub fn entry(&self) -> Option<&PayloadEntry> {
        self.payloads.iter().find(|p| p.role == PayloadRole::Entry)
    }

    /// Sum of all payload sizes.
    pub fn total_payload_size(&self) -> u64 {
        self.payloads
            .iter()
            .fold(0u64, |acc, p| acc.saturating_add(p.size))
    }
}

/// Serde helper: a GUID that must be written in its canonical lower-case form, so one component
/// has one spelling in signed headers.
mod canonical_guid {
    use crate::ids::ComponentId;

    pub(super) fn serialize<S: serde::Serializer>(
        g: &ComponentId,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_str(g)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<ComponentId, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        let g: ComponentId = s.parse().map_err(serde::de::Error::custom)?;
        if g.to_string() != s {
            return Err(serde::de::Error::custom(format!(
                "component id `{s}` is not in lower-case canonical form"
            )));
        }
        Ok(g)
    }
}

/// The fixed prefix, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prefix {
    pub(crate) kind: PackageKind,
    pub(crate) header_len: u32,
}

impl Prefix {
    pub(crate) fn encode(&self) -> [u8; PREFIX_LEN] {
        let mut out = [0u8; PREFIX_LEN];
        let (magic, rest) = out.split_at_mut(8);
        magic.copy_from_slice(&MAGIC);
        let (version, rest) = rest.split_at_mut(2);
        version.copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let (kind_flags, len) = rest.split_at_mut(2);
        kind_flags.copy_from_slice(&[self.kind.code(), 0]);
        len.copy_from_slice(&self.header_len.to_le_bytes());
        out
    }

    /// Decodes and bound-checks a prefix; `max_header_len` is already capped at
    /// [`MAX_HEADER_LEN`].
    pub(crate) fn decode(
        bytes: &[u8; PREFIX_LEN],
        max_header_len: u32,
    ) -> Result<Self, PackageError> {
        let [
            m0,
            m1,
            m2,
            m3,
            m4,
            m5,
            m6,
            m7,
            v0,
            v1,
            kind,
            flags,
            l0,
            l1,
            l2,
            l3,
        ] = *bytes;
        let magic = [m0, m1, m2, m3, m4, m5, m6, m7];
        if magic != MAGIC {
            return Err(PackageError::BadMagic {
                found: hex::encode(magic),
            });
        }
        let version = u16::from_le_bytes([v0, v1]);
        if version != FORMAT_VERSION {
            return Err(PackageError::UnsupportedFormat { version });
        }
        let kind = PackageKind::from_code(kind).ok_or(PackageError::UnknownKind { code: kind })?;
        if flags != 0 {
            return Err(PackageError::Flags { flags });
        }
        let header_len = u32::from_le_bytes([l0, l1, l2, l3]);
        if header_len == 0 || header_len > max_header_len {
            return Err(PackageError::HeaderLength {
                len: header_len,
                max: max_header_len,
            });
        }
        Ok(Prefix { kind, header_len })
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> PackageError {
    PackageError::InvalidHeader {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks a payload name: relative, `[A-Za-z0-9._/-]`, no empty, `.` or `..` segment, at most
/// [`MAX_PAYLOAD_NAME_LEN`] bytes.
pub fn check_payload_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > MAX_PAYLOAD_NAME_LEN {
        return Err(format!(
            "is {} bytes long, more than {MAX_PAYLOAD_NAME_LEN}",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')))
    {
        return Err(format!(
            "contains {c:?}; only A-Z a-z 0-9 . _ / - are allowed"
        ));
    }
    if name.starts_with('/') {
        return Err("is absolute; names are relative to the package".into());
    }
    for segment in name.split('/') {
        match segment {
            "" => return Err("has an empty path segment".into()),
            "." | ".." => return Err(format!("has a `{segment}` path segment")),
            _ => {}
        }
    }
    Ok(())
}

fn check_target(target: &str) -> Result<(), String> {
    let ok = !target.is_empty()
        && target.len() <= MAX_TARGET_LEN
        && target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected 1 to {MAX_TARGET_LEN} characters from A-Z a-z 0-9 . _ -"
        ))
    }
}

fn check_engine(engine: &str) -> Result<(), String> {
    let ok = !engine.is_empty()
        && engine.len() <= MAX_ENGINE_LEN
        && engine.bytes().all(|b| (0x20..0x7f).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected 1 to {MAX_ENGINE_LEN} printable ASCII characters"
        ))
    }
}

/// Checks the payload list alone: names, roles, targets, sizes against `limits`.
pub(crate) fn check_payloads(
    kind: PackageKind,
    payloads: &[PayloadEntry],
    limits: &Limits,
) -> Result<(), PackageError> {
    if payloads.is_empty() {
        return Err(invalid(
            "payloads",
            "is empty; a package needs an entry payload",
        ));
    }
    if payloads.len() > limits.max_payloads {
        return Err(invalid(
            "payloads",
            format!(
                "has {} entries, more than the limit of {}",
                payloads.len(),
                limits.max_payloads
            ),
        ));
    }
    let entries = payloads
        .iter()
        .filter(|p| p.role == PayloadRole::Entry)
        .count();
    if entries != 1 {
        return Err(invalid(
            "payloads",
            format!("has {entries} entry payloads; exactly one is required"),
        ));
    }
    let mut names = BTreeSet::new();
    let mut precompiled = BTreeSet::new();
    let mut total: u64 = 0;
    for (i, p) in payloads.iter().enumerate() {
        let field = |f: &str| format!("payloads[{i}].{f}");
        check_payload_name(&p.name)
            .map_err(|r| invalid(field("name"), format!("`{}` {r}", p.name)))?;
        if !names.insert(p.name.as_str()) {
            return Err(invalid(
                field("name"),
                format!("`{}` is used by two payloads", p.name),
            ));
        }
        match (p.role, &p.target) {
            (PayloadRole::Precompiled, None) => {
                return Err(invalid(field("target"), "is required for precompiled code"));
            }
            (PayloadRole::Precompiled, Some(t)) => {
                check_target(t).map_err(|r| invalid(field("target"), r))?;
            }
            (_, Some(_)) => {
                return Err(invalid(
                    field("target"),
                    format!(
                        "is only allowed on precompiled payloads, not on a {}",
                        p.role
                    ),
                ));
            }
            (_, None) => {}
        }
        match (p.role, &p.engine) {
            (PayloadRole::Precompiled, Some(e)) => {
                check_engine(e).map_err(|r| invalid(field("engine"), r))?;
            }
            (_, Some(_)) => {
                return Err(invalid(
                    field("engine"),
                    format!(
                        "is only allowed on precompiled payloads, not on a {}",
                        p.role
                    ),
                ));
            }
            _ => {}
        }
        if p.role == PayloadRole::Precompiled {
            if kind == PackageKind::Rtcore {
                return Err(invalid(
                    field("role"),
                    "precompiled code is for WebAssembly apps, not real-time core firmware",
                ));
            }
            if !precompiled.insert((p.target.as_deref(), p.engine.as_deref())) {
                return Err(invalid(
                    field("target"),
                    "two precompiled payloads have the same target and engine",
                ));
            }
        }
        let max = if p.role == PayloadRole::Entry {
            limits.max_entry_size.min(limits.max_payload_size)
        } else {
            limits.max_payload_size
        };
        if p.size > max {
            return Err(PackageError::PayloadTooLarge {
                name: p.name.clone(),
                size: p.size,
                max,
            });
        }
        total = total.saturating_add(p.size);
    }
    if total > limits.max_total_size {
        return Err(PackageError::TotalTooLarge {
            size: total,
            max: limits.max_total_size,
        });
    }
    // A name may not also be a directory of another (`lib` and `lib/x`): unpacked to files,
    // one would shadow the other.
    for a in &names {
        if let Some(b) = names
            .range::<str, _>((std::ops::Bound::Excluded(*a), std::ops::Bound::Unbounded))
            .take_while(|b| b.starts_with(a))
            .find(|b| b.as_bytes().get(a.len()) == Some(&b'/'))
        {
            return Err(invalid(
                "payloads",
                format!("`{a}` is both a payload and a directory of payload `{b}`"),
            ));
        }
    }
    Ok(())
}

/// Checks a whole header against the prefix, `limits`, and its own manifest, and returns the
/// parsed manifest.
pub(crate) fn check_header(
    header: &PackageHeader,
    prefix_kind: PackageKind,
    limits: &Limits,
) -> Result<Manifest, PackageError> {
    if header.format != FORMAT_VERSION {
        return Err(invalid(
            "format",
            format!("is {}, but the prefix says {FORMAT_VERSION}", header.format),
        ));
    }
    if header.kind != prefix_kind {
        return Err(invalid(
            "kind",
            format!("is {}, but the prefix says {prefix_kind}", header.kind),
        ));
    }
    if header.version == 0 {
        return Err(invalid("version", "is 0; versions start at 1"));
    }
    check_payloads(header.kind, &header.payloads, limits)?;
    let entry_format_ok = matches!(
        (header.kind, header.entry_format),
        (
            PackageKind::App,
            EntryFormat::WasmComponent | EntryFormat::WasmModule
        ) | (PackageKind::Rtcore, EntryFormat::ElfArm32)
    );
    if !entry_format_ok {
        return Err(invalid(
            "entry_format",
            format!(
                "{} is not a format for a {} package",
                header.entry_format, header.kind
            ),
        ));
    }
    let manifest = Manifest::parse("app_manifest.json (in package)", header.manifest.as_bytes())
        .map_err(PackageError::Manifest)?;
    let entry_name = header.entry().map(|e| e.name.as_str()).unwrap_or_default();
    check_manifest_agrees(
        &manifest,
        header.kind,
        &header.component_id,
        &header.name,
        entry_name,
    )?;
    Ok(manifest)
}

/// The manifest and the header must describe the same app: same `ComponentId` and `Name`, an
/// `ApplicationType` matching the package kind, and an `EntryPoint` naming the entry payload.
pub(crate) fn check_manifest_agrees(
    manifest: &Manifest,
    kind: PackageKind,
    component_id: &ComponentId,
    name: &str,
    entry_name: &str,
) -> Result<(), PackageError> {
    let mismatch = |field: &str, manifest: String, header: String| PackageError::ManifestMismatch {
        field: field.to_owned(),
        manifest,
        header,
    };
    if manifest.component_id != *component_id {
        return Err(mismatch(
            "ComponentId",
            manifest.component_id.to_string(),
            component_id.to_string(),
        ));
    }
    if manifest.name != name {
        return Err(mismatch("Name", manifest.name.clone(), name.to_owned()));
    }
    if manifest.application_type != kind.application_type() {
        return Err(mismatch(
            "ApplicationType",
            manifest.application_type.to_string(),
            format!("kind {kind} (needs {})", kind.application_type()),
        ));
    }
    if manifest.entry_payload_name() != entry_name {
        return Err(mismatch(
            "EntryPoint",
            manifest.entry_point.clone(),
            format!("entry payload `{entry_name}`"),
        ));
    }
    Ok(())
}

/// Identifies the entry payload's format from its first bytes (up to [`ENTRY_SNIFF_LEN`]),
/// or says what is wrong with it for a `kind` package.
pub fn sniff_entry(kind: PackageKind, head: &[u8]) -> Result<EntryFormat, String> {
    match kind {
        PackageKind::App => sniff_wasm(head),
        PackageKind::Rtcore => sniff_arm_elf(head),
    }
}

fn sniff_wasm(head: &[u8]) -> Result<EntryFormat, String> {
    let (Some(magic), Some(version)) = (head.get(0..4), head.get(4..8)) else {
        return Err(format!(
            "is {} bytes long, too short for a WebAssembly header (8 bytes)",
            head.len()
        ));
    };
    if magic != b"\0asm" {
        return Err(format!(
            "does not start with the WebAssembly magic `\\0asm` (found {})",
            hex::encode(magic)
        ));
    }
    match version {
        [1, 0, 0, 0] => Ok(EntryFormat::WasmModule),
        [0x0d, 0, 1, 0] => Ok(EntryFormat::WasmComponent),
        other => Err(format!(
            "has an unknown WebAssembly version/layer {} (expected 01000000 for a module or \
             0d000100 for a component)",
            hex::encode(other)
        )),
    }
}

fn sniff_arm_elf(head: &[u8]) -> Result<EntryFormat, String> {
    let Some(ident) = head.get(0..ENTRY_SNIFF_LEN) else {
        return Err(format!(
            "is {} bytes long, too short for a 32-bit ELF header ({ENTRY_SNIFF_LEN} bytes)",
            head.len()
        ));
    };
    let u16_at = |at: usize| {
        ident
            .get(at..at + 2)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map(u16::from_le_bytes)
            .unwrap_or_default()
    };
    if ident.get(0..4) != Some(b"\x7fELF") {
        return Err("does not start with the ELF magic `\\x7fELF`".into());
    }
    let class = ident.get(4).copied().unwrap_or_default();
    if class != 1 {
        return Err(format!(
            "is not a 32-bit ELF file (EI_CLASS = {class}, expected 1)"
        ));
    }
    let data = ident.get(5).copied().unwrap_or_default();
    if data != 1 {
        return Err(format!(
            "is not a little-endian ELF file (EI_DATA = {data}, expected 1)"
        ));
    }
    let e_type = u16_at(16);
    if e_type != 2 {
        return Err(format!(
            "is not an ELF executable (e_type = {e_type}, expected 2 ET_EXEC)"
        ));
    }
    let e_machine = u16_at(18);
    if e_machine != 40 {
        return Err(format!(
            "is not ARM code (e_machine = {e_machine}, expected 40 EM_ARM)"
        ));
    }
    Ok(EntryFormat::ElfArm32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_names() {
        for ok in ["app.wasm", "bin/app", "a-b_c.D/e.f", "x"] {
            assert_eq!(check_payload_name(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(129);
        for bad in [
            "", "/bin/app", "bin//app", "bin/", "../x", "a/../b", "./a", "a/.", "a b", "a\\b", "é",
            &long,
        ] {
            assert!(check_payload_name(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn prefix_round_trip_and_refusals() {
        let p = Prefix {
            kind: PackageKind::Rtcore,
            header_len: 300,
        };
        let bytes = p.encode();
        assert_eq!(Prefix::decode(&bytes, MAX_HEADER_LEN).unwrap(), p);
        let mut bad = bytes;
        bad[11] = 1;
        assert!(matches!(
            Prefix::decode(&bad, MAX_HEADER_LEN),
            Err(PackageError::Flags { flags: 1 })
        ));
        let mut bad = bytes;
        bad[10] = 3;
        assert!(matches!(
            Prefix::decode(&bad, MAX_HEADER_LEN),
            Err(PackageError::UnknownKind { code: 3 })
        ));
        assert!(matches!(
            Prefix::decode(&bytes, 299),
            Err(PackageError::HeaderLength { len: 300, max: 299 })
        ));
    }

    #[test]
    fn entry_sniffing() {
        assert_eq!(
            sniff_entry(PackageKind::App, b"\0asm\x01\0\0\0"),
            Ok(EntryFormat::WasmModule)
        );
        assert_eq!(
            sniff_entry(PackageKind::App, b"\0asm\x0d\0\x01\0"),
            Ok(EntryFormat::WasmComponent)
        );
        assert!(sniff_entry(PackageKind::App, b"\0asm\x02\0\0\0").is_err());
        assert!(sniff_entry(PackageKind::App, b"\0asm").is_err());
        assert!(sniff_entry(PackageKind::App, b"\x7fELF\x01\x01\x01\0").is_err());

        let mut elf = [0u8; 52];
        elf[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
        elf[16] = 2;
        elf[18] = 40;
        assert_eq!(
            sniff_entry(PackageKind::Rtcore, &elf),
            Ok(EntryFormat::ElfArm32)
        );
        let mut e = elf;
        e[4] = 2;
        assert!(
            sniff_entry(PackageKind::Rtcore, &e)
                .unwrap_err()
                .contains("EI_CLASS")
        );
        let mut e = elf;
        e[5] = 2;
        assert!(
            sniff_entry(PackageKind::Rtcore, &e)
                .unwrap_err()
                .contains("EI_DATA")
        );
        let mut e = elf;
        e[16] = 3;
        assert!(
            sniff_entry(PackageKind::Rtcore, &e)
                .unwrap_err()
                .contains("e_type")
        );
        let mut e = elf;
        e[18] = 62;
        assert!(
            sniff_entry(PackageKind::Rtcore, &e)
                .unwrap_err()
                .contains("e_machine")
        );
        assert!(sniff_entry(PackageKind::Rtcore, &elf[..51]).is_err());
    }
}
