//! A device over its request rate gets 429 `rate_limited` with a
//! Retry-After; other devices are unaffected.

use parley_signaling::ServerConfig;
use parley_wire::api::ErrorBody;

use crate::device::{Device, start};

#[tokio::test(flavor = "multi_thread")]
async fn a_device_over_its_rate_is_refused_and_others_are_not() {
    let (server, _dir) = start(ServerConfig {
        rate_per_second: 0.5,
        rate_burst: 20.0,
        ..ServerConfig::default()
    })
    .await;
    let alice = Device::register(server.url(), "alice").await;
    let bob = Device::register(server.url(), "bob").await;
    let (ta, tb) = (alice.token().await, bob.token().await);
    let count = |t: String| {
        let http = alice.http().clone();
        let url = alice.at("/v1/keys/count");
        async move { http.get(url).bearer_auth(t).send().await.unwrap() }
    };
    let mut limited = None;
    for _ in 0..25 {
        let r = count(ta.clone()).await;
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("refused within 25 requests");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "retry after {retry}");
    assert_eq!(r.json::<ErrorBody>().await.unwrap().error, "rate_limited");
    assert_eq!(count(tb).await.status(), 200, "bob has his own bucket");
}
