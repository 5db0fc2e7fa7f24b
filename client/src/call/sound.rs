//! Microphones and speakers through cpal (ALSA on Linux, so PulseAudio or
//! PipeWire when they provide ALSA's `default`), behind the media core's
//! [`AudioSource`] and [`AudioSink`].
//!
//! cpal calls back on its own real-time thread; samples cross to the call's
//! 20 ms tick through a small shared queue. The queue is capped at 200 ms
//! (oldest samples dropped) so a device whose clock runs a little fast or
//! slow against the wall clock costs a click now and then, never a growing
//! delay. A cpal stream cannot move between threads, so each one lives on
//! a thread of its own until the source or sink is dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{SampleFormat, SampleRate, StreamConfig};
use parley_media::audio::{AudioFrame, AudioSink, AudioSource, FRAME_SAMPLES, SAMPLE_RATE};

use super::devices::DeviceError;

/// At most this many samples wait between a device and the call.
const MAX_QUEUED: usize = SAMPLE_RATE as usize / 5;

#[derive(Default)]
struct Shared {
    samples: Mutex<VecDeque<i16>>,
    error: Mutex<Option<String>>,
}

impl Shared {
    fn push(&self, samples: impl Iterator<Item = i16>) {
        let mut queue = self.samples.lock().expect("audio queue lock");
        queue.extend(samples);
        let excess = queue.len().saturating_sub(MAX_QUEUED);
        queue.drain(..excess);
    }

    fn fail(&self, error: impl std::fmt::Display) {
        self.error
            .lock()
            .expect("audio error lock")
            .get_or_insert(error.to_string());
    }

    fn check(&self) -> Result<(), parley_media::Error> {
        match self.error.lock().expect("audio error lock").as_ref() {
            Some(e) => Err(parley_media::Error::Device(e.clone())),
            None => Ok(()),
        }
    }
}

/// Keeps a cpal stream alive on its own thread; dropping it stops the
/// stream.
struct StreamThread {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for StreamThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn device(name: &str, input: bool) -> Result<cpal::Device, DeviceError> {
    let host = cpal::default_host();
    let audio = |e: &dyn std::fmt::Display| DeviceError::Audio(e.to_string());
    if name == "default" {
        let device = if input {
            host.default_input_device()
        } else {
            host.default_output_device()
        };
        return device.ok_or_else(|| {
            DeviceError::Audio(format!(
                "no default {} device (is a sound server running?)",
                if input { "capture" } else { "playback" }
            ))
        });
    }
    let mut devices = if input {
        host.input_devices().map_err(|e| audio(&e))?
    } else {
        host.output_devices().map_err(|e| audio(&e))?
    };
    devices
        .find(|d| d.name().is_ok_and(|n| n == name))
        .ok_or_else(|| DeviceError::Unknown(format!("no audio device named {name:?}")))
}

/// A 48 kHz configuration of the device: mono if it has one, 16-bit if
/// it has that, else 32-bit float.
fn config(device: &cpal::Device, input: bool) -> Result<(StreamConfig, SampleFormat), DeviceError> {
    let ranges: Vec<_> = if input {
        device.supported_input_configs().map(Iterator::collect)
    } else {
        device.supported_output_configs().map(Iterator::collect)
    }
    .map_err(|e| DeviceError::Audio(e.to_string()))?;
    let rate = SampleRate(SAMPLE_RATE);
    let best = ranges
        .into_iter()
        .filter(|r| r.min_sample_rate() <= rate && rate <= r.max_sample_rate())
        .filter(|r| matches!(r.sample_format(), SampleFormat::I16 | SampleFormat::F32))
        .min_by_key(|r| (r.channels(), r.sample_format() != SampleFormat::I16))
        .ok_or_else(|| {
            DeviceError::Audio("the device offers no 48 kHz 16-bit or float format".into())
        })?;
    let format = best.sample_format();
    Ok((best.with_sample_rate(rate).config(), format))
}

fn spawn_stream(name: &str, input: bool, shared: Arc<Shared>) -> Result<StreamThread, DeviceError> {
    let name = name.to_string();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), DeviceError>>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("audio-{}", if input { "in" } else { "out" }))
        .spawn(move || {
            let stream = match build(&name, input, shared) {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            // Until the owner drops its end.
            let _ = stop_rx.recv();
            drop(stream);
        })
        .map_err(|e| DeviceError::Audio(format!("audio thread: {e}")))?;
    let ready = ready_rx
        .recv()
        .unwrap_or_else(|_| Err(DeviceError::Audio("audio thread died".into())));
    let handle = StreamThread {
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    ready.map(|()| handle)
}

fn build(name: &str, input: bool, shared: Arc<Shared>) -> Result<cpal::Stream, DeviceError> {
    let device = device(name, input)?;
    let (config, format) = config(&device, input)?;
    let channels = usize::from(config.channels);
    let on_error = {
        let shared = shared.clone();
        move |e: cpal::StreamError| shared.fail(e)
    };
    let audio = |e: &dyn std::fmt::Display| DeviceError::Audio(e.to_string());
    let stream = match (input, format) {
        (true, SampleFormat::I16) => device.build_input_stream(
            &config,
            move |data: &[i16], _: &_| shared.push(data.chunks(channels).map(|c| c[0])),
            on_error,
            None,
        ),
        (true, _) => device.build_input_stream(
            &config,
            move |data: &[f32], _: &_| {
                shared.push(data.chunks(channels).map(|c| (c[0] * 32767.0) as i16))
            },
            on_error,
            None,
        ),
        (false, SampleFormat::I16) => device.build_output_stream(
            &config,
            move |data: &mut [i16], _: &_| {
                let mut queue = shared.samples.lock().expect("audio queue lock");
                for frame in data.chunks_mut(channels) {
                    frame.fill(queue.pop_front().unwrap_or(0));
                }
            },
            on_error,
            None,
        ),
        (false, _) => device.build_output_stream(
            &config,
            move |data: &mut [f32], _: &_| {
                let mut queue = shared.samples.lock().expect("audio queue lock");
                for frame in data.chunks_mut(channels) {
                    frame.fill(f32::from(queue.pop_front().unwrap_or(0)) / 32768.0);
                }
            },
            on_error,
            None,
        ),
    }
    .map_err(|e| audio(&e))?;
    stream.play().map_err(|e| audio(&e))?;
    Ok(stream)
}

/// A microphone.
pub struct Capture {
    shared: Arc<Shared>,
    _stream: StreamThread,
}

impl AudioSource for Capture {
    /// The oldest 20 ms captured; on underrun what there is, padded with
    /// silence (the call's clock never waits for the device's).
    fn next_frame(&mut self) -> Result<Option<AudioFrame>, parley_media::Error> {
        self.shared.check()?;
        let mut queue = self.shared.samples.lock().expect("audio queue lock");
        let n = queue.len().min(FRAME_SAMPLES);
        let samples: Vec<i16> = queue.drain(..n).collect();
        Ok(Some(AudioFrame::from_partial(&samples)))
    }
}

/// A speaker.
pub struct Playback {
    shared: Arc<Shared>,
    _stream: StreamThread,
}

impl AudioSink for Playback {
    fn write_frame(&mut self, frame: &AudioFrame) -> Result<(), parley_media::Error> {
        self.shared.check()?;
        self.shared.push(frame.samples().iter().copied());
        Ok(())
    }
}

/// Opens a capture device (`default` for the system's).
pub fn open_capture(name: &str) -> Result<Box<dyn AudioSource + Send>, DeviceError> {
    let shared = Arc::new(Shared::default());
    let stream = spawn_stream(name, true, shared.clone())?;
    Ok(Box::new(Capture {
        shared,
        _stream: stream,
    }))
}

/// Opens a playback device (`default` for the system's).
pub fn open_playback(name: &str) -> Result<Box<dyn AudioSink + Send>, DeviceError> {
    let shared = Arc::new(Shared::default());
    let stream = spawn_stream(name, false, shared.clone())?;
    Ok(Box::new(Playback {
        shared,
        _stream: stream,
    }))
}
