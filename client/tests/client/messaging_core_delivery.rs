//! The messaging core, with no server: a text goes to every device of the
//! recipient and to the sender's other devices, the state is saved before
//! anything leaves the device and before each ack, a redelivered envelope
//! is acked but shown once, and delivery receipts go out once the backlog
//! is drained.

use parley_client::messenger::core::{Method, Receive, Send};
use parley_client::{Event, ReceiptStatus};
use parley_wire::api::{ClientFrame, ServerFrame};

use crate::in_memory_server::{Did, InMemoryServer};

fn position(did: &[Did], wanted: impl Fn(&Did) -> bool) -> usize {
    did.iter().position(wanted).expect("step taken")
}

#[test]
fn a_text_reaches_every_device_once_and_is_receipted_after_the_backlog() {
    let mut server = InMemoryServer::default();
    let mut alice = server.register("alice");
    let mut alice_phone = server.register("alice");
    let mut bob = server.register("bob");

    let (id, send) = Send::text("bob", "hello", 1_000);
    let (envelopes, did) = server.drive(&mut alice, send);
    assert_eq!(envelopes.len(), 2, "bob's device and alice's phone");
    let saved = position(&did, |d| *d == Did::Persist);
    let sent = position(&did, |d| {
        *d == Did::Http(Method::Post, "/v1/messages".into())
    });
    assert!(
        saved < sent,
        "ratchets saved before the envelopes leave: {did:?}"
    );
    assert_eq!(server.queue(alice.device_id()).len(), 0, "not to itself");

    // Bob's websocket: the backlog first.
    bob.connected();
    let envelope = server.queue(bob.device_id()).remove(0);
    let op = Receive::new(&mut bob, ServerFrame::Envelope(envelope.clone()));
    let (events, did) = server.drive(&mut bob, op);
    let [Event::Message(m)] = events.as_slice() else {
        panic!("one message, got {events:?}");
    };
    assert_eq!(
        (m.id.as_str(), m.from.as_str(), m.text.as_str()),
        (id.as_str(), "alice", "hello")
    );
    assert_eq!(m.sent_at, 1_000);
    let ack = Did::Frame(ClientFrame::Ack {
        ids: vec![envelope.id.clone()],
    });
    assert!(position(&did, |d| *d == Did::Persist) < position(&did, |d| *d == ack));
    assert!(
        !did.iter()
            .any(|d| *d == Did::Http(Method::Post, "/v1/messages".into())),
        "no receipt before the backlog is drained: {did:?}"
    );
    assert!(server.queue(bob.device_id()).is_empty(), "acked");

    // The server redelivers (the ack was lost): acked again, shown once.
    let op = Receive::new(&mut bob, ServerFrame::Envelope(envelope.clone()));
    let (events, did) = server.drive(&mut bob, op);
    assert!(events.is_empty(), "duplicate shown: {events:?}");
    assert!(did.contains(&ack));

    // Backlog drained: one delivery receipt to alice's devices.
    let op = Receive::new(&mut bob, ServerFrame::Drained);
    server.drive(&mut bob, op);
    assert!(bob.drained());
    let receipts = server.queue(alice.device_id());
    assert_eq!(receipts.len(), 1);

    alice.connected();
    let op = Receive::new(&mut alice, ServerFrame::Envelope(receipts[0].clone()));
    let (events, _) = server.drive(&mut alice, op);
    let [Event::Receipt(r)] = events.as_slice() else {
        panic!("one receipt, got {events:?}");
    };
    assert_eq!(
        (r.from.as_str(), r.status),
        ("bob", ReceiptStatus::Delivered)
    );
    assert_eq!(r.ids, vec![id.clone()]);

    // Alice's phone has her own message (to bob, no receipt owed) and
    // bob's receipt.
    let phone_queue = server.queue(alice_phone.device_id());
    assert_eq!(phone_queue.len(), 2);
    let mut shown = Vec::new();
    for envelope in phone_queue {
        let op = Receive::new(&mut alice_phone, ServerFrame::Envelope(envelope));
        shown.extend(server.drive(&mut alice_phone, op).0);
    }
    let op = Receive::new(&mut alice_phone, ServerFrame::Drained);
    let (_, did) = server.drive(&mut alice_phone, op);
    assert!(
        matches!(&shown[0], Event::Message(m) if m.from == "alice" && m.to == "bob" && m.id == id),
        "{shown:?}"
    );
    assert!(matches!(&shown[1], Event::Receipt(r) if r.from == "bob"));
    assert!(
        !did.iter().any(|d| matches!(d, Did::Http(Method::Post, _))),
        "a device never receipts its own user's message: {did:?}"
    );
}
