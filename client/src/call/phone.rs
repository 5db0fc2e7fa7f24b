//! The call shell behind `parley call` and `parley listen`: one device's
//! messenger connection carries the E2E call signals, a [`CallFlow`]
//! decides, a media task ([`run_media`]) moves the audio and video, and
//! everything the user should see goes out as [`PhoneEvent`]s.
//!
//! The caller forks the call: every callee device gets its own offer with
//! its own media master secret and its own str0m session (all on one UDP
//! socket, since none sends before it is answered); the session of the
//! device that answers is the one that runs.
// The IO shell of 1:1 calls: it stamps signals and timers with the wall clock for the sans-IO `CallFlow` and `MediaSession`.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::devices::{
    AudioInput, AudioOutput, DeviceError, VideoInput, open_audio_input, open_sinks,
    open_video_input,
};
use super::e2ee::MasterSecret;
use super::flow::{CallAction, CallFlow, EndReason, Side};
use super::media_session::MediaSession;
use super::runner::{
    CONNECT_TIMEOUT, MediaControl, MediaIo, MediaLink, MediaNotice, MediaRun, RunError, RunOptions,
    ServerAssist, run_media,
};
use super::signal::CallSignal;
use super::stats::LiveStats;
use crate::messenger::{CallEvent, Connection, Event, Incoming, Messenger, MessengerError};

/// Why a call could not be made or taken.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// The messenger failed (server unreachable, bad handle, ...).
    #[error(transparent)]
    Messenger(#[from] MessengerError),
    /// The media socket could not be opened.
    #[error("media socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The media session could not be created.
    #[error(transparent)]
    Session(#[from] super::media_session::SessionError),
    /// A capture or playback device could not be opened.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The server's websocket closed.
    #[error("the server closed the connection")]
    Closed,
}

/// How to call and what with.
#[derive(Debug, Clone)]
pub struct PhoneOptions {
    /// Offer video (the caller; a callee follows the offer).
    pub video: bool,
    /// Hang up after this long connected.
    pub duration: Option<Duration>,
    /// Give up ringing after this long.
    pub ring_timeout: Duration,
    /// Microphone, file or synthetic source.
    pub audio_in: AudioInput,
    /// Speaker, file or discard.
    pub audio_out: AudioOutput,
    /// Camera, file, pattern or none.
    pub video_in: VideoInput,
    /// Record what was received here (`audio.wav`, `video.y4m`).
    pub record: Option<PathBuf>,
    /// The local address for media; by default the one that routes to the
    /// signaling server.
    pub bind: Option<IpAddr>,
    /// Drop this share of outgoing datagrams (a bad network, for tests).
    pub send_loss: f64,
    /// Seed for that loss.
    pub seed: u64,
}

/// What the user should see.
#[derive(Debug, Clone)]
pub enum PhoneEvent {
    /// Offers went out.
    Dialing {
        /// Who.
        peer: String,
        /// To how many of their devices.
        devices: usize,
    },
    /// A callee device is ringing.
    Ringing,
    /// A call is coming in.
    Incoming {
        /// From whom.
        from: String,
        /// With video.
        video: bool,
    },
    /// Media is up.
    Connected,
    /// A second's statistics.
    Stats(LiveStats),
    /// A text message arrived during the call.
    Message(Incoming),
    /// Something is wrong but the call goes on (frames that do not
    /// decrypt, a malformed signal).
    Warning(String),
    /// The call is over.
    Ended(CallSummary),
}

/// How a call went, for the user and for `--stats-json`.
#[derive(Debug, Clone, Serialize)]
pub struct CallSummary {
    /// The call.
    pub call_id: String,
    /// The other party.
    pub peer: String,
    /// `caller` or `callee`.
    pub side: &'static str,
    /// Media came up.
    pub connected: bool,
    /// Why it ended.
    pub end_reason: String,
    /// Seconds media was up.
    pub media_s: f64,
    /// Opus frames sent.
    pub audio_frames_sent: u64,
    /// H.264 access units sent.
    pub video_frames_sent: u64,
    /// Pictures decoded.
    pub video_frames_decoded: u64,
    /// Keyframe requests (PLI) this side sent: each is a picture that
    /// could not be decoded or completed.
    pub plis_sent: u64,
    /// Keyframe requests the peer sent (and this side served).
    pub keyframes_requested: u64,
    /// Frames that failed SFrame decryption.
    pub decrypt_failures: u64,
    /// The first decryption failure, if any.
    pub decrypt_error: Option<String>,
    /// Share of incoming audio concealed, percent.
    pub concealed_pct: f64,
    /// Audio frames rebuilt from FEC.
    pub fec_recovered: u64,
    /// Last round-trip time, ms.
    pub rtt_ms: Option<f64>,
    /// How media went at the end: `direct` or `relay` (through the server).
    pub path: Option<String>,
    /// Datagrams this side sent through the server's relay.
    pub relayed_datagrams: u64,
}

/// The user's answer to a ringing call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Pick up.
    Answer,
    /// Refuse.
    Decline,
}

/// How `listen` treats incoming calls.
#[derive(Debug)]
pub enum AnswerPolicy {
    /// Pick up at once.
    Auto,
    /// Ask: decisions arrive on this channel.
    Ask(mpsc::UnboundedReceiver<Decision>),
    /// Let it ring (it ends as a missed call).
    Never,
}

/// A UDP socket for media on the address that routes to the signaling
/// server (or `bind`), and that address as the host candidate.
pub async fn media_socket(server: &str, bind: Option<IpAddr>) -> std::io::Result<UdpSocket> {
    let ip = match bind {
        Some(ip) => ip,
        None => route_to(server).await?,
    };
    UdpSocket::bind(SocketAddr::new(ip, 0)).await
}

/// The local address the kernel would use to reach `server` (a UDP
/// "connect" sends nothing).
async fn route_to(server: &str) -> std::io::Result<IpAddr> {
    let url = reqwest::Url::parse(server)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let host = url
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(443);
    let target = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, host.to_string()))?;
    let any: IpAddr = if target.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    let probe = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
    probe.connect(target).await?;
    Ok(probe.local_addr()?.ip())
}

/// One call in progress.
struct Active {
    flow: CallFlow,
    video: bool,
    socket: Option<UdpSocket>,
    /// Caller: a session per offered device. Callee: none (made on answer).
    sessions: HashMap<String, MediaSession>,
    /// Callee: the offer to answer.
    offer: Option<(String, MasterSecret)>,
    media: Option<Media>,
    /// The server's STUN responder and relay for this call.
    assist: Option<ServerAssist>,
    connected_at: Option<Instant>,
    last_stats: Option<LiveStats>,
}

struct Media {
    task: JoinHandle<Result<MediaRun, RunError>>,
    control: mpsc::UnboundedSender<MediaControl>,
    notices: mpsc::UnboundedReceiver<MediaNotice>,
}

/// Places a call to `peer` and runs it to the end.
pub async fn place_call(
    m: &mut Messenger,
    conn: &mut Connection,
    peer: &str,
    options: &PhoneOptions,
    events: &mut dyn FnMut(PhoneEvent),
    stop: impl std::future::Future<Output = ()>,
) -> Result<CallSummary, PhoneError> {
    let devices = m.call_devices(peer).await?;
    let socket = media_socket(m.server(), options.bind).await?;
    let local = socket.local_addr()?;
    let call_id = uuid::Uuid::new_v4().to_string();
    let assist = server_assist(m, &call_id, local).await;
    let mut sessions = HashMap::new();
    for device in &devices {
        let secret = MasterSecret::random();
        let (session, sdp) =
            MediaSession::offer(Instant::now(), local, options.video, &secret, &call_id)?;
        let offer = CallSignal::Offer {
            call_id: call_id.clone(),
            video: options.video,
            sdp,
            media_secret: CallSignal::encode_secret(&secret),
        };
        m.send_call_signal(peer, device, offer).await?;
        sessions.insert(device.clone(), session);
    }
    events(PhoneEvent::Dialing {
        peer: peer.to_string(),
        devices: devices.len(),
    });
    let flow = CallFlow::outgoing(
        Instant::now(),
        &call_id,
        peer,
        devices,
        options.ring_timeout,
    );
    let active = Active {
        flow,
        video: options.video,
        socket: Some(socket),
        sessions,
        offer: None,
        media: None,
        assist,
        connected_at: None,
        last_stats: None,
    };
    let mut never = AnswerPolicy::Never;
    let (summary, _) = drive(m, conn, active, options, &mut never, events, stop).await?;
    Ok(summary)
}

/// Waits for calls and takes them as `policy` says; returns after the
/// first call when `once`, else when `stop` completes (which also hangs up
/// a call in progress).
pub async fn listen(
    m: &mut Messenger,
    conn: &mut Connection,
    options: &PhoneOptions,
    mut policy: AnswerPolicy,
    once: bool,
    events: &mut dyn FnMut(PhoneEvent),
    stop: impl std::future::Future<Output = ()>,
) -> Result<Vec<CallSummary>, PhoneError> {
    let stop = futures_util::FutureExt::fuse(stop);
    tokio::pin!(stop);
    let mut summaries = Vec::new();
    // Offers that were queued while this device was offline wait until the
    // queue is drained: one followed by its own hangup was missed.
    let mut backlog: Vec<CallEvent> = Vec::new();
    loop {
        let offer = if conn.drained() && !backlog.is_empty() {
            let offer = backlog.remove(0);
            let ended_later = backlog.iter().any(|later| {
                later.signal.call_id() == offer.signal.call_id()
                    && matches!(later.signal, CallSignal::Hangup { .. })
            });
            backlog.retain(|later| later.signal.call_id() != offer.signal.call_id());
            if ended_later {
                events(PhoneEvent::Warning(format!(
                    "missed call from {} while offline",
                    offer.from
                )));
                continue;
            }
            offer
        } else {
            tokio::select! {
                frame = conn.next_frame() => {
                    let frame = frame.ok_or(PhoneError::Closed)??;
                    for event in m.process_frame(conn, frame).await? {
                        match event {
                            Event::Call(call) if !conn.drained() => backlog.push(call),
                            Event::Call(call) if matches!(call.signal, CallSignal::Offer { .. }) => {
                                backlog.push(call)
                            }
                            Event::Call(call) => events(PhoneEvent::Warning(format!(
                                "call signal for unknown call {} from {}: ignored",
                                call.signal.call_id(),
                                call.from
                            ))),
                            Event::Message(msg) => events(PhoneEvent::Message(msg)),
                            Event::Receipt(_) => {}
                            event @ Event::Undecryptable { .. } => {
                                events(PhoneEvent::Warning(undecryptable(&event)))
                            }
                        }
                    }
                    continue;
                }
                _ = &mut stop => return Ok(summaries),
            }
        };
        let Some(active) = ring(m, &offer, options, events).await? else {
            continue;
        };
        let (summary, stopped) =
            drive(m, conn, active, options, &mut policy, events, &mut stop).await?;
        summaries.push(summary);
        if once || stopped {
            return Ok(summaries);
        }
    }
}

/// Starts ringing for an offer; `None` when it cannot be a call.
async fn ring(
    m: &mut Messenger,
    offer: &CallEvent,
    options: &PhoneOptions,
    events: &mut dyn FnMut(PhoneEvent),
) -> Result<Option<Active>, PhoneError> {
    let CallSignal::Offer {
        call_id,
        video,
        sdp,
        media_secret,
    } = &offer.signal
    else {
        return Ok(None);
    };
    let secret = match CallSignal::decode_secret(media_secret) {
        Ok(secret) => secret,
        Err(e) => {
            events(PhoneEvent::Warning(format!(
                "call from {} refused: {e}",
                offer.from
            )));
            return Ok(None);
        }
    };
    let socket = media_socket(m.server(), options.bind).await?;
    let assist = server_assist(m, call_id, socket.local_addr()?).await;
    events(PhoneEvent::Incoming {
        from: offer.from.clone(),
        video: *video,
    });
    let flow = CallFlow::incoming(
        Instant::now(),
        call_id,
        &offer.from,
        &offer.from_device,
        options.ring_timeout,
    );
    Ok(Some(Active {
        flow,
        video: *video,
        socket: Some(socket),
        sessions: HashMap::new(),
        offer: Some((sdp.clone(), secret)),
        media: None,
        assist,
        connected_at: None,
        last_stats: None,
    }))
}

/// Runs one call until its flow ends; also says whether `stop` fired.
async fn drive(
    m: &mut Messenger,
    conn: &mut Connection,
    mut call: Active,
    options: &PhoneOptions,
    policy: &mut AnswerPolicy,
    events: &mut dyn FnMut(PhoneEvent),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(CallSummary, bool), PhoneError> {
    tokio::pin!(stop);
    let mut stopped = false;
    if matches!(policy, AnswerPolicy::Auto) && call.flow.side() == Side::Callee {
        answer(&mut call, options);
    }
    let reason = loop {
        if let Some(reason) = carry_out(m, &mut call, options, events).await {
            break reason;
        }
        let ring_deadline = call.flow.poll_timeout();
        tokio::select! {
            frame = conn.next_frame() => {
                let frame = frame.ok_or(PhoneError::Closed)??;
                for event in m.process_frame(conn, frame).await? {
                    handle_event(m, &mut call, event, events).await;
                }
            }
            notice = next_notice(&mut call.media) => match notice {
                Some(MediaNotice::Connected) => {
                    call.connected_at.get_or_insert_with(Instant::now);
                    call.flow.media_connected();
                    events(PhoneEvent::Connected);
                }
                Some(MediaNotice::Stats(stats)) => {
                    call.last_stats = Some(stats.clone());
                    events(PhoneEvent::Stats(stats));
                }
                Some(MediaNotice::DecryptFailed(why)) => events(PhoneEvent::Warning(format!(
                    "media from {} does not decrypt: {why}", call.flow.peer()
                ))),
                Some(MediaNotice::LocalCandidate(line)) => call.flow.local_candidate(line),
                Some(MediaNotice::RelayReady) => {
                    tracing::info!(call = call.flow.call_id(), "relay path added")
                }
                Some(MediaNotice::Disconnected) => {
                    events(PhoneEvent::Warning("connection lost; waiting for it to come back".into()))
                }
                // The media task ended: by duration, or with an error.
                None => {
                    let media = call.media.take().expect("notices come from a media task");
                    match media.task.await {
                        Ok(Ok(run)) => {
                            call.flow.hangup();
                            carry_out(m, &mut call, options, events).await;
                            let summary = summarise(&call, Some(run));
                            events(PhoneEvent::Ended(summary.clone()));
                            return Ok((summary, stopped));
                        }
                        Ok(Err(e)) => call.flow.media_failed(e.to_string()),
                        Err(e) => call.flow.media_failed(format!("media task: {e}")),
                    }
                }
            },
            decision = next_decision(policy), if call.flow.side() == Side::Callee => match decision {
                Decision::Answer => answer(&mut call, options),
                Decision::Decline => call.flow.decline(),
            },
            _ = sleep_until(ring_deadline) => call.flow.handle_timeout(Instant::now()),
            _ = &mut stop, if !stopped => {
                stopped = true;
                call.flow.hangup();
            }
        }
    };
    tracing::info!(call = call.flow.call_id(), %reason, "call ended");
    let run = match call.media.take() {
        Some(media) => {
            let _ = media.control.send(MediaControl::Stop);
            match media.task.await {
                Ok(Ok(run)) => Some(run),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "media ended with an error");
                    None
                }
                Err(_) => None,
            }
        }
        None => None,
    };
    let summary = summarise(&call, run);
    events(PhoneEvent::Ended(summary.clone()));
    Ok((summary, stopped))
}

/// Carries out the flow's queued actions; the end reason once it ended.
async fn carry_out(
    m: &mut Messenger,
    call: &mut Active,
    options: &PhoneOptions,
    events: &mut dyn FnMut(PhoneEvent),
) -> Option<EndReason> {
    let mut ended = None;
    while let Some(action) = call.flow.poll_action() {
        match action {
            CallAction::Send { device, signal } => {
                let peer = call.flow.peer().to_string();
                if let Err(e) = m.send_call_signal(&peer, &device, signal).await {
                    events(PhoneEvent::Warning(format!("could not signal {peer}: {e}")));
                }
            }
            CallAction::StartMedia { device, sdp } => {
                let Some(mut session) = call.sessions.remove(&device) else {
                    call.flow
                        .media_failed(format!("answer from {device}, which was not offered"));
                    continue;
                };
                call.sessions.clear();
                match session.accept_answer(Instant::now(), &sdp) {
                    Ok(()) => start_media(call, session, options),
                    Err(e) => call.flow.media_failed(format!("bad answer: {e}")),
                }
            }
            CallAction::RemoteCandidate(line) => {
                if let Some(media) = &call.media {
                    let _ = media.control.send(MediaControl::RemoteCandidate(line));
                }
            }
            CallAction::End(reason) => ended = Some(reason),
        }
    }
    ended
}

async fn handle_event(
    m: &mut Messenger,
    call: &mut Active,
    event: Event,
    events: &mut dyn FnMut(PhoneEvent),
) {
    match event {
        Event::Call(signal) if signal.signal.call_id() == call.flow.call_id() => {
            let was_ringing = call.flow.state() == &super::flow::CallState::Ringing;
            if let Err(e) =
                call.flow
                    .handle_signal(&signal.from, &signal.from_device, &signal.signal)
            {
                events(PhoneEvent::Warning(format!("call signal ignored: {e}")));
            } else if !was_ringing
                && call.flow.side() == Side::Caller
                && call.flow.state() == &super::flow::CallState::Ringing
            {
                events(PhoneEvent::Ringing);
            }
        }
        // Someone else calls while this call is on: busy.
        Event::Call(CallEvent {
            from,
            from_device,
            signal: CallSignal::Offer { call_id, .. },
        }) => {
            if let Err(e) = m
                .send_call_signal(&from, &from_device, CallSignal::Busy { call_id })
                .await
            {
                tracing::warn!(error = %e, "could not send busy");
            }
            events(PhoneEvent::Warning(format!(
                "{from} called while you were busy"
            )));
        }
        Event::Call(other) => events(PhoneEvent::Warning(format!(
            "call signal for unknown call {} from {}: ignored",
            other.signal.call_id(),
            other.from
        ))),
        Event::Message(msg) => events(PhoneEvent::Message(msg)),
        Event::Receipt(_) => {}
        event @ Event::Undecryptable { .. } => events(PhoneEvent::Warning(undecryptable(&event))),
    }
}

/// What to tell the user about an envelope that does not decrypt: if it
/// was a call offer, its SDP or key was tampered with and the call cannot
/// happen.
fn undecryptable(event: &Event) -> String {
    match event {
        Event::Undecryptable {
            from,
            from_device,
            reason,
        } => format!(
            "a message from {from} (device {from_device}) does not decrypt and was dropped: \
             it was altered on the way or is corrupt ({reason}); a call offer in it \
             cannot ring here"
        ),
        _ => String::new(),
    }
}

/// The server's STUN responder and, if it grants one, a relay ticket for
/// this call. Both ends derive the relay's call key from the call id, so
/// the server pairs them without learning which call it is. A server
/// without a relay, or one that cannot be reached, only means no
/// reflexive or relayed candidates: the call still tries direct paths.
async fn server_assist(
    m: &mut Messenger,
    call_id: &str,
    local: SocketAddr,
) -> Option<ServerAssist> {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"parley call relay\0")
        .chain_update(call_id.as_bytes())
        .finalize();
    let call_key: [u8; 16] = digest[..16].try_into().expect("sha256 is 32 bytes");
    let grant = match m.relay_grant(&call_key).await {
        Ok(Some(grant)) => grant,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "no relay ticket; direct paths only");
            return None;
        }
    };
    let addr = match &grant.public_addr {
        Some(public) => public.parse().ok(),
        None => {
            let url = reqwest::Url::parse(m.server()).ok()?;
            let host = url.host_str()?.trim_matches(['[', ']']).to_string();
            tokio::net::lookup_host((host.as_str(), grant.udp_port))
                .await
                .ok()?
                .find(|a| a.is_ipv4() == local.is_ipv4())
        }
    };
    let Some(addr) = addr else {
        tracing::warn!("the relay's address does not resolve; direct paths only");
        return None;
    };
    let ticket: Option<[u8; 32]> = hex::decode(&grant.ticket)
        .ok()
        .and_then(|t| t.try_into().ok());
    let registration = ticket.map(|ticket| {
        parley_wire::relay::Registration {
            call_key,
            expires_at: grant.expires_at,
            ticket: &ticket,
            device: m.device_id(),
        }
        .to_bytes()
    });
    Some(ServerAssist { addr, registration })
}

/// Callee: picks up.
fn answer(call: &mut Active, options: &PhoneOptions) {
    let Some((offer, secret)) = call.offer.take() else {
        return;
    };
    let Some(local) = call.socket.as_ref().and_then(|s| s.local_addr().ok()) else {
        call.flow.media_failed("no media socket".into());
        return;
    };
    match MediaSession::answer(Instant::now(), local, &offer, &secret, call.flow.call_id()) {
        Ok((session, sdp)) => {
            call.flow.answer(sdp);
            start_media(call, session, options);
        }
        Err(e) => call
            .flow
            .media_failed(format!("the offer cannot be answered: {e}")),
    }
}

fn start_media(call: &mut Active, session: MediaSession, options: &PhoneOptions) {
    let Some(socket) = call.socket.take() else {
        call.flow.media_failed("media already started".into());
        return;
    };
    let io = match media_io(options, call.video) {
        Ok(io) => io,
        Err(e) => {
            call.flow.media_failed(e.to_string());
            return;
        }
    };
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (notice_tx, notice_rx) = mpsc::unbounded_channel();
    let run_options = RunOptions {
        duration: options.duration,
        linger: Duration::from_millis(300),
        send_loss: options.send_loss,
        seed: options.seed,
        connect_timeout: CONNECT_TIMEOUT,
    };
    let link = MediaLink {
        control: Some(control_rx),
        notices: Some(notice_tx),
        assist: call.assist.clone(),
    };
    let task = tokio::spawn(run_media(socket, session, io, run_options, link));
    call.media = Some(Media {
        task,
        control: control_tx,
        notices: notice_rx,
    });
}

fn media_io(options: &PhoneOptions, video: bool) -> Result<MediaIo, DeviceError> {
    let (audio_out, video_out) = open_sinks(&options.audio_out, options.record.as_deref())?;
    Ok(MediaIo {
        audio_in: open_audio_input(&options.audio_in)?,
        audio_out,
        video_in: if video {
            open_video_input(&options.video_in)?
        } else {
            None
        },
        video_out,
    })
}

/// The next notice from the media task; `None` once it has ended; never
/// while there is no media.
async fn next_notice(media: &mut Option<Media>) -> Option<MediaNotice> {
    match media {
        Some(media) => media.notices.recv().await,
        None => std::future::pending().await,
    }
}

async fn next_decision(policy: &mut AnswerPolicy) -> Decision {
    match policy {
        AnswerPolicy::Ask(rx) => match rx.recv().await {
            Some(decision) => decision,
            None => std::future::pending().await,
        },
        _ => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

fn summarise(call: &Active, run: Option<MediaRun>) -> CallSummary {
    let reason = match call.flow.state() {
        super::flow::CallState::Ended(reason) => reason.to_string(),
        other => format!("{other:?}"),
    };
    let (stats, jitter, decrypt_error) = match &run {
        Some(run) => (run.stats, run.jitter, run.decrypt_error.clone()),
        None => Default::default(),
    };
    CallSummary {
        call_id: call.flow.call_id().to_string(),
        peer: call.flow.peer().to_string(),
        side: match call.flow.side() {
            Side::Caller => "caller",
            Side::Callee => "callee",
        },
        connected: run.as_ref().is_some_and(|r| r.connected_at.is_some()),
        end_reason: reason,
        media_s: call.connected_at.map_or(0.0, |t| t.elapsed().as_secs_f64()),
        audio_frames_sent: stats.audio_frames_sent,
        video_frames_sent: stats.video_frames_sent,
        video_frames_decoded: stats.video_frames_decoded,
        plis_sent: stats.plis_sent,
        keyframes_requested: stats.keyframes_requested,
        decrypt_failures: stats.decrypt_failures,
        decrypt_error,
        concealed_pct: 100.0 * jitter.concealed as f64 / jitter.media_frames().max(1) as f64,
        fec_recovered: jitter.fec_recovered,
        rtt_ms: stats.rtt.map(|d| d.as_secs_f64() * 1000.0),
        path: call.last_stats.as_ref().map(|s| s.path.clone()),
        relayed_datagrams: run.as_ref().map_or(0, |r| r.relayed),
    }
}
