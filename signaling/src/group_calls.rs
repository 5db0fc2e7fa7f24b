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
use crate::api::{ErrorBody, GroupCallGrant, SfuJoinAnswer, SfuJoinRequest};
use crate::auth::AuthDevice;
use crate::error::{ApiError, ApiJson};
use crate::routes::member_view;

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
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

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
    let expires_at = unix_now() + JOIN_TOKEN_TTL_SECS;
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

/// `POST /v1/sfu/join`: hands a participant's offer to the SFU and returns
/// its answer. 403 for a token the SFU refuses, 400 for an offer it cannot
/// use.
#[utoipa::path(post, path = "/v1/sfu/join", tag = "groups", request_body = SfuJoinRequest, responses((status = 200, body = SfuJoinAnswer), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn sfu_join(
    State(state): State<AppState>,
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
            Err(ApiError::Forbidden(e.to_string()))
        }
        Err(e) => Err(ApiError::BadRequest(e.to_string())),
    }
}
