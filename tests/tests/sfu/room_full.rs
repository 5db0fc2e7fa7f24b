//! A room holds at most `SfuConfig::max_participants`: one more is
//! refused with a reason, and those inside are not disturbed.

use std::time::Duration;

use parley_client::call::group_session::{GroupKeys, GroupSession, Publish};
use parley_sfu::{JoinClaims, JoinError};
use parley_testkit::sfu_sim::{MemberOptions, RoomSim};

#[test]
fn a_join_beyond_the_cap_is_refused_and_the_room_carries_on() {
    let mut sim = RoomSim::with_config(7, |config| config.max_participants = 2);
    sim.join("alice", "room-1", MemberOptions::first_picture(0));
    sim.join("bob", "room-1", MemberOptions::first_picture(10_000));

    let (_, offer) = GroupSession::offer(
        sim.now(),
        "10.0.9.9:5000".parse().unwrap(),
        "room-1",
        Publish::Audio,
        GroupKeys::SenderKeys,
    )
    .unwrap();
    let token = sim.key().sign(&JoinClaims {
        room: "room-1".into(),
        user: "carol".into(),
        device: "phone".into(),
        expires_at: sim.unix_now() + 60,
    });
    let err = sim.join_raw("room-1", &token, &offer).unwrap_err();
    assert!(matches!(err, JoinError::RoomFull(2)), "{err}");
    assert_eq!(err.client_message(), "the room is full (2 participants)");
    // Another room is another count.
    let token = sim.key().sign(&JoinClaims {
        room: "room-2".into(),
        user: "carol".into(),
        device: "phone".into(),
        expires_at: sim.unix_now() + 60,
    });
    let (_, offer) = GroupSession::offer(
        sim.now(),
        "10.0.9.9:5000".parse().unwrap(),
        "room-2",
        Publish::Audio,
        GroupKeys::SenderKeys,
    )
    .unwrap();
    assert!(sim.join_raw("room-2", &token, &offer).is_ok());

    sim.run_until(Duration::from_secs(20), |sim| {
        sim.member("alice").heard_from("bob") > 10 && sim.member("bob").heard_from("alice") > 10
    });
    let mut inside = sim.users_in("room-1");
    inside.sort();
    assert_eq!(inside, ["alice", "bob"]);
}
