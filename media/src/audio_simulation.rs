//! One-way audio through the whole receive path, in virtual time: Opus
//! encode -> RTP packetize -> [`NetworkSimulator`] -> RTP parse ->
//! [`JitterBuffer`] -> PCM, with the sender and the playout device each on
//! their own 20 ms clock.
//!
//! This is what the packet-loss benchmark sweeps and what the jitter
//! buffer's tests drive. A minute of audio runs in well under a second and
//! repeats exactly from the seed.
//!
//! The report holds three signals for scoring:
//! - `reference`: every packet decoded in order with no loss (the "clean
//!   decode": the best this codec setting can do);
//! - `received`: what the jitter buffer played, put back on the media
//!   timeline by RTP timestamp (frames that stand for no media, buffering
//!   and expansion, are left out; media never played is silence), so it
//!   lines up sample for sample with `reference`;
//! - `playout`: exactly what the speaker got, 20 ms per pull.

use std::time::{Duration, Instant};

use crate::audio::{FRAME_DURATION, FRAME_SAMPLES, frames_of};
use crate::jitter_buffer::{JitterBuffer, JitterBufferConfig, JitterBufferStats, PlayoutKind};
use crate::netsim::{NetworkConfig, NetworkSimulator, NetworkStats};
use crate::opus_codec::{OpusConfig, OpusDecoder, OpusEncoder, packet_has_fec};
use crate::rtp::{AudioPacketizer, RtpPacket};

/// Opus's RTP payload type in Parley's SDP (dynamic, as browsers use).
const OPUS_PAYLOAD_TYPE: u8 = 111;

/// Settings for one simulated run.
#[derive(Debug, Clone)]
pub struct AudioSimulation {
    /// Sender's encoder.
    pub opus: OpusConfig,
    /// Receiver's jitter buffer.
    pub jitter_buffer: JitterBufferConfig,
    /// The link at the start.
    pub network: NetworkConfig,
    /// Changes to the link during the run: (offset from start, new config).
    pub schedule: Vec<(Duration, NetworkConfig)>,
    /// Seed of the link's random draws.
    pub seed: u64,
    /// Offset of the playout clock from the sender's; any value in
    /// 0..20 ms, it only moves where pulls fall between arrivals.
    pub playout_phase: Duration,
}

impl Default for AudioSimulation {
    fn default() -> Self {
        Self {
            opus: OpusConfig::default(),
            jitter_buffer: JitterBufferConfig::default(),
            network: NetworkConfig::default(),
            schedule: Vec::new(),
            seed: 1,
            playout_phase: Duration::from_millis(7),
        }
    }
}

/// The state after one pull.
#[derive(Debug, Clone, Copy)]
pub struct TracePoint {
    /// Virtual time since the start.
    pub at: Duration,
    /// What the pulled frame was.
    pub kind: PlayoutKind,
    /// Target delay after the pull.
    pub target_delay: Duration,
    /// Current delay after the pull.
    pub current_delay: Duration,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct AudioSimulationReport {
    /// The lossless decode of every packet sent.
    pub reference: Vec<i16>,
    /// What was played, on the media timeline (aligned with `reference`).
    pub received: Vec<i16>,
    /// What the speaker got, pull by pull.
    pub playout: Vec<i16>,
    /// Jitter buffer counters at the end.
    pub jitter_buffer: JitterBufferStats,
    /// Link counters at the end.
    pub network: NetworkStats,
    /// Packets sent that carried in-band FEC, in percent.
    pub fec_packets_pct: f64,
    /// Encoded bitrate in bit/s.
    pub bitrate_bps: f64,
    /// One point per pull.
    pub trace: Vec<TracePoint>,
}

impl AudioSimulation {
    /// Sends `input` (48 kHz mono) through the path and plays it out until
    /// the last frame's turn to play has come (or a second after the last
    /// send, whichever is first), so the tail drains but pulls after the
    /// end of the media do not count as concealment. `start`
    /// is the origin of virtual time (any `Instant`; nothing here reads the
    /// clock).
    pub fn run(
        &self,
        input: &[i16],
        start: Instant,
    ) -> Result<AudioSimulationReport, crate::Error> {
        let mut encoder = OpusEncoder::new(self.opus)?;
        let mut clean_decoder = OpusDecoder::new()?;
        // Start near a wrap so every run exercises sequence and timestamp
        // unwrapping.
        let mut packetizer =
            AudioPacketizer::new(0x5eed_0001, OPUS_PAYLOAD_TYPE, 65_000, u32::MAX - 48_000);
        let first_timestamp = u32::MAX - 48_000;
        let mut link: NetworkSimulator<Vec<u8>> =
            NetworkSimulator::new(self.network.clone(), self.seed);
        let mut jb = JitterBuffer::new(self.jitter_buffer)?;

        let frames: Vec<_> = frames_of(input).collect();
        let media_len = frames.len() * FRAME_SAMPLES;
        let mut reference = Vec::with_capacity(media_len);
        let mut received = vec![0i16; media_len];
        let mut playout = Vec::with_capacity(media_len + 100 * FRAME_SAMPLES);
        let mut trace = Vec::new();
        let mut schedule = self.schedule.clone();
        schedule.sort_by_key(|(at, _)| *at);
        let mut schedule = schedule.into_iter().peekable();

        let drain = Duration::from_secs(1);
        let end = start + FRAME_DURATION * frames.len() as u32 + drain;
        let mut next_send = 0usize;
        let mut next_pull = start + self.playout_phase;
        let (mut fec_packets, mut bytes_sent) = (0usize, 0usize);

        loop {
            let send_at = start + FRAME_DURATION * next_send as u32;
            let mut now = next_pull;
            if next_send < frames.len() {
                now = now.min(send_at);
            }
            if let Some(t) = link.poll_timeout() {
                now = now.min(t);
            }
            if now >= end {
                break;
            }
            while let Some((_, config)) = schedule.next_if(|(at, _)| start + *at <= now) {
                link.set_config(config);
            }
            if next_send < frames.len() && now == send_at {
                let payload = encoder.encode(&frames[next_send])?;
                reference.extend_from_slice(clean_decoder.decode(&payload)?.samples());
                fec_packets += usize::from(packet_has_fec(&payload));
                bytes_sent += payload.len();
                link.handle_send(now, packetizer.packetize(payload).to_bytes()?);
                next_send += 1;
            }
            while let Some(bytes) = link.poll_receive(now) {
                jb.handle_packet(now, RtpPacket::parse(&bytes)?);
            }
            if now == next_pull {
                let out = jb.poll_frame(now);
                playout.extend_from_slice(out.frame.samples());
                let mut finished = false;
                if let Some(ts) = out.rtp_timestamp {
                    let slot = ts.wrapping_sub(first_timestamp) as usize;
                    if let Some(dst) = received.get_mut(slot..slot + FRAME_SAMPLES) {
                        dst.copy_from_slice(out.frame.samples());
                    }
                    finished = slot + FRAME_SAMPLES >= media_len;
                }
                let stats = jb.stats();
                trace.push(TracePoint {
                    at: now - start,
                    kind: out.kind,
                    target_delay: stats.target_delay,
                    current_delay: stats.current_delay,
                });
                next_pull += FRAME_DURATION;
                if finished {
                    break;
                }
            }
        }
        let sent = frames.len().max(1);
        Ok(AudioSimulationReport {
            reference,
            received,
            playout,
            jitter_buffer: jb.stats(),
            network: link.stats(),
            fec_packets_pct: 100.0 * fec_packets as f64 / sent as f64,
            bitrate_bps: bytes_sent as f64 * 8.0 / (sent as f64 * FRAME_DURATION.as_secs_f64()),
            trace,
        })
    }
}
