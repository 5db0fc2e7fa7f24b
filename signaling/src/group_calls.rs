//! Group calls: the server hands members of a group tokens for the
//! group's room on the embedded SFU, and passes SDP offers to it.
//!
//! The server decides who may join (group membership); the SFU only checks
//! the token's signature, room and expiry, so it could run in another
//! process sharing the token key (LiveKit's split). The join route needs no
//! bearer token: the join token is the credential, as a browser on the
//! demo page holds nothing else.

use axum::Json;
use axum::extract::{Path, State};
use parley_sfu::{JoinClaims, JoinError, SfuHandle, TokenKey};

use crate::AppState;
use crate::auth::AuthDevice;
use crate::error::{ApiError, ApiJson};
use crate::rate_limit::AddressLimit;
use crate::routes::member_view;
use parley_wire::api::{
    DemoJoinGrant, DemoJoinRequest, ErrorBody, GroupCallGrant, SfuJoinAnswer, SfuJoinRequest,
};

/// How long a join token is valid: long enough to set up a session, short
/// enough that a leaked one is soon useless (a re-join asks again).
pub const JOIN_TOKEN_TTL_SECS: u64 = 600;

/// The embedded SFU and the key its tokens are signed with.
#[derive(Debug, Clone)]
pub struct GroupCalls {
    /// The running SFU.
    pub sfu: SfuHandle,
    /// Shared with the SFU.
    pub key: TokenKey,
    /// Serve the browser demo (`/demo`) and hand anyone a token for a demo
    /// room (`POST /v1/demo/join`). Off unless asked for: it lets anyone
    /// who reaches the server use its SFU.
    pub demo_rooms: bool,
}

/// Prefix of demo rooms in the SFU; group rooms are group ids (UUIDs), so
/// the two never meet.
pub const DEMO_ROOM_PREFIX: &str = "demo-";

fn sfu(state: &AppState) -> Result<&GroupCalls, ApiError> {
    state
        .config()
        .sfu
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this server runs no SFU for group calls".into()))
}

/// `POST /v1/groups/{group_id}/call`: a join token for the group's call,
/// for members only.
#[utoipa::path(post, path = "/v1/groups/{group_id}/call", tag = "groups", security(("bearer" = [])), params(("group_id" = String, Path)), responses((status = 200, body = GroupCallGrant), (status = 401, body = ErrorBody), (status = 404, description = "No such group, not a member, or no SFU", body = ErrorBody)))]
pub async fn group_call(
    State(state): State<AppState>,
    auth: AuthDevice,
    Path(group_id): Path<String>,
) -> Result<Json<GroupCallGrant>, ApiError> {
    let calls = sfu(&state)?;
    let group = member_view(&state, &auth, &group_id).await?;
    let expires_at = parley_wire::clock::now_secs() + JOIN_TOKEN_TTL_SECS;
    let token = calls.key.sign(&JoinClaims {
        room: group.group_id.clone(),
        user: auth.handle,
        device: auth.device_id,
        expires_at,
    });
    Ok(Json(GroupCallGrant {
        room: group.group_id,
        token,
        expires_at,
        sfu_addr: calls.sfu.public_addr.to_string(),
    }))
}

fn demo(state: &AppState) -> Result<&GroupCalls, ApiError> {
    sfu(state)?
        .demo_rooms
        .then_some(())
        .and(state.config().sfu.as_ref())
        .ok_or_else(|| ApiError::NotFound("this server runs no demo rooms".into()))
}

/// `POST /v1/demo/join`: a token for a demo room, for anyone (servers run
/// with `--demo` only). 400 for a bad room or name.
#[utoipa::path(post, path = "/v1/demo/join", tag = "groups", request_body = DemoJoinRequest, responses((status = 200, body = DemoJoinGrant), (status = 400, body = ErrorBody), (status = 404, description = "Demo rooms are off", body = ErrorBody)))]
pub async fn demo_join(
    State(state): State<AppState>,
    _limit: AddressLimit,
    ApiJson(request): ApiJson<DemoJoinRequest>,
) -> Result<Json<DemoJoinGrant>, ApiError> {
    let calls = demo(&state)?;
    let room_ok = (1..=64).contains(&request.room.len())
        && request
            .room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !room_ok {
        return Err(ApiError::BadRequest(
            "room: 1-64 letters, digits, '-' or '_'".into(),
        ));
    }
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "name: 1-64 characters, no control characters".into(),
        ));
    }
    let room = format!("{DEMO_ROOM_PREFIX}{}", request.room);
    let device = uuid::Uuid::new_v4().to_string();
    let expires_at = parley_wire::clock::now_secs() + JOIN_TOKEN_TTL_SECS;
    let token = calls.key.sign(&JoinClaims {
        room: room.clone(),
        user: name.to_string(),
        device: device.clone(),
        expires_at,
    });
    Ok(Json(DemoJoinGrant {
        room,
        token,
        user: name.to_string(),
        device,
        expires_at,
    }))
}

/// The browser demo's files, embedded in the binary.
const DEMO_FILES: [(&str, &str, &str); 3] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../demo/index.html"),
    ),
    (
        "parley.js",
        "text/javascript; charset=utf-8",
        include_str!("../demo/parley.js"),
    ),
    (
        "sframe.js",
        "text/javascript; charset=utf-8",
        include_str!("../demo/sframe.js"),
    ),
];

/// `GET /demo` and `GET /demo/{file}`: the browser demo page.
pub async fn demo_page(
    State(state): State<AppState>,
    file: Option<Path<String>>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    demo(&state)?;
    let name = file.map_or_else(|| "index.html".to_string(), |Path(f)| f);
    let (_, content_type, body) = DEMO_FILES
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| ApiError::NotFound(format!("no demo file {name}")))?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, *content_type),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        *body,
    ))
}

/// `POST /v1/sfu/join`: hands a participant's offer to the SFU and returns
/// its answer. 403 for a token the SFU refuses, 400 for an offer it cannot
/// use.
#[utoipa::path(post, path = "/v1/sfu/join", tag = "groups", request_body = SfuJoinRequest, responses((status = 200, body = SfuJoinAnswer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn sfu_join(
    State(state): State<AppState>,
    _limit: AddressLimit,
    ApiJson(request): ApiJson<SfuJoinRequest>,
) -> Result<Json<SfuJoinAnswer>, ApiError> {
    let calls = sfu(&state)?;
    let answer = calls
        .sfu
        .join(&request.room, &request.token, &request.offer)
        .await
        .map_err(|stopped| {
            tracing::error!(error = %stopped, "SFU gone");
            ApiError::Internal
        })?;
    match answer {
        Ok(answer) => Ok(Json(SfuJoinAnswer { answer })),
        Err(e @ (JoinError::Token(_) | JoinError::WrongRoom)) => {
            Err(ApiError::Forbidden(e.client_message()))
        }
        Err(e @ JoinError::RoomFull(_)) => Err(ApiError::Conflict(e.client_message())),
        Err(e) => {
            tracing::debug!(error = %e, "SFU join refused");
            Err(ApiError::BadRequest(e.client_message()))
        }
    }
}
