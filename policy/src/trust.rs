//! The trust store: which keys a device trusts, for what, and the development unlock token.
//!
//! A trust file holds the root public keys (the anchor: on a device the file is part of the signed
//! OS image, so nothing in it is taken from the network) and a root-signed [`Envelope`] listing
//! every other key with its role:
//!
//! ```json
//! {"format": 1,
//!  "root_keys": [{"id": "<64 hex>", "public_key": "-----BEGIN PUBLIC KEY-----...", "comment": ""}],
//!  "keys": {"payloadType": "application/vnd.warden.trust-keys+json", "payload": "...",
//!           "signatures": [...]}}
//! ```
//!
//! The signed payload is `{"version": N, "keys": [{"id", "role", "public_key", "comment"}]}`.
//! Loading checks each key id against its key, the root signature, and that no id repeats;
//! nothing from the payload is used before its signature verified. The full specification is
//! `docs/formats/trust.md`.

use sha2::{Digest, Sha256};

use crate::envelope::{Envelope, EnvelopeError, KeySource, KeysWithRole};
use crate::keys::{KeyError, KeyId, KeyRole, PrivateKey, PublicKey};
use crate::rollback::RollbackRecord;

/// `payloadType` of the root-signed key list.
pub const TRUST_KEYS_PAYLOAD_TYPE: &str = "application/vnd.warden.trust-keys+json";

/// `payloadType` of a development unlock token.
pub const UNLOCK_PAYLOAD_TYPE: &str = "application/vnd.warden.unlock+json";

/// The trust file format this code reads and writes.
pub const TRUST_FORMAT: u32 = 1;

/// Largest trust file accepted, in bytes.
pub const MAX_TRUST_FILE_LEN: usize = 1 << 20;

/// Most keys (root and listed together) a trust file may hold.
pub const MAX_KEYS: usize = 1024;

/// Longest key comment, in bytes.
pub const MAX_COMMENT_LEN: usize = 256;

/// Longest device id, in bytes.
pub const MAX_DEVICE_ID_LEN: usize = 256;

/// Why a trust file, a key or an unlock token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    #[error("trust file is {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("trust file is not valid: {0}")]
    Json(String),
    #[error("trust file format is {found}, this build reads format {TRUST_FORMAT}")]
    Format { found: u32 },
    #[error("trust file lists no root key")]
    NoRootKeys,
    #[error("trust file holds {count} keys, more than the limit of {max}")]
    TooManyKeys { count: usize, max: usize },
    #[error("public key listed as {listed} cannot be read: {source}")]
    PublicKey {
        listed: KeyId,
        #[source]
        source: KeyError,
    },
    #[error("key listed as {listed} actually has id {actual}")]
    KeyIdMismatch { listed: KeyId, actual: KeyId },
    #[error("key {id} is listed more than once")]
    DuplicateKey { id: KeyId },
    #[error(
        "key {id} is listed with role root; root keys belong in `root_keys`, not the signed list"
    )]
    RootInKeyList { id: KeyId },
    #[error("comment of key {id} is {len} bytes, more than the limit of {MAX_COMMENT_LEN}")]
    CommentTooLong { id: KeyId, len: usize },
    #[error("trust key list version is 0; versions start at 1")]
    VersionZero,
    #[error("trust key list version {0} cannot be raised further")]
    VersionExhausted(u64),
    #[error("trust key list: {0}")]
    KeyList(#[source] EnvelopeError),
    #[error("key {id} is not a root key of this trust file")]
    NotARootKey { id: KeyId },
    #[error("key {id} is not in the trust store")]
    UnknownKey { id: KeyId },
    #[error("wrong key role: key {id} has role {role}, but {required} is required")]
    WrongRole {
        id: KeyId,
        role: KeyRole,
        required: String,
    },
    #[error(
        "development key {id} is honoured only on a device unlocked by a signed token, and no \
         unlock token was given"
    )]
    DevelopmentKeyLocked { id: KeyId },
    #[error("unlock token: {0}")]
    Unlock(#[from] UnlockError),
    #[error("device id `{0}` is not valid (1 to 256 characters from A-Z a-z 0-9 . _ : -)")]
    DeviceId(String),
    #[error("an unlock token lists no development key")]
    NoDevelopmentKeys,
    #[error("could not encode the trust file: {0}")]
    Encode(String),
}

/// Why a development unlock token does not unlock a key on this device.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnlockError {
    #[error("not accepted: {0}")]
    Envelope(#[source] EnvelopeError),
    #[error("token is for device `{token_device}`, not this device `{device}`")]
    WrongDevice {
        token_device: String,
        device: String,
    },
    #[error("token expired at {expires} (unix seconds); it is now {now}")]
    Expired { expires: u64, now: u64 },
    #[error("token does not list development key {id}")]
    KeyNotListed { id: KeyId },
    #[error("an unlock token was given but the device id is not known")]
    NoDeviceId,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustFileJson {
    format: u32,
    root_keys: Vec<RootKeyJson>,
    keys: Envelope,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RootKeyJson {
    id: KeyId,
    public_key: String,
    #[serde(default)]
    comment: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyListJson {
    version: u64,
    keys: Vec<KeyEntryJson>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntryJson {
    id: KeyId,
    role: KeyRole,
    public_key: String,
    #[serde(default)]
    comment: String,
}

/// The payload of a development unlock token.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockGrant {
    /// The one device this token unlocks, compared byte for byte.
    pub device_id: String,
    /// Unix seconds; the token is honoured while `now < expires`.
    pub expires: u64,
    /// The development keys honoured on that device.
    pub development_keys: Vec<KeyId>,
}

/// A development unlock token as read from its file; nothing in it is trusted until
/// [`TrustStore::verify_unlock`] checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnlockToken(Envelope);

impl UnlockToken {
    /// Parses the token's envelope (strict, bounded); the payload stays opaque.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Envelope::from_json(bytes).map(UnlockToken)
    }

    pub fn envelope(&self) -> &Envelope {
        &self.0
    }
}

/// What a verification may rely on about the device it runs for.
#[derive(Clone, Debug, Default)]
pub struct VerifyContext {
    /// This device's id; needed only to honour an unlock token.
    pub device_id: Option<String>,
    /// The current time, unix seconds, from a clock the caller trusts.
    pub now: u64,
    /// The development unlock token installed on this device, if any.
    pub unlock: Option<UnlockToken>,
}

impl VerifyContext {
    /// A device without an unlock token: development keys are refused.
    pub fn locked(now: u64) -> Self {
        VerifyContext {
            device_id: None,
            now,
            unlock: None,
        }
    }

    /// A device `device_id` that holds `unlock`.
    pub fn unlocked(device_id: impl Into<String>, now: u64, unlock: UnlockToken) -> Self {
        VerifyContext {
            device_id: Some(device_id.into()),
            now,
            unlock: Some(unlock),
        }
    }
}

/// One key the store trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey {
    pub key: PublicKey,
    pub role: KeyRole,
    pub comment: String,
}

impl TrustedKey {
    pub fn id(&self) -> KeyId {
        self.key.id()
    }
}

/// A signer the store accepted for some content, and on what grounds.
#[derive(Clone, Copy, Debug)]
pub struct AuthorizedSigner<'a> {
    pub key: &'a TrustedKey,
    /// True when the key is a development key honoured because of a valid unlock token.
    pub via_unlock: bool,
}

/// A verified trust file.
#[derive(Clone, Debug)]
pub struct TrustStore {
    version: u64,
    roots: Vec<TrustedKey>,
    keys: Vec<TrustedKey>,
    payload_sha256: [u8; 32],
}

impl KeySource for TrustStore {
    fn key_for_role(&self, id: &KeyId, role: KeyRole) -> Option<&PublicKey> {
        self.lookup(id).filter(|k| k.role == role).map(|k| &k.key)
    }
}

fn read_key(listed: KeyId, pem: &str) -> Result<PublicKey, TrustError> {
    let key =
        PublicKey::from_pem(pem).map_err(|source| TrustError::PublicKey { listed, source })?;
    if key.id() != listed {
        return Err(TrustError::KeyIdMismatch {
            listed,
            actual: key.id(),
        });
    }
    Ok(key)
}

fn check_comment(id: KeyId, comment: &str) -> Result<(), TrustError> {
    if comment.len() > MAX_COMMENT_LEN {
        return Err(TrustError::CommentTooLong {
            id,
            len: comment.len(),
        });
    }
    Ok(())
}

fn check_device_id(id: &str) -> Result<(), TrustError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_DEVICE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(TrustError::DeviceId(id.chars().take(80).collect()))
    }
}

impl TrustStore {
    /// Reads and verifies a trust file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, TrustError> {
        if bytes.len() > MAX_TRUST_FILE_LEN {
            return Err(TrustError::TooLarge {
                len: bytes.len(),
                max: MAX_TRUST_FILE_LEN,
            });
        }
        let file: TrustFileJson =
            serde_json::from_slice(bytes).map_err(|e| TrustError::Json(e.to_string()))?;
        if file.format != TRUST_FORMAT {
            return Err(TrustError::Format { found: file.format });
        }
        if file.root_keys.is_empty() {
            return Err(TrustError::NoRootKeys);
        }
        if file.root_keys.len() > MAX_KEYS {
            return Err(TrustError::TooManyKeys {
                count: file.root_keys.len(),
                max: MAX_KEYS,
            });
        }
        let mut roots: Vec<TrustedKey> = Vec::with_capacity(file.root_keys.len());
        for r in &file.root_keys {
            check_comment(r.id, &r.comment)?;
            let key = read_key(r.id, &r.public_key)?;
            if roots.iter().any(|k| k.id() == r.id) {
                return Err(TrustError::DuplicateKey { id: r.id });
            }
            roots.push(TrustedKey {
                key,
                role: KeyRole::Root,
                comment: r.comment.clone(),
            });
        }

        // Only the anchor keys may sign the list; nothing in the list is read before this.
        let root_keys: Vec<PublicKey> = roots.iter().map(|k| k.key.clone()).collect();
        let anchors = KeysWithRole {
            keys: &root_keys,
            role: KeyRole::Root,
        };
        let verified = file
            .keys
            .verify(TRUST_KEYS_PAYLOAD_TYPE, KeyRole::Root, &anchors)
            .map_err(TrustError::KeyList)?;
        let list: KeyListJson = verified.parse().map_err(TrustError::KeyList)?;

        if list.version == 0 {
            return Err(TrustError::VersionZero);
        }
        let count = roots.len().saturating_add(list.keys.len());
        if count > MAX_KEYS {
            return Err(TrustError::TooManyKeys {
                count,
                max: MAX_KEYS,
            });
        }
        let mut keys: Vec<TrustedKey> = Vec::with_capacity(list.keys.len());
        for entry in list.keys {
            if entry.role == KeyRole::Root {
                return Err(TrustError::RootInKeyList { id: entry.id });
            }
            check_comment(entry.id, &entry.comment)?;
            let key = read_key(entry.id, &entry.public_key)?;
            if roots.iter().chain(&keys).any(|k| k.id() == entry.id) {
                return Err(TrustError::DuplicateKey { id: entry.id });
            }
            keys.push(TrustedKey {
                key,
                role: entry.role,
                comment: entry.comment,
            });
        }
        Ok(TrustStore {
            version: list.version,
            roots,
            keys,
            payload_sha256: Sha256::digest(&verified.bytes).into(),
        })
    }

    /// The version of the signed key list.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The anchor keys (role root).
    pub fn roots(&self) -> &[TrustedKey] {
        &self.roots
    }

    /// The keys the root signed, in file order.
    pub fn keys(&self) -> &[TrustedKey] {
        &self.keys
    }

    /// The key with this id, root or listed.
    pub fn lookup(&self, id: &KeyId) -> Option<&TrustedKey> {
        self.roots.iter().chain(&self.keys).find(|k| k.id() == *id)
    }

    /// Whether key `id` is listed with `role`. For [`KeyRole::Development`] this says only that the
    /// key is listed: whether a device honours it depends on an unlock token, see
    /// [`TrustStore::authorize`].
    pub fn is_trusted_for(&self, id: &KeyId, role: KeyRole) -> bool {
        self.key_for_role(id, role).is_some()
    }

    /// The rollback record of the signed key list: its version and the SHA-256 of the exact
    /// signed payload.
    pub fn rollback_record(&self) -> RollbackRecord {
        RollbackRecord {
            version: self.version,
            header_sha256: self.payload_sha256,
        }
    }

    /// Decides whether key `id` may sign content that needs `required` (app or rtcore) on the
    /// device described by `ctx`: a key with exactly that role, or a development key listed in
    /// a valid unlock token for this device.
    pub fn authorize(
        &self,
        id: &KeyId,
        required: KeyRole,
        ctx: &VerifyContext,
    ) -> Result<AuthorizedSigner<'_>, TrustError> {
        let key = self.lookup(id).ok_or(TrustError::UnknownKey { id: *id })?;
        if key.role == required {
            return Ok(AuthorizedSigner {
                key,
                via_unlock: false,
            });
        }
        if key.role != KeyRole::Development {
            return Err(TrustError::WrongRole {
                id: *id,
                role: key.role,
                required: format!("{required} (or development with an unlock token)"),
            });
        }
        let Some(token) = &ctx.unlock else {
            return Err(TrustError::DevelopmentKeyLocked { id: *id });
        };
        let device = ctx.device_id.as_deref().ok_or(UnlockError::NoDeviceId)?;
        let grant = self.verify_unlock(token, device, ctx.now)?;
        if !grant.development_keys.contains(id) {
            return Err(UnlockError::KeyNotListed { id: *id }.into());
        }
        Ok(AuthorizedSigner {
            key,
            via_unlock: true,
        })
    }

    /// Checks an unlock token: signed by a root key, for `device_id`, not expired at `now`.
    pub fn verify_unlock(
        &self,
        token: &UnlockToken,
        device_id: &str,
        now: u64,
    ) -> Result<UnlockGrant, UnlockError> {
        let verified = token
            .0
            .verify(UNLOCK_PAYLOAD_TYPE, KeyRole::Root, self)
            .map_err(UnlockError::Envelope)?;
        let grant: UnlockGrant = verified.parse().map_err(UnlockError::Envelope)?;
        if grant.device_id != device_id {
            return Err(UnlockError::WrongDevice {
                token_device: grant.device_id.chars().take(80).collect(),
                device: device_id.chars().take(80).collect(),
            });
        }
        if now >= grant.expires {
            return Err(UnlockError::Expired {
                expires: grant.expires,
                now,
            });
        }
        Ok(grant)
    }
}

/// Writing trust files and unlock tokens (the CLI's operations).
impl TrustStore {
    /// A new trust file anchored on `root`, with an empty key list at version 1.
    pub fn init(root: &PrivateKey, comment: &str) -> Result<String, TrustError> {
        check_comment(root.id(), comment)?;
        let roots = vec![RootKeyJson {
            id: root.id(),
            public_key: pem(root.public_key())?,
            comment: comment.to_owned(),
        }];
        encode_file(roots, 1, Vec::new(), root)
    }

    /// Adds `key` with `role` to the verified trust file `trust_json`, raises its version and
    /// re-signs it with `root`, which must be one of its root keys. Returns the new file.
    pub fn add_key(
        trust_json: &[u8],
        root: &PrivateKey,
        key: &PublicKey,
        role: KeyRole,
        comment: &str,
    ) -> Result<String, TrustError> {
        let store = TrustStore::from_json(trust_json)?;
        if !store.roots.iter().any(|k| k.id() == root.id()) {
            return Err(TrustError::NotARootKey { id: root.id() });
        }
        if role == KeyRole::Root {
            return Err(TrustError::RootInKeyList { id: key.id() });
        }
        if store.lookup(&key.id()).is_some() {
            return Err(TrustError::DuplicateKey { id: key.id() });
        }
        check_comment(key.id(), comment)?;
        let version = store
            .version
            .checked_add(1)
            .ok_or(TrustError::VersionExhausted(store.version))?;
        let roots = store
            .roots
            .iter()
            .map(|k| {
                Ok(RootKeyJson {
                    id: k.id(),
                    public_key: pem(&k.key)?,
                    comment: k.comment.clone(),
                })
            })
            .collect::<Result<Vec<_>, TrustError>>()?;
        let mut keys = store
            .keys
            .iter()
            .map(|k| {
                Ok(KeyEntryJson {
                    id: k.id(),
                    role: k.role,
                    public_key: pem(&k.key)?,
                    comment: k.comment.clone(),
                })
            })
            .collect::<Result<Vec<_>, TrustError>>()?;
        keys.push(KeyEntryJson {
            id: key.id(),
            role,
            public_key: pem(key)?,
            comment: comment.to_owned(),
        });
        encode_file(roots, version, keys, root)
    }

    /// Issues a development unlock token for `device_id`, valid until `expires` (unix seconds),
    /// honouring `development_keys` there. Returns the token file.
    pub fn issue_unlock(
        root: &PrivateKey,
        device_id: &str,
        expires: u64,
        development_keys: &[KeyId],
    ) -> Result<String, TrustError> {
        check_device_id(device_id)?;
        if development_keys.is_empty() {
            return Err(TrustError::NoDevelopmentKeys);
        }
        let grant = UnlockGrant {
            device_id: device_id.to_owned(),
            expires,
            development_keys: development_keys.to_vec(),
        };
        let payload =
            serde_json::to_vec_pretty(&grant).map_err(|e| TrustError::Encode(e.to_string()))?;
        let env =
            Envelope::sign(UNLOCK_PAYLOAD_TYPE, &payload, &[root]).map_err(TrustError::KeyList)?;
        Ok(env.to_json())
    }
}

fn pem(key: &PublicKey) -> Result<String, TrustError> {
    key.to_pem().map_err(|e| TrustError::Encode(e.to_string()))
}

fn encode_file(
    root_keys: Vec<RootKeyJson>,
    version: u64,
    keys: Vec<KeyEntryJson>,
    signer: &PrivateKey,
) -> Result<String, TrustError> {
    let payload = serde_json::to_vec_pretty(&KeyListJson { version, keys })
        .map_err(|e| TrustError::Encode(e.to_string()))?;
    let envelope = Envelope::sign(TRUST_KEYS_PAYLOAD_TYPE, &payload, &[signer])
        .map_err(TrustError::KeyList)?;
    let file = TrustFileJson {
        format: TRUST_FORMAT,
        root_keys,
        keys: envelope,
    };
    let mut text =
        serde_json::to_string_pretty(&file).map_err(|e| TrustError::Encode(e.to_string()))?;
    text.push('\n');
    // Never hand out a file this module would refuse to read.
    TrustStore::from_json(text.as_bytes())?;
    Ok(text)
}
