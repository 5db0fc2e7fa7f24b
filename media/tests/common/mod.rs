//! Helpers shared by the media integration tests.
#![allow(dead_code)]

use parley_media::speech;

/// The speech clip repeated to at least `seconds` long (48 kHz mono).
pub fn speech_for(seconds: f64) -> Vec<i16> {
    let clip = speech::speech_clip().expect("built-in clip decodes");
    let wanted = (seconds * 48_000.0) as usize;
    clip.iter().copied().cycle().take(wanted).collect()
}

/// Index of the first frame at or after `from` whose 20 ms of `pcm` is
/// loud (active speech), so that loss tests lose something audible.
pub fn loud_frame(pcm: &[i16], from: usize) -> usize {
    (from..pcm.len() / 960)
        .find(|&i| {
            let f = &pcm[i * 960..(i + 1) * 960];
            let rms = (f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 960.0).sqrt();
            rms > 2000.0
        })
        .expect("clip has loud frames")
}
