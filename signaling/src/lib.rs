//! Parley's signaling server: registers users and devices, keeps the key
//! directory, authenticates devices by a signed challenge, and relays
//! end-to-end encrypted envelopes that it stores durably until the
//! recipient device acknowledges them. It never holds a key that could
//! read them.
//!
//! The server is a router factory ([`app`]) over shared state, so tests run
//! it on a socket on port 0 (or with `tower::ServiceExt::oneshot`):
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use parley_signaling::{AppState, ServerConfig, store::Store};
//!
//! let store = Store::open("sqlite://parley.db").await?;
//! let state = AppState::new(store, ServerConfig::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, parley_signaling::app(state)).await?;
//! # Ok(()) }
//! ```
//!
//! # API
//!
//! | route | auth | what |
//! |---|---|---|
//! | `GET /healthz` | - | liveness |
//! | `GET /metrics` | metrics token | Prometheus text format (off unless a token is set) |
//! | `POST /v1/register` | - | new user + first device (keys signed by the device) |
//! | `POST /v1/auth/challenge`, `POST /v1/auth/token` | - | signed challenge -> bearer token |
//! | `POST /v1/link-codes` | yes | a one-time code for linking a new device |
//! | `POST /v1/devices` | code | a new device joins its user |
//! | `POST /v1/keys`, `GET /v1/keys/count` | yes | publish one-time and fallback keys |
//! | `GET /v1/users/{handle}/devices` | yes | a user's devices and identity keys |
//! | `POST /v1/keys/claim` | yes | one key per device to start Olm sessions |
//! | `POST /v1/messages` | yes | store and forward envelopes (idempotent by id) |
//! | `GET /v1/devices/{id}/messages`, `POST .../ack` | own device | poll and ack the queue |
//! | `POST /v1/groups`, `GET /v1/groups[/{id}]` | yes | create, list, show (members only) |
//! | `POST /v1/groups/{id}/members`, `DELETE .../{handle}` | member / owner | membership |
//! | `POST /v1/attachments`, `GET /v1/attachments/{id}` | yes | encrypted blobs, streamed to disk, size-capped |
//! | `GET /v1/ws` | yes | push delivery, acks and sends on one socket |
//!
//! Errors are JSON `{"error": code, "message": text}` with a matching
//! status ([`error::ApiError`]).
#![forbid(unsafe_code)]

pub mod api;
pub mod attachments;
pub mod auth;
pub mod error;
pub mod hub;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod store;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::error::ApiError;
use crate::hub::Hub;
use crate::store::Store;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long a bearer token lives.
    pub token_ttl: Duration,
    /// How long a sign-in challenge may be answered.
    pub challenge_ttl: Duration,
    /// How long a device link code is valid.
    pub link_code_ttl: Duration,
    /// Undelivered envelopes one device may have queued before senders
    /// get `queue_full`.
    pub max_queue: i64,
    /// Largest request body (JSON routes).
    pub max_body_bytes: usize,
    /// Largest attachment blob.
    pub max_attachment_bytes: u64,
    /// Where attachment blobs are stored.
    pub blob_dir: std::path::PathBuf,
    /// Requests per second a device may make, sustained.
    pub rate_per_second: f64,
    /// Requests a device may make at once.
    pub rate_burst: f64,
    /// Bearer token for `/metrics`; without one the route is off.
    pub metrics_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            token_ttl: Duration::from_secs(24 * 3600),
            challenge_ttl: Duration::from_secs(60),
            link_code_ttl: Duration::from_secs(600),
            max_queue: 10_000,
            max_body_bytes: 1024 * 1024,
            max_attachment_bytes: 25 * 1024 * 1024,
            blob_dir: std::path::PathBuf::from("parley-data/blobs"),
            rate_per_second: 50.0,
            rate_burst: 200.0,
            metrics_token: None,
        }
    }
}

/// Shared server state: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    hub: Hub,
    config: ServerConfig,
    metrics: metrics::Metrics,
    limiter: rate_limit::RateLimiter,
}

impl AppState {
    /// State over a store.
    pub fn new(store: Store, config: ServerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                hub: Hub::default(),
                limiter: rate_limit::RateLimiter::new(config.rate_per_second, config.rate_burst),
                metrics: metrics::Metrics::new(),
                config,
            }),
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Connected devices' wake-ups.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// Settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Counters.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    /// Per-device request limits.
    pub fn limiter(&self) -> &rate_limit::RateLimiter {
        &self.inner.limiter
    }
}

/// The whole HTTP and websocket API.
pub fn app(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .route("/v1/register", post(routes::register))
        .route("/v1/auth/challenge", post(routes::challenge))
        .route("/v1/auth/token", post(routes::token))
        .route("/v1/link-codes", post(routes::create_link_code))
        .route("/v1/devices", post(routes::link_device))
        .route("/v1/keys", post(routes::upload_keys))
        .route("/v1/keys/count", get(routes::key_count))
        .route("/v1/keys/claim", post(routes::claim_keys))
        .route("/v1/users/{handle}/devices", get(routes::user_devices))
        .route("/v1/messages", post(routes::send))
        .route(
            "/v1/devices/{device_id}/messages",
            get(routes::fetch_messages),
        )
        .route(
            "/v1/devices/{device_id}/messages/ack",
            post(routes::ack_messages),
        )
        .route(
            "/v1/groups",
            post(routes::create_group).get(routes::list_groups),
        )
        .route("/v1/groups/{group_id}", get(routes::get_group))
        .route("/v1/groups/{group_id}/members", post(routes::add_member))
        .route(
            "/v1/groups/{group_id}/members/{handle}",
            axum::routing::delete(routes::remove_member),
        )
        .route("/v1/attachments", post(attachments::upload))
        .route("/v1/attachments/{id}", get(attachments::download))
        .route("/v1/ws", get(ws::upgrade))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Unix time in milliseconds: the server's only clock read, passed down to
/// everything that checks expiry.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
