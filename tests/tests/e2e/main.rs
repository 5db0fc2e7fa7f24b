//! End to end across processes and network namespaces: real
//! `parley-server` and `parley` binaries, and Chromium. One behaviour per
//! module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod call_between_namespaces;
mod call_relay_fallback;
mod group_call_browser;
mod group_call_cli;
mod sfu_loadtest;
