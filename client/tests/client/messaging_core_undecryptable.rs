//! An envelope that can never be decrypted (tampered with on the way, or
//! from a device the sender's directory does not list) is reported, saved
//! past and acked, so it cannot block the device's queue.

use parley_client::Event;
use parley_client::messenger::core::{Receive, Send};
use parley_wire::api::{ClientFrame, ServerFrame};

use crate::in_memory_server::{Did, InMemoryServer};

#[test]
fn a_tampered_or_unlisted_envelope_is_reported_and_acked() {
    let mut server = InMemoryServer::default();
    let mut alice = server.register("alice");
    let mut bob = server.register("bob");
    let (_, send) = Send::text("bob", "hello", 1);
    server.drive(&mut alice, send);
    let original = server.queue(bob.device_id()).remove(0);

    let mut tampered = original.clone();
    let mut bytes = tampered.ciphertext.into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    tampered.ciphertext = String::from_utf8(bytes).unwrap();

    let mut unlisted = original.clone();
    unlisted.id = "unlisted".into();
    unlisted.from_device = "not-a-device".into();

    for envelope in [tampered, unlisted] {
        let op = Receive::new(&mut bob, ServerFrame::Envelope(envelope.clone()));
        let (events, did) = server.drive(&mut bob, op);
        assert!(
            matches!(events.as_slice(), [Event::Undecryptable { from, .. }] if from == "alice"),
            "{events:?}"
        );
        let ack = Did::Frame(ClientFrame::Ack {
            ids: vec![envelope.id.clone()],
        });
        assert_eq!(&did[did.len() - 2..], &[Did::Persist, ack]);
    }

    // The untouched envelope still opens: the failures cost nothing.
    let op = Receive::new(&mut bob, ServerFrame::Envelope(original));
    let (events, _) = server.drive(&mut bob, op);
    assert!(matches!(events.as_slice(), [Event::Message(m)] if m.text == "hello"));
}
