//! The browser demo: headless Chromium (Debian's, driven by playwright-core
//! from `tests/browser`) joins a demo room of the real `parley-server` at
//! `/demo` beside two `parley join --room` participants, everyone's media
//! SFrame-encrypted under the room passphrase. Chromium's camera and
//! microphone are fake devices fed from files (the numbered test pattern,
//! and speech turned down below the SFU's voice threshold so it never
//! takes the floor); alice speaks first, then bob.
//!
//! The browser must decode audio and video from both CLI participants; both
//! must decode the browser's streams (its pictures scored by PSNR against
//! the file Chromium was fed); and the active speaker the page is told
//! about must go from alice to bob as they take turns.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use parley_media::quality::psnr;
use parley_media::speech::speech_clip;
use parley_media::test_pattern::{TestPatternSource, read_frame_number};
use parley_media::video::{FrameRate, VideoSource};
use parley_media::wav_file::write_wav;
use parley_media::y4m_file::Y4mSource;
use parley_testkit::{Process, binary, start_server, summary, write_pattern};

const FPS: u32 = 30;
const ROOM: &str = "browser-test";
const PASSPHRASE: &str = "correct horse battery staple";
/// How long the CLI participants stay, from connecting.
const CLI_SECONDS: u64 = 22;
/// How long the browser stays, from joining.
const BROWSER_SECONDS: u64 = 16;
/// When each CLI participant speaks (seconds into its audio file).
const ALICE_SPEAKS: (f64, f64) = (4.0, 10.0);
const BOB_SPEAKS: (f64, f64) = (11.0, 17.0);

#[test]
fn a_browser_and_two_cli_participants_share_an_encrypted_room() {
    let _media = parley_testkit::real_time_media();
    let dir = tempfile::tempdir().unwrap();
    let dir =
        &std::env::var_os("PARLEY_KEEP_TEST_DIR").map_or(dir.path().to_path_buf(), Into::into);
    std::fs::create_dir_all(dir).unwrap();
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first (scripts/install-deps.sh does)"
    );

    // Inputs: speech turns for alice and bob, quiet speech for the browser,
    // numbered test patterns (the browser's from 0, the CLIs' elsewhere).
    let clip = speech_clip().unwrap();
    let seconds = CLI_SECONDS as f64 + 4.0;
    write_wav(
        dir.join("alice.wav"),
        &turn(&clip, ALICE_SPEAKS, seconds, 1.0),
    )
    .unwrap();
    write_wav(dir.join("bob.wav"), &turn(&clip, BOB_SPEAKS, seconds, 1.0)).unwrap();
    write_wav(
        dir.join("browser.wav"),
        &turn(&clip, (0.0, seconds), seconds, 0.003),
    )
    .unwrap();
    write_pattern(&dir.join("browser.y4m"), (640, 480), 0, 10);
    write_pattern(&dir.join("alice.y4m"), (320, 240), 10_000, CLI_SECONDS + 4);
    write_pattern(&dir.join("bob.y4m"), (320, 240), 20_000, CLI_SECONDS + 4);

    let mut server_cmd = Command::new(binary("parley-server"));
    server_cmd
        .args(["--listen", "127.0.0.1:0", "--demo", "--data-dir"])
        .arg(dir.join("server"));
    let (server, url) = start_server(server_cmd, &dir.join("server.log"));

    let join = |name: &str| {
        let path = |f: String| dir.join(f).display().to_string();
        let duration = CLI_SECONDS.to_string();
        let mut command = Command::new(binary("parley"));
        command
            .args(["--server", &url, "--data-dir"])
            .arg(dir.join(name))
            .args(["join", "--room", ROOM, "--passphrase", PASSPHRASE])
            .args(["--name", name, "--video", "--duration", &duration])
            .args(["--audio-in", &path(format!("{name}.wav"))])
            .args(["--video-in", &path(format!("{name}.y4m"))])
            .args(["--audio-out", "null"])
            .args(["--record", &path(format!("{name}-received"))])
            .args(["--stats-json", &path(format!("{name}.jsonl"))]);
        Process::spawn(name, command, &dir.join(format!("{name}.log")))
    };
    let mut alice = join("alice");
    let mut bob = join("bob");
    alice.wait_for("in the call of", Duration::from_secs(30));
    bob.wait_for("in the call of", Duration::from_secs(30));

    let output = Command::new("node")
        .current_dir(&browser_dir)
        .args(["join_demo.mjs", &url, ROOM, PASSPHRASE])
        .arg(BROWSER_SECONDS.to_string())
        .arg(dir.join("browser.y4m"))
        .arg(dir.join("browser.wav"))
        .output()
        .expect("node runs (scripts/install-deps.sh installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    std::fs::write(dir.join("browser.log"), stderr.as_bytes()).unwrap();
    assert!(output.status.success(), "the browser run failed:\n{stderr}");
    let page: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("page report: {e}\n{stderr}"));
    eprintln!("browser saw: {}", page["stats"]);
    eprintln!(
        "speakers announced to the browser: {}",
        page["state"]["speakers"]
    );

    let (status, alice_out) = alice.wait(Duration::from_secs(60));
    assert!(status.success(), "alice:\n{alice_out}");
    let (status, bob_out) = bob.wait(Duration::from_secs(60));
    assert!(status.success(), "bob:\n{bob_out}");

    // The browser decoded both CLI participants, and nothing failed to
    // decrypt on its side.
    let state = &page["state"];
    assert_eq!(state["errors"], serde_json::json!([]), "{state}");
    assert_eq!(state["encryptFailures"], 0, "{state}");
    for name in ["alice", "bob"] {
        let stats = &page["stats"][name];
        let decoded = stats["framesDecoded"].as_u64().unwrap_or(0);
        let audio = stats["audioPacketsReceived"].as_u64().unwrap_or(0);
        let decrypted = &state["decrypted"][name];
        eprintln!(
            "browser <- {name}: {decoded} pictures decoded, {audio} audio packets, \
             decrypted {decrypted}"
        );
        assert!(
            decoded >= 150,
            "browser decoded {decoded} pictures of {name}"
        );
        assert!(audio >= 300, "browser got {audio} audio packets of {name}");
        assert!(
            decrypted["audio"].as_u64().unwrap_or(0) >= 300,
            "{decrypted}"
        );
    }
    // A few frames may reach the page before the SFU's track message names
    // their sender; nothing else may fail.
    let failures = state["decryptFailures"].as_u64().unwrap();
    assert!(
        failures <= 10,
        "{failures} frames did not decrypt in the browser"
    );

    // Active speaker follows who speaks: alice's turn, then bob's.
    let speakers: Vec<&str> = state["speakers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    let first_alice = speakers.iter().position(|&s| s == "alice");
    let last_bob = speakers.iter().rposition(|&s| s == "bob");
    assert!(
        matches!((first_alice, last_bob), (Some(a), Some(b)) if a < b),
        "speakers: {speakers:?}"
    );
    assert!(!speakers.contains(&"browser"), "speakers: {speakers:?}");

    // Both CLI participants decoded the browser's pictures and audio.
    let pattern = TestPatternSource::new(640, 480, FrameRate::fps(FPS)).unwrap();
    for me in ["alice", "bob"] {
        let received = dir.join(format!("{me}-received"));
        let browser = std::fs::read_dir(&received)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("browser-")
            })
            .unwrap_or_else(|| panic!("{me} recorded nothing of the browser"));
        let mut source = Y4mSource::open(browser.join("video.y4m")).unwrap();
        let mut scores = BTreeMap::new();
        let mut unreadable = 0;
        while let Some(picture) = source.next_frame().unwrap() {
            assert_eq!((picture.width(), picture.height()), (640, 480));
            match read_frame_number(&picture) {
                Some(n) => {
                    let db = psnr(&pattern.frame(u64::from(n)), &picture).unwrap();
                    scores.insert(n, db);
                }
                None => unreadable += 1,
            }
        }
        let mean = scores.values().sum::<f64>() / scores.len().max(1) as f64;
        let summary = summary(&dir.join(format!("{me}.jsonl")));
        let from_browser = summary["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["user"] == "browser")
            .cloned()
            .unwrap_or_default();
        eprintln!(
            "{me} <- browser: {} distinct pictures, PSNR {mean:.1} dB, {unreadable} unreadable; {from_browser}",
            scores.len()
        );
        assert!(scores.len() >= 150, "{me}: {} pictures", scores.len());
        assert!(mean >= 25.0, "{me}: browser video PSNR {mean:.1} dB");
        assert!(
            from_browser["audio_frames"].as_u64().unwrap_or(0) >= 300,
            "{me}: {from_browser}"
        );
        assert_eq!(from_browser["decrypt_failures"], 0, "{me}: {from_browser}");
    }
    drop(server);
}

/// `seconds` of audio: the clip (looped) between `from` and `to` seconds at
/// `gain`, silence elsewhere.
fn turn(clip: &[i16], (from, to): (f64, f64), seconds: f64, gain: f64) -> Vec<i16> {
    let rate = 48_000.0;
    (0..(seconds * rate) as usize)
        .map(|i| {
            let t = i as f64 / rate;
            if t >= from && t < to {
                (f64::from(clip[i % clip.len()]) * gain) as i16
            } else {
                0
            }
        })
        .collect()
}
