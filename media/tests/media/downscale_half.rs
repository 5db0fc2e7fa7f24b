//! Halving a picture for a simulcast layer keeps what it shows: the test
//! pattern halved is close to the pattern drawn at half size, and a flat
//! picture stays flat.

use parley_media::quality::psnr;
use parley_media::test_pattern::TestPatternSource;
use parley_media::video::{FrameRate, I420Frame};

#[test]
fn a_halved_picture_is_the_same_picture_smaller() {
    let big = TestPatternSource::new(640, 480, FrameRate::fps(30))
        .unwrap()
        .frame(7);
    let half = big.downscale_half().unwrap();
    assert_eq!((half.width(), half.height()), (320, 240));
    // The same scene drawn at 320x240 differs in detail (the pattern is
    // drawn per pixel), so compare against the big picture's own blocks:
    // upscale the half again and it must be close.
    let mut up = I420Frame::black(640, 480).unwrap();
    {
        let (y, _, _) = up.planes_mut();
        for row in 0..480 {
            for col in 0..640 {
                y[row * 640 + col] = half.y()[(row / 2) * 320 + col / 2];
            }
        }
    }
    let luma_only = |f: &I420Frame| {
        I420Frame::from_planes(
            640,
            480,
            f.y().to_vec(),
            vec![128; 320 * 240],
            vec![128; 320 * 240],
        )
        .unwrap()
    };
    let db = psnr(&luma_only(&big), &luma_only(&up)).unwrap();
    assert!(db > 25.0, "halved and back: {db:.1} dB");

    let flat = I420Frame::black(64, 32).unwrap().downscale_half().unwrap();
    assert!(flat.y().iter().all(|&p| p == 16));
    assert!(flat.u().iter().all(|&p| p == 128));
    assert!(I420Frame::black(2, 2).unwrap().downscale_half().is_none());
}
