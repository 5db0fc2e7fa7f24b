//! Sending the same envelopes twice (a retry after a lost reply) delivers
//! the message once.

use parley_testkit::{TestServer, inbox};

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_send_is_delivered_once() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let b = bob.handle().to_string();

    let (id, envelopes) = alice.prepare_text(&b, "only once").await.unwrap();
    let first = alice.submit(envelopes.clone()).await.unwrap();
    let second = alice.submit(envelopes).await.unwrap();
    assert_eq!(
        first.stored, second.stored,
        "the retry is acknowledged the same way"
    );
    assert_eq!(
        server
            .state
            .store()
            .queue_len(bob.device_id())
            .await
            .unwrap(),
        1,
        "stored once"
    );

    let got = inbox(&mut bob).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
}
