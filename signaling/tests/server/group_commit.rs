//! Sends that arrive together are stored together: one transaction (one
//! fsync) for many senders, each answered only once its envelopes are
//! committed, and everything sent is there to fetch.

use parley_signaling::ServerConfig;

use crate::device::{Device, start};

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_sends_share_transactions_and_all_are_stored() {
    let (server, _dir) = start(ServerConfig {
        // A window wide enough that concurrent sends meet in it.
        commit_window: std::time::Duration::from_millis(200),
        ..ServerConfig::default()
    })
    .await;
    let bob = Device::register(server.url(), "bob").await;
    let tb = bob.token().await;
    let mut senders = Vec::new();
    for i in 0..20 {
        let device = Device::register(server.url(), &format!("sender{i}")).await;
        let token = device.token().await;
        senders.push((device, token));
    }
    let batches_before = server.state().metrics().commit_batches.get();

    let sends = senders.iter().enumerate().map(|(i, (device, token))| {
        let ids = vec![format!("m{i}")];
        let bob = bob.device_id.clone();
        async move { device.send_many(token, &bob, &ids).await.status() }
    });
    let statuses = futures_util::future::join_all(sends).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let batches = server.state().metrics().commit_batches.get() - batches_before;
    assert!(
        batches < 10,
        "20 concurrent sends took {batches} transactions"
    );
    let queued = bob.queued(&tb).await;
    assert_eq!(queued.len(), 20);
}
