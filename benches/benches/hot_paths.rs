//! Criterion micro-benches of what every call does per frame:
//!
//! - SFrame: encrypt and decrypt an Opus frame, and an H.264 keyframe and
//!   P-frame (NAL-aware: headers in clear, emulation prevention);
//! - the audio jitter buffer: insert a packet; insert one and pull one
//!   frame (the pull includes the Opus decode, its real cost);
//! - H.264 packetization (str0m's RTP packetizer, 1200-byte MTU) of the
//!   same keyframe and P-frame.
//!
//! `cargo bench -p parley-bench --bench hot_paths`. Inputs are real: the
//! speech clip through Opus, the test pattern through OpenH264.
//!
//! The SFU forward path joins these when the SFU exists.
// Benchmarks time real work on the wall clock and pick the origin of virtual time.
#![allow(clippy::disallowed_methods)]
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use parley_client::call::e2ee::{Direction, FrameDecryptor, FrameEncryptor, MasterSecret};
use parley_media::audio::{AudioSource, FRAME_SAMPLES};
use parley_media::h264::{H264Config, H264Encoder};
use parley_media::jitter_buffer::{JitterBuffer, JitterBufferConfig};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use parley_media::rtp::RtpPacket;
use parley_media::speech::SpeechSource;
use parley_media::test_pattern::TestPatternSource;
use parley_media::video::{FrameRate, VideoSource};
use str0m::unversioned::{H264Packetizer, Packetizer};

/// 50 Opus packets of speech at the call bitrate.
fn opus_packets() -> Vec<Vec<u8>> {
    let mut speech = SpeechSource::new(true).unwrap();
    let mut opus = OpusEncoder::new(OpusConfig {
        bitrate_bps: 48_000,
        ..OpusConfig::default()
    })
    .unwrap();
    (0..50)
        .map(|_| opus.encode(&speech.next_frame().unwrap().unwrap()).unwrap())
        .collect()
}

/// A VGA keyframe and the P-frame after it, Annex B.
fn h264_frames() -> (Vec<u8>, Vec<u8>) {
    let mut pattern = TestPatternSource::new(640, 480, FrameRate::fps(30)).unwrap();
    let mut encoder = H264Encoder::new(H264Config::vga()).unwrap();
    let mut frames = Vec::new();
    let mut pts = Duration::ZERO;
    while frames.len() < 2 {
        let picture = pattern.next_frame().unwrap().unwrap();
        if let Some(encoded) = encoder.encode(&picture, pts).unwrap() {
            frames.push(encoded.data);
        }
        pts += Duration::from_millis(33);
    }
    (frames.remove(0), frames.remove(0))
}

fn sframe(c: &mut Criterion) {
    let secret = MasterSecret([7; 32]);
    let mut encryptor = FrameEncryptor::new(&secret, "bench", Direction::CallerToCallee).unwrap();
    let mut decryptor = FrameDecryptor::new(&secret, "bench", Direction::CallerToCallee).unwrap();
    // The largest packet: speech, not a pause.
    let audio = opus_packets()
        .into_iter()
        .max_by_key(Vec::len)
        .expect("packets");
    let (key, delta) = h264_frames();
    let mut group = c.benchmark_group("sframe");
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("encrypt opus {} B", audio.len()), |b| {
        b.iter(|| encryptor.encrypt_audio(&audio).unwrap())
    });
    let sealed = encryptor.encrypt_audio(&audio).unwrap();
    group.bench_function(format!("decrypt opus {} B", audio.len()), |b| {
        b.iter(|| decryptor.decrypt_audio(&sealed).unwrap())
    });
    for (name, frame) in [("keyframe", &key), ("p-frame", &delta)] {
        // Baseline: the same bytes sealed as one opaque SFrame frame, with
        // no NAL parsing or emulation prevention.
        group.bench_function(
            format!("baseline: encrypt opaque {name} {} B", frame.len()),
            |b| b.iter(|| encryptor.encrypt_audio(frame).unwrap()),
        );
        group.bench_function(format!("encrypt h264 {name} {} B", frame.len()), |b| {
            b.iter(|| encryptor.encrypt_h264(frame).unwrap())
        });
        let sealed = encryptor.encrypt_h264(frame).unwrap();
        group.bench_function(format!("decrypt h264 {name} {} B", frame.len()), |b| {
            b.iter(|| decryptor.decrypt_h264(&sealed).unwrap())
        });
    }
    group.finish();
}

fn jitter_buffer(c: &mut Criterion) {
    let packets = opus_packets();
    let packet = |i: u64| RtpPacket {
        payload_type: 111,
        sequence_number: i as u16,
        timestamp: (i * FRAME_SAMPLES as u64) as u32,
        ssrc: 1,
        marker: false,
        payload: packets[(i % packets.len() as u64) as usize].clone(),
    };
    let mut group = c.benchmark_group("jitter_buffer");
    group.throughput(Throughput::Elements(1));
    // Baseline: the Opus decode every played frame costs anyway.
    let mut decoder = parley_media::opus_codec::OpusDecoder::new().unwrap();
    let mut j = 0usize;
    group.bench_function("baseline: opus decode alone", |b| {
        b.iter(|| {
            j += 1;
            decoder.decode(&packets[j % packets.len()]).unwrap()
        })
    });
    // Steady state: a buffer that has been running; each iteration is
    // the next 20 ms of a call.
    let start = Instant::now();
    let mut buffer = JitterBuffer::new(JitterBufferConfig::default()).unwrap();
    let mut i = 0u64;
    group.bench_function("insert + pull (with Opus decode)", |b| {
        b.iter(|| {
            let now = start + Duration::from_millis(20 * i);
            buffer.handle_packet(now, packet(i));
            i += 1;
            buffer.poll_frame(now)
        })
    });
    group.bench_function("insert", |b| {
        b.iter_batched(
            || {
                (
                    JitterBuffer::new(JitterBufferConfig::default()).unwrap(),
                    packet(5),
                )
            },
            |(mut buffer, p)| buffer.handle_packet(start, p),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn h264_packetize(c: &mut Criterion) {
    let (key, delta) = h264_frames();
    let mut group = c.benchmark_group("h264_packetize");
    group.throughput(Throughput::Elements(1));
    for (name, frame) in [("keyframe", &key), ("p-frame", &delta)] {
        let mut packetizer = H264Packetizer::default();
        let packets = packetizer.packetize(1200, frame).unwrap().len();
        group.bench_function(
            format!("{name} {} B -> {packets} packets", frame.len()),
            |b| b.iter(|| packetizer.packetize(1200, frame).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, sframe, jitter_buffer, h264_packetize);
criterion_main!(benches);
