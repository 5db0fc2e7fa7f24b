//! `parley demo call`'s engine end to end: embedded server, two clients,
//! an E2E offer and answer, str0m on both ends over loopback UDP, speech
//! and test-pattern video through Opus/H.264 and SFrame, 5 % random loss
//! each way, then a hangup over the E2E channel. Both directions must
//! connect, decode and score as speech and pictures.
//!
//! Thresholds here are for "the call works" on a debug build sharing two
//! cores between both ends; the quality targets are measured by
//! `parley demo call` on a release build (see the README).

use std::time::Duration;

use parley_cli::demo::{DemoOptions, run_demo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::await_holding_lock)] // One runtime per test; only other tests wait on the guard.
async fn a_lossy_video_call_connects_decodes_and_hangs_up() {
    let _media = parley_testkit::real_time_media();
    let report = run_demo(DemoOptions {
        duration: Duration::from_secs(4),
        loss_pct: 5.0,
        video: true,
        seed: 7,
    })
    .await
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(report.connected);
    assert!(report.hangup_delivered);
    assert_eq!(report.directions.len(), 2);
    for d in &report.directions {
        assert_eq!(d.decrypt_failures, 0, "{} -> {}", d.from, d.to);
        assert!(
            d.audio.pesq_wb > 1.8,
            "{} -> {}: {:?}",
            d.from,
            d.to,
            d.audio
        );
        assert!(d.audio.concealed_pct < 10.0, "{:?}", d.audio);
        let video = d.video.as_ref().expect("a video call reports video");
        assert!(video.frames_sent >= 90, "{video:?}");
        assert!(
            video.frames_decoded * 10 >= video.frames_sent * 8,
            "{video:?}"
        );
        assert!(video.psnr_db >= 30.0, "{video:?}");
    }
    // 5 % loss each way: in-band FEC must have rebuilt some frames.
    let recovered: u64 = report
        .directions
        .iter()
        .map(|d| d.audio.fec_recovered)
        .sum();
    assert!(recovered > 0);
}
