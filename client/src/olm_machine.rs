//! The device's Olm state (vodozemac): its account, its pairwise sessions
//! with other devices, and the identity keys it has seen for them.
//!
//! Identity keys are trusted on first use: the first key the directory
//! returns for a device is remembered, and a different one later is
//! refused. (Comparing safety numbers out of band, as Signal does, is what
//! would close the first-contact gap; it is not built yet.)

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use parley_wire::api::{self, ClaimedKey, DeviceInfo, DeviceKeys, SignedKey};
use serde::{Deserialize, Serialize};
use vodozemac::olm::{Account, AccountPickle, OlmMessage, Session, SessionConfig, SessionPickle};
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};

/// Sessions kept per remote device: the newest few, so that messages
/// encrypted under a session the other side has since replaced still
/// decrypt.
const SESSIONS_PER_DEVICE: usize = 5;

/// Errors from Olm.
#[derive(Debug, thiserror::Error)]
pub enum OlmError {
    /// A key from the directory is malformed.
    #[error("device {device}: invalid key: {reason}")]
    BadKey {
        /// The device.
        device: String,
        /// What is wrong.
        reason: String,
    },
    /// A device's identity key changed since it was first seen.
    #[error(
        "device {device} of {handle} changed its identity key: refusing (possible interception)"
    )]
    IdentityChanged {
        /// The device.
        device: String,
        /// Its user.
        handle: String,
    },
    /// A fallback key's signature does not verify.
    #[error("device {0}: fallback key signature does not verify")]
    BadFallbackSignature(String),
    /// No session with the device.
    #[error("no Olm session with device {0}")]
    NoSession(String),
    /// A ciphertext could not be decrypted.
    #[error("cannot decrypt message from device {device}: {reason}")]
    Decrypt {
        /// The sending device.
        device: String,
        /// Why.
        reason: String,
    },
}

/// What the vault stores.
#[derive(Serialize, Deserialize)]
pub struct OlmPickle {
    account: AccountPickle,
    sessions: BTreeMap<String, Vec<SessionPickle>>,
    known_devices: BTreeMap<String, DeviceInfo>,
    fallback_published: Option<String>,
}

/// The device's Olm state.
pub struct OlmMachine {
    account: Account,
    sessions: BTreeMap<String, Vec<Session>>,
    known_devices: BTreeMap<String, DeviceInfo>,
    /// Key id of the fallback key last published, if any.
    fallback_published: Option<String>,
}

impl OlmMachine {
    /// A new device identity.
    pub fn new() -> Self {
        Self {
            account: Account::new(),
            sessions: BTreeMap::new(),
            known_devices: BTreeMap::new(),
            fallback_published: None,
        }
    }

    /// Restores from the vault.
    pub fn from_pickle(pickle: OlmPickle) -> Self {
        Self {
            account: Account::from_pickle(pickle.account),
            sessions: pickle
                .sessions
                .into_iter()
                .map(|(d, s)| (d, s.into_iter().map(Session::from_pickle).collect()))
                .collect(),
            known_devices: pickle.known_devices,
            fallback_published: pickle.fallback_published,
        }
    }

    /// For the vault.
    pub fn pickle(&self) -> OlmPickle {
        OlmPickle {
            account: self.account.pickle(),
            sessions: self
                .sessions
                .iter()
                .map(|(d, s)| (d.clone(), s.iter().map(Session::pickle).collect()))
                .collect(),
            known_devices: self.known_devices.clone(),
            fallback_published: self.fallback_published.clone(),
        }
    }

    /// The keys to register under `handle`, signed.
    pub fn device_keys(&self, handle: &str) -> DeviceKeys {
        let identity_key = self.account.curve25519_key().to_base64();
        let signing_key = self.account.ed25519_key().to_base64();
        let message = api::registration_message(handle, &identity_key, &signing_key);
        DeviceKeys {
            signature: self.account.sign(message).to_base64(),
            identity_key,
            signing_key,
        }
    }

    /// Signs `message`, base64.
    pub fn sign(&self, message: &str) -> String {
        self.account.sign(message).to_base64()
    }

    /// Generates `count` one-time keys and returns every unpublished one
    /// (call [`mark_published`](Self::mark_published) once the server has
    /// them).
    pub fn one_time_keys(&mut self, count: usize) -> Vec<(String, String)> {
        if count > 0 {
            self.account.generate_one_time_keys(count);
        }
        self.account
            .one_time_keys()
            .into_iter()
            .map(|(id, key)| (id.to_base64(), key.to_base64()))
            .collect()
    }

    /// A fallback key to publish, signed for `device_id`, until one has
    /// been published. The published one stays: vodozemac's
    /// `fallback_key()` lists only unpublished keys, so asking it alone
    /// would rotate the key on every top-up, and a key a sender claimed two
    /// rotations ago would no longer open its session. (Rotating on a
    /// schedule, as Signal does its signed pre-key, is not built yet.)
    pub fn fallback_key(&mut self, device_id: &str) -> Option<SignedKey> {
        if self.fallback_published.is_some() {
            return None;
        }
        if self.account.fallback_key().is_empty() {
            self.account.generate_fallback_key();
        }
        let (id, key) = self.account.fallback_key().into_iter().next()?;
        let key_id = id.to_base64();
        let key = key.to_base64();
        let signature = self.sign(&api::fallback_key_message(device_id, &key_id, &key));
        Some(SignedKey {
            key_id,
            key,
            signature,
        })
    }

    /// Records that the server now holds the keys returned above.
    pub fn mark_published(&mut self, fallback: Option<&SignedKey>) {
        self.account.mark_keys_as_published();
        if let Some(f) = fallback {
            self.fallback_published = Some(f.key_id.clone());
        }
    }

    /// Remembers a device's keys, refusing a changed identity key.
    pub fn remember(&mut self, device: &DeviceInfo) -> Result<(), OlmError> {
        match self.known_devices.get(&device.device_id) {
            Some(known)
                if known.identity_key != device.identity_key
                    || known.signing_key != device.signing_key
                    || known.handle != device.handle =>
            {
                Err(OlmError::IdentityChanged {
                    device: device.device_id.clone(),
                    handle: device.handle.clone(),
                })
            }
            Some(_) => Ok(()),
            None => {
                self.known_devices
                    .insert(device.device_id.clone(), device.clone());
                Ok(())
            }
        }
    }

    /// A device seen before.
    pub fn known(&self, device_id: &str) -> Option<&DeviceInfo> {
        self.known_devices.get(device_id)
    }

    /// Whether a session with the device exists.
    pub fn has_session(&self, device_id: &str) -> bool {
        self.sessions.get(device_id).is_some_and(|s| !s.is_empty())
    }

    /// Starts a session from a claimed key (checking a fallback key's
    /// signature).
    pub fn start_session(&mut self, claimed: &ClaimedKey) -> Result<(), OlmError> {
        let device = &claimed.device;
        self.remember(device)?;
        let bad = |reason: String| OlmError::BadKey {
            device: device.device_id.clone(),
            reason,
        };
        if let Some(signature) = &claimed.fallback_signature {
            let signing = Ed25519PublicKey::from_base64(&device.signing_key)
                .map_err(|e| bad(e.to_string()))?;
            let signature = Ed25519Signature::from_base64(signature)
                .map_err(|_| OlmError::BadFallbackSignature(device.device_id.clone()))?;
            let message =
                api::fallback_key_message(&device.device_id, &claimed.key_id, &claimed.key);
            signing
                .verify(message.as_bytes(), &signature)
                .map_err(|_| OlmError::BadFallbackSignature(device.device_id.clone()))?;
        }
        let identity = Curve25519PublicKey::from_base64(&device.identity_key)
            .map_err(|e| bad(e.to_string()))?;
        let one_time =
            Curve25519PublicKey::from_base64(&claimed.key).map_err(|e| bad(e.to_string()))?;
        let session = self
            .account
            .create_outbound_session(SessionConfig::version_1(), identity, one_time)
            .map_err(|e| bad(e.to_string()))?;
        self.push_session(&device.device_id, session);
        Ok(())
    }

    /// Encrypts for a device with its newest session: (kind, base64).
    pub fn encrypt(
        &mut self,
        device_id: &str,
        plaintext: &[u8],
    ) -> Result<(i64, String), OlmError> {
        let session = self
            .sessions
            .get_mut(device_id)
            .and_then(|s| s.last_mut())
            .ok_or_else(|| OlmError::NoSession(device_id.to_string()))?;
        let message = session
            .encrypt(plaintext)
            .map_err(|e| OlmError::NoSession(format!("{device_id}: {e}")))?;
        let (kind, bytes) = message.to_parts();
        Ok((kind as i64, STANDARD.encode(bytes)))
    }

    /// Decrypts a message from a known device.
    pub fn decrypt(
        &mut self,
        device_id: &str,
        kind: i64,
        ciphertext: &str,
    ) -> Result<Vec<u8>, OlmError> {
        let fail = |reason: String| OlmError::Decrypt {
            device: device_id.to_string(),
            reason,
        };
        let device = self
            .known_devices
            .get(device_id)
            .ok_or_else(|| fail("unknown device".into()))?;
        let identity = Curve25519PublicKey::from_base64(&device.identity_key)
            .map_err(|e| fail(e.to_string()))?;
        let bytes = STANDARD
            .decode(ciphertext)
            .map_err(|_| fail("not base64".into()))?;
        let kind = usize::try_from(kind).map_err(|_| fail("bad kind".into()))?;
        let message = OlmMessage::from_parts(kind, &bytes).map_err(|e| fail(e.to_string()))?;
        let sessions = self.sessions.entry(device_id.to_string()).or_default();
        // Newest first: the likeliest match.
        for session in sessions.iter_mut().rev() {
            if let OlmMessage::PreKey(m) = &message
                && m.session_id() != session.session_id()
            {
                continue;
            }
            if let Ok(plaintext) = session.decrypt(&message) {
                return Ok(plaintext);
            }
        }
        let OlmMessage::PreKey(pre_key) = &message else {
            return Err(fail("no session decrypts it".into()));
        };
        let created = self
            .account
            .create_inbound_session(SessionConfig::version_1(), identity, pre_key)
            .map_err(|e| fail(e.to_string()))?;
        self.push_session(device_id, created.session);
        Ok(created.plaintext)
    }

    fn push_session(&mut self, device_id: &str, session: Session) {
        let sessions = self.sessions.entry(device_id.to_string()).or_default();
        sessions.push(session);
        if sessions.len() > SESSIONS_PER_DEVICE {
            sessions.remove(0);
        }
    }
}

impl Default for OlmMachine {
    fn default() -> Self {
        Self::new()
    }
}
