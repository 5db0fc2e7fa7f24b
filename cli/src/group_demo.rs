//! `parley demo group`: an embedded server with its SFU and N headless
//! participants (alice, bob, carol, ...) in one demo room, each through the
//! real stack (a [`join_demo_room`] run: SFrame over the SFU, keys from the
//! room's passphrase) with synthetic speech and the test pattern; then what
//! each received, scored. The room is the one the server's `/demo` page
//! joins, so a person can join the headless participants from a browser
//! ([`DemoInvite::page`]). Group calls keyed by E2E envelopes (`parley join
//! <group>`) run the same session with sender keys instead.
//!
//! Each participant records the others (audio on the sender's timeline,
//! see [`parley_client::call::group_call`]); speech is scored with PESQ-WB against the
//! looped clip the sender played, over the stretch the receiver heard.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use parley_media::audio::FRAME_SAMPLES;
use parley_media::quality::pesq_wb;
use parley_media::speech::speech_clip;
use parley_media::wav_file::read_wav;
use serde::Serialize;

use parley_client::call::devices::{AudioInput, AudioOutput, VideoInput};
use parley_client::call::group_call::{GroupCallEvent, JoinOptions, join_demo_room};
use parley_client::endpoint::Endpoint;
use parley_client::messenger::DemoRoom;

use crate::demo::{DemoError, start_server};

/// The demo room's name.
pub const DEMO_ROOM: &str = "lobby";

/// Where a person joins the demo.
#[derive(Debug, Clone)]
pub struct DemoInvite {
    /// The embedded server.
    pub url: String,
    /// The demo room.
    pub room: String,
    /// Its passphrase (random per run).
    pub passphrase: String,
}

impl DemoInvite {
    /// The browser page, room and passphrase in the fragment (which the
    /// browser does not send to the server).
    pub fn page(&self) -> String {
        format!(
            "{}/demo#room={}&passphrase={}",
            self.url, self.room, self.passphrase
        )
    }
}

/// Participant names, in joining order.
const NAMES: [&str; 8] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
];

/// Most participants the demo runs (each encodes and decodes on this
/// machine).
pub const MAX_PARTICIPANTS: usize = NAMES.len();

/// Group demo settings.
#[derive(Debug, Clone, Copy)]
pub struct GroupDemoOptions {
    /// Participants, 2 to [`MAX_PARTICIPANTS`].
    pub participants: usize,
    /// How long each stays in the call.
    pub duration: Duration,
    /// Video as well as audio.
    pub video: bool,
}

/// What one participant received.
#[derive(Debug, Clone, Serialize)]
pub struct ParticipantReport {
    /// Its name.
    pub name: String,
    /// Pictures decoded, by sender.
    pub frames_decoded: BTreeMap<String, u64>,
    /// Audio frames (packets) decrypted, by sender.
    pub audio_packets: BTreeMap<String, u64>,
    /// Simulcast layer switches in what it received (picture size
    /// changes, summed over senders).
    pub layer_switches: u64,
    /// The worst PESQ-WB over the senders it heard.
    pub pesq_wb_min: f64,
}

/// The demo's result, also written as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct GroupDemoReport {
    /// Seconds each participant stayed.
    pub duration_s: f64,
    /// One entry per participant.
    pub participants: Vec<ParticipantReport>,
}

/// Runs the group demo; `on_ready` gets the embedded server and room before
/// anyone joins, and `on_event` every participant's events.
pub async fn run_group_demo(
    options: GroupDemoOptions,
    on_ready: impl FnOnce(&DemoInvite),
    on_event: impl Fn(&str, GroupCallEvent) + Send + Sync + 'static,
) -> Result<GroupDemoReport, DemoError> {
    let n = options.participants;
    if !(2..=MAX_PARTICIPANTS).contains(&n) {
        return Err(DemoError::Media(format!(
            "a group demo has 2 to {MAX_PARTICIPANTS} participants"
        )));
    }
    let dir = tempfile::tempdir()?;
    let url = start_server(dir.path(), true).await?;
    let invite = DemoInvite {
        url: url.clone(),
        room: DEMO_ROOM.to_string(),
        passphrase: format!("{:016x}", rand::random::<u64>()),
    };
    on_ready(&invite);
    let server = std::sync::Arc::new(
        DemoRoom::new(&Endpoint::new(url)).map_err(|e| DemoError::Signaling(e.to_string()))?,
    );

    let on_event = std::sync::Arc::new(on_event);
    let mut tasks = Vec::new();
    for name in &NAMES[..n] {
        let name = name.to_string();
        let (server, invite) = (server.clone(), invite.clone());
        let record = dir.path().join(format!("{name}-received"));
        let on_event = on_event.clone();
        let join = JoinOptions {
            duration: Some(options.duration),
            audio_in: AudioInput::Speech,
            audio_out: AudioOutput::Null,
            video_in: if options.video {
                VideoInput::Pattern
            } else {
                VideoInput::Null
            },
            record: Some(record.clone()),
            bind: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        };
        tasks.push(tokio::spawn(async move {
            let mut events = |e: GroupCallEvent| on_event(&name, e);
            let summary = join_demo_room(
                &server,
                &invite.room,
                &name,
                &invite.passphrase,
                &join,
                &mut events,
                std::future::pending(),
            )
            .await
            .map_err(|e| DemoError::Signaling(format!("{name}: {e}")))?;
            Ok::<_, DemoError>((name, summary, record))
        }));
        // Joins a moment apart, as people do.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let clip = speech_clip().map_err(|e| DemoError::Media(e.to_string()))?;
    let mut participants = Vec::new();
    for task in tasks {
        let (name, summary, record) = task
            .await
            .map_err(|e| DemoError::Signaling(format!("participant task: {e}")))??;
        let mut report = ParticipantReport {
            name,
            frames_decoded: BTreeMap::new(),
            audio_packets: BTreeMap::new(),
            layer_switches: 0,
            pesq_wb_min: f64::NAN,
        };
        for peer in &summary.peers {
            report
                .frames_decoded
                .insert(peer.user.clone(), peer.pictures);
            report
                .audio_packets
                .insert(peer.user.clone(), peer.audio_frames);
            report.layer_switches += peer.layer_switches;
            let wav = record
                .join(format!("{}-{}", peer.user, peer.device))
                .join("audio.wav");
            let score = score_speech(&clip, &wav)?;
            if report.pesq_wb_min.is_nan() || score < report.pesq_wb_min {
                report.pesq_wb_min = score;
            }
        }
        participants.push(report);
    }
    Ok(GroupDemoReport {
        duration_s: options.duration.as_secs_f64(),
        participants,
    })
}

/// PESQ-WB of a recording on the sender's timeline against the looped
/// clip, over the stretch from the first to the last frame heard.
fn score_speech(clip: &[i16], wav: &Path) -> Result<f64, DemoError> {
    let Ok(heard) = read_wav(wav) else {
        return Ok(f64::NAN);
    };
    let frames: Vec<&[i16]> = heard.chunks(FRAME_SAMPLES).collect();
    let loud = |f: &&[i16]| f.iter().any(|&s| s != 0);
    let (Some(first), Some(last)) = (frames.iter().position(loud), frames.iter().rposition(loud))
    else {
        return Ok(f64::NAN);
    };
    let (start, end) = (first * FRAME_SAMPLES, (last + 1) * FRAME_SAMPLES);
    if end - start < 2 * 48_000 {
        return Ok(f64::NAN);
    }
    let reference: Vec<i16> = clip
        .iter()
        .copied()
        .cycle()
        .skip(start)
        .take(end - start)
        .collect();
    pesq_wb(&reference, &heard[start..end]).map_err(|e| DemoError::Media(e.to_string()))
}
