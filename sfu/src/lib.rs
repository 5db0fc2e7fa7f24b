//! Parley's selective forwarding unit (not built yet).
//!
//! This crate will hold a sans-IO forwarding core over str0m that takes
//! `now` and returns what to send (rooms, publish and subscribe, per
//! subscriber SSRC / sequence / timestamp rewriting, simulcast layer choice,
//! NACK answered from a cache, throttled keyframe requests, active speaker),
//! plus a thin UDP shell. It forwards SFrame-encrypted media without ever
//! holding a key. See `../shared/DESIGN.md`, "Calls", and issue 5.
#![forbid(unsafe_code)]
