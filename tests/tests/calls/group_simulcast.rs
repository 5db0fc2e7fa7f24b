//! Simulcast from a real client session through the SFU core, with
//! dynacast, in virtual time: alice publishes her 640x480 camera as two
//! layers (h, and l at half size). Bob, a subscriber with room to spare,
//! gets the high layer (numbered pictures, rising, none undecryptable) and
//! the SFU tells alice nobody receives her low layer, which she stops
//! encoding. When bob leaves she sends no video at all; when carol joins,
//! video comes back and carol decodes it.

use std::time::Duration;

use parley_client::call::group_session::Publish;
use parley_testkit::sfu_sim::{MemberOptions, RoomSim, UNREADABLE};

const ROOM: &str = "group-1";

#[test]
fn layers_nobody_receives_pause_and_come_back_for_a_newcomer() {
    let mut sim = RoomSim::new(12);
    let alice = MemberOptions {
        publish: Publish::Simulcast,
        size: (640, 480),
        ..MemberOptions::first_picture(0)
    };
    sim.join("alice", ROOM, alice);
    sim.join("bob", ROOM, MemberOptions::first_picture(10_000));
    assert_eq!(
        sim.member("alice").session.simulcast_layers(),
        Some((true, true))
    );
    assert_eq!(sim.member("bob").session.simulcast_layers(), None);

    let high = |sim: &RoomSim| {
        sim.member("bob")
            .sizes
            .get("alice")
            .is_some_and(|s| s.iter().filter(|&&s| s == (640, 480)).count() >= 30)
    };
    sim.run_until(Duration::from_secs(30), |sim| {
        high(sim) && sim.member("alice").session.simulcast_layers() == Some((true, false))
    });
    let bob = sim.member("bob");
    let stats = bob
        .session
        .remote_stats()
        .into_iter()
        .find(|(who, _)| who.user == "alice")
        .map(|(_, s)| s)
        .unwrap();
    assert_eq!(stats.decrypt_failures, 0, "{stats:?}");
    // The high layer's pictures show their numbers, rising (the low
    // layer's, if bob saw any first, are too small to read).
    let numbers: Vec<u16> = bob.pictures["alice"]
        .iter()
        .copied()
        .filter(|&n| n != UNREADABLE)
        .collect();
    assert!(numbers.len() >= 30, "{numbers:?}");
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");

    // Nobody watching: no video at all.
    sim.leave("bob");
    sim.member_mut("bob").vanished = true;
    sim.run_until(Duration::from_secs(10), |sim| {
        sim.member("alice").session.simulcast_layers() == Some((false, false))
    });

    // A newcomer: a layer comes back, and she decodes it.
    sim.join("carol", ROOM, MemberOptions::first_picture(20_000));
    sim.run_until(Duration::from_secs(30), |sim| {
        sim.member("carol").pictures_from("alice") >= 20
    });
    assert_ne!(
        sim.member("alice").session.simulcast_layers(),
        Some((false, false))
    );
    eprintln!(
        "carol got alice at {:?}; alice sends (h, l) = {:?}",
        sim.member("carol").sizes["alice"].last(),
        sim.member("alice").session.simulcast_layers()
    );
}
