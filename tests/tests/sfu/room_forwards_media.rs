//! Three members in a room through the SFU core (real str0m on every end,
//! real Opus, H.264 and SFrame, in virtual time): each one decodes the
//! other two's audio and video, every picture is the sender's own (the
//! test pattern's numbers tell whose), a member who joins late gets the
//! tracks of those already there, and a room next door hears none of it.

use std::time::Duration;

use parley_testkit::sfu_sim::{MemberOptions, RoomSim};

/// Pictures each member must decode from each other one.
const PICTURES: usize = 20;
/// Audio frames each member must play from each other one.
const AUDIO: u64 = 40;

#[test]
fn every_participant_decodes_every_other() {
    let mut sim = RoomSim::new(1);
    sim.join("alice", "room-1", MemberOptions::first_picture(0));
    sim.join("bob", "room-1", MemberOptions::first_picture(10_000));
    sim.join("dave", "room-2", MemberOptions::first_picture(30_000));

    // Alice and bob talk for a while before carol arrives.
    sim.run_until(Duration::from_secs(20), |sim| {
        sim.member("alice").pictures_from("bob") >= PICTURES
            && sim.member("bob").pictures_from("alice") >= PICTURES
    });
    sim.join("carol", "room-1", MemberOptions::first_picture(20_000));

    let room = ["alice", "bob", "carol"];
    let took = sim.run_until(Duration::from_secs(30), |sim| {
        room.iter().all(|&name| {
            let m = sim.member(name);
            room.iter()
                .filter(|&&u| u != name)
                .all(|u| m.pictures_from(u) >= 2 * PICTURES && m.heard_from(u) >= AUDIO)
        })
    });
    eprintln!("everyone decoded everyone within {took:?} of virtual time after carol joined");

    for &name in &room {
        let m = sim.member(name);
        assert!(!m.pictures.contains_key(name), "{name} got itself");
        for (sender, first) in [("alice", 0u16), ("bob", 10_000), ("carol", 20_000)] {
            if sender == name {
                continue;
            }
            let pictures = &m.pictures[sender];
            assert!(
                pictures.iter().all(|&n| n >= first && n < first + 10_000),
                "{name} got a picture that is not {sender}'s: {pictures:?}"
            );
            assert!(
                pictures.windows(2).all(|w| w[0] < w[1]),
                "{name} got {sender}'s pictures out of order: {pictures:?}"
            );
        }
        // Everyone else in the room was announced by name.
        let mut names: Vec<String> = m
            .session
            .participants()
            .into_iter()
            .map(|p| p.user)
            .collect();
        names.sort();
        let others: Vec<&str> = room.iter().copied().filter(|&u| u != name).collect();
        assert_eq!(names, others, "{name} was told of");
        assert_eq!(m.session.me().unwrap().user, name);
        assert!(
            m.decrypt_failures.is_empty(),
            "{name}: {:?}",
            m.decrypt_failures
        );
    }
    // Carol joined late: she got the others' tracks in a renegotiation,
    // and the others got hers in one more.
    assert!(sim.member("carol").session.renegotiations() >= 1);
    let dave = sim.member("dave");
    assert!(
        dave.pictures.is_empty() && dave.heard.is_empty(),
        "room-2 heard room-1"
    );
    assert!(dave.session.participants().is_empty());

    assert!(sim.stats().frames_forwarded > 0);
    assert_eq!(sim.users_in("room-1"), ["alice", "bob", "carol"]);
    assert_eq!(sim.users_in("room-2"), ["dave"]);
}
