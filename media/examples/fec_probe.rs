//! Measures which Opus settings produce in-band FEC on the built-in speech
//! clip: the share of packets that carry LBRR data, and the bitrate, for
//! each bitrate and loss hint. libopus decides this itself (SILK or hybrid
//! mode only, loss hint above zero, enough bitrate), so it is measured, not
//! assumed.
//!
//! `cargo run --release -p parley-media --example fec_probe`
use parley_media::{audio, opus_codec::*, speech};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let clip = speech::speech_clip()?;
    for bitrate in [16_000, 24_000, 32_000, 48_000, 64_000] {
        for loss in [0u8, 5, 10, 20] {
            let mut enc = OpusEncoder::new(OpusConfig {
                bitrate_bps: bitrate,
                packet_loss_pct: loss,
                ..Default::default()
            })?;
            let (mut n, mut fec, mut bytes) = (0, 0, 0);
            for f in audio::frames_of(&clip) {
                let p = enc.encode(&f)?;
                n += 1;
                bytes += p.len();
                if packet_has_fec(&p) {
                    fec += 1;
                }
            }
            println!(
                "{bitrate:>6} bps loss {loss:>2}%: {:>5.1}% packets with FEC, {:.1} kbit/s",
                100.0 * fec as f64 / n as f64,
                bytes as f64 * 8.0 / (n as f64 * 20.0)
            );
        }
    }
    Ok(())
}
