//! A group call of real client sessions through the SFU core, in virtual
//! time: speech and the numbered test pattern, Opus and H.264, each
//! sender's frames SFrame-encrypted under its own sender key. Keys go
//! where the sessions say (`SendKey`), handed over directly as the E2E
//! envelopes would carry them.
//!
//! Alice and bob talk; carol joins (alice and bob ratchet, carol gets the
//! new keys and decodes both, bob and alice follow each other's ratchet
//! without a message); carol leaves (alice and bob replace their keys and
//! keep decoding each other).

use std::time::Duration;

use parley_testkit::sfu_sim::{MemberOptions, RoomSim};

const ROOM: &str = "group-1";

#[test]
fn members_decode_each_other_across_a_join_and_a_leave() {
    let mut sim = RoomSim::new(11);
    sim.join("alice", ROOM, MemberOptions::first_picture(0));
    sim.join("bob", ROOM, MemberOptions::first_picture(10_000));
    sim.run_until(Duration::from_secs(20), |sim| {
        sim.member("alice").pictures_from("bob") >= 20
            && sim.member("bob").pictures_from("alice") >= 20
    });
    let epoch_before = sim.member("alice").session.sender_key().epoch;

    sim.join("carol", ROOM, MemberOptions::first_picture(20_000));
    let a0 = sim.member("alice").pictures_from("bob");
    let b0 = sim.member("bob").pictures_from("alice");
    sim.run_until(Duration::from_secs(20), |sim| {
        let (alice, bob, carol) = (sim.member("alice"), sim.member("bob"), sim.member("carol"));
        carol.pictures_from("alice") >= 20
            && carol.pictures_from("bob") >= 20
            && alice.pictures_from("carol") >= 20
            && bob.pictures_from("carol") >= 20
            && alice.pictures_from("bob") >= a0 + 20
            && bob.pictures_from("alice") >= b0 + 20
    });
    assert_eq!(
        sim.member("alice").session.sender_key().epoch,
        epoch_before + 1,
        "alice ratcheted once for carol"
    );
    for m in sim.members() {
        for (who, stats) in m.session.remote_stats() {
            assert!(
                stats.audio_frames > 0,
                "{} got no audio from {}",
                m.name,
                who.user
            );
        }
        for other in ["alice", "bob", "carol"] {
            if other != m.name {
                assert!(
                    m.heard_from(other) > 10,
                    "{} played too little of {other}'s audio: {:?}",
                    m.name,
                    m.heard
                );
            }
        }
    }

    sim.leave("carol");
    sim.member_mut("carol").vanished = true;
    let a1 = sim.member("alice").pictures_from("bob");
    let b1 = sim.member("bob").pictures_from("alice");
    sim.run_until(Duration::from_secs(20), |sim| {
        let (alice, bob) = (sim.member("alice"), sim.member("bob"));
        let gone = |m: &parley_testkit::sfu_sim::Member| m.left.iter().any(|(u, _)| u == "carol");
        gone(alice)
            && gone(bob)
            && alice.pictures_from("bob") >= a1 + 30
            && bob.pictures_from("alice") >= b1 + 30
    });
    assert_eq!(
        sim.member("alice").session.sender_key().epoch,
        epoch_before + 2,
        "alice replaced her key when carol left"
    );
    for (name, sender, first) in [("alice", "bob", 10_000u16), ("bob", "alice", 0)] {
        let m = sim.member(name);
        let pictures = &m.pictures[sender];
        assert!(
            pictures.iter().all(|&n| n >= first && n < first + 10_000),
            "{name} decoded pictures that are not {sender}'s"
        );
        assert!(pictures.windows(2).all(|w| w[0] < w[1]));
        assert!(
            m.decrypt_failures.is_empty(),
            "{name}: {:?}",
            m.decrypt_failures
        );
    }
}
