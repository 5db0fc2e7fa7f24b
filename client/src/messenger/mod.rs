//! One device's connection to a Parley server: registration and linking,
//! sign-in, key publishing, and end-to-end encrypted messaging with
//! client-side fan-out (one envelope per recipient device, including the
//! sender's own other devices, as WhatsApp and Signal do).
//!
//! The decisions live in the sans-IO [`core`]: it says which requests to
//! make and when to save. [`Messenger`] is the shell that makes them (HTTP
//! with reqwest, the websocket with tungstenite) and writes the [`Vault`].
//! State is saved after every change to the Olm state and before anything
//! is acknowledged to the server, so a crash can repeat a delivery (which
//! duplicate detection absorbs) but never lose a ratchet step or a
//! message.

pub mod core;

use std::path::Path;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley_wire::api::{
    self, AddMember, ClientFrame, CreateGroup, DeviceCreated, DeviceInfo, Envelope, ErrorBody,
    GroupInfo, LinkCode, LinkRequest, OutgoingEnvelope, RegisterRequest, SendRequest, SendResponse,
    ServerFrame,
};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

pub use self::core::Core;
use self::core::{
    CallDevices, Fetch, GroupSend, HttpRequest, Method, Open, Operation, PublishKeys, Receipts,
    Receive, Recipients, Refusal, Send, SignIn, Step,
};
use crate::attachment::{self, AttachmentError, AttachmentRef};
use crate::call::signal::CallSignal;
use crate::endpoint::{Endpoint, EndpointError};
use crate::group_sessions::GroupError;
use crate::olm_machine::{OlmError, OlmMachine};
use crate::payload::{Payload, ReceiptStatus};
use crate::vault::{KeySource, Vault, VaultError};

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

/// One device's messaging client: the IO shell around [`Core`]. It makes
/// the HTTP requests and websocket sends the core's operations ask for,
/// signs in when the token runs out, and saves the core to the vault when
/// told to. Every decision is the core's.
pub struct Messenger {
    http: reqwest::Client,
    /// The server and the roots trusted for it.
    endpoint: Endpoint,
    vault: Vault,
    core: Core,
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
        let core = Core::new(endpoint.url(), handle, created, olm);
        let mut messenger = Self {
            http,
            endpoint,
            vault,
            core,
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
        let mut core = Core::from_snapshot(&plaintext).map_err(|e| VaultError::Corrupt {
            path: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let endpoint = match server {
            Some(endpoint) => endpoint,
            None => Endpoint::new(core.server()),
        };
        core.set_server(endpoint.url());
        Ok(Self {
            http: endpoint.http_client()?,
            endpoint,
            vault,
            core,
        })
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        self.core.device_id()
    }

    /// This device's user's handle.
    pub fn handle(&self) -> &str {
        self.core.handle()
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        self.core.server()
    }

    fn save(&mut self) -> Result<(), MessengerError> {
        self.vault.save(&self.core.snapshot())?;
        Ok(())
    }

    /// Runs `op` to completion: makes the requests it returns and saves
    /// when it says so. Websocket frames go on `conn`.
    async fn drive<O: Operation>(
        &mut self,
        mut op: O,
        mut conn: Option<&mut Connection>,
    ) -> Result<O::Output, MessengerError> {
        loop {
            match op.poll(&mut self.core)? {
                Step::Done(output) => return Ok(output),
                Step::Persist => self.save()?,
                Step::Frame(frame) => {
                    let conn = conn
                        .as_deref_mut()
                        .expect("only operations driven with a connection send frames");
                    conn.send(&frame).await?;
                }
                Step::Http(request) => {
                    let token = match request.signed_in {
                        true => Some(self.token().await?),
                        false => None,
                    };
                    let response = self.execute(&request, token.as_deref()).await?;
                    op.handle_response(&mut self.core, response)?;
                }
            }
        }
    }

    /// Makes one request: the JSON answer, or the server's refusal; an
    /// error only when the server cannot be reached.
    async fn execute(
        &self,
        request: &HttpRequest,
        token: Option<&str>,
    ) -> Result<core::Response, MessengerError> {
        let server = self.core.server();
        let url = format!("{}{}", server.trim_end_matches('/'), request.path);
        let mut builder = match request.method {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
            Method::Delete => self.http.delete(url),
        };
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        let unreachable = |source| MessengerError::Unreachable {
            server: server.to_string(),
            source,
        };
        let response = builder.send().await.map_err(unreachable)?;
        match refused_unless_ok(response, request.what).await {
            Ok(response) => Ok(Ok(response.json().await.map_err(unreachable)?)),
            Err(MessengerError::Refused {
                what,
                status,
                code,
                message,
            }) => Ok(Err(Refusal {
                what,
                status,
                code,
                message,
            })),
            Err(e) => Err(e),
        }
    }

    /// A valid bearer token, signing in again when the old one is near its
    /// end.
    pub async fn token(&mut self) -> Result<String, MessengerError> {
        if let Some(token) = self.core.token(parley_wire::clock::now_ms()) {
            return Ok(token.to_string());
        }
        // Sign-in's requests are anonymous, so this loop cannot need a
        // token itself.
        let mut sign_in = SignIn::new();
        loop {
            match sign_in.poll(&mut self.core)? {
                Step::Done(token) => return Ok(token),
                Step::Persist => self.save()?,
                Step::Http(request) => {
                    let response = self.execute(&request, None).await?;
                    sign_in.handle_response(&mut self.core, response)?;
                }
                Step::Frame(_) => unreachable!("sign-in sends no frames"),
            }
        }
    }

    /// One request, its answer read as `T`.
    async fn fetch<T: serde::de::DeserializeOwned>(
        &mut self,
        request: HttpRequest,
    ) -> Result<T, MessengerError> {
        self.drive(Fetch::new(request), None).await
    }

    /// Publishes one-time keys up to the target, and the fallback key if
    /// it is new.
    pub async fn publish_keys(&mut self) -> Result<(), MessengerError> {
        self.drive(PublishKeys::new(), None).await
    }

    /// A code that lets a new device join this user (see [`link`](Self::link)).
    pub async fn create_link_code(&mut self) -> Result<LinkCode, MessengerError> {
        self.fetch(HttpRequest::post(
            "/v1/link-codes",
            &serde_json::json!({}),
            "link code",
        ))
        .await
    }

    /// The devices of a user, as the directory lists them.
    pub async fn devices_of(&mut self, handle: &str) -> Result<Vec<DeviceInfo>, MessengerError> {
        self.fetch(HttpRequest::get(
            format!("/v1/users/{handle}/devices"),
            "device list",
        ))
        .await
    }

    /// Sends a text to `to` (every device of that user, and this user's
    /// other devices). Returns the message id once every envelope is stored
    /// on the server.
    pub async fn send_text(&mut self, to: &str, text: &str) -> Result<String, MessengerError> {
        let (id, send) = Send::text(to, text, parley_wire::clock::now_ms());
        self.drive(send, None).await?;
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
        let (id, send) = Send::text(to, text, parley_wire::clock::now_ms());
        let envelopes = self.drive(send.prepare_only(), None).await?;
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
            .post(format!("{}/v1/attachments", self.core.server()))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(blob)
            .send()
            .await;
        let created: api::AttachmentCreated =
            read_response(self.core.server(), response, "attachment upload").await?;
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
        let send = Send::new(payload, Recipients::Users(vec![to.to_string()]));
        self.drive(send, None).await?;
        Ok(id)
    }

    /// Downloads an attachment, checks its hash and decrypts it.
    pub async fn fetch_attachment(
        &mut self,
        reference: &AttachmentRef,
    ) -> Result<Vec<u8>, MessengerError> {
        let token = self.token().await?;
        let server = self.core.server();
        let unreachable = |source| MessengerError::Unreachable {
            server: server.to_string(),
            source,
        };
        let response = self
            .http
            .get(format!("{server}{}", reference.url))
            .bearer_auth(token)
            .send()
            .await
            .map_err(unreachable)?;
        let response = refused_unless_ok(response, "attachment download").await?;
        let blob = response.bytes().await.map_err(unreachable)?;
        Ok(attachment::open(reference, &blob)?)
    }

    /// The devices a call to `handle` rings: all of them except this one
    /// (for this user's own handle: its other devices).
    pub async fn call_devices(&mut self, handle: &str) -> Result<Vec<String>, MessengerError> {
        let op = CallDevices::new(&self.core, handle);
        self.drive(op, None).await
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
        self.drive(Send::call_signal(handle, device_id, signal), None)
            .await?;
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
        let request = HttpRequest::post("/v1/calls/relay", &request, "relay ticket");
        match self.fetch(request).await {
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
        self.fetch(HttpRequest::post(
            path,
            &serde_json::json!({}),
            "group call token",
        ))
        .await
    }

    /// Sends an SDP offer to the SFU with a join token; returns its answer.
    pub async fn sfu_join(
        &mut self,
        room: &str,
        token: &str,
        offer: &str,
    ) -> Result<String, MessengerError> {
        sfu_join(&self.http, self.core.server(), room, token, offer).await
    }

    /// Creates a group with this user as owner and only member.
    pub async fn create_group(&mut self, name: &str) -> Result<GroupInfo, MessengerError> {
        let body = CreateGroup {
            name: name.to_string(),
        };
        self.fetch(HttpRequest::post("/v1/groups", &body, "group creation"))
            .await
    }

    /// Adds a user to a group (any member may).
    pub async fn add_member(
        &mut self,
        group_id: &str,
        handle: &str,
    ) -> Result<GroupInfo, MessengerError> {
        let body = AddMember {
            handle: handle.to_string(),
        };
        let path = format!("/v1/groups/{group_id}/members");
        self.fetch(HttpRequest::post(path, &body, "adding a member"))
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
        let path = format!("/v1/groups/{group_id}/members/{handle}");
        self.fetch(HttpRequest::delete(path, "removing a member"))
            .await
    }

    /// The groups this user is in.
    pub async fn groups(&mut self) -> Result<Vec<GroupInfo>, MessengerError> {
        self.fetch(HttpRequest::get("/v1/groups", "group list"))
            .await
    }

    /// One group (members only).
    pub async fn group(&mut self, group_id: &str) -> Result<GroupInfo, MessengerError> {
        self.fetch(HttpRequest::get(format!("/v1/groups/{group_id}"), "group"))
            .await
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
        let op = GroupSend::new(group_id, text, parley_wire::clock::now_ms());
        self.drive(op, None).await
    }

    /// Stores envelopes on the server. Safe to repeat with the same
    /// envelopes: the server keeps one copy per id.
    pub async fn submit(
        &mut self,
        envelopes: Vec<OutgoingEnvelope>,
    ) -> Result<SendResponse, MessengerError> {
        self.fetch(HttpRequest::post(
            "/v1/messages",
            &SendRequest { envelopes },
            "send",
        ))
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
        let url = ws_url(self.core.server());
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
        self.core.connected();
        Ok(Connection {
            socket,
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
        let op = Receive::new(&mut self.core, frame);
        let events = self.drive(op, Some(conn)).await?;
        conn.drained = self.core.drained();
        Ok(events)
    }

    /// Sends read receipts for messages from `from`.
    pub async fn mark_read(&mut self, from: &str, ids: Vec<String>) -> Result<(), MessengerError> {
        let read = ids.into_iter().map(|id| (from.to_string(), id)).collect();
        self.drive(Receipts::new(read, ReceiptStatus::Read), None)
            .await
    }

    /// Decrypts one envelope outside [`receive`](Self::receive) (for
    /// clients that poll, and for tests that show what a device can and
    /// cannot read). `None` for duplicates and non-message payloads.
    pub async fn decrypt_envelope(
        &mut self,
        envelope: &Envelope,
    ) -> Result<Option<Event>, MessengerError> {
        let opened = self.drive(Open::new(envelope.clone()), None).await;
        self.save()?;
        opened
    }

    /// Acks envelopes over HTTP (for clients that poll).
    pub async fn ack(&mut self, ids: Vec<String>) -> Result<(), MessengerError> {
        let request = core::ack_request(&self.core, ids);
        let _: serde_json::Value = self.fetch(request).await?;
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
