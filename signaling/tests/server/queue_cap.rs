//! A device's queue is capped: past the cap senders get `queue_full`
//! (HTTP 429), and nothing already stored is lost. The cap covers a whole
//! send: one request cannot carry a queue past it (a 1,000-envelope send
//! used to, when the check looked only at what was stored before it).

use parley_signaling::ServerConfig;

use crate::device::{Device, refusal, start};

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_refuses_more_and_keeps_what_it_has() {
    let (server, _dir) = start(ServerConfig {
        max_queue: 3,
        ..ServerConfig::default()
    })
    .await;
    let alice = Device::register(server.url(), "alice").await;
    let bob = Device::register(server.url(), "bob").await;
    let (ta, tb) = (alice.token().await, bob.token().await);
    for i in 0..3 {
        let r = alice
            .send(&ta, &bob.device_id, &format!("m{i}"), b"sealed")
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = alice.send(&ta, &bob.device_id, "m3", b"one too many").await;
    assert_eq!(refusal(r).await, (429, "queue_full".into()));
    let queued = bob.queued(&tb).await;
    assert_eq!(
        queued.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["m0", "m1", "m2"]
    );
    // Drained, the queue takes envelopes again.
    bob.ack(&tb, queued.into_iter().map(|e| e.id).collect())
        .await;
    let r = alice.send(&ta, &bob.device_id, "m4", b"room again").await;
    assert_eq!(r.status(), 200);
    assert_eq!(bob.queued(&tb).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn one_send_cannot_carry_a_queue_past_its_cap() {
    let (server, _dir) = start(ServerConfig {
        max_queue: 3,
        ..ServerConfig::default()
    })
    .await;
    let alice = Device::register(server.url(), "alice").await;
    let bob = Device::register(server.url(), "bob").await;
    let (ta, tb) = (alice.token().await, bob.token().await);
    let ids = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i}")).collect()
    };
    let r = alice.send_many(&ta, &bob.device_id, &ids("big", 5)).await;
    assert_eq!(refusal(r).await, (429, "queue_full".into()));
    assert!(bob.queued(&tb).await.is_empty(), "all or nothing");

    let r = alice.send_many(&ta, &bob.device_id, &ids("a", 2)).await;
    assert_eq!(r.status(), 200);
    let r = alice.send_many(&ta, &bob.device_id, &ids("b", 2)).await;
    assert_eq!(refusal(r).await, (429, "queue_full".into()));
    let r = alice.send_many(&ta, &bob.device_id, &ids("c", 1)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(bob.queued(&tb).await.len(), 3);
}
