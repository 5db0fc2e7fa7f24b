//! Group-call media keys: every participant encrypts what it sends with
//! its own sender key (the sender-keys model of WhatsApp's and Signal's
//! group calls), hands that key to each member over pairwise E2E envelopes,
//! and the SFU in the middle forwards frames it cannot open.
//!
//! A sender key is an epoch number and a 32-byte secret. The SFrame key of
//! an epoch is derived from it and the room, and the epoch is the SFrame key
//! id, so a receiver knows which key a frame needs:
//!
//! ```text
//! sframe base(epoch) = HKDF-SHA256(ikm = secret, salt = room, info = "parley group sframe v1")
//! ratchet: secret(epoch + 1) = HKDF-SHA256(ikm = secret(epoch), info = "parley group ratchet v1")
//! ```
//!
//! - **Someone joins**: each sender ratchets its key forward and gives the
//!   newcomer the new key. Members already in the call follow without a
//!   message (a frame with the next epoch makes them ratchet their copy),
//!   and the newcomer cannot run the hash backwards to read what was said
//!   before it joined.
//! - **Someone leaves**: each sender replaces its key with a fresh random
//!   one under the next epoch and sends it to the members who remain. A
//!   receiver that ratcheted on seeing that epoch fails to decrypt until the
//!   real key arrives, and the one who left never gets it.
//!
//! Framing (whole Opus frames; H.264 NAL headers in clear) is the 1:1
//! call's, from [`crate::call::e2ee`].

use std::collections::{BTreeMap, HashMap};

use hkdf::Hkdf;
use sframe::frame::{EncryptedFrameView, MonotonicCounter};
use sframe::header::KeyId;
use sframe::key::{DecryptionKey, EncryptionKey};
use sha2::Sha256;

use crate::call::e2ee::{CIPHER_SUITE, E2eeError, open_h264, seal_audio, seal_h264};

/// A receiver keeps this many epochs of one sender: frames in flight
/// across a key change still decrypt.
pub const KEPT_EPOCHS: usize = 2;

/// A receiver ratchets at most this many epochs ahead of the newest key it
/// holds, so a forged key id cannot make it hash without end.
const MAX_RATCHET: u64 = 8;

/// One sender's key at one epoch.
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKey {
    /// The SFrame key id of frames under this key.
    pub epoch: u64,
    secret: [u8; 32],
}

impl std::fmt::Debug for SenderKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SenderKey(epoch {})", self.epoch)
    }
}

impl SenderKey {
    /// A fresh random key at `epoch`.
    pub fn random(epoch: u64) -> Self {
        Self {
            epoch,
            secret: rand::random(),
        }
    }

    /// A key received from its sender.
    pub fn from_parts(epoch: u64, secret: [u8; 32]) -> Self {
        Self { epoch, secret }
    }

    /// The secret, to send to a member inside an E2E envelope.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// The next epoch's key: one-way, so its holder cannot find this one.
    pub fn ratchet(&self) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, &self.secret);
        let mut secret = [0u8; 32];
        hkdf.expand(b"parley group ratchet v1", &mut secret)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self {
            epoch: self.epoch + 1,
            secret,
        }
    }

    fn sframe_base(&self, room: &str) -> [u8; 32] {
        let hkdf = Hkdf::<Sha256>::new(Some(room.as_bytes()), &self.secret);
        let mut base = [0u8; 32];
        hkdf.expand(b"parley group sframe v1", &mut base)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        base
    }
}

/// The sender key of `user`'s device `device` in a demo room keyed by a
/// passphrase (the browser demo's keying: a browser holds no Parley
/// account to receive keys in envelopes). Everyone who knows the
/// passphrase derives everyone's key, so joins and leaves change nothing;
/// each join gets a fresh device id from the server, so no two senders, and
/// no two joins of one sender, share a key and its SFrame counters.
///
/// ```text
/// secret = HKDF-SHA256(ikm = passphrase, salt = room,
///                      info = "parley demo sender v1" 0x00 user 0x00 device)
/// ```
///
/// at epoch 0. HKDF, not a password hash: a demo passphrase is only as
/// strong as it is long against someone holding the recorded media.
pub fn passphrase_key(passphrase: &str, room: &str, user: &str, device: &str) -> SenderKey {
    let hkdf = Hkdf::<Sha256>::new(Some(room.as_bytes()), passphrase.as_bytes());
    let info = [
        b"parley demo sender v1".as_slice(),
        &[0],
        user.as_bytes(),
        &[0],
        device.as_bytes(),
    ]
    .concat();
    let mut secret = [0u8; 32];
    hkdf.expand(&info, &mut secret)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    SenderKey { epoch: 0, secret }
}

/// Encrypts what this participant sends.
pub struct SenderEncryptor {
    room: String,
    key: SenderKey,
    sframe: EncryptionKey,
    counter: MonotonicCounter,
}

impl SenderEncryptor {
    /// Starts at a fresh random key, epoch 0.
    pub fn new(room: &str) -> Result<Self, E2eeError> {
        Self::with_key(room, SenderKey::random(0))
    }

    /// Starts at `key`.
    pub fn with_key(room: &str, key: SenderKey) -> Result<Self, E2eeError> {
        let sframe = EncryptionKey::derive_from(CIPHER_SUITE, key.epoch, key.sframe_base(room))?;
        Ok(Self {
            room: room.to_string(),
            key,
            sframe,
            counter: MonotonicCounter::default(),
        })
    }

    /// The key in use: what members need.
    pub fn key(&self) -> &SenderKey {
        &self.key
    }

    /// Someone joined: moves to the ratcheted key (give it to the newcomer).
    pub fn ratchet(&mut self) -> Result<&SenderKey, E2eeError> {
        self.set(self.key.ratchet())
    }

    /// Someone left: moves to a fresh random key under the next epoch (give
    /// it to everyone who remains).
    pub fn replace(&mut self) -> Result<&SenderKey, E2eeError> {
        self.set(SenderKey::random(self.key.epoch + 1))
    }

    fn set(&mut self, key: SenderKey) -> Result<&SenderKey, E2eeError> {
        self.sframe =
            EncryptionKey::derive_from(CIPHER_SUITE, key.epoch, key.sframe_base(&self.room))?;
        // The counter keeps counting: a nonce is never reused under any key.
        self.key = key;
        Ok(&self.key)
    }

    /// Encrypts an Opus frame whole.
    pub fn encrypt_audio(&mut self, frame: &[u8]) -> Result<Vec<u8>, E2eeError> {
        seal_audio(&self.sframe, &mut self.counter, frame)
    }

    /// Encrypts an H.264 access unit, NAL headers in clear.
    pub fn encrypt_h264(&mut self, annex_b: &[u8]) -> Result<Vec<u8>, E2eeError> {
        seal_h264(&self.sframe, &mut self.counter, annex_b)
    }
}

/// Decrypts one other participant's frames with the keys it sent.
pub struct SenderDecryptor {
    room: String,
    /// Keys by epoch, newest last; at most [`KEPT_EPOCHS`].
    keys: BTreeMap<u64, SenderKey>,
    sframe: HashMap<KeyId, DecryptionKey>,
}

impl SenderDecryptor {
    /// A receiver holding no key yet: every frame fails until
    /// [`SenderDecryptor::add_key`].
    pub fn new(room: &str) -> Self {
        Self {
            room: room.to_string(),
            keys: BTreeMap::new(),
            sframe: HashMap::new(),
        }
    }

    /// A key from the sender (it replaces one derived by ratcheting for the
    /// same epoch: after a leave that derivation was wrong).
    pub fn add_key(&mut self, key: SenderKey) -> Result<(), E2eeError> {
        let decryption =
            DecryptionKey::derive_from(CIPHER_SUITE, key.epoch, key.sframe_base(&self.room))?;
        self.sframe.insert(key.epoch, decryption);
        self.keys.insert(key.epoch, key);
        while self.keys.len() > KEPT_EPOCHS {
            let (oldest, _) = self.keys.pop_first().expect("more than KEPT_EPOCHS keys");
            self.sframe.remove(&oldest);
        }
        Ok(())
    }

    /// The newest epoch held.
    pub fn epoch(&self) -> Option<u64> {
        self.keys.last_key_value().map(|(&e, _)| e)
    }

    fn open(&mut self, sealed: &[u8], meta: &[u8]) -> Result<Vec<u8>, E2eeError> {
        let frame = EncryptedFrameView::try_with_meta_data(&sealed, &meta)?;
        let epoch = frame.header().key_id();
        if !self.sframe.contains_key(&epoch) {
            // A newer epoch than any held: the sender ratcheted for a
            // newcomer. Follow it, keeping the result only if it opens.
            let newest = self.keys.last_key_value().map(|(_, k)| k.clone());
            let Some(mut key) =
                newest.filter(|k| epoch > k.epoch && epoch - k.epoch <= MAX_RATCHET)
            else {
                return Err(E2eeError::UnexpectedKeyId(epoch));
            };
            while key.epoch < epoch {
                key = key.ratchet();
            }
            let candidate =
                DecryptionKey::derive_from(CIPHER_SUITE, epoch, key.sframe_base(&self.room))?;
            let one = HashMap::from([(epoch, candidate)]);
            let mut out = Vec::with_capacity(sealed.len());
            let plain = frame.decrypt_into(&one, &mut out)?.payload().to_vec();
            self.add_key(key)?;
            return Ok(plain);
        }
        let mut out = Vec::with_capacity(sealed.len());
        Ok(frame
            .decrypt_into(&self.sframe, &mut out)?
            .payload()
            .to_vec())
    }

    /// Decrypts an Opus frame.
    pub fn decrypt_audio(&mut self, frame: &[u8]) -> Result<Vec<u8>, E2eeError> {
        self.open(frame, &[])
    }

    /// Decrypts an H.264 access unit back to plain Annex B.
    pub fn decrypt_h264(&mut self, annex_b: &[u8]) -> Result<Vec<u8>, E2eeError> {
        open_h264(annex_b, |sealed, header| self.open(sealed, header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOM: &str = "room-1";

    #[test]
    fn members_follow_a_ratchet_and_a_newcomer_cannot_go_back() {
        let mut alice = SenderEncryptor::new(ROOM).unwrap();
        let mut bob = SenderDecryptor::new(ROOM);
        bob.add_key(alice.key().clone()).unwrap();
        let before = alice.encrypt_audio(b"before carol").unwrap();
        assert_eq!(bob.decrypt_audio(&before).unwrap(), b"before carol");

        // Carol joins: alice ratchets and hands carol the new key only.
        let for_carol = alice.ratchet().unwrap().clone();
        let mut carol = SenderDecryptor::new(ROOM);
        carol.add_key(for_carol).unwrap();
        let after = alice.encrypt_audio(b"after carol").unwrap();
        assert_eq!(
            bob.decrypt_audio(&after).unwrap(),
            b"after carol",
            "bob ratchets himself"
        );
        assert_eq!(carol.decrypt_audio(&after).unwrap(), b"after carol");
        assert!(
            carol.decrypt_audio(&before).is_err(),
            "carol reads the past"
        );
        assert_eq!(bob.epoch(), Some(1));
    }

    #[test]
    fn after_a_leave_only_those_given_the_new_key_decrypt() {
        let mut alice = SenderEncryptor::new(ROOM).unwrap();
        let (mut bob, mut carol) = (SenderDecryptor::new(ROOM), SenderDecryptor::new(ROOM));
        bob.add_key(alice.key().clone()).unwrap();
        carol.add_key(alice.key().clone()).unwrap();

        // Carol leaves: alice replaces her key and tells bob only.
        let fresh = alice.replace().unwrap().clone();
        let frame = alice.encrypt_audio(b"carol is gone").unwrap();
        assert!(
            bob.decrypt_audio(&frame).is_err(),
            "a ratchet guess must not open it"
        );
        bob.add_key(fresh).unwrap();
        assert_eq!(bob.decrypt_audio(&frame).unwrap(), b"carol is gone");
        assert!(carol.decrypt_audio(&frame).is_err());
    }

    #[test]
    fn video_keeps_nal_headers_and_needs_the_key() {
        let mut alice = SenderEncryptor::new(ROOM).unwrap();
        let mut bob = SenderDecryptor::new(ROOM);
        let access_unit = [0, 0, 0, 1, 0x67, 1, 2, 3, 0, 0, 0, 1, 0x65, 9, 9, 9, 9];
        let sealed = alice.encrypt_h264(&access_unit).unwrap();
        assert!(bob.decrypt_h264(&sealed).is_err(), "no key yet");
        bob.add_key(alice.key().clone()).unwrap();
        assert_eq!(bob.decrypt_h264(&sealed).unwrap(), access_unit);
        assert_eq!(&sealed[..5], &[0, 0, 0, 1, 0x67]);
    }

    #[test]
    fn a_forged_far_epoch_is_refused_without_hashing_forever() {
        let mut bob = SenderDecryptor::new(ROOM);
        bob.add_key(SenderKey::random(0)).unwrap();
        let mut far = SenderEncryptor::with_key(ROOM, SenderKey::random(1_000_000)).unwrap();
        let frame = far.encrypt_audio(b"x").unwrap();
        assert!(matches!(
            bob.decrypt_audio(&frame),
            Err(E2eeError::UnexpectedKeyId(1_000_000))
        ));
    }
}
