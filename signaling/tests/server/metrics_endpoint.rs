//! `/metrics` serves Prometheus counters to the holder of the metrics
//! token only, and every one moves with traffic: a registration, an
//! envelope stored, pushed over the websocket and acknowledged there, an
//! open websocket, a refusal by the rate limiter, attachment bytes (that
//! counter once never moved).

use futures_util::{SinkExt, StreamExt};
use parley_signaling::ServerConfig;
use parley_wire::api::{ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::Message;

use crate::device::{Device, start};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_their_token_and_count_traffic() {
    let (server, _dir) = start(ServerConfig {
        metrics_token: Some("scrape-me".into()),
        envelope_rate_per_second: 0.01,
        envelope_burst: 2.0,
        ..ServerConfig::default()
    })
    .await;
    let alice = Device::register(server.url(), "alice").await;
    let bob = Device::register(server.url(), "bob").await;
    let (ta, tb) = (alice.token().await, bob.token().await);
    assert_eq!(
        alice
            .send(&ta, &bob.device_id, "counted", b"sealed")
            .await
            .status(),
        200
    );

    // Bob takes it over the websocket and acknowledges it there.
    let ws = format!("{}/v1/ws?access_token={tb}", server.url()).replace("http://", "ws://");
    let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    let pushed = loop {
        let Some(Ok(Message::Text(text))) = socket.next().await else {
            panic!("the websocket closed");
        };
        if let ServerFrame::Envelope(envelope) = serde_json::from_str(&text).unwrap() {
            break envelope;
        }
    };
    assert_eq!(pushed.id, "counted");
    let ack = ClientFrame::Ack {
        ids: vec![pushed.id],
    };
    socket
        .send(Message::Text(serde_json::to_string(&ack).unwrap().into()))
        .await
        .unwrap();
    // The ack is done when the queue is empty.
    for _ in 0..100 {
        if bob.queued(&tb).await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(bob.queued(&tb).await.is_empty(), "the ack never landed");

    // Over the envelope budget (one envelope left of two): refused.
    let ids = ["over-1".to_string(), "over-2".to_string()];
    let r = alice.send_many(&ta, &bob.device_id, &ids).await;
    assert_eq!(r.status(), 429);
    let blob = vec![7u8; 1234];
    let r = alice
        .http()
        .post(alice.at("/v1/attachments"))
        .bearer_auth(&ta)
        .header("content-type", "application/octet-stream")
        .body(blob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let http = reqwest::Client::new();
    let url = format!("{}/metrics", server.url());
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    assert_eq!(
        http.get(&url)
            .bearer_auth(&ta)
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "a device token is not the metrics token"
    );
    let text = http
        .get(&url)
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("parley_registrations_total"), 2.0);
    assert_eq!(value("parley_envelopes_stored_total"), 1.0);
    assert_eq!(value("parley_envelopes_pushed_total"), 1.0);
    assert_eq!(value("parley_envelopes_acked_total"), 1.0);
    assert_eq!(value("parley_websocket_sessions"), 1.0, "bob's, still open");
    assert_eq!(value("parley_rate_limited_total"), 1.0);
    assert_eq!(value("parley_attachment_bytes_total"), 1234.0);
    assert_eq!(
        value("parley_commit_batches_total"),
        2.0,
        "the send, the ack"
    );
    // Every series the server exports is one of the above.
    let exported: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split([' ', '{']).next())
        .collect();
    let checked = [
        "parley_registrations_total",
        "parley_envelopes_stored_total",
        "parley_envelopes_pushed_total",
        "parley_envelopes_acked_total",
        "parley_websocket_sessions",
        "parley_rate_limited_total",
        "parley_attachment_bytes_total",
        "parley_commit_batches_total",
    ];
    for name in exported {
        assert!(
            checked.contains(&name),
            "{name} is exported but not checked"
        );
    }
    drop(socket);
}
