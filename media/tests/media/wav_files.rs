//! WAV files: what is written reads back; other rates and stereo become
//! 48 kHz mono; truncated or malformed files are errors, never panics.

use std::io::Cursor;

use parley_media::audio::{AudioSource, collect_samples};
use parley_media::wav_file::{WavError, WavSink, WavSource, decode_wav, read_wav, write_wav};

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("parley-wav-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn wav_bytes(spec: hound::WavSpec, samples: &[i16]) -> Vec<u8> {
    let mut cursor = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    cursor.into_inner()
}

#[test]
fn written_audio_reads_back_exactly() {
    let samples: Vec<i16> = (0..48_000)
        .map(|i| ((i * 37) % 20_000 - 10_000) as i16)
        .collect();
    let path = tmp("round-trip.wav");
    write_wav(&path, &samples).unwrap();
    assert_eq!(read_wav(&path).unwrap(), samples);

    // Through the source/sink traits, frame by frame.
    let mut source = WavSource::open(&path, false).unwrap();
    let mut sink = WavSink::create(tmp("copy.wav")).unwrap();
    let mut frames = 0;
    while let Some(frame) = source.next_frame().unwrap() {
        parley_media::audio::AudioSink::write_frame(&mut sink, &frame).unwrap();
        frames += 1;
    }
    sink.finalize().unwrap();
    assert_eq!(frames, 50);
    assert_eq!(read_wav(tmp("copy.wav")).unwrap(), samples);
}

#[test]
fn stereo_44k1_becomes_48k_mono_of_the_same_duration() {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    // One second of a 1 kHz tone in both channels.
    let tone: Vec<i16> = (0..44_100)
        .flat_map(|i| {
            let s = ((i as f64 * std::f64::consts::TAU * 1000.0 / 44_100.0).sin() * 8000.0) as i16;
            [s, s]
        })
        .collect();
    let out = decode_wav(Cursor::new(wav_bytes(spec, &tone)), "stereo").unwrap();
    assert!(
        (out.len() as i64 - 48_000).abs() <= 1,
        "{} samples",
        out.len()
    );
    let peak = out[1000..47_000]
        .iter()
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap();
    assert!((7_600..=8_400).contains(&peak), "peak {peak}");
}

#[test]
fn a_looped_source_wraps_without_a_gap() {
    let mut source = WavSource::from_samples((0..1000).map(|i| i as i16).collect(), true);
    let all = collect_samples(&mut Take(&mut source, 3)).unwrap();
    assert_eq!(all.len(), 2880);
    assert_eq!(all[999], 999);
    assert_eq!(all[1000], 0, "wrapped straight back to the start");
    assert_eq!(all[2000], 0);
}

/// Takes `n` frames from a source.
struct Take<'a>(&'a mut dyn AudioSource, usize);
impl AudioSource for Take<'_> {
    fn next_frame(
        &mut self,
    ) -> Result<Option<parley_media::audio::AudioFrame>, parley_media::Error> {
        if self.1 == 0 {
            return Ok(None);
        }
        self.1 -= 1;
        self.0.next_frame()
    }
}

#[test]
fn every_truncation_is_a_clear_error() {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let samples: Vec<i16> = (0..500).map(|i| i as i16).collect();
    let bytes = wav_bytes(spec, &samples);
    let mut errors = 0;
    for cut in 0..bytes.len() {
        match decode_wav(Cursor::new(&bytes[..cut]), "cut") {
            Err(e) => {
                errors += 1;
                assert!(e.to_string().contains("cut"), "error names the file: {e}");
            }
            Ok(out) => panic!(
                "truncated at {cut} of {} bytes decoded to {} samples",
                bytes.len(),
                out.len()
            ),
        }
    }
    assert_eq!(errors, bytes.len());
}

#[test]
fn garbage_and_unsupported_formats_are_clear_errors() {
    let garbage = decode_wav(
        Cursor::new(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk".to_vec()),
        "garbage",
    );
    assert!(
        matches!(garbage, Err(WavError::Format { .. })),
        "{garbage:?}"
    );
    let text = decode_wav(Cursor::new(b"hello, I am not a wav file".to_vec()), "text");
    assert!(matches!(text, Err(WavError::Format { .. })));

    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 1_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let slow = decode_wav(Cursor::new(wav_bytes(spec, &[0; 100])), "slow");
    assert!(
        matches!(slow, Err(WavError::Unsupported { .. })),
        "{slow:?}"
    );

    let missing = read_wav("/nonexistent/parley.wav");
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/parley.wav")
    );
}
