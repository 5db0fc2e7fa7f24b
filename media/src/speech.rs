//! A speech source: a shipped 10.9 s clip of four Harvard sentences (two
//! voices) made with espeak-ng, so that tests, benches and the demo score
//! real speech with PESQ without a microphone.
//!
//! The clip is stored at 24 kHz (everything PESQ wideband hears, at half
//! the size of 48 kHz) and resampled to 48 kHz when loaded. It was made
//! with `scripts/make-speech-asset.sh`.

use crate::audio::{AudioFrame, AudioSource};
use crate::wav_file::{WavError, WavSource, decode_wav};

/// The clip as shipped (24 kHz mono 16-bit WAV).
const SPEECH_WAV: &[u8] = include_bytes!("../assets/speech.wav");

/// The speech clip as 48 kHz mono PCM.
pub fn speech_clip() -> Result<Vec<i16>, WavError> {
    decode_wav(SPEECH_WAV, "built-in speech clip")
}

/// An [`AudioSource`] that plays the built-in speech clip, once or on a
/// loop.
pub struct SpeechSource {
    inner: WavSource,
}

impl SpeechSource {
    /// Plays the clip once (`looped = false`) or forever.
    pub fn new(looped: bool) -> Result<Self, WavError> {
        Ok(Self {
            inner: WavSource::from_samples(speech_clip()?, looped),
        })
    }
}

impl AudioSource for SpeechSource {
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, crate::Error> {
        self.inner.next_frame()
    }
}
