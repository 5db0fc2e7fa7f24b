//! The sans-IO forwarding core: every participant of every room is one
//! str0m [`Rtc`] on one shared UDP socket, and media one participant
//! publishes is written to every other participant of its room.
//!
//! Forwarding works on frames, as str0m's `chat` example does: str0m
//! reassembles each published frame (answering the publisher's side of
//! NACK/RTX as a receiver) and packetizes it again for each subscriber,
//! which gives every subscriber its own SSRC, sequence numbers and send
//! buffer, so a subscriber's NACKs are answered from that buffer without
//! bothering the publisher. Frames are SFrame ciphertext with H.264 NAL
//! headers in clear: the SFU sees NAL types and sizes, never media.
//!
//! [`Sfu`] takes `now` on every call and queues what to send
//! ([`Sfu::poll_transmit`]); the UDP shell in [`crate::server`] owns the
//! socket and the clock. Time only enters through those arguments, so the
//! timeouts here (a participant that vanishes, one that never connects) are
//! testable without waiting.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::bwe::BweKind;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcError};

use crate::token::{TokenError, TokenKey};
use parley_wire::sfu::{CHANNEL_LABEL, ControlMessage, Participant, TrackKind};

/// Active speaker: a sender's loudness (127 + dBov, so 0 is silence and
/// 127 full scale) is smoothed over about 200 ms of 20 ms frames...
const LOUDNESS_SMOOTHING: f32 = 0.1;
/// ...counts as speech above -50 dBov...
const SPEAKING_LOUDNESS: f32 = 77.0;
/// ...and takes the floor from the current speaker only when 6 dB louder,
/// so two people talking at once do not make the highlight flicker.
const SPEAKER_HYSTERESIS: f32 = 6.0;
/// A sender whose audio stopped (muted, DTX, gone) is silent after this.
const LOUDNESS_STALE: Duration = Duration::from_millis(500);
/// The speaker is re-evaluated at most this often per room.
const SPEAKER_INTERVAL: Duration = Duration::from_millis(200);

/// The budget one video track of a subscriber needs to get a layer, by rid
/// (publishers name their layers `h`, `m`, `l`, highest first; an unknown
/// rid counts as the lowest). A subscriber moves up when the budget is
/// above the layer's rate by [`LAYER_UP_HEADROOM`], and down as soon as
/// it falls below the rate itself, so the choice does not flap.
fn layer_kbps(rid: &Rid) -> f64 {
    match &**rid {
        "h" => 500.0,
        "m" => 250.0,
        _ => 0.0,
    }
}
/// See [`layer_kbps`].
const LAYER_UP_HEADROOM: f64 = 1.3;
/// One frame at 30 fps in 90 kHz ticks: the step a layer switch puts
/// between the old layer's last frame and the new one's first.
const FRAME_TICKS: u64 = 3_000;

/// How the SFU behaves; the defaults suit a real deployment.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The UDP socket's address as participants reach it: the one ICE
    /// candidate every session offers.
    pub public_addr: SocketAddr,
    /// Verifies join tokens.
    pub key: TokenKey,
    /// A connected participant heard from for this long is removed and the
    /// others told it left (ICE consent checks every few seconds keep a
    /// live one well inside it).
    pub peer_timeout: Duration,
    /// A participant that joined but never connected is removed after this.
    pub connect_timeout: Duration,
    /// At most one keyframe request per published track this often: every
    /// subscriber's PLI after a loss burst would otherwise make the
    /// publisher send a keyframe each.
    pub keyframe_request_interval: Duration,
    /// Keep a copy of every frame forwarded, for [`Sfu::poll_tapped`]:
    /// what anyone holding the SFU can see, for debugging and for the test
    /// that shows it is ciphertext. At most [`TAP_CAPACITY`] wait; older
    /// ones are dropped.
    pub tap: bool,
    /// Participants one room holds; a join beyond it is refused
    /// ([`JoinError::RoomFull`]). Each participant adds a session and a
    /// stream to everyone's fan-out, and an open demo room must not be
    /// fillable by one client.
    pub max_participants: usize,
}

/// [`SfuConfig::max_participants`] unless set: a large meeting, well
/// inside what one SFU task forwards on the development machine (see
/// docs/performance.md).
pub const MAX_PARTICIPANTS: usize = 50;

/// A frame as the SFU forwards it.
#[derive(Debug, Clone)]
pub struct TappedFrame {
    /// Whose it is.
    pub publisher: Participant,
    /// Audio or video.
    pub kind: TrackKind,
    /// The frame (SFrame ciphertext when the publisher encrypts).
    pub data: Arc<[u8]>,
}

impl SfuConfig {
    /// Defaults for an SFU reached at `public_addr`.
    pub fn new(public_addr: SocketAddr, key: TokenKey) -> Self {
        Self {
            public_addr,
            key,
            peer_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(20),
            keyframe_request_interval: Duration::from_millis(300),
            tap: false,
            max_participants: MAX_PARTICIPANTS,
        }
    }
}

/// Why a join was refused.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The token is malformed, forged, expired or for another room.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token names another room than the one asked for.
    #[error("join token is for another room")]
    WrongRoom,
    /// The offer is not SDP str0m accepts.
    #[error("bad offer: {0}")]
    Sdp(String),
    /// The offer has no data channel, so the SFU could never offer the
    /// participant anyone else's tracks.
    #[error("the offer has no data channel (m=application) for the SFU's control messages")]
    NoDataChannel,
    /// str0m refused the offer.
    #[error("offer refused: {0}")]
    Rtc(#[from] RtcError),
    /// The room already holds [`SfuConfig::max_participants`].
    #[error("the room is full ({0} participants)")]
    RoomFull(usize),
}

impl JoinError {
    /// What to tell the client: the variant's own words for errors Parley
    /// states, a fixed sentence where the text would be a dependency's
    /// (str0m's SDP parser reports a pointer offset, its errors name
    /// internal types). The full error is for the server's log.
    pub fn client_message(&self) -> String {
        match self {
            Self::Token(_) | Self::WrongRoom | Self::NoDataChannel | Self::RoomFull(_) => {
                self.to_string()
            }
            Self::Sdp(_) => "the offer is not SDP the SFU can parse".to_string(),
            Self::Rtc(_) => "the SFU cannot accept the offer's media lines".to_string(),
        }
    }
}

/// Why a participant left a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveReason {
    /// It said so.
    Left,
    /// Nothing heard from it (or it never connected) within the timeout.
    TimedOut,
    /// ICE lost the path.
    Disconnected,
    /// The same device joined the room again.
    Replaced,
    /// Its session failed.
    Failed(String),
}

impl std::fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Left => f.write_str("left"),
            Self::TimedOut => f.write_str("timed out"),
            Self::Disconnected => f.write_str("disconnected"),
            Self::Replaced => f.write_str("joined again from the same device"),
            Self::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

/// What happened, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// A participant was admitted.
    Joined {
        /// To this room.
        room: String,
        /// Who.
        participant: Participant,
    },
    /// A participant was removed.
    Left {
        /// From this room.
        room: String,
        /// Who.
        participant: Participant,
        /// Why.
        reason: LeaveReason,
    },
}

/// A datagram to send from the SFU's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// Counters for `/metrics`, tests and the load generator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Frames written to subscribers (one per subscriber per frame).
    pub frames_forwarded: u64,
    /// Bytes of those frames.
    pub bytes_forwarded: u64,
    /// Keyframe requests sent to publishers (after throttling).
    pub keyframe_requests: u64,
    /// Simulcast layer switches made for subscribers.
    pub layer_switches: u64,
    /// Datagrams no participant's session accepted.
    pub unrouted_datagrams: u64,
    /// Control messages that were not valid JSON of a known kind.
    pub bad_control_messages: u64,
    /// Dynacast: times a publisher was told to change the simulcast layers
    /// it sends.
    pub layer_updates: u64,
}

/// A track a participant publishes.
#[derive(Debug)]
struct TrackIn {
    mid: Mid,
    kind: MediaKind,
    /// Simulcast layers, highest first; empty for a single stream.
    rids: Vec<Rid>,
    /// Per layer (`None`: a single stream).
    last_keyframe_request: HashMap<Option<Rid>, Instant>,
    /// Dynacast: the layers the publisher was last told to send (`None`:
    /// not told yet, so it sends them all).
    announced_layers: Option<Vec<Rid>>,
}

/// Another participant's track, as this participant receives it.
#[derive(Debug)]
struct TrackOut {
    source: Participant,
    source_mid: Mid,
    kind: MediaKind,
    state: TrackOutState,
    /// The source's simulcast layers, highest first (empty: one stream).
    rids: Vec<Rid>,
    /// The highest layer the subscriber asked for (`MaxLayer`).
    max_layer: Option<Rid>,
    /// The layer being forwarded.
    layer: Option<Rid>,
    /// The layer wanted; it replaces `layer` at its next keyframe.
    target: Option<Rid>,
    /// Simulcast layers run on clocks of their own (each stream its own
    /// random RTP timestamp offset): the subscriber's timeline is kept
    /// continuous by adding this to the forwarded layer's times...
    time_offset: u64,
    /// ...and this is the last time forwarded on it (90 kHz ticks).
    last_time: Option<u64>,
}

impl TrackOut {
    fn new(source: Participant, track: &TrackIn) -> Self {
        Self {
            source,
            source_mid: track.mid,
            kind: track.kind,
            state: TrackOutState::ToOpen,
            rids: track.rids.clone(),
            max_layer: None,
            layer: None,
            target: None,
            time_offset: 0,
            last_time: None,
        }
    }

    /// The layer to forward for a per-track budget of `kbps`, at most the
    /// layer the subscriber asked for.
    fn choose(&self, kbps: f64) -> Option<Rid> {
        // Layers are listed highest first: skip those above the cap.
        let allowed = self
            .max_layer
            .and_then(|max| self.rids.iter().position(|r| *r == max))
            .unwrap_or(0);
        let rids = &self.rids[allowed..];
        let fits = |rid: &Rid| {
            let need = layer_kbps(rid);
            // Staying needs the rate; moving up needs headroom over it.
            if self.layer.as_ref() == Some(rid) || self.target.as_ref() == Some(rid) {
                kbps >= need
            } else {
                kbps >= need * LAYER_UP_HEADROOM
            }
        };
        rids.iter().find(|rid| fits(rid)).or(rids.last()).copied()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackOutState {
    /// Not negotiated yet.
    ToOpen,
    /// In an offer that is not answered yet.
    Negotiating(Mid),
    Open(Mid),
    /// Its source left; to be stopped in the next offer.
    ToStop(Mid),
    NegotiatingStop(Mid),
}

struct Peer {
    who: Participant,
    room: String,
    rtc: Rtc,
    channel: Option<ChannelId>,
    /// Control messages waiting for the data channel to open.
    control_out: VecDeque<ControlMessage>,
    pending: Option<SdpPendingOffer>,
    tracks_in: Vec<TrackIn>,
    tracks_out: Vec<TrackOut>,
    /// str0m's next deadline.
    timeout: Instant,
    joined_at: Instant,
    last_heard: Option<Instant>,
    connected: bool,
    gone: Option<LeaveReason>,
    /// Smoothed loudness of its audio (see [`LOUDNESS_SMOOTHING`]).
    loudness: f32,
    loudness_at: Option<Instant>,
    /// The bandwidth estimate toward it, kbit/s; `None` until the first
    /// TWCC estimate (a new subscriber starts on the lowest layer and
    /// moves up as the estimate proves room, as LiveKit's does).
    bwe_kbps: Option<f64>,
}

/// Work one participant's output makes for others.
enum Work {
    TrackOpened {
        source: u64,
        mid: Mid,
    },
    Media {
        source: u64,
        data: Box<MediaData>,
    },
    KeyframeRequest {
        source: u64,
        mid: Mid,
        rid: Option<Rid>,
        kind: KeyframeRequestKind,
    },
}

/// A room's active speaker.
#[derive(Debug, Default)]
struct Speaker {
    current: Option<u64>,
    evaluated: Option<Instant>,
}

/// The SFU: rooms of participants, one str0m session each.
pub struct Sfu {
    config: SfuConfig,
    peers: Vec<Peer>,
    speakers: HashMap<String, Speaker>,
    next_id: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SfuEvent>,
    tapped: VecDeque<TappedFrame>,
    stats: SfuStats,
    /// When the layers each subscriber needs were last compared with what
    /// publishers send (dynacast).
    dynacast_at: Option<Instant>,
}

/// Tapped frames kept for [`Sfu::poll_tapped`] before the oldest go.
pub const TAP_CAPACITY: usize = 100_000;

/// Dynacast runs at most this often.
const DYNACAST_INTERVAL: Duration = Duration::from_millis(250);

impl Sfu {
    /// An SFU with no rooms yet.
    pub fn new(config: SfuConfig) -> Self {
        Self {
            config,
            peers: Vec::new(),
            speakers: HashMap::new(),
            next_id: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            tapped: VecDeque::new(),
            stats: SfuStats::default(),
            dynacast_at: None,
        }
    }

    /// Counters since start.
    pub fn stats(&self) -> SfuStats {
        self.stats
    }

    /// Participants in `room` now.
    pub fn participants(&self, room: &str) -> Vec<Participant> {
        self.peers
            .iter()
            .filter(|p| p.room == room && p.gone.is_none())
            .map(|p| p.who.clone())
            .collect()
    }

    /// Admits the holder of `token` to `room` with its SDP `offer`
    /// (audio and video lines it sends, and a data channel); returns the
    /// SDP answer. `unix_now` (seconds) checks the token's expiry.
    pub fn join(
        &mut self,
        now: Instant,
        unix_now: u64,
        room: &str,
        token: &str,
        offer: &str,
    ) -> Result<String, JoinError> {
        let claims = self.config.key.verify(token, unix_now)?;
        if claims.room != room {
            return Err(JoinError::WrongRoom);
        }
        if !offer.lines().any(|l| l.starts_with("m=application")) {
            return Err(JoinError::NoDataChannel);
        }
        let offer = SdpOffer::from_sdp_string(offer).map_err(|e| JoinError::Sdp(e.to_string()))?;
        let mut rtc = parley_rtc::build(parley_rtc::Role::Sfu, now);
        let candidate = Candidate::host(self.config.public_addr, "udp")
            .map_err(|e| JoinError::Sdp(format!("host candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc.sdp_api().accept_offer(offer)?;

        // A device joining again (a restart, a new network) replaces its
        // old session rather than appearing twice.
        for peer in &mut self.peers {
            if peer.room == room
                && peer.who.user == claims.user
                && peer.who.device == claims.device
                && peer.gone.is_none()
            {
                peer.gone = Some(LeaveReason::Replaced);
            }
        }
        self.remove_gone(now);
        let inside = self.peers.iter().filter(|p| p.room == room).count();
        if inside >= self.config.max_participants {
            return Err(JoinError::RoomFull(self.config.max_participants));
        }

        let who = Participant {
            id: self.next_id,
            user: claims.user,
            device: claims.device,
        };
        self.next_id += 1;
        let others = self
            .peers
            .iter()
            .filter(|p| p.room == room)
            .map(|p| p.who.clone())
            .collect();
        let control_out = VecDeque::from([ControlMessage::Welcome {
            you: who.clone(),
            others,
        }]);
        let mut tracks_out = Vec::new();
        for other in self.peers.iter().filter(|p| p.room == room) {
            for track in &other.tracks_in {
                tracks_out.push(TrackOut::new(other.who.clone(), track));
            }
        }
        for other in self.peers.iter_mut().filter(|p| p.room == room) {
            other.send_control(ControlMessage::Joined {
                participant: who.clone(),
            });
        }
        tracing::info!(room, user = %who.user, device = %who.device, id = who.id, "joined");
        self.events.push_back(SfuEvent::Joined {
            room: room.to_string(),
            participant: who.clone(),
        });
        self.peers.push(Peer {
            who,
            room: room.to_string(),
            rtc,
            channel: None,
            control_out,
            pending: None,
            tracks_in: Vec::new(),
            tracks_out,
            timeout: now,
            joined_at: now,
            last_heard: None,
            connected: false,
            gone: None,
            loudness: 0.0,
            loudness_at: None,
            bwe_kbps: None,
        });
        let index = self.peers.len() - 1;
        self.run(now, index);
        // The others may have control messages to send now.
        for i in 0..self.peers.len() {
            if self.peers[i].room == room && i != index {
                self.run(now, i);
            }
        }
        self.remove_gone(now);
        Ok(answer.to_sdp_string())
    }

    /// A datagram arrived on the SFU's socket (`destination` is the
    /// socket's own address).
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let Ok(contents) = data.try_into() else {
            self.stats.unrouted_datagrams += 1;
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        let Some(index) = self.peers.iter().position(|p| p.rtc.accepts(&input)) else {
            // Common for a moment after a join (the browser's first STUN
            // can race the answer) and for strays: not an error.
            self.stats.unrouted_datagrams += 1;
            return;
        };
        let peer = &mut self.peers[index];
        peer.last_heard = Some(now);
        if let Err(e) = peer.rtc.handle_input(input) {
            peer.gone = Some(LeaveReason::Failed(e.to_string()));
        }
        self.run(now, index);
        self.remove_gone(now);
    }

    /// When [`Sfu::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .iter()
            .map(|p| p.timeout.min(self.vanish_deadline(p)))
            .min()
    }

    /// Drives every session's timers and removes vanished participants.
    pub fn handle_timeout(&mut self, now: Instant) {
        for index in 0..self.peers.len() {
            let deadline = self.vanish_deadline(&self.peers[index]);
            let peer = &mut self.peers[index];
            if now >= deadline && peer.gone.is_none() {
                peer.gone = Some(LeaveReason::TimedOut);
            }
            if peer.timeout <= now {
                if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                    peer.gone = Some(LeaveReason::Failed(e.to_string()));
                }
                self.run(now, index);
            }
        }
        self.remove_gone(now);
        if self
            .dynacast_at
            .is_none_or(|t| now >= t + DYNACAST_INTERVAL)
        {
            self.dynacast_at = Some(now);
            self.dynacast(now);
        }
    }

    /// Dynacast: tells each simulcast publisher which of its layers some
    /// subscriber receives or is switching to, so it stops encoding and
    /// sending the rest (LiveKit's dynacast); a layer comes back when a
    /// subscriber's estimate asks for it.
    fn dynacast(&mut self, now: Instant) {
        let mut updates = Vec::new();
        for (i, publisher) in self.peers.iter().enumerate() {
            for track in publisher.tracks_in.iter().filter(|t| !t.rids.is_empty()) {
                let mut needed: Vec<Rid> = Vec::new();
                for out in self.peers.iter().flat_map(|p| &p.tracks_out) {
                    if out.source.id != publisher.who.id || out.source_mid != track.mid {
                        continue;
                    }
                    // A subscriber with no choice yet gets the lowest layer.
                    let wanted = [out.layer, out.target.or(track.rids.last().copied())];
                    for rid in wanted.into_iter().flatten() {
                        if !needed.contains(&rid) {
                            needed.push(rid);
                        }
                    }
                }
                // Highest first, as the publisher lists them.
                let needed: Vec<Rid> = track
                    .rids
                    .iter()
                    .filter(|r| needed.contains(r))
                    .copied()
                    .collect();
                if track.announced_layers.as_ref() != Some(&needed) {
                    updates.push((i, track.mid, needed));
                }
            }
        }
        for (i, mid, needed) in updates {
            let peer = &mut self.peers[i];
            if let Some(track) = peer.tracks_in.iter_mut().find(|t| t.mid == mid) {
                track.announced_layers = Some(needed.clone());
            }
            peer.send_control(ControlMessage::Layers {
                mid: mid.to_string(),
                active: needed.iter().map(|r| r.to_string()).collect(),
            });
            self.stats.layer_updates += 1;
            self.run(now, i);
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for logs and metrics.
    pub fn poll_event(&mut self) -> Option<SfuEvent> {
        self.events.pop_front()
    }

    /// The next forwarded frame's copy, when [`SfuConfig::tap`] is on.
    pub fn poll_tapped(&mut self) -> Option<TappedFrame> {
        self.tapped.pop_front()
    }

    fn vanish_deadline(&self, peer: &Peer) -> Instant {
        match peer.last_heard {
            Some(heard) if peer.connected => heard + self.config.peer_timeout,
            _ => peer.joined_at + self.config.connect_timeout,
        }
    }

    /// Polls participant `first` until its session is idle, hands what it
    /// published to the others, and polls each one that got something,
    /// until no session has work left.
    fn run(&mut self, now: Instant, first: usize) {
        let mut dirty = vec![first];
        while let Some(index) = dirty.pop() {
            let work = self.poll_peer(now, index);
            for item in work {
                self.apply(now, item, &mut dirty);
            }
        }
    }

    fn poll_peer(&mut self, now: Instant, index: usize) -> Vec<Work> {
        let interval = self.config.keyframe_request_interval;
        let peer = &mut self.peers[index];
        let mut work = Vec::new();
        if peer.gone.is_some() {
            return work;
        }
        peer.negotiate_if_needed();
        peer.flush_control();
        loop {
            let output = match parley_rtc::poll_output(&mut peer.rtc, now) {
                Ok(output) => output,
                Err(e) => {
                    peer.gone = Some(LeaveReason::Failed(e.to_string()));
                    return work;
                }
            };
            match output {
                Output::Timeout(t) => {
                    peer.timeout = t;
                    break;
                }
                Output::Transmit(t) => self.transmits.push_back(Transmit {
                    destination: t.destination,
                    contents: t.contents.to_vec(),
                }),
                Output::Event(event) => {
                    peer.handle_event(now, event, interval, &mut self.stats, &mut work);
                    // A control message (an answer) may allow the next
                    // negotiation; an opened channel flushes the queue.
                    peer.negotiate_if_needed();
                    peer.flush_control();
                }
            }
        }
        if !peer.rtc.is_alive() && peer.gone.is_none() {
            peer.gone = Some(LeaveReason::Disconnected);
        }
        work
    }

    fn apply(&mut self, now: Instant, work: Work, dirty: &mut Vec<usize>) {
        match work {
            Work::TrackOpened { source, mid } => {
                let Some(publisher) = self.peers.iter().find(|p| p.who.id == source) else {
                    return;
                };
                let Some(track) = publisher.tracks_in.iter().find(|t| t.mid == mid) else {
                    return;
                };
                let (room, who) = (publisher.room.clone(), publisher.who.clone());
                let template = TrackOut::new(who, track);
                for (i, peer) in self.peers.iter_mut().enumerate() {
                    if peer.room == room && peer.who.id != source && peer.gone.is_none() {
                        peer.tracks_out.push(TrackOut {
                            source: template.source.clone(),
                            rids: template.rids.clone(),
                            ..template
                        });
                        mark(dirty, i);
                    }
                }
            }
            Work::Media { source, data } => {
                let Some(room) = self.room_of(source) else {
                    return;
                };
                let (mid, params, time, network_time) =
                    (data.mid, data.params, data.time, data.network_time);
                let level = data.ext_vals.audio_level;
                let voice = data.ext_vals.voice_activity;
                let (rid, keyframe) = (data.rid, data.is_keyframe());
                if self.config.tap {
                    self.tap(source, mid, &data.data);
                }
                // One allocation shared by every subscriber's packetizer.
                let frame: Arc<[u8]> = data.data;

                for (i, peer) in self.peers.iter_mut().enumerate() {
                    if peer.room != room || peer.who.id == source || peer.gone.is_some() {
                        continue;
                    }
                    let Some(track) = peer.tracks_out.iter_mut().find(|t| {
                        matches!(t.state, TrackOutState::Open(_))
                            && t.source.id == source
                            && t.source_mid == mid
                    }) else {
                        continue;
                    };
                    let TrackOutState::Open(out_mid) = track.state else {
                        continue;
                    };
                    let mut out_time = time;
                    // Simulcast: the forwarded layer only, and the wanted
                    // one from its first keyframe on (a decoder can start
                    // there; str0m's per-subscriber packetizer keeps the
                    // sequence numbers continuous across the switch).
                    if rid.is_some() {
                        if track.target.is_some()
                            && track.target != track.layer
                            && rid == track.target
                            && keyframe
                        {
                            if track.layer.is_some() {
                                self.stats.layer_switches += 1;
                            }
                            track.layer = track.target;
                            // The new layer's first frame lands one frame
                            // after the last one forwarded.
                            track.time_offset = track
                                .last_time
                                .map_or(0, |last| (last + FRAME_TICKS).wrapping_sub(time.numer()));
                        }
                        if rid != track.layer {
                            continue;
                        }
                        let out = time.numer().wrapping_add(track.time_offset);
                        track.last_time = Some(out);
                        out_time = MediaTime::new(out, time.frequency());
                    }
                    let Some(writer) = peer.rtc.writer(out_mid) else {
                        continue;
                    };
                    // The same codec parameters when the subscriber has them,
                    // else the same codec and packetization: browsers pick
                    // their own H.264 profile-level-id from the offer, and
                    // every Constrained Baseline stream decodes under any.
                    // (`match_params` looks at the whole session's codecs,
                    // so check the line negotiated the one it finds.)
                    let pt = writer
                        .match_params(params)
                        .filter(|pt| writer.payload_params().any(|p| p.pt() == *pt))
                        .or_else(|| {
                            let want = params.spec();
                            writer
                                .payload_params()
                                .find(|p| {
                                    let have = p.spec();
                                    have.codec == want.codec
                                        && have.format.packetization_mode
                                            == want.format.packetization_mode
                                })
                                .map(|p| p.pt())
                        });
                    let Some(pt) = pt else {
                        continue;
                    };
                    // Subscribers (a browser's UI) see levels too.
                    let writer = match level {
                        Some(level) => writer.audio_level(level, voice.unwrap_or(false)),
                        None => writer,
                    };
                    match writer.write(pt, network_time, out_time, frame.clone()) {
                        Ok(()) => {
                            self.stats.frames_forwarded += 1;
                            self.stats.bytes_forwarded += frame.len() as u64;
                            mark(dirty, i);
                        }
                        Err(e) => tracing::debug!(error = %e, "forwarding a frame failed"),
                    }
                }
                if level.is_some() {
                    self.update_speaker(now, &room, dirty);
                }
            }
            Work::KeyframeRequest {
                source,
                mid,
                rid,
                kind,
            } => {
                let interval = self.config.keyframe_request_interval;
                let Some(i) = self.peers.iter().position(|p| p.who.id == source) else {
                    return;
                };
                if self.peers[i].request_keyframe(now, mid, rid, kind, interval) {
                    self.stats.keyframe_requests += 1;
                    mark(dirty, i);
                }
            }
        }
    }

    fn tap(&mut self, source: u64, mid: Mid, data: &Arc<[u8]>) {
        let Some(publisher) = self.peers.iter().find(|p| p.who.id == source) else {
            return;
        };
        let Some(track) = publisher.tracks_in.iter().find(|t| t.mid == mid) else {
            return;
        };
        if self.tapped.len() >= TAP_CAPACITY {
            self.tapped.pop_front();
        }
        self.tapped.push_back(TappedFrame {
            publisher: publisher.who.clone(),
            kind: match track.kind {
                MediaKind::Audio => TrackKind::Audio,
                MediaKind::Video => TrackKind::Video,
            },
            data: data.clone(),
        });
    }

    /// Picks the room's loudest speaker and tells the room when it
    /// changes.
    fn update_speaker(&mut self, now: Instant, room: &str, dirty: &mut Vec<usize>) {
        let state = self.speakers.entry(room.to_string()).or_default();
        if state.evaluated.is_some_and(|t| now < t + SPEAKER_INTERVAL) {
            return;
        }
        state.evaluated = Some(now);
        let loudness = |p: &Peer| match p.loudness_at {
            Some(at) if now < at + LOUDNESS_STALE => p.loudness,
            _ => 0.0,
        };
        let in_room = || {
            self.peers
                .iter()
                .filter(|p| p.room == room && p.gone.is_none())
        };
        let Some(loudest) = in_room().max_by(|a, b| loudness(a).total_cmp(&loudness(b))) else {
            return;
        };
        let level = loudness(loudest);
        if level < SPEAKING_LOUDNESS || state.current == Some(loudest.who.id) {
            return;
        }
        let current = in_room()
            .find(|p| Some(p.who.id) == state.current)
            .map_or(0.0, loudness);
        if level < current + SPEAKER_HYSTERESIS {
            return;
        }
        state.current = Some(loudest.who.id);
        let speaker = loudest.who.clone();
        tracing::debug!(room, id = speaker.id, "active speaker");
        for (i, peer) in self.peers.iter_mut().enumerate() {
            if peer.room == room && peer.gone.is_none() {
                peer.send_control(ControlMessage::ActiveSpeaker {
                    participant: speaker.clone(),
                });
                mark(dirty, i);
            }
        }
    }

    fn room_of(&self, participant: u64) -> Option<String> {
        self.peers
            .iter()
            .find(|p| p.who.id == participant)
            .map(|p| p.room.clone())
    }

    /// Removes participants marked gone, tells their rooms, and stops
    /// their tracks at every subscriber.
    fn remove_gone(&mut self, now: Instant) {
        while let Some(index) = self.peers.iter().position(|p| p.gone.is_some()) {
            let mut peer = self.peers.remove(index);
            peer.rtc.disconnect();
            let reason = peer.gone.take().expect("position found a gone peer");
            tracing::info!(room = %peer.room, user = %peer.who.user, id = peer.who.id, %reason, "left");
            for i in 0..self.peers.len() {
                let other = &mut self.peers[i];
                if other.room != peer.room {
                    continue;
                }
                other.tracks_out.retain_mut(|t| {
                    if t.source.id != peer.who.id {
                        return true;
                    }
                    match t.state {
                        TrackOutState::ToOpen => false,
                        TrackOutState::Negotiating(m) | TrackOutState::Open(m) => {
                            t.state = TrackOutState::ToStop(m);
                            true
                        }
                        TrackOutState::ToStop(_) | TrackOutState::NegotiatingStop(_) => true,
                    }
                });
                other.send_control(ControlMessage::Left {
                    participant: peer.who.clone(),
                    reason: reason.to_string(),
                });
                self.run(now, i);
            }
            if !self.peers.iter().any(|p| p.room == peer.room) {
                self.speakers.remove(&peer.room);
            }
            self.events.push_back(SfuEvent::Left {
                room: peer.room,
                participant: peer.who,
                reason,
            });
        }
    }
}

fn mark(dirty: &mut Vec<usize>, index: usize) {
    if !dirty.contains(&index) {
        dirty.push(index);
    }
}

impl Peer {
    fn send_control(&mut self, message: ControlMessage) {
        self.control_out.push_back(message);
    }

    /// Writes queued control messages once the data channel is open.
    fn flush_control(&mut self) {
        let Some(id) = self.channel else {
            return;
        };
        while let Some(message) = self.control_out.pop_front() {
            let Some(mut channel) = self.rtc.channel(id) else {
                self.control_out.push_front(message);
                return;
            };
            if let Err(e) = channel.write(false, message.to_json().as_bytes()) {
                tracing::debug!(error = %e, "control message not written");
                self.control_out.push_front(message);
                return;
            }
        }
    }

    fn handle_event(
        &mut self,
        now: Instant,
        event: Event,
        keyframe_interval: Duration,
        stats: &mut SfuStats,
        work: &mut Vec<Work>,
    ) {
        match event {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.gone = Some(LeaveReason::Disconnected);
            }
            Event::ChannelOpen(id, label) if label == CHANNEL_LABEL => self.channel = Some(id),
            Event::ChannelData(data) if Some(data.id) == self.channel => {
                match ControlMessage::from_json(&data.data) {
                    Ok(ControlMessage::Answer { sdp }) => {
                        // A subscriber's decoder starts at a keyframe: ask
                        // for one rather than wait for its PLI.
                        let opened = self.accept_answer(&sdp);
                        self.choose_layers(work);
                        // A subscriber's decoder starts at a keyframe: ask
                        // for one rather than wait for its PLI.
                        for (source, mid) in opened {
                            let rid = self
                                .tracks_out
                                .iter()
                                .find(|t| t.source.id == source && t.source_mid == mid)
                                .and_then(|t| t.target);
                            work.push(Work::KeyframeRequest {
                                source,
                                mid,
                                rid,
                                kind: KeyframeRequestKind::Fir,
                            });
                        }
                    }
                    Ok(ControlMessage::MaxLayer { mid, rid }) => {
                        let track = self
                            .tracks_out
                            .iter_mut()
                            .find(|t| matches!(t.state, TrackOutState::Open(m) if *m == *mid));
                        match track {
                            Some(track) => track.max_layer = rid.as_deref().map(Rid::from),
                            None => stats.bad_control_messages += 1,
                        }
                        self.choose_layers(work);
                    }
                    Ok(ControlMessage::Leave) => self.gone = Some(LeaveReason::Left),
                    Ok(other) => {
                        stats.bad_control_messages += 1;
                        tracing::debug!(?other, "control message only the SFU sends");
                    }
                    Err(e) => {
                        stats.bad_control_messages += 1;
                        tracing::debug!(error = %e, "malformed control message");
                    }
                }
            }
            // A line the participant sends on: `sendonly` from str0m, or
            // `sendrecv` from a browser's addTrack (the SFU never sends on
            // a participant's own lines; others' tracks get lines of their
            // own).
            Event::MediaAdded(added) if added.direction.is_receiving() => {
                let mut rids: Vec<Rid> = added
                    .simulcast
                    .iter()
                    .flat_map(|s| s.recv.iter().chain(&s.send))
                    .map(|layer| layer.rid)
                    .collect();
                rids.sort_by(|a, b| layer_kbps(b).total_cmp(&layer_kbps(a)));
                rids.dedup();
                self.tracks_in.push(TrackIn {
                    mid: added.mid,
                    kind: added.kind,
                    rids,
                    last_keyframe_request: HashMap::new(),
                    announced_layers: None,
                });
                work.push(Work::TrackOpened {
                    source: self.who.id,
                    mid: added.mid,
                });
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.bwe_kbps = Some(estimate.as_f64() / 1000.0);
                self.choose_layers(work);
            }
            Event::MediaData(data) => {
                let Some(kind) = self
                    .tracks_in
                    .iter()
                    .find(|t| t.mid == data.mid)
                    .map(|t| t.kind)
                else {
                    return;
                };
                if let (MediaKind::Audio, Some(level)) = (kind, data.ext_vals.audio_level) {
                    let loudness = f32::from(level.clamp(-127, 0)) + 127.0;
                    self.loudness += LOUDNESS_SMOOTHING * (loudness - self.loudness);
                    self.loudness_at = Some(now);
                }
                if kind == MediaKind::Video && !data.contiguous {
                    // A gap the NACKs did not fill: every subscriber's
                    // decoder needs a keyframe to go on.
                    if self.request_keyframe(
                        now,
                        data.mid,
                        data.rid,
                        KeyframeRequestKind::Pli,
                        keyframe_interval,
                    ) {
                        stats.keyframe_requests += 1;
                    }
                }
                work.push(Work::Media {
                    source: self.who.id,
                    data: Box::new(data),
                });
            }
            Event::KeyframeRequest(request) => {
                if let Some(track) = self
                    .tracks_out
                    .iter()
                    .find(|t| t.state == TrackOutState::Open(request.mid))
                {
                    work.push(Work::KeyframeRequest {
                        source: track.source.id,
                        mid: track.source_mid,
                        rid: track.target.or(track.layer),
                        kind: request.kind,
                    });
                }
            }
            _ => {}
        }
    }

    /// Asks this participant for a keyframe on its track `mid`, at most
    /// once per `interval`; true when the request went out.
    fn request_keyframe(
        &mut self,
        now: Instant,
        mid: Mid,
        rid: Option<Rid>,
        kind: KeyframeRequestKind,
        interval: Duration,
    ) -> bool {
        let Some(track) = self.tracks_in.iter_mut().find(|t| t.mid == mid) else {
            return false;
        };
        // A single stream ignores a layer name.
        let rid = rid.filter(|r| track.rids.contains(r));
        if track
            .last_keyframe_request
            .get(&rid)
            .is_some_and(|&t| now < t + interval)
        {
            return false;
        }
        let Some(mut writer) = self.rtc.writer(mid) else {
            return false;
        };
        if writer.request_keyframe(rid, kind).is_err() {
            return false;
        }
        track.last_keyframe_request.insert(rid, now);
        true
    }

    /// Picks each simulcast video track's layer from this subscriber's
    /// bandwidth estimate, shared evenly between its video tracks; a new
    /// target asks its publisher for a keyframe on that layer.
    fn choose_layers(&mut self, work: &mut Vec<Work>) {
        // Only simulcast tracks can be fitted to the estimate; a single
        // stream takes what it takes (its rate is not known here, a
        // weakness until per-track rates are measured).
        let videos = self
            .tracks_out
            .iter()
            .filter(|t| {
                t.kind == MediaKind::Video
                    && !t.rids.is_empty()
                    && matches!(t.state, TrackOutState::Open(_))
            })
            .count();
        let budget = self.bwe_kbps.unwrap_or(0.0) / videos.max(1) as f64;
        for track in &mut self.tracks_out {
            if track.kind != MediaKind::Video || !matches!(track.state, TrackOutState::Open(_)) {
                continue;
            }
            let target = track.choose(budget);
            if target != track.target {
                track.target = target;
                work.push(Work::KeyframeRequest {
                    source: track.source.id,
                    mid: track.source_mid,
                    rid: target,
                    kind: KeyframeRequestKind::Fir,
                });
            }
        }
    }

    /// Offers the media lines that changed since the last offer, when the
    /// data channel is open and no offer is outstanding.
    fn negotiate_if_needed(&mut self) {
        if self.channel.is_none() || self.pending.is_some() {
            return;
        }
        let mut change = self.rtc.sdp_api();
        let mut announced = Vec::new();
        for track in &mut self.tracks_out {
            match track.state {
                TrackOutState::ToOpen => {
                    let stream = track.source.id.to_string();
                    let mid = change.add_media(
                        track.kind,
                        Direction::SendOnly,
                        Some(stream.clone()),
                        Some(format!("{stream}-{}", track.source_mid)),
                        None,
                    );
                    track.state = TrackOutState::Negotiating(mid);
                    announced.push((mid, track.kind, track.source.clone()));
                }
                TrackOutState::ToStop(mid) => {
                    change.stop_media(mid);
                    track.state = TrackOutState::NegotiatingStop(mid);
                }
                _ => {}
            }
        }
        if !change.has_changes() {
            return;
        }
        let Some((offer, pending)) = change.apply() else {
            return;
        };
        self.pending = Some(pending);
        // The participant's id is in the stream id too, but str0m does
        // not surface it to the other side: say it in a control message.
        for (mid, kind, source) in announced {
            self.control_out.push_back(ControlMessage::Track {
                mid: mid.to_string(),
                kind: match kind {
                    MediaKind::Audio => TrackKind::Audio,
                    MediaKind::Video => TrackKind::Video,
                },
                participant: source,
            });
        }
        self.control_out.push_back(ControlMessage::Offer {
            sdp: offer.to_sdp_string(),
        });
    }

    /// Applies the participant's answer; returns the video tracks it
    /// opened (source participant, source mid).
    fn accept_answer(&mut self, sdp: &str) -> Vec<(u64, Mid)> {
        let Some(pending) = self.pending.take() else {
            tracing::debug!("an answer with no offer outstanding");
            return Vec::new();
        };
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(answer) => answer,
            Err(e) => {
                self.gone = Some(LeaveReason::Failed(format!("bad answer: {e}")));
                return Vec::new();
            }
        };
        if let Err(e) = self.rtc.sdp_api().accept_answer(pending, answer) {
            self.gone = Some(LeaveReason::Failed(format!("answer refused: {e}")));
            return Vec::new();
        }
        let mut opened = Vec::new();
        for track in &mut self.tracks_out {
            if let TrackOutState::Negotiating(m) = track.state {
                track.state = TrackOutState::Open(m);
                if track.kind == MediaKind::Video {
                    parley_rtc::on_video_send_stream(&mut self.rtc, m, None);
                    opened.push((track.source.id, track.source_mid));
                }
            }
        }
        self.tracks_out
            .retain(|t| !matches!(t.state, TrackOutState::NegotiatingStop(_)));
        opened
    }
}
