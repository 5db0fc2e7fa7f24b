//! Splitting an Annex B access unit into NAL units: three- and four-byte
//! start codes, trailing zero bytes, junk before the first start code, and
//! real OpenH264 output (SPS, PPS, IDR in a keyframe).

use std::time::Duration;

use parley_media::h264::{H264Config, H264Encoder, nal_units};
use parley_media::test_pattern::TestPatternSource;
use parley_media::video::{FrameRate, VideoSource};

#[test]
fn start_codes_of_both_lengths_and_trailing_zeros() {
    let stream = [
        9, 9, // junk before the first start code is not a unit
        0, 0, 0, 1, 0x67, 1, 2, // 4-byte start code
        0, 0, 1, 0x68, 3, 0, 0, // 3-byte start code, trailing zeros
        0, 0, 0, 1, 0x65, 0, 0, 3, 1, 4, // emulation prevention inside
    ];
    let units: Vec<&[u8]> = nal_units(&stream).collect();
    assert_eq!(
        units,
        vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 0, 0, 3, 1, 4]]
    );
    assert_eq!(nal_units(&[]).count(), 0);
    assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
    assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
}

#[test]
fn an_openh264_keyframe_is_parameter_sets_then_idr() {
    let mut pattern = TestPatternSource::new(640, 480, FrameRate::fps(30)).unwrap();
    let mut encoder = H264Encoder::new(H264Config::vga()).unwrap();
    let picture = pattern.next_frame().unwrap().unwrap();
    let key = encoder.encode(&picture, Duration::ZERO).unwrap().unwrap();
    let types: Vec<u8> = nal_units(&key.data).map(|n| n[0] & 0x1f).collect();
    assert_eq!(types.first(), Some(&7), "{types:?}");
    assert!(types.contains(&8) && types.contains(&5), "{types:?}");
    let total: usize = nal_units(&key.data).map(<[u8]>::len).sum();
    assert!(total + 3 * types.len() <= key.data.len());
}
