//! The HTTP API's handlers. Each validates, calls the store, and returns
//! JSON or an [`ApiError`].

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::AppState;
use crate::auth::{AuthDevice, hash, random_secret, verify};
use crate::error::{ApiError, ApiJson};
use crate::group_commit::Write;
use crate::rate_limit::AddressLimit;
use crate::store::{User, is_unique_violation};
use parley_wire::api::*;
use parley_wire::clock::now_ms;

/// Most one-time keys accepted in one upload.
const MAX_KEYS_PER_UPLOAD: usize = 200;

/// Most envelopes in one send (a fan-out to every device of a group).
pub const MAX_ENVELOPES_PER_SEND: usize = 1000;

/// Largest envelope ciphertext (decoded). Text and call signaling are far
/// smaller; attachments travel as blobs, not envelopes.
pub const MAX_CIPHERTEXT_BYTES: usize = 64 * 1024;

/// Longest client-generated envelope id.
const MAX_ID_LEN: usize = 64;

fn valid_handle(handle: &str) -> bool {
    (3..=32).contains(&handle.len())
        && handle
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

fn new_device(handle: &str, keys: &DeviceKeys) -> Result<DeviceInfo, ApiError> {
    if !valid_handle(handle) {
        return Err(ApiError::BadRequest(
            "handle must be 3 to 32 characters of a-z, 0-9, '_', '.', '-'".into(),
        ));
    }
    vodozemac::Curve25519PublicKey::from_base64(&keys.identity_key)
        .map_err(|e| ApiError::BadRequest(format!("invalid Curve25519 identity key: {e}")))?;
    let message = registration_message(handle, &keys.identity_key, &keys.signing_key);
    verify(&keys.signing_key, &message, &keys.signature)?;
    Ok(DeviceInfo {
        device_id: uuid::Uuid::new_v4().to_string(),
        handle: handle.to_string(),
        identity_key: keys.identity_key.clone(),
        signing_key: keys.signing_key.clone(),
    })
}

/// `GET /healthz`.
#[utoipa::path(get, path = "/healthz", tag = "server", responses((status = 200, description = "The server is up", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`: Prometheus text format, behind its own token (it is an
/// operator's endpoint, not a device's).
#[utoipa::path(get, path = "/metrics", tag = "server", security(("metrics_token" = [])), responses((status = 200, description = "Prometheus text format", body = String), (status = 401, body = ErrorBody), (status = 404, description = "Metrics are off", body = ErrorBody)))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<String, ApiError> {
    let Some(expected) = &state.config().metrics_token else {
        return Err(ApiError::NotFound(
            "metrics are off; start the server with --metrics-token".into(),
        ));
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compare hashes, so the comparison's time says nothing about the token.
    if given.map(hash) != Some(hash(expected)) {
        return Err(ApiError::Unauthorized);
    }
    state.metrics().sessions.set(state.hub().connected() as i64);
    Ok(state.metrics().render())
}

/// `POST /v1/register`.
#[utoipa::path(post, path = "/v1/register", tag = "devices", request_body = RegisterRequest, responses((status = 200, body = DeviceCreated), (status = 400, body = ErrorBody), (status = 401, description = "Bad signature", body = ErrorBody), (status = 409, description = "Handle taken", body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    _limit: AddressLimit,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<Json<DeviceCreated>, ApiError> {
    let device = new_device(&req.handle, &req.device)?;
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        handle: req.handle.clone(),
    };
    match state.store().create_user(&user, &device, now_ms()).await {
        Ok(()) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(format!(
                "handle {:?} or this device's key is already registered",
                req.handle
            )));
        }
        Err(e) => return Err(e.into()),
    }
    state.metrics().registrations.inc();
    tracing::info!(user = %user.id, device = %device.device_id, "registered");
    Ok(Json(DeviceCreated {
        user_id: user.id,
        device_id: device.device_id,
    }))
}

/// `POST /v1/auth/challenge`.
#[utoipa::path(post, path = "/v1/auth/challenge", tag = "auth", request_body = ChallengeRequest, responses((status = 200, body = Challenge), (status = 404, body = ErrorBody)))]
pub async fn challenge(
    State(state): State<AppState>,
    _limit: AddressLimit,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> Result<Json<Challenge>, ApiError> {
    let store = state.store();
    if store.device(&req.device_id).await?.is_none() {
        return Err(ApiError::NotFound("no such device".into()));
    }
    let challenge = random_secret();
    let expires = now_ms() + state.config().challenge_ttl.as_millis() as i64;
    store
        .create_challenge(&req.device_id, &challenge, expires)
        .await?;
    Ok(Json(Challenge { challenge }))
}

/// `POST /v1/auth/token`.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = TokenRequest, responses((status = 200, body = Token), (status = 401, body = ErrorBody)))]
pub async fn token(
    State(state): State<AppState>,
    _limit: AddressLimit,
    ApiJson(req): ApiJson<TokenRequest>,
) -> Result<Json<Token>, ApiError> {
    let store = state.store();
    let now = now_ms();
    let (_, device) = store
        .device(&req.device_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if !store
        .take_challenge(&req.device_id, &req.challenge, now)
        .await?
    {
        return Err(ApiError::Unauthorized);
    }
    let message = challenge_message(&req.device_id, &req.challenge);
    verify(&device.signing_key, &message, &req.signature)?;
    let token = random_secret();
    let expires_at = now + state.config().token_ttl.as_millis() as i64;
    store
        .create_token(&req.device_id, &hash(&token), expires_at)
        .await?;
    Ok(Json(Token { token, expires_at }))
}

/// `POST /v1/link-codes`: an existing device authorises a new one.
#[utoipa::path(post, path = "/v1/link-codes", tag = "devices", security(("bearer" = [])), responses((status = 200, body = LinkCode), (status = 401, body = ErrorBody)))]
pub async fn create_link_code(
    State(state): State<AppState>,
    auth: AuthDevice,
) -> Result<Json<LinkCode>, ApiError> {
    let code = random_secret();
    let expires_at = now_ms() + state.config().link_code_ttl.as_millis() as i64;
    state
        .store()
        .create_link_code(&auth.user_id, &hash(&code), expires_at)
        .await?;
    Ok(Json(LinkCode { code, expires_at }))
}

/// `POST /v1/calls/relay`: a ticket for this device to use the UDP relay
/// (and where it is). 404 when the server runs no relay.
#[utoipa::path(post, path = "/v1/calls/relay", tag = "calls", security(("bearer" = [])), request_body = RelayRequest, responses((status = 200, body = RelayGrant), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "No relay on this server", body = ErrorBody)))]
pub async fn call_relay(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiJson(request): ApiJson<RelayRequest>,
) -> Result<Json<RelayGrant>, ApiError> {
    let relay = state
        .config()
        .relay
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this server runs no call relay".into()))?;
    let call_key: [u8; parley_wire::relay::CALL_KEY_LEN] = hex::decode(&request.call_key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| ApiError::BadRequest("call_key must be 16 bytes of hex".into()))?;
    let expires_at = now_ms() + crate::relay::TICKET_TTL.as_millis() as i64;
    let ticket = relay.ticket(&call_key, &auth.device_id, expires_at);
    Ok(Json(RelayGrant {
        udp_port: relay.local_addr.port(),
        public_addr: relay.public_addr.map(|a| a.to_string()),
        ticket: hex::encode(ticket),
        expires_at,
    }))
}

/// `POST /v1/devices`: a new device joins with a link code.
#[utoipa::path(post, path = "/v1/devices", tag = "devices", request_body = LinkRequest, responses((status = 200, body = DeviceCreated), (status = 403, description = "Invalid or expired code", body = ErrorBody)))]
pub async fn link_device(
    State(state): State<AppState>,
    _limit: AddressLimit,
    ApiJson(req): ApiJson<LinkRequest>,
) -> Result<Json<DeviceCreated>, ApiError> {
    let device = new_device(&req.handle, &req.device)?;
    let store = state.store();
    let user = store
        .user_by_handle(&req.handle)
        .await?
        .ok_or_else(|| ApiError::Forbidden("invalid or expired link code".into()))?;
    let linked = match store
        .link_device(&user.id, &hash(&req.code), &device, now_ms())
        .await
    {
        Ok(linked) => linked,
        Err(e) if is_unique_violation(&e) => {
            return Err(ApiError::Conflict(
                "this device's key is already registered".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !linked {
        return Err(ApiError::Forbidden("invalid or expired link code".into()));
    }
    tracing::info!(user = %user.id, device = %device.device_id, "device linked");
    Ok(Json(DeviceCreated {
        user_id: user.id,
        device_id: device.device_id,
    }))
}

/// `POST /v1/keys`.
#[utoipa::path(post, path = "/v1/keys", tag = "keys", security(("bearer" = [])), request_body = UploadKeys, responses((status = 200, body = KeyCount), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn upload_keys(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiJson(req): ApiJson<UploadKeys>,
) -> Result<Json<KeyCount>, ApiError> {
    if req.one_time_keys.len() > MAX_KEYS_PER_UPLOAD {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_KEYS_PER_UPLOAD} one-time keys per upload"
        )));
    }
    for (_, key) in &req.one_time_keys {
        vodozemac::Curve25519PublicKey::from_base64(key)
            .map_err(|e| ApiError::BadRequest(format!("invalid one-time key: {e}")))?;
    }
    let store = state.store();
    if let Some(f) = &req.fallback_key {
        let (_, device) = store
            .device(&auth.device_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        let message = fallback_key_message(&auth.device_id, &f.key_id, &f.key);
        verify(&device.signing_key, &message, &f.signature)?;
    }
    store
        .upload_keys(
            &auth.device_id,
            &req.one_time_keys,
            req.fallback_key.as_ref(),
        )
        .await?;
    Ok(Json(KeyCount {
        one_time_keys: store.one_time_key_count(&auth.device_id).await?,
    }))
}

/// `GET /v1/keys/count`.
#[utoipa::path(get, path = "/v1/keys/count", tag = "keys", security(("bearer" = [])), responses((status = 200, body = KeyCount), (status = 401, body = ErrorBody)))]
pub async fn key_count(
    State(state): State<AppState>,
    auth: AuthDevice,
) -> Result<Json<KeyCount>, ApiError> {
    Ok(Json(KeyCount {
        one_time_keys: state.store().one_time_key_count(&auth.device_id).await?,
    }))
}

/// `GET /v1/users/{handle}/devices`.
#[utoipa::path(get, path = "/v1/users/{handle}/devices", tag = "keys", security(("bearer" = [])), params(("handle" = String, Path, description = "User handle")), responses((status = 200, body = Vec<DeviceInfo>), (status = 404, body = ErrorBody)))]
pub async fn user_devices(
    State(state): State<AppState>,
    _auth: AuthDevice,
    Path(handle): Path<String>,
) -> Result<Json<Vec<DeviceInfo>>, ApiError> {
    let devices = state.store().devices_of(&handle).await?;
    if devices.is_empty() {
        return Err(ApiError::NotFound(format!("no user {handle:?}")));
    }
    Ok(Json(devices))
}

/// `POST /v1/keys/claim`.
#[utoipa::path(post, path = "/v1/keys/claim", tag = "keys", security(("bearer" = [])), request_body = ClaimRequest, responses((status = 200, body = Vec<ClaimedKey>), (status = 404, body = ErrorBody)))]
pub async fn claim_keys(
    State(state): State<AppState>,
    _auth: AuthDevice,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Json<Vec<ClaimedKey>>, ApiError> {
    if req.device_ids.len() > MAX_ENVELOPES_PER_SEND {
        return Err(ApiError::BadRequest("too many devices in one claim".into()));
    }
    let store = state.store();
    let mut claimed = Vec::new();
    for id in &req.device_ids {
        let (_, device) = store
            .device(id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no device {id:?}")))?;
        if let Some(key) = store.claim_key(&device).await? {
            claimed.push(key);
        }
    }
    Ok(Json(claimed))
}

/// Validates and stores envelopes from `from_device`; shared by HTTP and
/// the websocket. Returns the ids stored. Each envelope is durable before
/// this returns, which is what the sender's acknowledgement promises.
pub async fn accept_envelopes(
    state: &AppState,
    from_device: &str,
    from_handle: &str,
    envelopes: &[OutgoingEnvelope],
) -> Result<Vec<String>, ApiError> {
    if envelopes.len() > MAX_ENVELOPES_PER_SEND {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_ENVELOPES_PER_SEND} envelopes per send"
        )));
    }
    // Every envelope counts against the sender's budget, whichever way it
    // came (a websocket, once open, skips the per-request limit).
    #[allow(clippy::disallowed_methods)] // The HTTP shell stamps the request for the limiter.
    let now = std::time::Instant::now();
    if let Err(wait) = state
        .envelope_limiter()
        .take(from_device, envelopes.len() as f64, now)
    {
        state.metrics().rate_limited.inc();
        return Err(ApiError::RateLimited(wait));
    }
    let store = state.store();
    let mut decoded = Vec::with_capacity(envelopes.len());
    // Per recipient: its user, and its queue length counting this send's
    // envelopes (the cap covers the whole send, not only what was stored
    // before it). One lookup per recipient, not per envelope.
    let mut recipients: HashMap<&str, (String, i64)> = HashMap::new();
    let mut sender_user: Option<String> = None;
    let mut memberships: HashMap<(String, String), bool> = HashMap::new();
    for e in envelopes {
        if e.id.is_empty() || e.id.len() > MAX_ID_LEN {
            return Err(ApiError::BadRequest(format!(
                "envelope id must be 1 to {MAX_ID_LEN} bytes"
            )));
        }
        match (e.kind, &e.group_id) {
            (kind::OLM_PRE_KEY | kind::OLM_MESSAGE, None) | (kind::MEGOLM, Some(_)) => {}
            (kind::MEGOLM, None) => {
                return Err(ApiError::BadRequest(format!(
                    "envelope {}: group messages need a group_id",
                    e.id
                )));
            }
            (kind::OLM_PRE_KEY | kind::OLM_MESSAGE, Some(_)) => {
                return Err(ApiError::BadRequest(format!(
                    "envelope {}: only group messages carry a group_id",
                    e.id
                )));
            }
            (other, _) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown envelope kind {other}"
                )));
            }
        }
        let bytes = STANDARD.decode(&e.ciphertext).map_err(|_| {
            ApiError::BadRequest(format!("envelope {}: ciphertext is not base64", e.id))
        })?;
        if bytes.is_empty() || bytes.len() > MAX_CIPHERTEXT_BYTES {
            return Err(ApiError::BadRequest(format!(
                "envelope {}: ciphertext must be 1 to {MAX_CIPHERTEXT_BYTES} bytes",
                e.id
            )));
        }
        let recipient = match recipients.entry(e.to_device.as_str()) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(new) => {
                let Some((user, _)) = store.device(&e.to_device).await? else {
                    return Err(ApiError::NotFound(format!("no device {:?}", e.to_device)));
                };
                let queued = store.queue_len(&e.to_device).await?;
                new.insert((user, queued))
            }
        };
        let recipient_user = recipient.0.clone();
        if recipient.1 >= state.config().max_queue {
            return Err(ApiError::QueueFull(e.to_device.clone()));
        }
        recipient.1 += 1;
        if let Some(group) = &e.group_id {
            // Relay group messages between members only: a removed member
            // gets nothing more, even from a stale client.
            let sender = match &sender_user {
                Some(user) => user.clone(),
                None => {
                    let (user, _) = store
                        .device(from_device)
                        .await?
                        .ok_or(ApiError::Unauthorized)?;
                    sender_user.insert(user).clone()
                }
            };
            if !member_once(store, &mut memberships, group, &sender).await? {
                return Err(ApiError::Forbidden(format!(
                    "not a member of group {group}"
                )));
            }
            if !member_once(store, &mut memberships, group, &recipient_user).await? {
                return Err(ApiError::Forbidden(format!(
                    "device {} is not in group {group}",
                    e.to_device
                )));
            }
        }
        decoded.push(bytes);
    }
    // One transaction with whatever else is being sent right now; the
    // answer waits for its commit.
    let write = Write::Store {
        from_device: from_device.to_string(),
        from_handle: from_handle.to_string(),
        envelopes: envelopes.iter().cloned().zip(decoded).collect(),
        now_ms: now_ms(),
    };
    let stored = state.writer().write(write).await?;
    state.metrics().envelopes_stored.inc_by(stored);
    Ok(envelopes.iter().map(|e| e.id.clone()).collect())
}

/// Whether `user` is in `group`, asked of the store once per pair per send.
async fn member_once(
    store: &crate::store::Store,
    asked: &mut HashMap<(String, String), bool>,
    group: &str,
    user: &str,
) -> Result<bool, sqlx::Error> {
    let key = (group.to_string(), user.to_string());
    if let Some(&member) = asked.get(&key) {
        return Ok(member);
    }
    let member = store.is_member(group, user).await?;
    asked.insert(key, member);
    Ok(member)
}

/// `POST /v1/messages`.
#[utoipa::path(post, path = "/v1/messages", tag = "messages", security(("bearer" = [])), request_body = SendRequest, responses((status = 200, description = "Every envelope is stored", body = SendResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, description = "Queue full or rate limited", body = ErrorBody)))]
pub async fn send(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiJson(req): ApiJson<SendRequest>,
) -> Result<Json<SendResponse>, ApiError> {
    let stored = accept_envelopes(&state, &auth.device_id, &auth.handle, &req.envelopes).await?;
    Ok(Json(SendResponse { stored }))
}

fn own_queue(auth: &AuthDevice, device_id: &str) -> Result<(), ApiError> {
    if auth.device_id != device_id {
        return Err(ApiError::Forbidden(
            "a device may read and ack only its own queue".into(),
        ));
    }
    Ok(())
}

/// `GET /v1/devices/{device_id}/messages`: the queue, for clients that
/// poll instead of holding a websocket (bots).
#[utoipa::path(get, path = "/v1/devices/{device_id}/messages", tag = "messages", security(("bearer" = [])), params(("device_id" = String, Path, description = "Must be the caller's device")), responses((status = 200, body = Vec<Envelope>), (status = 403, body = ErrorBody)))]
pub async fn fetch_messages(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(device_id): Path<String>,
) -> Result<Json<Vec<Envelope>>, ApiError> {
    own_queue(&auth, &device_id)?;
    let rows = state.store().envelopes_after(&device_id, 0, 500).await?;
    Ok(Json(rows.into_iter().map(|(_, e)| e).collect()))
}

/// `POST /v1/devices/{device_id}/messages/ack`.
#[utoipa::path(post, path = "/v1/devices/{device_id}/messages/ack", tag = "messages", security(("bearer" = [])), params(("device_id" = String, Path, description = "Must be the caller's device")), request_body = AckRequest, responses((status = 200, description = "How many were deleted"), (status = 403, body = ErrorBody)))]
pub async fn ack_messages(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(device_id): Path<String>,
    ApiJson(req): ApiJson<AckRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    own_queue(&auth, &device_id)?;
    let write = Write::Ack {
        device_id,
        ids: req.ids,
    };
    let deleted = state.writer().write(write).await?;
    state.metrics().envelopes_acked.inc_by(deleted);
    Ok(Json(serde_json::json!({ "deleted": deleted })))
}

/// `POST /v1/groups`.
#[utoipa::path(post, path = "/v1/groups", tag = "groups", security(("bearer" = [])), request_body = CreateGroup, responses((status = 200, body = GroupInfo), (status = 400, body = ErrorBody)))]
pub async fn create_group(
    State(state): State<AppState>,
    auth: AuthDevice,
    ApiJson(req): ApiJson<CreateGroup>,
) -> Result<Json<GroupInfo>, ApiError> {
    if req.name.trim().is_empty() || req.name.len() > 100 {
        return Err(ApiError::BadRequest(
            "group name must be 1 to 100 bytes".into(),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let store = state.store();
    store
        .create_group(&id, &req.name, &auth.user_id, now_ms())
        .await?;
    Ok(Json(store.group(&id).await?.expect("just created")))
}

/// The group, if `auth` is a member (others learn nothing, not even that
/// it exists).
pub(crate) async fn member_view(
    state: &AppState,
    auth: &AuthDevice,
    group_id: &str,
) -> Result<GroupInfo, ApiError> {
    let store = state.store();
    let not_found = || ApiError::NotFound(format!("no group {group_id:?}"));
    let group = store.group(group_id).await?.ok_or_else(not_found)?;
    if !store.is_member(group_id, &auth.user_id).await? {
        return Err(not_found());
    }
    Ok(group)
}

/// `GET /v1/groups/{id}`.
#[utoipa::path(get, path = "/v1/groups/{group_id}", tag = "groups", security(("bearer" = [])), params(("group_id" = String, Path)), responses((status = 200, body = GroupInfo), (status = 404, description = "No such group, or not a member", body = ErrorBody)))]
pub async fn get_group(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(group_id): Path<String>,
) -> Result<Json<GroupInfo>, ApiError> {
    Ok(Json(member_view(&state, &auth, &group_id).await?))
}

/// `GET /v1/groups`: the caller's groups.
#[utoipa::path(get, path = "/v1/groups", tag = "groups", security(("bearer" = [])), responses((status = 200, body = Vec<GroupInfo>)))]
pub async fn list_groups(
    State(state): State<AppState>,
    auth: AuthDevice,
) -> Result<Json<Vec<GroupInfo>>, ApiError> {
    let store = state.store();
    let mut groups = Vec::new();
    for id in store.groups_of(&auth.user_id).await? {
        if let Some(g) = store.group(&id).await? {
            groups.push(g);
        }
    }
    Ok(Json(groups))
}

/// `POST /v1/groups/{id}/members`: any member may add.
#[utoipa::path(post, path = "/v1/groups/{group_id}/members", tag = "groups", security(("bearer" = [])), params(("group_id" = String, Path)), request_body = AddMember, responses((status = 200, body = GroupInfo), (status = 404, body = ErrorBody)))]
pub async fn add_member(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(group_id): Path<String>,
    ApiJson(req): ApiJson<AddMember>,
) -> Result<Json<GroupInfo>, ApiError> {
    member_view(&state, &auth, &group_id).await?;
    let store = state.store();
    let user = store
        .user_by_handle(&req.handle)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {:?}", req.handle)))?;
    store.add_member(&group_id, &user.id, now_ms()).await?;
    Ok(Json(store.group(&group_id).await?.expect("exists")))
}

/// `DELETE /v1/groups/{id}/members/{handle}`: the owner removes anyone;
/// a member removes only themself (leaves).
#[utoipa::path(delete, path = "/v1/groups/{group_id}/members/{handle}", tag = "groups", security(("bearer" = [])), params(("group_id" = String, Path), ("handle" = String, Path)), responses((status = 200, body = GroupInfo), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove_member(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path((group_id, handle)): Path<(String, String)>,
) -> Result<Json<GroupInfo>, ApiError> {
    let group = member_view(&state, &auth, &group_id).await?;
    if handle != auth.handle && group.owner != auth.handle {
        return Err(ApiError::Forbidden(
            "only the group's owner removes other members".into(),
        ));
    }
    let store = state.store();
    let user = store
        .user_by_handle(&handle)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {handle:?}")))?;
    if !store.remove_member(&group_id, &user.id).await? {
        return Err(ApiError::NotFound(format!("{handle} is not in the group")));
    }
    Ok(Json(store.group(&group_id).await?.expect("exists")))
}
