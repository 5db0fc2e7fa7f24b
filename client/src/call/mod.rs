//! 1:1 calls: media end-to-end encryption, call signaling carried as E2E
//! payloads, and the media session over str0m.

pub mod demo;
pub mod e2ee;
pub mod media_session;
pub mod runner;
pub mod signal;
pub mod stats;
