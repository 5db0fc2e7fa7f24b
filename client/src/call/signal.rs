//! Call signaling, carried as end-to-end encrypted payloads over the
//! envelope channel: the server relays these like any message and can read
//! none of them. Because the SDP (with its DTLS fingerprint) and the media
//! master secret travel inside Olm, a server that wanted to sit in the
//! middle of the media would have to forge an Olm message.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use super::e2ee::MasterSecret;
use super::group_e2ee::SenderKey;

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupReason {
    /// A user hung up.
    Normal,
    /// The callee declined.
    Declined,
    /// Nobody answered in time.
    NoAnswer,
    /// Media could not be set up (ICE, DTLS or decryption failed).
    MediaFailed,
}

/// One call signaling message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallSignal {
    /// A call to one callee device, with that device's own media secret.
    Offer {
        /// The call (client-generated, shared by all callee devices).
        call_id: String,
        /// Video as well as audio.
        video: bool,
        /// The SDP offer (str0m), host candidates included.
        sdp: String,
        /// 32 bytes, base64: the SFrame master secret for this device.
        media_secret: String,
    },
    /// The callee device is alerting its user.
    Ringing {
        /// The call.
        call_id: String,
    },
    /// The callee answered on this device.
    Answer {
        /// The call.
        call_id: String,
        /// The SDP answer.
        sdp: String,
    },
    /// A trickled ICE candidate (SDP `candidate:` attribute).
    Candidate {
        /// The call.
        call_id: String,
        /// The candidate line.
        candidate: String,
    },
    /// The call is over.
    Hangup {
        /// The call.
        call_id: String,
        /// Why.
        reason: HangupReason,
    },
    /// The callee is in another call.
    Busy {
        /// The call.
        call_id: String,
    },
    /// Sent to the callee's other devices: stop ringing.
    AnsweredElsewhere {
        /// The call.
        call_id: String,
    },
    /// A group call participant's sender key (its media key in the room),
    /// to one other participant's device.
    SenderKey {
        /// The SFU room (the group's call).
        room: String,
        /// The key's epoch (its SFrame key id).
        epoch: u64,
        /// 32 bytes, base64.
        secret: String,
    },
}

/// A call payload that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The media secret (or sender key) is not 32 bytes of base64.
    #[error("call signal carries a bad media secret")]
    BadSecret,
}

impl CallSignal {
    /// The call it belongs to.
    pub fn call_id(&self) -> &str {
        match self {
            Self::Offer { call_id, .. }
            | Self::Ringing { call_id }
            | Self::Answer { call_id, .. }
            | Self::Candidate { call_id, .. }
            | Self::Hangup { call_id, .. }
            | Self::Busy { call_id }
            | Self::AnsweredElsewhere { call_id } => call_id,
            Self::SenderKey { room, .. } => room,
        }
    }

    /// Encodes a media secret for [`CallSignal::Offer`].
    pub fn encode_secret(secret: &MasterSecret) -> String {
        B64.encode(secret.0)
    }

    /// A sender key as a signal for `room`.
    pub fn sender_key(room: &str, key: &SenderKey) -> Self {
        Self::SenderKey {
            room: room.to_string(),
            epoch: key.epoch,
            secret: B64.encode(key.secret()),
        }
    }

    /// The sender key a [`CallSignal::SenderKey`] carries.
    pub fn decode_sender_key(epoch: u64, secret: &str) -> Result<SenderKey, SignalError> {
        let bytes = B64.decode(secret).map_err(|_| SignalError::BadSecret)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SignalError::BadSecret)?;
        Ok(SenderKey::from_parts(epoch, bytes))
    }

    /// Decodes an offer's media secret.
    pub fn decode_secret(encoded: &str) -> Result<MasterSecret, SignalError> {
        let bytes = B64.decode(encoded).map_err(|_| SignalError::BadSecret)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SignalError::BadSecret)?;
        Ok(MasterSecret(bytes))
    }
}
