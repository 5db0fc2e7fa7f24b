//! If the media secret or the DTLS fingerprint in an offer were swapped on
//! the way (what a malicious server would have to do, and cannot, because
//! offers travel inside Olm), the call must not decode, and the client
//! must say why.

use std::time::{Duration, Instant};

use parley_client::call::e2ee::MasterSecret;
use parley_client::call::media_session::MediaSession;
use parley_client::call::runner::{MediaIo, MediaLink, MediaRun, RunError, RunOptions, run_media};
use parley_media::audio::{AudioFrame, AudioSink};
use parley_media::speech::SpeechSource;
use parley_media::video::{I420Frame, VideoSink};
use tokio::net::UdpSocket;

struct Discard;
impl AudioSink for Discard {
    fn write_frame(&mut self, _: &AudioFrame) -> Result<(), parley_media::Error> {
        Ok(())
    }
}
impl VideoSink for Discard {
    fn write_frame(&mut self, _: &I420Frame) -> Result<(), parley_media::Error> {
        Ok(())
    }
}

fn io() -> MediaIo {
    MediaIo {
        audio_in: Box::new(SpeechSource::new(true).unwrap()),
        audio_out: Box::new(Discard),
        video_in: None,
        video_out: Box::new(Discard),
    }
}

const OPTIONS: RunOptions = RunOptions {
    duration: Some(Duration::from_secs(2)),
    linger: Duration::from_millis(300),
    send_loss: 0.0,
    seed: 1,
    connect_timeout: Duration::from_secs(4),
};

/// Runs a call whose callee sees `offer` rewritten by `tamper` and uses
/// `callee_secret`.
async fn call(
    tamper: impl Fn(String) -> String,
    caller_secret: &MasterSecret,
    callee_secret: &MasterSecret,
) -> (Result<MediaRun, RunError>, Result<MediaRun, RunError>) {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (mut caller, offer) = MediaSession::offer(
        Instant::now(),
        a.local_addr().unwrap(),
        false,
        caller_secret,
        "c",
    )
    .unwrap();
    let (callee, answer) = MediaSession::answer(
        Instant::now(),
        b.local_addr().unwrap(),
        &tamper(offer),
        callee_secret,
        "c",
    )
    .unwrap();
    caller.accept_answer(Instant::now(), &answer).unwrap();
    let caller = tokio::spawn(run_media(a, caller, io(), OPTIONS, MediaLink::detached()));
    let callee = tokio::spawn(run_media(b, callee, io(), OPTIONS, MediaLink::detached()));
    (caller.await.unwrap(), callee.await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_media_secret_connects_but_never_decodes() {
    let (caller, callee) = call(|o| o, &MasterSecret::random(), &MasterSecret::random()).await;
    for run in [caller.unwrap(), callee.unwrap()] {
        assert!(
            run.connected_at.is_some(),
            "DTLS is fine; only the keys differ"
        );
        assert!(run.stats.decrypt_failures > 50, "{:?}", run.stats);
        assert_eq!(run.jitter.played + run.jitter.fec_recovered, 0);
        let why = run.decrypt_error.expect("the failure is reported");
        assert!(why.contains("SFrame"), "{why}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_dtls_fingerprint_never_connects() {
    let secret = MasterSecret::random();
    let swap = |offer: String| {
        offer
            .lines()
            .map(|line| match line.strip_prefix("a=fingerprint:sha-256 ") {
                // Same format, different certificate hash.
                Some(hash) => format!(
                    "a=fingerprint:sha-256 {}",
                    hash.replace(|c: char| c.is_ascii_hexdigit(), "A")
                ),
                None => line.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\r\n")
            + "\r\n"
    };
    let (caller, callee) = call(swap, &secret, &secret).await;
    // The callee checks the caller's certificate against the (swapped)
    // fingerprint and refuses; neither side gets media.
    let callee_connected = matches!(&callee, Ok(run) if run.connected_at.is_some());
    assert!(
        !callee_connected,
        "callee must not accept a wrong certificate"
    );
    for run in [caller, callee] {
        match run {
            Err(RunError::ConnectTimeout(_)) | Err(RunError::Session(_)) => {}
            Ok(run) => assert_eq!(run.jitter.played, 0, "no media may play"),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}
