//! Active speaker from RFC 6464 audio levels: when one participant talks
//! and the others are silent, everyone in the room (the speaker too) is
//! told who speaks; when the floor passes, the announcement follows.

use std::time::Duration;

use crate::common::{TestPeer, TestSfu, drive};

#[test]
fn the_announced_speaker_follows_who_talks() {
    let sfu = TestSfu::start(|_| {});
    let mut peers = Vec::new();
    for (name, first) in [("alice", 0), ("bob", 10_000), ("carol", 20_000)] {
        let (mut peer, offer) = TestPeer::offer(name, first);
        peer.speaking = name == "alice";
        sfu.join(&mut peer, "room-1", &offer);
        peers.push(peer);
    }
    let [alice, bob, carol] = &mut peers[..] else {
        unreachable!()
    };
    drive(&mut [alice, bob, carol], Duration::from_secs(20), |p| {
        p.iter()
            .all(|peer| peer.speakers.last().map(String::as_str) == Some("alice"))
    });

    alice.speaking = false;
    bob.speaking = true;
    drive(&mut [alice, bob, carol], Duration::from_secs(10), |p| {
        p.iter()
            .all(|peer| peer.speakers.last().map(String::as_str) == Some("bob"))
    });
    for peer in [&*alice, &*bob, &*carol] {
        assert!(
            !peer.speakers.iter().any(|s| s == "carol"),
            "{} heard silent carol announced: {:?}",
            peer.name,
            peer.speakers
        );
    }
}
