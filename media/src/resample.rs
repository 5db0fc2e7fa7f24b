//! Whole-clip sample-rate conversion over `rubato`'s FFT resampler.
//!
//! Used off the real-time path: turning a WAV file of any rate into 48 kHz,
//! and 48 kHz decodes into the 16 kHz that PESQ wideband scores.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Errors from resampling.
#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    /// rubato refused the rates.
    #[error("cannot resample {from} Hz to {to} Hz: {reason}")]
    Unsupported {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// rubato's explanation.
        reason: String,
    },
}

/// Chunk size for the FFT resampler: large enough to be efficient on whole
/// clips, small enough that short clips do not pay for a huge FFT.
const CHUNK: usize = 1024;

/// Resamples mono 16-bit PCM from `from` Hz to `to` Hz. The output is
/// delay-compensated: sample `i` of the output lines up with time
/// `i / to` of the input.
pub fn resample(samples: &[i16], from: u32, to: u32) -> Result<Vec<i16>, ResampleError> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let unsupported = |reason: String| ResampleError::Unsupported { from, to, reason };
    let mut resampler = Fft::<f32>::new(from as usize, to as usize, CHUNK, 1, FixedSync::Both)
        .map_err(|e| unsupported(e.to_string()))?;
    let input: Vec<f32> = samples.iter().map(|&s| f32::from(s) / 32768.0).collect();
    let adapter =
        InterleavedSlice::new(&input, 1, input.len()).map_err(|e| unsupported(e.to_string()))?;
    let output = resampler
        .process_all(&adapter, input.len(), None)
        .map_err(|e| unsupported(e.to_string()))?;
    Ok(output
        .take_data()
        .into_iter()
        .map(|s| (s * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}
