//! Signed JSON documents: a DSSE-style envelope whose signatures cover the exact payload bytes.
//!
//! ```json
//! {"payloadType": "application/vnd.warden.trust-keys+json",
//!  "payload": "<base64 of the exact payload bytes>",
//!  "signatures": [{"keyid": "<64 hex>", "sig": "<base64 of the 64-byte r||s>"}]}
//! ```
//!
//! A signature is a P-256 ECDSA signature (SHA-256) over the pre-authentication encoding
//! [`pae`]: `"WardenSig-v1" || LE64(len(type)) || type || LE64(len(payload)) || payload`. The
//! length prefixes make the encoding injective, and binding the payload type means a signature
//! made for one kind of document cannot be replayed as another. The package format signs bytes
//! that start with its own magic (`\x89WPK`), so the two can never collide.
//!
//! Verification parses only the outer envelope (strictly, size-bounded), checks a signature by a
//! key the caller trusts for the required role over the decoded bytes, and only then hands those
//! bytes to a parser: see [`Envelope::verify`] and [`VerifiedPayload::parse`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::keys::{KeyId, KeyRole, PrivateKey, PublicKey, SIGNATURE_LEN, SignatureError};

/// Domain-separation string at the start of every signed encoding.
pub const DOMAIN: &[u8; 12] = b"WardenSig-v1";

/// Largest envelope accepted, in bytes of JSON.
pub const MAX_ENVELOPE_LEN: usize = 1 << 20;

/// Most signatures one envelope may carry.
pub const MAX_SIGNATURES: usize = 16;

/// Where verification finds the keys it trusts for a role. The trust store implements it; so
/// does a plain list of root keys.
pub trait KeySource {
    /// The key with this id if it is trusted to sign for `role`, else `None`.
    fn key_for_role(&self, id: &KeyId, role: KeyRole) -> Option<&PublicKey>;
}

/// A set of keys all trusted for one role.
#[derive(Debug, Clone, Copy)]
pub struct KeysWithRole<'a> {
    pub keys: &'a [PublicKey],
    pub role: KeyRole,
}

impl KeySource for KeysWithRole<'_> {
    fn key_for_role(&self, id: &KeyId, role: KeyRole) -> Option<&PublicKey> {
        if role != self.role {
            return None;
        }
        self.keys.iter().find(|k| k.id() == *id)
    }
}

/// The pre-authentication encoding a signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(DOMAIN.len() + 16 + payload_type.len() + payload.len());
    out.extend_from_slice(DOMAIN);
    out.extend_from_slice(&(payload_type.len() as u64).to_le_bytes());
    out.extend_from_slice(payload_type.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Why an envelope was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("envelope is {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("envelope is not valid: {0}")]
    Json(String),
    #[error("envelope payloadType is `{found}`, expected `{expected}`")]
    PayloadType { expected: String, found: String },
    #[error("envelope payload is not valid base64: {0}")]
    PayloadBase64(String),
    #[error("envelope has no signatures")]
    NoSignatures,
    #[error("envelope has {count} signatures, more than the limit of {max}")]
    TooManySignatures { count: usize, max: usize },
    #[error("envelope has two signatures by key {keyid}")]
    DuplicateSignature { keyid: KeyId },
    #[error("signature by key {keyid} is not base64 of {SIGNATURE_LEN} bytes")]
    SignatureEncoding { keyid: KeyId },
    #[error(
        "envelope is not signed by any key trusted for role {role} (signed by: {})",
        signed_by.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
    )]
    NoTrustedSignature {
        role: KeyRole,
        signed_by: Vec<KeyId>,
    },
    #[error("signature by {role} key {keyid} is refused: {reason}")]
    BadSignature {
        keyid: KeyId,
        role: KeyRole,
        reason: SignatureError,
    },
    #[error("signed {payload_type} payload is not valid: {error}")]
    Payload { payload_type: String, error: String },
    #[error("could not sign envelope: {0}")]
    Sign(String),
}

/// One signature in an envelope.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    pub keyid: KeyId,
    /// Base64 of the 64-byte `r || s` signature.
    pub sig: String,
}

/// A signed document as stored: nothing in it is trusted until [`Envelope::verify`] succeeds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 (standard alphabet, padded) of the exact signed payload bytes.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// Payload bytes whose signature verified, and which trusted key signed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedPayload {
    pub payload_type: String,
    pub signed_by: KeyId,
    pub bytes: Vec<u8>,
}

impl VerifiedPayload {
    /// Parses the verified bytes as JSON into `T` (which should `deny_unknown_fields`).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, EnvelopeError> {
        serde_json::from_slice(&self.bytes).map_err(|e| EnvelopeError::Payload {
            payload_type: self.payload_type.clone(),
            error: e.to_string(),
        })
    }
}

impl Envelope {
    /// Signs `payload` as a document of `payload_type` with each of `keys`.
    pub fn sign(
        payload_type: &str,
        payload: &[u8],
        keys: &[&PrivateKey],
    ) -> Result<Self, EnvelopeError> {
        let message = pae(payload_type, payload);
        let signatures = keys
            .iter()
            .map(|key| {
                let sig = key
                    .sign(&message)
                    .map_err(|e| EnvelopeError::Sign(e.to_string()))?;
                Ok(EnvelopeSignature {
                    keyid: key.id(),
                    sig: BASE64.encode(sig),
                })
            })
            .collect::<Result<Vec<_>, EnvelopeError>>()?;
        Ok(Envelope {
            payload_type: payload_type.to_owned(),
            payload: BASE64.encode(payload),
            signatures,
        })
    }

    /// Parses an envelope from JSON, strictly and within [`MAX_ENVELOPE_LEN`]. The payload stays
    /// opaque.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_LEN {
            return Err(EnvelopeError::TooLarge {
                len: bytes.len(),
                max: MAX_ENVELOPE_LEN,
            });
        }
        serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Json(e.to_string()))
    }

    /// The envelope as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Checks that this is a `payload_type` document signed by a key `keys` trusts for `role`,
    /// and returns the exact signed bytes.
    ///
    /// One valid signature by a trusted key suffices; signatures by keys not trusted for `role`
    /// are ignored. If no trusted signature verifies, the error names the first that failed, or
    /// lists the signers when none was trusted.
    pub fn verify(
        &self,
        payload_type: &str,
        role: KeyRole,
        keys: &dyn KeySource,
    ) -> Result<VerifiedPayload, EnvelopeError> {
        if self.payload_type != payload_type {
            return Err(EnvelopeError::PayloadType {
                expected: payload_type.to_owned(),
                found: self.payload_type.chars().take(128).collect(),
            });
        }
        if self.signatures.is_empty() {
            return Err(EnvelopeError::NoSignatures);
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(EnvelopeError::TooManySignatures {
                count: self.signatures.len(),
                max: MAX_SIGNATURES,
            });
        }
        for (i, s) in self.signatures.iter().enumerate() {
            if self.signatures[..i].iter().any(|t| t.keyid == s.keyid) {
                return Err(EnvelopeError::DuplicateSignature { keyid: s.keyid });
            }
        }
        let payload = BASE64
            .decode(&self.payload)
            .map_err(|e| EnvelopeError::PayloadBase64(e.to_string()))?;
        let message = pae(&self.payload_type, &payload);
        let mut first_failure = None;
        for s in &self.signatures {
            let Some(key) = keys.key_for_role(&s.keyid, role) else {
                continue;
            };
            let sig = decode_signature(&s.sig)
                .ok_or(EnvelopeError::SignatureEncoding { keyid: s.keyid })?;
            match key.verify(&message, &sig) {
                Ok(()) => {
                    return Ok(VerifiedPayload {
                        payload_type: self.payload_type.clone(),
                        signed_by: s.keyid,
                        bytes: payload,
                    });
                }
                Err(reason) => {
                    first_failure.get_or_insert(EnvelopeError::BadSignature {
                        keyid: s.keyid,
                        role,
                        reason,
                    });
                }
            }
        }
        Err(
            first_failure.unwrap_or_else(|| EnvelopeError::NoTrustedSignature {
                role,
                signed_by: self.signatures.iter().map(|s| s.keyid).collect(),
            }),
        )
    }
}

fn decode_signature(b64: &str) -> Option<[u8; SIGNATURE_LEN]> {
    // A 64-byte value is 88 base64 characters; refuse anything longer before decoding.
    if b64.len() > 88 {
        return None;
    }
    BASE64.decode(b64).ok()?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "application/vnd.warden.test+json";

    fn keys() -> (PrivateKey, PrivateKey) {
        (
            PrivateKey::generate().unwrap(),
            PrivateKey::generate().unwrap(),
        )
    }

    #[test]
    fn pae_is_length_prefixed() {
        assert_eq!(
            pae("ab", b"c"),
            [
                &b"WardenSig-v1"[..],
                &[2, 0, 0, 0, 0, 0, 0, 0],
                b"ab",
                &[1, 0, 0, 0, 0, 0, 0, 0],
                b"c"
            ]
            .concat()
        );
        assert_ne!(pae("ab", b"c"), pae("a", b"bc"));
    }

    #[test]
    fn sign_verify_round_trip_through_json() {
        let (root, _) = keys();
        let env = Envelope::sign(TYPE, b"{\"a\":1}", &[&root]).unwrap();
        let env = Envelope::from_json(env.to_json().as_bytes()).unwrap();
        let trusted = [root.public_key().clone()];
        let src = KeysWithRole {
            keys: &trusted,
            role: KeyRole::Root,
        };
        let v = env.verify(TYPE, KeyRole::Root, &src).unwrap();
        assert_eq!(v.bytes, b"{\"a\":1}");
        assert_eq!(v.signed_by, root.id());
        let parsed: serde_json::Value = v.parse().unwrap();
        assert_eq!(parsed["a"], 1);
    }

    #[test]
    fn refusals() {
        let (root, other) = keys();
        let trusted = [root.public_key().clone()];
        let src = KeysWithRole {
            keys: &trusted,
            role: KeyRole::Root,
        };
        let env = Envelope::sign(TYPE, b"payload", &[&root]).unwrap();

        let err = env.verify("other/type", KeyRole::Root, &src).unwrap_err();
        assert!(matches!(err, EnvelopeError::PayloadType { .. }), "{err}");

        // Trusted for another role only.
        let err = env.verify(TYPE, KeyRole::App, &src).unwrap_err();
        assert!(
            matches!(err, EnvelopeError::NoTrustedSignature { .. }),
            "{err}"
        );

        let by_other = Envelope::sign(TYPE, b"payload", &[&other]).unwrap();
        let err = by_other.verify(TYPE, KeyRole::Root, &src).unwrap_err();
        assert!(err.to_string().contains(&other.id().to_string()), "{err}");

        // Payload changed without re-signing.
        let mut tampered = env.clone();
        tampered.payload = BASE64.encode(b"payloaD");
        let err = tampered.verify(TYPE, KeyRole::Root, &src).unwrap_err();
        assert!(matches!(err, EnvelopeError::BadSignature { .. }), "{err}");

        // Payload type changed: the signature covers it.
        let mut retyped = Envelope::sign("other/type", b"payload", &[&root]).unwrap();
        retyped.payload_type = TYPE.to_owned();
        assert!(retyped.verify(TYPE, KeyRole::Root, &src).is_err());

        let mut dup = env.clone();
        dup.signatures.push(dup.signatures[0].clone());
        assert!(matches!(
            dup.verify(TYPE, KeyRole::Root, &src).unwrap_err(),
            EnvelopeError::DuplicateSignature { .. }
        ));

        let mut none = env.clone();
        none.signatures.clear();
        assert!(matches!(
            none.verify(TYPE, KeyRole::Root, &src).unwrap_err(),
            EnvelopeError::NoSignatures
        ));

        let mut short = env.clone();
        short.signatures[0].sig = BASE64.encode([1u8; 63]);
        assert!(matches!(
            short.verify(TYPE, KeyRole::Root, &src).unwrap_err(),
            EnvelopeError::SignatureEncoding { .. }
        ));
    }

    #[test]
    fn an_untrusted_extra_signature_does_not_hurt() {
        let (root, other) = keys();
        let trusted = [root.public_key().clone()];
        let src = KeysWithRole {
            keys: &trusted,
            role: KeyRole::Root,
        };
        let env = Envelope::sign(TYPE, b"x", &[&other, &root]).unwrap();
        assert_eq!(
            env.verify(TYPE, KeyRole::Root, &src).unwrap().signed_by,
            root.id()
        );
    }

    #[test]
    fn outer_parse_is_strict_and_bounded() {
        let (root, _) = keys();
        let json = Envelope::sign(TYPE, b"x", &[&root]).unwrap().to_json();
        let extra = json.replacen('{', "{\"extra\": 1, ", 1);
        assert!(matches!(
            Envelope::from_json(extra.as_bytes()),
            Err(EnvelopeError::Json(_))
        ));
        let big = vec![b' '; MAX_ENVELOPE_LEN + 1];
        assert!(matches!(
            Envelope::from_json(&big),
            Err(EnvelopeError::TooLarge { .. })
        ));
    }
}
