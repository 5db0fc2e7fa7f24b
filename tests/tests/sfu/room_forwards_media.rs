//! Three participants in a room through the SFU (real str0m on every end,
//! real Opus and H.264, loopback UDP): each one decodes the other two's
//! audio and video, every picture is the sender's own (the test pattern's
//! numbers tell whose), a participant who joins late gets the tracks of
//! those already there, and a room next door hears none of it.

use std::time::Duration;

use crate::common::{TestPeer, TestSfu, drive};

/// Pictures each participant must decode from each other one.
const PICTURES: usize = 20;
/// Audio frames each participant must get from each other one.
const AUDIO: u64 = 40;

#[test]
fn every_participant_decodes_every_other() {
    let sfu = TestSfu::start(|_| {});
    let (mut alice, offer) = TestPeer::offer("alice", 0);
    sfu.join(&mut alice, "room-1", &offer);
    let (mut bob, offer) = TestPeer::offer("bob", 10_000);
    sfu.join(&mut bob, "room-1", &offer);
    let (mut dave, offer) = TestPeer::offer("dave", 30_000);
    sfu.join(&mut dave, "room-2", &offer);

    // Alice and bob talk for a while before carol arrives.
    drive(
        &mut [&mut alice, &mut bob, &mut dave],
        Duration::from_secs(20),
        |p| {
            p[0].from("bob").pictures.len() >= PICTURES
                && p[1].from("alice").pictures.len() >= PICTURES
        },
    );
    let (mut carol, offer) = TestPeer::offer("carol", 20_000);
    sfu.join(&mut carol, "room-1", &offer);

    let room = ["alice", "bob", "carol"];
    drive(
        &mut [&mut alice, &mut bob, &mut carol, &mut dave],
        Duration::from_secs(30),
        |peers| {
            peers[..3].iter().all(|p| {
                room.iter().filter(|&&u| u != p.name).all(|u| {
                    let got = p.from(u);
                    got.pictures.len() >= 2 * PICTURES && got.audio_frames >= AUDIO
                })
            })
        },
    );

    for peer in [&alice, &bob, &carol] {
        for sender in [&alice, &bob, &carol] {
            if sender.name == peer.name {
                assert!(
                    !peer.received.contains_key(&peer.name),
                    "{} got itself",
                    peer.name
                );
                continue;
            }
            let got = peer.from(&sender.name);
            let first = sender.first_picture as u16;
            assert!(
                got.pictures
                    .iter()
                    .all(|&n| n >= first && n < first + 10_000),
                "{} got a picture that is not {}'s: {:?}",
                peer.name,
                sender.name,
                got.pictures
            );
            assert!(
                got.pictures.windows(2).all(|w| w[0] < w[1]),
                "{} got {}'s pictures out of order: {:?}",
                peer.name,
                sender.name,
                got.pictures
            );
        }
        // Everyone else in the room was announced by name.
        let mut names: Vec<_> = peer.joined.iter().map(|p| p.user.as_str()).collect();
        names.sort();
        let others: Vec<_> = room.iter().copied().filter(|&u| u != peer.name).collect();
        assert_eq!(names, others, "{} was told of", peer.name);
        assert_eq!(peer.me.as_ref().unwrap().user, peer.name);
    }
    // Carol joined late: she got the others' tracks in her first
    // renegotiation, and the others got hers in one more.
    assert!(carol.offers_answered >= 1);
    assert!(
        dave.received.is_empty(),
        "room-2 heard room-1: {:?}",
        dave.received.keys()
    );
    assert!(dave.joined.is_empty());

    let stats = sfu.runtime.block_on(sfu.handle.stats()).unwrap();
    assert!(stats.frames_forwarded > 0);
    assert_eq!(sfu.participants("room-1").len(), 3);
    assert_eq!(sfu.participants("room-2").len(), 1);
}
