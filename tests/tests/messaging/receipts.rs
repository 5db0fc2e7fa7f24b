//! Delivery and read receipts travel end-to-end encrypted: the sender
//! learns its message arrived when the recipient's device drains it, and
//! that it was read when the recipient marks it so; receipts are never
//! answered with receipts.

use parley_client::{Event, ReceiptStatus, ReceiveMode};
use parley_testkit::TestServer;

async fn events(m: &mut parley_client::Messenger) -> Vec<Event> {
    let mut got = Vec::new();
    m.receive_events(ReceiveMode::Drain, |e| got.push(e))
        .await
        .unwrap();
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn sender_gets_delivered_then_read() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let (a, b) = (alice.handle().to_string(), bob.handle().to_string());
    let id1 = alice.send_text(&b, "first").await.unwrap();
    let id2 = alice.send_text(&b, "second").await.unwrap();

    let at_bob = events(&mut bob).await;
    assert_eq!(
        at_bob
            .iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count(),
        2
    );
    let at_alice = events(&mut alice).await;
    let [Event::Receipt(delivered)] = at_alice.as_slice() else {
        panic!("expected one receipt, got {at_alice:?}");
    };
    assert_eq!(delivered.status, ReceiptStatus::Delivered);
    assert_eq!(delivered.from, b);
    assert_eq!(delivered.ids, vec![id1.clone(), id2.clone()]);

    bob.mark_read(&a, vec![id1.clone()]).await.unwrap();
    let at_alice = events(&mut alice).await;
    let [Event::Receipt(read)] = at_alice.as_slice() else {
        panic!("expected one receipt, got {at_alice:?}");
    };
    assert_eq!(
        (read.status, read.ids.clone()),
        (ReceiptStatus::Read, vec![id1])
    );

    // Alice's receipt processing sent nothing back to bob.
    assert!(events(&mut bob).await.is_empty());
}
