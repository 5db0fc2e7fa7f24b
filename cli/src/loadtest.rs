//! `parley loadtest`: loads an SFU with synthetic participants, like
//! LiveKit's `lk load-test`, and measures what it forwards.
//!
//! N publishers and M subscribers join one room through the server's
//! `POST /v1/sfu/join`, with tokens signed by the SFU's token secret (the
//! server must run with the same `--sfu-token-secret`). Publishers send
//! media encoded once at start (Opus speech, and with `--video` the H.264
//! test pattern at 640x480): the generator spends its CPU on sessions,
//! not codecs. Each frame carries its send time (see [`stamp_audio`],
//! [`stamp_video`]): the SFU forwards frames whole without reading them,
//! so the subscriber finds the stamp and the forwarding latency is receive
//! time minus send time on this process's clock. Subscribers answer the
//! SFU's offers and count what arrives; after a warm-up the counters run
//! for the measured window. The SFU process's CPU and RSS come from /proc
//! (its PID given, or found by the UDP port its answer names).
//!
//! The stamp rides in the payload rather than an RTP header extension:
//! the SFU reassembles each frame and packetizes it again per subscriber,
//! so only the payload goes end to end.
// An IO shell: real sockets and threads on the wall clock, and latency measured on it.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parley_media::audio::AudioSource;
use parley_media::h264::{H264Config, H264Encoder};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use parley_media::speech::SpeechSource;
use parley_media::test_pattern::TestPatternSource;
use parley_media::video::FrameRate;
use parley_sfu::{JoinClaims, TokenKey};
use parley_wire::sfu::{CHANNEL_LABEL, ControlMessage};
use serde::Serialize;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::channel::ChannelId;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use parley_client::endpoint::Endpoint;

/// Why the load test failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadTestError {
    /// The server refused a join or could not be reached.
    #[error("join: {0}")]
    Join(String),
    /// A socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// str0m refused something.
    #[error("WebRTC: {0}")]
    Rtc(String),
    /// Encoding the synthetic media failed.
    #[error("media: {0}")]
    Media(String),
    /// Not every participant connected in time.
    #[error("{0} of {1} participants connected within {2:?}")]
    NotConnected(usize, usize, Duration),
}

/// Load test settings.
#[derive(Debug, Clone)]
pub struct LoadTestOptions {
    /// The signaling server that fronts the SFU (its `/v1/sfu/join`).
    pub server: String,
    /// The SFU's token secret (`parley-server --sfu-token-secret`).
    pub token_secret: String,
    /// Room to fill.
    pub room: String,
    /// Participants sending media.
    pub publishers: usize,
    /// Participants only receiving.
    pub subscribers: usize,
    /// Measured window (after a warm-up).
    pub duration: Duration,
    /// Video as well as audio.
    pub video: bool,
    /// The SFU's process id; found from its UDP port when `None`.
    pub sfu_pid: Option<u32>,
}

/// What the load test measured over its window.
#[derive(Debug, Clone, Serialize)]
pub struct LoadTestReport {
    /// Publishers.
    pub publishers: usize,
    /// Subscribers.
    pub subscribers: usize,
    /// Seconds measured.
    pub duration_s: f64,
    /// RTP packets all participants received per second (retransmissions
    /// included): what the SFU forwarded (publishers get each other's
    /// media too).
    pub forwarded_pps: f64,
    /// Kilobits per second all participants received.
    pub forwarded_kbps: f64,
    /// Frames sent in the window that did not reach a participant, percent
    /// of (frames sent x everyone else in the room).
    pub loss_pct: f64,
    /// Send-to-receive latency of frames, percentiles in ms.
    pub latency_ms_p50: f64,
    /// 99th percentile.
    pub latency_ms_p99: f64,
    /// 99.9th percentile.
    pub latency_ms_p999: f64,
    /// The SFU process's CPU over the window, percent of one core.
    pub sfu_cpu_pct: Option<f64>,
    /// The SFU process's resident memory at the end, MiB.
    pub sfu_rss_mib: Option<f64>,
    /// Frames received by all participants in the window.
    pub frames_received: u64,
    /// Frames sent by all publishers in the window.
    pub frames_sent: u64,
}

/// Marks an audio frame with its send time (`us` since the test's epoch):
/// 4 magic bytes, 8 bytes big-endian, then the Opus packet.
pub fn stamp_audio(us: u64, opus: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(opus.len() + 12);
    out.extend_from_slice(b"PLT1");
    out.extend_from_slice(&us.to_be_bytes());
    out.extend_from_slice(opus);
    out
}

/// Marks an H.264 access unit with its send time: an SEI NAL unit
/// (user data, never decoded here) in front, the time as 16 hex digits so
/// no byte pattern can look like a start code.
pub fn stamp_video(us: u64, annex_b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(annex_b.len() + 32);
    out.extend_from_slice(&[0, 0, 0, 1, 0x06, 0x05, 20]);
    out.extend_from_slice(b"PLT1");
    out.extend_from_slice(format!("{us:016x}").as_bytes());
    out.push(0x80);
    out.extend_from_slice(annex_b);
    out
}

/// The send time in a stamped frame, if it has one.
pub fn read_stamp(frame: &[u8]) -> Option<u64> {
    if let Some(rest) = frame.strip_prefix(b"PLT1") {
        return Some(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?));
    }
    let at = memchr::memmem::find(frame.get(..64)?, b"PLT1")?;
    let hex = std::str::from_utf8(frame.get(at + 4..at + 20)?).ok()?;
    u64::from_str_radix(hex, 16).ok()
}

/// Media encoded once and looped by every publisher.
struct Clips {
    audio: Vec<Vec<u8>>,
    video: Vec<Vec<u8>>,
}

fn encode_clips(video: bool) -> Result<Clips, LoadTestError> {
    fn media(e: impl std::fmt::Display) -> LoadTestError {
        LoadTestError::Media(e.to_string())
    }
    let mut speech = SpeechSource::new(true).map_err(media)?;
    let mut opus = OpusEncoder::new(OpusConfig::default()).map_err(media)?;
    let mut audio = Vec::new();
    for _ in 0..100 {
        let frame = speech
            .next_frame()
            .map_err(media)?
            .unwrap_or_else(parley_media::audio::AudioFrame::silence);
        audio.push(opus.encode(&frame).map_err(media)?);
    }
    let mut frames = Vec::new();
    if video {
        let pattern = TestPatternSource::new(640, 480, FrameRate::fps(30)).map_err(media)?;
        let mut h264 = H264Encoder::new(H264Config {
            bitrate_bps: 600_000,
            ..H264Config::vga()
        })
        .map_err(|e| LoadTestError::Media(e.to_string()))?;
        for n in 0..60u64 {
            if let Some(encoded) = h264
                .encode(&pattern.frame(n), Duration::from_millis(n * 1000 / 30))
                .map_err(|e| LoadTestError::Media(e.to_string()))?
            {
                frames.push(encoded.data);
            }
        }
    }
    Ok(Clips {
        audio,
        video: frames,
    })
}

/// Shared counters.
#[derive(Default)]
struct Tally {
    /// Set when the measured window opens / closes.
    window: Option<(Instant, Instant)>,
    frames_sent: u64,
    frames_received: u64,
    latencies_us: Vec<u64>,
    /// Per subscriber: (packets, bytes) at the window's start and latest.
    ingress: HashMap<(usize, Mid), (u64, u64)>,
    ingress_start: HashMap<(usize, Mid), (u64, u64)>,
    connected: usize,
    sfu_addr: Option<SocketAddr>,
}

/// Runs the load test.
pub async fn run_loadtest(options: LoadTestOptions) -> Result<LoadTestReport, LoadTestError> {
    let clips = Arc::new(encode_clips(options.video)?);
    let key = TokenKey::from_secret_str(&options.token_secret);
    let http = Endpoint::new(options.server.clone())
        .http_client()
        .map_err(|e| LoadTestError::Join(e.to_string()))?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let epoch = Instant::now();
    let total = options.publishers + options.subscribers;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..total {
        let publisher = i < options.publishers;
        let joined = join(&http, &options, &key, i, publisher).await?;
        let (tally, clips, stop) = (tally.clone(), clips.clone(), stop.clone());
        let video = options.video;
        // A thread per participant: plain blocking sockets with short
        // timeouts, so the generator's own scheduling stays out of the
        // way of what it measures.
        threads.push(std::thread::spawn(move || {
            let mut p = Participant {
                index: i,
                rtc: joined.rtc,
                socket: joined.socket,
                local: joined.local,
                publisher,
                video,
                channel: None,
                audio_mid: Some(joined.audio_mid),
                video_mid: joined.video_mid,
                connected: false,
                next_audio: 0,
                next_video: 0,
                started: None,
            };
            p.run(&clips, &tally, epoch, &stop)
        }));
    }

    // Everyone connects, a warm-up, then the window.
    let connect_limit = Duration::from_secs(20);
    let deadline = Instant::now() + connect_limit;
    loop {
        let connected = tally.lock().expect("tally").connected;
        if connected == total {
            break;
        }
        if Instant::now() > deadline {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(LoadTestError::NotConnected(connected, total, connect_limit));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sfu_addr = tally.lock().expect("tally").sfu_addr;
    let pid = options
        .sfu_pid
        .or_else(|| sfu_addr.and_then(|a| pid_of_udp_port(a.port())));
    let cpu_start = pid.and_then(cpu_ticks);
    let start = Instant::now();
    {
        let mut t = tally.lock().expect("tally");
        t.window = Some((start, start + options.duration));
        t.ingress_start = t.ingress.clone();
    }
    tokio::time::sleep(options.duration).await;
    let cpu_end = pid.and_then(cpu_ticks);
    let elapsed = start.elapsed();
    // Frames sent at the window's end still in flight: a moment to land.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for thread in threads {
        let _ = thread.join();
    }

    let mut t = tally.lock().expect("tally");
    let (mut packets, mut bytes) = (0u64, 0u64);
    for (k, (p, b)) in &t.ingress {
        let (p0, b0) = t.ingress_start.get(k).copied().unwrap_or_default();
        packets += p.saturating_sub(p0);
        bytes += b.saturating_sub(b0);
    }
    t.latencies_us.sort_unstable();
    let pct = |q: f64| -> f64 {
        let v = &t.latencies_us;
        if v.is_empty() {
            return f64::NAN;
        }
        v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0
    };
    // The SFU sends every frame to everyone else in the room, publishers
    // included.
    let expected = t.frames_sent * (total as u64 - 1);
    let secs = elapsed.as_secs_f64();
    let ticks = clock_ticks_per_second();
    Ok(LoadTestReport {
        publishers: options.publishers,
        subscribers: options.subscribers,
        duration_s: secs,
        forwarded_pps: packets as f64 / secs,
        forwarded_kbps: bytes as f64 * 8.0 / secs / 1000.0,
        loss_pct: if expected == 0 {
            0.0
        } else {
            100.0 * expected.saturating_sub(t.frames_received) as f64 / expected as f64
        },
        latency_ms_p50: pct(0.5),
        latency_ms_p99: pct(0.99),
        latency_ms_p999: pct(0.999),
        sfu_cpu_pct: match (cpu_start, cpu_end) {
            (Some(a), Some(b)) => Some(100.0 * (b - a) as f64 / ticks / secs),
            _ => None,
        },
        sfu_rss_mib: pid.and_then(rss_kib).map(|kib| kib as f64 / 1024.0),
        frames_received: t.frames_received,
        frames_sent: t.frames_sent,
    })
}

/// Joins participant `i`: returns its session, socket and local address.
async fn join(
    http: &reqwest::Client,
    options: &LoadTestOptions,
    key: &TokenKey,
    i: usize,
    publisher: bool,
) -> Result<Joined, LoadTestError> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let local = socket.local_addr()?;
    let now = Instant::now();
    let mut rtc = parley_rtc::build(parley_rtc::Role::LoadGenerator, now);
    let candidate = Candidate::host(local, "udp").map_err(|e| LoadTestError::Rtc(e.to_string()))?;
    rtc.add_local_candidate(candidate);
    let mut change = rtc.sdp_api();
    // Subscribers publish a silent audio line too: the SFU's join expects
    // a participant with media; nothing is ever written on it.
    let audio_mid = change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    let video_mid = (publisher && options.video)
        .then(|| change.add_media(MediaKind::Video, Direction::SendOnly, None, None, None));
    change.add_channel(CHANNEL_LABEL.to_string());
    let (offer, pending) = change
        .apply()
        .ok_or_else(|| LoadTestError::Rtc("no offer".into()))?;
    let role = if publisher { "pub" } else { "sub" };
    let token = key.sign(&JoinClaims {
        room: options.room.clone(),
        user: format!("load-{role}-{i}"),
        device: format!("load-{i}"),
        expires_at: u64::MAX,
    });
    let request = parley_wire::api::SfuJoinRequest {
        room: options.room.clone(),
        token,
        offer: offer.to_sdp_string(),
    };
    let url = format!("{}/v1/sfu/join", options.server.trim_end_matches('/'));
    let response = http
        .post(url)
        .json(&request)
        .send()
        .await
        .map_err(|e| LoadTestError::Join(e.to_string()))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| LoadTestError::Join(e.to_string()))?;
    if !status.is_success() {
        return Err(LoadTestError::Join(format!("{status}: {text}")));
    }
    let answer: parley_wire::api::SfuJoinAnswer =
        serde_json::from_str(&text).map_err(|e| LoadTestError::Join(e.to_string()))?;
    let answer = SdpAnswer::from_sdp_string(&answer.answer)
        .map_err(|e| LoadTestError::Rtc(e.to_string()))?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .map_err(|e| LoadTestError::Rtc(e.to_string()))?;
    // As the real client does once its video line is negotiated.
    if let Some(mid) = video_mid {
        parley_rtc::on_video_send_stream(&mut rtc, mid, None);
    }
    Ok(Joined {
        rtc,
        socket,
        local,
        audio_mid,
        video_mid,
    })
}

/// A participant's session after the SFU answered.
struct Joined {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    audio_mid: Mid,
    video_mid: Option<Mid>,
}

struct Participant {
    index: usize,
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    publisher: bool,
    video: bool,
    channel: Option<ChannelId>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    connected: bool,
    next_audio: u64,
    next_video: u64,
    started: Option<Instant>,
}

impl Participant {
    fn run(
        &mut self,
        clips: &Clips,
        tally: &Mutex<Tally>,
        epoch: Instant,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        let mut buf = vec![0u8; 2048];
        let mut timeout = Instant::now();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            // Sleep in recv until str0m's next timer or the next frame to
            // send, so idle participants cost the generator nothing.
            let wake = match (self.publisher && self.connected, self.started) {
                (true, Some(started)) => timeout.min(started + self.next_send_at()),
                _ => timeout,
            };
            let wait = wake
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_micros(200), Duration::from_millis(20));
            let _ = self.socket.set_read_timeout(Some(wait));
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                let now = Instant::now();
                if let Ok(contents) = buf[..n].try_into() {
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source: from,
                            destination: self.local,
                            contents,
                        },
                    );
                    if self.rtc.handle_input(input).is_err() {
                        return;
                    }
                }
            }
            let now = Instant::now();
            if now >= timeout && self.rtc.handle_input(Input::Timeout(now)).is_err() {
                return;
            }
            if self.publisher && self.connected {
                self.send(now, clips, tally, epoch);
            }
            timeout = match self.drain(tally, epoch) {
                Some(t) => t,
                None => return,
            };
        }
        // Leave at once rather than leave the SFU to time us out.
        if let Some(mut channel) = self.channel.and_then(|c| self.rtc.channel(c)) {
            let _ = channel.write(false, ControlMessage::Leave.to_json().as_bytes());
        }
        self.drain(tally, epoch);
    }

    /// When the next audio or video frame is due, from the start.
    fn next_send_at(&self) -> Duration {
        let audio = Duration::from_millis(20 * self.next_audio);
        if self.video {
            audio.min(Duration::from_secs(self.next_video) / 30)
        } else {
            audio
        }
    }

    fn send(&mut self, now: Instant, clips: &Clips, tally: &Mutex<Tally>, epoch: Instant) {
        let started = *self.started.get_or_insert(now);
        let elapsed = now - started;
        let in_window = |t: &Tally| t.window.is_some_and(|(a, b)| now >= a && now < b);
        let stamp = (now - epoch).as_micros() as u64;
        while Duration::from_millis(20 * self.next_audio) <= elapsed {
            let clip = &clips.audio[self.next_audio as usize % clips.audio.len()];
            let time = MediaTime::new(
                self.next_audio * 960,
                str0m::media::Frequency::FORTY_EIGHT_KHZ,
            );
            self.next_audio += 1;
            if self.write(
                now,
                self.audio_mid,
                Codec::Opus,
                time,
                stamp_audio(stamp, clip),
            ) {
                let mut t = tally.lock().expect("tally");
                if in_window(&t) {
                    t.frames_sent += 1;
                }
            }
        }
        while self.video
            && !clips.video.is_empty()
            && Duration::from_secs(self.next_video) / 30 <= elapsed
        {
            let clip = &clips.video[self.next_video as usize % clips.video.len()];
            let time = MediaTime::from_90khz(self.next_video * 3000);
            self.next_video += 1;
            if self.write(
                now,
                self.video_mid,
                Codec::H264,
                time,
                stamp_video(stamp, clip),
            ) {
                let mut t = tally.lock().expect("tally");
                if in_window(&t) {
                    t.frames_sent += 1;
                }
            }
        }
    }

    fn write(
        &mut self,
        now: Instant,
        mid: Option<Mid>,
        codec: Codec,
        time: MediaTime,
        data: Vec<u8>,
    ) -> bool {
        let Some(writer) = mid.and_then(|m| self.rtc.writer(m)) else {
            return false;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
        else {
            return false;
        };
        writer.write(pt, now, time, data).is_ok()
    }

    /// Sends what str0m has, handles its events; the next timeout, or
    /// `None` when the session failed.
    fn drain(&mut self, tally: &Mutex<Tally>, epoch: Instant) -> Option<Instant> {
        loop {
            let now = Instant::now();
            match parley_rtc::poll_output(&mut self.rtc, now) {
                Ok(Output::Timeout(t)) => return Some(t),
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                    tally
                        .lock()
                        .expect("tally")
                        .sfu_addr
                        .get_or_insert(t.destination);
                }
                Ok(Output::Event(event)) => self.handle(event, tally, epoch),
                Err(_) => return None,
            }
        }
    }

    fn handle(&mut self, event: Event, tally: &Mutex<Tally>, epoch: Instant) {
        match event {
            Event::Connected => {
                self.connected = true;
                tally.lock().expect("tally").connected += 1;
            }
            Event::ChannelOpen(id, _) => self.channel = Some(id),
            Event::ChannelData(data) => {
                let Ok(message) = ControlMessage::from_json(&data.data) else {
                    return;
                };
                if let ControlMessage::Offer { sdp } = message {
                    let Ok(offer) = SdpOffer::from_sdp_string(&sdp) else {
                        return;
                    };
                    if let Ok(answer) = self.rtc.sdp_api().accept_offer(offer)
                        && let Some(mut channel) = self.channel.and_then(|c| self.rtc.channel(c))
                    {
                        let reply = ControlMessage::Answer {
                            sdp: answer.to_sdp_string(),
                        };
                        let _ = channel.write(false, reply.to_json().as_bytes());
                    }
                }
            }
            Event::MediaData(data) => {
                let now = Instant::now();
                let Some(sent_us) = read_stamp(&data.data) else {
                    return;
                };
                let sent = epoch + Duration::from_micros(sent_us);
                let mut t = tally.lock().expect("tally");
                if t.window.is_some_and(|(a, b)| sent >= a && sent < b) {
                    t.frames_received += 1;
                    t.latencies_us
                        .push(now.saturating_duration_since(sent).as_micros() as u64);
                }
            }
            Event::MediaIngressStats(stats) => {
                tally
                    .lock()
                    .expect("tally")
                    .ingress
                    .insert((self.index, stats.mid), (stats.packets, stats.bytes));
            }
            _ => {}
        }
    }
}

/// The process that has a UDP socket bound to `port` (from /proc: the
/// socket's inode in /proc/net/udp, then whose fd points at it).
pub fn pid_of_udp_port(port: u16) -> Option<u32> {
    let inode = ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .find_map(|table| {
            let text = std::fs::read_to_string(table).ok()?;
            text.lines().skip(1).find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let local = fields.get(1)?;
                let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
                (local_port == port).then(|| fields.get(9).map(|s| s.to_string()))?
            })
        })?;
    let target = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target)
                })
                .then_some(pid)
        })
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size of `pid`, KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Linux's USER_HZ: 100 on every architecture Parley runs on.
fn clock_ticks_per_second() -> f64 {
    100.0
}
