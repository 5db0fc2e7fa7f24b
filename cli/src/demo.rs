//! `parley demo call`: a whole 1:1 call on one machine with no devices.
//!
//! An embedded signaling server, two registered clients (alice, bob), an
//! E2E call offer carrying the SDP and a fresh media secret, str0m on both
//! ends over loopback UDP, synthetic speech and a test pattern through
//! Opus/H.264 and SFrame, random loss on every outgoing datagram, then
//! scores: PESQ-WB of what each side played against the speech that was
//! captured, PSNR of every decoded picture against the picture captured,
//! and mouth-to-ear delay (capture timestamp to playout).
// An IO shell: it runs calls on the wall clock and stamps their inputs.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parley_media::audio::{AudioFrame, AudioSink, FRAME_SAMPLES};
use parley_media::jitter_buffer::PlayoutKind;
use parley_media::quality::{pesq_wb, psnr};
use parley_media::speech::{SpeechSource, speech_clip};
use parley_media::test_pattern::{TestPatternSource, read_frame_number};
use parley_media::video::{FrameRate, I420Frame, VideoSink};
use serde::Serialize;
use tokio::net::UdpSocket;

use parley_client::call::e2ee::MasterSecret;
use parley_client::call::media_session::MediaSession;
use parley_client::call::runner::{self, MediaIo, MediaRun, RunOptions, candidate_addr, run_media};
use parley_client::call::signal::{CallSignal, HangupReason};
use parley_client::messenger::{CallEvent, Connection, Event, Messenger, MessengerError};
use parley_client::vault::KeySource;

/// How long to wait for a signaling message.
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Demo settings.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    /// How long each side sends.
    pub duration: Duration,
    /// Random loss on each side's outgoing datagrams, percent.
    pub loss_pct: f64,
    /// Video as well as audio.
    pub video: bool,
    /// Seed for the loss.
    pub seed: u64,
}

/// Why the demo failed.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Setting up or talking to the server failed.
    #[error(transparent)]
    Messenger(#[from] MessengerError),
    /// Sockets or the embedded server failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The media session failed.
    #[error(transparent)]
    Session(#[from] parley_client::call::media_session::SessionError),
    /// The media run failed.
    #[error(transparent)]
    Run(#[from] runner::RunError),
    /// A codec or scorer failed.
    #[error("media: {0}")]
    Media(String),
    /// A signaling step did not happen.
    #[error("signaling: {0}")]
    Signaling(String),
}

/// The demo's result, also written as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Both directions connected.
    pub connected: bool,
    /// Sending time per side, seconds.
    pub duration_s: f64,
    /// Loss applied to each side's outgoing datagrams, percent.
    pub loss_pct: f64,
    /// The callee saw the caller's hangup.
    pub hangup_delivered: bool,
    /// One entry per direction.
    pub directions: Vec<DirectionReport>,
}

/// One direction's quality.
#[derive(Debug, Clone, Serialize)]
pub struct DirectionReport {
    /// Sender.
    pub from: String,
    /// Receiver.
    pub to: String,
    /// Audio.
    pub audio: AudioReport,
    /// Video, for video calls.
    pub video: Option<VideoReport>,
    /// Frames that failed SFrame decryption.
    pub decrypt_failures: u64,
    /// Round-trip time seen by the receiver, ms.
    pub rtt_ms: Option<f64>,
}

/// Audio quality of one direction.
#[derive(Debug, Clone, Serialize)]
pub struct AudioReport {
    /// PESQ-WB of the played audio against the captured speech, each
    /// played frame put back at its media time (an accelerated, i.e.
    /// dropped, frame counts as 20 ms of silence), as the audio-loss
    /// bench scores.
    pub pesq_wb: f64,
    /// PESQ-WB of the playout as heard (time-stretched by expand and
    /// accelerate), PESQ aligning it itself.
    pub pesq_wb_heard: f64,
    /// Share of media frames concealed, percent.
    pub concealed_pct: f64,
    /// Frames rebuilt from in-band FEC.
    pub fec_recovered: u64,
    /// Frames inserted to grow the jitter buffer's delay.
    pub expanded: u64,
    /// Frames dropped to shrink it.
    pub accelerated: u64,
    /// The jitter buffer's target delay at the end, ms.
    pub jitter_target_ms: f64,
    /// Capture to playout, median, ms.
    pub mouth_to_ear_ms_p50: f64,
    /// Capture to playout, 95th percentile, ms.
    pub mouth_to_ear_ms_p95: f64,
}

/// Video quality of one direction.
#[derive(Debug, Clone, Serialize)]
pub struct VideoReport {
    /// Mean PSNR of decoded pictures against the captured ones, dB.
    pub psnr_db: f64,
    /// Worst decoded picture, dB.
    pub psnr_min_db: f64,
    /// Access units sent.
    pub frames_sent: u64,
    /// Distinct pictures decoded.
    pub frames_decoded: u64,
    /// Sent pictures never shown (the previous one stayed up), percent.
    pub frozen_pct: f64,
}

/// Collects played audio.
#[derive(Clone, Default)]
struct AudioRecorder(Arc<Mutex<Vec<AudioFrame>>>);

impl AudioSink for AudioRecorder {
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<(), parley_media::Error> {
        self.0.lock().expect("recorder lock").push(frame.clone());
        Ok(())
    }
}

/// Scores each decoded picture against the test pattern it shows.
#[derive(Clone)]
struct PatternScorer {
    pattern: TestPatternSource,
    scores: Arc<Mutex<BTreeMap<u16, f64>>>,
}

impl VideoSink for PatternScorer {
    fn write_frame(&mut self, frame: &I420Frame) -> Result<(), parley_media::Error> {
        if let Some(n) = read_frame_number(frame) {
            let reference = self.pattern.frame(u64::from(n));
            if let Ok(db) = psnr(&reference, frame) {
                self.scores.lock().expect("scorer lock").insert(n, db);
            }
        }
        Ok(())
    }
}

struct Side {
    name: String,
    messenger: Messenger,
    conn: Connection,
    audio: AudioRecorder,
    video: PatternScorer,
}

/// Runs the demo call.
pub async fn run_demo(options: DemoOptions) -> Result<DemoReport, DemoError> {
    let dir = tempfile::tempdir()?;
    let url = start_server(dir.path(), false).await?;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let mut alice = new_side(&url, dir.path(), &format!("alice-{suffix}")).await?;
    let mut bob = new_side(&url, dir.path(), &format!("bob-{suffix}")).await?;

    // Alice calls: one offer per bob device, each with its own secret.
    let call_id = uuid::Uuid::new_v4().to_string();
    let secret = MasterSecret::random();
    let alice_socket = UdpSocket::bind("127.0.0.1:0").await?;
    let (alice_session, offer) = MediaSession::offer(
        Instant::now(),
        candidate_addr(alice_socket.local_addr()?),
        options.video,
        &secret,
        &call_id,
    )?;
    let bob_devices = alice.messenger.call_devices(&bob.name).await?;
    let bob_device = bob_devices
        .first()
        .ok_or_else(|| DemoError::Signaling("bob has no device".into()))?
        .clone();
    alice
        .messenger
        .send_call_signal(
            &bob.name,
            &bob_device,
            CallSignal::Offer {
                call_id: call_id.clone(),
                video: options.video,
                sdp: offer,
                media_secret: CallSignal::encode_secret(&secret),
            },
        )
        .await?;

    // Bob answers.
    let offer = next_call_signal(&mut bob).await?;
    let CallSignal::Offer {
        call_id: offered_id,
        sdp,
        media_secret,
        ..
    } = offer.signal
    else {
        return Err(DemoError::Signaling(format!(
            "expected an offer, got {:?}",
            offer.signal
        )));
    };
    let bob_secret = CallSignal::decode_secret(&media_secret)
        .map_err(|e| DemoError::Signaling(e.to_string()))?;
    let bob_socket = UdpSocket::bind("127.0.0.1:0").await?;
    let (bob_session, answer) = MediaSession::answer(
        Instant::now(),
        candidate_addr(bob_socket.local_addr()?),
        &sdp,
        &bob_secret,
        &offered_id,
    )?;
    bob.messenger
        .send_call_signal(
            &offer.from,
            &offer.from_device,
            CallSignal::Answer {
                call_id: offered_id,
                sdp: answer,
            },
        )
        .await?;

    // Alice applies the answer; media flows.
    let answer = next_call_signal(&mut alice).await?;
    let CallSignal::Answer { sdp, .. } = answer.signal else {
        return Err(DemoError::Signaling(format!(
            "expected an answer, got {:?}",
            answer.signal
        )));
    };
    let mut alice_session = alice_session;
    alice_session.accept_answer(Instant::now(), &sdp)?;

    let run_options = RunOptions {
        duration: Some(options.duration),
        linger: Duration::from_millis(600),
        send_loss: options.loss_pct / 100.0,
        seed: options.seed,
        connect_timeout: runner::CONNECT_TIMEOUT,
    };
    let alice_io = media_io(&alice, options.video)?;
    let bob_io = media_io(&bob, options.video)?;
    // Each side on its own task, so the two codecs use both cores as
    // they would on two machines.
    let alice_task = tokio::spawn(run_media(
        alice_socket,
        alice_session,
        alice_io,
        run_options,
        runner::MediaLink::detached(),
    ));
    let bob_task = tokio::spawn(run_media(
        bob_socket,
        bob_session,
        bob_io,
        RunOptions {
            seed: options.seed ^ 0x5eed,
            ..run_options
        },
        runner::MediaLink::detached(),
    ));
    let (alice_run, bob_run) = tokio::join!(alice_task, bob_task);
    let join = |e: tokio::task::JoinError| DemoError::Media(format!("media task: {e}"));
    let (alice_run, bob_run) = (alice_run.map_err(join)?, bob_run.map_err(join)?);
    let (alice_run, bob_run) = (alice_run?, bob_run?);

    // Alice hangs up; bob's device hears it over the E2E channel.
    alice
        .messenger
        .send_call_signal(
            &bob.name,
            &bob_device,
            CallSignal::Hangup {
                call_id: call_id.clone(),
                reason: HangupReason::Normal,
            },
        )
        .await?;
    let hangup = next_call_signal(&mut bob).await?;
    let hangup_delivered = matches!(hangup.signal, CallSignal::Hangup { .. });

    let connected = alice_run.connected_at.is_some() && bob_run.connected_at.is_some();
    let directions = vec![
        score(&alice, &alice_run, &bob, &bob_run, options.video)?,
        score(&bob, &bob_run, &alice, &alice_run, options.video)?,
    ];
    alice.conn.close().await;
    bob.conn.close().await;
    Ok(DemoReport {
        connected,
        duration_s: options.duration.as_secs_f64(),
        loss_pct: options.loss_pct,
        hangup_delivered,
        directions,
    })
}

/// The demos' embedded server on loopback, with an SFU on loopback too
/// when `sfu` (group calls, demo rooms on).
pub(crate) async fn start_server(dir: &Path, sfu: bool) -> Result<String, DemoError> {
    use parley_signaling::server::{Server, SfuSetup, Udp};
    let sfu = if sfu {
        SfuSetup {
            demo_rooms: true,
            ..SfuSetup::on(Udp::Default)
        }
    } else {
        SfuSetup::off()
    };
    let server = Server::builder()
        .data_dir(dir)
        .sfu(sfu)
        .start()
        .await
        .map_err(|e| DemoError::Signaling(e.to_string()))?;
    Ok(server.url().to_string())
}

async fn new_side(url: &str, dir: &Path, name: &str) -> Result<Side, DemoError> {
    let mut messenger = Messenger::register(url, &dir.join(name), KeySource::KeyFile, name).await?;
    let conn = messenger.connect().await?;
    Ok(Side {
        name: name.to_string(),
        messenger,
        conn,
        audio: AudioRecorder::default(),
        video: PatternScorer {
            pattern: pattern()?,
            scores: Arc::default(),
        },
    })
}

fn pattern() -> Result<TestPatternSource, DemoError> {
    TestPatternSource::new(640, 480, FrameRate::fps(30))
        .map_err(|e| DemoError::Media(e.to_string()))
}

fn media_io(side: &Side, video: bool) -> Result<MediaIo, DemoError> {
    let speech = SpeechSource::new(true).map_err(|e| DemoError::Media(e.to_string()))?;
    Ok(MediaIo {
        audio_in: Box::new(speech),
        audio_out: Box::new(side.audio.clone()),
        video_in: if video {
            Some(Box::new(pattern()?))
        } else {
            None
        },
        video_out: Box::new(side.video.clone()),
    })
}

/// Waits for the next call signal on `side`'s websocket.
async fn next_call_signal(side: &mut Side) -> Result<CallEvent, DemoError> {
    let wait = async {
        while let Some(frame) = side.conn.next_frame().await {
            for event in side.messenger.process_frame(&mut side.conn, frame?).await? {
                if let Event::Call(call) = event {
                    return Ok(call);
                }
            }
        }
        Err(DemoError::Signaling("websocket closed".into()))
    };
    tokio::time::timeout(SIGNAL_TIMEOUT, wait)
        .await
        .map_err(|_| DemoError::Signaling(format!("no call signal within {SIGNAL_TIMEOUT:?}")))?
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Scores what `receiver` got from `sender`.
fn score(
    sender: &Side,
    sender_run: &MediaRun,
    receiver: &Side,
    receiver_run: &MediaRun,
    video: bool,
) -> Result<DirectionReport, DemoError> {
    // The speech the sender captured: its looped clip, as many frames as
    // it sent.
    let clip = speech_clip().map_err(|e| DemoError::Media(e.to_string()))?;
    let sent = sender_run.stats.audio_frames_sent as usize;
    let reference: Vec<i16> = clip
        .iter()
        .copied()
        .cycle()
        .take(sent * FRAME_SAMPLES)
        .collect();

    // What the receiver played, put back on the sender's timeline.
    let frames = receiver.audio.0.lock().expect("recorder lock");
    let mut degraded = vec![0i16; reference.len()];
    let mut delays = Vec::new();
    // Concealment counted over the media that was sent: pulls after the
    // sender stopped are not losses.
    let (mut media_frames, mut concealed) = (0u64, 0u64);
    for (played, frame) in receiver_run.played.iter().zip(frames.iter()) {
        let Some(ts) = played.rtp_timestamp else {
            continue;
        };
        let slot = ts as usize;
        let Some(dst) = degraded.get_mut(slot..slot + FRAME_SAMPLES) else {
            continue;
        };
        dst.copy_from_slice(frame.samples());
        media_frames += 1;
        concealed += u64::from(played.kind == PlayoutKind::Concealed);
        if matches!(played.kind, PlayoutKind::Played | PlayoutKind::FecRecovered)
            && let Some(start) = sender_run.connected_at
        {
            let captured = start + Duration::from_secs_f64(f64::from(ts) / 48_000.0);
            delays.push(played.at.saturating_duration_since(captured).as_secs_f64() * 1000.0);
        }
    }
    delays.sort_by(f64::total_cmp);
    // What the listener heard, from the first frame of media on: expanded
    // and accelerated frames stretch or shrink time here, and PESQ's own
    // delay tracking follows that, as it would on a recording.
    let first = receiver_run
        .played
        .iter()
        .position(|p| p.rtp_timestamp.is_some())
        .unwrap_or(0);
    let heard: Vec<i16> = frames
        .iter()
        .skip(first)
        .flat_map(|f| f.samples().iter().copied())
        .take(reference.len())
        .collect();
    let (pesq, pesq_aligned) = if reference.len() >= 48_000 && heard.len() >= 48_000 {
        let score = |d: &[i16]| pesq_wb(&reference, d).map_err(|e| DemoError::Media(e.to_string()));
        (score(&heard)?, score(&degraded)?)
    } else {
        (f64::NAN, f64::NAN)
    };
    let video = video.then(|| {
        let scores = receiver.video.scores.lock().expect("scorer lock");
        let values: Vec<f64> = scores.values().copied().collect();
        let sent = sender_run.stats.video_frames_sent;
        let decoded = values.len() as u64;
        VideoReport {
            psnr_db: values.iter().sum::<f64>() / values.len().max(1) as f64,
            psnr_min_db: values.iter().copied().fold(f64::INFINITY, f64::min),
            frames_sent: sent,
            frames_decoded: decoded,
            frozen_pct: 100.0 * sent.saturating_sub(decoded) as f64 / sent.max(1) as f64,
        }
    });
    Ok(DirectionReport {
        from: sender.name.clone(),
        to: receiver.name.clone(),
        audio: AudioReport {
            pesq_wb: pesq_aligned,
            pesq_wb_heard: pesq,
            concealed_pct: 100.0 * concealed as f64 / media_frames.max(1) as f64,
            fec_recovered: receiver_run.jitter.fec_recovered,
            expanded: receiver_run.jitter.expanded,
            accelerated: receiver_run.jitter.accelerated,
            jitter_target_ms: receiver_run.jitter.target_delay.as_secs_f64() * 1000.0,
            mouth_to_ear_ms_p50: percentile(&delays, 0.5),
            mouth_to_ear_ms_p95: percentile(&delays, 0.95),
        },
        video,
        decrypt_failures: receiver_run.stats.decrypt_failures,
        rtt_ms: receiver_run.stats.rtt.map(|d| d.as_secs_f64() * 1000.0),
    })
}
