//! What travels between Parley's programs, defined once (the way
//! quinn-proto's frames and LiveKit's `protocol` repository are): the
//! server, the SFU and every client depend on this crate and on nothing of
//! each other.
//!
//! - [`api`]: the HTTP and websocket JSON of the signaling server
//!   (OpenAPI schemas behind the `openapi` feature, which the server turns
//!   on);
//! - [`sfu`]: the SFU's control messages on each participant's data
//!   channel;
//! - [`relay`]: the call relay's registration datagrams and the STUN
//!   binding request/response;
//! - [`clock`]: Unix time, the one wall-clock helper;
//! - [`pem`]: certificates from PEM files.
//!
//! ```
//! use parley_wire::sfu::ControlMessage;
//!
//! let answer = ControlMessage::from_json(br#"{"type":"answer","sdp":"v=0"}"#).unwrap();
//! assert_eq!(answer, ControlMessage::Answer { sdp: "v=0".into() });
//! assert_eq!(ControlMessage::Leave.to_json(), r#"{"type":"leave"}"#);
//! ```
#![forbid(unsafe_code)]

pub mod api;
pub mod clock;
pub mod pem;
pub mod relay;
pub mod sfu;
