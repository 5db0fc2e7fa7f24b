//! A group message reaches every member's devices; once a member is
//! removed, the server relays them nothing more and they cannot decrypt
//! later messages even when handed the ciphertext.

use parley_client::MessengerError;
use parley_testkit::{TestServer, inbox};
use parley_wire::api::{OutgoingEnvelope, kind};

#[tokio::test(flavor = "multi_thread")]
async fn members_read_group_messages_and_a_removed_member_cannot() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let mut carol = server.register("carol").await;
    let (b, c) = (bob.handle().to_string(), carol.handle().to_string());

    let group = alice.create_group("weekend plans").await.unwrap();
    let g = group.group_id.clone();
    alice.add_member(&g, &b).await.unwrap();
    let info = bob.add_member(&g, &c).await.unwrap(); // any member may add
    assert_eq!(info.members.len(), 3);

    let id = alice.send_group_text(&g, "one").await.unwrap();
    for member in [&mut bob, &mut carol] {
        let got = inbox(member).await;
        assert_eq!(got.len(), 1, "{}", member.handle());
        assert_eq!(
            (got[0].id.as_str(), got[0].text.as_str()),
            (id.as_str(), "one")
        );
        assert_eq!(got[0].group.as_deref(), Some(g.as_str()));
    }
    // Bob speaks too, so his session has been shared with carol.
    bob.send_group_text(&g, "two").await.unwrap();
    assert_eq!(inbox(&mut carol).await[0].text, "two");
    assert_eq!(inbox(&mut alice).await[0].text, "two");

    // Only the owner removes others.
    let err = bob.remove_member(&g, &c).await.unwrap_err();
    assert!(
        matches!(err, MessengerError::Refused { status: 403, .. }),
        "{err}"
    );
    alice.remove_member(&g, &c).await.unwrap();

    // After the removal both remaining senders replace their sessions.
    alice.send_group_text(&g, "three").await.unwrap();
    bob.send_group_text(&g, "four").await.unwrap();
    assert!(
        inbox(&mut carol).await.is_empty(),
        "nothing relayed to a removed member"
    );

    // Hand carol the ciphertexts bob received: she cannot read them.
    let queued = server
        .state
        .store()
        .envelopes_after(bob.device_id(), 0, 100)
        .await
        .unwrap();
    let group_envelopes: Vec<_> = queued
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.kind == kind::MEGOLM)
        .collect();
    assert!(!group_envelopes.is_empty());
    for envelope in &group_envelopes {
        let result = carol.decrypt_envelope(envelope).await;
        assert!(
            matches!(result, Err(MessengerError::Group(_))),
            "carol read {result:?}"
        );
    }
    let texts: Vec<String> = inbox(&mut bob).await.into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["three"]);
    assert_eq!(inbox(&mut alice).await[0].text, "four");

    // A stale client still addressing carol is refused by the server.
    let stale = OutgoingEnvelope {
        id: "stale".into(),
        to_device: carol.device_id().into(),
        kind: kind::MEGOLM,
        ciphertext: group_envelopes[0].ciphertext.clone(),
        group_id: Some(g.clone()),
    };
    let err = alice.submit(vec![stale]).await.unwrap_err();
    assert!(
        matches!(err, MessengerError::Refused { status: 403, .. }),
        "{err}"
    );

    // And carol can no longer see the group at all.
    assert!(carol.groups().await.unwrap().is_empty());
    let err = carol.group(&g).await.unwrap_err();
    assert!(
        matches!(err, MessengerError::Refused { status: 404, .. }),
        "{err}"
    );
}
