//! `parley demo group` in-process: three participants through the embedded
//! server's SFU, sender keys over real E2E messengers; every participant
//! decodes every other's pictures and speech, and the speech scores.

use std::time::Duration;

use parley_cli::group_demo::{GroupDemoOptions, run_group_demo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // One runtime per test; only other tests wait on the guard.
async fn three_participants_decode_each_other() {
    let _media = parley_testkit::real_time_media();
    let options = GroupDemoOptions {
        participants: 3,
        duration: Duration::from_secs(5),
        video: true,
    };
    let report = run_group_demo(options, |_| {}, |_, _| {}).await.unwrap();
    let names = ["alice", "bob", "carol"];
    assert_eq!(report.participants.len(), 3);
    for p in &report.participants {
        for other in names.iter().filter(|&&n| n != p.name) {
            let pictures = p.frames_decoded.get(*other).copied().unwrap_or(0);
            let audio = p.audio_packets.get(*other).copied().unwrap_or(0);
            assert!(
                pictures >= 60,
                "{} decoded {pictures} pictures of {other}",
                p.name
            );
            assert!(
                audio >= 100,
                "{} got {audio} audio frames of {other}",
                p.name
            );
        }
        assert!(
            p.pesq_wb_min >= 3.0,
            "{}: worst PESQ-WB {:.2}",
            p.name,
            p.pesq_wb_min
        );
    }
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "name",
        "frames_decoded",
        "audio_packets",
        "layer_switches",
        "pesq_wb_min",
    ] {
        assert!(
            json["participants"][0].get(key).is_some(),
            "no {key} in {json}"
        );
    }
}
