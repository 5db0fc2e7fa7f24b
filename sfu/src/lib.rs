//! Parley's selective forwarding unit for group calls.
//!
//! Every participant sends its media once, SFrame-encrypted with its own
//! key; the SFU forwards it to everyone else in the room without being able
//! to read it. [`room`] is the sans-IO core (str0m sessions on one socket,
//! forwarding, renegotiation, timeouts), [`server`] the tokio shell and
//! [`token`] the join tokens the signaling server signs. The control
//! messages on each participant's data channel are wire types
//! (`parley_wire::sfu`); every str0m session comes from the session profile
//! (`parley_rtc`, [`parley_rtc::Role::Sfu`] here).

pub mod room;
pub mod server;
pub mod token;

pub use room::{JoinError, LeaveReason, Sfu, SfuConfig, SfuEvent, SfuStats, TappedFrame, Transmit};
pub use server::{SfuHandle, SfuStopped};
pub use token::{JoinClaims, TokenError, TokenKey};
