//! Unix time: the one wall-clock helper every Parley crate shares.
//!
//! Token and ticket expiry travel as Unix times, so something must read
//! the wall clock; it happens here and only in IO shells, which pass the
//! value down. Cores take it (or an `Instant`) as an argument, which
//! `clippy.toml`'s `disallowed-methods` enforces everywhere else.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch of `at` (0 before the epoch).
pub fn unix_ms(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Unix time now, in milliseconds.
pub fn now_ms() -> i64 {
    #[allow(clippy::disallowed_methods)] // The one wall-clock read (see the module doc).
    unix_ms(SystemTime::now())
}

/// Unix time now, in whole seconds (join tokens count in seconds).
pub fn now_secs() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or(0)
}
