//! A member that says it leaves is removed at once; one that vanishes
//! (stops sending, no goodbye) is removed after the timeout. Either way
//! the others are told who left and why, the SFU stops that member's media
//! lines in their sessions, and the room lists only who is left. In virtual
//! time, so the timeout is measured to the millisecond.

use std::time::Duration;

use parley_testkit::sfu_sim::{MemberOptions, RoomSim};

const PEER_TIMEOUT: Duration = Duration::from_secs(2);

fn reason<'a>(sim: &'a RoomSim, member: &str, who: &str) -> Option<&'a str> {
    sim.member(member)
        .left
        .iter()
        .find(|(user, _)| user == who)
        .map(|(_, why)| why.as_str())
}

#[test]
fn leaving_and_vanishing_participants_are_removed() {
    let mut sim = RoomSim::with_config(2, |config| config.peer_timeout = PEER_TIMEOUT);
    for (name, first) in [("alice", 0), ("bob", 10_000), ("carol", 20_000)] {
        sim.join(name, "room-1", MemberOptions::first_picture(first));
    }
    let all = ["alice", "bob", "carol"];
    sim.run_until(Duration::from_secs(20), |sim| {
        all.iter().all(|&name| {
            all.iter()
                .filter(|&&u| u != name)
                .all(|u| sim.member(name).pictures_from(u) >= 5)
        })
    });

    // Carol says goodbye, then is gone.
    sim.leave("carol");
    sim.member_mut("carol").vanished = true;
    let took = sim.run_until(Duration::from_secs(5), |sim| {
        reason(sim, "alice", "carol").is_some() && reason(sim, "bob", "carol").is_some()
    });
    assert!(took < Duration::from_millis(500), "a goodbye took {took:?}");
    for member in ["alice", "bob"] {
        assert_eq!(reason(&sim, member, "carol"), Some("left"));
    }
    assert_eq!(sim.users_in("room-1"), ["alice", "bob"]);

    // Bob vanishes: he is simply never stepped again.
    let renegotiations = sim.member("alice").session.renegotiations();
    sim.member_mut("bob").vanished = true;
    let took = sim.run_until(Duration::from_secs(15), |sim| {
        reason(sim, "alice", "bob").is_some()
    });
    let why = reason(&sim, "alice", "bob").unwrap();
    assert!(
        why == "timed out" || why == "disconnected",
        "bob left because {why:?}"
    );
    assert!(
        took >= PEER_TIMEOUT - Duration::from_millis(100)
            && took <= PEER_TIMEOUT + Duration::from_secs(1),
        "bob removed {took:?} after he vanished ({why})"
    );
    // His media lines are stopped in a renegotiation.
    sim.run_until(Duration::from_secs(5), |sim| {
        sim.member("alice").session.renegotiations() > renegotiations
    });
    assert_eq!(sim.users_in("room-1"), ["alice"]);
}
