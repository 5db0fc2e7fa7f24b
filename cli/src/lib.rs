//! The parts of the `parley` binary that link more than the client SDK:
//! `parley demo call` and `parley demo group` (an embedded server and SFU
//! with scripted clients, scored), and `parley loadtest` (synthetic
//! participants against an SFU). The SDK itself is `parley-client`.
#![forbid(unsafe_code)]

pub mod demo;
pub mod group_demo;
pub mod loadtest;
