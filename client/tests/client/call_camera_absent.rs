//! `--video-in` with a camera on a machine without one (like CI's) is a
//! clear error before any call is placed, never a panic or a hang.

use std::time::{Duration, Instant};

use parley_client::call::devices::{VideoInput, open_video_input};

#[test]
fn a_missing_camera_is_a_clear_error() {
    for name in ["default", "7", "Imaginary Cam"] {
        let started = Instant::now();
        let input: VideoInput = name.parse().unwrap();
        assert_eq!(input, VideoInput::Device(name.to_string()));
        let err = open_video_input(&input)
            .err()
            .expect("no camera on this machine");
        let text = err.to_string();
        assert!(text.contains("camera"), "{name}: {text}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} took too long"
        );
    }
}
