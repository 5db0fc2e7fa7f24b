//! Only the device holding the key gets a token; wrong, expired and other
//! devices' tokens are refused with 401 or 403 and a JSON error.

use parley_signaling::ServerConfig;
use parley_signaling::auth::hash;
use parley_wire::api::TokenRequest;

use crate::device::{Device, keys_of, refusal as status_and_error, start};

#[tokio::test(flavor = "multi_thread")]
async fn wrong_expired_and_foreign_tokens_are_refused() {
    let (server, _dir) = start(ServerConfig::default()).await;
    let alice = Device::register(server.url(), "alice").await;
    let bob = Device::register(server.url(), "bob").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());

    // No token, a made-up token.
    let r = http.get(url("/v1/keys/count")).send().await.unwrap();
    assert_eq!(status_and_error(r).await, (401, "unauthorized".into()));
    let r = http
        .get(url("/v1/keys/count"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_error(r).await, (401, "unauthorized".into()));

    // An expired token (stored as the server would, with a past expiry).
    server
        .state()
        .store()
        .create_token(
            &alice.device_id,
            &hash("expired-token"),
            parley_wire::clock::now_ms() - 1,
        )
        .await
        .unwrap();
    let r = http
        .get(url("/v1/keys/count"))
        .bearer_auth("expired-token")
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_error(r).await, (401, "unauthorized".into()));

    // Alice's valid token on Bob's queue.
    let token = alice.token().await;
    let r = http
        .get(url(&format!("/v1/devices/{}/messages", bob.device_id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_error(r).await, (403, "forbidden".into()));
    let r = http
        .post(url(&format!("/v1/devices/{}/messages/ack", bob.device_id)))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "ids": ["x"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_error(r).await, (403, "forbidden".into()));
    // Her own queue is fine.
    let r = http
        .get(url(&format!("/v1/devices/{}/messages", alice.device_id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The websocket refuses a bad token too.
    let ws = url("/v1/ws?access_token=nope").replace("http://", "ws://");
    let refused = tokio_tungstenite::connect_async(ws).await;
    assert!(refused.is_err(), "websocket opened with a bad token");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_needs_the_device_key_and_a_fresh_challenge() {
    let (server, _dir) = start(ServerConfig::default()).await;
    let alice = Device::register(server.url(), "alice").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());
    let challenge = alice.challenge().await;
    // Signed by some other key: refused, and the challenge is spent.
    let other = vodozemac::olm::Account::new();
    let forged = TokenRequest {
        device_id: alice.device_id.clone(),
        challenge: challenge.clone(),
        signature: other
            .sign(parley_wire::api::challenge_message(
                &alice.device_id,
                &challenge,
            ))
            .to_base64(),
    };
    let r = http
        .post(url("/v1/auth/token"))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_error(r).await, (401, "bad_signature".into()));
    let r = http
        .post(url("/v1/auth/token"))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_error(r).await,
        (401, "unauthorized".into()),
        "challenge replay"
    );

    // Registering with a signature that does not match the keys.
    let account = vodozemac::olm::Account::new();
    let mut keys = keys_of(&vodozemac::olm::Account::new(), "mallory");
    keys.signature = account.sign("something else").to_base64();
    let r = http
        .post(url("/v1/register"))
        .json(&serde_json::json!({ "handle": "mallory", "device": keys }))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_error(r).await, (401, "bad_signature".into()));
}
