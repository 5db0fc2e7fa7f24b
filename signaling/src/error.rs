//! The server's one error type and its mapping to HTTP responses, in one
//! place (axum's `error-handling` example): handlers return
//! `Result<_, ApiError>`, and internals (SQL errors, say) are logged, never
//! sent.

use axum::Json;
use axum::extract::FromRequest;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use parley_wire::api::ErrorBody;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or a wrong or expired one.
    #[error("missing, invalid or expired token; get a new one from /v1/auth/token")]
    Unauthorized,
    /// A valid token used for something its device may not do.
    #[error("{0}")]
    Forbidden(String),
    /// The request is malformed or a value is out of range.
    #[error("{0}")]
    BadRequest(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the server accepts.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The device is over its request rate.
    #[error("too many requests; retry after {0:?}")]
    RateLimited(std::time::Duration),
    /// The recipient's queue is full.
    #[error("device {0} has too many undelivered messages; try again later")]
    QueueFull(String),
    /// A signature did not verify.
    #[error("signature does not verify: {0}")]
    BadSignature(String),
    /// The database failed.
    #[error("storage error")]
    Storage(#[from] sqlx::Error),
    /// Something else inside the server failed (logged where it happened).
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::QueueFull(_) => (StatusCode::TOO_MANY_REQUESTS, "queue_full"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::BadSignature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            Self::Storage(_) | Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        if let Self::Storage(e) = self {
            tracing::error!(error = %e, "storage error");
        }
        ErrorBody {
            error: self.status_and_code().1.to_string(),
            message: self.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status_and_code().0, Json(self.body())).into_response();
        if let Self::RateLimited(wait) = self {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// `axum::Json`, but a malformed or oversized body is an [`ApiError`] (a
/// JSON error body) instead of axum's plain-text rejection.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<crate::group_commit::CommitError> for ApiError {
    fn from(e: crate::group_commit::CommitError) -> Self {
        tracing::error!(error = %e, "write failed");
        Self::Internal
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::BadRequest(rejection.body_text())
        }
    }
}
