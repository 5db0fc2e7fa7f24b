//! Simulcast: alice publishes two layers (640x480 `h`, 320x240 `l`); bob
//! receives through a 300 kbit/s bottleneck, carol without one. The SFU
//! picks each subscriber's layer from its bandwidth estimate: carol sees
//! 640x480, bob 320x240; when bob's limit lifts he moves up to 640x480.
//! Every switch happens at a keyframe: no decrypt failures, full-size
//! pictures in order. Dynacast: alice is told to send both layers while
//! both are watched, then only the high one. A subscriber that asks for
//! at most the low layer (a small tile) gets it whatever its bandwidth.

use std::time::Duration;

use parley_client::call::group_session::Publish;
use parley_media::netsim::NetworkConfig;
use parley_testkit::sfu_sim::{MemberOptions, RoomSim};

/// The last `n` pictures `member` decoded from alice are all `width` wide.
fn settled(sim: &RoomSim, member: &str, width: usize, n: usize) -> bool {
    let widths = sim.member(member).widths_from("alice");
    widths.len() >= n && widths[widths.len() - n..].iter().all(|&w| w == width)
}

fn bottleneck(kbps: u64) -> NetworkConfig {
    NetworkConfig {
        bandwidth_bps: Some(kbps * 1000),
        delay: Duration::from_millis(10),
        ..NetworkConfig::default()
    }
}

#[test]
fn each_subscriber_gets_the_layer_its_bandwidth_allows() {
    let mut sim = RoomSim::new(6);
    let alice = MemberOptions {
        publish: Publish::Simulcast,
        size: (640, 480),
        ..MemberOptions::first_picture(0)
    };
    sim.join("alice", "room-1", alice);
    let bob = MemberOptions {
        publish: Publish::Audio,
        downlink: bottleneck(300),
        ..MemberOptions::first_picture(10_000)
    };
    sim.join("bob", "room-1", bob);
    let carol = MemberOptions {
        publish: Publish::Audio,
        ..MemberOptions::first_picture(20_000)
    };
    sim.join("carol", "room-1", carol);

    let took = sim.run_until(Duration::from_secs(40), |sim| {
        settled(sim, "bob", 320, 30) && settled(sim, "carol", 640, 30)
    });
    eprintln!("bob settled on 320x240, carol on 640x480, within {took:?}");
    let switches_before = sim.stats().layer_switches;

    sim.member_mut("bob").set_downlink(NetworkConfig::default());
    let took = sim.run_until(Duration::from_secs(40), |sim| settled(sim, "bob", 640, 30));
    eprintln!("bob moved up to 640x480 {took:?} after his limit lifted");
    assert!(
        sim.stats().layer_switches > switches_before,
        "{:?}",
        sim.stats()
    );
    for name in ["bob", "carol"] {
        let m = sim.member(name);
        // (Bob's and carol's audio may beat their keys to each other at
        // the join; alice's video is what switches layers.)
        assert!(
            !m.decrypt_failures.contains_key("alice"),
            "{name}: {:?}",
            m.decrypt_failures
        );
        // The full-size pictures (whose numbers read back) come in order,
        // across the switches too.
        let full: Vec<u16> = m.pictures["alice"]
            .iter()
            .zip(m.widths_from("alice"))
            .filter(|&(_, w)| w == 640)
            .map(|(&n, _)| n)
            .collect();
        assert!(
            full.windows(2).all(|w| w[0] < w[1]),
            "{name} got full-size pictures out of order"
        );
    }
    // Dynacast: alice was told to send both layers while bob and carol
    // needed different ones, and only the high one once both took it.
    let layers = &sim.member("alice").layer_changes;
    assert!(layers.contains(&(true, true)), "{layers:?}");
    assert_eq!(layers.last(), Some(&(true, false)), "{layers:?}");

    // Carol shows alice small: she asks for at most the low layer and
    // gets it though her bandwidth would carry the high one.
    assert!(sim.cap_video_layer("carol", "alice", Some("l")));
    sim.run_until(Duration::from_secs(20), |sim| {
        settled(sim, "carol", 320, 30)
    });
    assert!(!sim.member("carol").decrypt_failures.contains_key("alice"));
    let widths = sim.member("bob").widths_from("alice");
    eprintln!(
        "bob: {} pictures at 320, {} at 640; layer switches {}",
        widths.iter().filter(|&&w| w == 320).count(),
        widths.iter().filter(|&&w| w == 640).count(),
        sim.stats().layer_switches
    );
}
