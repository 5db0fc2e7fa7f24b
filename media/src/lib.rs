//! Parley's media core: everything between a microphone or camera and the
//! network that does not need a socket or a clock.
//!
//! **Sans-IO.** Nothing here starts a thread, opens a socket or reads the
//! clock: time comes in as `now: Instant` and the caller decides what it
//! is. The same jitter buffer runs against a sound card in a call and
//! against a virtual clock in a test, where a lossy minute takes
//! milliseconds and repeats exactly from a seed.
//!
//! # What is here
//!
//! | need | module |
//! |---|---|
//! | 48 kHz mono 20 ms frames, source/sink traits | [`audio`] |
//! | Opus encode, decode, FEC decode, PLC | [`opus_codec`] |
//! | I420 frames, source/sink traits | [`video`] |
//! | H.264 encode (keyframe on demand), decode | [`h264`] |
//! | WAV, Y4M and Ogg Opus files | [`wav_file`], [`y4m_file`], [`ogg_opus_file`] |
//! | synthetic media: tone, speech clip, moving test pattern | [`tone`], [`speech`], [`test_pattern`] |
//! | RTP packets, sequence unwrapping, audio packetizer | [`rtp`] |
//! | adaptive audio jitter buffer with FEC and concealment | [`jitter_buffer`] |
//! | one-way audio through codec, RTP, link and jitter buffer in virtual time | [`audio_simulation`] |
//! | seeded network simulator: loss, bursts, jitter, reordering, bandwidth | [`netsim`] |
//! | PESQ wideband, PSNR, SNR | [`quality`] |
//! | sample-rate conversion | [`resample`] |
//!
//! # A lossy call in a few lines
//!
//! Speech is encoded, packetized, sent through a simulated link that loses
//! 10 % of packets, and played out of the jitter buffer, all in virtual
//! time; then the result is scored against a lossless decode.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use parley_media::{audio, jitter_buffer::*, netsim::*, opus_codec::*, quality, rtp::*, speech};
//!
//! let clip = speech::speech_clip()?;
//! let mut encoder = OpusEncoder::new(OpusConfig::default())?;
//! let mut packetizer = AudioPacketizer::new(0x5eed, 111, 0, 0);
//! let mut link = NetworkSimulator::new(
//!     NetworkConfig { loss: LossModel::Bernoulli { loss: 0.10 }, ..Default::default() },
//!     42,
//! );
//! let mut jb = JitterBuffer::new(JitterBufferConfig::default())?;
//! let (start, tick) = (Instant::now(), Duration::from_millis(20)); // clock-ok: the caller picks the origin
//! let mut heard = Vec::new();
//! for (i, frame) in audio::frames_of(&clip).enumerate() {
//!     let now = start + tick * i as u32;
//!     link.handle_send(now, packetizer.packetize(encoder.encode(&frame)?).to_bytes()?);
//!     while let Some(bytes) = link.poll_receive(now) {
//!         jb.handle_packet(now, RtpPacket::parse(&bytes)?);
//!     }
//!     heard.extend_from_slice(jb.poll_frame(now + Duration::from_millis(5)).frame.samples());
//! }
//! println!("PESQ-WB {:.2}", quality::pesq_wb(&clip, &heard)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(unsafe_code)]

pub mod audio;
pub mod audio_simulation;
pub mod h264;
pub mod jitter_buffer;
pub mod netsim;
pub mod ogg_opus_file;
pub mod opus_codec;
pub mod quality;
pub mod resample;
pub mod rtp;
pub mod speech;
pub mod test_pattern;
pub mod tone;
pub mod video;
pub mod wav_file;
pub mod y4m_file;

/// Any error of the media core; what the source and sink traits return.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Opus failed.
    #[error(transparent)]
    Opus(#[from] opus_codec::OpusError),
    /// H.264 failed.
    #[error(transparent)]
    H264(#[from] h264::H264Error),
    /// A WAV file was bad or unwritable.
    #[error(transparent)]
    Wav(#[from] wav_file::WavError),
    /// A Y4M file was bad or unwritable.
    #[error(transparent)]
    Y4m(#[from] y4m_file::Y4mError),
    /// A picture had impossible dimensions.
    #[error(transparent)]
    Frame(#[from] video::FrameError),
    /// An RTP packet was malformed.
    #[error(transparent)]
    Rtp(#[from] rtp::RtpError),
    /// Scoring failed.
    #[error(transparent)]
    Quality(#[from] quality::QualityError),
    /// A setting or argument was out of range.
    #[error("{0}")]
    Invalid(String),
    /// A capture or playback device failed (unplugged, sound server gone).
    #[error("audio device: {0}")]
    Device(String),
}
