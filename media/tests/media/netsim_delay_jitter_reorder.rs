//! Delay, jitter, reordering and duplication: delays stay within the
//! configured bounds, jitter alone keeps order, and reordering and
//! duplication happen at the configured rates.

use std::time::{Duration, Instant};

use parley_media::netsim::{NetworkConfig, NetworkSimulator};

/// Sends `n` packets 20 ms apart and returns (index, delay) in delivery
/// order, stepping virtual time to each timeout.
fn deliveries(config: NetworkConfig, n: u32) -> Vec<(u32, Duration)> {
    let mut link = NetworkSimulator::new(config, 5);
    let start = Instant::now();
    let tick = Duration::from_millis(20);
    let mut out = Vec::new();
    let mut next_send = 0u32;
    loop {
        let send_at = start + tick * next_send;
        let now = match link.poll_timeout() {
            Some(t) if next_send >= n || t < send_at => t,
            _ if next_send < n => send_at,
            _ => break,
        };
        if next_send < n && now == send_at {
            link.handle_send(now, next_send.to_be_bytes().to_vec());
            next_send += 1;
        }
        while let Some(p) = link.poll_receive(now) {
            let i = u32::from_be_bytes(p.try_into().unwrap());
            out.push((i, now - (start + tick * i)));
        }
    }
    out
}

#[test]
fn fixed_delay_is_exact() {
    let config = NetworkConfig {
        delay: Duration::from_millis(50),
        ..NetworkConfig::default()
    };
    let d = deliveries(config, 1000);
    assert_eq!(d.len(), 1000);
    assert!(
        d.iter()
            .all(|&(_, delay)| delay == Duration::from_millis(50))
    );
}

#[test]
fn jitter_stays_in_bounds_and_keeps_order() {
    let config = NetworkConfig {
        delay: Duration::from_millis(30),
        jitter: Duration::from_millis(40),
        ..NetworkConfig::default()
    };
    let d = deliveries(config, 5000);
    assert_eq!(d.len(), 5000);
    let indices: Vec<u32> = d.iter().map(|&(i, _)| i).collect();
    assert!(indices.windows(2).all(|w| w[0] < w[1]), "order changed");
    let min = d.iter().map(|&(_, x)| x).min().unwrap();
    let max = d.iter().map(|&(_, x)| x).max().unwrap();
    assert!(min >= Duration::from_millis(30));
    // Order keeping can add at most one packet interval beyond the draw.
    assert!(max <= Duration::from_millis(90), "max delay {max:?}");
    // The draws spread over the whole jitter range.
    assert!(
        max - min >= Duration::from_millis(35),
        "spread {:?}",
        max - min
    );
}

#[test]
fn reordering_and_duplication_happen_at_configured_rates() {
    let config = NetworkConfig {
        delay: Duration::from_millis(10),
        reorder: 0.05,
        reorder_delay: Duration::from_millis(50),
        duplicate: 0.02,
        ..NetworkConfig::default()
    };
    let n = 20_000;
    let d = deliveries(config, n);
    let duplicates = d.len() as f64 - f64::from(n);
    assert!(
        (duplicates / f64::from(n) - 0.02).abs() < 0.005,
        "duplicates {duplicates}"
    );
    // A packet is out of order if a higher index was delivered before it.
    let mut highest = None;
    let mut late = 0;
    for &(i, _) in &d {
        if highest.is_some_and(|h| i < h) {
            late += 1;
        }
        highest = highest.max(Some(i));
    }
    let rate = f64::from(late) / f64::from(n);
    // Duplicates of a reordered packet count too, hence the wider band.
    assert!((rate - 0.05).abs() < 0.01, "reordered share {rate}");
}
