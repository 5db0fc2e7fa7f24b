//! Opus encoding and decoding (RFC 6716) over the `opus` crate (libopus).
//!
//! The encoder exposes the knobs a call needs: bitrate, in-band FEC
//! (LBRR, RFC 6716 section 2.1.7) with the packet-loss percentage that sizes
//! it, DTX and complexity. The decoder decodes, recovers a lost frame from
//! the in-band FEC of the packet after it, and conceals (PLC) when there is
//! nothing to recover from.
//!
//! libopus only codes LBRR data in SILK and hybrid modes, and only when the
//! packet-loss percentage is above zero and the bitrate leaves room for it,
//! so not every packet carries FEC. [`packet_has_fec`] tells which do; the
//! jitter buffer uses it so that a "recovered" frame is never really a PLC
//! frame in disguise.

use crate::audio::{AudioFrame, FRAME_SAMPLES, SAMPLE_RATE};

/// Largest Opus packet for one 20 ms frame (RFC 6716 section 3.2.1 caps a
/// frame at 1275 bytes; a packet has at most a few more for its TOC).
const MAX_PACKET_BYTES: usize = 1500;

/// Errors from the Opus codec.
#[derive(Debug, thiserror::Error)]
pub enum OpusError {
    /// libopus refused a setting or a packet.
    #[error("opus {op} failed: {source}")]
    Codec {
        /// What was being done.
        op: &'static str,
        /// libopus's own error.
        source: opus::Error,
    },
    /// A decoded packet held more or less than one 20 ms frame.
    #[error("opus packet decoded to {0} samples, expected {FRAME_SAMPLES} (one 20 ms frame)")]
    WrongFrameSize(usize),
    /// A setting was outside what Opus accepts.
    #[error("invalid opus setting: {0}")]
    InvalidSetting(&'static str),
}

fn codec(op: &'static str) -> impl FnOnce(opus::Error) -> OpusError {
    move |source| OpusError::Codec { op, source }
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// Target bitrate in bits per second (6 000 to 510 000).
    pub bitrate_bps: u32,
    /// Code in-band FEC (LBRR) so that a receiver can rebuild a lost frame
    /// from the next packet. Costs part of the bitrate.
    pub inband_fec: bool,
    /// Expected packet loss, 0 to 100. libopus sizes its FEC by it; zero
    /// disables FEC even when `inband_fec` is set.
    pub packet_loss_pct: u8,
    /// Discontinuous transmission: during silence, emit a tiny packet every
    /// 400 ms instead of one every 20 ms.
    pub dtx: bool,
    /// Encoder complexity, 0 (fastest) to 10 (best).
    pub complexity: u8,
}

impl Default for OpusConfig {
    /// 32 kbit/s with FEC sized for 10 % loss: a VoIP setting that keeps
    /// libopus in hybrid mode (so LBRR is coded) at wideband-or-better.
    fn default() -> Self {
        Self {
            bitrate_bps: 32_000,
            inband_fec: true,
            packet_loss_pct: 10,
            dtx: false,
            complexity: 9,
        }
    }
}

/// An Opus encoder for 48 kHz mono 20 ms frames, tuned for speech (VoIP).
pub struct OpusEncoder {
    inner: opus::Encoder,
    config: OpusConfig,
}

impl OpusEncoder {
    /// Creates an encoder with the given settings.
    pub fn new(config: OpusConfig) -> Result<Self, OpusError> {
        let inner = opus::Encoder::new(SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
            .map_err(codec("encoder create"))?;
        let mut encoder = Self { inner, config };
        encoder.apply(config)?;
        Ok(encoder)
    }

    /// The settings in force.
    pub fn config(&self) -> OpusConfig {
        self.config
    }

    /// Changes settings between frames (bitrate following the bandwidth
    /// estimate, loss percentage following measured loss).
    pub fn apply(&mut self, config: OpusConfig) -> Result<(), OpusError> {
        if !(6_000..=510_000).contains(&config.bitrate_bps) {
            return Err(OpusError::InvalidSetting(
                "bitrate must be 6000..=510000 bit/s",
            ));
        }
        if config.packet_loss_pct > 100 {
            return Err(OpusError::InvalidSetting("packet loss must be 0..=100 %"));
        }
        if config.complexity > 10 {
            return Err(OpusError::InvalidSetting("complexity must be 0..=10"));
        }
        let e = &mut self.inner;
        e.set_bitrate(opus::Bitrate::Bits(config.bitrate_bps as i32))
            .map_err(codec("set bitrate"))?;
        e.set_inband_fec(config.inband_fec)
            .map_err(codec("set inband fec"))?;
        e.set_packet_loss_perc(i32::from(config.packet_loss_pct))
            .map_err(codec("set packet loss"))?;
        e.set_dtx(config.dtx).map_err(codec("set dtx"))?;
        e.set_complexity(i32::from(config.complexity))
            .map_err(codec("set complexity"))?;
        self.config = config;
        Ok(())
    }

    /// Encodes one frame into one packet.
    ///
    /// With DTX on, a packet of two bytes or fewer during silence need not
    /// be sent (RFC 7587 section 3.1.3).
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<Vec<u8>, OpusError> {
        self.inner
            .encode_vec(frame.samples(), MAX_PACKET_BYTES)
            .map_err(codec("encode"))
    }
}

/// An Opus decoder for 48 kHz mono 20 ms frames.
pub struct OpusDecoder {
    inner: opus::Decoder,
}

impl OpusDecoder {
    /// Creates a decoder.
    pub fn new() -> Result<Self, OpusError> {
        let inner = opus::Decoder::new(SAMPLE_RATE, opus::Channels::Mono)
            .map_err(codec("decoder create"))?;
        Ok(Self { inner })
    }

    /// Decodes one packet into one frame.
    pub fn decode(&mut self, packet: &[u8]) -> Result<AudioFrame, OpusError> {
        self.decode_inner(packet, false, "decode")
    }

    /// Rebuilds the frame *before* `next_packet` from the FEC data that
    /// `next_packet` carries. Call it when that frame's own packet was lost
    /// and the next one has arrived, then decode `next_packet` normally.
    ///
    /// When `next_packet` carries no FEC data libopus falls back to PLC;
    /// check [`packet_has_fec`] first to know which you will get.
    pub fn decode_fec(&mut self, next_packet: &[u8]) -> Result<AudioFrame, OpusError> {
        self.decode_inner(next_packet, true, "fec decode")
    }

    /// Conceals one lost frame (packet loss concealment), extrapolating from
    /// what was decoded before.
    pub fn conceal(&mut self) -> Result<AudioFrame, OpusError> {
        self.decode_inner(&[], false, "conceal")
    }

    fn decode_inner(
        &mut self,
        packet: &[u8],
        fec: bool,
        op: &'static str,
    ) -> Result<AudioFrame, OpusError> {
        let mut frame = AudioFrame::silence();
        let n = self
            .inner
            .decode(packet, frame.samples_mut(), fec)
            .map_err(codec(op))?;
        if n != FRAME_SAMPLES {
            return Err(OpusError::WrongFrameSize(n));
        }
        Ok(frame)
    }
}

/// Whether an Opus packet carries in-band FEC (LBRR) data for the frame
/// before it.
#[allow(unsafe_code)]
pub fn packet_has_fec(packet: &[u8]) -> bool {
    let Ok(len) = i32::try_from(packet.len()) else {
        return false;
    };
    if len == 0 {
        return false;
    }
    // SAFETY: libopus reads at most `len` bytes from `packet`, which is a
    // valid slice of exactly that length; it returns a negative error code
    // for a malformed packet instead of reading past it.
    let r = unsafe { opusic_sys::opus_packet_has_lbrr(packet.as_ptr(), len) };
    r == 1
}
