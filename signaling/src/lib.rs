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
//! | `GET /openapi.json` | - | this table as an OpenAPI 3.1 document |
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

pub mod attachments;
pub mod auth;
pub mod error;
pub mod group_calls;
pub mod group_commit;
pub mod hub;
pub mod metrics;
pub mod rate_limit;
pub mod relay;
pub mod routes;
pub mod server;
pub mod store;
pub mod tls;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

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
    /// Envelopes per second a device may submit, sustained, over HTTP and
    /// the websocket together (a message is one envelope per recipient
    /// device, so this is the fan-out budget).
    pub envelope_rate_per_second: f64,
    /// Envelopes a device may submit at once; at least one full send
    /// ([`routes::MAX_ENVELOPES_PER_SEND`]).
    pub envelope_burst: f64,
    /// Requests per second one source address may make to the routes that
    /// need no account (register, sign-in, link, demo and SFU joins).
    pub address_rate_per_second: f64,
    /// Such requests one address may make at once.
    pub address_burst: f64,
    /// How long the envelope writer holds a batch open for more requests
    /// after its first ([`group_commit`]): added latency at low load, fewer
    /// fsyncs at high load.
    pub commit_window: Duration,
    /// Rows (envelopes, acked ids) that close a batch early.
    pub commit_max_rows: usize,
    /// Bearer token for `/metrics`; without one the route is off.
    pub metrics_token: Option<String>,
    /// The UDP STUN responder and call relay, when the server runs one.
    pub relay: Option<relay::Relay>,
    /// The SFU for group calls, when the server embeds one.
    pub sfu: Option<group_calls::GroupCalls>,
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
            envelope_rate_per_second: 200.0,
            envelope_burst: 2_000.0,
            address_rate_per_second: 10.0,
            address_burst: 100.0,
            commit_window: Duration::from_millis(1),
            commit_max_rows: 2_000,
            metrics_token: None,
            relay: None,
            sfu: None,
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
    hub: Arc<Hub>,
    config: ServerConfig,
    metrics: metrics::Metrics,
    limiter: rate_limit::RateLimiter,
    envelope_limiter: rate_limit::RateLimiter,
    address_limiter: rate_limit::RateLimiter,
    writer: group_commit::GroupCommit,
}

impl AppState {
    /// State over a store. Starts the envelope writer, so it must run
    /// inside a tokio runtime.
    pub fn new(store: Store, config: ServerConfig) -> Self {
        let metrics = metrics::Metrics::new();
        let hub = Arc::new(Hub::default());
        let writer = group_commit::GroupCommit::start(
            store.clone(),
            hub.clone(),
            config.commit_window,
            config.commit_max_rows,
            metrics.commit_batches.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                writer,
                store,
                hub,
                limiter: rate_limit::RateLimiter::new(config.rate_per_second, config.rate_burst),
                address_limiter: rate_limit::RateLimiter::new(
                    config.address_rate_per_second,
                    config.address_burst,
                ),
                envelope_limiter: rate_limit::RateLimiter::new(
                    config.envelope_rate_per_second,
                    config.envelope_burst,
                ),
                metrics,
                config,
            }),
        }
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Committed envelopes for connected devices.
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

    /// The envelope writer (group commit).
    pub fn writer(&self) -> &group_commit::GroupCommit {
        &self.inner.writer
    }

    /// Per-address limits on the routes that need no account.
    pub fn address_limiter(&self) -> &rate_limit::RateLimiter {
        &self.inner.address_limiter
    }

    /// Per-device envelope budget, shared by every way envelopes arrive.
    pub fn envelope_limiter(&self) -> &rate_limit::RateLimiter {
        &self.inner.envelope_limiter
    }
}

/// The OpenAPI document's frame: title, security schemes; the paths come
/// from the handlers' `#[utoipa::path]` as they are routed in [`app`].
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Parley signaling API",
        description = "Devices, key directory and end-to-end encrypted envelope relay. \
            Errors are JSON {\"error\": code, \"message\": text}."
    ),
    modifiers(&SecuritySchemes)
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("bearer", bearer());
        components.add_security_scheme("metrics_token", bearer());
    }
}

/// The whole HTTP and websocket API, and its OpenAPI document at
/// `/openapi.json` (built from the same registrations, so the two cannot
/// drift apart).
pub fn app(state: AppState) -> Router {
    use utoipa::OpenApi;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;

    let max_body = state.config().max_body_bytes;
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::metrics))
        .routes(routes!(routes::register))
        .routes(routes!(routes::challenge))
        .routes(routes!(routes::token))
        .routes(routes!(routes::create_link_code))
        .routes(routes!(routes::link_device))
        .routes(routes!(routes::upload_keys))
        .routes(routes!(routes::key_count))
        .routes(routes!(routes::claim_keys))
        .routes(routes!(routes::user_devices))
        .routes(routes!(routes::send))
        .routes(routes!(routes::fetch_messages))
        .routes(routes!(routes::ack_messages))
        .routes(routes!(routes::create_group, routes::list_groups))
        .routes(routes!(routes::get_group))
        .routes(routes!(routes::add_member))
        .routes(routes!(routes::remove_member))
        .routes(routes!(attachments::upload))
        .routes(routes!(attachments::download))
        .routes(routes!(routes::call_relay))
        .routes(routes!(group_calls::group_call))
        .routes(routes!(group_calls::sfu_join))
        .routes(routes!(group_calls::demo_join))
        .routes(routes!(ws::upgrade))
        .split_for_parts();
    let doc = Arc::new(doc);
    router
        .route("/demo", get(group_calls::demo_page))
        .route("/demo/{file}", get(group_calls::demo_page))
        .route(
            "/openapi.json",
            get(move || async move { axum::Json(doc.as_ref().clone()) }),
        )
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}
