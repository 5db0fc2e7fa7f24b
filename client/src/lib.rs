//! Parley's client SDK and the `parley` command-line client.
//!
//! A device's whole life as a library: [`Messenger`] registers or links it,
//! signs in with its Ed25519 key, publishes Olm keys, and sends and
//! receives end-to-end encrypted messages through a Parley server, fanning
//! each message out to every recipient device and the sender's own other
//! devices. Its secrets live in a [`vault::Vault`], encrypted at rest.
//!
//! ```no_run
//! # async fn run() -> Result<(), parley_client::MessengerError> {
//! use std::path::Path;
//! use parley_client::{Messenger, ReceiveMode, vault::KeySource};
//!
//! let server = "http://127.0.0.1:8443";
//! let mut alice = Messenger::register(server, Path::new("alice"), KeySource::KeyFile, "alice").await?;
//! let mut bob = Messenger::register(server, Path::new("bob"), KeySource::KeyFile, "bob").await?;
//! alice.send_text("bob", "hello").await?;
//! bob.receive(ReceiveMode::Drain, |m| println!("{}: {}", m.from, m.text)).await?;
//! # Ok(()) }
//! ```
//!
//! Calls and the media pipeline arrive here with the 1:1 call issue.
#![forbid(unsafe_code)]

pub mod attachment;
pub mod call;
pub mod endpoint;
pub mod group_sessions;
pub mod messenger;
pub mod olm_machine;
pub mod payload;
pub mod vault;

pub use endpoint::{Endpoint, EndpointError};
pub use messenger::{
    CallEvent, Connection, Event, Incoming, Messenger, MessengerError, Receipt, ReceiveMode,
};
pub use payload::ReceiptStatus;
