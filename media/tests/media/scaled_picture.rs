//! Scaling a picture to another size (a recording that keeps one size
//! across simulcast layer switches): the test pattern doubled and halved
//! again is the same picture, an exact factor copies pixels, and odd
//! target sizes are refused.

use parley_media::quality::psnr;
use parley_media::test_pattern::TestPatternSource;
use parley_media::video::{FrameError, FrameRate};

#[test]
fn up_and_down_again_is_the_same_picture() {
    let small = TestPatternSource::new(320, 240, FrameRate::fps(30))
        .unwrap()
        .frame(42);
    let big = small.scaled(640, 480).unwrap();
    assert_eq!((big.width(), big.height()), (640, 480));
    // Nearest neighbour at exactly 2x: every source pixel becomes a 2x2
    // block, so taking every other pixel gives the source back.
    let back = big.scaled(320, 240).unwrap();
    assert_eq!(back.y(), small.y());
    assert_eq!(back.u(), small.u());
    assert_eq!(back.v(), small.v());
    // The same size is a copy.
    let same = big.scaled(640, 480).unwrap();
    assert!(psnr(&big, &same).unwrap() > 90.0);
}

#[test]
fn odd_sizes_are_refused() {
    let frame = TestPatternSource::new(320, 240, FrameRate::fps(30))
        .unwrap()
        .frame(0);
    assert!(matches!(
        frame.scaled(321, 240),
        Err(FrameError::OddDimensions { .. })
    ));
    assert!(frame.scaled(0, 0).is_err());
}
