//! SFrame media encryption with real Opus and H.264 frames: both round-trip
//! and decode; H.264 NAL types, parameter sets and the start of each slice
//! header stay readable (and authenticated); the wrong secret, the other
//! direction's key, a flipped bit or garbage all fail with an error; a
//! rekey mid-stream keeps frames in flight decryptable.

use std::time::Duration;

use parley_client::call::e2ee::{
    CLEAR_SLICE_BYTES, Direction, E2eeError, FrameDecryptor, FrameEncryptor, MasterSecret,
};
use parley_media::audio::AudioSource;
use parley_media::h264::{H264Config, H264Decoder, H264Encoder, nal_units};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use parley_media::speech::SpeechSource;
use parley_media::test_pattern::{TestPatternSource, read_frame_number};
use parley_media::video::FrameRate;

const CALL: &str = "call-1";

fn opus_packets(n: usize) -> Vec<Vec<u8>> {
    let mut source = SpeechSource::new(true).unwrap();
    let mut encoder = OpusEncoder::new(OpusConfig::default()).unwrap();
    (0..n)
        .map(|_| {
            let frame = source.next_frame().unwrap().unwrap();
            encoder.encode(&frame).unwrap()
        })
        .collect()
}

fn h264_frames(n: u64) -> Vec<Vec<u8>> {
    let pattern = TestPatternSource::new(640, 480, FrameRate::fps(30)).unwrap();
    let mut encoder = H264Encoder::new(H264Config::vga()).unwrap();
    (0..n)
        .filter_map(|i| {
            encoder
                .encode(&pattern.frame(i), Duration::from_millis(i * 33))
                .unwrap()
                .map(|e| e.data)
        })
        .collect()
}

fn nal_types(annex_b: &[u8]) -> Vec<u8> {
    nal_units(annex_b).map(|nal| nal[0] & 0x1f).collect()
}

#[test]
fn opus_frames_round_trip_and_other_keys_fail() {
    let secret = MasterSecret::random();
    let mut tx = FrameEncryptor::new(&secret, CALL, Direction::CallerToCallee).unwrap();
    let mut rx = FrameDecryptor::new(&secret, CALL, Direction::CallerToCallee).unwrap();
    let mut wrong_secret =
        FrameDecryptor::new(&MasterSecret::random(), CALL, Direction::CallerToCallee).unwrap();
    let mut wrong_call = FrameDecryptor::new(&secret, "call-2", Direction::CallerToCallee).unwrap();
    let mut wrong_direction =
        FrameDecryptor::new(&secret, CALL, Direction::CalleeToCaller).unwrap();

    for packet in opus_packets(50) {
        let sealed = tx.encrypt_audio(&packet).unwrap();
        assert!(
            sealed.len() <= packet.len() + 20,
            "overhead {}",
            sealed.len() - packet.len()
        );
        assert!(
            !sealed
                .windows(packet.len().min(8))
                .any(|w| w == &packet[..w.len()])
        );
        assert_eq!(rx.decrypt_audio(&sealed).unwrap(), packet);
        assert!(matches!(
            wrong_secret.decrypt_audio(&sealed),
            Err(E2eeError::Sframe(_))
        ));
        assert!(wrong_call.decrypt_audio(&sealed).is_err());
        assert!(matches!(
            wrong_direction.decrypt_audio(&sealed),
            Err(E2eeError::UnexpectedKeyId(0))
        ));
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(rx.decrypt_audio(&flipped).is_err());
    }
    for garbage in [&[][..], &[0u8][..], &[0xff; 3][..], &[0x10, 1, 2, 3][..]] {
        assert!(rx.decrypt_audio(garbage).is_err());
    }
}

#[test]
fn h264_keeps_nal_headers_in_clear_and_still_decodes() {
    let secret = MasterSecret::random();
    let mut tx = FrameEncryptor::new(&secret, CALL, Direction::CalleeToCaller).unwrap();
    let mut rx = FrameDecryptor::new(&secret, CALL, Direction::CalleeToCaller).unwrap();
    let mut decoder = H264Decoder::new().unwrap();
    let frames = h264_frames(60);
    assert!(frames.len() > 40);
    let mut decoded = 0;
    for (i, frame) in frames.iter().enumerate() {
        let sealed = tx.encrypt_h264(frame).unwrap();
        // Same NAL units, same types: nothing in the ciphertext looks like
        // a start code.
        assert_eq!(nal_types(&sealed), nal_types(frame), "frame {i}");
        // What a browser's RTP receiver parses stays as it was: parameter
        // sets whole, and the start of each slice header.
        for (clear, sent) in nal_units(frame).zip(nal_units(&sealed)) {
            match clear[0] & 0x1f {
                7 | 8 => assert_eq!(sent, clear, "frame {i}"),
                1 | 5 => {
                    let n = 1 + CLEAR_SLICE_BYTES;
                    assert_eq!(sent[..n], clear[..n], "frame {i}");
                    assert_ne!(sent[n..], clear[n..], "frame {i}");
                }
                _ => {}
            }
        }
        let plain = rx.decrypt_h264(&sealed).unwrap();
        assert_eq!(plain, *frame, "frame {i}");
        // The clear slice bytes are authenticated: changing one fails.
        let slice = sealed
            .windows(4)
            .position(|w| w[..3] == [0, 0, 1] && matches!(w[3] & 0x1f, 1 | 5))
            .expect("a slice");
        let mut changed = sealed.clone();
        changed[slice + 5] ^= 0x01;
        assert!(rx.decrypt_h264(&changed).is_err(), "frame {i}");
        if let Some(picture) = decoder.decode(&plain).unwrap() {
            assert!(read_frame_number(&picture).is_some());
            decoded += 1;
        }
        let mut flipped = sealed.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        assert!(rx.decrypt_h264(&flipped).is_err(), "frame {i}");
    }
    assert!(decoded >= frames.len() - 1, "{decoded} of {}", frames.len());
    assert!(matches!(
        rx.decrypt_h264(&[1, 2, 3]),
        Err(E2eeError::MalformedH264(_))
    ));
    assert!(rx.decrypt_h264(&[0, 0, 1, 0x65, 9, 9, 9]).is_err());
}

#[test]
fn a_rekey_mid_stream_keeps_frames_in_flight_decryptable() {
    let secret = MasterSecret::random();
    let mut tx = FrameEncryptor::new(&secret, CALL, Direction::CallerToCallee).unwrap();
    let mut rx = FrameDecryptor::new(&secret, CALL, Direction::CallerToCallee).unwrap();
    let packets = opus_packets(6);
    let old = tx.encrypt_audio(&packets[0]).unwrap();
    tx.rekey().unwrap();
    assert_eq!(tx.generation(), 1);
    let new = tx.encrypt_audio(&packets[1]).unwrap();
    // The new generation arrives first, then a frame from before the rekey.
    assert_eq!(rx.decrypt_audio(&new).unwrap(), packets[1]);
    assert_eq!(rx.decrypt_audio(&old).unwrap(), packets[0]);
    // Two more rekeys: generation 0 is now too old to accept.
    tx.rekey().unwrap();
    tx.rekey().unwrap();
    let newest = tx.encrypt_audio(&packets[2]).unwrap();
    assert_eq!(rx.decrypt_audio(&newest).unwrap(), packets[2]);
    assert!(matches!(
        rx.decrypt_audio(&old),
        Err(E2eeError::UnexpectedKeyId(0))
    ));
}
