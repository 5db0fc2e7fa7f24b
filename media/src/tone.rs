//! A sine tone generator: the simplest audio source, useful where a known
//! frequency makes an assertion easy (level meters, SNR).

use crate::audio::{AudioFrame, AudioSource, FRAME_SAMPLES, SAMPLE_RATE};

/// An endless sine tone.
#[derive(Debug, Clone)]
pub struct ToneSource {
    frequency_hz: f64,
    amplitude: f64,
    phase: f64,
}

impl ToneSource {
    /// A tone of `frequency_hz` at `amplitude` (0.0 to 1.0 of full scale).
    pub fn new(frequency_hz: f64, amplitude: f64) -> Self {
        Self {
            frequency_hz,
            amplitude: amplitude.clamp(0.0, 1.0),
            phase: 0.0,
        }
    }
}

impl Default for ToneSource {
    /// 440 Hz at a quarter of full scale (-12 dBFS).
    fn default() -> Self {
        Self::new(440.0, 0.25)
    }
}

impl AudioSource for ToneSource {
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, crate::Error> {
        let mut frame = AudioFrame::silence();
        let step = std::f64::consts::TAU * self.frequency_hz / f64::from(SAMPLE_RATE);
        for s in frame.samples_mut().iter_mut().take(FRAME_SAMPLES) {
            *s = (self.phase.sin() * self.amplitude * 32767.0) as i16;
            self.phase = (self.phase + step) % std::f64::consts::TAU;
        }
        Ok(Some(frame))
    }
}
