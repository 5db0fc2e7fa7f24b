//! The bandwidth limit: throughput never exceeds the link rate, the queue
//! is bounded, and what does not fit is dropped at the tail.

use std::time::{Duration, Instant};

use parley_media::netsim::{NetworkConfig, NetworkSimulator};

#[test]
fn throughput_is_capped_and_overflow_is_tail_dropped() {
    let rate_bps = 1_000_000u64;
    let config = NetworkConfig {
        bandwidth_bps: Some(rate_bps),
        queue_bytes: 25_000, // 200 ms at 1 Mbit/s
        ..NetworkConfig::default()
    };
    let mut link = NetworkSimulator::new(config, 3);
    let start = Instant::now();
    // Offer 2 Mbit/s for 5 s: 1000-byte packets every 4 ms.
    let mut received = Vec::new();
    for i in 0..1250u32 {
        let now = start + Duration::from_millis(4 * u64::from(i));
        let mut packet = vec![0u8; 1000];
        packet[..4].copy_from_slice(&i.to_be_bytes());
        link.handle_send(now, packet);
        while let Some(p) = link.poll_receive(now) {
            received.push((now, p));
        }
    }
    while let Some(t) = link.poll_timeout() {
        while let Some(p) = link.poll_receive(t) {
            received.push((t, p));
        }
    }
    let stats = link.stats();
    // Half the offered load fits; the queue absorbs 25 packets more.
    let delivered_bits = received.len() as u64 * 8000;
    let elapsed = received.last().unwrap().0 - start;
    let throughput = delivered_bits as f64 / elapsed.as_secs_f64();
    assert!(
        throughput <= rate_bps as f64 * 1.01,
        "throughput {throughput}"
    );
    assert!(
        throughput >= rate_bps as f64 * 0.95,
        "throughput {throughput}"
    );
    assert!(stats.queue_dropped > 550, "dropped {}", stats.queue_dropped);
    assert_eq!(stats.queue_dropped + received.len() as u64, 1250);
    // Queueing delay never exceeds queue size / rate (200 ms) plus one
    // packet's serialization (8 ms).
    for (at, p) in &received {
        let i = u32::from_be_bytes(p[..4].try_into().unwrap());
        let sent = start + Duration::from_millis(4 * u64::from(i));
        assert!(
            *at - sent <= Duration::from_millis(208),
            "delay {:?}",
            *at - sent
        );
    }
}

#[test]
fn under_the_limit_nothing_is_dropped_and_delay_is_serialization_only() {
    let config = NetworkConfig {
        bandwidth_bps: Some(1_000_000),
        ..NetworkConfig::default()
    };
    let mut link = NetworkSimulator::new(config, 3);
    let start = Instant::now();
    for i in 0..100u64 {
        let now = start + Duration::from_millis(20 * i);
        link.handle_send(now, vec![0u8; 125]); // 1 ms on the wire
        let due = link.poll_timeout().unwrap();
        assert_eq!(due - now, Duration::from_millis(1));
        assert!(link.poll_receive(due).is_some());
    }
    assert_eq!(link.stats().queue_dropped, 0);
}
