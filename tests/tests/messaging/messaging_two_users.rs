//! Two users exchange text both ways through a real server, and a
//! restarted client keeps its sessions.

use parley_client::Messenger;
use parley_testkit::{TestServer, inbox};

#[tokio::test(flavor = "multi_thread")]
async fn two_users_exchange_text_both_ways_across_restarts() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let (a, b) = (alice.handle().to_string(), bob.handle().to_string());

    let id = alice.send_text(&b, "hello bob").await.unwrap();
    let got = inbox(&mut bob).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].id.as_str(),
            got[0].from.as_str(),
            got[0].text.as_str()
        ),
        (id.as_str(), a.as_str(), "hello bob")
    );
    assert_eq!(got[0].to, b);

    bob.send_text(&a, "hi alice").await.unwrap();
    bob.send_text(&a, "second").await.unwrap();
    let got = inbox(&mut alice).await;
    let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["hi alice", "second"], "in order");

    // Restart both clients from their vaults: the Olm sessions continue
    // (no new one-time key is claimed, and the ratchet stays in step).
    let alice_dir = server.client_dir(&a);
    let bob_dir = server.client_dir(&b);
    drop((alice, bob));
    let mut alice = Messenger::open(&alice_dir, None, || None).await.unwrap();
    let mut bob = Messenger::open(&bob_dir, None, || None).await.unwrap();
    let keys_before = server
        .state
        .store()
        .one_time_key_count(bob.device_id())
        .await
        .unwrap();
    alice.send_text(&b, "after restart").await.unwrap();
    let got = inbox(&mut bob).await;
    assert_eq!(
        got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["after restart"]
    );
    let keys_after = server
        .state
        .store()
        .one_time_key_count(bob.device_id())
        .await
        .unwrap();
    assert_eq!(keys_before, keys_after, "no new session was needed");

    // Nothing is left queued once acked.
    assert!(inbox(&mut bob).await.is_empty());
    assert_eq!(
        server
            .state
            .store()
            .queue_len(bob.device_id())
            .await
            .unwrap(),
        0
    );
}
