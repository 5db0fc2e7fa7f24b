//! Parley's str0m session profile: how every WebRTC session in Parley is
//! built, tuned and polled, whichever side of which conversation it is.
//!
//! - [`profile`]: [`build`] a session for a [`Role`] (1:1 call, group
//!   participant, SFU side, load generator); nothing else in Parley calls
//!   `Rtc::builder()`;
//! - [`dtls`]: the DTLS handshake's resend timing;
//! - [`rtx`]: the resend cache and cap on video streams;
//! - [`poll`]: polling without a timer round trip per paced packet.
//!
//! ```no_run
//! use std::time::Instant;
//! use parley_rtc::{Role, build, poll_output};
//!
//! let now = Instant::now();
//! let mut rtc = build(Role::GroupParticipant, now);
//! let next = poll_output(&mut rtc, now).unwrap();
//! # let _ = next;
//! ```
#![forbid(unsafe_code)]

pub mod dtls;
pub mod poll;
pub mod profile;
pub mod rtx;

pub use poll::poll_output;
pub use profile::{Role, build, config, on_video_send_stream};
