//! A refused SFU join says what is wrong in Parley's words: a malformed
//! offer used to come back with str0m's parser debug text, which holds a
//! process memory address (`Parse error at PointerOffset(0x7f…)`), to
//! anyone, without an account, on a `--demo` server.

use parley_signaling::server::{Server, SfuSetup, Udp};
use parley_wire::api::{DemoJoinGrant, DemoJoinRequest, ErrorBody, SfuJoinRequest};

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_offer_is_refused_without_internal_detail() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::builder()
        .data_dir(dir.path())
        .sfu(SfuSetup {
            demo_rooms: true,
            ..SfuSetup::on(Udp::Default)
        })
        .start()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let grant: DemoJoinGrant = http
        .post(format!("{}/v1/demo/join", server.url()))
        .json(&DemoJoinRequest {
            room: "probe".into(),
            name: "mallory".into(),
        })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Each has a data-channel line, so it reaches the SDP parser.
    let offers = [
        "not SDP at all\r\nm=application",
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio x UDP/TLS/RTP/SAVPF 111\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
        "v=0\r\n\u{0}\u{1}\u{2}\r\nm=application",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
    ];
    for offer in offers {
        let response = http
            .post(format!("{}/v1/sfu/join", server.url()))
            .json(&SfuJoinRequest {
                room: grant.room.clone(),
                token: grant.token.clone(),
                offer: offer.to_string(),
            })
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{offer:?}");
        let body: ErrorBody = response.json().await.unwrap();
        for leak in ["0x", "PointerOffset", "Parse error", "{", "Rtc"] {
            assert!(
                !body.message.contains(leak),
                "{offer:?} answered {:?}, which contains {leak:?}",
                body.message
            );
        }
        assert!(!body.message.is_empty());
    }
    server.stop().await.unwrap();
}
