//! Simulcast: alice publishes two layers (640x480 `h`, 320x240 `l`); bob
//! receives through a 300 kbit/s bottleneck, carol without one. The SFU
//! picks each subscriber's layer from its bandwidth estimate: carol sees
//! 640x480, bob 320x240; when bob's limit lifts he moves up to 640x480.
//! Every switch happens at a keyframe: no decode errors, pictures in order.
//! Dynacast: alice is told to send both layers while both are watched,
//! then only the high one. A subscriber that asks for at most the low
//! layer (a small tile) gets it whatever its bandwidth.

use std::time::Duration;

use crate::common::{TestPeer, TestSfu, drive};
use parley_wire::sfu::{ControlMessage, TrackKind};

/// The last `n` pictures from `user` are all `width` wide.
fn settled(peer: &TestPeer, user: &str, width: usize, n: usize) -> bool {
    let widths = peer.from(user).widths;
    widths.len() >= n && widths[widths.len() - n..].iter().all(|&w| w == width)
}

#[test]
fn each_subscriber_gets_the_layer_its_bandwidth_allows() {
    let sfu = TestSfu::start(|_| {});
    let (mut alice, offer) = TestPeer::offer_simulcast("alice", 0);
    sfu.join(&mut alice, "room-1", &offer);
    let (mut bob, offer) = TestPeer::offer("bob", 10_000);
    bob.video = false;
    bob.downlink_kbps = Some(300.0);
    sfu.join(&mut bob, "room-1", &offer);
    let (mut carol, offer) = TestPeer::offer("carol", 20_000);
    carol.video = false;
    sfu.join(&mut carol, "room-1", &offer);

    drive(
        &mut [&mut alice, &mut bob, &mut carol],
        Duration::from_secs(40),
        |p| settled(p[1], "alice", 320, 30) && settled(p[2], "alice", 640, 30),
    );
    let switches_before = sfu
        .runtime
        .block_on(sfu.handle.stats())
        .unwrap()
        .layer_switches;

    bob.downlink_kbps = None;
    drive(
        &mut [&mut alice, &mut bob, &mut carol],
        Duration::from_secs(40),
        |p| settled(p[1], "alice", 640, 30),
    );
    let stats = sfu.runtime.block_on(sfu.handle.stats()).unwrap();
    assert!(stats.layer_switches > switches_before, "{stats:?}");
    for peer in [&bob, &carol] {
        assert_eq!(
            peer.decode_errors, 0,
            "{} could not decode a picture",
            peer.name
        );
        // The full-size pictures (whose numbers read back) come in order,
        // across the switches too.
        let received = peer.from("alice");
        let full: Vec<u16> = received
            .pictures
            .iter()
            .zip(&received.widths)
            .filter(|&(_, &w)| w == 640)
            .map(|(&n, _)| n)
            .collect();
        assert!(
            full.windows(2).all(|w| w[0] < w[1]),
            "{} got full-size pictures out of order",
            peer.name
        );
    }
    // Dynacast: alice was told to send both layers while bob and carol
    // needed different ones, and only the high one once both took it.
    let layers: Vec<Vec<String>> = alice
        .control
        .iter()
        .filter_map(|m| match m {
            ControlMessage::Layers { active, .. } => Some(active.clone()),
            _ => None,
        })
        .collect();
    let both = vec!["h".to_string(), "l".to_string()];
    assert!(layers.contains(&both), "{layers:?}");
    assert_eq!(layers.last(), Some(&vec!["h".to_string()]), "{layers:?}");
    // Carol shows alice small: she asks for at most the low layer and
    // gets it though her bandwidth would carry the high one.
    let line = carol
        .tracks
        .iter()
        .find(|(_, (kind, who))| *kind == TrackKind::Video && who.user == "alice")
        .map(|(mid, _)| mid.to_string())
        .expect("carol has alice's video line");
    carol.send_control(&ControlMessage::MaxLayer {
        mid: line,
        rid: Some("l".into()),
    });
    drive(
        &mut [&mut alice, &mut bob, &mut carol],
        Duration::from_secs(20),
        |p| settled(p[2], "alice", 320, 30),
    );
    assert_eq!(carol.decode_errors, 0);
    let widths = bob.from("alice").widths;
    eprintln!(
        "bob: {} pictures at 320, {} at 640; layer switches {}",
        widths.iter().filter(|&&w| w == 320).count(),
        widths.iter().filter(|&&w| w == 640).count(),
        stats.layer_switches
    );
}
