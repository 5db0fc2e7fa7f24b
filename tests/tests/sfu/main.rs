//! The SFU with real str0m participants on loopback: forwarding,
//! join/leave, simulcast, active speaker, media blindness, and interop
//! with webrtc-rs. One behaviour per module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod common;

mod active_speaker;
mod join_refused;
mod media_blind;
mod participant_leaves;
mod room_forwards_media;
mod simulcast_layers;
mod webrtc_rs_interop;
