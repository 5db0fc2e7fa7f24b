//! Parley's test kit: what more than one crate's tests need, in one
//! dev-only crate (never a normal dependency of anything).
//!
//! - [`call_sim`]: a 1:1 call in virtual time (the loss benchmark's driver);
//! - [`group`]: group-call members on the wall clock, through the SFU's
//!   UDP shell (for peers that only run in real time);
//! - [`sfu_sim`]: the SFU core and client group sessions in virtual time;
//! - [`server`]: a real signaling server in this process, on a loopback
//!   port, through the same builder `parley-server` uses;
//! - [`process`]: the real binaries as child processes;
//! - [`netns`]: network namespaces as "two machines";
//! - [`media_files`]: media files to feed programs.
//!
//! It may depend on every library crate in the workspace; only test
//! targets, the CLI's tests and the benches depend on it, so there is no
//! dependency cycle (`cargo metadata` shows none).
// The kit drives real processes and sockets on the wall clock.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]

pub mod call_sim;
pub mod group;
pub mod media_files;
pub mod netns;
pub mod process;
pub mod server;
pub mod sfu_sim;

pub use media_files::write_pattern;
pub use netns::{NetNs, default_route, link, namespaces_available};
pub use process::{Process, binary, real_time_media, start_server, summary};
pub use server::{TestServer, inbox, unique};
