//! Prometheus metrics, one registry per server (so tests can run several
//! servers in one process), rendered in the text format at `/metrics`.

use prometheus::{Encoder, IntCounter, IntGauge, Registry, TextEncoder};

/// The server's counters and gauges.
pub struct Metrics {
    registry: Registry,
    /// Envelopes stored for delivery.
    pub envelopes_stored: IntCounter,
    /// Envelopes pushed over websockets.
    pub envelopes_pushed: IntCounter,
    /// Envelopes acknowledged (and deleted).
    pub envelopes_acked: IntCounter,
    /// Open websocket sessions.
    pub sessions: IntGauge,
    /// Users registered.
    pub registrations: IntCounter,
    /// Requests refused by the rate limiter.
    pub rate_limited: IntCounter,
    /// Attachment bytes stored.
    pub attachment_bytes: IntCounter,
    /// Transactions the envelope writer committed: against
    /// `envelopes_stored_total`, how much group commit shares each fsync.
    pub commit_batches: IntCounter,
}

impl Metrics {
    /// A fresh registry.
    pub fn new() -> Self {
        let registry =
            Registry::new_custom(Some("parley".into()), None).expect("a fixed, valid prefix");
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric name");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let envelopes_stored = counter("envelopes_stored_total", "Envelopes stored for delivery");
        let envelopes_pushed =
            counter("envelopes_pushed_total", "Envelopes pushed over websockets");
        let envelopes_acked = counter(
            "envelopes_acked_total",
            "Envelopes acknowledged and deleted",
        );
        let registrations = counter("registrations_total", "Users registered");
        let rate_limited = counter("rate_limited_total", "Requests refused by the rate limiter");
        let attachment_bytes = counter("attachment_bytes_total", "Attachment bytes stored");
        let commit_batches = counter(
            "commit_batches_total",
            "Transactions committed by the envelope writer (sends and acks batched)",
        );
        let sessions = IntGauge::new("websocket_sessions", "Open websocket sessions")
            .expect("valid metric name");
        registry
            .register(Box::new(sessions.clone()))
            .expect("registered once");
        Self {
            registry,
            envelopes_stored,
            envelopes_pushed,
            envelopes_acked,
            sessions,
            registrations,
            rate_limited,
            attachment_bytes,
            commit_batches,
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("encoding to memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
