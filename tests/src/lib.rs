//! Workspace end-to-end tests (none yet).
//!
//! Tests that need more than one crate, or real processes on real sockets
//! (a `parley-server` and two `parley` clients in two network namespaces, a
//! headless Chromium joining a group call), will live in `tests/tests/`, with
//! shared helpers for starting processes and namespaces in this library.
//! Tests of a single crate stay in that crate's own `tests/` folder.
#![forbid(unsafe_code)]
