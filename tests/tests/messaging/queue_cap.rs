//! A device's queue is capped: past the cap senders get `queue_full`
//! (HTTP 429), and nothing already stored is lost.

use parley_client::MessengerError;
use parley_signaling::ServerConfig;
use parley_testkit::{TestServer, inbox};

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_refuses_more_and_keeps_what_it_has() {
    let server = TestServer::with_config(ServerConfig {
        max_queue: 3,
        ..ServerConfig::default()
    })
    .await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let b = bob.handle().to_string();
    for i in 0..3 {
        alice.send_text(&b, &format!("{i}")).await.unwrap();
    }
    let err = alice.send_text(&b, "one too many").await.unwrap_err();
    assert!(
        matches!(&err, MessengerError::Refused { status: 429, code, .. } if code == "queue_full"),
        "{err}"
    );
    let got = inbox(&mut bob).await;
    assert_eq!(
        got.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2"]
    );
    // Drained, the queue takes messages again.
    alice.send_text(&b, "room again").await.unwrap();
    assert_eq!(inbox(&mut bob).await.len(), 1);
}
