//! One call's media, sans-IO: a str0m [`Rtc`] plus the codecs, SFrame and
//! the jitter buffer around it.
//!
//! Feed it datagrams ([`handle_receive`](MediaSession::handle_receive)),
//! timeouts ([`handle_timeout`](MediaSession::handle_timeout)) and captured
//! media ([`send_audio`](MediaSession::send_audio),
//! [`send_video`](MediaSession::send_video)); take datagrams to send
//! ([`poll_transmit`](MediaSession::poll_transmit)), audio to play every
//! 20 ms ([`poll_audio`](MediaSession::poll_audio)) and decoded pictures
//! ([`poll_video`](MediaSession::poll_video)). Every call takes `now`; the
//! IO shell owns the socket and the clock.
//!
//! After every mutation of the `Rtc` the session drains `poll_output` to
//! its timeout (str0m's single-mutation rule): transmits are queued,
//! events handled on the spot.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parley_media::audio::AudioFrame;
use parley_media::h264::{H264Config, H264Decoder, H264Encoder};
use parley_media::jitter_buffer::{
    Concealment, JitterBuffer, JitterBufferConfig, JitterBufferStats, Playout,
};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use parley_media::rtp::RtpPacket;
use parley_media::video::I420Frame;
use str0m::bwe::BweKind;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction as MediaDirection, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcError};

use super::e2ee::{Direction, E2eeError, FrameDecryptor, FrameEncryptor, MasterSecret};
use super::video_playout::VideoPlayout;

/// Opus frames are 20 ms: 960 ticks of the 48 kHz RTP clock.
const AUDIO_TICKS_PER_FRAME: u64 = 960;

/// Do not ask for keyframes more often than twice the round trip (a
/// keyframe asked for is on its way), within these bounds: a lost
/// keyframe on a short path is asked for again within 50 ms, and a long
/// path is not flooded.
const PLI_INTERVAL_MIN: Duration = Duration::from_millis(50);
const PLI_INTERVAL_MAX: Duration = Duration::from_millis(300);
const PLI_INTERVAL_UNKNOWN_RTT: Duration = Duration::from_millis(100);

/// The share of the estimate left for audio, RTP/SRTP headers and
/// retransmissions when sizing the video encoder.
const VIDEO_SHARE_OF_ESTIMATE: f64 = 0.85;
const AUDIO_RESERVE_BPS: f64 = 40_000.0;

/// Opus bitrate for calls. With FEC coded, 32 kbit/s leaves the speech
/// itself too few bits (PESQ-WB 3.6 loss-free on our clip, 3.0-3.3 at 5 %
/// loss in `parley demo call`); 48 kbit/s is still a small share of a video
/// call and what WebRTC uses for wideband voice with FEC.
const OPUS_BITRATE_BPS: u32 = 48_000;

/// Opus FEC is sized for twice the measured loss (loss comes in bursts
/// between reports), for this much at least (the default, which the
/// audio-loss bench found best up to 10 % loss; libopus codes no FEC at
/// 0 %) and at most this much (beyond it FEC eats the speech bitrate).
const OPUS_LOSS_FLOOR_PCT: u8 = 10;
const OPUS_LOSS_CEILING_PCT: u8 = 30;

/// RFC 2198 redundancy (RED) for audio (`parley_rtc::profile::RED_DISTANCES`:
/// each packet also carries the frames one and two packets back, so a lost
/// frame is rebuilt whole, not from Opus's low-rate FEC, unless three
/// packets in a row are lost). It
/// costs 2.5x the audio on the wire (69 -> 175 kbit/s in `parley-bench
/// loss`, which compares it with FEC alone), so calls turn it on only when
/// the peer reports at least [`RED_ON_LOSS`] and off again below
/// [`RED_OFF_LOSS`].
const RED_ON_LOSS: f32 = 0.05;
const RED_OFF_LOSS: f32 = 0.02;

/// Why the media session failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// str0m refused (bad SDP, bad state, ...).
    #[error("WebRTC: {0}")]
    Rtc(#[from] RtcError),
    /// The SDP text does not parse.
    #[error("bad SDP: {0}")]
    Sdp(String),
    /// A codec could not be set up or failed.
    #[error("codec: {0}")]
    Codec(#[from] parley_media::Error),
    /// SFrame keys could not be derived.
    #[error(transparent)]
    E2ee(#[from] E2eeError),
    /// An answer came for a session that is not waiting for one.
    #[error("no offer is waiting for an answer")]
    NoPendingOffer,
    /// The datagram is not STUN, DTLS, RTP or RTCP.
    #[error("datagram is not WebRTC")]
    NotWebRtc,
}

impl From<parley_media::opus_codec::OpusError> for SessionError {
    fn from(e: parley_media::opus_codec::OpusError) -> Self {
        Self::Codec(e.into())
    }
}

impl From<parley_media::h264::H264Error> for SessionError {
    fn from(e: parley_media::h264::H264Error) -> Self {
        Self::Codec(e.into())
    }
}

/// How a session protects media against loss. Calls use the default
/// (everything on); the loss benchmark (`parley-bench loss`) switches
/// parts off to show what each is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossProtection {
    /// Opus in-band FEC: the encoder codes a low-rate copy of each frame
    /// into the next packet, and the jitter buffer rebuilds a lost frame
    /// from it.
    pub audio_fec: bool,
    /// Size the FEC by the loss the peer reports (RTCP): twice the
    /// measured loss, within 10-30 %; otherwise it stays at 10 %.
    pub adaptive_fec: bool,
    /// What the jitter buffer plays for a frame it has no packet for.
    pub concealment: Concealment,
    /// Send audio redundantly (RED) when the peer reports loss:
    /// `Adaptive` turns it on and off by reported loss, `Always` and
    /// `Never` fix it.
    pub audio_red: Redundancy,
    /// Resend video packets the receiver NACKs (RTX). Without it a lost
    /// packet costs the picture and everything up to the next keyframe.
    pub video_nack: bool,
}

/// When audio goes out with RFC 2198 redundancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redundancy {
    /// Never.
    Never,
    /// While the peer reports loss (on at 5 %, off under 2 %).
    Adaptive,
    /// Always.
    Always,
}

impl Default for LossProtection {
    fn default() -> Self {
        Self {
            audio_fec: true,
            adaptive_fec: true,
            concealment: Concealment::Plc,
            audio_red: Redundancy::Adaptive,
            video_nack: true,
        }
    }
}

/// Which end of the call this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Placed the call (sends the offer).
    Caller,
    /// Answered it.
    Callee,
}

/// What happened, for the shell to act on or report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// ICE and DTLS are up: media flows.
    Connected,
    /// ICE lost the peer.
    Disconnected,
    /// A frame did not decrypt (wrong key, tampering): the reason, once
    /// per kind of failure.
    DecryptFailed(String),
}

/// Counters for the stats panel and the demo's report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SessionStats {
    /// Opus frames sent.
    pub audio_frames_sent: u64,
    /// H.264 access units sent (skipped frames not counted).
    pub video_frames_sent: u64,
    /// Encrypted audio bytes sent.
    pub audio_bytes_sent: u64,
    /// Encrypted video bytes sent.
    pub video_bytes_sent: u64,
    /// Encrypted audio bytes received.
    pub audio_bytes_received: u64,
    /// Encrypted video bytes received.
    pub video_bytes_received: u64,
    /// The send-side bandwidth estimate (TWCC), bits per second.
    pub bwe_bps: Option<u64>,
    /// The video encoder's target now, bits per second.
    pub video_target_bps: Option<u32>,
    /// The loss Opus sizes its FEC for now, percent.
    pub opus_loss_pct: u8,
    /// Whether audio goes out with redundancy (RED) now.
    pub audio_red: bool,
    /// Pictures decoded.
    pub video_frames_decoded: u64,
    /// Frames that failed SFrame decryption.
    pub decrypt_failures: u64,
    /// Keyframe requests (PLI) this side sent.
    pub plis_sent: u64,
    /// Keyframe requests received (and served).
    pub keyframes_requested: u64,
    /// Round-trip time from RTCP.
    pub rtt: Option<Duration>,
    /// Loss the peer reports for what we send (0..1).
    pub egress_loss: Option<f32>,
    /// Loss we see on what we receive (0..1).
    pub ingress_loss: Option<f32>,
    /// Interarrival jitter of incoming audio (RTP ticks at 48 kHz).
    pub audio_jitter_ticks: u32,
}

/// One call's media engine.
pub struct MediaSession {
    rtc: Rtc,
    local_addr: SocketAddr,
    role: Role,
    video: bool,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    pending: Option<SdpPendingOffer>,
    connected: bool,
    encryptor: FrameEncryptor,
    decryptor: FrameDecryptor,
    opus: OpusEncoder,
    h264: Option<H264Encoder>,
    jitter: JitterBuffer,
    video_decoder: H264Decoder,
    audio_time: u64,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    playout: VideoPlayout,
    events: VecDeque<SessionEvent>,
    timeout: Instant,
    last_pli: Option<Instant>,
    waiting_for_keyframe: bool,
    decrypt_error_reported: bool,
    protection: LossProtection,
    stats: SessionStats,
}

impl MediaSession {
    fn new(
        now: Instant,
        local_addr: SocketAddr,
        role: Role,
        video: bool,
        secret: &MasterSecret,
        call_id: &str,
    ) -> Result<Self, SessionError> {
        let mut rtc = parley_rtc::build(parley_rtc::Role::Call { video }, now);
        let candidate = Candidate::host(local_addr, "udp")
            .map_err(|e| SessionError::Sdp(format!("local candidate {local_addr}: {e}")))?;
        rtc.add_local_candidate(candidate);
        let (send, receive) = match role {
            Role::Caller => (Direction::CallerToCallee, Direction::CalleeToCaller),
            Role::Callee => (Direction::CalleeToCaller, Direction::CallerToCallee),
        };
        let opus_config = OpusConfig {
            bitrate_bps: OPUS_BITRATE_BPS,
            ..OpusConfig::default()
        };
        Ok(Self {
            rtc,
            local_addr,
            role,
            video,
            audio_mid: None,
            video_mid: None,
            pending: None,
            connected: false,
            encryptor: FrameEncryptor::new(secret, call_id, send)?,
            decryptor: FrameDecryptor::new(secret, call_id, receive)?,
            opus: OpusEncoder::new(opus_config)?,
            h264: None,
            jitter: JitterBuffer::new(JitterBufferConfig::default())?,
            video_decoder: H264Decoder::new()?,
            audio_time: 0,
            transmits: VecDeque::new(),
            playout: VideoPlayout::default(),
            events: VecDeque::new(),
            timeout: now,
            last_pli: None,
            waiting_for_keyframe: true,
            decrypt_error_reported: false,
            protection: LossProtection::default(),
            stats: SessionStats {
                opus_loss_pct: opus_config.packet_loss_pct,
                ..SessionStats::default()
            },
        })
    }

    /// The caller's side: returns the session and the SDP offer to send.
    pub fn offer(
        now: Instant,
        local_addr: SocketAddr,
        video: bool,
        secret: &MasterSecret,
        call_id: &str,
    ) -> Result<(Self, String), SessionError> {
        let mut this = Self::new(now, local_addr, Role::Caller, video, secret, call_id)?;
        let mut change = this.rtc.sdp_api();
        let audio = change.add_media(MediaKind::Audio, MediaDirection::SendRecv, None, None, None);
        let video_mid = video.then(|| {
            change.add_media(MediaKind::Video, MediaDirection::SendRecv, None, None, None)
        });
        let (offer, pending) = change
            .apply()
            .expect("a change with media lines always yields an offer");
        this.audio_mid = Some(audio);
        this.video_mid = video_mid;
        this.pending = Some(pending);
        this.drain(now)?;
        Ok((this, offer.to_sdp_string()))
    }

    /// The callee's side: accepts `offer` and returns the SDP answer.
    pub fn answer(
        now: Instant,
        local_addr: SocketAddr,
        offer: &str,
        secret: &MasterSecret,
        call_id: &str,
    ) -> Result<(Self, String), SessionError> {
        let video = offer.lines().any(|line| line.starts_with("m=video"));
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| SessionError::Sdp(e.to_string()))?;
        let mut this = Self::new(now, local_addr, Role::Callee, video, secret, call_id)?;
        let answer = this.rtc.sdp_api().accept_offer(offer)?;
        this.drain(now)?;
        Ok((this, answer.to_sdp_string()))
    }

    /// The caller applies the callee's answer.
    pub fn accept_answer(&mut self, now: Instant, answer: &str) -> Result<(), SessionError> {
        let answer =
            SdpAnswer::from_sdp_string(answer).map_err(|e| SessionError::Sdp(e.to_string()))?;
        let pending = self.pending.take().ok_or(SessionError::NoPendingOffer)?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        if let Some(mid) = self.video_mid {
            self.configure_video_resends(mid);
        }
        // str0m wraps in RED as soon as it is negotiated.
        self.set_red(self.protection.audio_red == Redundancy::Always);
        self.drain(now)
    }

    /// Changes how media is protected against loss (before media flows:
    /// the jitter buffer starts over).
    pub fn set_protection(&mut self, protection: LossProtection) -> Result<(), SessionError> {
        let loss_pct = if protection.audio_fec {
            OPUS_LOSS_FLOOR_PCT
        } else {
            0
        };
        self.opus.apply(OpusConfig {
            inband_fec: protection.audio_fec,
            packet_loss_pct: loss_pct,
            ..self.opus.config()
        })?;
        self.stats.opus_loss_pct = loss_pct;
        self.jitter = JitterBuffer::new(JitterBufferConfig {
            fec: protection.audio_fec,
            concealment: protection.concealment,
            ..JitterBufferConfig::default()
        })?;
        self.protection = protection;
        if let Some(mid) = self.video_mid {
            self.configure_video_resends(mid);
        }
        self.set_red(protection.audio_red == Redundancy::Always);
        Ok(())
    }

    /// Turns RED on the audio line on or off (no renegotiation: the line
    /// always negotiates it; this only decides what is sent).
    fn set_red(&mut self, on: bool) {
        let Some(mid) = self.audio_mid else { return };
        if self.rtc.direct_api().set_red_send(mid, on) {
            tracing::debug!(on, "audio redundancy (RED)");
        }
        self.stats.audio_red = on;
    }

    /// Resends on the video line as [`LossProtection::video_nack`] says:
    /// str0m's cache with Parley's resend cap, or a cache that holds
    /// nothing, so every NACK goes unanswered.
    fn configure_video_resends(&mut self, mid: Mid) {
        if self.protection.video_nack {
            parley_rtc::on_video_send_stream(&mut self.rtc, mid, None);
        } else if let Some(stream) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
            stream.set_rtx_cache(1, Duration::ZERO, None);
        }
    }

    /// Adds a trickled remote candidate (`candidate:...` SDP attribute).
    pub fn add_remote_candidate(&mut self, now: Instant, line: &str) -> Result<(), SessionError> {
        let candidate =
            Candidate::from_sdp_string(line).map_err(|e| SessionError::Sdp(e.to_string()))?;
        self.rtc.add_remote_candidate(candidate);
        self.drain(now)
    }

    /// The server's relay forwards to the peer: its address becomes a
    /// remote candidate of relay type, so ICE tries it like any path and
    /// prefers any direct pair that works (relay has the lowest priority).
    pub fn add_relay_path(&mut self, now: Instant, relay: SocketAddr) -> Result<(), SessionError> {
        let candidate = Candidate::relayed(relay, self.local_addr, "udp")
            .map_err(|e| SessionError::Sdp(format!("relay candidate {relay}: {e}")))?;
        self.rtc.add_remote_candidate(candidate);
        self.drain(now)
    }

    /// This side's address as the server saw it (STUN): a server-reflexive
    /// candidate to trickle to the peer, unless it is the host address
    /// itself (no NAT on the way).
    pub fn add_reflexive(
        &mut self,
        now: Instant,
        addr: SocketAddr,
    ) -> Result<Option<String>, SessionError> {
        if addr == self.local_addr {
            return Ok(None);
        }
        let candidate = Candidate::server_reflexive(addr, self.local_addr, "udp")
            .map_err(|e| SessionError::Sdp(format!("reflexive candidate {addr}: {e}")))?;
        let line = self
            .rtc
            .add_local_candidate(candidate)
            .map(|c| c.to_sdp_string());
        self.drain(now)?;
        Ok(line)
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether the call carries video.
    pub fn has_video(&self) -> bool {
        self.video
    }

    /// Whether media flows.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// A datagram arrived on the call's socket from `source`.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        contents: &[u8],
    ) -> Result<(), SessionError> {
        let contents = contents.try_into().map_err(|_| SessionError::NotWebRtc)?;
        self.rtc.handle_input(Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local_addr,
                contents,
            },
        ))?;
        self.drain(now)
    }

    /// When [`handle_timeout`](Self::handle_timeout) next wants calling,
    /// or the next picture is due to be shown.
    pub fn poll_timeout(&self) -> Instant {
        self.playout
            .next_due()
            .map_or(self.timeout, |due| due.min(self.timeout))
    }

    /// Advances timers (retransmits, RTCP, ICE checks).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        if now < self.timeout {
            return Ok(());
        }
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain(now)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Encodes, encrypts and sends one 20 ms frame captured at `now`.
    /// Before the connection is up the frame is dropped (as a phone does
    /// while ringing).
    pub fn send_audio(&mut self, now: Instant, frame: &AudioFrame) -> Result<(), SessionError> {
        let Some(mid) = self.audio_mid.filter(|_| self.connected) else {
            return Ok(());
        };
        let packet = self.opus.encode(frame)?;
        let sealed = self.encryptor.encrypt_audio(&packet)?;
        let time = MediaTime::new(self.audio_time, str0m::media::Frequency::FORTY_EIGHT_KHZ);
        self.audio_time += AUDIO_TICKS_PER_FRAME;
        self.stats.audio_frames_sent += 1;
        self.stats.audio_bytes_sent += sealed.len() as u64;
        self.write(now, mid, Codec::Opus, time, sealed)
    }

    /// Encodes, encrypts and sends one picture; `pts` is its time since
    /// the start of the capture.
    pub fn send_video(
        &mut self,
        now: Instant,
        picture: &I420Frame,
        pts: Duration,
    ) -> Result<(), SessionError> {
        let Some(mid) = self.video_mid.filter(|_| self.connected && self.video) else {
            return Ok(());
        };
        let encoder = match &mut self.h264 {
            Some(encoder)
                if encoder.config().width == picture.width()
                    && encoder.config().height == picture.height() =>
            {
                encoder
            }
            // The encoder follows the source: its size is known from the
            // first picture (and a source that changes size restarts it).
            slot => {
                let bitrate_bps = self.stats.video_target_bps.unwrap_or_else(|| {
                    let pixels = (picture.width() * picture.height()) as f64;
                    (f64::from(H264Config::vga().bitrate_bps) * pixels / (640.0 * 480.0)) as u32
                });
                slot.insert(H264Encoder::new(H264Config {
                    width: picture.width(),
                    height: picture.height(),
                    bitrate_bps,
                    ..H264Config::vga()
                })?)
            }
        };
        let Some(encoded) = encoder.encode(picture, pts)? else {
            tracing::trace!(?pts, "the encoder's rate control skipped a picture");
            return Ok(());
        };
        if encoded.keyframe {
            tracing::debug!(?pts, bytes = encoded.data.len(), "sending a keyframe");
        }
        let sealed = self.encryptor.encrypt_h264(&encoded.data)?;
        let ticks = (pts.as_micros() * 90 / 1000) as u64;
        self.stats.video_frames_sent += 1;
        self.stats.video_bytes_sent += sealed.len() as u64;
        self.write(now, mid, Codec::H264, MediaTime::from_90khz(ticks), sealed)
    }

    fn write(
        &mut self,
        now: Instant,
        mid: Mid,
        codec: Codec,
        time: MediaTime,
        data: Vec<u8>,
    ) -> Result<(), SessionError> {
        let Some(writer) = self.rtc.writer(mid) else {
            return Ok(());
        };
        let Some(pt) = codec_pt(&writer, codec) else {
            return Ok(());
        };
        writer.write(pt, now, time, data)?;
        self.drain(now)
    }

    /// The audio frame to play now (call every 20 ms).
    pub fn poll_audio(&mut self, now: Instant) -> Playout {
        self.jitter.poll_frame(now)
    }

    /// The next decoded picture due to be shown at `now` (pictures are
    /// held long enough for resent packets to land in time; see
    /// [`VideoPlayout`]).
    pub fn poll_video(&mut self, now: Instant) -> Option<I420Frame> {
        self.playout.poll(now)
    }

    /// How long pictures are held now beyond the fastest path.
    pub fn video_hold(&self) -> Duration {
        self.playout.target()
    }

    /// Counters so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// The audio jitter buffer's counters.
    pub fn jitter_stats(&self) -> JitterBufferStats {
        self.jitter.stats()
    }

    /// Moves this side's SFrame key to the next generation (the receiver
    /// follows by key id).
    pub fn rekey(&mut self) -> Result<(), SessionError> {
        Ok(self.encryptor.rekey()?)
    }

    fn drain(&mut self, now: Instant) -> Result<(), SessionError> {
        loop {
            match parley_rtc::poll_output(&mut self.rtc, now)? {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return Ok(());
                }
                Output::Transmit(t) => self
                    .transmits
                    .push_back((t.destination, t.contents.to_vec())),
                Output::Event(e) => self.handle_event(now, e),
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.events.push_back(SessionEvent::Connected);
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.connected = false;
                self.events.push_back(SessionEvent::Disconnected);
            }
            Event::MediaAdded(added) => match added.kind {
                MediaKind::Audio => {
                    self.audio_mid = Some(added.mid);
                    // str0m wraps in RED as soon as it is negotiated.
                    self.set_red(self.protection.audio_red == Redundancy::Always);
                }
                MediaKind::Video => {
                    self.video_mid = Some(added.mid);
                    self.configure_video_resends(added.mid);
                }
            },
            Event::MediaData(data) if Some(data.mid) == self.audio_mid => {
                self.stats.audio_bytes_received += data.data.len() as u64;
                match self.decryptor.decrypt_audio(&data.data) {
                    Ok(payload) => {
                        self.jitter.handle_packet(now, audio_packet(&data, payload));
                    }
                    Err(e) => self.decrypt_failed(e),
                }
            }
            Event::MediaData(data) if Some(data.mid) == self.video_mid => {
                self.stats.video_bytes_received += data.data.len() as u64;
                if !data.contiguous {
                    tracing::debug!(rtp_time = ?data.time, "a picture before this one was lost");
                    self.waiting_for_keyframe = true;
                }
                if self.waiting_for_keyframe && !data.is_keyframe() {
                    self.request_keyframe(now);
                    return;
                }
                let plain = match self.decryptor.decrypt_h264(&data.data) {
                    Ok(plain) => plain,
                    Err(e) => {
                        self.decrypt_failed(e);
                        self.waiting_for_keyframe = true;
                        self.request_keyframe(now);
                        return;
                    }
                };
                match self.video_decoder.decode(&plain) {
                    Ok(Some(picture)) => {
                        self.waiting_for_keyframe = false;
                        self.stats.video_frames_decoded += 1;
                        self.playout.push(
                            now,
                            data.time
                                .rebase(str0m::media::Frequency::NINETY_KHZ)
                                .numer(),
                            picture,
                        );
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::debug!(error = %e, "undecodable picture; asking for a keyframe");
                        self.waiting_for_keyframe = true;
                        self.request_keyframe(now);
                    }
                }
            }
            Event::KeyframeRequest(_) => {
                self.stats.keyframes_requested += 1;
                if let Some(encoder) = &mut self.h264 {
                    encoder.request_keyframe();
                }
            }
            Event::PeerStats(s) => {
                self.stats.rtt = s.rtt.or(self.stats.rtt);
                // str0m measures these from TWCC, which only video calls
                // negotiate; audio-only calls learn loss from RTCP below.
                if self.video {
                    self.stats.egress_loss = s.egress_loss_fraction.or(self.stats.egress_loss);
                    self.stats.ingress_loss = s.ingress_loss_fraction.or(self.stats.ingress_loss);
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                self.adapt_video_bitrate(estimate.as_u64());
            }
            Event::MediaIngressStats(s) if Some(s.mid) == self.audio_mid => {
                self.stats.audio_jitter_ticks = s.jitter;
            }
            Event::MediaEgressStats(s) => {
                self.stats.rtt = s.rtt.or(self.stats.rtt);
                // The peer's receiver reports on our audio: the loss FEC is
                // sized for (TWCC's loss would be all media, and audio-only
                // calls have no TWCC).
                if Some(s.mid) == self.audio_mid
                    && let Some(loss) = s.loss
                {
                    if !self.video {
                        self.stats.egress_loss = Some(loss);
                    }
                    if self.protection.audio_fec && self.protection.adaptive_fec {
                        self.adapt_opus_fec(loss);
                    }
                    if self.protection.audio_red == Redundancy::Adaptive {
                        if loss >= RED_ON_LOSS && !self.stats.audio_red {
                            self.set_red(true);
                        } else if loss < RED_OFF_LOSS && self.stats.audio_red {
                            self.set_red(false);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Sizes Opus in-band FEC by the loss the peer reports on what we
    /// send; small changes are ignored so the encoder is not retuned every
    /// second.
    fn adapt_opus_fec(&mut self, loss_fraction: f32) {
        let measured = (f64::from(loss_fraction) * 200.0).ceil().min(100.0) as u8;
        let pct = measured.clamp(OPUS_LOSS_FLOOR_PCT, OPUS_LOSS_CEILING_PCT);
        if pct.abs_diff(self.stats.opus_loss_pct) < 2 {
            return;
        }
        let config = OpusConfig {
            packet_loss_pct: pct,
            ..self.opus.config()
        };
        match self.opus.apply(config) {
            Ok(()) => self.stats.opus_loss_pct = pct,
            Err(e) => tracing::warn!(error = %e, "Opus refused a loss setting"),
        }
    }

    /// Fits the video encoder into the bandwidth estimate, leaving room
    /// for audio and overhead; changes under 10 % are ignored.
    fn adapt_video_bitrate(&mut self, estimate_bps: u64) {
        self.stats.bwe_bps = Some(estimate_bps);
        if !self.video {
            return;
        }
        let target = (estimate_bps as f64 * VIDEO_SHARE_OF_ESTIMATE - AUDIO_RESERVE_BPS)
            .clamp(0.0, f64::from(u32::MAX)) as u32;
        let current = self
            .stats
            .video_target_bps
            .unwrap_or(H264Config::vga().bitrate_bps);
        if (f64::from(target) - f64::from(current)).abs() < f64::from(current) * 0.1 {
            return;
        }
        match &mut self.h264 {
            Some(encoder) => {
                encoder.set_bitrate(target);
                self.stats.video_target_bps = Some(encoder.config().bitrate_bps);
            }
            None => self.stats.video_target_bps = Some(target),
        }
    }

    fn decrypt_failed(&mut self, error: E2eeError) {
        self.stats.decrypt_failures += 1;
        if !self.decrypt_error_reported {
            self.decrypt_error_reported = true;
            self.events
                .push_back(SessionEvent::DecryptFailed(error.to_string()));
        }
    }

    fn request_keyframe(&mut self, now: Instant) {
        let interval = self
            .stats
            .rtt
            // Before the first RTCP round trip (a call's first keyframe),
            // assume a short path rather than wait the maximum.
            .map_or(PLI_INTERVAL_UNKNOWN_RTT, |rtt| {
                2 * rtt + Duration::from_millis(20)
            })
            .clamp(PLI_INTERVAL_MIN, PLI_INTERVAL_MAX);
        if self.last_pli.is_some_and(|t| now < t + interval) {
            return;
        }
        let Some(mid) = self.video_mid else { return };
        if let Some(mut writer) = self.rtc.writer(mid)
            && writer
                .request_keyframe(None, KeyframeRequestKind::Pli)
                .is_ok()
        {
            self.last_pli = Some(now);
            self.stats.plis_sent += 1;
            tracing::debug!("asked the sender for a keyframe");
        }
    }
}

/// The payload type `writer`'s line negotiated for `codec`.
pub(crate) fn codec_pt(
    writer: &str0m::media::Writer<'_>,
    codec: Codec,
) -> Option<str0m::media::Pt> {
    writer
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
}

/// A decrypted audio frame as the jitter buffer's RTP packet (str0m has
/// already depacketized it).
///
/// The jitter buffer plays one 20 ms slot per sequence number, so the
/// number given is the frame's slot on the media clock (timestamp / 960),
/// not the RTP sequence number: an SFU that forwards frames numbers its
/// packets afresh per subscriber and leaves no gap where the publisher's
/// uplink lost a frame, and the buffer, counting on the RTP numbers, fell a
/// frame further behind the timestamps with each such loss, until it was
/// concealing most of the call (found in `tests/tests/sfu/seeded_runs_repeat.rs`:
/// 60-80 % concealed at 5 % loss each way, against ~6 % now). RED's
/// rebuilt frames and DTX gaps land in their slots the same way.
pub(crate) fn audio_packet(data: &str0m::media::MediaData, payload: Vec<u8>) -> RtpPacket {
    let slot = data.time.numer() / parley_media::audio::FRAME_SAMPLES as u64;
    RtpPacket {
        payload_type: *data.pt,
        // The jitter buffer unwraps 16-bit sequence numbers.
        sequence_number: slot as u16,
        timestamp: data.time.numer() as u32,
        ssrc: 1,
        marker: false,
        payload,
    }
}
