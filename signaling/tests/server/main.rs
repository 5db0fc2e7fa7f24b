//! The server's own behaviour, through its HTTP and websocket API in raw
//! wire types (no client SDK: see `device`), in-process through the
//! builder, and as the `parley-server` binary. One behaviour per module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod common;
mod device;

mod address_limit;
mod auth_tokens;
mod bad_input;
mod envelope_budget;
mod group_commit;
mod group_ownership;
mod key_directory;
mod metrics_endpoint;
mod openapi_document;
mod push_after_lag;
mod queue_cap;
mod rate_limit;
mod server_binary;
mod server_tls;
mod sfu_join_errors;
