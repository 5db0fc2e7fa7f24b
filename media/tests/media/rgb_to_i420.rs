//! A camera's RGB pictures become I420 for the encoder: grey stays grey
//! (neutral chroma), red pushes V up and U down, and sizes I420 cannot
//! hold are clear errors.

use parley_media::h264::i420_from_rgb;
use parley_media::video::FrameError;

fn solid(r: u8, g: u8, b: u8, w: usize, h: usize) -> Vec<u8> {
    [r, g, b].repeat(w * h)
}

fn mean(plane: &[u8]) -> f64 {
    plane.iter().map(|&v| f64::from(v)).sum::<f64>() / plane.len() as f64
}

#[test]
fn grey_and_red_convert_as_bt601_says() {
    let grey = i420_from_rgb(&solid(128, 128, 128, 64, 48), 64, 48).unwrap();
    assert_eq!((grey.width(), grey.height()), (64, 48));
    assert!((mean(grey.u()) - 128.0).abs() < 3.0, "U {}", mean(grey.u()));
    assert!((mean(grey.v()) - 128.0).abs() < 3.0, "V {}", mean(grey.v()));
    let red = i420_from_rgb(&solid(255, 0, 0, 64, 48), 64, 48).unwrap();
    assert!(mean(red.v()) > 200.0, "V {}", mean(red.v()));
    assert!(mean(red.u()) < 110.0, "U {}", mean(red.u()));
    assert!(
        mean(red.y()) < mean(grey.y()),
        "red is darker than mid grey"
    );
}

#[test]
fn odd_sizes_and_short_buffers_are_errors() {
    assert!(matches!(
        i420_from_rgb(&solid(0, 0, 0, 3, 2), 3, 2),
        Err(FrameError::OddDimensions { .. })
    ));
    assert!(matches!(
        i420_from_rgb(&[0; 10], 4, 4),
        Err(FrameError::PlaneSize { .. })
    ));
}
