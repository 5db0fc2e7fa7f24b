//! One participant's side of a group call through the SFU, sans-IO: a str0m
//! session publishing Opus (and H.264) encrypted with this participant's
//! sender key, receiving every other participant's tracks on the lines the
//! SFU adds, and following the SFU's control messages.
//!
//! Sender keys ([`crate::call::group_e2ee`]) travel outside this session,
//! over pairwise E2E envelopes: the session says whom to send its key to
//! ([`GroupEvent::SendKey`]) and takes the keys others sent
//! ([`GroupSession::add_key`]). Its key choreography:
//!
//! - welcomed: send the current key to everyone already there;
//! - someone joins: ratchet, send the new key to the newcomer only (the
//!   others follow by ratcheting their copy when frames say so);
//! - someone leaves: replace the key, send it to everyone who remains.
//!
//! In a demo room ([`GroupKeys::Passphrase`]) every key follows from the
//! room passphrase and the participant's name and device
//! ([`crate::call::group_e2ee::passphrase_key`]): no keys are sent, and
//! joins and leaves change none.
//!
//! Like [`crate::call::media_session::MediaSession`], it takes `now` on
//! every call and queues datagrams; a shell owns the socket and the clock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parley_media::audio::AudioFrame;
use parley_media::h264::{H264Config, H264Decoder, H264Encoder};
use parley_media::jitter_buffer::{JitterBuffer, JitterBufferConfig, Playout};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use parley_media::video::I420Frame;
use parley_wire::sfu::{CHANNEL_LABEL, ControlMessage, Participant, TrackKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, KeyframeRequestKind, MediaKind, MediaTime, Mid, Rid, Simulcast,
    SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};

use crate::call::e2ee::E2eeError;
use crate::call::group_e2ee::{SenderDecryptor, SenderEncryptor, SenderKey, passphrase_key};
use crate::call::media_session::{audio_packet, codec_pt};

/// Opus bitrate, as in 1:1 calls.
const OPUS_BITRATE_BPS: u32 = 48_000;
/// Video bitrate of a single stream, or of simulcast's high layer.
const VIDEO_BITRATE_BPS: u32 = 600_000;
/// Bitrate of simulcast's low layer (half the width and height).
const LOW_LAYER_BITRATE_BPS: u32 = 150_000;
/// Simulcast layer names, highest first (the SFU's convention).
const HIGH: &str = "h";
const LOW: &str = "l";
/// Keyframe requests to one sender at most this often.
const PLI_INTERVAL: Duration = Duration::from_millis(200);
/// An audio level above this (dBov) is flagged as voice activity.
const VOICE_DBOV: i8 = -50;

/// Why the session failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupSessionError {
    /// str0m refused an SDP or an input.
    #[error("WebRTC: {0}")]
    Rtc(#[from] RtcError),
    /// An SDP that does not parse.
    #[error("bad SDP: {0}")]
    Sdp(String),
    /// A codec failed.
    #[error("media: {0}")]
    Media(String),
    /// Encryption failed.
    #[error(transparent)]
    E2ee(#[from] E2eeError),
}

/// What a participant publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Audio only.
    Audio,
    /// Audio and one video stream.
    Video,
    /// Audio and video as two simulcast layers: `h` as captured and `l` at
    /// half the width and height. The SFU sends each subscriber the layer
    /// its bandwidth allows, and tells this session which layers nobody
    /// receives (dynacast): those are not encoded.
    Simulcast,
}

/// Where the participants' sender keys come from.
#[derive(Clone)]
pub enum GroupKeys {
    /// Random keys, handed out in E2E envelopes ([`GroupEvent::SendKey`],
    /// [`GroupSession::add_key`]).
    SenderKeys,
    /// A demo room: derived from the passphrase for each (user, device).
    Passphrase {
        /// The room passphrase.
        passphrase: String,
        /// This participant's name, as its join token has it.
        user: String,
        /// This participant's device id, as its join token has it.
        device: String,
    },
}

impl std::fmt::Debug for GroupKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SenderKeys => f.write_str("SenderKeys"),
            Self::Passphrase { user, device, .. } => {
                write!(f, "Passphrase({user}, {device})")
            }
        }
    }
}

/// What the session tells its shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEvent {
    /// ICE and DTLS to the SFU are up.
    Connected,
    /// The SFU admitted this participant under this identity.
    Welcome(Participant),
    /// Someone is in the call (at the welcome) or came in.
    Joined(Participant),
    /// Someone left, and why.
    Left(Participant, String),
    /// Who speaks now.
    ActiveSpeaker(Participant),
    /// Send this sender key to that participant's device, E2E.
    SendKey {
        /// The recipient.
        to: Participant,
        /// The key.
        key: SenderKey,
    },
    /// A participant's frames do not decrypt (first failure, and why).
    DecryptFailed(Participant, String),
}

/// Counters per other participant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteStats {
    /// Audio frames decrypted.
    pub audio_frames: u64,
    /// Pictures decoded.
    pub pictures: u64,
    /// Times its picture size changed (the SFU switched simulcast layers).
    pub layer_switches: u64,
    /// Frames that did not decrypt.
    pub decrypt_failures: u64,
    /// Keyframe requests sent for its video.
    pub plis_sent: u64,
}

/// One other participant's receive state.
struct Remote {
    who: Participant,
    jitter: JitterBuffer,
    /// Made at its first picture: a participant who sends only audio
    /// costs no decoder.
    decoder: Option<H264Decoder>,
    waiting_for_keyframe: bool,
    video_mid: Option<Mid>,
    last_pli: Option<Instant>,
    decrypt_failed: bool,
    /// The size of its last picture.
    last_size: Option<(usize, usize)>,
    stats: RemoteStats,
}

/// A participant's group-call media.
pub struct GroupSession {
    rtc: Rtc,
    room: String,
    audio_mid: Mid,
    video_mid: Option<Mid>,
    channel: Option<ChannelId>,
    pending: Option<SdpPendingOffer>,
    connected: bool,
    me: Option<Participant>,
    /// Line -> (kind, participant id), from the SFU's `track` messages.
    tracks: HashMap<Mid, (TrackKind, u64)>,
    remotes: BTreeMap<u64, Remote>,
    /// Counters of participants who left.
    departed: Vec<(Participant, RemoteStats)>,
    encryptor: SenderEncryptor,
    /// The room passphrase, in a demo room.
    passphrase: Option<String>,
    /// Keys by (user, device): they may arrive before the SFU names the
    /// participant.
    keys: HashMap<(String, String), SenderDecryptor>,
    opus: OpusEncoder,
    h264: Option<H264Encoder>,
    /// Simulcast's low layer encoder (`None`: not simulcast, or not
    /// started).
    h264_low: Option<H264Encoder>,
    simulcast: bool,
    /// Dynacast: the layers the SFU wants, high and low.
    send_layers: [bool; 2],
    audio_time: u64,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<GroupEvent>,
    pictures: VecDeque<(Participant, I420Frame)>,
    /// Offers from the SFU answered so far.
    renegotiations: u64,
    /// Decode what arrives, or hand it over as decrypted frames.
    delivery: Delivery,
    frames: VecDeque<ReceivedFrame>,
    /// str0m's latest ingress counters per line: (packets, bytes).
    ingress: HashMap<Mid, (u64, u64)>,
    timeout: Instant,
}

/// What a session does with the media it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Decrypt, buffer and decode, for people to hear and see.
    Decode,
    /// Decrypt and hand over ([`GroupSession::poll_frame`]): a load
    /// generator measures delivery, and decoding every stream of a large
    /// room would measure the generator instead of the SFU.
    Frames,
}

/// A decrypted frame, in [`Delivery::Frames`] sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// Whose it is.
    pub from: Participant,
    /// Audio (an Opus packet) or video (an H.264 access unit, Annex B).
    pub kind: TrackKind,
    /// The plaintext the sender encrypted.
    pub data: Vec<u8>,
}

impl GroupSession {
    /// A session publishing audio (and video when `video`); returns it and
    /// the SDP offer for the SFU's join route.
    pub fn offer(
        now: Instant,
        local_addr: SocketAddr,
        room: &str,
        publish: Publish,
        keys: GroupKeys,
    ) -> Result<(Self, String), GroupSessionError> {
        let role = parley_rtc::Role::GroupParticipant;
        Self::offer_as(now, local_addr, room, publish, keys, role, Delivery::Decode)
    }

    /// A load generator's participant: the same session with the load
    /// generator's profile ([`parley_rtc::Role::LoadGenerator`]: the
    /// participant's settings plus ingress counters), sending pre-encoded
    /// frames ([`send_encoded_audio`](Self::send_encoded_audio),
    /// [`send_encoded_video`](Self::send_encoded_video)) and handing
    /// received frames over decrypted but not decoded
    /// ([`poll_frame`](Self::poll_frame)).
    pub fn offer_load_generator(
        now: Instant,
        local_addr: SocketAddr,
        room: &str,
        publish: Publish,
        keys: GroupKeys,
    ) -> Result<(Self, String), GroupSessionError> {
        let role = parley_rtc::Role::LoadGenerator;
        Self::offer_as(now, local_addr, room, publish, keys, role, Delivery::Frames)
    }

    fn offer_as(
        now: Instant,
        local_addr: SocketAddr,
        room: &str,
        publish: Publish,
        keys: GroupKeys,
        role: parley_rtc::Role,
        delivery: Delivery,
    ) -> Result<(Self, String), GroupSessionError> {
        let mut rtc = parley_rtc::build(role, now);
        let candidate = Candidate::host(local_addr, "udp")
            .map_err(|e| GroupSessionError::Sdp(format!("local candidate {local_addr}: {e}")))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let audio_mid = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let layers = (publish == Publish::Simulcast).then(|| Simulcast {
            send: vec![SimulcastLayer::new(HIGH), SimulcastLayer::new(LOW)],
            recv: vec![],
        });
        let video_mid = (publish != Publish::Audio)
            .then(|| change.add_media(MediaKind::Video, Direction::SendOnly, None, None, layers));
        change.add_channel(CHANNEL_LABEL.to_string());
        let (offer, pending) = change
            .apply()
            .expect("a change with media lines always yields an offer");
        let opus = OpusEncoder::new(OpusConfig {
            bitrate_bps: OPUS_BITRATE_BPS,
            ..OpusConfig::default()
        })
        .map_err(|e| GroupSessionError::Media(e.to_string()))?;
        let mut this = Self {
            rtc,
            room: room.to_string(),
            audio_mid,
            video_mid,
            channel: None,
            pending: Some(pending),
            connected: false,
            me: None,
            tracks: HashMap::new(),
            remotes: BTreeMap::new(),
            departed: Vec::new(),
            encryptor: match &keys {
                GroupKeys::SenderKeys => SenderEncryptor::new(room)?,
                GroupKeys::Passphrase {
                    passphrase,
                    user,
                    device,
                } => {
                    SenderEncryptor::with_key(room, passphrase_key(passphrase, room, user, device))?
                }
            },
            passphrase: match keys {
                GroupKeys::SenderKeys => None,
                GroupKeys::Passphrase { passphrase, .. } => Some(passphrase),
            },
            keys: HashMap::new(),
            opus,
            h264: None,
            h264_low: None,
            simulcast: publish == Publish::Simulcast,
            send_layers: [true, true],
            audio_time: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            pictures: VecDeque::new(),
            renegotiations: 0,
            delivery,
            frames: VecDeque::new(),
            ingress: HashMap::new(),
            timeout: now,
        };
        this.drain(now)?;
        Ok((this, offer.to_sdp_string()))
    }

    /// Applies the SFU's answer to the join offer.
    pub fn accept_answer(&mut self, now: Instant, answer: &str) -> Result<(), GroupSessionError> {
        let answer = SdpAnswer::from_sdp_string(answer)
            .map_err(|e| GroupSessionError::Sdp(e.to_string()))?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| GroupSessionError::Sdp("no offer outstanding".into()))?;
        self.rtc.sdp_api().accept_answer(pending, answer)?;
        if let Some(mid) = self.video_mid {
            let rids = if self.simulcast {
                vec![Some(Rid::from(HIGH)), Some(Rid::from(LOW))]
            } else {
                vec![None]
            };
            for rid in rids {
                parley_rtc::on_video_send_stream(&mut self.rtc, mid, rid);
            }
        }
        self.drain(now)
    }

    /// Whether ICE and DTLS to the SFU are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// This participant, once welcomed.
    pub fn me(&self) -> Option<&Participant> {
        self.me.as_ref()
    }

    /// The other participants now.
    pub fn participants(&self) -> Vec<Participant> {
        self.remotes.values().map(|r| r.who.clone()).collect()
    }

    /// Counters for each other participant, those who left included.
    pub fn remote_stats(&self) -> Vec<(Participant, RemoteStats)> {
        self.remotes
            .values()
            .map(|r| (r.who.clone(), r.stats.clone()))
            .chain(self.departed.iter().cloned())
            .collect()
    }

    /// Simulcast: whether the high and the low layer are being sent
    /// (dynacast turns off what nobody receives); `None` when not
    /// simulcast.
    pub fn simulcast_layers(&self) -> Option<(bool, bool)> {
        self.simulcast
            .then_some((self.send_layers[0], self.send_layers[1]))
    }

    /// The sender key in use.
    pub fn sender_key(&self) -> &SenderKey {
        self.encryptor.key()
    }

    /// Offers from the SFU answered so far: one each time the SFU adds or
    /// stops someone's media lines.
    pub fn renegotiations(&self) -> u64 {
        self.renegotiations
    }

    /// Asks the SFU to send at most simulcast layer `rid` of `participant`'s
    /// video (the size this participant shows it at: a small tile asks for
    /// `l`); `None` lifts the cap. `false` when that participant's video
    /// line is not known yet.
    pub fn cap_video_layer(
        &mut self,
        now: Instant,
        participant: u64,
        rid: Option<&str>,
    ) -> Result<bool, GroupSessionError> {
        let Some(mid) = self.remotes.get(&participant).and_then(|r| r.video_mid) else {
            return Ok(false);
        };
        self.send_control(&ControlMessage::MaxLayer {
            mid: mid.to_string(),
            rid: rid.map(str::to_string),
        });
        self.drain(now)?;
        Ok(true)
    }

    /// A sender key `user`'s device `device` sent this participant.
    pub fn add_key(
        &mut self,
        now: Instant,
        user: &str,
        device: &str,
        key: SenderKey,
    ) -> Result<(), GroupSessionError> {
        self.keys
            .entry((user.to_string(), device.to_string()))
            .or_insert_with(|| SenderDecryptor::new(&self.room))
            .add_key(key)?;
        // Its pictures so far did not decrypt: start over at a keyframe.
        let ids: Vec<u64> = self
            .remotes
            .values()
            .filter(|r| r.who.user == user && r.who.device == device)
            .map(|r| r.who.id)
            .collect();
        for id in ids {
            if let Some(remote) = self.remotes.get_mut(&id) {
                remote.waiting_for_keyframe = true;
                remote.decrypt_failed = false;
            }
            self.request_keyframe(now, id);
        }
        self.drain(now)
    }

    /// A datagram from the SFU.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) -> Result<(), GroupSessionError> {
        let Ok(contents) = data.try_into() else {
            return Ok(());
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
        if self.rtc.accepts(&input) {
            self.rtc.handle_input(input)?;
        }
        self.drain(now)
    }

    /// When [`GroupSession::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Instant {
        self.timeout
    }

    /// Drives str0m's timers.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), GroupSessionError> {
        self.rtc.handle_input(Input::Timeout(now))?;
        self.drain(now)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<GroupEvent> {
        self.events.pop_front()
    }

    /// The next decoded picture and whose it is.
    pub fn poll_picture(&mut self) -> Option<(Participant, I420Frame)> {
        self.pictures.pop_front()
    }

    /// The next received frame, in a load generator's session.
    pub fn poll_frame(&mut self) -> Option<ReceivedFrame> {
        self.frames.pop_front()
    }

    /// Packets and bytes received on every line, as str0m last counted
    /// them (load generator sessions only; others keep no counters).
    pub fn ingress(&self) -> (u64, u64) {
        self.ingress
            .values()
            .fold((0, 0), |(p, b), &(dp, db)| (p + dp, b + db))
    }

    /// Each other participant's audio to play now (call every 20 ms).
    pub fn poll_audio(&mut self, now: Instant) -> Vec<(Participant, Playout)> {
        self.remotes
            .values_mut()
            .map(|r| (r.who.clone(), r.jitter.poll_frame(now)))
            .collect()
    }

    /// Leaves: tells the SFU, which tells the others at once.
    pub fn leave(&mut self, now: Instant) -> Result<(), GroupSessionError> {
        self.send_control(&ControlMessage::Leave);
        self.drain(now)
    }

    /// Encodes, encrypts and sends 20 ms of audio.
    pub fn send_audio(
        &mut self,
        now: Instant,
        frame: &AudioFrame,
    ) -> Result<(), GroupSessionError> {
        if !self.connected {
            return Ok(());
        }
        let level = audio_level(frame);
        let packet = self
            .opus
            .encode(frame)
            .map_err(|e| GroupSessionError::Media(e.to_string()))?;
        let sealed = self.encryptor.encrypt_audio(&packet)?;
        self.write_audio(now, level, sealed)
    }

    fn write_audio(
        &mut self,
        now: Instant,
        level: i8,
        sealed: Vec<u8>,
    ) -> Result<(), GroupSessionError> {
        let time = MediaTime::new(self.audio_time, Frequency::FORTY_EIGHT_KHZ);
        self.audio_time += parley_media::audio::FRAME_SAMPLES as u64;
        let Some(writer) = self.rtc.writer(self.audio_mid) else {
            return Ok(());
        };
        let Some(pt) = codec_pt(&writer, Codec::Opus) else {
            return Ok(());
        };
        writer
            .audio_level(level, level > VOICE_DBOV)
            .write(pt, now, time, sealed)?;
        self.drain(now)
    }

    /// Encrypts and sends an Opus packet encoded elsewhere (20 ms, audio
    /// level `level` dBov).
    pub fn send_encoded_audio(
        &mut self,
        now: Instant,
        packet: &[u8],
        level: i8,
    ) -> Result<(), GroupSessionError> {
        if !self.connected {
            return Ok(());
        }
        let sealed = self.encryptor.encrypt_audio(packet)?;
        self.write_audio(now, level, sealed)
    }

    /// Encrypts and sends an H.264 access unit encoded elsewhere, `pts`
    /// into the stream (single-layer video only).
    pub fn send_encoded_video(
        &mut self,
        now: Instant,
        annex_b: &[u8],
        pts: Duration,
    ) -> Result<(), GroupSessionError> {
        let Some(mid) = self.video_mid.filter(|_| self.connected && !self.simulcast) else {
            return Ok(());
        };
        let time = MediaTime::from_90khz((pts.as_micros() * 90 / 1000) as u64);
        let sealed = self.encryptor.encrypt_h264(annex_b)?;
        self.write_video(now, mid, None, time, sealed)?;
        self.drain(now)
    }

    /// Encodes, encrypts and sends one picture captured `pts` into the
    /// stream (both layers of it when simulcast, as the SFU wants them).
    pub fn send_video(
        &mut self,
        now: Instant,
        picture: &I420Frame,
        pts: Duration,
    ) -> Result<(), GroupSessionError> {
        let Some(mid) = self.video_mid.filter(|_| self.connected) else {
            return Ok(());
        };
        let ticks = (pts.as_micros() * 90 / 1000) as u64;
        let time = MediaTime::from_90khz(ticks);
        if !self.simulcast {
            let encoder = started(&mut self.h264, picture, VIDEO_BITRATE_BPS)?;
            if let Some(data) = encode(encoder, picture, pts)? {
                let sealed = self.encryptor.encrypt_h264(&data)?;
                self.write_video(now, mid, None, time, sealed)?;
            }
            return self.drain(now);
        }
        if self.send_layers[0] {
            let encoder = started(&mut self.h264, picture, VIDEO_BITRATE_BPS)?;
            if let Some(data) = encode(encoder, picture, pts)? {
                let sealed = self.encryptor.encrypt_h264(&data)?;
                self.write_video(now, mid, Some(Rid::from(HIGH)), time, sealed)?;
            }
        }
        if self.send_layers[1]
            && let Some(small) = picture.downscale_half()
        {
            let encoder = started(&mut self.h264_low, &small, LOW_LAYER_BITRATE_BPS)?;
            if let Some(data) = encode(encoder, &small, pts)? {
                let sealed = self.encryptor.encrypt_h264(&data)?;
                self.write_video(now, mid, Some(Rid::from(LOW)), time, sealed)?;
            }
        }
        self.drain(now)
    }

    fn write_video(
        &mut self,
        now: Instant,
        mid: Mid,
        rid: Option<Rid>,
        time: MediaTime,
        sealed: Vec<u8>,
    ) -> Result<(), GroupSessionError> {
        let Some(writer) = self.rtc.writer(mid) else {
            return Ok(());
        };
        let Some(pt) = codec_pt(&writer, Codec::H264) else {
            return Ok(());
        };
        let writer = match rid {
            Some(rid) => writer.rid(rid),
            None => writer,
        };
        writer.write(pt, now, time, sealed)?;
        Ok(())
    }

    /// Dynacast: the SFU says which layers of our video anyone receives.
    fn set_layers(&mut self, active: &[String]) {
        let want = [HIGH, LOW].map(|rid| active.iter().any(|a| a == rid));
        for (i, encoder) in [&mut self.h264, &mut self.h264_low].into_iter().enumerate() {
            // A layer that comes back starts with a keyframe: its
            // receivers have nothing to decode from.
            if want[i]
                && !self.send_layers[i]
                && let Some(encoder) = encoder
            {
                encoder.request_keyframe();
            }
        }
        if want != self.send_layers {
            tracing::debug!(
                high = want[0],
                low = want[1],
                "simulcast layers the SFU wants"
            );
        }
        self.send_layers = want;
    }

    fn send_control(&mut self, message: &ControlMessage) {
        let Some(id) = self.channel else {
            return;
        };
        if let Some(mut channel) = self.rtc.channel(id)
            && let Err(e) = channel.write(false, message.to_json().as_bytes())
        {
            tracing::debug!(error = %e, "control message not sent");
        }
    }

    fn drain(&mut self, now: Instant) -> Result<(), GroupSessionError> {
        loop {
            match parley_rtc::poll_output(&mut self.rtc, now)? {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return Ok(());
                }
                Output::Transmit(t) => self
                    .transmits
                    .push_back((t.destination, t.contents.to_vec())),
                Output::Event(event) => self.handle_event(now, event)?,
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event) -> Result<(), GroupSessionError> {
        match event {
            Event::Connected => {
                self.connected = true;
                self.events.push_back(GroupEvent::Connected);
            }
            Event::ChannelOpen(id, label) if label == CHANNEL_LABEL => self.channel = Some(id),
            Event::ChannelData(data) if Some(data.id) == self.channel => {
                match ControlMessage::from_json(&data.data) {
                    Ok(message) => self.handle_control(now, message)?,
                    Err(e) => tracing::debug!(error = %e, "malformed SFU control message"),
                }
            }
            Event::KeyframeRequest(request) => {
                let encoder = match request.rid.as_deref() {
                    Some(LOW) => &mut self.h264_low,
                    _ => &mut self.h264,
                };
                if let Some(encoder) = encoder {
                    encoder.request_keyframe();
                }
            }
            Event::MediaIngressStats(stats) => {
                self.ingress.insert(stats.mid, (stats.packets, stats.bytes));
            }
            Event::MediaData(data) => {
                let Some(&(kind, id)) = self.tracks.get(&data.mid) else {
                    return Ok(());
                };
                let Some(remote) = self.remotes.get_mut(&id) else {
                    return Ok(());
                };
                let key = (remote.who.user.clone(), remote.who.device.clone());
                let opened = match (self.keys.get_mut(&key), kind) {
                    (None, _) => Err("no sender key from this participant yet".to_string()),
                    (Some(keys), TrackKind::Audio) => {
                        keys.decrypt_audio(&data.data).map_err(|e| e.to_string())
                    }
                    (Some(keys), TrackKind::Video) => {
                        keys.decrypt_h264(&data.data).map_err(|e| e.to_string())
                    }
                };
                let plain = match opened {
                    Ok(plain) => plain,
                    Err(why) => {
                        remote.stats.decrypt_failures += 1;
                        if !remote.decrypt_failed {
                            remote.decrypt_failed = true;
                            self.events
                                .push_back(GroupEvent::DecryptFailed(remote.who.clone(), why));
                        }
                        if kind == TrackKind::Video {
                            remote.waiting_for_keyframe = true;
                        }
                        return Ok(());
                    }
                };
                if self.delivery == Delivery::Frames {
                    if kind == TrackKind::Audio {
                        remote.stats.audio_frames += 1;
                    }
                    self.frames.push_back(ReceivedFrame {
                        from: remote.who.clone(),
                        kind,
                        data: plain,
                    });
                    return Ok(());
                }
                match kind {
                    TrackKind::Audio => {
                        remote.stats.audio_frames += 1;
                        remote.jitter.handle_packet(now, audio_packet(&data, plain));
                    }
                    TrackKind::Video => {
                        if !data.contiguous {
                            remote.waiting_for_keyframe = true;
                        }
                        if remote.waiting_for_keyframe && !data.is_keyframe() {
                            self.request_keyframe(now, id);
                            return Ok(());
                        }
                        let decoder = match &mut remote.decoder {
                            Some(decoder) => decoder,
                            None => remote.decoder.insert(
                                H264Decoder::new()
                                    .map_err(|e| GroupSessionError::Media(e.to_string()))?,
                            ),
                        };
                        match decoder.decode(&plain) {
                            Ok(Some(picture)) => {
                                remote.waiting_for_keyframe = false;
                                remote.stats.pictures += 1;
                                let size = (picture.width(), picture.height());
                                if remote.last_size.is_some_and(|s| s != size) {
                                    remote.stats.layer_switches += 1;
                                }
                                remote.last_size = Some(size);
                                self.pictures.push_back((remote.who.clone(), picture));
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::debug!(error = %e, "undecodable picture");
                                remote.waiting_for_keyframe = true;
                                self.request_keyframe(now, id);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_control(
        &mut self,
        now: Instant,
        message: ControlMessage,
    ) -> Result<(), GroupSessionError> {
        match message {
            ControlMessage::Welcome { you, others } => {
                self.me = Some(you.clone());
                self.events.push_back(GroupEvent::Welcome(you));
                for other in others {
                    self.add_remote(&other)?;
                    self.events.push_back(GroupEvent::Joined(other.clone()));
                    if self.passphrase.is_some() {
                        continue;
                    }
                    self.events.push_back(GroupEvent::SendKey {
                        to: other,
                        key: self.encryptor.key().clone(),
                    });
                }
            }
            ControlMessage::Joined { participant } if self.passphrase.is_some() => {
                self.add_remote(&participant)?;
                self.events.push_back(GroupEvent::Joined(participant));
            }
            ControlMessage::Joined { participant } => {
                self.add_remote(&participant)?;
                let key = self.encryptor.ratchet()?.clone();
                self.events
                    .push_back(GroupEvent::Joined(participant.clone()));
                self.events.push_back(GroupEvent::SendKey {
                    to: participant,
                    key,
                });
            }
            ControlMessage::Left {
                participant,
                reason,
            } => {
                if let Some(remote) = self.remotes.remove(&participant.id) {
                    self.departed.push((remote.who, remote.stats));
                }
                self.tracks.retain(|_, (_, id)| *id != participant.id);
                self.events.push_back(GroupEvent::Left(participant, reason));
                if self.passphrase.is_some() {
                    return Ok(());
                }
                let key = self.encryptor.replace()?.clone();
                for remote in self.remotes.values() {
                    self.events.push_back(GroupEvent::SendKey {
                        to: remote.who.clone(),
                        key: key.clone(),
                    });
                }
            }
            ControlMessage::Track {
                mid,
                kind,
                participant,
            } => {
                let mid = Mid::from(mid.as_str());
                self.tracks.insert(mid, (kind, participant.id));
                if let (TrackKind::Video, Some(remote)) =
                    (kind, self.remotes.get_mut(&participant.id))
                {
                    remote.video_mid = Some(mid);
                }
            }
            ControlMessage::Offer { sdp } => {
                let offer = SdpOffer::from_sdp_string(&sdp)
                    .map_err(|e| GroupSessionError::Sdp(e.to_string()))?;
                let answer = self.rtc.sdp_api().accept_offer(offer)?;
                self.renegotiations += 1;
                self.send_control(&ControlMessage::Answer {
                    sdp: answer.to_sdp_string(),
                });
            }
            ControlMessage::ActiveSpeaker { participant } => {
                self.events
                    .push_back(GroupEvent::ActiveSpeaker(participant));
            }
            ControlMessage::Layers { mid, active } => {
                if self.video_mid.is_some_and(|m| *m == *mid) {
                    self.set_layers(&active);
                }
            }
            ControlMessage::Answer { .. }
            | ControlMessage::MaxLayer { .. }
            | ControlMessage::Leave => {
                tracing::debug!("the SFU sent a participant's control message");
            }
        }
        let _ = now;
        Ok(())
    }

    fn add_remote(&mut self, who: &Participant) -> Result<(), GroupSessionError> {
        if let Some(passphrase) = &self.passphrase {
            let key = passphrase_key(passphrase, &self.room, &who.user, &who.device);
            self.keys
                .entry((who.user.clone(), who.device.clone()))
                .or_insert_with(|| SenderDecryptor::new(&self.room))
                .add_key(key)?;
        }
        let jitter = JitterBuffer::new(JitterBufferConfig::default())
            .map_err(|e| GroupSessionError::Media(e.to_string()))?;
        self.remotes.insert(
            who.id,
            Remote {
                who: who.clone(),
                jitter,
                decoder: None,
                waiting_for_keyframe: true,
                video_mid: None,
                last_pli: None,
                decrypt_failed: false,
                last_size: None,
                stats: RemoteStats::default(),
            },
        );
        Ok(())
    }

    /// Asks (through the SFU) for a keyframe of participant `id`'s video.
    fn request_keyframe(&mut self, now: Instant, id: u64) {
        let Some(remote) = self.remotes.get_mut(&id) else {
            return;
        };
        let Some(mid) = remote.video_mid else {
            return;
        };
        if remote.last_pli.is_some_and(|t| now < t + PLI_INTERVAL) {
            return;
        }
        if let Some(mut writer) = self.rtc.writer(mid)
            && writer
                .request_keyframe(None, KeyframeRequestKind::Pli)
                .is_ok()
        {
            remote.last_pli = Some(now);
            remote.stats.plis_sent += 1;
        }
    }
}

/// `slot`'s encoder, started for `picture`'s size on first use.
fn started<'a>(
    slot: &'a mut Option<H264Encoder>,
    picture: &I420Frame,
    bitrate_bps: u32,
) -> Result<&'a mut H264Encoder, GroupSessionError> {
    if let Some(encoder) = slot {
        return Ok(encoder);
    }
    let encoder = H264Encoder::new(H264Config {
        width: picture.width(),
        height: picture.height(),
        bitrate_bps,
        max_fps: 30.0,
    })
    .map_err(|e| GroupSessionError::Media(e.to_string()))?;
    Ok(slot.insert(encoder))
}

/// One picture through `encoder`: Annex B, or `None` when rate control
/// skipped it.
fn encode(
    encoder: &mut H264Encoder,
    picture: &I420Frame,
    pts: Duration,
) -> Result<Option<Vec<u8>>, GroupSessionError> {
    Ok(encoder
        .encode(picture, pts)
        .map_err(|e| GroupSessionError::Media(e.to_string()))?
        .map(|e| e.data))
}

/// RFC 6464 level of a frame: dBov, -127 (silence) to 0 (full scale).
pub fn audio_level(frame: &AudioFrame) -> i8 {
    let samples = frame.samples();
    let power = samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64;
    let dbov = 10.0 * (power / f64::from(i16::MAX).powi(2)).log10();
    dbov.clamp(-127.0, 0.0) as i8
}
