//! Megolm group sessions (vodozemac): one outbound session per group this
//! device sends to, and the inbound sessions other devices shared with it.
//!
//! The rules, as in Matrix and WhatsApp's sender keys:
//! - a sender encrypts each group message once with its outbound session
//!   and shares the session key pairwise, over Olm, with each member
//!   device that does not have it yet;
//! - a device that joins gets the key at the current ratchet index, so it
//!   cannot read what was sent before it joined;
//! - when any device leaves the member set the session is replaced, so the
//!   leaver cannot read what is sent after;
//! - a message is accepted only under a session shared by the device the
//!   server says sent it.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use vodozemac::megolm::{
    GroupSession, GroupSessionPickle, InboundGroupSession, InboundGroupSessionPickle,
    MegolmMessage, SessionConfig, SessionKey,
};

/// Errors from group sessions.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    /// No session with that id was shared with this device.
    #[error("no key for group session {0}: it was not shared with this device")]
    UnknownSession(String),
    /// The session belongs to another group or sender.
    #[error("group session {0} was not shared by the sending device for this group")]
    WrongSender(String),
    /// The ciphertext or key is malformed or does not decrypt.
    #[error("group message does not decrypt: {0}")]
    Decrypt(String),
}

/// The key-share a sender sends over Olm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyShare {
    /// Megolm session id.
    pub session_id: String,
    /// Megolm session key at the current index, base64.
    pub session_key: String,
}

#[derive(Serialize, Deserialize)]
struct OutboundPickle {
    session: GroupSessionPickle,
    shared_with: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct InboundPickle {
    session: InboundGroupSessionPickle,
    group_id: String,
    sender_device: String,
}

/// What the vault stores.
#[derive(Serialize, Deserialize, Default)]
pub struct GroupSessionsPickle {
    outbound: BTreeMap<String, OutboundPickle>,
    inbound: BTreeMap<String, InboundPickle>,
}

struct Outbound {
    session: GroupSession,
    shared_with: BTreeSet<String>,
}

struct Inbound {
    session: InboundGroupSession,
    group_id: String,
    sender_device: String,
}

/// The Megolm sessions of one device.
#[derive(Default)]
pub struct GroupSessions {
    outbound: BTreeMap<String, Outbound>,
    inbound: BTreeMap<String, Inbound>,
}

/// The Megolm wire form inside a group envelope.
#[derive(Serialize, Deserialize)]
struct GroupCiphertext {
    session_id: String,
    ciphertext: String,
}

impl GroupSessions {
    /// Restores from the vault.
    pub fn from_pickle(p: GroupSessionsPickle) -> Self {
        Self {
            outbound: p
                .outbound
                .into_iter()
                .map(|(g, o)| {
                    (
                        g,
                        Outbound {
                            session: GroupSession::from_pickle(o.session),
                            shared_with: o.shared_with,
                        },
                    )
                })
                .collect(),
            inbound: p
                .inbound
                .into_iter()
                .map(|(id, i)| {
                    (
                        id,
                        Inbound {
                            session: InboundGroupSession::from_pickle(i.session),
                            group_id: i.group_id,
                            sender_device: i.sender_device,
                        },
                    )
                })
                .collect(),
        }
    }

    /// For the vault.
    pub fn pickle(&self) -> GroupSessionsPickle {
        GroupSessionsPickle {
            outbound: self
                .outbound
                .iter()
                .map(|(g, o)| {
                    (
                        g.clone(),
                        OutboundPickle {
                            session: o.session.pickle(),
                            shared_with: o.shared_with.clone(),
                        },
                    )
                })
                .collect(),
            inbound: self
                .inbound
                .iter()
                .map(|(id, i)| {
                    (
                        id.clone(),
                        InboundPickle {
                            session: i.session.pickle(),
                            group_id: i.group_id.clone(),
                            sender_device: i.sender_device.clone(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Readies the outbound session of `group_id` for the member devices
    /// `members` (this device excluded): replaces it if a device has left,
    /// and returns the key to share and the devices that still need it.
    pub fn prepare(
        &mut self,
        group_id: &str,
        members: &BTreeSet<String>,
    ) -> (KeyShare, Vec<String>) {
        let stale = self
            .outbound
            .get(group_id)
            .is_none_or(|o| !o.shared_with.is_subset(members));
        if stale {
            self.outbound.insert(
                group_id.to_string(),
                Outbound {
                    session: GroupSession::new(SessionConfig::version_1()),
                    shared_with: BTreeSet::new(),
                },
            );
        }
        let outbound = &self.outbound[group_id];
        let share = KeyShare {
            session_id: outbound.session.session_id(),
            session_key: outbound.session.session_key().to_base64(),
        };
        let needs = members.difference(&outbound.shared_with).cloned().collect();
        (share, needs)
    }

    /// Records that `devices` now hold the current key of `group_id`.
    pub fn mark_shared(&mut self, group_id: &str, devices: &[String]) {
        if let Some(o) = self.outbound.get_mut(group_id) {
            o.shared_with.extend(devices.iter().cloned());
        }
    }

    /// Encrypts for `group_id` with the outbound session made by
    /// [`prepare`](Self::prepare): the envelope ciphertext bytes.
    pub fn encrypt(&mut self, group_id: &str, plaintext: &[u8]) -> Option<Vec<u8>> {
        let o = self.outbound.get_mut(group_id)?;
        let message = o.session.encrypt(plaintext);
        let wire = GroupCiphertext {
            session_id: o.session.session_id(),
            ciphertext: message.to_base64(),
        };
        Some(serde_json::to_vec(&wire).expect("group ciphertext serializes"))
    }

    /// Stores a session key shared (over Olm) by `sender_device`.
    pub fn add_inbound(
        &mut self,
        group_id: &str,
        sender_device: &str,
        share: &KeyShare,
    ) -> Result<(), GroupError> {
        let key = SessionKey::from_base64(&share.session_key)
            .map_err(|e| GroupError::Decrypt(e.to_string()))?;
        let session = InboundGroupSession::new(&key, SessionConfig::version_1());
        if session.session_id() != share.session_id {
            return Err(GroupError::Decrypt(
                "session id does not match its key".into(),
            ));
        }
        // Keep the first copy: a later one could only be older or equal.
        self.inbound
            .entry(share.session_id.clone())
            .or_insert(Inbound {
                session,
                group_id: group_id.to_string(),
                sender_device: sender_device.to_string(),
            });
        Ok(())
    }

    /// Decrypts a group envelope's ciphertext bytes from `sender_device`.
    pub fn decrypt(
        &mut self,
        group_id: &str,
        sender_device: &str,
        bytes: &[u8],
    ) -> Result<Vec<u8>, GroupError> {
        let wire: GroupCiphertext = serde_json::from_slice(bytes)
            .map_err(|e| GroupError::Decrypt(format!("malformed: {e}")))?;
        let inbound = self
            .inbound
            .get_mut(&wire.session_id)
            .ok_or_else(|| GroupError::UnknownSession(wire.session_id.clone()))?;
        if inbound.group_id != group_id || inbound.sender_device != sender_device {
            return Err(GroupError::WrongSender(wire.session_id));
        }
        let message = MegolmMessage::from_base64(&wire.ciphertext)
            .map_err(|e| GroupError::Decrypt(e.to_string()))?;
        let decrypted = inbound
            .session
            .decrypt(&message)
            .map_err(|e| GroupError::Decrypt(e.to_string()))?;
        Ok(decrypted.plaintext)
    }
}

/// Base64 of envelope ciphertext bytes.
pub fn encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}
