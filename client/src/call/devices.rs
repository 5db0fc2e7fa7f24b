//! Where a call's media comes from and goes to, as the CLI names them:
//! a synthetic source (`tone`, `speech`, `pattern`, `null`), a file
//! (`.wav`, `.y4m`), or a device by name. Every choice is a real
//! implementation of the media core's source and sink traits.
//!
//! `--record DIR` adds what was received, as `DIR/audio.wav` (from the
//! first sound on, so a recording starts with the call, not with ringing)
//! and `DIR/video.y4m` (every decoded picture, at the size it arrived).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use parley_media::audio::{AudioFrame, AudioSink, AudioSource};
use parley_media::speech::SpeechSource;
use parley_media::test_pattern::TestPatternSource;
use parley_media::tone::ToneSource;
use parley_media::video::{FrameRate, I420Frame, VideoSink, VideoSource};
use parley_media::wav_file::{WavSink, WavSource};
use parley_media::y4m_file::{Y4mHeader, Y4mSink, Y4mSource};

#[cfg(feature = "devices")]
use super::{camera, sound};
#[cfg(not(feature = "devices"))]
use no_devices as camera;
#[cfg(not(feature = "devices"))]
use no_devices as sound;

/// Built without the `devices` feature (no cpal, no nokhwa): every device
/// name is refused with a message that says why.
#[cfg(not(feature = "devices"))]
mod no_devices {
    use parley_media::audio::{AudioSink, AudioSource};
    use parley_media::video::VideoSource;

    use super::DeviceError;

    fn refused(name: &str) -> DeviceError {
        DeviceError::Unknown(format!(
            "{name:?}: this build has no device support (the `devices` feature is off); \
             use a file or a synthetic source"
        ))
    }

    pub fn open_capture(name: &str) -> Result<Box<dyn AudioSource + Send>, DeviceError> {
        Err(refused(name))
    }

    pub fn open_playback(name: &str) -> Result<Box<dyn AudioSink + Send>, DeviceError> {
        Err(refused(name))
    }

    pub fn open_camera(name: &str) -> Result<Box<dyn VideoSource + Send>, DeviceError> {
        Err(refused(name))
    }
}

/// A device or file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A file could not be opened or is not media.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<parley_media::Error>,
    },
    /// A name that is neither a synthetic source, a file nor a device.
    #[error("{0}")]
    Unknown(String),
    /// The sound system refused.
    #[error("audio device: {0}")]
    Audio(String),
    /// A recording directory could not be made.
    #[error("recording into {path}: {source}")]
    Record {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// `--audio-in`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioInput {
    /// A 440 Hz tone.
    Tone,
    /// The built-in speech clip, looped.
    Speech,
    /// Silence.
    Null,
    /// A WAV file (48 kHz mono, or converted), played once.
    File(PathBuf),
    /// A capture device by name; `default` is the system's.
    Device(String),
}

/// `--audio-out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioOutput {
    /// Discard.
    Null,
    /// A WAV file.
    File(PathBuf),
    /// A playback device by name; `default` is the system's.
    Device(String),
}

/// `--video-in`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoInput {
    /// The numbered test pattern, 640x480 at 30 fps.
    Pattern,
    /// No video sent.
    Null,
    /// A Y4M file, played once.
    File(PathBuf),
    /// A camera by name or index.
    Device(String),
}

fn has_extension(s: &str, ext: &str) -> bool {
    Path::new(s)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

impl FromStr for AudioInput {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "tone" => Self::Tone,
            "speech" => Self::Speech,
            "null" | "silence" => Self::Null,
            _ if has_extension(s, "wav") => Self::File(s.into()),
            _ if s.contains('.') || s.contains('/') => {
                return Err(DeviceError::Unknown(format!(
                    "{s}: audio input files must be .wav"
                )));
            }
            _ => Self::Device(s.to_string()),
        })
    }
}

impl FromStr for AudioOutput {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "null" => Self::Null,
            _ if has_extension(s, "wav") => Self::File(s.into()),
            _ if s.contains('.') || s.contains('/') => {
                return Err(DeviceError::Unknown(format!(
                    "{s}: audio output files must be .wav"
                )));
            }
            _ => Self::Device(s.to_string()),
        })
    }
}

impl FromStr for VideoInput {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pattern" => Self::Pattern,
            "null" | "none" => Self::Null,
            _ if has_extension(s, "y4m") => Self::File(s.into()),
            _ if s.contains('.') || s.contains('/') => {
                return Err(DeviceError::Unknown(format!(
                    "{s}: video input files must be .y4m"
                )));
            }
            _ => Self::Device(s.to_string()),
        })
    }
}

fn file_error(path: &Path, source: impl Into<parley_media::Error>) -> DeviceError {
    DeviceError::File {
        path: path.to_path_buf(),
        source: Box::new(source.into()),
    }
}

/// A source that plays its inner source and then silence, so a call
/// from a file does not end when the file does.
struct ThenSilence(Box<dyn AudioSource + Send>, bool);

impl AudioSource for ThenSilence {
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, parley_media::Error> {
        if !self.1 {
            match self.0.next_frame()? {
                Some(frame) => return Ok(Some(frame)),
                None => self.1 = true,
            }
        }
        Ok(Some(AudioFrame::silence()))
    }
}

/// Discards audio.
struct NullAudio;

impl AudioSink for NullAudio {
    fn write_frame(&mut self, _: &AudioFrame) -> Result<(), parley_media::Error> {
        Ok(())
    }
}

/// Discards video.
struct NullVideo;

impl VideoSink for NullVideo {
    fn write_frame(&mut self, _: &I420Frame) -> Result<(), parley_media::Error> {
        Ok(())
    }
}

/// Opens `--audio-in`.
pub fn open_audio_input(input: &AudioInput) -> Result<Box<dyn AudioSource + Send>, DeviceError> {
    Ok(match input {
        AudioInput::Tone => Box::new(ToneSource::new(440.0, 0.3)),
        AudioInput::Speech => {
            Box::new(SpeechSource::new(true).map_err(|e| file_error(Path::new("speech"), e))?)
        }
        AudioInput::Null => Box::new(Silence),
        AudioInput::File(path) => Box::new(ThenSilence(
            Box::new(WavSource::open(path, false).map_err(|e| file_error(path, e))?),
            false,
        )),
        AudioInput::Device(name) => sound::open_capture(name)?,
    })
}

/// Silence for ever.
struct Silence;

impl AudioSource for Silence {
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, parley_media::Error> {
        Ok(Some(AudioFrame::silence()))
    }
}

/// Opens `--audio-out`.
pub fn open_audio_output(output: &AudioOutput) -> Result<Box<dyn AudioSink + Send>, DeviceError> {
    Ok(match output {
        AudioOutput::Null => Box::new(NullAudio),
        AudioOutput::File(path) => {
            Box::new(WavSink::create(path).map_err(|e| file_error(path, e))?)
        }
        AudioOutput::Device(name) => sound::open_playback(name)?,
    })
}

/// Opens `--video-in`; `None` sends no video.
pub fn open_video_input(
    input: &VideoInput,
) -> Result<Option<Box<dyn VideoSource + Send>>, DeviceError> {
    Ok(match input {
        VideoInput::Null => None,
        VideoInput::Pattern => Some(Box::new(
            TestPatternSource::new(640, 480, FrameRate::fps(30))
                .map_err(|e| file_error(Path::new("pattern"), e))?,
        )),
        VideoInput::File(path) => Some(Box::new(
            Y4mSource::open(path).map_err(|e| file_error(path, e))?,
        )),
        VideoInput::Device(name) => Some(camera::open_camera(name)?),
    })
}

/// Plays to one sink and records to another.
struct TeeAudio(Box<dyn AudioSink + Send>, Box<dyn AudioSink + Send>);

impl AudioSink for TeeAudio {
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<(), parley_media::Error> {
        self.0.write_frame(frame)?;
        self.1.write_frame(frame)
    }
    fn finish(&mut self) -> Result<(), parley_media::Error> {
        self.0.finish()?;
        self.1.finish()
    }
}

/// Records from the first non-silent frame on: before the peer's first
/// packet the playout is digital silence, which is ringing, not the call.
struct FromFirstSound {
    inner: WavSink,
    started: bool,
}

impl AudioSink for FromFirstSound {
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<(), parley_media::Error> {
        self.started |= frame.samples().iter().any(|&s| s != 0);
        if self.started {
            self.inner.write_frame(frame)?;
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), parley_media::Error> {
        self.inner.finish()
    }
}

/// A Y4M file created at the first picture's size.
struct LazyY4m {
    path: PathBuf,
    sink: Option<Y4mSink>,
}

impl VideoSink for LazyY4m {
    fn write_frame(&mut self, frame: &I420Frame) -> Result<(), parley_media::Error> {
        if self.sink.is_none() {
            let header = Y4mHeader {
                width: frame.width(),
                height: frame.height(),
                frame_rate: FrameRate::fps(30),
            };
            self.sink = Some(Y4mSink::create(&self.path, header)?);
        }
        match &mut self.sink {
            Some(sink) => sink.write_frame(frame),
            None => Ok(()),
        }
    }
}

/// Plays video nowhere but records it.
struct TeeVideo(Box<dyn VideoSink + Send>, Box<dyn VideoSink + Send>);

impl VideoSink for TeeVideo {
    fn write_frame(&mut self, frame: &I420Frame) -> Result<(), parley_media::Error> {
        self.0.write_frame(frame)?;
        self.1.write_frame(frame)
    }
}

/// Where received audio and video go.
pub type Sinks = (Box<dyn AudioSink + Send>, Box<dyn VideoSink + Send>);

/// The sinks for received media: `output` for audio (video has no
/// window yet, so it is shown nowhere), each also recorded into `record`.
pub fn open_sinks(output: &AudioOutput, record: Option<&Path>) -> Result<Sinks, DeviceError> {
    let audio = open_audio_output(output)?;
    let video: Box<dyn VideoSink + Send> = Box::new(NullVideo);
    let Some(dir) = record else {
        return Ok((audio, video));
    };
    std::fs::create_dir_all(dir).map_err(|source| DeviceError::Record {
        path: dir.to_path_buf(),
        source,
    })?;
    let wav = dir.join("audio.wav");
    let recorder = FromFirstSound {
        inner: WavSink::create(&wav).map_err(|e| file_error(&wav, e))?,
        started: false,
    };
    let y4m = LazyY4m {
        path: dir.join("video.y4m"),
        sink: None,
    };
    Ok((
        Box::new(TeeAudio(audio, Box::new(recorder))),
        Box::new(TeeVideo(video, Box::new(y4m))),
    ))
}
