//! 1:1 calls: media end-to-end encryption, call signaling carried as E2E
//! payloads, and the media session over str0m.

pub mod e2ee;
pub mod signal;
