//! A 1:1 video call between "two machines": `parley-server` and alice in
//! one network namespace, bob in another, joined by a veth pair. Both send
//! speech from a WAV file and the numbered test pattern from a Y4M file,
//! with 5 % of every outgoing datagram dropped at random (user space, at
//! each sender: kernel netem is not available here), record what they
//! receive, and the recordings are scored: the call connects, both
//! directions decode, speech PESQ-WB >= 3.0, video PSNR >= 30 dB on the
//! decoded pictures with under 2 % of them frozen (never shown between the
//! first and the last picture shown), the first within half a second.
//!
//! Needs root (namespaces) and the workspace's binaries (built by
//! `cargo test --workspace`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use parley_media::audio::FRAME_SAMPLES;
use parley_media::quality::{pesq_wb, psnr};
use parley_media::speech::speech_clip;
use parley_media::test_pattern::{TestPatternSource, read_frame_number};
use parley_media::video::{FrameRate, VideoSink, VideoSource};
use parley_media::wav_file::{read_wav, write_wav};
use parley_media::y4m_file::{Y4mHeader, Y4mSink, Y4mSource};
use parley_testkit::{NetNs, Process, binary, link, namespaces_available, start_server, summary};

const SECONDS: usize = 10;
const FPS: u32 = 30;
const LOSS_PCT: &str = "5";

#[test]
fn video_call_between_two_namespaces_with_loss() {
    let _media = parley_testkit::real_time_media();
    if let Err(why) = namespaces_available() {
        panic!("this test needs network namespaces (run as root with iproute2): {why}");
    }
    let dir = tempfile::tempdir().unwrap();
    let dir =
        &std::env::var_os("PARLEY_KEEP_TEST_DIR").map_or(dir.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(dir).unwrap();
    let (speech, pattern) = (dir.join("speech.wav"), dir.join("pattern.y4m"));
    let reference_audio = write_inputs(&speech, &pattern);

    let tag = std::process::id() % 10_000;
    let (ns_a, ns_b) = (
        NetNs::new(&format!("pa{tag}")),
        NetNs::new(&format!("pb{tag}")),
    );
    link(&ns_a, "10.77.0.1", &ns_b, "10.77.0.2");

    let mut server_cmd = ns_a.command(binary("parley-server"));
    server_cmd
        .args(["--listen", "10.77.0.1:0", "--data-dir"])
        .arg(dir.join("server"));
    server_cmd
        .arg("--db")
        .arg(format!("sqlite://{}", dir.join("server.db").display()));
    let (server, url) = start_server(server_cmd, &dir.join("server.log"));

    let parley = |ns: &NetNs, home: &str, args: &[&str]| {
        let mut command = ns.command(binary("parley"));
        command
            .args(["--server", &url, "--data-dir"])
            .arg(dir.join(home))
            .args(args);
        command
    };
    for (ns, home, handle) in [(&ns_a, "alice", "alice"), (&ns_b, "bob", "bob")] {
        let out = parley(ns, home, &["register", handle]).output().unwrap();
        assert!(out.status.success(), "register {handle}: {out:?}");
    }

    let media_args = |record: &str, stats: &str, seed: &str| -> Vec<String> {
        let (speech, pattern) = (speech.display().to_string(), pattern.display().to_string());
        let record = dir.join(record).display().to_string();
        let stats = dir.join(stats).display().to_string();
        [
            "--audio-in",
            &speech,
            "--video-in",
            &pattern,
            "--audio-out",
            "null",
            "--record",
            &record,
            "--stats-json",
            &stats,
            "--send-loss",
            LOSS_PCT,
            "--seed",
            seed,
        ]
        .map(String::from)
        .to_vec()
    };

    let mut listen = vec!["listen".to_string(), "--answer".into(), "--once".into()];
    listen.extend(media_args("bob-received", "bob.jsonl", "2"));
    let mut bob = Process::spawn(
        "bob",
        parley(&ns_b, "bob", &as_strs(&listen)),
        &dir.join("bob.log"),
    );
    bob.wait_for("listening for calls", Duration::from_secs(20));

    let duration = SECONDS.to_string();
    let mut call = vec!["call", "bob", "--video", "--duration", &duration]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    call.extend(media_args("alice-received", "alice.jsonl", "1"));
    let mut alice = Process::spawn(
        "alice",
        parley(&ns_a, "alice", &as_strs(&call)),
        &dir.join("alice.log"),
    );

    let (status, alice_out) = alice.wait(Duration::from_secs(90));
    assert!(status.success(), "alice's call failed:\n{alice_out}");
    let (status, bob_out) = bob.wait(Duration::from_secs(30));
    assert!(status.success(), "bob's listen failed:\n{bob_out}");
    // The media went across the veth pair, not through loopback.
    assert!(alice_out.contains("connected to bob"), "{alice_out}");
    assert!(bob_out.contains("the other side hung up"), "{bob_out}");

    let alice_summary = summary(&dir.join("alice.jsonl"));
    let bob_summary = summary(&dir.join("bob.jsonl"));
    assert_eq!(alice_summary["connected"], true, "{alice_summary}");
    assert_eq!(bob_summary["connected"], true, "{bob_summary}");

    for (to, received, sender) in [
        ("bob", "bob-received", &alice_summary),
        ("alice", "alice-received", &bob_summary),
    ] {
        let recorded = read_wav(dir.join(received).join("audio.wav")).unwrap();
        let n = (SECONDS * 48_000).min(recorded.len());
        assert!(
            n >= (SECONDS - 1) * 48_000,
            "{to} recorded only {} samples",
            recorded.len()
        );
        let pesq = pesq_wb(&reference_audio[..n], &recorded[..n]).unwrap();
        let sent = sender["video_frames_sent"].as_u64().unwrap();
        let video = score_video(&dir.join(received).join("video.y4m"));
        // Frozen as WebRTC's freeze statistics (webrtc-stats freezeCount,
        // totalFreezesDuration) count it: a picture that stays up longer
        // than max(3 x, 150 ms +) the mean picture interval is a freeze,
        // for as long as it stays up; frozen % is that time over the time
        // between the first and last picture shown. A lower frame rate (the
        // encoder skipping pictures on a thin link) is not a freeze.
        // Before the first picture the screen is blank, not frozen (a lost
        // first keyframe costs a PLI round trip there), and after the
        // caller hangs up the callee's last pictures are still in flight:
        // both ends are bounded separately below.
        let (first, last) = (video.first, video.last);
        let missing: Vec<u64> = (first..=last)
            .filter(|n| !video.shown.contains(n))
            .collect();
        let frozen = frozen_pct(&video.shown);
        eprintln!(
            "-> {to}: PESQ-WB {pesq:.2}, PSNR mean {:.1} dB min {:.1} dB, \
             pictures {first}..={last} of {sent} sent shown, frozen {frozen:.1} %, \
             missing {missing:?}",
            video.mean, video.min
        );
        assert!(pesq >= 3.0, "speech to {to}: PESQ-WB {pesq:.2} < 3.0");
        assert!(
            sent >= (SECONDS as u64 - 1) * u64::from(FPS) * 9 / 10,
            "{sent} sent"
        );
        assert!(
            video.mean >= 30.0,
            "video to {to}: PSNR {:.1} dB",
            video.mean
        );
        assert!(frozen < 2.0, "video to {to}: {frozen:.1} % frozen");
        assert!(
            first < u64::from(FPS) / 2,
            "video to {to}: the first picture shown is number {first}"
        );
        assert!(
            last + u64::from(FPS) / 3 >= sent,
            "video to {to}: the last picture shown is {last} of {sent} sent"
        );
    }
    drop(server);
}

fn as_strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Writes the speech and test-pattern inputs; returns the speech.
fn write_inputs(speech: &Path, pattern: &Path) -> Vec<i16> {
    // Half a second more than the call, so the file does not run out.
    let samples: Vec<i16> = speech_clip()
        .unwrap()
        .iter()
        .copied()
        .cycle()
        .take((SECONDS * 50 + 25) * FRAME_SAMPLES)
        .collect();
    write_wav(speech, &samples).unwrap();
    let header = Y4mHeader {
        width: 640,
        height: 480,
        frame_rate: FrameRate::fps(FPS),
    };
    let mut sink = Y4mSink::create(pattern, header).unwrap();
    let mut source = TestPatternSource::new(640, 480, FrameRate::fps(FPS)).unwrap();
    for _ in 0..SECONDS * FPS as usize {
        sink.write_frame(&source.next_frame().unwrap().unwrap())
            .unwrap();
    }
    samples
}

/// Percent of the shown span spent frozen, by WebRTC's definition (see
/// the caller); `shown` holds pattern numbers, one per 1/FPS s.
fn frozen_pct(shown: &BTreeSet<u64>) -> f64 {
    let numbers: Vec<u64> = shown.iter().copied().collect();
    let (Some(&first), Some(&last)) = (numbers.first(), numbers.last()) else {
        return 0.0;
    };
    if numbers.len() < 2 {
        return 0.0;
    }
    let frame_ms = 1000.0 / f64::from(FPS);
    let span_ms = (last - first) as f64 * frame_ms;
    let mean_ms = span_ms / (numbers.len() - 1) as f64;
    let threshold_ms = f64::max(3.0 * mean_ms, mean_ms + 150.0);
    let frozen_ms: f64 = numbers
        .windows(2)
        .map(|w| (w[1] - w[0]) as f64 * frame_ms)
        .filter(|&interval| interval > threshold_ms)
        .fold(0.0, |total, interval| total + interval);
    100.0 * frozen_ms / span_ms
}

struct VideoScore {
    mean: f64,
    min: f64,
    /// The pattern numbers of the pictures shown.
    shown: BTreeSet<u64>,
    first: u64,
    last: u64,
}

/// PSNR of every recorded picture against the pattern picture it shows.
fn score_video(path: &Path) -> VideoScore {
    let mut source = Y4mSource::open(path).unwrap();
    let pattern = TestPatternSource::new(640, 480, FrameRate::fps(FPS)).unwrap();
    let mut scores = BTreeMap::new();
    while let Some(picture) = source.next_frame().unwrap() {
        let n = read_frame_number(&picture).expect("a decoded picture shows its number");
        let db = psnr(&pattern.frame(u64::from(n)), &picture).unwrap();
        let worst = scores.entry(n).or_insert(db);
        *worst = f64::min(*worst, db);
    }
    let values: Vec<f64> = scores.values().copied().collect();
    VideoScore {
        mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        shown: scores.keys().map(|&n| u64::from(n)).collect(),
        first: scores.keys().next().map_or(0, |&n| u64::from(n)),
        last: scores.keys().next_back().map_or(0, |&n| u64::from(n)),
    }
}
