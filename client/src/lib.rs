//! Parley's client SDK (not built yet).
//!
//! This crate will hold the device side of Parley: the Olm account and
//! sessions (vodozemac), messaging over the signaling server's websocket,
//! call state machines, and the media pipeline that joins capture devices,
//! `parley-media`'s codecs and jitter buffer, SFrame and str0m. The `parley`
//! command-line client will live here too. See `../shared/DESIGN.md`,
//! "Media pipeline (client)", and issues 3 and 4.
#![forbid(unsafe_code)]
