//! The messaging core: every decision a device makes about messages, and
//! no IO.
//!
//! [`Core`] holds the device's state: who it is, its Olm account and
//! sessions, its Megolm group sessions, its token and the message ids it
//! has seen. Each thing the device does is an [`Operation`], a small state
//! machine that says what it needs next. The shell
//! ([`Messenger`](super::Messenger)) drives one by calling
//! [`Operation::poll`] and doing what it returns until it returns
//! [`Step::Done`]:
//!
//! - [`Step::Http`]: make the request and hand the server's answer to
//!   [`Operation::handle_response`] before polling again;
//! - [`Step::Frame`]: send the frame on the device's websocket;
//! - [`Step::Persist`]: write [`Core::snapshot`] to the vault. The core asks
//!   for it before anything leaves the device that depends on a state
//!   change (a ratchet step, new one-time keys, a dropped duplicate), so a
//!   crash can repeat a delivery but never lose one.
//!
//! The core never reads the clock (`now_ms` is an argument) and never
//! opens a socket or a file, so `client/tests/client/messaging_core.rs`
//! drives two devices from plain data, without a server.

mod account;
mod receive;
mod send;

use std::collections::VecDeque;

use parley_wire::api::{
    self, ClientFrame, DeviceCreated, DeviceInfo, Envelope, OutgoingEnvelope, Token,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{CallEvent, Event, Incoming, MessengerError, Receipt};
use crate::group_sessions::{GroupSessions, GroupSessionsPickle, KeyShare};
use crate::olm_machine::{OlmMachine, OlmPickle};
use crate::payload::Payload;

pub use account::{PublishKeys, SignIn};
pub use receive::{Open, Receipts, Receive, ack_request};
pub use send::{CallDevices, GroupSend, Recipients, Send};

/// One-time keys kept published: enough for a burst of new contacts.
pub const ONE_TIME_KEY_TARGET: i64 = 50;

/// Top up when the server holds fewer than this.
pub const ONE_TIME_KEY_LOW: i64 = 20;

/// Message ids remembered for duplicate detection.
const SEEN_MESSAGES: usize = 10_000;

/// Renew the token when it has less than this left, so a request never
/// goes out with a token that expires on the way.
pub const TOKEN_MARGIN_MS: i64 = 60_000;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST with a JSON body.
    Post,
    /// DELETE.
    Delete,
}

/// A request for the shell to make.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// The path on the server, from `/v1`.
    pub path: String,
    /// The JSON body, for POST.
    pub body: Option<serde_json::Value>,
    /// Whether it carries the device's bearer token.
    pub signed_in: bool,
    /// What it is, for error messages.
    pub what: &'static str,
}

impl HttpRequest {
    /// A signed-in GET.
    pub fn get(path: impl Into<String>, what: &'static str) -> Self {
        Self {
            method: Method::Get,
            path: path.into(),
            body: None,
            signed_in: true,
            what,
        }
    }

    /// A signed-in POST of `body` as JSON.
    pub fn post(path: impl Into<String>, body: &impl Serialize, what: &'static str) -> Self {
        Self {
            method: Method::Post,
            path: path.into(),
            body: Some(serde_json::to_value(body).expect("request bodies serialize")),
            signed_in: true,
            what,
        }
    }

    /// A signed-in DELETE.
    pub fn delete(path: impl Into<String>, what: &'static str) -> Self {
        Self {
            method: Method::Delete,
            path: path.into(),
            body: None,
            signed_in: true,
            what,
        }
    }

    /// The same request without the bearer token (registration, sign-in).
    pub fn anonymous(mut self) -> Self {
        self.signed_in = false;
        self
    }
}

/// A server's refusal of a request: its HTTP status and JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What was asked.
    pub what: &'static str,
    /// HTTP status.
    pub status: u16,
    /// The server's error code.
    pub code: String,
    /// The server's message.
    pub message: String,
}

impl From<Refusal> for MessengerError {
    fn from(r: Refusal) -> Self {
        MessengerError::Refused {
            what: r.what,
            status: r.status,
            code: r.code,
            message: r.message,
        }
    }
}

/// The answer to an [`HttpRequest`]: the JSON body of a success, or the
/// refusal. (A server that cannot be reached is the shell's error; the
/// operation never sees it.)
pub type Response = Result<serde_json::Value, Refusal>;

/// What an operation needs next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step<T> {
    /// Make this request; answer with [`Operation::handle_response`].
    Http(HttpRequest),
    /// Send this frame on the websocket, then poll again.
    Frame(ClientFrame),
    /// Save [`Core::snapshot`] to the vault, then poll again.
    Persist,
    /// Finished.
    Done(T),
}

impl<T> Step<T> {
    /// The same step for an operation with another output (for steps that
    /// are not `Done`, which the caller handles first).
    fn forward<U>(self) -> Step<U> {
        match self {
            Step::Http(r) => Step::Http(r),
            Step::Frame(f) => Step::Frame(f),
            Step::Persist => Step::Persist,
            Step::Done(_) => unreachable!("callers take Done before forwarding"),
        }
    }
}

/// Something a device does: a state machine over [`Core`] that returns
/// the requests it needs. Poll until `Done`; after a [`Step::Http`], hand
/// the answer to `handle_response` before polling again.
pub trait Operation {
    /// What it produces.
    type Output;

    /// The next step.
    fn poll(&mut self, core: &mut Core) -> Result<Step<Self::Output>, MessengerError>;

    /// The answer to the last [`Step::Http`].
    fn handle_response(
        &mut self,
        core: &mut Core,
        response: Response,
    ) -> Result<(), MessengerError>;
}

/// Everything but the Olm state, which is pickled beside it.
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

/// What the device remembers about its open websocket: whether the
/// backlog has been received, and the delivery receipts it owes.
#[derive(Default)]
struct Inbox {
    drained: bool,
    /// (sender handle, message id) of messages not yet receipted.
    owed_receipts: Vec<(String, String)>,
}

/// One device's messaging state. See the module docs for how it is
/// driven.
pub struct Core {
    state: State,
    olm: OlmMachine,
    groups: GroupSessions,
    inbox: Inbox,
}

impl Core {
    /// A device the server just created (registration or link) with the
    /// keys of `olm`.
    pub fn new(server: &str, handle: &str, created: DeviceCreated, olm: OlmMachine) -> Self {
        Self {
            state: State {
                server: server.to_string(),
                handle: handle.to_string(),
                user_id: created.user_id,
                device_id: created.device_id,
                token: None,
                seen: VecDeque::new(),
            },
            olm,
            groups: GroupSessions::default(),
            inbox: Inbox::default(),
        }
    }

    /// A device from its [`snapshot`](Self::snapshot).
    pub fn from_snapshot(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        let Saved { state, olm, groups } = serde_json::from_slice(bytes)?;
        Ok(Self {
            state,
            olm: OlmMachine::from_pickle(olm),
            groups: GroupSessions::from_pickle(groups),
            inbox: Inbox::default(),
        })
    }

    /// Everything that must survive a restart, serialized (the vault
    /// encrypts it).
    pub fn snapshot(&self) -> Vec<u8> {
        let saved = SavedRef {
            state: &self.state,
            olm: self.olm.pickle(),
            groups: self.groups.pickle(),
        };
        serde_json::to_vec(&saved).expect("state always serializes")
    }

    /// This device's id.
    pub fn device_id(&self) -> &str {
        &self.state.device_id
    }

    /// This device's user's handle.
    pub fn handle(&self) -> &str {
        &self.state.handle
    }

    /// The server this device belongs to.
    pub fn server(&self) -> &str {
        &self.state.server
    }

    /// Points the device at another address of its server.
    pub fn set_server(&mut self, server: &str) {
        self.state.server = server.to_string();
    }

    /// This device as the directory lists it.
    pub fn device_info(&self) -> DeviceInfo {
        let keys = self.olm.device_keys(&self.state.handle);
        DeviceInfo {
            device_id: self.state.device_id.clone(),
            handle: self.state.handle.clone(),
            identity_key: keys.identity_key,
            signing_key: keys.signing_key,
        }
    }

    /// The bearer token if it is still good at `now_ms`; `None` means
    /// [`SignIn`] first.
    pub fn token(&self, now_ms: i64) -> Option<&str> {
        self.state
            .token
            .as_ref()
            .filter(|t| t.expires_at - now_ms > TOKEN_MARGIN_MS)
            .map(|t| t.token.as_str())
    }

    /// A new websocket is open: its backlog comes first, and receipts owed
    /// on the old one were already sent or are repeated by the server's
    /// redelivery.
    pub fn connected(&mut self) {
        self.inbox = Inbox::default();
    }

    /// Whether the open websocket's backlog has been received.
    pub fn drained(&self) -> bool {
        self.inbox.drained
    }

    /// Drops a payload seen before; records it otherwise.
    fn first_sighting(&mut self, payload: &Payload) -> bool {
        self.first_sighting_of(payload.dedupe_id())
    }

    /// Whether `id` is new; records it.
    fn first_sighting_of(&mut self, id: String) -> bool {
        if self.state.seen.contains(&id) {
            return false;
        }
        self.state.seen.push_back(id);
        while self.state.seen.len() > SEEN_MESSAGES {
            self.state.seen.pop_front();
        }
        true
    }

    /// The duplicate-detection id of an envelope already decrypted. A
    /// redelivered envelope (its ack lost) cannot be decrypted twice (its
    /// message key is spent, its one-time key gone), so it is recognised
    /// by id before decrypting rather than reported as undecryptable.
    fn envelope_dedupe_id(envelope: &Envelope) -> String {
        format!("envelope:{}", envelope.id)
    }

    /// Olm-encrypts `payload` for each of `devices` that has a session
    /// (devices the directory lists without keys are skipped).
    fn encrypt_pairwise(
        &mut self,
        devices: &[String],
        payload: &Payload,
    ) -> Result<Vec<OutgoingEnvelope>, MessengerError> {
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
        Ok(envelopes)
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

    /// What a decrypted payload means to the user; key shares are taken
    /// in here and mean nothing to show.
    fn take_payload(
        &mut self,
        sender: DeviceInfo,
        payload: Payload,
    ) -> Result<Option<Event>, MessengerError> {
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
                .add_inbound(group_id, &sender.device_id, &share)?;
            return Ok(None);
        }
        if !self.first_sighting(&payload) {
            return Ok(None);
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
}

/// Reads a success body as `T`.
fn parse<T: DeserializeOwned>(response: Response, what: &str) -> Result<T, MessengerError> {
    serde_json::from_value(response?)
        .map_err(|e| MessengerError::Protocol(format!("unexpected {what} answer: {e}")))
}

/// Any one request whose answer is `T`: the operations that decide
/// nothing (group management, link codes, tickets).
pub struct Fetch<T> {
    request: Option<HttpRequest>,
    answer: Option<T>,
}

impl<T> Fetch<T> {
    /// Makes `request` and reads its answer as `T`.
    pub fn new(request: HttpRequest) -> Self {
        Self {
            request: Some(request),
            answer: None,
        }
    }
}

impl<T: DeserializeOwned> Operation for Fetch<T> {
    type Output = T;

    fn poll(&mut self, _: &mut Core) -> Result<Step<T>, MessengerError> {
        if let Some(answer) = self.answer.take() {
            return Ok(Step::Done(answer));
        }
        let request = self.request.take().expect("Fetch polled after it finished");
        Ok(Step::Http(request))
    }

    fn handle_response(&mut self, _: &mut Core, response: Response) -> Result<(), MessengerError> {
        self.answer = Some(parse(response, "server")?);
        Ok(())
    }
}
