//! Parley's selective forwarding unit for group calls.
//!
//! Every participant sends its media once, SFrame-encrypted with its own
//! key; the SFU forwards it to everyone else in the room without being able
//! to read it. [`room`] is the sans-IO core (str0m sessions on one socket,
//! forwarding, renegotiation, timeouts), [`server`] the tokio shell,
//! [`token`] the join tokens the signaling server signs, [`control`] the
//! messages on each participant's data channel, [`dtls`] the handshake
//! timing, [`rtx`] the retransmission limit and [`poll`] the polling
//! every Parley str0m session uses.

pub mod control;
pub mod dtls;
pub mod poll;
pub mod room;
pub mod rtx;
pub mod server;
pub mod token;

pub use control::{CHANNEL_LABEL, ControlMessage, Participant, TrackKind};
pub use room::{JoinError, LeaveReason, Sfu, SfuConfig, SfuEvent, SfuStats, TappedFrame, Transmit};
pub use server::{SfuHandle, SfuStopped};
pub use token::{JoinClaims, TokenError, TokenKey};
