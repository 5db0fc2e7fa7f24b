//! Every envelope a device submits counts against one per-device budget,
//! whichever way it arrives: a websocket, once open, cannot send more
//! than HTTP could (it used to skip the limit: 600 frames stored in
//! 0.8 s), and what it spent is gone for HTTP too.

use futures_util::{SinkExt, StreamExt};
use parley_signaling::ServerConfig;
use parley_wire::api::{ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::Message;

use crate::device::{Device, refusal, start};

#[tokio::test(flavor = "multi_thread")]
async fn websocket_and_http_sends_share_the_envelope_budget() {
    // A budget of 10 that refills too slowly to matter within the test.
    let (server, _dir) = start(ServerConfig {
        envelope_rate_per_second: 0.01,
        envelope_burst: 10.0,
        ..ServerConfig::default()
    })
    .await;
    let alice = Device::register(server.url(), "alice").await;
    let bob = Device::register(server.url(), "bob").await;
    let (ta, tb) = (alice.token().await, bob.token().await);

    let ws = format!("{}/v1/ws?access_token={ta}", server.url()).replace("http://", "ws://");
    let (mut socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    let mut answer = async |ids: Vec<String>| {
        let frame = ClientFrame::Send {
            envelopes: alice.envelopes(&bob.device_id, &ids),
        };
        let text = serde_json::to_string(&frame).unwrap();
        socket.send(Message::Text(text.into())).await.unwrap();
        loop {
            let Some(Ok(Message::Text(text))) = socket.next().await else {
                panic!("the websocket closed");
            };
            match serde_json::from_str(&text).unwrap() {
                ServerFrame::Stored { ids } => return Ok(ids),
                ServerFrame::Error(e) => return Err(e.error),
                _ => continue,
            }
        }
    };
    let ids = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}{i}")).collect();

    assert_eq!(answer(ids("ws-a", 6)).await.unwrap().len(), 6);
    assert_eq!(answer(ids("ws-b", 6)).await, Err("rate_limited".into()));
    // HTTP draws on what the websocket left: 4.
    let over = alice
        .send_many(&ta, &bob.device_id, &ids("http-a", 5))
        .await;
    assert_eq!(refusal(over).await, (429, "rate_limited".into()));
    let fits = alice
        .send_many(&ta, &bob.device_id, &ids("http-b", 4))
        .await;
    assert_eq!(fits.status(), 200);
    assert_eq!(answer(ids("ws-c", 1)).await, Err("rate_limited".into()));

    // Refused sends stored nothing.
    let queued = bob.queued(&tb).await;
    assert_eq!(queued.len(), 10);
    assert!(
        queued
            .iter()
            .all(|e| e.id.starts_with("ws-a") || e.id.starts_with("http-b"))
    );
}
