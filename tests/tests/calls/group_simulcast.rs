//! Simulcast from a real client session through the real SFU, with
//! dynacast: alice publishes her 640x480 camera as two layers (h, and l at
//! half size). Bob, a subscriber with room to spare, gets the high layer
//! (numbered pictures, rising, none undecryptable) and the SFU tells alice
//! nobody receives her low layer, which she stops encoding. When bob
//! leaves she sends no video at all; when carol joins, video comes back
//! and carol decodes it.

use std::time::{Duration, Instant};

use parley_client::call::group_session::Publish;
use parley_testkit::group::{Member, UNREADABLE, run, start_sfu};

#[test]
fn layers_nobody_receives_pause_and_come_back_for_a_newcomer() {
    let sfu = start_sfu();
    let mut alice = Member::join_with(&sfu, "alice", 0, Publish::Simulcast, (640, 480));
    let mut bob = Member::join(&sfu, "bob", 10_000);
    assert_eq!(alice.session.simulcast_layers(), Some((true, true)));
    assert_eq!(bob.session.simulcast_layers(), None);

    let high = |m: &Member| {
        m.sizes
            .get("alice")
            .is_some_and(|s| s.iter().filter(|&&s| s == (640, 480)).count() >= 30)
    };
    run(&mut [&mut alice, &mut bob], Duration::from_secs(30), |m| {
        high(m[1]) && m[0].session.simulcast_layers() == Some((true, false))
    });
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
    bob.session.leave(Instant::now()).unwrap();
    bob.step(Instant::now());
    drop(bob);
    run(&mut [&mut alice], Duration::from_secs(10), |m| {
        m[0].session.simulcast_layers() == Some((false, false))
    });

    // A newcomer: a layer comes back, and she decodes it.
    let mut carol = Member::join(&sfu, "carol", 20_000);
    run(
        &mut [&mut alice, &mut carol],
        Duration::from_secs(30),
        |m| m[1].pictures_from("alice") >= 20,
    );
    assert_ne!(alice.session.simulcast_layers(), Some((false, false)));
    eprintln!(
        "carol got alice at {:?}; alice sends (h, l) = {:?}",
        carol.sizes["alice"].last(),
        alice.session.simulcast_layers()
    );
}
