//! `/metrics` serves Prometheus counters to the holder of the metrics
//! token only, and the counters move with traffic.

use parley_signaling::ServerConfig;
use parley_testkit::{TestServer, inbox};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_their_token_and_count_traffic() {
    let server = TestServer::with_config(ServerConfig {
        metrics_token: Some("scrape-me".into()),
        ..ServerConfig::default()
    })
    .await;
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let b = bob.handle().to_string();
    alice.send_text(&b, "counted").await.unwrap();
    inbox(&mut bob).await;

    let http = reqwest::Client::new();
    let url = format!("{}/metrics", server.url);
    assert_eq!(http.get(&url).send().await.unwrap().status(), 401);
    let device_token = alice.token().await.unwrap();
    assert_eq!(
        http.get(&url)
            .bearer_auth(device_token)
            .send()
            .await
            .unwrap()
            .status(),
        401
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
    // The message, and bob's delivery receipt back to alice.
    assert_eq!(value("parley_envelopes_stored_total"), 2.0);
    assert_eq!(value("parley_envelopes_pushed_total"), 1.0);
    assert_eq!(value("parley_envelopes_acked_total"), 1.0);
}
