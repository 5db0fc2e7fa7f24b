//! The SFU with real client sessions: forwarding, join/leave, simulcast,
//! active speaker, media blindness, all in virtual time on
//! `parley_testkit::sfu_sim` (seeded, repeatable); and interop with
//! webrtc-rs on the wall clock. One behaviour per module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod active_speaker;
mod join_refused;
mod media_blind;
mod participant_leaves;
mod room_forwards_media;
mod room_full;
mod seeded_runs_repeat;
mod simulcast_layers;
mod webrtc_rs_interop;
