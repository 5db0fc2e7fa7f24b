//! The server's own behaviour: the `parley-server` binary and TLS. One
//! behaviour per module.
// Tests run real sockets on the wall clock, and virtual-time tests pick their origin.
#![allow(clippy::disallowed_methods)]

mod common;

mod server_binary;
mod server_tls;
