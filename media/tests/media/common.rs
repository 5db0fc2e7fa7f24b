//! Helpers shared by the media integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use parley_media::audio::frames_of;
use parley_media::netsim::{LossModel, NetworkConfig, NetworkSimulator};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
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

/// Sends `n` numbered packets 1 ms apart through a link with `loss` and
/// returns which of them arrived.
pub fn arrivals(loss: LossModel, seed: u64, n: u32) -> Vec<bool> {
    let config = NetworkConfig {
        loss,
        ..NetworkConfig::default()
    };
    let mut link = NetworkSimulator::new(config, seed);
    let start = Instant::now();
    let mut arrived = vec![false; n as usize];
    for i in 0..n {
        let now = start + Duration::from_millis(u64::from(i));
        link.handle_send(now, i.to_be_bytes().to_vec());
        while let Some(p) = link.poll_receive(now) {
            arrived[u32::from_be_bytes(p.try_into().unwrap()) as usize] = true;
        }
    }
    arrived
}

/// `seconds` of speech encoded with the default Opus settings, one packet
/// per 20 ms frame.
pub fn encoded_speech(seconds: f64) -> (Vec<i16>, Vec<Vec<u8>>) {
    let speech = speech_for(seconds);
    let mut encoder = OpusEncoder::new(OpusConfig::default()).unwrap();
    let payloads = frames_of(&speech)
        .map(|f| encoder.encode(&f).unwrap())
        .collect();
    (speech, payloads)
}
