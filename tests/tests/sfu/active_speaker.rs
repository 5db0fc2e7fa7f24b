//! Active speaker from RFC 6464 audio levels: when one member talks and
//! the others are silent, everyone in the room (the speaker too) is told
//! who speaks; when the floor passes, the announcement follows.

use std::time::Duration;

use parley_testkit::sfu_sim::{MemberOptions, RoomSim};

fn all_hear(sim: &RoomSim, speaker: &str) -> bool {
    sim.members()
        .iter()
        .all(|m| m.speakers.last().map(String::as_str) == Some(speaker))
}

#[test]
fn the_announced_speaker_follows_who_talks() {
    let mut sim = RoomSim::new(3);
    for (name, first) in [("alice", 0), ("bob", 10_000), ("carol", 20_000)] {
        let options = MemberOptions {
            speaking: name == "alice",
            ..MemberOptions::first_picture(first)
        };
        sim.join(name, "room-1", options);
    }
    sim.run_until(Duration::from_secs(20), |sim| all_hear(sim, "alice"));

    sim.member_mut("alice").speaking = false;
    sim.member_mut("bob").speaking = true;
    let took = sim.run_until(Duration::from_secs(10), |sim| all_hear(sim, "bob"));
    eprintln!("the floor passed to bob in {took:?}");
    for m in sim.members() {
        assert!(
            !m.speakers.iter().any(|s| s == "carol"),
            "{} heard silent carol announced: {:?}",
            m.name,
            m.speakers
        );
    }
}
