//! A caught-up session pushes envelopes as they commit, from memory; one
//! that falls behind (its client not reading) reads the store again and
//! still delivers everything, in order, once. Driven through the
//! session's generic sink and stream, with a client that stops reading.

use axum::extract::ws::Message;
use parley_signaling::ServerConfig;
use parley_signaling::ws::run_session;
use parley_wire::api::ServerFrame;
use tokio_util::sync::PollSender;

use crate::device::{Device, start};

fn frame(message: Message) -> ServerFrame {
    let Message::Text(text) = message else {
        panic!("a text frame, got {message:?}");
    };
    serde_json::from_str(text.as_str()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_that_falls_behind_still_delivers_everything_in_order() {
    let (server, _dir) = start(ServerConfig::default()).await;
    let alice = Device::register(server.url(), "alice").await;
    let bob = Device::register(server.url(), "bob").await;
    let ta = alice.token().await;

    // Bob's client: a one-frame buffer it reads only when told to.
    let (to_client, mut client) = tokio::sync::mpsc::channel::<Message>(1);
    let session = tokio::spawn(run_session(
        server.state().clone(),
        bob.device_id.clone(),
        bob.handle.clone(),
        PollSender::new(to_client),
        futures_util::stream::pending(),
    ));
    assert_eq!(frame(client.recv().await.unwrap()), ServerFrame::Drained);

    // Far more than the hub keeps per device, while the client reads
    // nothing: the session blocks on its first push and falls behind.
    let ids: Vec<String> = (0..60).map(|i| format!("m{i:02}")).collect();
    for id in &ids {
        let r = alice
            .send_many(&ta, &bob.device_id, std::slice::from_ref(id))
            .await;
        assert_eq!(r.status(), 200);
    }
    let mut received = Vec::new();
    while received.len() < ids.len() {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), client.recv())
            .await
            .expect("every envelope arrives")
            .expect("the session is open");
        match frame(next) {
            ServerFrame::Envelope(e) => received.push(e.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, ids, "in order, each once");
    // Nothing more (no duplicates behind them).
    let extra = tokio::time::timeout(std::time::Duration::from_millis(300), client.recv()).await;
    assert!(extra.is_err(), "an extra frame: {extra:?}");
    session.abort();
}
