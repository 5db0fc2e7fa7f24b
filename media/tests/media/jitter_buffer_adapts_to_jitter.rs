//! The jitter buffer's target delay rises within 1 s of a jitter step from
//! 0 to 40 ms and falls back within 10 s after the jitter stops; the
//! playout delay follows the target.

use std::time::{Duration, Instant};

use parley_media::audio_simulation::{AudioSimulation, TracePoint};
use parley_media::netsim::NetworkConfig;

fn at(trace: &[TracePoint], secs: f64) -> TracePoint {
    let t = Duration::from_secs_f64(secs);
    *trace
        .iter()
        .find(|p| p.at >= t)
        .expect("trace covers the time")
}

#[test]
fn target_rises_within_1s_of_jitter_and_falls_back_within_10s() {
    let calm = NetworkConfig {
        delay: Duration::from_millis(20),
        ..NetworkConfig::default()
    };
    let jittery = NetworkConfig {
        jitter: Duration::from_millis(40),
        ..calm.clone()
    };
    let sim = AudioSimulation {
        network: calm.clone(),
        schedule: vec![
            (Duration::from_secs(10), jittery),
            (Duration::from_secs(20), calm),
        ],
        seed: 11,
        ..AudioSimulation::default()
    };
    let report = sim
        .run(&crate::common::speech_for(32.0), Instant::now())
        .unwrap();
    let trace = &report.trace;

    let before = at(trace, 9.9).target_delay;
    assert!(
        before <= Duration::from_millis(35),
        "calm target {before:?}"
    );

    // Within 1 s of the step the target covers most of the 40 ms jitter.
    let risen = at(trace, 11.0).target_delay;
    assert!(
        risen >= before + Duration::from_millis(30),
        "target 1 s after step: {risen:?}"
    );
    // And the playout delay has followed it.
    let playing = at(trace, 12.0).current_delay;
    assert!(
        playing >= risen,
        "current delay {playing:?} below target {risen:?}"
    );

    // Within 10 s of the jitter stopping the target is back where it was,
    // and playout has caught up with it.
    let fallen = at(trace, 30.0);
    assert!(
        fallen.target_delay <= before + Duration::from_millis(5),
        "target 10 s after the jitter stopped: {:?}",
        fallen.target_delay
    );
    assert!(
        fallen.current_delay <= fallen.target_delay + Duration::from_millis(40),
        "current delay {:?} did not come down",
        fallen.current_delay
    );

    // The adaptation kept late arrivals rare: under 3 % of packets.
    let stats = report.jitter_buffer;
    let late_pct = 100.0 * stats.dropped_late as f64 / stats.media_frames() as f64;
    assert!(late_pct < 3.0, "late {late_pct:.2} %, stats {stats:?}");
    assert!(
        stats.expanded > 0 && stats.accelerated > 0,
        "stats {stats:?}"
    );
}
