//! The routes that need no account (register, sign-in, link, demo and SFU
//! joins) are limited per source address: past the burst, `429
//! rate_limited` with a Retry-After, failed requests included; routes
//! behind a token are not affected.

use parley_signaling::ServerConfig;
use parley_wire::api::ChallengeRequest;

use crate::device::{Device, refusal, start};

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_routes_are_limited_per_address() {
    let (server, _dir) = start(ServerConfig {
        address_rate_per_second: 0.01,
        address_burst: 5.0,
        ..ServerConfig::default()
    })
    .await;
    // Three of the five: register, challenge, token.
    let alice = Device::register(server.url(), "alice").await;
    let token = alice.token().await;

    let challenge = async || {
        alice
            .http()
            .post(alice.at("/v1/auth/challenge"))
            .json(&ChallengeRequest {
                device_id: "no-such-device".into(),
            })
            .send()
            .await
            .unwrap()
    };
    assert_eq!(refusal(challenge().await).await.0, 404);
    assert_eq!(refusal(challenge().await).await.0, 404);
    let limited = challenge().await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(refusal(limited).await, (429, "rate_limited".into()));

    let keys = alice
        .http()
        .get(alice.at("/v1/keys/count"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys.status(),
        200,
        "a signed-in route is not limited by address"
    );
}
