//! The client SDK's own behaviour, with no server: the messaging core
//! driven against an in-memory server, call media sessions, their
//! encryption and their refusals. (Behaviour against a real server
//! is in `tests/tests/messaging` and `tests/tests/calls`; the `parley`
//! binary's in `cli/tests/cli`.) One behaviour per module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod call_camera_absent;
mod call_malformed_signals;
mod call_media_e2ee;
mod call_tampered_keys;
mod in_memory_server;
mod messaging_core_delivery;
mod messaging_core_group_keys;
mod messaging_core_keys;
mod messaging_core_undecryptable;
