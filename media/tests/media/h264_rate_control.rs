//! The H.264 encoder follows a new bitrate from the next picture, codes
//! every picture while the target is one OpenH264 can hold at full frame
//! rate, and skips pictures (lower frame rate, not overshoot) only below
//! `FRAME_SKIP_BELOW_BPS`.

use std::time::Duration;

use parley_media::h264::{FRAME_SKIP_BELOW_BPS, H264Config, H264Encoder};
use parley_media::test_pattern::TestPatternSource;
use parley_media::video::FrameRate;

/// Encodes 10 s of test pattern, switching from `start` to `then` bits per
/// second half-way; returns (kbit/s, skipped pictures) per half.
fn run(start: u32, then: u32) -> [(f64, u32); 2] {
    let pattern = TestPatternSource::new(640, 480, FrameRate::fps(30)).unwrap();
    let mut encoder = H264Encoder::new(H264Config {
        bitrate_bps: start,
        ..H264Config::vga()
    })
    .unwrap();
    let mut halves = [(0usize, 0u32); 2];
    for n in 0..300u64 {
        if n == 150 {
            encoder.set_bitrate(then);
        }
        let half = &mut halves[usize::from(n >= 150)];
        match encoder
            .encode(&pattern.frame(n), Duration::from_millis(n * 1000 / 30))
            .unwrap()
        {
            Some(encoded) => half.0 += encoded.data.len(),
            None => half.1 += 1,
        }
    }
    halves.map(|(bytes, skipped)| (bytes as f64 * 8.0 / 5.0 / 1000.0, skipped))
}

#[test]
fn every_picture_is_coded_above_the_skip_threshold() {
    let [first, second] = run(800_000, 400_000);
    const { assert!(400_000 >= FRAME_SKIP_BELOW_BPS) };
    assert_eq!((first.1, second.1), (0, 0), "{first:?} {second:?}");
    // Within 25 % of the new target after the change.
    assert!(second.0 < 500.0 && second.0 > 250.0, "{second:?}");
}

#[test]
fn a_thin_link_gets_fewer_pictures_not_more_bits() {
    let [first, second] = run(800_000, 150_000);
    assert_eq!(first.1, 0, "{first:?}");
    assert!(second.1 > 30, "{second:?}");
    assert!(second.0 < 150.0 * 1.25, "{second:?}");
    // And back up: coding every picture again.
    let [low, high] = run(150_000, 800_000);
    assert!(low.1 > 30, "{low:?}");
    assert_eq!(high.1, 0, "{high:?}");
}
