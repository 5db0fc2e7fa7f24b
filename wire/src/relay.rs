//! The call relay's datagram formats, both ends: the registration that
//! binds a media socket to a call (client writes, server parses) and the
//! plain STUN binding request/response a client uses to learn its
//! server-reflexive address (RFC 8489; encoded by `stun_codec`).
//!
//! Datagrams on the relay's port are told apart by their first byte
//! (RFC 7983): 0-3 STUN, 20-63 DTLS, 128-191 RTP/RTCP, and `P` (80) for
//! [`MAGIC`] registrations.

use std::net::SocketAddr;

use bytecodec::{DecodeExt, EncodeExt};
use stun_codec::rfc5389::attributes::{Username, XorMappedAddress};
use stun_codec::rfc5389::{Attribute, methods::BINDING};
use stun_codec::{Message, MessageClass, MessageDecoder, MessageEncoder, TransactionId};

/// First bytes of a registration (and of its acknowledgement).
pub const MAGIC: &[u8; 4] = b"PRLY";
/// Registration message type.
const REGISTER: u8 = 1;
/// Acknowledgement message type.
const REGISTERED: u8 = 2;
/// A call key's length.
pub const CALL_KEY_LEN: usize = 16;
/// A ticket's length (HMAC-SHA256).
pub const TICKET_LEN: usize = 32;

/// A registration datagram, parsed in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration<'a> {
    /// The call both ends register under.
    pub call_key: [u8; CALL_KEY_LEN],
    /// When the ticket stops being valid, Unix milliseconds.
    pub expires_at: i64,
    /// HMAC the server signed over call key, device and expiry.
    pub ticket: &'a [u8; TICKET_LEN],
    /// The registering device's id.
    pub device: &'a str,
}

impl<'a> Registration<'a> {
    /// Parses a registration; `None` for anything that is not a whole one
    /// (wrong magic or type, too short, a device id that is not UTF-8).
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let rest = data
            .strip_prefix(MAGIC.as_slice())?
            .strip_prefix(&[REGISTER])?;
        if rest.len() <= CALL_KEY_LEN + 8 + TICKET_LEN {
            return None;
        }
        let (call_key, rest) = rest.split_at(CALL_KEY_LEN);
        let (expires, rest) = rest.split_at(8);
        let (ticket, device) = rest.split_at(TICKET_LEN);
        Some(Self {
            call_key: call_key.try_into().ok()?,
            expires_at: i64::from_be_bytes(expires.try_into().ok()?),
            ticket: ticket.try_into().ok()?,
            device: std::str::from_utf8(device).ok()?,
        })
    }

    /// The datagram (the client side of the format).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(REGISTER);
        out.extend_from_slice(&self.call_key);
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        out.extend_from_slice(self.ticket);
        out.extend_from_slice(self.device.as_bytes());
        out
    }
}

/// The relay's acknowledgement of a registration.
pub fn registered_ack() -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(REGISTERED);
    out
}

/// Whether a datagram is the relay's acknowledgement of a registration.
pub fn is_registered_ack(data: &[u8]) -> bool {
    data.len() == MAGIC.len() + 1 && data.starts_with(MAGIC) && data[MAGIC.len()] == REGISTERED
}

/// A STUN binding message of `class`, if `data` is one (RFC 7983: STUN
/// starts with 0-3).
fn binding_message(data: &[u8], class: MessageClass) -> Option<Message<Attribute>> {
    if data.len() < 20 || data[0] >= 4 {
        return None;
    }
    let message = MessageDecoder::<Attribute>::new()
        .decode_from_bytes(data)
        .ok()?
        .ok()?;
    (message.class() == class && message.method() == BINDING).then_some(message)
}

/// The binding success for a plain (no USERNAME: not ICE) STUN binding
/// request, carrying `from` as XOR-MAPPED-ADDRESS; `None` for anything
/// else, ICE connectivity checks included.
pub fn answer_binding(data: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let request = binding_message(data, MessageClass::Request)?;
    if request.get_attribute::<Username>().is_some() {
        return None;
    }
    let mut reply = Message::<Attribute>::new(
        MessageClass::SuccessResponse,
        BINDING,
        request.transaction_id(),
    );
    reply.add_attribute(XorMappedAddress::new(from));
    MessageEncoder::new().encode_into_bytes(reply).ok()
}

/// A STUN binding request (client side) with transaction id `id`.
pub fn binding_request(id: [u8; 12]) -> Vec<u8> {
    let request = Message::<Attribute>::new(MessageClass::Request, BINDING, TransactionId::new(id));
    MessageEncoder::new()
        .encode_into_bytes(request)
        .expect("an attribute-less request always encodes")
}

/// The reflexive address in a binding success for request `id`; `None`
/// for any other datagram.
pub fn binding_response(data: &[u8], id: [u8; 12]) -> Option<SocketAddr> {
    let response = binding_message(data, MessageClass::SuccessResponse)?;
    if response.transaction_id() != TransactionId::new(id) {
        return None;
    }
    response
        .get_attribute::<XorMappedAddress>()
        .map(XorMappedAddress::address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_parses_back() {
        let ticket = [7u8; TICKET_LEN];
        let sent = Registration {
            call_key: [1; CALL_KEY_LEN],
            expires_at: 1_700_000_000_000,
            ticket: &ticket,
            device: "dev-1",
        };
        let bytes = sent.to_bytes();
        assert_eq!(Registration::parse(&bytes), Some(sent));
        for cut in 0..bytes.len() - "dev-1".len() {
            assert_eq!(Registration::parse(&bytes[..cut]), None, "cut at {cut}");
        }
        assert!(!is_registered_ack(&bytes));
        assert!(is_registered_ack(&registered_ack()));
    }

    #[test]
    fn a_binding_request_is_answered_with_the_source_address() {
        let from: SocketAddr = "192.0.2.7:40000".parse().unwrap();
        let answer = answer_binding(&binding_request([3; 12]), from).expect("answered");
        assert_eq!(binding_response(&answer, [3; 12]), Some(from));
        assert_eq!(binding_response(&answer, [4; 12]), None);
        assert_eq!(answer_binding(b"not stun at all, not at all", from), None);
    }
}
