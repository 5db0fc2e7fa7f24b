//! The `parley` binary and its demos, as a user runs them: real
//! `parley-server` processes, real `parley` processes. One behaviour per
//! module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod common;

mod call_audio_devices;
mod call_demo_loopback;
mod call_hangup_on_ctrl_c;
mod call_malformed_payloads;
mod call_rings_every_device;
mod call_server_rewrites_offer;
mod cli_attach;
mod cli_chat;
mod cli_groups;
mod cli_no_plaintext_on_server;
mod group_demo;
mod messaging_over_tls;
