//! The SFU's control messages, JSON over the WebRTC data channel each
//! participant opens in its join offer (labelled [`CHANNEL_LABEL`]).
//!
//! After the join, every change to a participant's session is offered by
//! the SFU: when someone publishes, each other participant gets a `track`
//! message naming the media line and whose it is, then an `offer` adding
//! that line; the participant replies with an `answer`. The SFU is the only
//! side that renegotiates, so offers never cross (no glare handling), as in
//! str0m's chat example and LiveKit's subscriber connection.

use serde::{Deserialize, Serialize};

/// The data channel's label in a join offer.
pub const CHANNEL_LABEL: &str = "parley-sfu";

/// A participant as the room knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// Unique within the SFU process for its lifetime.
    pub id: u64,
    /// The user's handle (from the join token).
    pub user: String,
    /// The device id (from the join token).
    pub device: String,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Opus.
    Audio,
    /// H.264.
    Video,
}

/// One control message, either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMessage {
    /// SFU -> participant: the participant's own identity in the room and
    /// who was there before it (the first message on the channel).
    Welcome {
        /// This participant.
        you: Participant,
        /// Everyone already in the room. Their sender keys are needed as
        /// they are; a newcomer (a later `joined`) makes senders ratchet.
        others: Vec<Participant>,
    },
    /// SFU -> participant: someone joined after this participant.
    Joined {
        /// Who.
        participant: Participant,
    },
    /// SFU -> participant: someone left or timed out; their media lines
    /// are stopped in the next offer.
    Left {
        /// Who.
        participant: Participant,
        /// Why, for people ("left", "timed out", ...).
        reason: String,
    },
    /// SFU -> participant: media line `mid` carries `participant`'s track.
    /// Sent before the offer that adds it.
    Track {
        /// The media line in the receiving participant's session.
        mid: String,
        /// Audio or video.
        kind: TrackKind,
        /// Whose track it is.
        participant: Participant,
    },
    /// SFU -> participant: who is speaking now (from the RFC 6464 audio
    /// levels senders put on their audio). Sent to everyone in the room,
    /// the speaker included, each time it changes.
    ActiveSpeaker {
        /// The speaker.
        participant: Participant,
    },
    /// SFU -> publisher: the simulcast layers of its track `mid` that
    /// someone receives (dynacast); the publisher sends only these, highest
    /// first, and starts a layer that comes back with a keyframe. Empty:
    /// nobody watches, send no video.
    Layers {
        /// The publisher's own media line.
        mid: String,
        /// Layer rids to send.
        active: Vec<String>,
    },
    /// SFU -> participant: a renegotiation offer.
    Offer {
        /// The SDP offer.
        sdp: String,
    },
    /// Participant -> SFU: the answer to the last offer.
    Answer {
        /// The SDP answer.
        sdp: String,
    },
    /// Participant -> SFU: on its receiving line `mid`, send at most
    /// simulcast layer `rid` (the size it shows that video at: a small tile
    /// asks for `l`); `None` lifts the cap. The bandwidth estimate still
    /// chooses below it.
    MaxLayer {
        /// The participant's receiving media line.
        mid: String,
        /// Highest layer wanted, or `None` for any.
        rid: Option<String>,
    },
    /// Participant -> SFU: leaving now (the SFU removes it at once rather
    /// than waiting for its timeout).
    Leave,
}

impl ControlMessage {
    /// The message as data channel text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("control messages serialize")
    }

    /// Parses data channel text.
    pub fn from_json(data: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(data)
    }
}
