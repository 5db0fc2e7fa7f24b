//! The server's own behaviour: the `parley-server` binary and TLS. One
//! behaviour per module.

mod common;

mod server_binary;
mod server_tls;
