//! The wire types of Parley's HTTP and websocket API, shared by the server
//! and the client SDK. Keys are vodozemac's unpadded base64; ciphertexts
//! are standard base64. Everything a user writes travels as an
//! [`Envelope`] whose ciphertext the server cannot read.

use serde::{Deserialize, Serialize};

/// What a device proves it holds when it registers or links.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceKeys {
    /// Curve25519 identity key (Olm).
    pub identity_key: String,
    /// Ed25519 signing key (Olm); authenticates the device.
    pub signing_key: String,
    /// Ed25519 signature by `signing_key` over [`registration_message`],
    /// proving the device holds the private key.
    pub signature: String,
}

/// The bytes a device signs to register under `handle`.
pub fn registration_message(handle: &str, identity_key: &str, signing_key: &str) -> String {
    format!("parley-register\n{handle}\n{identity_key}\n{signing_key}")
}

/// `POST /v1/register`: a new user with its first device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterRequest {
    /// The user's handle: 3 to 32 characters, `a-z 0-9 _ . -`.
    pub handle: String,
    /// The first device's keys.
    pub device: DeviceKeys,
}

/// The answer to a registration or a link.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceCreated {
    /// The user's id.
    pub user_id: String,
    /// The new device's id.
    pub device_id: String,
}

/// `POST /v1/auth/challenge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChallengeRequest {
    /// The device that wants a token.
    pub device_id: String,
}

/// A challenge to sign; valid for a minute, usable once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    /// Random bytes, base64.
    pub challenge: String,
}

/// The bytes a device signs to answer a challenge.
pub fn challenge_message(device_id: &str, challenge: &str) -> String {
    format!("parley-auth\n{device_id}\n{challenge}")
}

/// `POST /v1/auth/token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    /// The device.
    pub device_id: String,
    /// The challenge it was given.
    pub challenge: String,
    /// Ed25519 signature over [`challenge_message`].
    pub signature: String,
}

/// A bearer token for HTTP and the websocket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Token {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// Unix milliseconds after which it is refused.
    pub expires_at: i64,
}

/// `POST /v1/link-codes` answer: a one-time code that lets a new device
/// join the calling device's user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkCode {
    /// Give this to the new device.
    pub code: String,
    /// Unix milliseconds after which it is refused.
    pub expires_at: i64,
}

/// `POST /v1/calls/relay`: a device asks to use the server's UDP relay
/// for a call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayRequest {
    /// 16 bytes, hex: both ends derive it from the call id (which the
    /// server never sees).
    pub call_key: String,
}

/// `POST /v1/calls/relay` answer: where the relay is and the ticket to
/// register with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RelayGrant {
    /// The relay's UDP port on the server's host.
    pub udp_port: u16,
    /// The relay's address when clients must not use the server's host
    /// name for it (set by the operator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_addr: Option<String>,
    /// 32 bytes, hex: the registration ticket for this device and call.
    pub ticket: String,
    /// Unix milliseconds; the ticket is refused after.
    pub expires_at: i64,
}

/// `POST /v1/devices`: a new device joins a user with a link code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkRequest {
    /// The user to join.
    pub handle: String,
    /// The code an existing device of that user created.
    pub code: String,
    /// The new device's keys.
    pub device: DeviceKeys,
}

/// A signed fallback key, handed out when one-time keys run out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedKey {
    /// Olm key id.
    pub key_id: String,
    /// Curve25519 public key.
    pub key: String,
    /// Ed25519 signature by the device over [`fallback_key_message`].
    pub signature: String,
}

/// The bytes a device signs to vouch for its fallback key.
pub fn fallback_key_message(device_id: &str, key_id: &str, key: &str) -> String {
    format!("parley-fallback-key\n{device_id}\n{key_id}\n{key}")
}

/// `POST /v1/keys`: publish one-time keys and (optionally) a new fallback
/// key.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadKeys {
    /// Pairs of (Olm key id, Curve25519 public key).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<String>>))]
    pub one_time_keys: Vec<(String, String)>,
    /// A replacement fallback key.
    pub fallback_key: Option<SignedKey>,
}

/// How many unclaimed one-time keys the server holds for the device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyCount {
    /// Unclaimed one-time keys.
    pub one_time_keys: i64,
}

/// A device in the directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// Device id.
    pub device_id: String,
    /// The owner's handle.
    pub handle: String,
    /// Curve25519 identity key.
    pub identity_key: String,
    /// Ed25519 signing key.
    pub signing_key: String,
}

/// `POST /v1/keys/claim`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimRequest {
    /// Devices to start sessions with.
    pub device_ids: Vec<String>,
}

/// A key to start an Olm session with one device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimedKey {
    /// The device.
    pub device: DeviceInfo,
    /// Olm key id.
    pub key_id: String,
    /// Curve25519 public key.
    pub key: String,
    /// Set when this is the device's fallback key (no one-time keys were
    /// left); the signature lets the claimer check it.
    pub fallback_signature: Option<String>,
}

/// Olm message type of an envelope's ciphertext.
pub mod kind {
    /// An Olm pre-key message (starts a session).
    pub const OLM_PRE_KEY: i64 = 0;
    /// An Olm normal message.
    pub const OLM_MESSAGE: i64 = 1;
    /// A Megolm group message; the envelope names its group, and the
    /// server relays it only between members.
    pub const MEGOLM: i64 = 2;
}

/// An envelope as a sender submits it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutgoingEnvelope {
    /// Client-generated id, unique per recipient device; resending the
    /// same id is a no-op.
    pub id: String,
    /// Recipient device.
    pub to_device: String,
    /// [`kind`] of the ciphertext.
    pub kind: i64,
    /// Ciphertext, base64.
    pub ciphertext: String,
    /// The group, for [`kind::MEGOLM`] envelopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
}

/// `POST /v1/messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendRequest {
    /// Envelopes to store and forward.
    pub envelopes: Vec<OutgoingEnvelope>,
}

/// The answer to a send: every envelope is stored durably.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendResponse {
    /// Ids stored (including ones stored by an earlier, repeated send).
    pub stored: Vec<String>,
}

/// An envelope as the recipient gets it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Envelope {
    /// The sender's id for it.
    pub id: String,
    /// Sending device.
    pub from_device: String,
    /// Sending user's handle.
    pub from_handle: String,
    /// [`kind`] of the ciphertext.
    pub kind: i64,
    /// Ciphertext, base64.
    pub ciphertext: String,
    /// The group, for [`kind::MEGOLM`] envelopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// When the server stored it, unix milliseconds.
    pub server_ts: i64,
}

/// `POST /v1/devices/{device_id}/messages/ack`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckRequest {
    /// Envelope ids the device has processed; the server deletes them.
    pub ids: Vec<String>,
}

/// Frames a client sends on `/v1/ws`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Store and forward envelopes; answered by [`ServerFrame::Stored`].
    Send {
        /// The envelopes.
        envelopes: Vec<OutgoingEnvelope>,
    },
    /// Delete delivered envelopes.
    Ack {
        /// Their ids.
        ids: Vec<String>,
    },
}

/// Frames the server sends on `/v1/ws`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// An envelope for this device; in order per sender, at least once
    /// until acked.
    Envelope(Envelope),
    /// Every envelope queued when the connection opened has been sent.
    Drained,
    /// The envelopes with these ids are stored.
    Stored {
        /// Their ids.
        ids: Vec<String>,
    },
    /// A frame was refused; the connection stays open.
    Error(ErrorBody),
}

/// Every error, on HTTP and the websocket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable machine-readable code (`unauthorized`, `queue_full`, ...).
    pub error: String,
    /// What happened and what to do, for people.
    pub message: String,
}

/// `POST /v1/groups`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateGroup {
    /// Display name.
    pub name: String,
}

/// `POST /v1/groups/{id}/members`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddMember {
    /// The user to add.
    pub handle: String,
}

/// A group and its members.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupInfo {
    /// Group id.
    pub group_id: String,
    /// Display name.
    pub name: String,
    /// The creator's handle; only the owner removes others.
    pub owner: String,
    /// Members' handles, sorted.
    pub members: Vec<String>,
}

/// The answer to `POST /v1/attachments`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttachmentCreated {
    /// Blob id.
    pub id: String,
    /// Path to download it from (relative to the server).
    pub url: String,
    /// Stored bytes.
    pub size: i64,
}

/// `POST /v1/groups/{group_id}/call` answer: a token to join the group's
/// call on the SFU.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupCallGrant {
    /// The SFU room of the group's call.
    pub room: String,
    /// Join token for this device (give it to `POST /v1/sfu/join`).
    pub token: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
    /// The SFU's UDP address (informational: its SDP answer carries it).
    pub sfu_addr: String,
}

/// `POST /v1/demo/join`: a place in a demo room (servers run with
/// `--demo` only).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DemoJoinRequest {
    /// Room name: 1-64 letters, digits, `-` or `_`.
    pub room: String,
    /// Display name: 1-64 characters, no control characters.
    pub name: String,
}

/// `POST /v1/demo/join` answer. Media in a demo room is keyed by the room
/// passphrase, which never reaches the server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DemoJoinGrant {
    /// The SFU room (`demo-<room>`).
    pub room: String,
    /// Join token (give it to `POST /v1/sfu/join`).
    pub token: String,
    /// The name the room will show.
    pub user: String,
    /// A fresh device id for this join: with `user`, it names the sender
    /// key (see the client's `group_e2ee::passphrase_key`).
    pub device: String,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
}

/// `POST /v1/sfu/join`: a participant's SDP offer for a room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SfuJoinRequest {
    /// The room named in the token.
    pub room: String,
    /// From `POST /v1/groups/{group_id}/call`.
    pub token: String,
    /// SDP offer: the tracks to publish and a data channel labelled
    /// `parley-sfu` for the SFU's control messages.
    pub offer: String,
}

/// `POST /v1/sfu/join` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SfuJoinAnswer {
    /// The SFU's SDP answer.
    pub answer: String,
}
