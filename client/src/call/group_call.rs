//! The shell behind `parley join <group>`: gets a join token for the
//! group's call, joins the SFU with a [`GroupSession`], moves audio and
//! video on the wall clock, and carries sender keys over the messenger's
//! E2E channel (a [`CallSignal::SenderKey`] per recipient device).
//! [`join_demo_room`] is the same call in a demo room (`parley join --room`):
//! no account, keys from the room passphrase, as the browser demo joins.
//!
//! Received audio is mixed (summed, saturating) into `--audio-out`;
//! `--record DIR` writes each other participant's audio and video to
//! `DIR/<user>-<device>/audio.wav` and `video.y4m`. The audio is placed on
//! the sender's own timeline (by RTP timestamp: sample 0 is the first the
//! sender sent, silence where nothing was heard, concealment where a frame
//! was lost), so it lines up with what the sender captured; video starts
//! at the first picture decoded.
// The IO shell of a group call: it stamps inputs and timers with the wall clock for the sans-IO `GroupSession`.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parley_media::audio::{AudioFrame, AudioSink, FRAME_SAMPLES};

use parley_media::video::{I420Frame, VideoSink, VideoSource};
use parley_media::wav_file::WavSink;
use parley_media::y4m_file::{Y4mHeader, Y4mSink};
use serde::Serialize;

use super::devices::{
    AudioInput, AudioOutput, DeviceError, VideoInput, open_audio_input, open_audio_output,
    open_video_input,
};
use super::group_session::{GroupEvent, GroupKeys, GroupSession, GroupSessionError, Publish};
use super::phone::media_socket;
use super::runner::{CONNECT_TIMEOUT, candidate_addr};
use super::signal::CallSignal;
use crate::messenger::{Connection, DemoRoom, Event, Messenger, MessengerError};
use parley_wire::api::ServerFrame;

/// Audio frame length.
const FRAME: Duration = Duration::from_millis(20);

/// Why a group call could not be joined or failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupCallError {
    /// The server refused or could not be reached.
    #[error(transparent)]
    Messenger(#[from] MessengerError),
    /// The media socket failed.
    #[error("media socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The session failed.
    #[error(transparent)]
    Session(#[from] GroupSessionError),
    /// A device could not be opened.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A device or recording failed while running.
    #[error("media: {0}")]
    Media(#[from] parley_media::Error),
    /// ICE/DTLS to the SFU did not come up.
    #[error("could not connect to the SFU within {0:?}")]
    ConnectTimeout(Duration),
    /// The server's websocket closed.
    #[error("the server closed the connection")]
    Closed,
}

/// What to join with.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// Leave after this long connected.
    pub duration: Option<Duration>,
    /// Microphone, file or synthetic source.
    pub audio_in: AudioInput,
    /// Speaker, file or discard (everyone else, mixed).
    pub audio_out: AudioOutput,
    /// Camera, file, pattern or none.
    pub video_in: VideoInput,
    /// Record each other participant here.
    pub record: Option<PathBuf>,
    /// The local address for media.
    pub bind: Option<IpAddr>,
}

/// What the user should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCallEvent {
    /// Connected to the SFU in this room.
    Connected(String),
    /// Someone is in the call.
    Joined(String),
    /// Someone left, and why.
    Left(String, String),
    /// Someone speaks.
    Speaker(String),
    /// Something went wrong but the call goes on.
    Warning(String),
}

/// One other participant, at the end.
#[derive(Debug, Clone, Serialize)]
pub struct PeerSummary {
    /// Handle.
    pub user: String,
    /// Device id.
    pub device: String,
    /// Audio frames decrypted.
    pub audio_frames: u64,
    /// Pictures decoded.
    pub pictures: u64,
    /// Times the picture size changed (simulcast layer switches).
    pub layer_switches: u64,
    /// Frames that did not decrypt.
    pub decrypt_failures: u64,
}

/// How the call went.
#[derive(Debug, Clone, Serialize)]
pub struct GroupCallSummary {
    /// The SFU room.
    pub room: String,
    /// Seconds connected.
    pub media_s: f64,
    /// Everyone this participant received, including those who left.
    pub peers: Vec<PeerSummary>,
    /// Active speakers announced, in order.
    pub speakers: Vec<String>,
    /// Sender keys sent and received.
    pub keys_sent: u64,
    /// Sender keys received.
    pub keys_received: u64,
}

/// Per-participant recording.
struct Recording {
    audio: WavSink,
    /// Samples written to `audio` so far (the sender's timeline).
    audio_samples: u64,
    /// The video file and the picture size it keeps.
    video: Option<(Y4mSink, (usize, usize))>,
    dir: PathBuf,
}

/// Joins the call of `group` (an id) and runs it until `stop` resolves or
/// the duration is up.
pub async fn join_group(
    m: &mut Messenger,
    conn: &mut Connection,
    group: &str,
    options: &JoinOptions,
    events: &mut (dyn FnMut(GroupCallEvent) + Send),
    stop: impl std::future::Future<Output = ()>,
) -> Result<GroupCallSummary, GroupCallError> {
    let grant = m.group_call(group).await?;
    let (mut call, offer) =
        Call::offer(m.server(), grant.room, GroupKeys::SenderKeys, options).await?;
    let answer = m.sfu_join(&call.room, &grant.token, &offer).await?;
    call.session.accept_answer(Instant::now(), &answer)?;
    run(call, Some((m, conn)), options, events, stop).await
}

/// Joins demo room `room` (on a server run with `--demo`) as `name`, with
/// media keyed by `passphrase`, and runs it like [`join_group`].
pub async fn join_demo_room(
    server: &DemoRoom,
    room: &str,
    name: &str,
    passphrase: &str,
    options: &JoinOptions,
    events: &mut (dyn FnMut(GroupCallEvent) + Send),
    stop: impl std::future::Future<Output = ()>,
) -> Result<GroupCallSummary, GroupCallError> {
    let grant = server.join(room, name).await?;
    let keys = GroupKeys::Passphrase {
        passphrase: passphrase.to_string(),
        user: grant.user,
        device: grant.device,
    };
    let (mut call, offer) = Call::offer(server.server(), grant.room, keys, options).await?;
    let answer = server.sfu_join(&call.room, &grant.token, &offer).await?;
    call.session.accept_answer(Instant::now(), &answer)?;
    run(call, None, options, events, stop).await
}

/// A joined call, before its media runs.
struct Call {
    session: GroupSession,
    socket: tokio::net::UdpSocket,
    room: String,
    video_in: Option<Box<dyn VideoSource + Send>>,
    /// Read to choose how to publish; sent first.
    first_picture: Option<I420Frame>,
}

impl Call {
    /// Opens the media socket (toward `server`) and the video source, and
    /// makes the session's offer for the SFU.
    async fn offer(
        server: &str,
        room: String,
        keys: GroupKeys,
        options: &JoinOptions,
    ) -> Result<(Self, String), GroupCallError> {
        let socket = media_socket(server, options.bind).await?;
        let local = candidate_addr(socket.local_addr()?);
        let (video_in, first_picture, publish) = open_video(options)?;
        let (session, offer) = GroupSession::offer(Instant::now(), local, &room, publish, keys)?;
        let call = Self {
            session,
            socket,
            room,
            video_in,
            first_picture,
        };
        Ok((call, offer))
    }
}

/// Sources at least this wide are published as simulcast (their half size
/// is still a useful picture); smaller ones as one stream.
const SIMULCAST_MIN_WIDTH: usize = 640;

/// A video source, its first picture, and how it will be published.
type OpenedVideo = (
    Option<Box<dyn VideoSource + Send>>,
    Option<I420Frame>,
    Publish,
);

/// Opens the video input and reads its first picture, which decides how
/// to publish.
fn open_video(options: &JoinOptions) -> Result<OpenedVideo, GroupCallError> {
    let Some(mut source) = open_video_input(&options.video_in)? else {
        return Ok((None, None, Publish::Audio));
    };
    let first = source.next_frame()?;
    let publish = match &first {
        Some(p) if p.width() >= SIMULCAST_MIN_WIDTH => Publish::Simulcast,
        _ => Publish::Video,
    };
    Ok((Some(source), first, publish))
}

/// Waits for the next websocket frame, or forever without a messenger.
async fn next_frame(
    envelopes: &mut Option<(&mut Messenger, &mut Connection)>,
) -> Option<Result<ServerFrame, MessengerError>> {
    match envelopes {
        Some((_, conn)) => conn.next_frame().await,
        None => std::future::pending().await,
    }
}

/// Runs a joined call until `stop` or the duration; sender keys go over
/// `envelopes` when there is a messenger (group calls), nowhere otherwise
/// (demo rooms).
async fn run(
    call: Call,
    mut envelopes: Option<(&mut Messenger, &mut Connection)>,
    options: &JoinOptions,
    events: &mut (dyn FnMut(GroupCallEvent) + Send),
    stop: impl std::future::Future<Output = ()>,
) -> Result<GroupCallSummary, GroupCallError> {
    let stop = futures_util::FutureExt::fuse(stop);
    tokio::pin!(stop);
    let Call {
        mut session,
        socket,
        room,
        mut video_in,
        mut first_picture,
    } = call;
    let local = candidate_addr(socket.local_addr()?);
    let mut audio_in = open_audio_input(&options.audio_in)?;
    let mut audio_out = open_audio_output(&options.audio_out)?;

    let joined_at = Instant::now();
    let mut connected_at: Option<Instant> = None;
    let mut next_audio = Instant::now();
    let mut next_video = Instant::now();
    let video_period = video_in.as_ref().map_or(Duration::from_millis(33), |v| {
        Duration::from_secs_f64(1.0 / v.frame_rate().as_f64().max(1.0))
    });
    let mut video_sent = 0u64;
    let mut recordings: HashMap<(String, String), Recording> = HashMap::new();
    let mut summary = GroupCallSummary {
        room: room.clone(),
        media_s: 0.0,
        peers: Vec::new(),
        speakers: Vec::new(),
        keys_sent: 0,
        keys_received: 0,
    };
    let mut buf = vec![0u8; 2048];
    loop {
        // Datagrams out, events handled (sender keys go out over E2E).
        while let Some((to, datagram)) = session.poll_transmit() {
            let _ = socket.send_to(&datagram, to).await;
        }
        while let Some(event) = session.poll_event() {
            match event {
                GroupEvent::Connected => {
                    connected_at.get_or_insert_with(Instant::now);
                    events(GroupCallEvent::Connected(room.clone()));
                }
                GroupEvent::Welcome(_) => {}
                GroupEvent::Joined(p) => events(GroupCallEvent::Joined(p.user)),
                GroupEvent::Left(p, reason) => events(GroupCallEvent::Left(p.user, reason)),
                GroupEvent::ActiveSpeaker(p) => {
                    summary.speakers.push(p.user.clone());
                    events(GroupCallEvent::Speaker(p.user));
                }
                GroupEvent::SendKey { to, key } => {
                    let Some((m, _)) = envelopes.as_mut() else {
                        continue;
                    };
                    let signal = CallSignal::sender_key(&room, &key);
                    match m.send_call_signal(&to.user, &to.device, signal).await {
                        Ok(()) => summary.keys_sent += 1,
                        Err(e) => events(GroupCallEvent::Warning(format!(
                            "sender key to {}: {e}",
                            to.user
                        ))),
                    }
                }
                GroupEvent::DecryptFailed(p, why) => events(GroupCallEvent::Warning(format!(
                    "{}'s media does not decrypt yet: {why}",
                    p.user
                ))),
            }
        }
        while let Some((who, picture)) = session.poll_picture() {
            if let Some(dir) = &options.record {
                let rec = recording(&mut recordings, dir, &who.user, &who.device)?;
                if rec.video.is_none() {
                    let header = Y4mHeader {
                        width: picture.width(),
                        height: picture.height(),
                        frame_rate: parley_media::video::FrameRate::fps(30),
                    };
                    let path = rec.dir.join("video.y4m");
                    let size = (picture.width(), picture.height());
                    rec.video = Some((Y4mSink::create(&path, header).map_err(invalid)?, size));
                }
                if let Some((sink, (w, h))) = &mut rec.video {
                    // A simulcast layer switch changes the size; the file
                    // keeps its first.
                    if (picture.width(), picture.height()) == (*w, *h) {
                        sink.write_frame(&picture)?;
                    } else {
                        sink.write_frame(&picture.scaled(*w, *h).map_err(invalid)?)?;
                    }
                }
            }
        }

        let now = Instant::now();
        if connected_at.is_none() && now > joined_at + CONNECT_TIMEOUT {
            return Err(GroupCallError::ConnectTimeout(CONNECT_TIMEOUT));
        }
        if let (Some(at), Some(limit)) = (connected_at, options.duration)
            && now >= at + limit
        {
            break;
        }
        let deadline = session
            .poll_timeout()
            .min(next_audio)
            .min(if video_in.is_some() {
                next_video
            } else {
                next_audio
            });
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, from) = received?;
                session.handle_receive(Instant::now(), from, local, &buf[..n])?;
            }
            frame = next_frame(&mut envelopes) => {
                let frame = frame.ok_or(GroupCallError::Closed)??;
                let Some((m, conn)) = envelopes.as_mut() else { continue };
                for event in m.process_frame(conn, frame).await? {
                    match event {
                        Event::Call(call) => match call.signal {
                            CallSignal::SenderKey { room: r, epoch, secret } if r == room => {
                                match CallSignal::decode_sender_key(epoch, &secret) {
                                    Ok(key) => {
                                        summary.keys_received += 1;
                                        session.add_key(Instant::now(), &call.from, &call.from_device, key)?;
                                    }
                                    Err(e) => events(GroupCallEvent::Warning(format!(
                                        "sender key from {}: {e}", call.from
                                    ))),
                                }
                            }
                            other => tracing::debug!(signal = ?other, "call signal ignored during a group call"),
                        },
                        Event::Undecryptable { from, reason, .. } => events(GroupCallEvent::Warning(
                            format!("an envelope from {from} does not decrypt: {reason}"),
                        )),
                        Event::Message(_) | Event::Receipt(_) => {}
                    }
                }
            }
            () = tokio::time::sleep_until(deadline.into()) => {
                let now = Instant::now();
                if now >= session.poll_timeout() {
                    session.handle_timeout(now)?;
                }
                if now >= next_audio {
                    next_audio += FRAME;
                    let frame = audio_in.next_frame()?.unwrap_or_else(AudioFrame::silence);
                    session.send_audio(now, &frame)?;
                    let mut mix = [0i32; parley_media::audio::FRAME_SAMPLES];
                    for (who, playout) in session.poll_audio(now) {
                        for (m, &s) in mix.iter_mut().zip(playout.frame.samples()) {
                            *m += i32::from(s);
                        }
                        if let (Some(dir), Some(ts)) = (&options.record, playout.rtp_timestamp) {
                            let rec = recording(&mut recordings, dir, &who.user, &who.device)?;
                            place_on_timeline(rec, u64::from(ts), &playout.frame)?;
                        }
                    }
                    let mut out = AudioFrame::silence();
                    for (o, m) in out.samples_mut().iter_mut().zip(mix) {
                        *o = m.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
                    }
                    audio_out.write_frame(&out)?;
                }
                if let Some(source) = &mut video_in
                    && now >= next_video
                {
                    next_video += video_period;
                    let picture = match first_picture.take() {
                        Some(first) => Some(first),
                        None => source.next_frame()?,
                    };
                    if let Some(picture) = picture {
                        let pts = video_period * video_sent as u32;
                        video_sent += 1;
                        session.send_video(now, &picture, pts)?;
                    }
                }
            }
            _ = &mut stop => break,
        }
    }
    session.leave(Instant::now())?;
    while let Some((to, datagram)) = session.poll_transmit() {
        let _ = socket.send_to(&datagram, to).await;
    }
    audio_out.finish()?;
    for rec in recordings.values_mut() {
        rec.audio.finish()?;
        if let Some((video, _)) = &mut rec.video {
            video.flush().map_err(invalid)?;
        }
    }
    summary.media_s = connected_at.map_or(0.0, |at| at.elapsed().as_secs_f64());
    summary.peers = session
        .remote_stats()
        .into_iter()
        .map(|(who, s)| PeerSummary {
            user: who.user,
            device: who.device,
            audio_frames: s.audio_frames,
            pictures: s.pictures,
            layer_switches: s.layer_switches,
            decrypt_failures: s.decrypt_failures,
        })
        .collect();
    Ok(summary)
}

/// Longest silence a recording pads in one go (a sender's timestamp jump
/// beyond it is not followed: a minute of zeros is not worth writing).
const MAX_PAD_SAMPLES: u64 = 60 * 48_000;

/// Writes `frame` at sample `ts` of the sender's timeline (20 ms frames
/// from 0, so whole frames): silence up to it, nothing if that stretch is
/// already written.
fn place_on_timeline(
    rec: &mut Recording,
    ts: u64,
    frame: &AudioFrame,
) -> Result<(), GroupCallError> {
    if ts < rec.audio_samples {
        return Ok(());
    }
    let gap = ts - rec.audio_samples;
    if gap <= MAX_PAD_SAMPLES {
        for _ in 0..gap / FRAME_SAMPLES as u64 {
            rec.audio.write_frame(&AudioFrame::silence())?;
        }
    }
    rec.audio.write_frame(frame)?;
    rec.audio_samples = ts + FRAME_SAMPLES as u64;
    Ok(())
}

/// A recording file error, as a media error.
fn invalid(e: impl std::fmt::Display) -> GroupCallError {
    GroupCallError::Media(parley_media::Error::Invalid(e.to_string()))
}

fn recording<'a>(
    recordings: &'a mut HashMap<(String, String), Recording>,
    dir: &Path,
    user: &str,
    device: &str,
) -> Result<&'a mut Recording, GroupCallError> {
    let key = (user.to_string(), device.to_string());
    if !recordings.contains_key(&key) {
        let dir = dir.join(format!("{user}-{device}"));
        std::fs::create_dir_all(&dir)?;
        let audio = WavSink::create(dir.join("audio.wav")).map_err(invalid)?;
        recordings.insert(
            key.clone(),
            Recording {
                audio,
                audio_samples: 0,
                video: None,
                dir,
            },
        );
    }
    Ok(recordings.get_mut(&key).expect("inserted above"))
}
