//! Audio frames and the traits every audio source and sink implements.
//!
//! Parley's audio is 48 kHz mono, 16-bit, in 20 ms frames of 960 samples:
//! Opus's native rate and the frame size WebRTC uses, so one frame is one
//! encoded packet is one RTP packet.

use std::time::Duration;

/// Sample rate of every [`AudioFrame`], in Hz.
pub const SAMPLE_RATE: u32 = 48_000;

/// Duration of one [`AudioFrame`].
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// Samples in one [`AudioFrame`]: 20 ms at 48 kHz.
pub const FRAME_SAMPLES: usize = 960;

/// 20 ms of 48 kHz mono 16-bit PCM.
///
/// The length is fixed by construction, so code downstream (the encoder, the
/// jitter buffer, sinks) never has to handle a short frame.
#[derive(Clone, PartialEq, Eq)]
pub struct AudioFrame {
    samples: Box<[i16; FRAME_SAMPLES]>,
}

impl AudioFrame {
    /// A frame of digital silence.
    pub fn silence() -> Self {
        Self {
            samples: Box::new([0; FRAME_SAMPLES]),
        }
    }

    /// Builds a frame from exactly [`FRAME_SAMPLES`] samples.
    ///
    /// Returns `None` when the slice has another length.
    pub fn from_samples(samples: &[i16]) -> Option<Self> {
        let array: [i16; FRAME_SAMPLES] = samples.try_into().ok()?;
        Some(Self {
            samples: Box::new(array),
        })
    }

    /// Builds a frame from up to [`FRAME_SAMPLES`] samples, padding the rest
    /// with silence. Used for the last, partial frame of a file.
    pub fn from_partial(samples: &[i16]) -> Self {
        let mut frame = Self::silence();
        let n = samples.len().min(FRAME_SAMPLES);
        frame.samples[..n].copy_from_slice(&samples[..n]);
        frame
    }

    /// The samples.
    pub fn samples(&self) -> &[i16; FRAME_SAMPLES] {
        &self.samples
    }

    /// The samples, mutably.
    pub fn samples_mut(&mut self) -> &mut [i16; FRAME_SAMPLES] {
        &mut self.samples
    }
}

impl std::fmt::Debug for AudioFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peak = self
            .samples
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        f.debug_struct("AudioFrame").field("peak", &peak).finish()
    }
}

/// Something that produces audio a frame at a time: a microphone, a WAV
/// file, a synthetic generator.
pub trait AudioSource {
    /// The next 20 ms, or `None` when the source has ended.
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, crate::Error>;
}

/// Something that consumes audio a frame at a time: a speaker, a WAV file,
/// a discarding sink.
pub trait AudioSink {
    /// Consumes one frame.
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<(), crate::Error>;

    /// Flushes whatever the sink buffers (a WAV header's lengths, say).
    fn finish(&mut self) -> Result<(), crate::Error> {
        Ok(())
    }
}

/// Concatenates every frame of a source into one buffer; for tests and
/// offline scoring.
pub fn collect_samples(source: &mut dyn AudioSource) -> Result<Vec<i16>, crate::Error> {
    let mut out = Vec::new();
    while let Some(frame) = source.next_frame()? {
        out.extend_from_slice(frame.samples());
    }
    Ok(out)
}

/// Splits PCM into frames, padding the last one with silence.
pub fn frames_of(samples: &[i16]) -> impl Iterator<Item = AudioFrame> + '_ {
    samples.chunks(FRAME_SAMPLES).map(AudioFrame::from_partial)
}
