//! WAV files as audio sources and sinks, over `hound`.
//!
//! Reading accepts what users have lying around (any rate, mono or stereo,
//! 8 to 32-bit integer or 32-bit float PCM) and turns it into Parley's
//! 48 kHz mono. Writing produces 48 kHz mono 16-bit. A truncated or
//! malformed file is an error, never a panic.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek};
use std::path::Path;

use crate::audio::{AudioFrame, AudioSink, AudioSource, FRAME_SAMPLES, SAMPLE_RATE};
use crate::resample::{ResampleError, resample};

/// Errors reading or writing WAV.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The file is not valid WAV, is truncated, or could not be read or
    /// written.
    #[error("WAV file {path}: {source}")]
    Format {
        /// The file.
        path: String,
        /// `hound`'s explanation.
        source: hound::Error,
    },
    /// The file is valid WAV in a layout Parley does not take.
    #[error("WAV file {path}: unsupported format: {reason}")]
    Unsupported {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Converting the rate to 48 kHz failed.
    #[error("WAV file {path}: {source}")]
    Resample {
        /// The file.
        path: String,
        /// The resampler's explanation.
        source: ResampleError,
    },
}

/// Reads a whole WAV file as 48 kHz mono PCM.
pub fn read_wav(path: impl AsRef<Path>) -> Result<Vec<i16>, WavError> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| WavError::Format {
        path: name.clone(),
        source: hound::Error::IoError(e),
    })?;
    decode_wav(BufReader::new(file), &name)
}

/// Decodes WAV bytes (a file's contents) as 48 kHz mono PCM. `name` labels
/// errors.
pub fn decode_wav(reader: impl Read, name: &str) -> Result<Vec<i16>, WavError> {
    let format = |source| WavError::Format {
        path: name.to_string(),
        source,
    };
    let reader = hound::WavReader::new(reader).map_err(format)?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.channels > 8 {
        return Err(WavError::Unsupported {
            path: name.to_string(),
            reason: format!("{} channels", spec.channels),
        });
    }
    if !(8_000..=192_000).contains(&spec.sample_rate) {
        return Err(WavError::Unsupported {
            path: name.to_string(),
            reason: format!("sample rate {} Hz", spec.sample_rate),
        });
    }
    let interleaved: Vec<i16> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 1..=16) => {
            let shift = 16 - spec.bits_per_sample;
            reader
                .into_samples::<i16>()
                .map(|s| s.map(|s| s << shift))
                .collect::<Result<_, _>>()
                .map_err(format)?
        }
        (hound::SampleFormat::Int, 17..=32) => {
            let shift = spec.bits_per_sample - 16;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|s| (s >> shift) as i16))
                .collect::<Result<_, _>>()
                .map_err(format)?
        }
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .map(|s| s.map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16))
            .collect::<Result<_, _>>()
            .map_err(format)?,
        (fmt, bits) => {
            return Err(WavError::Unsupported {
                path: name.to_string(),
                reason: format!("{bits}-bit {fmt:?} samples"),
            });
        }
    };
    let channels = usize::from(spec.channels);
    let mono: Vec<i16> = interleaved
        .chunks_exact(channels)
        .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / channels as i32) as i16)
        .collect();
    resample(&mono, spec.sample_rate, SAMPLE_RATE).map_err(|source| WavError::Resample {
        path: name.to_string(),
        source,
    })
}

/// An [`AudioSource`] that plays a WAV file, optionally on a loop.
pub struct WavSource {
    samples: Vec<i16>,
    position: usize,
    looped: bool,
}

impl WavSource {
    /// Opens and decodes a WAV file. With `looped`, the source starts over
    /// at the end instead of ending.
    pub fn open(path: impl AsRef<Path>, looped: bool) -> Result<Self, WavError> {
        Ok(Self::from_samples(read_wav(path)?, looped))
    }

    /// A source over 48 kHz mono samples already in memory.
    pub fn from_samples(samples: Vec<i16>, looped: bool) -> Self {
        Self {
            samples,
            position: 0,
            looped,
        }
    }
}

impl AudioSource for WavSource {
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, crate::Error> {
        if self.samples.is_empty() {
            return Ok(None);
        }
        if self.position >= self.samples.len() {
            if !self.looped {
                return Ok(None);
            }
            self.position = 0;
        }
        let end = (self.position + FRAME_SAMPLES).min(self.samples.len());
        let mut frame = AudioFrame::from_partial(&self.samples[self.position..end]);
        let filled = end - self.position;
        if filled < FRAME_SAMPLES && self.looped {
            let rest = FRAME_SAMPLES - filled;
            let wrap = rest.min(self.samples.len());
            frame.samples_mut()[filled..filled + wrap].copy_from_slice(&self.samples[..wrap]);
            self.position = wrap;
        } else {
            self.position = end;
        }
        Ok(Some(frame))
    }
}

/// An [`AudioSink`] that writes 48 kHz mono 16-bit WAV.
pub struct WavSink<W: std::io::Write + Seek = BufWriter<File>> {
    writer: Option<hound::WavWriter<W>>,
    name: String,
}

/// The format [`WavSink`] writes.
pub const WAV_SPEC: hound::WavSpec = hound::WavSpec {
    channels: 1,
    sample_rate: SAMPLE_RATE,
    bits_per_sample: 16,
    sample_format: hound::SampleFormat::Int,
};

impl WavSink {
    /// Creates (or truncates) a WAV file.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, WavError> {
        let name = path.as_ref().display().to_string();
        let writer =
            hound::WavWriter::create(path, WAV_SPEC).map_err(|source| WavError::Format {
                path: name.clone(),
                source,
            })?;
        Ok(Self {
            writer: Some(writer),
            name,
        })
    }
}

impl<W: std::io::Write + Seek> WavSink<W> {
    fn error(&self, source: hound::Error) -> WavError {
        WavError::Format {
            path: self.name.clone(),
            source,
        }
    }

    /// Appends samples.
    pub fn write_samples(&mut self, samples: &[i16]) -> Result<(), WavError> {
        let Some(writer) = self.writer.as_mut() else {
            return Ok(());
        };
        let result = samples.iter().try_for_each(|&s| writer.write_sample(s));
        result.map_err(|e| self.error(e))
    }

    /// Writes the header's lengths and closes the file. Later writes are
    /// ignored.
    pub fn finalize(&mut self) -> Result<(), WavError> {
        match self.writer.take() {
            Some(writer) => writer.finalize().map_err(|e| self.error(e)),
            None => Ok(()),
        }
    }
}

impl<W: std::io::Write + Seek> AudioSink for WavSink<W> {
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<(), crate::Error> {
        Ok(self.write_samples(frame.samples())?)
    }

    fn finish(&mut self) -> Result<(), crate::Error> {
        Ok(self.finalize()?)
    }
}

/// Writes 48 kHz mono PCM to a WAV file in one go.
pub fn write_wav(path: impl AsRef<Path>, samples: &[i16]) -> Result<(), WavError> {
    let mut sink = WavSink::create(path)?;
    sink.write_samples(samples)?;
    sink.finalize()
}
