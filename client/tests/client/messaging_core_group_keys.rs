//! The messaging core shares a group's Megolm key over Olm only with
//! devices that lack it, and starts a new session, shared only with those
//! who remain, when a member leaves: the leaver cannot read what follows.

use parley_client::Event;
use parley_client::messenger::core::{Core, GroupSend, Receive};
use parley_wire::api::{ServerFrame, kind};

use crate::in_memory_server::InMemoryServer;

/// Delivers a device's queue to it: the texts it shows and how many
/// envelopes it could not decrypt.
fn deliver(server: &mut InMemoryServer, core: &mut Core) -> (Vec<String>, usize) {
    let (mut texts, mut undecryptable) = (Vec::new(), 0);
    for envelope in server.queue(core.device_id()) {
        let op = Receive::new(core, ServerFrame::Envelope(envelope));
        for event in server.drive(core, op).0 {
            match event {
                Event::Message(m) => texts.push(m.text),
                Event::Undecryptable { .. } => undecryptable += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    (texts, undecryptable)
}

#[test]
fn keys_go_only_to_devices_that_lack_them_and_a_leaver_reads_nothing_after() {
    let mut server = InMemoryServer::default();
    let mut alice = server.register("alice");
    let mut bob = server.register("bob");
    let mut carol = server.register("carol");
    server.group("g", &["alice", "bob", "carol"]);

    server.drive(&mut alice, GroupSend::new("g", "one", 1));
    let first = server.queue(bob.device_id());
    assert_eq!(first.len(), 2, "a key share, then the message");
    assert_ne!(first[0].kind, kind::MEGOLM);
    assert_eq!(first[1].kind, kind::MEGOLM);

    server.drive(&mut alice, GroupSend::new("g", "two", 2));
    let second = server.queue(bob.device_id());
    assert_eq!(second.len(), 3, "no second key share");
    assert_eq!(second[2].kind, kind::MEGOLM);

    assert_eq!(
        deliver(&mut server, &mut bob),
        (vec!["one".into(), "two".into()], 0)
    );
    assert_eq!(
        deliver(&mut server, &mut carol),
        (vec!["one".into(), "two".into()], 0)
    );

    // Carol leaves: a new session, its key to bob only.
    server.leave("g", "carol");
    let carol_had = server.queue(carol.device_id()).len();
    server.drive(&mut alice, GroupSend::new("g", "three", 3));
    assert_eq!(
        server.queue(carol.device_id()).len(),
        carol_had,
        "nothing for carol"
    );
    let bob_queue = server.queue(bob.device_id());
    let third = &bob_queue[bob_queue.len() - 2..];
    assert_ne!(third[0].kind, kind::MEGOLM, "a fresh key share for bob");
    assert_eq!(
        deliver(&mut server, &mut bob).0.last().map(String::as_str),
        Some("three")
    );

    // Even with bob's copy in hand, carol cannot read it.
    let op = Receive::new(&mut carol, ServerFrame::Envelope(third[1].clone()));
    let (events, _) = server.drive(&mut carol, op);
    assert!(
        matches!(events.as_slice(), [Event::Undecryptable { from, .. }] if from == "alice"),
        "{events:?}"
    );
}
