//! A 1:1 call in virtual time: two real [`MediaSession`]s (what `parley
//! call` runs: str0m, Opus, H.264, SFrame, the jitter buffer) over a
//! simulated path each way ([`parley_media::netsim`]), on one clock that
//! jumps to the next thing due. The driver of `parley-bench loss`, and of
//! any test that wants a call under loss that repeats from a seed (the
//! paths, str0m's randomness and DTLS's resend jitter all draw from it).
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use parley_client::call::media_session::LossProtection;
//! use parley_media::netsim::{LossModel, NetworkConfig};
//! use parley_testkit::call_sim::CallSim;
//!
//! let lossy = NetworkConfig {
//!     loss: LossModel::Bernoulli { loss: 0.05 },
//!     delay: Duration::from_millis(50),
//!     ..NetworkConfig::default()
//! };
//! let start = Instant::now(); // the origin of virtual time
//! let mut call = CallSim::connect(start, true, LossProtection::default(), &lossy, 1).unwrap();
//! let until = call.now() + Duration::from_secs(5);
//! call.run_until(until).unwrap();
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use parley_client::call::e2ee::MasterSecret;
use parley_client::call::media_session::{LossProtection, MediaSession, SessionError};
use parley_media::netsim::{NetworkConfig, NetworkSimulator};
use parley_media::video::I420Frame;

/// How long a call may take to connect over the clean path.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// The caller's address on the simulated path.
pub const CALLER: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)),
    5000,
);
/// The callee's address on the simulated path.
pub const CALLEE: SocketAddr = SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    5000,
);

/// Why a simulated call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallSimError {
    /// A media session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The call did not connect on the clean path.
    #[error("the call did not connect within {0:?} of virtual time")]
    NoConnection(Duration),
}

/// The two ends and the paths between them.
pub struct CallSim {
    /// The caller: sends what is scored.
    pub caller: MediaSession,
    /// The callee.
    pub callee: MediaSession,
    /// Caller to callee: the scored direction.
    pub forward: Path,
    /// Callee to caller: RTCP, NACKs, keyframe requests, TWCC feedback.
    pub back: Path,
    now: Instant,
    /// Start times of the loss bursts on `forward` while `track_bursts`.
    pub bursts: Vec<Instant>,
    /// Whether lost media packets on `forward` are counted into `bursts`.
    pub track_bursts: bool,
    last_lost: bool,
    /// Bytes the caller has put on `forward`.
    pub sent_bytes: u64,
    /// Pictures the callee decoded, with when.
    pub pictures: Vec<(Instant, I420Frame)>,
}

impl CallSim {
    /// Sets up both ends at `start` (the offer and answer handed over
    /// directly, as E2E envelopes carry them) and runs until both are
    /// connected over a clean path with `network`'s delay; then `network`
    /// (loss, jitter, ...) applies from the first media on. The media
    /// secret and every link's randomness come from `seed`.
    pub fn connect(
        start: Instant,
        video: bool,
        protection: LossProtection,
        network: &NetworkConfig,
        seed: u64,
    ) -> Result<Self, CallSimError> {
        // str0m's and DTLS's own randomness on this thread, from the seed
        // too (see `crate::sfu_sim`).
        fastrand::seed(seed);
        parley_rtc::dtls::seed_this_thread_for_simulation(seed);
        let mut secret = [0u8; 32];
        secret[..8].copy_from_slice(&seed.to_le_bytes());
        let secret = MasterSecret(secret);
        let (mut caller, offer) = MediaSession::offer(start, CALLER, video, &secret, "sim")?;
        let (mut callee, answer) = MediaSession::answer(start, CALLEE, &offer, &secret, "sim")?;
        caller.accept_answer(start, &answer)?;
        caller.set_protection(protection)?;
        callee.set_protection(protection)?;
        let clean = NetworkConfig {
            delay: network.delay,
            ..NetworkConfig::default()
        };
        let mut call = Self {
            caller,
            callee,
            forward: Path::new(&clean, seed.wrapping_mul(2)),
            back: Path::new(&clean, seed.wrapping_mul(2) + 1),
            now: start,
            bursts: Vec::new(),
            track_bursts: false,
            last_lost: false,
            sent_bytes: 0,
            pictures: Vec::new(),
        };
        while !(call.caller.is_connected() && call.callee.is_connected()) {
            if call.now - start > CONNECT_LIMIT {
                return Err(CallSimError::NoConnection(CONNECT_LIMIT));
            }
            let next = call.next_timer();
            call.advance(next)?;
        }
        call.forward.set_config(network);
        call.back.set_config(network);
        Ok(call)
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The earliest timer of the sessions and paths.
    pub fn next_timer(&self) -> Instant {
        [
            Some(self.caller.poll_timeout()),
            Some(self.callee.poll_timeout()),
            self.forward.poll_timeout(),
            self.back.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("the sessions always have a timeout")
    }

    /// Moves virtual time to `to` (never backwards), delivering what is
    /// due and firing timers.
    pub fn advance(&mut self, to: Instant) -> Result<(), CallSimError> {
        // str0m may ask for a timeout that has just passed; never go back.
        self.now = self.now.max(to);
        let now = self.now;
        while let Some(packet) = self.forward.poll_receive(now) {
            self.callee.handle_receive(now, CALLER, &packet)?;
        }
        while let Some(packet) = self.back.poll_receive(now) {
            self.caller.handle_receive(now, CALLEE, &packet)?;
        }
        self.caller.handle_timeout(now)?;
        self.callee.handle_timeout(now)?;
        while let Some(picture) = self.callee.poll_video(now) {
            self.pictures.push((now, picture));
        }
        self.flush();
        Ok(())
    }

    /// Puts what the sessions want to send on the paths.
    pub fn flush(&mut self) {
        let now = self.now;
        while let Some((_, packet)) = self.caller.poll_transmit() {
            self.sent_bytes += packet.len() as u64;
            // Bursts are runs of lost media packets.
            if let Some(lost) = self.forward.send(now, packet) {
                if lost && !self.last_lost && self.track_bursts {
                    self.bursts.push(now);
                }
                self.last_lost = lost;
            }
        }
        while let Some((_, packet)) = self.callee.poll_transmit() {
            self.back.send(now, packet);
        }
    }

    /// Runs timers up to `until` (exclusive of anything after it).
    pub fn run_until(&mut self, until: Instant) -> Result<(), CallSimError> {
        loop {
            let next = self.next_timer();
            if next > until {
                return self.advance(until);
            }
            self.advance(next)?;
            if self.now >= until {
                return Ok(());
            }
        }
    }
}

/// One direction of the path: the network applied to RTP packets and,
/// with a generator of its own, to everything else (RTCP, STUN, DTLS). So
/// the media's loss pattern depends only on the seed and the media sent,
/// not on how many control packets the sessions happened to send.
pub struct Path {
    /// What RTP packets go through.
    pub media: NetworkSimulator,
    control: NetworkSimulator,
}

impl Path {
    /// A path with `config`, its randomness from `seed`.
    pub fn new(config: &NetworkConfig, seed: u64) -> Self {
        Self {
            media: NetworkSimulator::new(config.clone(), seed),
            control: NetworkSimulator::new(config.clone(), seed ^ 0x5eed_c0de_5eed_c0de),
        }
    }

    /// New settings from now on.
    pub fn set_config(&mut self, config: &NetworkConfig) {
        self.media.set_config(config.clone());
        self.control.set_config(config.clone());
    }

    /// Puts `packet` on the path; for an RTP packet, whether it was lost.
    pub fn send(&mut self, now: Instant, packet: Vec<u8>) -> Option<bool> {
        if !is_rtp(&packet) {
            self.control.handle_send(now, packet);
            return None;
        }
        let lost_before = self.media.stats().lost;
        self.media.handle_send(now, packet);
        Some(self.media.stats().lost > lost_before)
    }

    /// The next packet due by `now`.
    pub fn poll_receive(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.media
            .poll_receive(now)
            .or_else(|| self.control.poll_receive(now))
    }

    /// When the next packet is due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.media.poll_timeout(), self.control.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// RTP (SRTP keeps the header in clear), not RTCP, STUN or DTLS (RFC 7983
/// demultiplexing, RFC 5761 for RTCP's packet types 192-223).
fn is_rtp(packet: &[u8]) -> bool {
    packet.len() >= 12 && (128..=191).contains(&packet[0]) && !(192..=223).contains(&packet[1])
}
