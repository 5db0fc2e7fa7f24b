//! Device authentication: a challenge signed with the device's Ed25519 key
//! buys a bearer token; tokens are random, stored only as SHA-256 hashes,
//! and expire. [`AuthDevice`] is the extractor every protected route takes.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use vodozemac::{Ed25519PublicKey, Ed25519Signature};

use crate::AppState;
use crate::error::ApiError;

/// The device a request's token belongs to.
#[derive(Debug, Clone)]
pub struct AuthDevice {
    /// Its id.
    pub device_id: String,
    /// Its user's id.
    pub user_id: String,
    /// Its user's handle.
    pub handle: String,
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

impl FromRequestParts<AppState> for AuthDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A header for HTTP clients; a query parameter for browsers'
        // websockets, which cannot set headers.
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let token = match header {
            Some(t) => t,
            None => Query::<TokenQuery>::try_from_uri(&parts.uri)
                .ok()
                .and_then(|q| q.0.access_token)
                .ok_or(ApiError::Unauthorized)?,
        };
        let store = state.store();
        let device_id = store
            .token_device(&hash(&token), parley_wire::clock::now_ms())
            .await?
            .ok_or(ApiError::Unauthorized)?;
        #[allow(clippy::disallowed_methods)] // The HTTP shell stamps the request for the limiter.
        let now = std::time::Instant::now();
        if let Err(wait) = state.limiter().check(&device_id, now) {
            state.metrics().rate_limited.inc();
            return Err(ApiError::RateLimited(wait));
        }
        let (user_id, info) = store
            .device(&device_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Self {
            device_id,
            user_id,
            handle: info.handle,
        })
    }
}

/// A fresh random secret (tokens, challenges, link codes): 32 bytes,
/// URL-safe base64.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How secrets are stored: SHA-256, hex. A database leak then yields no
/// usable token.
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks an Ed25519 signature by a base64 public key.
pub fn verify(public_key: &str, message: &str, signature: &str) -> Result<(), ApiError> {
    let key = Ed25519PublicKey::from_base64(public_key)
        .map_err(|e| ApiError::BadRequest(format!("invalid Ed25519 key: {e}")))?;
    let signature = Ed25519Signature::from_base64(signature)
        .map_err(|e| ApiError::BadSignature(format!("malformed signature: {e}")))?;
    key.verify(message.as_bytes(), &signature)
        .map_err(|e| ApiError::BadSignature(e.to_string()))
}
