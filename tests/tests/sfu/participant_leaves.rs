//! A participant that says it leaves is removed at once; one that
//! vanishes (stops sending, no goodbye) is removed after the timeout. Either
//! way the others are told who left and why, the SFU stops that
//! participant's media lines in their sessions, and the room lists only
//! who is left.

use std::time::{Duration, Instant};

use crate::common::{TestPeer, TestSfu, drive};
use parley_wire::sfu::ControlMessage;

#[test]
fn leaving_and_vanishing_participants_are_removed() {
    let sfu = TestSfu::start(|config| {
        config.peer_timeout = Duration::from_secs(2);
    });
    let (mut alice, offer) = TestPeer::offer("alice", 0);
    sfu.join(&mut alice, "room-1", &offer);
    let (mut bob, offer) = TestPeer::offer("bob", 10_000);
    sfu.join(&mut bob, "room-1", &offer);
    let (mut carol, offer) = TestPeer::offer("carol", 20_000);
    sfu.join(&mut carol, "room-1", &offer);
    drive(
        &mut [&mut alice, &mut bob, &mut carol],
        Duration::from_secs(20),
        |p| {
            p.iter().all(|peer| {
                ["alice", "bob", "carol"]
                    .iter()
                    .filter(|&&u| u != peer.name)
                    .all(|u| peer.from(u).pictures.len() >= 5)
            })
        },
    );

    // Carol says goodbye.
    carol.send_control(&ControlMessage::Leave);
    carol.step(Instant::now());
    drive(&mut [&mut alice, &mut bob], Duration::from_secs(5), |p| {
        p.iter()
            .all(|peer| peer.left.iter().any(|(who, _)| who.user == "carol"))
    });
    for peer in [&alice, &bob] {
        let (_, reason) = peer
            .left
            .iter()
            .find(|(who, _)| who.user == "carol")
            .unwrap();
        assert_eq!(reason, "left");
    }
    let users: Vec<String> = sfu
        .participants("room-1")
        .into_iter()
        .map(|p| p.user)
        .collect();
    assert_eq!(users, ["alice", "bob"]);

    // Bob vanishes: he is simply never stepped again.
    let vanished = Instant::now();
    let offers_before = alice.offers_answered;
    drive(&mut [&mut alice], Duration::from_secs(15), |p| {
        p[0].left.iter().any(|(who, _)| who.user == "bob")
    });
    let (_, reason) = alice
        .left
        .iter()
        .find(|(who, _)| who.user == "bob")
        .unwrap();
    assert!(
        reason == "timed out" || reason == "disconnected",
        "bob left because {reason:?}"
    );
    eprintln!(
        "bob removed {:?} after he vanished ({reason})",
        vanished.elapsed()
    );
    // His media lines are stopped in a renegotiation.
    drive(&mut [&mut alice], Duration::from_secs(5), |p| {
        p[0].offers_answered > offers_before
    });
    let users: Vec<String> = sfu
        .participants("room-1")
        .into_iter()
        .map(|p| p.user)
        .collect();
    assert_eq!(users, ["alice"]);
    drop(bob);
}
