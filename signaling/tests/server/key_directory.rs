//! The key directory hands each one-time key out once, to claimers racing
//! for them, and then the device's signed fallback key, over and over.
//! (That a client starts a working session from the fallback key and tops
//! its keys back up is the SDK's behaviour: `tests/tests/messaging`.)

use std::collections::HashSet;

use parley_signaling::ServerConfig;
use parley_wire::api::{ClaimRequest, ClaimedKey};

use crate::device::{Device, start};

#[tokio::test(flavor = "multi_thread")]
async fn one_time_keys_go_out_once_then_the_fallback_key() {
    let (server, _dir) = start(ServerConfig::default()).await;
    let alice = Device::register(server.url(), "alice").await;
    let mut bob = Device::register(server.url(), "bob").await;
    let tb = bob.token().await;
    bob.publish_keys(&tb, 50).await;
    let store = server.state().store();
    assert_eq!(store.one_time_key_count(&bob.device_id).await.unwrap(), 50);

    // Claim them all, eight claimers at once.
    let token = alice.token().await;
    let claim = || {
        let (http, url) = (alice.http().clone(), alice.at("/v1/keys/claim"));
        let (token, id) = (token.clone(), bob.device_id.clone());
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
    let fallback: HashSet<&str> = handed_out
        .iter()
        .filter(|k| k.fallback_signature.is_some())
        .map(|k| k.key_id.as_str())
        .collect();
    assert_eq!(fallback.len(), 1, "one fallback key, handed out each time");
    assert_eq!(store.one_time_key_count(&bob.device_id).await.unwrap(), 0);
}
