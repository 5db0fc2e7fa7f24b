//! The jitter buffer survives what networks and attackers send: reordered,
//! duplicated and very late packets, garbage payloads, and a sequence
//! jump; each is counted and nothing panics or stalls.

use std::time::{Duration, Instant};

use parley_media::audio::AudioFrame;
use parley_media::audio::AudioSource;
use parley_media::jitter_buffer::{JitterBuffer, JitterBufferConfig, PlayoutKind};
use parley_media::opus_codec::{OpusConfig, OpusEncoder};
use parley_media::rtp::{AudioPacketizer, RtpPacket};
use parley_media::tone::ToneSource;

const TICK: Duration = Duration::from_millis(20);

fn tone_packets(n: usize) -> Vec<RtpPacket> {
    let mut encoder = OpusEncoder::new(OpusConfig::default()).unwrap();
    let mut tone = ToneSource::default();
    let mut packetizer = AudioPacketizer::new(1, 111, 65_530, 0);
    (0..n)
        .map(|_| {
            let frame: AudioFrame = tone.next_frame().unwrap().unwrap();
            packetizer.packetize(encoder.encode(&frame).unwrap())
        })
        .collect()
}

#[test]
fn reordering_within_the_target_costs_nothing_and_duplicates_play_once() {
    let packets = tone_packets(200);
    let mut jb = JitterBuffer::new(JitterBufferConfig::default()).unwrap();
    let start = Instant::now();
    let mut kinds = Vec::new();
    for i in 0..packets.len() {
        let now = start + TICK * i as u32;
        // Swap every 10th pair (one arrives 20 ms late, the other early),
        // and send every 7th packet twice. Sequence numbers wrap at 6.
        let j = if i % 10 == 3 {
            i + 1
        } else if i % 10 == 4 {
            i - 1
        } else {
            i
        };
        jb.handle_packet(now, packets[j].clone());
        if i % 7 == 0 {
            jb.handle_packet(now, packets[j].clone());
        }
        kinds.push(jb.poll_frame(now + Duration::from_millis(5)).kind);
    }
    let stats = jb.stats();
    assert_eq!(stats.duplicates, 29);
    assert_eq!(stats.dropped_late, 0, "{stats:?}");
    // Reordering shows up as jitter, so the buffer may grow once; after
    // that nothing is lost or concealed.
    assert_eq!(stats.concealed, 0, "{stats:?}");
    assert!(stats.played >= 190, "{stats:?}");
    assert!(!kinds.contains(&PlayoutKind::FecRecovered));
}

#[test]
fn a_very_late_packet_is_dropped_and_counted() {
    let packets = tone_packets(100);
    let mut jb = JitterBuffer::new(JitterBufferConfig::default()).unwrap();
    let start = Instant::now();
    for i in 0..100usize {
        let now = start + TICK * i as u32;
        if i != 40 {
            jb.handle_packet(now, packets[i].clone());
        }
        if i == 60 {
            jb.handle_packet(now, packets[40].clone()); // 400 ms late
        }
        jb.poll_frame(now + Duration::from_millis(5));
    }
    let stats = jb.stats();
    assert_eq!(stats.dropped_late, 1, "{stats:?}");
    assert_eq!(stats.concealed + stats.fec_recovered, 1, "{stats:?}");
}

#[test]
fn garbage_payloads_are_concealed_not_fatal() {
    let mut packets = tone_packets(100);
    for (i, p) in packets.iter_mut().enumerate() {
        if i % 9 == 5 {
            // An invalid Opus packet: code 3 with a zero frame count.
            p.payload = vec![0xff, 0x00, 0xde, 0xad];
        }
        if i % 13 == 6 {
            p.payload.clear();
        }
    }
    let mut jb = JitterBuffer::new(JitterBufferConfig::default()).unwrap();
    let start = Instant::now();
    for (i, p) in packets.into_iter().enumerate() {
        let now = start + TICK * i as u32;
        jb.handle_packet(now, p);
        jb.poll_frame(now + Duration::from_millis(5));
    }
    let stats = jb.stats();
    assert!(stats.decode_errors >= 10, "{stats:?}");
    assert!(stats.played >= 70, "{stats:?}");
}

#[test]
fn a_jump_far_ahead_resyncs_instead_of_concealing_for_ever() {
    let packets = tone_packets(400);
    let mut jb = JitterBuffer::new(JitterBufferConfig::default()).unwrap();
    let start = Instant::now();
    let mut pulls = 0;
    // 100 packets, then the sender skips 200 packets' worth (4 s) of
    // sequence and time, as after a long mute without DTX.
    for (n, i) in (0..100).chain(300..400).enumerate() {
        let now = start + TICK * n as u32;
        jb.handle_packet(now, packets[i].clone());
        jb.poll_frame(now + Duration::from_millis(5));
        pulls += 1;
    }
    let stats = jb.stats();
    assert_eq!(stats.resyncs, 1, "{stats:?}");
    assert!(stats.played >= (pulls - 10) as u64, "{stats:?}");
    assert!(stats.concealed < 5, "{stats:?}");
    assert!(stats.target_delay < Duration::from_millis(100), "{stats:?}");
}

#[test]
fn silence_before_the_first_packet_is_buffering() {
    let mut jb = JitterBuffer::new(JitterBufferConfig::default()).unwrap();
    let start = Instant::now();
    for i in 0..10u32 {
        let p = jb.poll_frame(start + TICK * i);
        assert_eq!(p.kind, PlayoutKind::Buffering);
        assert_eq!(p.frame, AudioFrame::silence());
    }
    assert_eq!(jb.stats().media_frames(), 0);
}

#[test]
fn a_new_ssrc_starts_a_new_stream() {
    let first = tone_packets(100);
    let mut second = tone_packets(100);
    for p in &mut second {
        p.ssrc = 2;
        p.sequence_number = p.sequence_number.wrapping_add(30_000);
        p.timestamp = p.timestamp.wrapping_add(1_000_000_000);
    }
    let mut jb = JitterBuffer::new(JitterBufferConfig::default()).unwrap();
    let start = Instant::now();
    for (n, p) in first.into_iter().chain(second).enumerate() {
        let now = start + TICK * n as u32;
        jb.handle_packet(now, p);
        jb.poll_frame(now + Duration::from_millis(5));
    }
    let stats = jb.stats();
    assert_eq!(stats.resyncs, 1, "{stats:?}");
    assert_eq!(stats.dropped_late, 0, "{stats:?}");
    assert!(stats.played >= 190, "{stats:?}");
    assert!(stats.target_delay < Duration::from_millis(100), "{stats:?}");
}
