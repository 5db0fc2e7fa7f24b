//! `parley join`: two members of a group join its call through the real
//! `parley-server` (which embeds the SFU), each sending speech and its own
//! numbered test pattern from files; their sender keys travel as E2E
//! envelopes. Each records the other, and the recordings show the other's
//! pictures (by number) and speech.

use std::time::Duration;

use parley_media::speech::speech_clip;
use parley_media::test_pattern::read_frame_number;
use parley_media::video::VideoSource;
use parley_media::wav_file::{read_wav, write_wav};
use parley_media::y4m_file::Y4mSource;
use parley_testkit::{Process, binary, start_server, summary, write_pattern};

const SECONDS: u64 = 6;

#[test]
fn two_members_see_and_hear_each_other_through_the_sfu() {
    let _media = parley_testkit::real_time_media();
    let dir = tempfile::tempdir().unwrap();
    let dir =
        &std::env::var_os("PARLEY_KEEP_TEST_DIR").map_or(dir.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(dir).unwrap();
    let speech = dir.join("speech.wav");
    write_wav(&speech, &speech_clip().unwrap()).unwrap();
    for (name, first) in [("alice", 0), ("bob", 10_000)] {
        write_pattern(
            &dir.join(format!("{name}.y4m")),
            (320, 240),
            first,
            SECONDS + 4,
        );
    }

    let mut server_cmd = std::process::Command::new(binary("parley-server"));
    server_cmd
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("server"));
    let (server, url) = start_server(server_cmd, &dir.join("server.log"));
    let parley = |home: &str, args: &[&str]| {
        let mut command = std::process::Command::new(binary("parley"));
        command
            .args(["--server", &url, "--data-dir"])
            .arg(dir.join(home))
            .args(args);
        command
    };
    let run = |home: &str, args: &[&str]| {
        let out = parley(home, args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    run("alice", &["register", "alice"]);
    run("bob", &["register", "bob"]);
    run("alice", &["group", "create", "standup"]);
    run("alice", &["group", "add", "standup", "bob"]);

    let join = |name: &str| {
        let video = dir.join(format!("{name}.y4m")).display().to_string();
        let record = dir.join(format!("{name}-received")).display().to_string();
        let stats = dir.join(format!("{name}.jsonl")).display().to_string();
        let speech = speech.display().to_string();
        let duration = SECONDS.to_string();
        let args = [
            "join",
            "standup",
            "--video",
            "--duration",
            &duration,
            "--audio-in",
            &speech,
            "--audio-out",
            "null",
            "--video-in",
            &video,
            "--record",
            &record,
            "--stats-json",
            &stats,
        ];
        Process::spawn(name, parley(name, &args), &dir.join(format!("{name}.log")))
    };
    let mut alice = join("alice");
    alice.wait_for("in the call of standup", Duration::from_secs(20));
    let mut bob = join("bob");
    let (status, alice_out) = alice.wait(Duration::from_secs(60));
    assert!(status.success(), "alice:\n{alice_out}");
    let (status, bob_out) = bob.wait(Duration::from_secs(60));
    assert!(status.success(), "bob:\n{bob_out}");
    assert!(alice_out.contains("bob is in the call"), "{alice_out}");
    assert!(bob_out.contains("alice is in the call"), "{bob_out}");

    for (me, other, first) in [("alice", "bob", 10_000u16), ("bob", "alice", 0)] {
        let summary = summary(&dir.join(format!("{me}.jsonl")));
        assert!(summary["keys_sent"].as_u64().unwrap() >= 1, "{summary}");
        assert!(summary["keys_received"].as_u64().unwrap() >= 1, "{summary}");
        let received = std::fs::read_dir(dir.join(format!("{me}-received")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(other))
            .unwrap_or_else(|| panic!("{me} recorded nothing of {other}"));
        let mut source = Y4mSource::open(received.join("video.y4m")).unwrap();
        let mut numbers = Vec::new();
        while let Some(picture) = source.next_frame().unwrap() {
            numbers.push(read_frame_number(&picture).expect("a numbered picture"));
        }
        assert!(
            numbers.iter().all(|&n| (first..first + 1_000).contains(&n)),
            "{me} shows pictures that are not {other}'s: {numbers:?}"
        );
        assert!(
            numbers.len() >= 60,
            "{me} decoded only {} of {other}'s pictures",
            numbers.len()
        );
        let audio = read_wav(received.join("audio.wav")).unwrap();
        let loud = audio
            .chunks(960)
            .filter(|c| c.iter().map(|&s| i64::from(s).abs()).max().unwrap_or(0) > 1_000)
            .count();
        assert!(
            loud >= 50,
            "{me} heard only {loud} loud frames of {other} in {} samples",
            audio.len()
        );
        eprintln!(
            "{me} got {} pictures and {loud} loud audio frames from {other}",
            numbers.len()
        );
    }
    drop(server);
}
