//! The IO shell around a [`MediaSession`]: one UDP socket, the wall clock,
//! and the capture and playback devices (anything behind the media core's
//! source and sink traits: files, synthetic sources, real devices).
//!
//! Capture starts when the connection is up; audio is captured and played
//! on a 20 ms tick, video at the source's frame rate. Optional random loss
//! on the way out stands in for a bad network (kernel netem is not
//! available everywhere, and user-space loss is reproducible from a seed).
// The UDP and clock shell around the sans-IO `MediaSession`.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parley_media::audio::{AudioSink, AudioSource};
use parley_media::jitter_buffer::{JitterBufferStats, PlayoutKind};
use parley_media::video::{VideoSink, VideoSource};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::media_session::{MediaSession, SessionError, SessionEvent, SessionStats};
use super::stats::LiveStats;
use parley_wire::relay;

/// Audio frame length.
const FRAME: Duration = Duration::from_millis(20);

/// STUN and relay registration are sent this many times at most...
const MAX_PROBES: u32 = 5;
/// ...first this far apart, then doubling.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// How long ICE and DTLS get before the call counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a media run ended badly.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The socket failed.
    #[error("UDP socket: {0}")]
    Io(#[from] std::io::Error),
    /// The session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A capture or playback device failed.
    #[error("media device: {0}")]
    Device(#[from] parley_media::Error),
    /// ICE/DTLS did not come up in time.
    #[error("media did not connect within {0:?}")]
    ConnectTimeout(Duration),
}

/// Where media comes from and goes to.
pub struct MediaIo {
    /// Microphone, file or synthetic audio.
    pub audio_in: Box<dyn AudioSource + Send>,
    /// Speaker, file or discard.
    pub audio_out: Box<dyn AudioSink + Send>,
    /// Camera, file or synthetic video; `None` for audio-only.
    pub video_in: Option<Box<dyn VideoSource + Send>>,
    /// Window, file or discard.
    pub video_out: Box<dyn VideoSink + Send>,
}

/// What the call's controller tells a running media loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaControl {
    /// A trickled remote ICE candidate (`candidate:...`).
    RemoteCandidate(String),
    /// Hang up: stop now.
    Stop,
}

/// What a running media loop tells the call's controller.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaNotice {
    /// ICE and DTLS are up.
    Connected,
    /// ICE lost the peer.
    Disconnected,
    /// Frames do not decrypt: why.
    DecryptFailed(String),
    /// A second's worth of statistics.
    Stats(LiveStats),
    /// A local candidate learned after the offer or answer (the
    /// server-reflexive address): trickle it to the peer.
    LocalCandidate(String),
    /// The server's relay accepted this end: a relayed path is being tried.
    RelayReady,
}

/// What the signaling server offers on UDP for this call.
#[derive(Debug, Clone)]
pub struct ServerAssist {
    /// Its STUN responder and relay.
    pub addr: SocketAddr,
    /// The relay registration (with its ticket), when the relay granted
    /// one.
    pub registration: Option<Vec<u8>>,
}

/// The channels between a media loop and its controller. Both are
/// optional: the demo and the tests run a call with neither.
#[derive(Debug, Default)]
pub struct MediaLink {
    /// Candidates and hangups coming in.
    pub control: Option<mpsc::UnboundedReceiver<MediaControl>>,
    /// Events and per-second statistics going out.
    pub notices: Option<mpsc::UnboundedSender<MediaNotice>>,
    /// The server's STUN responder and relay, if it runs them.
    pub assist: Option<ServerAssist>,
}

impl MediaLink {
    /// No controller: the run ends by its duration only.
    pub fn detached() -> Self {
        Self::default()
    }

    fn notify(&self, notice: MediaNotice) {
        if let Some(tx) = &self.notices {
            // A controller that went away does not stop the media.
            let _ = tx.send(notice);
        }
    }
}

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Stop sending after this long connected; `None` runs until stopped.
    pub duration: Option<Duration>,
    /// Keep playing this long after sending stops, so the peer's tail
    /// arrives.
    pub linger: Duration,
    /// Probability of dropping each outgoing datagram.
    pub send_loss: f64,
    /// Seed for the loss.
    pub seed: u64,
    /// Give up when ICE and DTLS are not up after this long.
    pub connect_timeout: Duration,
}

/// One pulled audio frame, in playout order.
#[derive(Debug, Clone, Copy)]
pub struct PlayedFrame {
    /// When it was played.
    pub at: Instant,
    /// What it was.
    pub kind: PlayoutKind,
    /// The RTP timestamp it stands for (48 kHz, from the sender's first
    /// frame at 0).
    pub rtp_timestamp: Option<u32>,
}

/// What a run saw.
#[derive(Debug, Clone)]
pub struct MediaRun {
    /// When the connection came up (capture started then).
    pub connected_at: Option<Instant>,
    /// Every played frame, in order (the audio sink got the same frames).
    pub played: Vec<PlayedFrame>,
    /// Session counters at the end.
    pub stats: SessionStats,
    /// Jitter buffer counters at the end.
    pub jitter: JitterBufferStats,
    /// Datagrams dropped by the loss option.
    pub dropped: u64,
    /// Datagrams sent.
    pub sent: u64,
    /// The first decryption failure, if any.
    pub decrypt_error: Option<String>,
    /// Datagrams sent through the server's relay.
    pub relayed: u64,
}

/// Runs the call's media until `duration` has passed since connecting,
/// plus `linger`, or until the controller says stop (or goes away).
pub async fn run_media(
    socket: UdpSocket,
    mut session: MediaSession,
    mut io: MediaIo,
    options: RunOptions,
    mut link: MediaLink,
) -> Result<MediaRun, RunError> {
    let mut control = link.control.take();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let started = Instant::now();
    let mut run = MediaRun {
        connected_at: None,
        played: Vec::new(),
        stats: SessionStats::default(),
        jitter: JitterBufferStats::default(),
        dropped: 0,
        sent: 0,
        decrypt_error: None,
        relayed: 0,
    };
    let assist = link.assist.take();
    let stun_id: [u8; 12] = rand::random();
    let (mut reflexive_known, mut relay_registered) = (false, false);
    let (mut probes, mut next_probe) = (0u32, started);
    let mut relayed_at_report = 0u64;
    let mut sent_at_report = 0u64;
    let video_interval = io
        .video_in
        .as_ref()
        .map(|v| Duration::from_secs_f64(1.0 / v.frame_rate().as_f64().max(1.0)));
    let (mut next_audio, mut next_video, mut next_playout) = (started, started, started);
    let mut video_index = 0u64;
    let mut audio_done = false;
    let mut video_done = false;
    let mut buf = vec![0u8; 2048];
    let mut meter = super::stats::Meter::new(started);

    loop {
        // Ask the server for our reflexive address and register with its
        // relay, again after 0.2, 0.4, 0.8, 1.6 s until it answers (UDP).
        let probing = assist.as_ref().is_some_and(|a| {
            probes < MAX_PROBES
                && !(reflexive_known && (relay_registered || a.registration.is_none()))
        });
        if let Some(assist) = assist.as_ref().filter(|_| probing)
            && Instant::now() >= next_probe
        {
            if !reflexive_known {
                send(&socket, assist.addr, &relay::binding_request(stun_id)).await;
            }
            if let (false, Some(registration)) = (relay_registered, &assist.registration) {
                send(&socket, assist.addr, registration).await;
            }
            next_probe = Instant::now() + PROBE_INTERVAL * 2u32.pow(probes.saturating_sub(1));
            probes += 1;
        }
        flush(
            &socket,
            &mut session,
            &mut rng,
            options.send_loss,
            &mut run,
            assist.as_ref(),
        )
        .await;
        let now = Instant::now();
        let end = run
            .connected_at
            .zip(options.duration)
            .map(|(t, d)| t + d + options.linger);
        if end.is_some_and(|end| now >= end) {
            break;
        }
        if run.connected_at.is_none() && now >= started + options.connect_timeout {
            return Err(RunError::ConnectTimeout(options.connect_timeout));
        }
        let mut deadline = session.poll_timeout().min(now + Duration::from_millis(100));
        if probing {
            deadline = deadline.min(next_probe);
        }
        if run.connected_at.is_some() {
            deadline = deadline.min(next_playout).min(meter.next_report());
            if !audio_done {
                deadline = deadline.min(next_audio);
            }
            if video_interval.is_some() && !video_done {
                deadline = deadline.min(next_video);
            }
        }
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, source) = received?;
                let data = &buf[..n];
                if let Some(assist) = assist.as_ref().filter(|a| a.addr == source) {
                    if let Some(mapped) = relay::binding_response(data, stun_id) {
                        reflexive_known = true;
                        match session.add_reflexive(Instant::now(), mapped) {
                            Ok(Some(line)) => link.notify(MediaNotice::LocalCandidate(line)),
                            Ok(None) => {}
                            Err(e) => tracing::debug!(error = %e, "reflexive candidate"),
                        }
                        continue;
                    }
                    if relay::is_registered_ack(data) {
                        if !relay_registered {
                            relay_registered = true;
                            session.add_relay_path(Instant::now(), assist.addr)?;
                            link.notify(MediaNotice::RelayReady);
                        }
                        continue;
                    }
                }
                if let Err(e) = session.handle_receive(Instant::now(), source, data) {
                    tracing::debug!(%source, error = %e, "datagram ignored");
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => {}
            command = recv_control(&mut control) => match command {
                Some(MediaControl::RemoteCandidate(line)) => {
                    if let Err(e) = session.add_remote_candidate(Instant::now(), &line) {
                        tracing::warn!(candidate = %line, error = %e, "remote candidate ignored");
                    }
                }
                Some(MediaControl::Stop) | None => break,
            },
        }
        let now = Instant::now();
        session.handle_timeout(now)?;
        while let Some(event) = session.poll_event() {
            match event {
                SessionEvent::Connected => {
                    if run.connected_at.is_none() {
                        run.connected_at = Some(now);
                        (next_audio, next_video, next_playout) = (now, now, now);
                        meter = super::stats::Meter::new(now);
                    }
                    link.notify(MediaNotice::Connected);
                }
                SessionEvent::Disconnected => {
                    tracing::warn!("ICE disconnected");
                    link.notify(MediaNotice::Disconnected);
                }
                SessionEvent::DecryptFailed(reason) => {
                    tracing::warn!(%reason, "media does not decrypt");
                    link.notify(MediaNotice::DecryptFailed(reason.clone()));
                    run.decrypt_error.get_or_insert(reason);
                }
            }
        }
        let Some(connected_at) = run.connected_at else {
            continue;
        };
        let sending = options.duration.is_none_or(|d| now < connected_at + d);
        while sending && !audio_done && now >= next_audio {
            match io.audio_in.next_frame()? {
                Some(frame) => session.send_audio(now, &frame)?,
                None => audio_done = true,
            }
            next_audio += FRAME;
        }
        if let (Some(interval), Some(source)) = (video_interval, io.video_in.as_mut()) {
            while sending && !video_done && now >= next_video {
                match source.next_frame()? {
                    Some(picture) => {
                        session.send_video(now, &picture, interval * video_index as u32)?
                    }
                    None => video_done = true,
                }
                video_index += 1;
                next_video += interval;
            }
        }
        while now >= next_playout {
            let out = session.poll_audio(now);
            io.audio_out.write_frame(&out.frame)?;
            run.played.push(PlayedFrame {
                at: now,
                kind: out.kind,
                rtp_timestamp: out.rtp_timestamp,
            });
            next_playout += FRAME;
        }
        while let Some(picture) = session.poll_video(now) {
            io.video_out.write_frame(&picture)?;
        }
        if now >= meter.next_report() {
            let mut stats = meter.report(now, &session);
            // Which way the last second's datagrams went.
            let relayed = run.relayed - relayed_at_report;
            let sent = run.sent - sent_at_report;
            stats.path = if relayed * 2 > sent {
                "relay"
            } else {
                "direct"
            }
            .to_string();
            (relayed_at_report, sent_at_report) = (run.relayed, run.sent);
            link.notify(MediaNotice::Stats(stats));
        }
    }
    io.audio_out.finish()?;
    run.stats = session.stats();
    run.jitter = session.jitter_stats();
    Ok(run)
}

/// The next command, or never when there is no controller.
async fn recv_control(
    control: &mut Option<mpsc::UnboundedReceiver<MediaControl>>,
) -> Option<MediaControl> {
    match control {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn flush(
    socket: &UdpSocket,
    session: &mut MediaSession,
    rng: &mut ChaCha8Rng,
    loss: f64,
    run: &mut MediaRun,
    assist: Option<&ServerAssist>,
) {
    while let Some((destination, bytes)) = session.poll_transmit() {
        if loss > 0.0 && rng.random_bool(loss.clamp(0.0, 1.0)) {
            run.dropped += 1;
            continue;
        }
        run.sent += 1;
        if assist.is_some_and(|a| a.addr == destination) {
            run.relayed += 1;
        }
        if let Err(e) = socket.send_to(&bytes, destination).await {
            // An unreachable peer is ICE's business, not a reason to stop.
            tracing::debug!(%destination, error = %e, "send failed");
        }
    }
}

/// A datagram to the server (STUN, relay registration).
async fn send(socket: &UdpSocket, to: SocketAddr, bytes: &[u8]) {
    if let Err(e) = socket.send_to(bytes, to).await {
        tracing::debug!(%to, error = %e, "send to the server failed");
    }
}

/// The local address to put in the offer for a socket bound to
/// `bound` (an unspecified address cannot be a candidate).
pub fn candidate_addr(bound: SocketAddr) -> SocketAddr {
    if bound.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
    } else {
        bound
    }
}
