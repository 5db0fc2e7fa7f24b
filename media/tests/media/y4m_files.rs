//! Y4M files: what is written reads back; truncated or malformed files
//! are clear errors, never panics or silent short reads.

use std::io::Cursor;

use parley_media::test_pattern::TestPatternSource;
use parley_media::video::{FrameRate, VideoSource};
use parley_media::y4m_file::{Y4mError, Y4mHeader, Y4mSink, Y4mSource};

fn two_frames() -> Vec<u8> {
    let mut pattern = TestPatternSource::new(320, 240, FrameRate::fps(30)).unwrap();
    let header = Y4mHeader {
        width: 320,
        height: 240,
        frame_rate: FrameRate {
            num: 30000,
            den: 1001,
        },
    };
    let mut sink = Y4mSink::from_writer(Vec::new(), header, "mem").unwrap();
    for _ in 0..2 {
        sink.write(&pattern.next_frame().unwrap().unwrap()).unwrap();
    }
    sink.into_inner()
}

fn read_all(bytes: &[u8]) -> Result<usize, Y4mError> {
    let mut source = Y4mSource::from_reader(Cursor::new(bytes), "test.y4m")?;
    let mut n = 0;
    while source.read_frame()?.is_some() {
        n += 1;
    }
    Ok(n)
}

#[test]
fn written_frames_read_back_exactly() {
    let bytes = two_frames();
    let mut source = Y4mSource::from_reader(Cursor::new(&bytes), "mem").unwrap();
    assert_eq!(
        source.header().frame_rate,
        FrameRate {
            num: 30000,
            den: 1001
        }
    );
    let pattern = TestPatternSource::new(320, 240, FrameRate::fps(30)).unwrap();
    assert_eq!(source.read_frame().unwrap().unwrap(), pattern.frame(0));
    assert_eq!(source.read_frame().unwrap().unwrap(), pattern.frame(1));
    assert!(source.read_frame().unwrap().is_none());

    let path = std::env::temp_dir().join(format!("parley-{}.y4m", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        Y4mSource::open(&path)
            .unwrap()
            .next_frame()
            .unwrap()
            .unwrap(),
        pattern.frame(0)
    );
}

#[test]
fn every_truncation_is_a_clear_error() {
    let bytes = two_frames();
    let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    let frame_len = (bytes.len() - header_len) / 2;
    for cut in 0..bytes.len() {
        let result = read_all(&bytes[..cut]);
        let at_frame_boundary = cut >= header_len && (cut - header_len) % frame_len == 0;
        match result {
            Ok(n) => assert!(
                at_frame_boundary,
                "cut at {cut} read {n} frames without error"
            ),
            Err(e) => {
                assert!(
                    !at_frame_boundary,
                    "cut at a frame boundary ({cut}) is a valid file: {e}"
                );
                assert!(e.to_string().contains("test.y4m"), "{e}");
            }
        }
    }
    let cut_mid_frame = read_all(&bytes[..header_len + 1000]).unwrap_err();
    assert!(
        matches!(cut_mid_frame, Y4mError::Truncated { index: 0, .. }),
        "{cut_mid_frame}"
    );
}

#[test]
fn malformed_headers_are_refused() {
    for (header, want) in [
        (&b"YUV4MPEG2 W320 H240 F30:1\n"[..], None),
        (b"YUV4MPEG3 W320 H240\n", Some("bad header")),
        (b"YUV4MPEG2 H240\n", Some("no width")),
        (
            b"YUV4MPEG2 W99999999999 H99999999999\n",
            Some("unsupported"),
        ),
        (b"YUV4MPEG2 W-4 H240\n", Some("bad dimension")),
        (b"YUV4MPEG2 W321 H240\n", Some("odd dimension")),
        (b"YUV4MPEG2 W320 H240 C444\n", Some("colorspace 444")),
        (b"YUV4MPEG2 W320 H240 C420p10\n", Some("colorspace")),
        (b"YUV4MPEG2 W320 H240 F30:0\n", Some("frame rate")),
        (b"YUV4MPEG2 W320 H240 It\n", Some("interlacing")),
        (b"\xff\xfe\x00garbage\n", Some("bad header")),
        (b"", Some("empty")),
    ] {
        match (Y4mSource::from_reader(Cursor::new(header), "h.y4m"), want) {
            (Ok(_), None) => {}
            (Err(e), Some(text)) => assert!(e.to_string().contains(text), "{e} lacks {text:?}"),
            (Ok(_), Some(text)) => panic!(
                "{:?} accepted, wanted {text}",
                String::from_utf8_lossy(header)
            ),
            (Err(e), None) => panic!("{:?} refused: {e}", String::from_utf8_lossy(header)),
        }
    }
    // A header line with no end is refused after a bounded read.
    let endless = vec![b'A'; 100_000];
    assert!(Y4mSource::from_reader(Cursor::new(endless), "endless").is_err());
}

#[test]
fn a_frame_without_its_marker_is_refused() {
    let mut bytes = two_frames();
    let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes[header_len..header_len + 5].copy_from_slice(b"FRAMX");
    assert!(matches!(
        read_all(&bytes),
        Err(Y4mError::BadFrame { index: 0, .. })
    ));
}
