//! P-256 ECDSA keys: PEM encoding, key ids, roles, and the one signing and verifying primitive the
//! rest of the crate uses.
//!
//! Private keys are PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), public keys SPKI PEM
//! (`-----BEGIN PUBLIC KEY-----`), so `openssl` reads and writes both. A key's id is the
//! lower-case hex SHA-256 of its SPKI DER encoding: it names the key, not a label someone chose.
//!
//! Signatures are 64 bytes, `r || s` big-endian, always in low-S form: [`PrivateKey`] normalises
//! what it produces and [`PublicKey::verify_prehash`] refuses a high-S signature, so each
//! (key, message) pair has exactly one accepted signature encoding.

use std::fmt;
use std::str::FromStr;

use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::der::zeroize::Zeroizing;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use sha2::{Digest, Sha256};

/// Length of a raw signature: `r || s`, 32 bytes each.
pub const SIGNATURE_LEN: usize = 64;

/// Length of a raw key id (a SHA-256 digest).
pub const KEY_ID_LEN: usize = 32;

/// What a key may sign. The root key signs the trust list and unlock tokens; every other role
/// signs one kind of content.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRole {
    /// The trust anchor: signs the trust list and development unlock tokens.
    Root,
    /// Signs application packages (`kind: app`).
    App,
    /// Signs real-time core firmware packages (`kind: rtcore`).
    Rtcore,
    /// Signs OS images.
    Os,
    /// Signs update metadata.
    UpdateMetadata,
    /// Signs app or rtcore packages, honoured only on a device unlocked by a signed token.
    Development,
}

impl KeyRole {
    /// Every role, in declaration order.
    pub const ALL: [KeyRole; 6] = [
        KeyRole::Root,
        KeyRole::App,
        KeyRole::Rtcore,
        KeyRole::Os,
        KeyRole::UpdateMetadata,
        KeyRole::Development,
    ];

    /// The role's name as files and the command line spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Root => "root",
            KeyRole::App => "app",
            KeyRole::Rtcore => "rtcore",
            KeyRole::Os => "os",
            KeyRole::UpdateMetadata => "update-metadata",
            KeyRole::Development => "development",
        }
    }
}

impl fmt::Display for KeyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no key role.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown key role `{0}` (expected root, app, rtcore, os, update-metadata or development)")]
pub struct UnknownKeyRole(pub String);

impl FromStr for KeyRole {
    type Err = UnknownKeyRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownKeyRole(s.chars().take(64).collect()))
    }
}

/// A key's id: the SHA-256 of its SPKI DER encoding. Displayed and serialised as 64 lower-case
/// hex digits; parsing accepts only that form, so one key has one spelling.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl KeyId {
    /// The id of the key whose SPKI DER encoding is `spki_der`.
    pub fn of_spki_der(spki_der: &[u8]) -> Self {
        KeyId(Sha256::digest(spki_der).into())
    }

    /// Wraps raw id bytes, as the package signature block stores them.
    pub fn from_bytes(bytes: [u8; KEY_ID_LEN]) -> Self {
        KeyId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_ID_LEN] {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A string that is not a key id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a key id (expected 64 lower-case hex digits)")]
pub struct KeyIdError(pub String);

impl FromStr for KeyId {
    type Err = KeyIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || KeyIdError(s.chars().take(80).collect());
        if s.len() != 2 * KEY_ID_LEN || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(fail());
        }
        let mut bytes = [0u8; KEY_ID_LEN];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| fail())?;
        Ok(KeyId(bytes))
    }
}

impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a key could not be read or a signature not checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("not a P-256 public key in SPKI PEM (`-----BEGIN PUBLIC KEY-----`): {0}")]
    PublicKeyPem(String),
    #[error("not a P-256 private key in PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`): {0}")]
    PrivateKeyPem(String),
    #[error("could not encode key: {0}")]
    Encode(String),
}

/// Why a signature was refused. Deliberately carries no detail beyond which check failed: the
/// caller knows which key and which bytes it asked about and names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("signature is not a valid P-256 (r, s) pair")]
    Malformed,
    #[error("signature is not in canonical low-S form")]
    HighS,
    #[error("signature does not verify")]
    Mismatch,
}

/// A P-256 public key with its id.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl PublicKey {
    /// Reads an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| KeyError::PublicKeyPem(e.to_string()))?;
        Self::from_verifying_key(key)
    }

    fn from_verifying_key(key: VerifyingKey) -> Result<Self, KeyError> {
        let der = key
            .to_public_key_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(PublicKey {
            key,
            id: KeyId::of_spki_der(der.as_bytes()),
        })
    }

    /// The key as SPKI PEM with `\n` line endings.
    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Checks a 64-byte `r || s` signature over a message whose SHA-256 is `digest`.
    ///
    /// Taking the digest rather than the message lets the package reader hash the signed bytes
    /// once, for both this check and the rollback record.
    pub fn verify_prehash(
        &self,
        digest: &[u8; 32],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), SignatureError> {
        let sig = Signature::from_slice(signature).map_err(|_| SignatureError::Malformed)?;
        if sig.normalize_s().is_some() {
            return Err(SignatureError::HighS);
        }
        self.key
            .verify_prehash(digest, &sig)
            .map_err(|_| SignatureError::Mismatch)
    }

    /// Checks a signature over `message` (hashed with SHA-256).
    pub fn verify(
        &self,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), SignatureError> {
        self.verify_prehash(&Sha256::digest(message).into(), signature)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

/// A P-256 private key. Its `Debug` shows only the key id; the secret scalar is zeroed on drop by
/// `p256`.
#[derive(Clone)]
pub struct PrivateKey {
    key: SigningKey,
    public: PublicKey,
}

impl PrivateKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let key = SigningKey::random(&mut rand_core::OsRng);
        Self::from_signing_key(key)
    }

    fn from_signing_key(key: SigningKey) -> Result<Self, KeyError> {
        let public = PublicKey::from_verifying_key(*key.verifying_key())?;
        Ok(PrivateKey { key, public })
    }

    /// Reads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = SigningKey::from_pkcs8_pem(pem.trim())
            .map_err(|e| KeyError::PrivateKeyPem(e.to_string()))?;
        Self::from_signing_key(key)
    }

    /// The key as PKCS#8 PEM with `\n` line endings; the buffer is zeroed on drop.
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn id(&self) -> KeyId {
        self.public.id
    }

    /// Signs a message whose SHA-256 is `digest`; returns `r || s` in low-S form.
    pub fn sign_prehash(&self, digest: &[u8; 32]) -> Result<[u8; SIGNATURE_LEN], KeyError> {
        let sig: Signature = self
            .key
            .sign_prehash(digest)
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        let sig = sig.normalize_s().unwrap_or(sig);
        Ok(sig.to_bytes().into())
    }

    /// Signs `message` (hashed with SHA-256); returns `r || s` in low-S form.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; SIGNATURE_LEN], KeyError> {
        self.sign_prehash(&Sha256::digest(message).into())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.public.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in KeyRole::ALL {
            assert_eq!(role.as_str().parse::<KeyRole>().unwrap(), role);
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<KeyRole>(&json).unwrap(), role);
        }
        assert!("App".parse::<KeyRole>().is_err());
        assert!("update_metadata".parse::<KeyRole>().is_err());
    }

    #[test]
    fn pem_round_trip_keeps_the_id() {
        let key = PrivateKey::generate().unwrap();
        let again = PrivateKey::from_pem(&key.to_pem().unwrap()).unwrap();
        assert_eq!(key.id(), again.id());
        let public = PublicKey::from_pem(&key.public_key().to_pem().unwrap()).unwrap();
        assert_eq!(public.id(), key.id());
        assert!(
            key.to_pem()
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(
            public
                .to_pem()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
    }

    #[test]
    fn key_id_is_sha256_of_spki_der() {
        let key = PrivateKey::generate().unwrap();
        let der = key.public.key.to_public_key_der().unwrap();
        assert_eq!(
            key.id().to_string(),
            hex::encode(Sha256::digest(der.as_bytes()))
        );
    }

    #[test]
    fn key_id_parsing_is_strict() {
        let id = PrivateKey::generate().unwrap().id();
        assert_eq!(id.to_string().parse::<KeyId>().unwrap(), id);
        assert!(id.to_string().to_uppercase().parse::<KeyId>().is_err());
        assert!(id.to_string()[1..].parse::<KeyId>().is_err());
        assert!(format!("{id}0").parse::<KeyId>().is_err());
    }

    #[test]
    fn wrong_pem_kinds_are_refused() {
        let key = PrivateKey::generate().unwrap();
        assert!(PublicKey::from_pem(&key.to_pem().unwrap()).is_err());
        assert!(PrivateKey::from_pem(&key.public_key().to_pem().unwrap()).is_err());
        assert!(PublicKey::from_pem("").is_err());
    }

    #[test]
    fn signatures_verify_and_high_s_is_refused() {
        let key = PrivateKey::generate().unwrap();
        let other = PrivateKey::generate().unwrap();
        let sig = key.sign(b"hello").unwrap();
        key.public_key().verify(b"hello", &sig).unwrap();
        assert_eq!(
            key.public_key().verify(b"hellO", &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            other.public_key().verify(b"hello", &sig),
            Err(SignatureError::Mismatch)
        );
        // The same signature with s replaced by n - s verifies mathematically; it must be refused.
        let parsed = Signature::from_slice(&sig).unwrap();
        let (r, s) = parsed.split_scalars();
        let high = Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        let high: [u8; SIGNATURE_LEN] = high.to_bytes().into();
        assert_eq!(
            key.public_key().verify(b"hello", &high),
            Err(SignatureError::HighS)
        );
        assert_eq!(
            key.public_key().verify(b"hello", &[0; SIGNATURE_LEN]),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let key = PrivateKey::generate().unwrap();
        let pem = key.to_pem().unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.id().to_string()));
        let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
        assert!(!debug.contains(&body));
    }
}
