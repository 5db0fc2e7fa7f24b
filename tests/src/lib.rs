//! Parley's workspace tests: behaviour that spans crates, run against real
//! servers, real SFUs and real binaries. The tests are the targets in
//! `tests/`, one binary per area, one behaviour per module:
//!
//! - `messaging`: the client SDK against a server in the test's process;
//! - `calls`: group calls through the SDK, a real SFU and a real server;
//! - `sfu`: the SFU with str0m participants, and webrtc-rs interop;
//! - `e2e`: real processes, network namespaces and Chromium.
//!
//! Helpers they share are in `parley-testkit`. This library is empty.
#![forbid(unsafe_code)]
