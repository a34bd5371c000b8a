//! The rollback rule, shared by packages and the trust document.
//!
//! Versions are plain `u64`s, strictly monotonic per component (semver is not used: a device
//! only needs "newer or not", and one integer has one spelling). A candidate is refused when its
//! version is below the highest version seen for its component; the same version is accepted only
//! when its signed bytes are the same (a reinstall), because a signer who reuses a version number
//! for different content would otherwise let an attacker swap one for the other.
//!
//! This module is pure logic: recording what was seen, durably, is the runtime's job.

use std::fmt;

/// What a device remembers about the newest accepted version of one component.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRecord {
    pub version: u64,
    /// SHA-256 of the signed bytes (for a package, its signed header; for the trust document,
    /// its signed payload).
    #[serde(with = "hex_digest")]
    pub header_sha256: [u8; 32],
}

impl fmt::Debug for RollbackRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RollbackRecord {{ version: {}, header_sha256: {} }}",
            self.version,
            hex::encode(self.header_sha256)
        )
    }
}

/// Why a candidate would roll a component back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RollbackError {
    #[error("version {candidate} is older than version {seen}, already seen: rollback refused")]
    Older { candidate: u64, seen: u64 },
    #[error(
        "version {version} reused with different content (signed digest {candidate} differs from \
         the recorded {seen})"
    )]
    VersionReused {
        version: u64,
        candidate: String,
        seen: String,
    },
}

/// What accepting a candidate means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RollbackDecision {
    /// Nothing was seen for this component before.
    FirstInstall,
    /// The candidate is newer than `from`.
    Upgrade { from: u64 },
    /// The candidate is byte-for-byte the signed content already seen.
    Reinstall,
}

/// Applies the rollback rule to `candidate` given the record of the newest version `seen`.
pub fn check(
    seen: Option<&RollbackRecord>,
    candidate: &RollbackRecord,
) -> Result<RollbackDecision, RollbackError> {
    let Some(seen) = seen else {
        return Ok(RollbackDecision::FirstInstall);
    };
    match candidate.version.cmp(&seen.version) {
        std::cmp::Ordering::Less => Err(RollbackError::Older {
            candidate: candidate.version,
            seen: seen.version,
        }),
        std::cmp::Ordering::Greater => Ok(RollbackDecision::Upgrade { from: seen.version }),
        std::cmp::Ordering::Equal if candidate.header_sha256 == seen.header_sha256 => {
            Ok(RollbackDecision::Reinstall)
        }
        std::cmp::Ordering::Equal => Err(RollbackError::VersionReused {
            version: candidate.version,
            candidate: hex::encode(candidate.header_sha256),
            seen: hex::encode(seen.header_sha256),
        }),
    }
}

/// Serde helper: a 32-byte digest as 64 lower-case hex digits.
pub(crate) mod hex_digest {
    pub(crate) fn serialize<S: serde::Serializer>(d: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(d))
    }

    pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<[u8; 32], D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{}` is not a SHA-256 digest (expected 64 lower-case hex digits)",
                s.chars().take(80).collect::<String>()
            ))
        })
    }

    /// Parses exactly 64 lower-case hex digits.
    pub(crate) fn parse(s: &str) -> Option<[u8; 32]> {
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(version: u64, byte: u8) -> RollbackRecord {
        RollbackRecord {
            version,
            header_sha256: [byte; 32],
        }
    }

    #[test]
    fn the_rule() {
        assert_eq!(check(None, &rec(1, 1)), Ok(RollbackDecision::FirstInstall));
        assert_eq!(
            check(Some(&rec(5, 1)), &rec(6, 2)),
            Ok(RollbackDecision::Upgrade { from: 5 })
        );
        assert_eq!(
            check(Some(&rec(5, 1)), &rec(5, 1)),
            Ok(RollbackDecision::Reinstall)
        );
        assert!(matches!(
            check(Some(&rec(5, 1)), &rec(5, 2)),
            Err(RollbackError::VersionReused { version: 5, .. })
        ));
        assert_eq!(
            check(Some(&rec(5, 1)), &rec(4, 1)),
            Err(RollbackError::Older {
                candidate: 4,
                seen: 5
            })
        );
        assert_eq!(
            check(Some(&rec(u64::MAX, 1)), &rec(0, 1)),
            Err(RollbackError::Older {
                candidate: 0,
                seen: u64::MAX
            })
        );
    }

    #[test]
    fn record_json_round_trip() {
        let r = rec(7, 0xab);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            format!(
                "{{\"version\":7,\"header_sha256\":\"{}\"}}",
                "ab".repeat(32)
            )
        );
        assert_eq!(serde_json::from_str::<RollbackRecord>(&json).unwrap(), r);
        assert!(
            serde_json::from_str::<RollbackRecord>(&json.replace("ab", "AB")).is_err(),
            "upper-case digest accepted"
        );
    }
}
