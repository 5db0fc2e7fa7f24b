//! Objective quality scores: PESQ wideband for speech (ITU-T P.862.2, via
//! the pure-Rust `pesq` crate) and PSNR for pictures.

use crate::audio::SAMPLE_RATE;
use crate::resample::{ResampleError, resample};
use crate::video::I420Frame;

/// The rate PESQ wideband scores at.
const PESQ_WB_RATE: u32 = 16_000;

/// PSNR reported for identical pictures, where the true value is infinite:
/// a finite number keeps tables, JSON and averages meaningful.
pub const PSNR_IDENTICAL_DB: f64 = 100.0;

/// Errors from scoring.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// PESQ could not score the pair (too short, or no speech found).
    #[error("PESQ cannot score this pair: {0}")]
    Pesq(String),
    /// Converting to 16 kHz failed.
    #[error(transparent)]
    Resample(#[from] ResampleError),
    /// The two pictures differ in size.
    #[error("cannot compare a {0}x{1} picture with a {2}x{3} one")]
    SizeMismatch(usize, usize, usize, usize),
}

/// PESQ wideband MOS-LQO (about 1.0 to 4.64) of `degraded` against
/// `reference`, both 48 kHz mono. PESQ aligns the two itself, so a
/// constant delay between them does not lower the score.
pub fn pesq_wb(reference: &[i16], degraded: &[i16]) -> Result<f64, QualityError> {
    let reference = resample(reference, SAMPLE_RATE, PESQ_WB_RATE)?;
    let degraded = resample(degraded, SAMPLE_RATE, PESQ_WB_RATE)?;
    let score =
        pesq::pesq_wb(&reference, &degraded).map_err(|e| QualityError::Pesq(e.to_string()))?;
    Ok(f64::from(score))
}

/// Peak signal-to-noise ratio in dB over all three planes of two I420
/// pictures (the mean squared error of every sample, as ffmpeg's `psnr`
/// filter reports "average"). Identical pictures give
/// [`PSNR_IDENTICAL_DB`].
pub fn psnr(reference: &I420Frame, degraded: &I420Frame) -> Result<f64, QualityError> {
    if (reference.width(), reference.height()) != (degraded.width(), degraded.height()) {
        return Err(QualityError::SizeMismatch(
            reference.width(),
            reference.height(),
            degraded.width(),
            degraded.height(),
        ));
    }
    let planes = [
        (reference.y(), degraded.y()),
        (reference.u(), degraded.u()),
        (reference.v(), degraded.v()),
    ];
    let (mut sum, mut count) = (0u64, 0u64);
    for (a, b) in planes {
        for (&x, &y) in a.iter().zip(b) {
            let d = u64::from(x.abs_diff(y));
            sum += d * d;
        }
        count += a.len() as u64;
    }
    Ok(psnr_from_mse(sum as f64 / count as f64))
}

/// PSNR in dB of 8-bit samples with the given mean squared error.
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse <= 0.0 {
        return PSNR_IDENTICAL_DB;
    }
    (10.0 * (255.0 * 255.0 / mse).log10()).min(PSNR_IDENTICAL_DB)
}

/// Signal-to-noise ratio in dB of `degraded` against `reference` over their
/// common length; for codec round-trip checks where the two are aligned.
pub fn snr_db(reference: &[i16], degraded: &[i16]) -> f64 {
    let (mut signal, mut noise) = (0f64, 0f64);
    for (&r, &d) in reference.iter().zip(degraded) {
        let r = f64::from(r);
        signal += r * r;
        noise += (r - f64::from(d)).powi(2);
    }
    if noise == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (signal / noise).log10()
}
