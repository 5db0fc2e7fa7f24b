//! `parley loadtest`: loads an SFU with synthetic participants, like
//! LiveKit's `lk load-test`, and measures what it forwards.
//!
//! N publishers and M subscribers join one room through the server's
//! `POST /v1/sfu/join`, with tokens signed by the SFU's token secret (the
//! server must run with the same `--sfu-token-secret`). Publishers send
//! media encoded once at start (Opus speech, and with `--video` the H.264
//! test pattern at 640x480): the generator spends its CPU on sessions,
//! not codecs. Every participant is the SDK's own group-call session
//! ([`GroupSession::offer_load_generator`]): the real client's str0m
//! profile, control protocol (renegotiation, leave) and SFrame encryption,
//! with decoding left out. Each frame carries its send time inside the
//! encryption (see [`stamp_audio`], [`stamp_video`]): the SFU forwards
//! frames whole without reading them, so the receiver finds the stamp
//! after decrypting and the forwarding latency is receive time minus send
//! time on this process's clock. After a warm-up the counters run for the
//! measured window. The SFU process's CPU and RSS come from /proc
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

use parley_client::call::group_session::{
    GroupKeys, GroupSession, GroupSessionError, Publish, audio_level,
};
use parley_client::endpoint::Endpoint;
use parley_client::messenger::DemoRoom;
use parley_media::audio::AudioSource;
use parley_media::h264::{H264Config, H264Encoder};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use parley_media::speech::SpeechSource;
use parley_media::test_pattern::TestPatternSource;
use parley_media::video::FrameRate;
use parley_sfu::{JoinClaims, TokenKey};
use serde::Serialize;

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
    /// Opus packets and their audio levels.
    audio: Vec<(Vec<u8>, i8)>,
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
        audio.push((opus.encode(&frame).map_err(media)?, audio_level(&frame)));
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
    /// Per participant: (packets, bytes) at the window's start and latest.
    ingress: HashMap<usize, (u64, u64)>,
    ingress_start: HashMap<usize, (u64, u64)>,
    connected: usize,
    sfu_addr: Option<SocketAddr>,
}

/// Runs the load test.
pub async fn run_loadtest(options: LoadTestOptions) -> Result<LoadTestReport, LoadTestError> {
    let clips = Arc::new(encode_clips(options.video)?);
    let key = TokenKey::from_secret_str(&options.token_secret);
    let room = DemoRoom::new(&Endpoint::new(options.server.clone()))
        .map_err(|e| LoadTestError::Join(e.to_string()))?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let epoch = Instant::now();
    let total = options.publishers + options.subscribers;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..total {
        let publisher = i < options.publishers;
        let joined = join(&room, &options, &key, i, publisher).await?;
        let (tally, clips, stop) = (tally.clone(), clips.clone(), stop.clone());
        let video = options.video;
        // A thread per participant: plain blocking sockets with short
        // timeouts, so the generator's own scheduling stays out of the
        // way of what it measures.
        threads.push(std::thread::spawn(move || {
            let mut p = Participant {
                index: i,
                session: joined.session,
                socket: joined.socket,
                local: joined.local,
                publisher,
                video,
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

/// Joins participant `i`: its session (already given the SFU's answer),
/// socket and local address.
async fn join(
    room: &DemoRoom,
    options: &LoadTestOptions,
    key: &TokenKey,
    i: usize,
    publisher: bool,
) -> Result<Joined, LoadTestError> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let local = socket.local_addr()?;
    let role = if publisher { "pub" } else { "sub" };
    let (user, device) = (format!("load-{role}-{i}"), format!("load-{i}"));
    // Subscribers publish a silent audio line too: the SFU's join expects
    // a participant with media; nothing is ever written on it.
    let publish = if publisher && options.video {
        Publish::Video
    } else {
        Publish::Audio
    };
    // Keys follow from a passphrase, as in a demo room: frames are
    // encrypted and decrypted as in a real call, with no key exchange to
    // stage.
    let keys = GroupKeys::Passphrase {
        passphrase: LOAD_PASSPHRASE.to_string(),
        user: user.clone(),
        device: device.clone(),
    };
    let (mut session, offer) =
        GroupSession::offer_load_generator(Instant::now(), local, &options.room, publish, keys)
            .map_err(|e| LoadTestError::Rtc(e.to_string()))?;
    let token = key.sign(&JoinClaims {
        room: options.room.clone(),
        user,
        device,
        expires_at: u64::MAX,
    });
    let answer = room
        .sfu_join(&options.room, &token, &offer)
        .await
        .map_err(|e| LoadTestError::Join(e.to_string()))?;
    session
        .accept_answer(Instant::now(), &answer)
        .map_err(|e| LoadTestError::Rtc(e.to_string()))?;
    Ok(Joined {
        session,
        socket,
        local,
    })
}

/// The passphrase every load-test participant's sender key comes from.
const LOAD_PASSPHRASE: &str = "parley-loadtest";

/// A participant's session after the SFU answered.
struct Joined {
    session: GroupSession,
    socket: UdpSocket,
    local: SocketAddr,
}

/// One synthetic participant: the SDK's group-call session (the client
/// side of the SFU's control protocol, the real client's str0m profile and
/// SFrame) on a blocking socket.
struct Participant {
    index: usize,
    session: GroupSession,
    socket: UdpSocket,
    local: SocketAddr,
    publisher: bool,
    video: bool,
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
        let mut connected = false;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            // Sleep in recv until the session's next timer or the next
            // frame to send, so idle participants cost the generator
            // nothing.
            let timeout = self.session.poll_timeout();
            let wake = match (self.publisher && connected, self.started) {
                (true, Some(started)) => timeout.min(started + self.next_send_at()),
                _ => timeout,
            };
            let wait = wake
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_micros(200), Duration::from_millis(20));
            let _ = self.socket.set_read_timeout(Some(wait));
            if let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                let received =
                    self.session
                        .handle_receive(Instant::now(), from, self.local, &buf[..n]);
                if received.is_err() {
                    return;
                }
            }
            let now = Instant::now();
            if now >= self.session.poll_timeout() && self.session.handle_timeout(now).is_err() {
                return;
            }
            if !connected && self.session.is_connected() {
                connected = true;
                tally.lock().expect("tally").connected += 1;
            }
            if self.publisher && connected && self.send(now, clips, tally, epoch).is_err() {
                return;
            }
            self.flush(tally, epoch);
        }
        // Leave at once rather than leave the SFU to time us out.
        let _ = self.session.leave(Instant::now());
        self.flush(tally, epoch);
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

    fn send(
        &mut self,
        now: Instant,
        clips: &Clips,
        tally: &Mutex<Tally>,
        epoch: Instant,
    ) -> Result<(), GroupSessionError> {
        let started = *self.started.get_or_insert(now);
        let elapsed = now - started;
        let stamp = (now - epoch).as_micros() as u64;
        let mut sent = 0;
        while Duration::from_millis(20 * self.next_audio) <= elapsed {
            let (clip, level) = &clips.audio[self.next_audio as usize % clips.audio.len()];
            self.next_audio += 1;
            self.session
                .send_encoded_audio(now, &stamp_audio(stamp, clip), *level)?;
            sent += 1;
        }
        while self.video
            && !clips.video.is_empty()
            && Duration::from_secs(self.next_video) / 30 <= elapsed
        {
            let clip = &clips.video[self.next_video as usize % clips.video.len()];
            let pts = Duration::from_secs(self.next_video) / 30;
            self.next_video += 1;
            self.session
                .send_encoded_video(now, &stamp_video(stamp, clip), pts)?;
            sent += 1;
        }
        let mut t = tally.lock().expect("tally");
        if t.window.is_some_and(|(a, b)| now >= a && now < b) {
            t.frames_sent += sent;
        }
        Ok(())
    }

    /// Sends what the session has queued and counts what it received.
    fn flush(&mut self, tally: &Mutex<Tally>, epoch: Instant) {
        let mut sfu = None;
        while let Some((to, datagram)) = self.session.poll_transmit() {
            let _ = self.socket.send_to(&datagram, to);
            sfu = Some(to);
        }
        while self.session.poll_event().is_some() {}
        let now = Instant::now();
        let mut t = tally.lock().expect("tally");
        if let Some(sfu) = sfu {
            t.sfu_addr.get_or_insert(sfu);
        }
        while let Some(frame) = self.session.poll_frame() {
            let Some(sent_us) = read_stamp(&frame.data) else {
                continue;
            };
            let sent = epoch + Duration::from_micros(sent_us);
            if t.window.is_some_and(|(a, b)| sent >= a && sent < b) {
                t.frames_received += 1;
                t.latencies_us
                    .push(now.saturating_duration_since(sent).as_micros() as u64);
            }
        }
        t.ingress.insert(self.index, self.session.ingress());
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
