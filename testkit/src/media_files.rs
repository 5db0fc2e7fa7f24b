//! Media files for tests to feed programs.

use std::path::Path;

/// Writes `seconds` of the numbered test pattern at `width` x `height`,
/// 30 fps, numbered from `first`, as a Y4M file.
pub fn write_pattern(path: &Path, (width, height): (usize, usize), first: u64, seconds: u64) {
    use parley_media::test_pattern::TestPatternSource;
    use parley_media::video::{FrameRate, VideoSink};
    use parley_media::y4m_file::{Y4mHeader, Y4mSink};
    let header = Y4mHeader {
        width,
        height,
        frame_rate: FrameRate::fps(30),
    };
    let mut sink = Y4mSink::create(path, header).unwrap();
    let pattern = TestPatternSource::new(width, height, FrameRate::fps(30)).unwrap();
    for i in 0..seconds * 30 {
        sink.write_frame(&pattern.frame(first + i)).unwrap();
    }
}
