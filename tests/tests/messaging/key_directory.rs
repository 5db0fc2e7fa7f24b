//! Each one-time key is handed out once; when none are left the signed
//! fallback key is, and a session started from it works.

use std::collections::HashSet;

use parley_testkit::{TestServer, inbox};
use parley_wire::api::{ClaimRequest, ClaimedKey};

#[tokio::test(flavor = "multi_thread")]
async fn one_time_keys_go_out_once_then_the_fallback_key() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let b = bob.handle().to_string();
    let bob_id = bob.device_id().to_string();
    let published = server
        .state
        .store()
        .one_time_key_count(&bob_id)
        .await
        .unwrap();
    assert_eq!(published, 50);

    // Claim them all, eight claimers at once.
    let token = alice.token().await.unwrap();
    let http = reqwest::Client::new();
    let claim = || {
        let http = http.clone();
        let (url, token, id) = (
            format!("{}/v1/keys/claim", server.url),
            token.clone(),
            bob_id.clone(),
        );
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&ClaimRequest {
                    device_ids: vec![id],
                })
                .send()
                .await
                .unwrap()
                .json::<Vec<ClaimedKey>>()
                .await
                .unwrap()
        }
    };
    let mut handed_out = Vec::new();
    for _ in 0..7 {
        let batch = futures_util::future::join_all((0..8).map(|_| claim())).await;
        handed_out.extend(batch.into_iter().flatten());
    }
    let one_time: Vec<&ClaimedKey> = handed_out
        .iter()
        .filter(|k| k.fallback_signature.is_none())
        .collect();
    let distinct: HashSet<&str> = one_time.iter().map(|k| k.key_id.as_str()).collect();
    assert_eq!(one_time.len(), 50, "every one-time key handed out");
    assert_eq!(distinct.len(), 50, "none twice");
    assert_eq!(handed_out.len(), 56, "then the fallback key");
    assert_eq!(
        server
            .state
            .store()
            .one_time_key_count(&bob_id)
            .await
            .unwrap(),
        0
    );

    // Alice has no session with bob yet; her client claims the fallback
    // key, checks its signature, and the message gets through.
    alice.send_text(&b, "via the fallback key").await.unwrap();
    let got = inbox(&mut bob).await;
    assert_eq!(got[0].text, "via the fallback key");
    // Bob's client tops its one-time keys back up after receiving.
    assert_eq!(
        server
            .state
            .store()
            .one_time_key_count(&bob_id)
            .await
            .unwrap(),
        50
    );
}
