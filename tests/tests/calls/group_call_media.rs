//! A group call of real client sessions through the real SFU on loopback:
//! speech and the numbered test pattern, Opus and H.264, each sender's
//! frames SFrame-encrypted under its own sender key. Keys go where the
//! sessions say (`SendKey`), handed over directly here as the E2E
//! envelopes will carry them.
//!
//! Alice and bob talk; carol joins (alice and bob ratchet, carol gets the
//! new keys and decodes both, bob and alice follow each other's ratchet
//! without a message); carol leaves (alice and bob replace their keys and
//! keep decoding each other).

use std::time::{Duration, Instant};

use parley_testkit::group::{Member, run, start_sfu};

#[test]
fn members_decode_each_other_across_a_join_and_a_leave() {
    let sfu = start_sfu();
    let mut alice = Member::join(&sfu, "alice", 0);
    let mut bob = Member::join(&sfu, "bob", 10_000);
    run(&mut [&mut alice, &mut bob], Duration::from_secs(20), |m| {
        m[0].pictures_from("bob") >= 20 && m[1].pictures_from("alice") >= 20
    });
    let epoch_before = alice.session.sender_key().epoch;

    let mut carol = Member::join(&sfu, "carol", 20_000);
    let (a0, b0) = (alice.pictures_from("bob"), bob.pictures_from("alice"));
    run(
        &mut [&mut alice, &mut bob, &mut carol],
        Duration::from_secs(20),
        |m| {
            m[2].pictures_from("alice") >= 20
                && m[2].pictures_from("bob") >= 20
                && m[0].pictures_from("carol") >= 20
                && m[1].pictures_from("carol") >= 20
                && m[0].pictures_from("bob") >= a0 + 20
                && m[1].pictures_from("alice") >= b0 + 20
        },
    );
    assert_eq!(
        alice.session.sender_key().epoch,
        epoch_before + 1,
        "alice ratcheted once for carol"
    );
    for member in [&alice, &bob, &carol] {
        for (who, stats) in member.session.remote_stats() {
            assert!(
                stats.audio_frames > 0,
                "{} got no audio from {}",
                member.name,
                who.user
            );
        }
        for other in ["alice", "bob", "carol"] {
            if other != member.name {
                assert!(
                    member.heard.get(other).copied().unwrap_or(0) > 10,
                    "{} played too little of {other}'s audio: {:?}",
                    member.name,
                    member.heard
                );
            }
        }
    }

    carol.session.leave(Instant::now()).unwrap();
    carol.step(Instant::now());
    drop(carol);
    let (a1, b1) = (alice.pictures_from("bob"), bob.pictures_from("alice"));
    run(&mut [&mut alice, &mut bob], Duration::from_secs(20), |m| {
        m[0].left.contains(&"carol".to_string())
            && m[1].left.contains(&"carol".to_string())
            && m[0].pictures_from("bob") >= a1 + 30
            && m[1].pictures_from("alice") >= b1 + 30
    });
    assert_eq!(
        alice.session.sender_key().epoch,
        epoch_before + 2,
        "alice replaced her key when carol left"
    );
    for (member, sender, first) in [(&alice, "bob", 10_000u16), (&bob, "alice", 0)] {
        let pictures = &member.pictures[sender];
        assert!(
            pictures.iter().all(|&n| n >= first && n < first + 10_000),
            "{} decoded pictures that are not {sender}'s",
            member.name
        );
        assert!(pictures.windows(2).all(|w| w[0] < w[1]));
    }
}
