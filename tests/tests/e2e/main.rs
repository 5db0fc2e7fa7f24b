//! End to end across processes and network namespaces: real
//! `parley-server` and `parley` binaries, and Chromium. One behaviour per
//! module.

mod call_between_namespaces;
mod call_relay_fallback;
mod group_call_browser;
mod group_call_cli;
mod sfu_loadtest;
