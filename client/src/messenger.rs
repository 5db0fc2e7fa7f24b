//! One device's connection to a Parley server: registration and linking,
//! sign-in, key publishing, and end-to-end encrypted messaging with
//! client-side fan-out (one envelope per recipient device, including the
//! sender's own other devices, as WhatsApp and Signal do).
//!
//! State is saved to the [`Vault`] after every change to the Olm state and
//! before anything is acknowledged to the server, so a crash can repeat a
//! delivery (which duplicate detection absorbs) but never lose a ratchet
//! step or a message.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley_wire::api::{
    self, AckRequest, AddMember, ChallengeRequest, ClaimRequest, ClaimedKey, ClientFrame,
    CreateGroup, DeviceCreated, DeviceInfo, Envelope, ErrorBody, GroupInfo, KeyCount, LinkCode,
    LinkRequest, OutgoingEnvelope, RegisterRequest, SendRequest, SendResponse, ServerFrame, Token,
    TokenRequest, UploadKeys,
};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

use crate::attachment::{self, AttachmentError, AttachmentRef};
use crate::call::signal::CallSignal;
use crate::endpoint::{Endpoint, EndpointError};
use crate::group_sessions::{self, GroupError, GroupSessions, GroupSessionsPickle, KeyShare};
use crate::olm_machine::{OlmError, OlmMachine, OlmPickle};
use crate::payload::{Payload, ReceiptStatus};
use crate::vault::{KeySource, Vault, VaultError};

/// One-time keys kept published: enough for a burst of new contacts.
const ONE_TIME_KEY_TARGET: i64 = 50;

/// Top up when the server holds fewer than this.
const ONE_TIME_KEY_LOW: i64 = 20;

/// Message ids remembered for duplicate detection.
const SEEN_MESSAGES: usize = 10_000;

/// Renew the token when it has less than this left.
const TOKEN_MARGIN_MS: i64 = 60_000;

/// Errors of the messaging SDK.
#[derive(Debug, thiserror::Error)]
pub enum MessengerError {
    /// The vault could not be opened or saved.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Olm refused something.
    #[error(transparent)]
    Olm(#[from] OlmError),
    /// An attachment could not be prepared, sealed or opened.
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
    /// A group message could not be decrypted.
    #[error(transparent)]
    Group(#[from] GroupError),
    /// The server could not be reached.
    #[error("cannot reach server {server}: {source}")]
    Unreachable {
        /// The server URL.
        server: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The server refused a request.
    #[error("server refused {what}: {message} ({code}, HTTP {status})")]
    Refused {
        /// The request.
        what: &'static str,
        /// HTTP status.
        status: u16,
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The server address or its TLS trust could not be set up.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The websocket failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tungstenite::Error>),
    /// The server sent something that is not the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The recipient has no devices with keys.
    #[error("{0} has no device that can receive messages")]
    NoDevices(String),
}

/// Everything but the Olm state, which is pickled beside it on save.
#[derive(Serialize, Deserialize)]
struct State {
    server: String,
    handle: String,
    user_id: String,
    device_id: String,
    token: Option<Token>,
    seen: VecDeque<String>,
}

/// What the vault holds, as written.
#[derive(Serialize)]
struct SavedRef<'a> {
    #[serde(flatten)]
    state: &'a State,
    olm: OlmPickle,
    groups: GroupSessionsPickle,
}

/// What the vault holds, as read.
#[derive(Deserialize)]
struct Saved {
    #[serde(flatten)]
    state: State,
    olm: OlmPickle,
    #[serde(default)]
    groups: GroupSessionsPickle,
}

/// A message as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    /// Message id (the same on every device).
    pub id: String,
    /// Sender's handle.
    pub from: String,
    /// The sending device.
    pub from_device: String,
    /// Recipient handle (differs from this device's user for messages the
    /// user sent from another device).
    pub to: String,
    /// Group, for group messages.
    pub group: Option<String>,
    /// The text (empty for an attachment).
    pub text: String,
    /// The attached file, if this message is one.
    pub attachment: Option<AttachmentRef>,
    /// Sender's clock, unix milliseconds.
    pub sent_at: i64,
}

/// A delivery or read receipt from another device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Who sent the receipt.
    pub from: String,
    /// Their device.
    pub from_device: String,
    /// The messages it is about.
    pub ids: Vec<String>,
    /// Delivered or read.
    pub status: ReceiptStatus,
}

/// Something that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message (text or attachment).
    Message(Incoming),
    /// A receipt for messages this user sent.
    Receipt(Receipt),
    /// A call signal from another device (or this user's other device).
    Call(CallEvent),
    /// An envelope that does not decrypt: tampered with on the way (the
    /// server cannot forge Olm), or sent by a broken client. It is dropped
    /// so it cannot block the queue, and reported.
    Undecryptable {
        /// The sender the server named.
        from: String,
        /// The sending device the server named.
        from_device: String,
        /// Why it failed.
        reason: String,
    },
}

/// A call signal as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEvent {
    /// The sender's handle.
    pub from: String,
    /// The sender's device.
    pub from_device: String,
    /// What it says.
    pub signal: CallSignal,
}

/// A device's open websocket.
pub struct Connection {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pending_receipts: Vec<(String, String)>,
    drained: bool,
}

impl Connection {
    /// The next frame from the server; `None` once the connection closes.
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next_frame(&mut self) -> Option<Result<ServerFrame, MessengerError>> {
        loop {
            let frame = match self.socket.next().await? {
                Ok(f) => f,
                Err(e) => return Some(Err(MessengerError::WebSocket(Box::new(e)))),
            };
            let text = match frame {
                tungstenite::Message::Text(t) => t,
                tungstenite::Message::Close(_) => return None,
                _ => continue,
            };
            return Some(
                serde_json::from_str(text.as_str())
                    .map_err(|e| MessengerError::Protocol(format!("bad frame from server: {e}"))),
            );
        }
    }

    /// Whether everything queued at connect time has been received.
    pub fn drained(&self) -> bool {
        self.drained
    }

    async fn send(&mut self, frame: &ClientFrame) -> Result<(), MessengerError> {
        let text = serde_json::to_string(frame).expect("frames serialize");
        self.socket
            .send(tungstenite::Message::Text(text.into()))
            .await
            .map_err(|e| MessengerError::WebSocket(Box::new(e)))
    }

    /// Closes, letting acks already sent reach the server first.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while self.socket.next().await.is_some() {}
        })
        .await;
    }
}

/// How `receive` should end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveMode {
    /// Return once everything queued has been processed.
    Drain,
    /// Keep receiving until the connection closes.
    Follow,
}

/// One device's messaging client.
pub struct Messenger {
    http: reqwest::Client,
    /// The server and the roots trusted for it; its URL is `state.server`.
    endpoint: Endpoint,
    vault: Vault,
    state: State,
    olm: OlmMachine,
    groups: GroupSessions,
}

impl Messenger {
    /// Registers a new user `handle` with this as its first device, in a
    /// fresh data dir.
    pub async fn register(
        server: impl Into<Endpoint>,
        dir: &Path,
        key: KeySource,
        handle: &str,
    ) -> Result<Self, MessengerError> {
        let endpoint = server.into();
        Vault::ensure_free(dir)?;
        let olm = OlmMachine::new();
        let request = RegisterRequest {
            handle: handle.to_string(),
            device: olm.device_keys(handle),
        };
        let http = endpoint.http_client()?;
        let created: DeviceCreated = post_json(
            &http,
            endpoint.url(),
            "/v1/register",
            None,
            &request,
            "registration",
        )
        .await?;
        Self::finish_setup(endpoint, dir, key, handle, created, olm, http).await
    }

    /// Links this new device to `handle`, with a code from one of its
    /// existing devices ([`create_link_code`](Self::create_link_code)).
    pub async fn link(
        server: impl Into<Endpoint>,
        dir: &Path,
        key: KeySource,
        handle: &str,
        code: &str,
    ) -> Result<Self, MessengerError> {
        let endpoint = server.into();
        Vault::ensure_free(dir)?;
        let olm = OlmMachine::new();
        let request = LinkRequest {
            handle: handle.to_string(),
            code: code.to_string(),
            device: olm.device_keys(handle),
        };
        let http = endpoint.http_client()?;
        let created: DeviceCreated = post_json(
            &http,
            endpoint.url(),
            "/v1/devices",
            None,
            &request,
            "device link",
        )
        .await?;
        Self::finish_setup(endpoint, dir, key, handle, created, olm, http).await
    }

    async fn finish_setup(
        endpoint: Endpoint,
        dir: &Path,
        key: KeySource,
        handle: &str,
        created: DeviceCreated,
        olm: OlmMachine,
        http: reqwest::Client,
    ) -> Result<Self, MessengerError> {
        let vault = Vault::create(dir, key)?;
        let state = State {
            server: endpoint.url().to_string(),
            handle: handle.to_string(),
            user_id: created.user_id,
            device_id: created.device_id,
            token: None,
            seen: VecDeque::new(),
        };
        let mut messenger = Self {
            http,
            endpoint,
            vault,
            state,
            olm,
            groups: GroupSessions::default(),
        };
        messenger.save()?;
        messenger.publish_keys().await?;
        Ok(messenger)
    }

    /// Opens the device in `dir`. `server` overrides the server it was
    /// registered with (and carries the CAs to trust); `passphrase` is
    /// called only for a passphrase vault.
    pub async fn open(
        dir: &Path,
        server: Option<Endpoint>,
        passphrase: impl FnOnce() -> Option<String>,
    ) -> Result<Self, MessengerError> {
        let (vault, plaintext) = Vault::open(dir, passphrase)?;
        let Saved {
            mut state,
            olm,
            groups,
        } = serde_json::from_slice(&plaintext).map_err(|e| VaultError::Corrupt {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let endpoint = match server {
            Some(endpoint) => endpoint,
            None => Endpoint::new(state.server.as_str()),
        };
        state.server = endpoint.url().to_string();
        Ok(Self {
            http: endpoint.http_client()?,
            endpoint,
            vault,
            state,
            olm: OlmMachine::from_pickle(olm),
            groups: GroupSessions::from_pickle(groups),
        })
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        &self.state.device_id
    }

    /// This device's user's handle.
    pub fn handle(&self) -> &str {
        &self.state.handle
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.state.server
    }

    /// POSTs JSON with this device's token.
    async fn post<T: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        body: &impl Serialize,
        what: &'static str,
    ) -> Result<T, MessengerError> {
        let token = self.token().await?;
        post_json(
            &self.http,
            &self.state.server,
            path,
            Some(&token),
            body,
            what,
        )
        .await
    }

    /// GETs JSON with this device's token.
    async fn get<T: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        what: &'static str,
    ) -> Result<T, MessengerError> {
        let token = self.token().await?;
        get_json(&self.http, &self.state.server, path, &token, what).await
    }

    fn save(&mut self) -> Result<(), MessengerError> {
        let saved = SavedRef {
            state: &self.state,
            olm: self.olm.pickle(),
            groups: self.groups.pickle(),
        };
        let bytes = serde_json::to_vec(&saved).expect("state always serializes");
        self.vault.save(&bytes)?;
        Ok(())
    }

    /// A valid bearer token, signing in again when the old one is near its
    /// end.
    pub async fn token(&mut self) -> Result<String, MessengerError> {
        if let Some(t) = &self.state.token
            && t.expires_at - parley_wire::clock::now_ms() > TOKEN_MARGIN_MS
        {
            return Ok(t.token.clone());
        }
        let device_id = self.state.device_id.clone();
        let challenge: api::Challenge = post_json(
            &self.http,
            &self.state.server,
            "/v1/auth/challenge",
            None,
            &ChallengeRequest {
                device_id: device_id.clone(),
            },
            "sign-in challenge",
        )
        .await?;
        let signature = self
            .olm
            .sign(&api::challenge_message(&device_id, &challenge.challenge));
        let token: Token = post_json(
            &self.http,
            &self.state.server,
            "/v1/auth/token",
            None,
            &TokenRequest {
                device_id,
                challenge: challenge.challenge,
                signature,
            },
            "sign-in",
        )
        .await?;
        self.state.token = Some(token.clone());
        self.save()?;
        Ok(token.token)
    }

    /// Publishes one-time keys up to the target, and the fallback key if
    /// it is new.
    pub async fn publish_keys(&mut self) -> Result<(), MessengerError> {
        let count: KeyCount = self.get("/v1/keys/count", "key count").await?;
        let device_id = self.state.device_id.clone();
        let fallback_key = self.olm.fallback_key(&device_id);
        let wanted = if count.one_time_keys < ONE_TIME_KEY_LOW {
            (ONE_TIME_KEY_TARGET - count.one_time_keys) as usize
        } else {
            0
        };
        let one_time_keys = self.olm.one_time_keys(wanted);
        if one_time_keys.is_empty() && fallback_key.is_none() {
            return Ok(());
        }
        // Save before uploading: the private halves must exist on disk
        // before anyone can claim the public ones.
        self.save()?;
        let upload = UploadKeys {
            one_time_keys,
            fallback_key,
        };
        let _: KeyCount = self.post("/v1/keys", &upload, "key upload").await?;
        self.olm.mark_published(upload.fallback_key.as_ref());
        self.save()
    }

    /// A code that lets a new device join this user (see [`link`](Self::link)).
    pub async fn create_link_code(&mut self) -> Result<LinkCode, MessengerError> {
        self.post("/v1/link-codes", &serde_json::json!({}), "link code")
            .await
    }

    /// The devices of a user, as the directory lists them.
    pub async fn devices_of(&mut self, handle: &str) -> Result<Vec<DeviceInfo>, MessengerError> {
        self.get(&format!("/v1/users/{handle}/devices"), "device list")
            .await
    }

    /// Sends a text to `to` (every device of that user, and this user's
    /// other devices). Returns the message id once every envelope is stored
    /// on the server.
    pub async fn send_text(&mut self, to: &str, text: &str) -> Result<String, MessengerError> {
        let (id, envelopes) = self.prepare_text(to, text).await?;
        self.submit(envelopes).await?;
        Ok(id)
    }

    /// Encrypts a text for every device of `to` and this user's other
    /// devices without sending it: (message id, envelopes). Submitting the
    /// same envelopes again (after a timeout, say) delivers them once.
    pub async fn prepare_text(
        &mut self,
        to: &str,
        text: &str,
    ) -> Result<(String, Vec<OutgoingEnvelope>), MessengerError> {
        let id = uuid::Uuid::new_v4().to_string();
        let payload = Payload::Text {
            id: id.clone(),
            sent_at: parley_wire::clock::now_ms(),
            to: to.to_string(),
            group: None,
            text: text.to_string(),
        };
        let envelopes = self.encrypt_for_users(&[to], &payload).await?;
        Ok((id, envelopes))
    }

    /// Sends a file to `to`: compresses it by kind, encrypts it with a
    /// fresh key, uploads the ciphertext, and sends the pointer, key and
    /// hash end-to-end. Returns the message id.
    pub async fn send_attachment(
        &mut self,
        to: &str,
        path: &Path,
    ) -> Result<String, MessengerError> {
        let prepared = attachment::prepare(path)?;
        let (key, blob, sha256) = attachment::seal(&prepared.bytes);
        let token = self.token().await?;
        let response = self
            .http
            .post(format!("{}/v1/attachments", self.state.server))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(blob)
            .send()
            .await;
        let created: api::AttachmentCreated =
            read_response(&self.state.server, response, "attachment upload").await?;
        let id = uuid::Uuid::new_v4().to_string();
        let payload = Payload::Attachment {
            id: id.clone(),
            sent_at: parley_wire::clock::now_ms(),
            to: to.to_string(),
            group: None,
            attachment: AttachmentRef {
                url: created.url,
                key: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key),
                sha256,
                mime: prepared.mime,
                size: prepared.bytes.len() as u64,
                name: prepared.name,
            },
        };
        let envelopes = self.encrypt_for_users(&[to], &payload).await?;
        self.submit(envelopes).await?;
        Ok(id)
    }

    /// Downloads an attachment, checks its hash and decrypts it.
    pub async fn fetch_attachment(
        &mut self,
        reference: &AttachmentRef,
    ) -> Result<Vec<u8>, MessengerError> {
        let token = self.token().await?;
        let unreachable = |source| MessengerError::Unreachable {
            server: self.state.server.clone(),
            source,
        };
        let response = self
            .http
            .get(format!("{}{}", self.state.server, reference.url))
            .bearer_auth(token)
            .send()
            .await
            .map_err(unreachable)?;
        let response = refused_unless_ok(response, "attachment download").await?;
        let blob = response.bytes().await.map_err(unreachable)?;
        Ok(attachment::open(reference, &blob)?)
    }

    /// Encrypts `payload` for every device of `handles` and this user's
    /// other devices, starting sessions where needed.
    async fn encrypt_for_users(
        &mut self,
        handles: &[&str],
        payload: &Payload,
    ) -> Result<Vec<OutgoingEnvelope>, MessengerError> {
        let targets = self.devices_of_users(handles).await?;
        let ids: Vec<String> = targets.iter().map(|d| d.device_id.clone()).collect();
        self.encrypt_for_devices(&ids, payload).await
    }

    /// Every device of `handles` and of this user, except this device,
    /// checked against the identity keys seen before.
    async fn devices_of_users(
        &mut self,
        handles: &[&str],
    ) -> Result<Vec<DeviceInfo>, MessengerError> {
        let mut targets = Vec::new();
        let mut seen = BTreeSet::new();
        let own = self.state.handle.clone();
        for handle in handles.iter().copied().chain([own.as_str()]) {
            if !seen.insert(handle.to_string()) {
                continue;
            }
            let devices = self.devices_of(handle).await?;
            if devices.is_empty() && handle != own {
                return Err(MessengerError::NoDevices(handle.to_string()));
            }
            for d in devices {
                if d.device_id != self.state.device_id {
                    self.olm.remember(&d)?;
                    targets.push(d);
                }
            }
        }
        Ok(targets)
    }

    /// Encrypts `payload` pairwise (Olm) for each of `devices` (already
    /// remembered), claiming keys and starting sessions where needed.
    async fn encrypt_for_devices(
        &mut self,
        devices: &[String],
        payload: &Payload,
    ) -> Result<Vec<OutgoingEnvelope>, MessengerError> {
        let missing: Vec<String> = devices
            .iter()
            .filter(|d| !self.olm.has_session(d))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let request = ClaimRequest {
                device_ids: missing,
            };
            let claimed: Vec<ClaimedKey> =
                self.post("/v1/keys/claim", &request, "key claim").await?;
            for key in &claimed {
                self.olm.start_session(key)?;
            }
        }
        let plaintext = serde_json::to_vec(payload).expect("payloads always serialize");
        let mut envelopes = Vec::new();
        for device in devices {
            if !self.olm.has_session(device) {
                tracing::warn!(device = %device, "device has no keys; skipped");
                continue;
            }
            let (kind, ciphertext) = self.olm.encrypt(device, &plaintext)?;
            envelopes.push(OutgoingEnvelope {
                id: uuid::Uuid::new_v4().to_string(),
                to_device: device.clone(),
                kind,
                ciphertext,
                group_id: None,
            });
        }
        // The ratchets moved: persist before anything leaves the device.
        self.save()?;
        Ok(envelopes)
    }

    /// The devices a call to `handle` rings: all of them except this one
    /// (for this user's own handle: its other devices).
    pub async fn call_devices(&mut self, handle: &str) -> Result<Vec<String>, MessengerError> {
        let mut out = Vec::new();
        for d in self.devices_of(handle).await? {
            if d.device_id != self.state.device_id {
                self.olm.remember(&d)?;
                out.push(d.device_id);
            }
        }
        if out.is_empty() && handle != self.state.handle {
            return Err(MessengerError::NoDevices(handle.to_string()));
        }
        Ok(out)
    }

    /// Sends `signal` to one device of `handle` (found with
    /// [`call_devices`](Self::call_devices) or from a received signal),
    /// end-to-end encrypted like any message.
    pub async fn send_call_signal(
        &mut self,
        handle: &str,
        device_id: &str,
        signal: CallSignal,
    ) -> Result<(), MessengerError> {
        if self.olm.known(device_id).is_none() {
            self.call_devices(handle).await?;
        }
        if self.olm.known(device_id).is_none() {
            return Err(MessengerError::Protocol(format!(
                "device {device_id} is not one of {handle}'s"
            )));
        }
        let payload = Payload::Call {
            id: uuid::Uuid::new_v4().to_string(),
            signal,
        };
        let envelopes = self
            .encrypt_for_devices(&[device_id.to_string()], &payload)
            .await?;
        self.submit(envelopes).await?;
        Ok(())
    }

    /// A ticket for the server's UDP relay for the call with `call_key`;
    /// `None` when the server runs no relay.
    pub async fn relay_grant(
        &mut self,
        call_key: &[u8; 16],
    ) -> Result<Option<parley_wire::api::RelayGrant>, MessengerError> {
        let request = parley_wire::api::RelayRequest {
            call_key: hex::encode(call_key),
        };
        match self.post("/v1/calls/relay", &request, "relay ticket").await {
            Ok(grant) => Ok(Some(grant)),
            Err(MessengerError::Refused { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A token to join `group_id`'s call on the server's SFU (members
    /// only; 404 from a server without an SFU).
    pub async fn group_call(
        &mut self,
        group_id: &str,
    ) -> Result<parley_wire::api::GroupCallGrant, MessengerError> {
        let path = format!("/v1/groups/{group_id}/call");
        self.post(&path, &serde_json::json!({}), "group call token")
            .await
    }

    /// Sends an SDP offer to the SFU with a join token; returns its answer.
    pub async fn sfu_join(
        &mut self,
        room: &str,
        token: &str,
        offer: &str,
    ) -> Result<String, MessengerError> {
        sfu_join(&self.http, &self.state.server, room, token, offer).await
    }

    /// Creates a group with this user as owner and only member.
    pub async fn create_group(&mut self, name: &str) -> Result<GroupInfo, MessengerError> {
        self.post(
            "/v1/groups",
            &CreateGroup {
                name: name.to_string(),
            },
            "group creation",
        )
        .await
    }

    /// Adds a user to a group (any member may).
    pub async fn add_member(
        &mut self,
        group_id: &str,
        handle: &str,
    ) -> Result<GroupInfo, MessengerError> {
        self.post(
            &format!("/v1/groups/{group_id}/members"),
            &AddMember {
                handle: handle.to_string(),
            },
            "adding a member",
        )
        .await
    }

    /// Removes a user from a group (the owner removes anyone; others only
    /// themselves). The next message from each member goes out under a new
    /// session the removed user never gets.
    pub async fn remove_member(
        &mut self,
        group_id: &str,
        handle: &str,
    ) -> Result<GroupInfo, MessengerError> {
        let token = self.token().await?;
        let response = self
            .http
            .delete(format!(
                "{}/v1/groups/{group_id}/members/{handle}",
                self.state.server
            ))
            .bearer_auth(token)
            .send()
            .await;
        read_response(&self.state.server, response, "removing a member").await
    }

    /// The groups this user is in.
    pub async fn groups(&mut self) -> Result<Vec<GroupInfo>, MessengerError> {
        self.get("/v1/groups", "group list").await
    }

    /// One group (members only).
    pub async fn group(&mut self, group_id: &str) -> Result<GroupInfo, MessengerError> {
        self.get(&format!("/v1/groups/{group_id}"), "group").await
    }

    /// Sends a text to every member device of a group (and this user's
    /// other devices), Megolm-encrypted once; shares the session key over
    /// Olm with devices that lack it, replacing the session first if a
    /// device has left. Returns the message id.
    pub async fn send_group_text(
        &mut self,
        group_id: &str,
        text: &str,
    ) -> Result<String, MessengerError> {
        let group = self.group(group_id).await?;
        let handles: Vec<&str> = group.members.iter().map(String::as_str).collect();
        let devices: BTreeSet<String> = self
            .devices_of_users(&handles)
            .await?
            .into_iter()
            .map(|d| d.device_id)
            .collect();
        let (share, needs_key) = self.groups.prepare(group_id, &devices);
        let KeyShare {
            session_id,
            session_key,
        } = share;
        let key_payload = Payload::GroupKey {
            group_id: group_id.to_string(),
            session_id,
            session_key,
        };
        let mut envelopes = if needs_key.is_empty() {
            Vec::new()
        } else {
            self.encrypt_for_devices(&needs_key, &key_payload).await?
        };
        let id = uuid::Uuid::new_v4().to_string();
        let payload = Payload::Text {
            id: id.clone(),
            sent_at: parley_wire::clock::now_ms(),
            to: group_id.to_string(),
            group: Some(group_id.to_string()),
            text: text.to_string(),
        };
        let plaintext = serde_json::to_vec(&payload).expect("payloads always serialize");
        let ciphertext = self
            .groups
            .encrypt(group_id, &plaintext)
            .expect("prepare made the outbound session");
        let ciphertext = group_sessions::encode(&ciphertext);
        for device in &devices {
            envelopes.push(OutgoingEnvelope {
                id: uuid::Uuid::new_v4().to_string(),
                to_device: device.clone(),
                kind: api::kind::MEGOLM,
                ciphertext: ciphertext.clone(),
                group_id: Some(group_id.to_string()),
            });
        }
        self.save()?;
        // Key shares and the message in one request: the server stores
        // them in this order, so each device gets its key first.
        self.submit(envelopes).await?;
        self.groups.mark_shared(group_id, &needs_key);
        self.save()?;
        Ok(id)
    }

    /// Stores envelopes on the server. Safe to repeat with the same
    /// envelopes: the server keeps one copy per id.
    pub async fn submit(
        &mut self,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> Result<SendResponse, MessengerError> {
        self.post("/v1/messages", &SendRequest { envelopes }, "send")
            .await
    }

    /// Receives messages only (see [`receive_events`](Self::receive_events)).
    pub async fn receive(
        &mut self,
        mode: ReceiveMode,
        mut on_message: impl FnMut(Incoming),
    ) -> Result<(), MessengerError> {
        self.receive_events(mode, |event| {
            if let Event::Message(m) = event {
                on_message(m);
            }
        })
        .await
    }

    /// Receives over the websocket: decrypts each envelope, drops
    /// duplicates, hands new messages and receipts to `on_event`, saves,
    /// and acks. Messages from other users are answered with a delivery
    /// receipt once the queue is drained (and then as each arrives). With
    /// [`ReceiveMode::Drain`] it returns once the queue is empty.
    pub async fn receive_events(
        &mut self,
        mode: ReceiveMode,
        mut on_event: impl FnMut(Event),
    ) -> Result<(), MessengerError> {
        let mut conn = self.connect().await?;
        while let Some(frame) = conn.next_frame().await {
            let frame = frame?;
            let drained = matches!(frame, ServerFrame::Drained);
            for event in self.process_frame(&mut conn, frame).await? {
                on_event(event);
            }
            if drained && mode == ReceiveMode::Drain {
                conn.close().await;
                break;
            }
        }
        self.publish_keys().await
    }

    /// Opens this device's websocket. Drive it with
    /// [`Connection::next_frame`] and [`process_frame`](Self::process_frame).
    pub async fn connect(&mut self) -> Result<Connection, MessengerError> {
        let token = self.token().await?;
        let url = ws_url(&self.state.server);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| MessengerError::WebSocket(Box::new(e)))?;
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .expect("token is a valid header value"),
        );
        let connector = self.endpoint.ws_connector()?;
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
                .await
                .map_err(|e| MessengerError::WebSocket(Box::new(e)))?;
        Ok(Connection {
            socket,
            pending_receipts: Vec::new(),
            drained: false,
        })
    }

    /// Handles one frame: decrypts, saves, acks, and sends delivery
    /// receipts when due. Run it to completion (it is not cancel-safe;
    /// [`Connection::next_frame`] is).
    pub async fn process_frame(
        &mut self,
        conn: &mut Connection,
        frame: ServerFrame,
    ) -> Result<Vec<Event>, MessengerError> {
        let mut events = Vec::new();
        match frame {
            ServerFrame::Envelope(envelope) => {
                let id = envelope.id.clone();
                match self.open_envelope(&envelope).await {
                    Ok(Some(event)) => {
                        if let Event::Message(m) = &event
                            && m.from != self.state.handle
                        {
                            conn.pending_receipts.push((m.from.clone(), m.id.clone()));
                        }
                        events.push(event);
                    }
                    Ok(None) => {}
                    // An envelope that can never be decrypted is dropped
                    // (and said so) rather than blocking the queue for ever.
                    Err(e) => {
                        tracing::warn!(envelope = %id, error = %e, "dropping undecryptable envelope");
                        events.push(Event::Undecryptable {
                            from: envelope.from_handle.clone(),
                            from_device: envelope.from_device.clone(),
                            reason: e.to_string(),
                        });
                    }
                }
                self.save()?;
                conn.send(&ClientFrame::Ack { ids: vec![id] }).await?;
                if conn.drained {
                    self.send_receipts(&mut conn.pending_receipts, ReceiptStatus::Delivered)
                        .await?;
                }
            }
            ServerFrame::Drained => {
                conn.drained = true;
                self.send_receipts(&mut conn.pending_receipts, ReceiptStatus::Delivered)
                    .await?;
            }
            ServerFrame::Stored { .. } => {}
            ServerFrame::Error(e) => {
                tracing::warn!(error = %e.error, message = %e.message, "server error")
            }
        }
        Ok(events)
    }

    /// Tells the senders of `pending` (sender handle, message id) that
    /// their messages arrived or were read: one receipt per sender, which
    /// is itself never answered with a receipt.
    async fn send_receipts(
        &mut self,
        pending: &mut Vec<(String, String)>,
        status: ReceiptStatus,
    ) -> Result<(), MessengerError> {
        let mut by_sender: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (from, id) in pending.drain(..) {
            by_sender.entry(from).or_default().push(id);
        }
        for (from, ids) in by_sender {
            let payload = Payload::Receipt { ids, status };
            let envelopes = self.encrypt_for_users(&[from.as_str()], &payload).await?;
            self.submit(envelopes).await?;
        }
        Ok(())
    }

    /// Sends read receipts for messages from `from`.
    pub async fn mark_read(&mut self, from: &str, ids: Vec<String>) -> Result<(), MessengerError> {
        let mut pending = ids.into_iter().map(|id| (from.to_string(), id)).collect();
        self.send_receipts(&mut pending, ReceiptStatus::Read).await
    }

    /// Decrypts one envelope. `None` for duplicates and payloads that are
    /// not for the user (key shares).
    async fn open_envelope(
        &mut self,
        envelope: &Envelope,
    ) -> Result<Option<Event>, MessengerError> {
        if self.olm.known(&envelope.from_device).is_none() {
            let devices = self.devices_of(&envelope.from_handle).await?;
            let device = devices
                .into_iter()
                .find(|d| d.device_id == envelope.from_device)
                .ok_or_else(|| {
                    MessengerError::Protocol(format!(
                        "device {} is not one of {}'s",
                        envelope.from_device, envelope.from_handle
                    ))
                })?;
            self.olm.remember(&device)?;
        }
        let sender = self
            .olm
            .known(&envelope.from_device)
            .expect("remembered above")
            .clone();
        let payload = self.decrypt_payload(envelope)?;
        if let Payload::GroupKey {
            group_id,
            session_id,
            session_key,
        } = &payload
        {
            let share = KeyShare {
                session_id: session_id.clone(),
                session_key: session_key.clone(),
            };
            self.groups
                .add_inbound(group_id, &envelope.from_device, &share)?;
            return Ok(None);
        }
        let dedupe = payload.dedupe_id();
        if self.state.seen.contains(&dedupe) {
            return Ok(None);
        }
        self.state.seen.push_back(dedupe);
        while self.state.seen.len() > SEEN_MESSAGES {
            self.state.seen.pop_front();
        }
        Ok(match payload {
            Payload::Text {
                id,
                sent_at,
                to,
                group,
                text,
            } => Some(Event::Message(Incoming {
                id,
                from: sender.handle,
                from_device: sender.device_id,
                to,
                group,
                text,
                attachment: None,
                sent_at,
            })),
            Payload::Attachment {
                id,
                sent_at,
                to,
                group,
                attachment,
            } => Some(Event::Message(Incoming {
                id,
                from: sender.handle,
                from_device: sender.device_id,
                to,
                group,
                text: String::new(),
                attachment: Some(attachment),
                sent_at,
            })),
            Payload::Receipt { ids, status } => Some(Event::Receipt(Receipt {
                from: sender.handle,
                from_device: sender.device_id,
                ids,
                status,
            })),
            Payload::Call { signal, .. } => Some(Event::Call(CallEvent {
                from: sender.handle,
                from_device: sender.device_id,
                signal,
            })),
            Payload::GroupKey { .. } => None,
        })
    }

    /// Decrypts an envelope's payload: Olm for pairwise kinds, Megolm for
    /// group messages, which may carry only text of their own group.
    fn decrypt_payload(&mut self, envelope: &Envelope) -> Result<Payload, MessengerError> {
        let bad = |what: String| MessengerError::Protocol(what);
        if envelope.kind == api::kind::MEGOLM {
            let group_id = envelope
                .group_id
                .as_deref()
                .ok_or_else(|| bad("group message without a group".into()))?;
            let bytes = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                &envelope.ciphertext,
            )
            .map_err(|_| bad("group ciphertext is not base64".into()))?;
            let plaintext = self
                .groups
                .decrypt(group_id, &envelope.from_device, &bytes)?;
            let payload: Payload =
                serde_json::from_slice(&plaintext).map_err(|e| bad(format!("bad payload: {e}")))?;
            match &payload {
                Payload::Text { group: Some(g), .. } if g == group_id => Ok(payload),
                _ => Err(bad(
                    "a group session may carry only text for its own group".into()
                )),
            }
        } else {
            let plaintext =
                self.olm
                    .decrypt(&envelope.from_device, envelope.kind, &envelope.ciphertext)?;
            serde_json::from_slice(&plaintext).map_err(|e| bad(format!("bad payload: {e}")))
        }
    }

    /// Decrypts one envelope outside [`receive`](Self::receive) (for
    /// clients that poll, and for tests that show what a device can and
    /// cannot read). `None` for duplicates and non-message payloads.
    pub async fn decrypt_envelope(
        &mut self,
        envelope: &Envelope,
    ) -> Result<Option<Event>, MessengerError> {
        let opened = self.open_envelope(envelope).await;
        self.save()?;
        opened
    }

    /// Acks envelopes over HTTP (for clients that poll).
    pub async fn ack(&mut self, ids: Vec<String>) -> Result<(), MessengerError> {
        let path = format!("/v1/devices/{}/messages/ack", self.state.device_id);
        let _: serde_json::Value = self.post(&path, &AckRequest { ids }, "ack").await?;
        Ok(())
    }
}

/// The response if it is a success, else the server's JSON error as
/// [`MessengerError::Refused`].
async fn refused_unless_ok(
    response: reqwest::Response,
    what: &'static str,
) -> Result<reqwest::Response, MessengerError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body: Option<ErrorBody> = response.json().await.ok();
    let (code, message) = body.map_or(("unknown".into(), "no details".into()), |b| {
        (b.error, b.message)
    });
    Err(MessengerError::Refused {
        what,
        status: status.as_u16(),
        code,
        message,
    })
}

fn ws_url(server: &str) -> String {
    let base = if let Some(rest) = server.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = server.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        server.to_string()
    };
    format!("{base}/v1/ws")
}

/// A demo room on a server run with `--demo`: anyone may join, no account
/// (the browser demo's way in, and `parley join --room`).
pub struct DemoRoom {
    http: reqwest::Client,
    server: String,
}

impl DemoRoom {
    /// A client for `endpoint`'s demo rooms.
    pub fn new(endpoint: &Endpoint) -> Result<Self, MessengerError> {
        Ok(Self {
            http: endpoint.http_client()?,
            server: endpoint.url().to_string(),
        })
    }

    /// The server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// `POST /v1/demo/join`: a token for `room` under `name`.
    pub async fn join(
        &self,
        room: &str,
        name: &str,
    ) -> Result<parley_wire::api::DemoJoinGrant, MessengerError> {
        let request = parley_wire::api::DemoJoinRequest {
            room: room.to_string(),
            name: name.to_string(),
        };
        post_json(
            &self.http,
            &self.server,
            "/v1/demo/join",
            None,
            &request,
            "demo room",
        )
        .await
    }

    /// `POST /v1/sfu/join`: the SFU's answer to `offer`.
    pub async fn sfu_join(
        &self,
        room: &str,
        token: &str,
        offer: &str,
    ) -> Result<String, MessengerError> {
        sfu_join(&self.http, &self.server, room, token, offer).await
    }
}

/// `POST /v1/sfu/join`: the join token is the credential (no bearer).
async fn sfu_join(
    http: &reqwest::Client,
    server: &str,
    room: &str,
    token: &str,
    offer: &str,
) -> Result<String, MessengerError> {
    let request = parley_wire::api::SfuJoinRequest {
        room: room.to_string(),
        token: token.to_string(),
        offer: offer.to_string(),
    };
    let joined: parley_wire::api::SfuJoinAnswer =
        post_json(http, server, "/v1/sfu/join", None, &request, "SFU join").await?;
    Ok(joined.answer)
}

async fn post_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    server: &str,
    path: &str,
    token: Option<&str>,
    body: &impl Serialize,
    what: &'static str,
) -> Result<T, MessengerError> {
    let mut request = http
        .post(format!("{}{path}", server.trim_end_matches('/')))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    read_response(server, request.send().await, what).await
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    server: &str,
    path: &str,
    token: &str,
    what: &'static str,
) -> Result<T, MessengerError> {
    let request = http
        .get(format!("{}{path}", server.trim_end_matches('/')))
        .bearer_auth(token);
    read_response(server, request.send().await, what).await
}

async fn read_response<T: serde::de::DeserializeOwned>(
    server: &str,
    response: Result<reqwest::Response, reqwest::Error>,
    what: &'static str,
) -> Result<T, MessengerError> {
    let unreachable = |source| MessengerError::Unreachable {
        server: server.to_string(),
        source,
    };
    let response = response.map_err(unreachable)?;
    refused_unless_ok(response, what)
        .await?
        .json()
        .await
        .map_err(unreachable)
}
