//! Malformed websocket frames, oversized or malformed bodies and bad
//! envelopes get a clear JSON error; the connection and the server carry
//! on.

use futures_util::{SinkExt, StreamExt};
use parley_signaling::ServerConfig;
use parley_wire::api::{ErrorBody, ServerFrame};
use tokio_tungstenite::tungstenite::Message;

use crate::device::{Device, start};

#[tokio::test(flavor = "multi_thread")]
async fn malformed_websocket_frames_get_errors_and_the_session_survives() {
    let (server, _dir) = start(ServerConfig::default()).await;
    let alice = Device::register(server.url(), "alice").await;
    let bob = Device::register(server.url(), "bob").await;
    let token = bob.token().await;
    let url = format!(
        "{}/v1/ws?access_token={token}",
        server.url().replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    assert_eq!(next_frame(&mut ws).await, ServerFrame::Drained);

    for bad in [
        Message::Text("{not json".into()),
        Message::Text(r#"{"type":"launch_missiles"}"#.into()),
        Message::Text(r#"{"type":"send","envelopes":[{"id":"x","to_device":"nobody","kind":1,"ciphertext":"AAAA"}]}"#.into()),
        Message::Text(r#"{"type":"send","envelopes":[{"id":"x","to_device":"nobody","kind":1,"ciphertext":"%%%"}]}"#.into()),
        Message::Binary(vec![0u8, 1, 2].into()),
    ] {
        ws.send(bad).await.unwrap();
        let reply = next_frame(&mut ws).await;
        let ServerFrame::Error(ErrorBody { error, message }) = reply else {
            panic!("expected an error frame, got {reply:?}");
        };
        assert!(matches!(error.as_str(), "bad_request" | "not_found"), "{error}: {message}");
        assert!(!message.is_empty());
    }

    // The same session still delivers.
    let ta = alice.token().await;
    let sent = alice
        .send(&ta, &bob.device_id, "still-here", b"sealed")
        .await;
    assert_eq!(sent.status(), 200);
    let frame = next_frame(&mut ws).await;
    assert!(
        matches!(&frame, ServerFrame::Envelope(e) if e.id == "still-here"),
        "{frame:?}"
    );
    drop(ws);
    assert_eq!(
        bob.queued(&token).await.len(),
        1,
        "unacked, it stays queued"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_malformed_bodies_are_refused_with_json() {
    let (server, _dir) = start(ServerConfig::default()).await;
    let alice = Device::register(server.url(), "alice").await;
    let token = alice.token().await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/messages", server.url());

    // Its own client: after a 413 the server stops reading and closes the
    // connection, which a pooled client might otherwise reuse.
    let huge = "A".repeat(2 * 1024 * 1024);
    let r = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"envelopes":[{{"id":"x","to_device":"y","kind":1,"ciphertext":"{huge}"}}]}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<ErrorBody>().await.unwrap().error,
        "payload_too_large"
    );

    for body in ["{", "[]", r#"{"envelopes": 5}"#] {
        let r = http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(
            r.json::<ErrorBody>().await.unwrap().error,
            "bad_request",
            "{body}"
        );
    }

    // An envelope too large to be a message, under the body limit.
    let device = alice.device_id.clone();
    let big = base64_of(&vec![7u8; 100 * 1024]);
    let r = http
        .post(&url)
        .bearer_auth(&token)
        .json(&serde_json::json!({"envelopes": [{"id": "x", "to_device": device, "kind": 1, "ciphertext": big}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Unknown route: JSON 404.
    let r = http
        .get(format!("{}/v1/nope", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<ErrorBody>().await.unwrap().error, "not_found");

    // And the server still serves.
    assert_eq!(
        http.get(format!("{}/healthz", server.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// The next JSON frame from the server, skipping pings.
async fn next_frame<S>(ws: &mut S) -> ServerFrame
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
