//! A message to a device that is offline is stored and arrives, in order,
//! when the device connects.

use parley_client::Messenger;
use parley_testkit::{TestServer, inbox};

#[tokio::test(flavor = "multi_thread")]
async fn messages_to_an_offline_device_arrive_in_order_when_it_connects() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let bob = server.register("bob").await;
    let (b, bob_id) = (bob.handle().to_string(), bob.device_id().to_string());
    let bob_dir = server.client_dir(&b);
    drop(bob); // bob goes offline

    for i in 0..5 {
        alice.send_text(&b, &format!("message {i}")).await.unwrap();
    }
    assert_eq!(
        server.state.store().queue_len(&bob_id).await.unwrap(),
        5,
        "stored, waiting"
    );

    let mut bob = Messenger::open(&bob_dir, None, || None).await.unwrap();
    let got = inbox(&mut bob).await;
    let texts: Vec<String> = got.iter().map(|m| m.text.clone()).collect();
    assert_eq!(
        texts,
        (0..5).map(|i| format!("message {i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        server.state.store().queue_len(&bob_id).await.unwrap(),
        0,
        "acked and deleted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_sent_while_following_is_pushed_live() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let b = bob.handle().to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let follower = tokio::spawn(async move {
        bob.receive(parley_client::ReceiveMode::Follow, move |m| {
            let _ = tx.send(m);
        })
        .await
    });
    // Give the websocket a moment to open; the message is queued durably
    // either way, so this only decides whether it is pushed or drained.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    alice.send_text(&b, "live").await.unwrap();
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("pushed within 10 s")
        .unwrap();
    assert_eq!(got.text, "live");
    follower.abort();
}
