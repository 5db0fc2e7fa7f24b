//! A test participant: its own str0m session on its own loopback UDP
//! socket, publishing real Opus (a tone) and real H.264 (the numbered test
//! pattern, each participant from its own starting number), answering the
//! SFU's renegotiation offers on the control data channel, and decoding
//! what it receives so a test can tell whose pictures arrived.

#![allow(dead_code)] // Each test file uses a different part.

use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use parley_client::call::group_e2ee::{SenderDecryptor, SenderEncryptor};
use parley_client::call::group_session::audio_level;
use parley_media::audio::{AudioFrame, AudioSource};
use parley_media::h264::{H264Config, H264Decoder, H264Encoder};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use parley_media::test_pattern::{TestPatternSource, read_frame_number};
use parley_media::tone::ToneSource;
use parley_media::video::FrameRate;
use parley_sfu::{JoinClaims, SfuConfig, SfuHandle, TokenKey};
use parley_wire::sfu::{CHANNEL_LABEL, ControlMessage, Participant, TrackKind};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{
    Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

pub const WIDTH: usize = 320;
/// A picture whose frame number could not be read.
pub const UNREADABLE: u16 = u16::MAX;
pub const HEIGHT: usize = 240;
const FPS: u32 = 30;

/// An SFU on a loopback port, run by its own tokio runtime.
pub struct TestSfu {
    pub runtime: tokio::runtime::Runtime,
    pub handle: SfuHandle,
    pub key: TokenKey,
}

impl TestSfu {
    pub fn start(tune: impl FnOnce(&mut SfuConfig)) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let key = TokenKey::generate();
        let handle = runtime.block_on(async {
            let (socket, public) = parley_sfu::server::bind("127.0.0.1:0".parse().unwrap(), None)
                .await
                .unwrap();
            let mut config = SfuConfig::new(public, key.clone());
            tune(&mut config);
            parley_sfu::server::start(socket, config)
        });
        Self {
            runtime,
            handle,
            key,
        }
    }

    /// A token for `user` in `room`, valid for a minute.
    pub fn token(&self, room: &str, user: &str) -> String {
        self.key.sign(&JoinClaims {
            room: room.into(),
            user: user.into(),
            device: format!("{user}-phone"),
            expires_at: unix_now() + 60,
        })
    }

    /// Joins `peer` to `room` with a fresh token.
    pub fn join(&self, peer: &mut TestPeer, room: &str, offer: &str) {
        let token = self.token(room, &peer.name);
        let answer = self
            .runtime
            .block_on(self.handle.join(room, &token, offer))
            .expect("SFU running")
            .expect("join accepted");
        peer.accept_answer(&answer);
    }

    pub fn participants(&self, room: &str) -> Vec<Participant> {
        self.runtime
            .block_on(self.handle.participants(room))
            .unwrap()
    }
}

pub fn unix_now() -> u64 {
    parley_wire::clock::now_secs()
}

/// What one participant got from another.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub audio_frames: u64,
    /// Frame numbers of the decoded pictures, in order.
    pub pictures: Vec<u16>,
    /// Their widths, in the same order.
    pub widths: Vec<usize>,
}

pub struct TestPeer {
    pub name: String,
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    channel: Option<ChannelId>,
    pending: Option<SdpPendingOffer>,
    audio_mid: Mid,
    video_mid: Mid,
    pub connected: bool,
    /// This participant's pictures are numbered from here.
    pub first_picture: u64,
    opus: OpusEncoder,
    h264: H264Encoder,
    /// Simulcast's low layer (`l`); `h264` is then layer `h`.
    h264_low: Option<H264Encoder>,
    pattern: TestPatternSource,
    /// A bottleneck on what it receives: datagrams queue behind this rate
    /// (more than 300 ms queued are dropped), as on a slow link.
    pub downlink_kbps: Option<f64>,
    downlink: VecDeque<(Instant, SocketAddr, Vec<u8>)>,
    /// Pictures the decoder refused.
    pub decode_errors: u64,
    /// Publishes video when true (its video line stays either way).
    pub video: bool,
    last_pli: Option<Instant>,
    waiting_for_keyframe: HashMap<Mid, bool>,
    tone: ToneSource,
    started: Option<Instant>,
    audio_sent: u64,
    video_sent: u64,
    pub tracks: HashMap<Mid, (TrackKind, Participant)>,
    decoders: HashMap<Mid, H264Decoder>,
    /// Who the SFU says this participant is.
    pub me: Option<Participant>,
    /// By sender's user name.
    pub received: HashMap<String, Received>,
    pub joined: Vec<Participant>,
    pub left: Vec<(Participant, String)>,
    /// Every control message, in order.
    pub control: Vec<ControlMessage>,
    /// Offers answered (renegotiations).
    pub offers_answered: u64,
    /// Keyframe requests the SFU sent this publisher.
    pub keyframe_requests: u64,
    /// Sends the tone when true, silence when false.
    pub speaking: bool,
    /// Active speakers announced, in order (user names).
    pub speakers: Vec<String>,
    /// Encrypts what it publishes, when set.
    pub encryptor: Option<SenderEncryptor>,
    /// Decrypts what each other user publishes (by user name).
    pub decryptors: HashMap<String, SenderDecryptor>,
    /// Frames that failed to decrypt.
    pub decrypt_failures: u64,
    /// The Opus packets it published, before encryption.
    pub sent_opus: Vec<Vec<u8>>,
}

impl TestPeer {
    /// A participant publishing audio and video; returns it and its offer.
    pub fn offer(name: &str, first_picture: u64) -> (Self, String) {
        Self::offer_with(name, first_picture, false)
    }

    /// A participant publishing its video as simulcast: layer `h` at
    /// 640x480 and layer `l` at 320x240.
    pub fn offer_simulcast(name: &str, first_picture: u64) -> (Self, String) {
        Self::offer_with(name, first_picture, true)
    }

    fn offer_with(name: &str, first_picture: u64, simulcast: bool) -> (Self, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let local = socket.local_addr().unwrap();
        let now = Instant::now();
        let mut rtc = parley_rtc::build(parley_rtc::Role::GroupParticipant, now);
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let audio_mid = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let layers = simulcast.then(|| Simulcast {
            send: vec![SimulcastLayer::new("h"), SimulcastLayer::new("l")],
            recv: vec![],
        });
        let video_mid = change.add_media(MediaKind::Video, Direction::SendOnly, None, None, layers);
        change.add_channel(CHANNEL_LABEL.to_string());
        let (offer, pending) = change.apply().unwrap();
        let (width, height, bitrate_bps) = if simulcast {
            (2 * WIDTH, 2 * HEIGHT, 600_000)
        } else {
            (WIDTH, HEIGHT, 300_000)
        };
        let config = H264Config {
            width,
            height,
            bitrate_bps,
            max_fps: FPS as f32,
        };
        let low = simulcast.then(|| {
            H264Encoder::new(H264Config {
                width: WIDTH,
                height: HEIGHT,
                bitrate_bps: 150_000,
                max_fps: FPS as f32,
            })
            .unwrap()
        });
        let peer = Self {
            name: name.to_string(),
            rtc,
            socket,
            local,
            channel: None,
            pending: Some(pending),
            audio_mid,
            video_mid,
            connected: false,
            first_picture,
            opus: OpusEncoder::new(OpusConfig::default()).unwrap(),
            h264: H264Encoder::new(config).unwrap(),
            h264_low: low,
            pattern: TestPatternSource::new(width, height, FrameRate::fps(FPS)).unwrap(),
            downlink_kbps: None,
            downlink: VecDeque::new(),
            decode_errors: 0,
            video: true,
            last_pli: None,
            waiting_for_keyframe: HashMap::new(),
            tone: ToneSource::new(440.0, 0.3),
            started: None,
            audio_sent: 0,
            video_sent: 0,
            tracks: HashMap::new(),
            decoders: HashMap::new(),
            me: None,
            received: HashMap::new(),
            joined: Vec::new(),
            left: Vec::new(),
            control: Vec::new(),
            offers_answered: 0,
            keyframe_requests: 0,
            speaking: true,
            speakers: Vec::new(),
            encryptor: None,
            decryptors: HashMap::new(),
            decrypt_failures: 0,
            sent_opus: Vec::new(),
        };
        (peer, offer.to_sdp_string())
    }

    pub fn accept_answer(&mut self, sdp: &str) {
        let answer = SdpAnswer::from_sdp_string(sdp).unwrap();
        let pending = self.pending.take().unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    /// Sends a control message to the SFU.
    pub fn send_control(&mut self, message: &ControlMessage) {
        let id = self.channel.expect("control channel open");
        self.rtc
            .channel(id)
            .unwrap()
            .write(false, message.to_json().as_bytes())
            .unwrap();
    }

    /// Its state in one line, for a failing test's message.
    pub fn describe(&self) -> String {
        let received: Vec<String> = self
            .received
            .iter()
            .map(|(u, r)| {
                format!(
                    "{u}: {} audio, {} pictures",
                    r.audio_frames,
                    r.pictures.len()
                )
            })
            .collect();
        format!(
            "{}: connected {}, channel {}, {} control messages, {} offers answered, \
             {} tracks, {} keyframe requests, sent {} audio {} video, received [{}]",
            self.name,
            self.connected,
            self.channel.is_some(),
            self.control.len(),
            self.offers_answered,
            self.tracks.len(),
            self.keyframe_requests,
            self.audio_sent,
            self.video_sent,
            received.join("; ")
        )
    }

    /// Frames received from `user` so far.
    pub fn from(&self, user: &str) -> Received {
        self.received.get(user).cloned().unwrap_or_default()
    }

    /// Reads its socket, publishes what is due, and sends what str0m has.
    pub fn step(&mut self, now: Instant) {
        let mut buf = [0u8; 2048];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((n, source)) if self.downlink_kbps.is_some() => {
                    let rate = self.downlink_kbps.unwrap() * 1000.0 / 8.0;
                    let start = self.downlink.back().map_or(now, |&(t, _, _)| t.max(now));
                    let release = start + Duration::from_secs_f64(n as f64 / rate);
                    if release < now + Duration::from_millis(300) {
                        self.downlink
                            .push_back((release, source, buf[..n].to_vec()));
                    }
                }
                Ok((n, source)) => {
                    let Ok(contents) = buf[..n].try_into() else {
                        continue;
                    };
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        },
                    );
                    self.rtc.handle_input(input).unwrap();
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{}: socket: {e}", self.name),
            }
        }
        while self.downlink.front().is_some_and(|&(t, _, _)| t <= now) {
            let (_, source, data) = self.downlink.pop_front().unwrap();
            if let Ok(contents) = data.as_slice().try_into() {
                let input = Input::Receive(
                    now,
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.local,
                        contents,
                    },
                );
                self.rtc.handle_input(input).unwrap();
            }
        }
        self.rtc.handle_input(Input::Timeout(now)).unwrap();
        self.publish(now);
        self.drain(now);
    }

    fn publish(&mut self, now: Instant) {
        if !self.connected {
            return;
        }
        let started = *self.started.get_or_insert(now);
        let elapsed = now - started;
        while Duration::from_millis(20 * self.audio_sent) <= elapsed {
            let tone = self.tone.next_frame().unwrap().unwrap();
            let frame = if self.speaking {
                tone
            } else {
                AudioFrame::silence()
            };
            let level = audio_level(&frame);
            let mut packet = self.opus.encode(&frame).unwrap();
            self.sent_opus.push(packet.clone());
            if let Some(encryptor) = &mut self.encryptor {
                packet = encryptor.encrypt_audio(&packet).unwrap();
            }
            let time = MediaTime::new(
                self.audio_sent * 960,
                str0m::media::Frequency::FORTY_EIGHT_KHZ,
            );
            let writer = self.rtc.writer(self.audio_mid).expect("own media line");
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .map(|p| p.pt())
                .expect("Opus negotiated");
            writer
                .audio_level(level, level > -50)
                .write(pt, now, time, packet)
                .unwrap();
            self.audio_sent += 1;
        }
        while self.video && Duration::from_secs(self.video_sent) / FPS <= elapsed {
            let pts = Duration::from_secs(self.video_sent) / FPS;
            let picture = self.pattern.frame(self.first_picture + self.video_sent);
            let time = MediaTime::from_90khz(self.video_sent * 90_000 / u64::from(FPS));
            let high_rid = self.h264_low.is_some().then(|| Rid::from("h"));
            if let Some(mut encoded) = self.h264.encode(&picture, pts).unwrap() {
                if let Some(encryptor) = &mut self.encryptor {
                    encoded.data = encryptor.encrypt_h264(&encoded.data).unwrap();
                }
                self.write_video(now, high_rid, time, encoded.data);
            }
            if let Some(low) = &mut self.h264_low {
                let small = picture.downscale_half().unwrap();
                if let Some(encoded) = low.encode(&small, pts).unwrap() {
                    self.write_video(now, Some(Rid::from("l")), time, encoded.data);
                }
            }
            self.video_sent += 1;
        }
    }

    fn write_video(&mut self, now: Instant, rid: Option<Rid>, time: MediaTime, data: Vec<u8>) {
        let writer = self.rtc.writer(self.video_mid).expect("own media line");
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::H264)
            .map(|p| p.pt())
            .expect("H.264 negotiated");
        let writer = match rid {
            Some(rid) => writer.rid(rid),
            None => writer,
        };
        writer.write(pt, now, time, data).unwrap();
    }

    fn drain(&mut self, now: Instant) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(event) => self.handle_event(now, event),
            }
        }
    }

    fn handle_event(&mut self, now: Instant, event: Event) {
        match event {
            Event::Connected => self.connected = true,
            Event::KeyframeRequest(request) => {
                self.keyframe_requests += 1;
                match (
                    &*request.rid.unwrap_or_else(|| Rid::from("h")),
                    &mut self.h264_low,
                ) {
                    ("l", Some(low)) => low.request_keyframe(),
                    _ => self.h264.request_keyframe(),
                }
            }
            Event::ChannelOpen(id, _) => self.channel = Some(id),
            Event::ChannelData(data) => {
                let message = ControlMessage::from_json(&data.data).expect("valid control JSON");
                self.control.push(message.clone());
                match message {
                    ControlMessage::Welcome { you, others } => {
                        self.me = Some(you);
                        self.joined.extend(others);
                    }
                    ControlMessage::Joined { participant } => self.joined.push(participant),
                    ControlMessage::Left {
                        participant,
                        reason,
                    } => self.left.push((participant, reason)),
                    ControlMessage::Track {
                        mid,
                        kind,
                        participant,
                    } => {
                        self.tracks
                            .insert(Mid::from(mid.as_str()), (kind, participant));
                    }
                    ControlMessage::Offer { sdp } => {
                        let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                        let answer = self.rtc.sdp_api().accept_offer(offer).unwrap();
                        self.offers_answered += 1;
                        self.send_control(&ControlMessage::Answer {
                            sdp: answer.to_sdp_string(),
                        });
                    }
                    ControlMessage::ActiveSpeaker { participant } => {
                        self.speakers.push(participant.user);
                    }
                    // Dynacast: recorded in `control`; this publisher keeps
                    // sending every layer regardless.
                    ControlMessage::Layers { .. } => {}
                    ControlMessage::Answer { .. }
                    | ControlMessage::MaxLayer { .. }
                    | ControlMessage::Leave => {
                        panic!("{}: the SFU sent a participant's message", self.name)
                    }
                }
            }
            Event::MediaData(data) => {
                let Some((kind, from)) = self.tracks.get(&data.mid).cloned() else {
                    panic!("{}: media on unannounced line {}", self.name, data.mid);
                };
                let plain = match self.decryptors.get_mut(&from.user) {
                    None => data.data.to_vec(),
                    Some(decryptor) => {
                        let opened = match kind {
                            TrackKind::Audio => decryptor.decrypt_audio(&data.data),
                            TrackKind::Video => decryptor.decrypt_h264(&data.data),
                        };
                        match opened {
                            Ok(plain) => plain,
                            Err(_) => {
                                self.decrypt_failures += 1;
                                return;
                            }
                        }
                    }
                };
                let received = self.received.entry(from.user.clone()).or_default();
                match kind {
                    TrackKind::Audio => received.audio_frames += 1,
                    TrackKind::Video => {
                        // As a real client does: after a gap, wait for a
                        // keyframe rather than feed the decoder pictures
                        // that refer to lost ones.
                        let waiting = self.waiting_for_keyframe.entry(data.mid).or_insert(true);
                        if !data.contiguous {
                            *waiting = true;
                        }
                        if *waiting && !data.is_keyframe() {
                            if self
                                .last_pli
                                .is_none_or(|t| now >= t + Duration::from_millis(200))
                            {
                                if let Some(mut writer) = self.rtc.writer(data.mid) {
                                    let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
                                }
                                self.last_pli = Some(now);
                            }
                            return;
                        }
                        *waiting = false;
                        let errors_before = self.decode_errors;
                        let decoder = self
                            .decoders
                            .entry(data.mid)
                            .or_insert_with(|| H264Decoder::new().unwrap());
                        match decoder.decode(&plain) {
                            Ok(Some(picture)) => {
                                // A simulcast low layer shows the number at
                                // half scale, which the reader does not
                                // read: `UNREADABLE` stands in.
                                let n = read_frame_number(&picture).unwrap_or(UNREADABLE);
                                received.pictures.push(n);
                                received.widths.push(picture.width());
                            }
                            Ok(None) => {}
                            Err(_) => self.decode_errors += 1,
                        }
                        // As a real client does: a gap or an undecodable
                        // picture asks for a keyframe (at most every 200 ms).
                        let broken = !data.contiguous || self.decode_errors > errors_before;
                        if broken
                            && self
                                .last_pli
                                .is_none_or(|t| now >= t + Duration::from_millis(200))
                        {
                            if let Some(mut writer) = self.rtc.writer(data.mid) {
                                let _ = writer.request_keyframe(None, KeyframeRequestKind::Pli);
                            }
                            self.last_pli = Some(now);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Steps every peer until `done` says so; panics after `limit`.
pub fn drive(
    peers: &mut [&mut TestPeer],
    limit: Duration,
    done: impl Fn(&[&mut TestPeer]) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(peers) {
        if Instant::now() >= deadline {
            let state: Vec<String> = peers.iter().map(|p| p.describe()).collect();
            panic!("not done within {limit:?}:\n{}", state.join("\n"));
        }
        for peer in peers.iter_mut() {
            peer.step(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
