//! When a recipient's one-time keys are gone, the SDK starts its Olm
//! session from the signed fallback key (checking its signature), the
//! message gets through, and the recipient's SDK tops its one-time keys
//! back up after receiving. (That the directory hands each key out once is
//! the server's own test: `signaling/tests/server/key_directory.rs`.)

use parley_testkit::{TestServer, inbox};
use parley_wire::api::{ClaimRequest, ClaimedKey};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_starts_from_the_fallback_key_and_keys_are_topped_up() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let b = bob.handle().to_string();
    let bob_id = bob.device_id().to_string();
    let store = server.state.store();
    assert_eq!(store.one_time_key_count(&bob_id).await.unwrap(), 50);

    // Someone else takes every one-time key bob published.
    let token = alice.token().await.unwrap();
    let http = reqwest::Client::new();
    for _ in 0..50 {
        http.post(format!("{}/v1/keys/claim", server.url))
            .bearer_auth(&token)
            .json(&ClaimRequest {
                device_ids: vec![bob_id.clone()],
            })
            .send()
            .await
            .unwrap()
            .json::<Vec<ClaimedKey>>()
            .await
            .unwrap();
    }
    assert_eq!(store.one_time_key_count(&bob_id).await.unwrap(), 0);

    // Alice has no session with bob yet; her client claims the fallback
    // key, checks its signature, and the message gets through.
    alice.send_text(&b, "via the fallback key").await.unwrap();
    let got = inbox(&mut bob).await;
    assert_eq!(got[0].text, "via the fallback key");
    // Bob's client tops its one-time keys back up after receiving.
    assert_eq!(store.one_time_key_count(&bob_id).await.unwrap(), 50);
}
