//! Parley's signaling server (not built yet).
//!
//! This crate will hold the axum server that registers users and devices,
//! keeps the key directory (identity keys, signed fallback keys, one-time
//! keys), authenticates devices by a signed challenge, and relays end-to-end
//! encrypted envelopes it cannot read, storing each durably until the
//! recipient device acknowledges it. See `../shared/DESIGN.md`, "Identity,
//! keys and envelopes", and issue 3.
//!
//! It never links codecs: media stays in `parley-media` and the client.
#![forbid(unsafe_code)]
