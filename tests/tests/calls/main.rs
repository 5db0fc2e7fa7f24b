//! Group calls through the client SDK: real group sessions through a real
//! SFU on loopback, joined through a real server. One behaviour per
//! module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod group_call_join;
mod group_call_media;
mod group_simulcast;
