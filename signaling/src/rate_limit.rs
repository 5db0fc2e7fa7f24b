//! Per-device request rate limits: a token bucket per device, refilled at
//! a steady rate up to a burst. A device's token is the key, so one
//! misbehaving bot cannot starve the others; over the limit it gets
//! `429 rate_limited` with a `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Token buckets keyed by device.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets idle this long are full again and can be forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(300);

impl RateLimiter {
    /// `per_second` sustained, `burst` at once.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            per_second,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`, or says how long until one is
    /// free.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.take(key, 1.0, now)
    }

    /// Takes `n` tokens for `key` at `now` (all or none), or says how long
    /// until that many are free. More than the burst is never free.
    pub fn take(&self, key: &str, n: f64, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .expect("rate limiter lock is never poisoned");
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < FORGET_AFTER);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= n {
            bucket.tokens -= n;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (n.min(self.burst) - bucket.tokens).max(0.0) / self.per_second,
            ))
        }
    }
}

/// Limits requests per source address on the routes that need no account
/// (register, sign-in, link, demo and SFU joins), where no device is
/// known to key a bucket by. Behind a proxy the source is the proxy: the
/// cluster setup is where the client's own address will come from (PROXY
/// protocol). Servers built without connection info (a router driven
/// in-process) are not limited.
pub struct AddressLimit;

impl axum::extract::FromRequestParts<crate::AppState> for AddressLimit {
    type Rejection = crate::error::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::AppState,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::ConnectInfo;
        let Some(ConnectInfo(source)) = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>()
        else {
            return Ok(Self);
        };
        #[allow(clippy::disallowed_methods)] // The HTTP shell stamps the request for the limiter.
        let now = Instant::now();
        if let Err(wait) = state.address_limiter().check(&source.ip().to_string(), now) {
            state.metrics().rate_limited.inc();
            return Err(crate::error::ApiError::RateLimited(wait));
        }
        Ok(Self)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // Tests pick the origin of virtual time.
mod tests {
    use super::*;

    #[test]
    fn burst_then_steady_rate() {
        let limiter = RateLimiter::new(10.0, 5.0);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.check("a", t0).is_ok());
        }
        let wait = limiter.check("a", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(limiter.check("b", t0).is_ok(), "buckets are per key");
        assert!(limiter.check("a", t0 + Duration::from_millis(100)).is_ok());
        assert!(limiter.check("a", t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn taking_many_is_all_or_nothing() {
        let limiter = RateLimiter::new(10.0, 5.0);
        let t0 = Instant::now();
        assert!(limiter.take("a", 3.0, t0).is_ok());
        let wait = limiter.take("a", 3.0, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(limiter.take("a", 2.0, t0).is_ok(), "a refusal took nothing");
    }
}
