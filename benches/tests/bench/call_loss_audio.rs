//! `parley-bench loss` on audio: a real call's media path (Opus, SFrame,
//! str0m on both ends, the jitter buffer) over a lossy simulated link
//! scores speech with PESQ-WB and repeats exactly from its seed; the
//! protections it compares (adaptive FEC, RED) do what they claim.

use std::time::Duration;

use parley_bench::audio_loss::LossKind;
use parley_bench::call_loss::{CallLossBench, Condition, Job, Media, Protection};

fn bench() -> CallLossBench {
    CallLossBench {
        conditions: Vec::new(),
        media: vec![Media::Audio],
        protections: Vec::new(),
        runs: 1,
        seed: 7,
        warmup: Duration::from_secs(4),
        video_duration: Duration::from_secs(1),
        threads: 1,
    }
}

fn job(loss_pct: u8, protection: Protection) -> Job {
    Job {
        condition: Condition {
            kind: LossKind::Random,
            mean_burst: 1.0,
            loss_pct,
            rtt_ms: 100,
            jitter_ms: 30,
        },
        media: Media::Audio,
        protection,
    }
}

/// The first 4 s of the speech clip keep the test short.
fn speech() -> Vec<i16> {
    let mut clip = parley_media::speech::speech_clip().unwrap();
    clip.truncate(48_000 * 4);
    clip
}

#[test]
fn speech_through_a_lossy_call_is_scored_and_repeats_from_its_seed() {
    let speech = speech();
    let bench = bench();
    let clean = bench
        .run_job(&speech, job(0, Protection::AdaptiveFec))
        .unwrap();
    let lossy = bench.run_job(&speech, job(10, Protection::Plc)).unwrap();
    let protected = bench
        .run_job(&speech, job(10, Protection::AdaptiveFec))
        .unwrap();
    println!("{clean:?}\n{lossy:?}\n{protected:?}");

    // Loss-free, only the codec costs anything.
    let clean_pesq = clean.pesq_wb.unwrap();
    assert!(clean_pesq > 3.8, "loss-free PESQ-WB {clean_pesq}");
    assert_eq!(clean.concealed_pct, Some(0.0));
    assert_eq!(clean.measured_loss_pct, 0.0);
    assert!(clean.psnr_db.is_none() && clean.frozen_pct.is_none());
    // 40 kbit/s and more: Opus at 48 kbit/s plus the SFrame header.
    assert!(clean.bitrate_kbps > 40.0, "{}", clean.bitrate_kbps);

    // The link lost what it was told to, both rows saw the same pattern
    // (same seed), and FEC rebuilt part of it.
    for row in [&lossy, &protected] {
        assert!(
            (5.0..15.0).contains(&row.measured_loss_pct),
            "{}",
            row.measured_loss_pct
        );
    }
    assert_eq!(lossy.measured_loss_pct, protected.measured_loss_pct);
    assert_eq!(lossy.fec_recovered_pct, Some(0.0));
    assert!(protected.fec_recovered_pct.unwrap() > 2.0, "{protected:?}");
    assert!(protected.concealed_pct.unwrap() < lossy.concealed_pct.unwrap());
    assert!(protected.pesq_wb.unwrap() > lossy.pesq_wb.unwrap());
    assert!(lossy.pesq_wb.unwrap() < clean_pesq);

    // The same again from the same seed: media loss falls on the same
    // packets, so a fixed protection scores exactly the same. (Only the
    // control traffic's bytes may differ: str0m's RTCP is not a function
    // of the seed.)
    let fixed = bench.run_job(&speech, job(10, Protection::Fec)).unwrap();
    let again = bench.run_job(&speech, job(10, Protection::Fec)).unwrap();
    assert_eq!(
        parley_bench::call_loss::Row {
            wire_kbps: 0.0,
            ..again
        },
        parley_bench::call_loss::Row {
            wire_kbps: 0.0,
            ..fixed
        }
    );
    assert_eq!(again.measured_loss_pct, protected.measured_loss_pct);
}

#[test]
fn adaptive_fec_follows_the_loss_receiver_reports_carry() {
    let speech = speech();
    let bench = bench();
    let fixed = bench.run_job(&speech, job(20, Protection::Fec)).unwrap();
    let adaptive = bench
        .run_job(&speech, job(20, Protection::AdaptiveFec))
        .unwrap();
    let none = bench.run_job(&speech, job(20, Protection::None)).unwrap();
    println!("{fixed:?}\n{adaptive:?}\n{none:?}");
    assert_eq!(fixed.fec_loss_hint_pct, Some(10.0));
    // Twice the ~20 % reported, capped at 30.
    let hint = adaptive.fec_loss_hint_pct.unwrap();
    assert!(hint > 20.0, "FEC sized for {hint} % at 20 % loss");
    assert_eq!(none.fec_loss_hint_pct, Some(0.0));
    assert_eq!(none.fec_recovered_pct, Some(0.0));
}

#[test]
fn redundancy_rebuilds_what_fec_cannot_and_costs_bandwidth() {
    let speech = speech();
    let bench = bench();
    let fec = bench
        .run_job(&speech, job(20, Protection::AdaptiveFec))
        .unwrap();
    let red = bench.run_job(&speech, job(20, Protection::Red)).unwrap();
    let adaptive = bench
        .run_job(&speech, job(20, Protection::Adaptive))
        .unwrap();
    println!("{fec:?}\n{red:?}\n{adaptive:?}");
    // Same loss pattern; RED (two frames back in every packet, through
    // SFrame and str0m's RFC 2198 recovery) leaves far fewer gaps.
    assert_eq!(fec.measured_loss_pct, red.measured_loss_pct);
    assert!(
        red.concealed_pct.unwrap() < fec.concealed_pct.unwrap() / 2.0,
        "{red:?}"
    );
    assert!(red.pesq_wb.unwrap() > fec.pesq_wb.unwrap() + 0.5, "{red:?}");
    // At twice the bytes on the wire or more; the encoder's own output
    // does not change.
    assert!(red.wire_kbps > 2.0 * fec.wire_kbps, "{red:?}");
    assert!((red.bitrate_kbps - fec.bitrate_kbps).abs() < 5.0);
    // Calls switch it on once the receiver reports the loss.
    assert!(adaptive.wire_kbps > 1.5 * fec.wire_kbps, "{adaptive:?}");
    assert!(
        adaptive.pesq_wb.unwrap() > fec.pesq_wb.unwrap(),
        "{adaptive:?}"
    );
}
