//! The real capture and playback path: cpal (ALSA `default`, which the
//! ALSA PulseAudio plugin routes to a PulseAudio server) on both ends of a
//! call. PulseAudio runs with two null sinks: `mic`, into which `paplay`
//! plays a 1 kHz tone, and `spk`, whose monitor `parec` records.
//!
//!   paplay -> mic -> mic.monitor -> alice's cpal capture -> Opus, SFrame,
//!   str0m -> bob -> bob's cpal playback -> spk -> spk.monitor -> parec
//!
//! Alice's libpulse is pointed at `mic.monitor` (PULSE_SOURCE) and bob's
//! at `spk` (PULSE_SINK). Both bob's recording and what reached the sink
//! must be dominated by the 1 kHz tone.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{parley, start_server};
use parley_media::audio::{AudioSource, FRAME_SAMPLES};
use parley_media::tone::ToneSource;
use parley_media::wav_file::{read_wav, write_wav};

const TONE_HZ: f64 = 1000.0;

/// A PulseAudio server of this test's own; killed on drop.
struct Pulse {
    runtime_dir: tempfile::TempDir,
}

impl Pulse {
    fn start() -> Self {
        let runtime_dir = tempfile::tempdir().unwrap();
        let status = Command::new("pulseaudio")
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .args([
                "--daemonize=yes",
                "--exit-idle-time=-1",
                "-n",
                "--load=module-null-sink sink_name=spk",
                "--load=module-null-sink sink_name=mic",
                "--load=module-native-protocol-unix",
                "--load=module-always-sink",
            ])
            .stderr(Stdio::null())
            .status()
            .expect("pulseaudio is installed (scripts/install-deps.sh)");
        assert!(status.success(), "pulseaudio did not start");
        let pulse = Self { runtime_dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pulse
            .command("pactl")
            .arg("info")
            .output()
            .unwrap()
            .status
            .success()
        {
            assert!(Instant::now() < deadline, "pulseaudio never answered");
            std::thread::sleep(Duration::from_millis(100));
        }
        pulse
    }

    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env("XDG_RUNTIME_DIR", self.runtime_dir.path());
        command
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.command("pulseaudio").arg("--kill").status();
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The share of `samples`' energy at `hz` (1.0 for a pure tone on it).
fn tone_share(samples: &[i16], hz: f64) -> f64 {
    let n = samples.len() as f64;
    let w = 2.0 * std::f64::consts::PI * hz / 48_000.0;
    let (mut re, mut im, mut energy) = (0.0, 0.0, 0.0);
    for (i, &s) in samples.iter().enumerate() {
        let x = f64::from(s);
        re += x * (w * i as f64).cos();
        im -= x * (w * i as f64).sin();
        energy += x * x;
    }
    if energy == 0.0 {
        return 0.0;
    }
    2.0 * (re * re + im * im) / n / energy
}

/// The loudest second of `samples`.
fn loudest_second(samples: &[i16]) -> &[i16] {
    let second = 48_000.min(samples.len());
    (0..=samples.len() - second)
        .step_by(4_800)
        .map(|start| &samples[start..start + second])
        .max_by_key(|w| w.iter().map(|&s| i64::from(s).pow(2)).sum::<i64>())
        .unwrap_or(samples)
}

fn write_tone(path: &Path, seconds: usize) {
    let mut tone = ToneSource::new(TONE_HZ, 0.3);
    let mut samples = Vec::new();
    for _ in 0..seconds * 50 {
        samples.extend_from_slice(tone.next_frame().unwrap().unwrap().samples());
    }
    assert_eq!(samples.len(), seconds * 50 * FRAME_SAMPLES);
    write_wav(path, &samples).unwrap();
}

#[test]
fn cpal_capture_and_playback_through_pulseaudio() {
    let tmp = tempfile::tempdir().unwrap();
    let pulse = Pulse::start();
    let server = start_server(&tmp.path().join("server"), &tmp.path().join("server.log"));
    let tag = std::process::id();
    let (alice, bob) = (format!("alice-{tag}"), format!("bob-{tag}"));
    let (alice_dir, bob_dir) = (tmp.path().join("alice"), tmp.path().join("bob"));
    parley(&server.url, &alice_dir, &["register", &alice]);
    parley(&server.url, &bob_dir, &["register", &bob]);

    let tone = tmp.path().join("tone.wav");
    write_tone(&tone, 20);
    let _mic = Killed(
        pulse
            .command("paplay")
            .args(["--device=mic"])
            .arg(&tone)
            .spawn()
            .unwrap(),
    );
    let sink_capture = tmp.path().join("spk.raw");
    let _recorder = Killed(
        pulse
            .command("parec")
            .args([
                "--device=spk.monitor",
                "--format=s16le",
                "--rate=48000",
                "--channels=1",
            ])
            .stdout(std::fs::File::create(&sink_capture).unwrap())
            .spawn()
            .unwrap(),
    );

    let received = tmp.path().join("bob-received");
    let mut callee = Killed(
        pulse
            .command(env!("CARGO_BIN_EXE_parley"))
            .env("PULSE_SINK", "spk")
            .arg("--server")
            .arg(&server.url)
            .arg("--data-dir")
            .arg(&bob_dir)
            .args(["listen", "--answer", "--once", "--audio-in", "tone"])
            .args(["--audio-out", "default", "--record"])
            .arg(&received)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Give the listener time to connect before the offer goes out.
    std::thread::sleep(Duration::from_secs(2));
    let call = pulse
        .command(env!("CARGO_BIN_EXE_parley"))
        .env("PULSE_SOURCE", "mic.monitor")
        .arg("--server")
        .arg(&server.url)
        .arg("--data-dir")
        .arg(&alice_dir)
        .args(["call", &bob, "--duration", "5"])
        .args(["--audio-in", "default", "--audio-out", "null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let caller_err = String::from_utf8_lossy(&call.stderr);
    assert!(call.status.success(), "alice's call failed:\n{caller_err}");

    let deadline = Instant::now() + Duration::from_secs(20);
    while callee.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "bob's listen never ended");
        std::thread::sleep(Duration::from_millis(100));
    }
    let callee_out = callee.0.wait_with_output_ref();
    assert!(callee_out.0.success(), "bob failed:\n{}", callee_out.1);

    // What bob received: alice's cpal capture of the tone.
    let recorded = read_wav(received.join("audio.wav")).unwrap();
    assert!(
        recorded.len() >= 3 * 48_000,
        "bob recorded {} samples",
        recorded.len()
    );
    let share = tone_share(loudest_second(&recorded), TONE_HZ);
    assert!(
        share > 0.5,
        "bob's recording is not the 1 kHz tone (share {share:.2})"
    );

    // What reached bob's speaker: the same tone, through cpal playback.
    std::thread::sleep(Duration::from_millis(500));
    let bytes = std::fs::read(&sink_capture).unwrap();
    let played: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    assert!(
        played.len() >= 3 * 48_000,
        "the sink saw {} samples",
        played.len()
    );
    let loud = loudest_second(&played);
    let rms = (loud.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / loud.len() as f64).sqrt();
    assert!(
        rms > 1000.0,
        "nothing audible reached the speaker (RMS {rms:.0})"
    );
    let share = tone_share(loud, TONE_HZ);
    assert!(
        share > 0.5,
        "the speaker did not play the tone (share {share:.2})"
    );
    eprintln!(
        "tone share: recorded {:.2}, speaker {share:.2}",
        tone_share(loudest_second(&recorded), TONE_HZ)
    );
}

trait WaitRef {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String);
}

impl WaitRef for Child {
    fn wait_with_output_ref(&mut self) -> (std::process::ExitStatus, String) {
        let status = self.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        (status, err)
    }
}
