//! 1:1 calls: media end-to-end encryption, call signaling carried as E2E
//! payloads, and the media session over str0m.

#[cfg(feature = "devices")]
pub mod camera;
pub mod devices;
pub mod e2ee;
pub mod flow;
pub mod group_call;
pub mod group_e2ee;
pub mod group_session;
pub mod media_session;
pub mod phone;
pub mod runner;
pub mod signal;
#[cfg(feature = "devices")]
pub mod sound;
pub mod stats;
pub mod video_playout;
