//! The SFU in virtual time repeats exactly from a seed: three members
//! connect, then talk for 10 s of virtual time behind lossy, jittery links
//! (5 % loss, 40 ms + 0-20 ms each way), twice with one seed and once with
//! another.
//! The two runs with the same seed decode the same pictures and play the
//! same audio, frame for frame; a different seed loses differently; and
//! everyone still decodes everyone through the loss.
//!
//! (What makes it repeat: the links draw from the seed, str0m's
//! non-cryptographic randomness and DTLS's resend jitter are seeded on the
//! test's thread, and RTP and control packets are lost independently; see
//! `parley_testkit::sfu_sim`.)

use std::time::Duration;

use parley_media::netsim::{LossModel, NetworkConfig};
use parley_testkit::sfu_sim::{MemberOptions, RoomSim};

/// What each member got of each other: picture numbers and frames played.
type Outcome = Vec<(String, Vec<(String, Vec<u16>)>, Vec<(String, u64)>)>;

fn lossy() -> NetworkConfig {
    NetworkConfig {
        loss: LossModel::Bernoulli { loss: 0.05 },
        delay: Duration::from_millis(40),
        jitter: Duration::from_millis(20),
        ..NetworkConfig::default()
    }
}

fn run(seed: u64) -> Outcome {
    let mut sim = RoomSim::new(seed);
    let names = ["alice", "bob", "carol"];
    for (name, first) in names.into_iter().zip([0, 10_000, 20_000]) {
        sim.join(name, "room-1", MemberOptions::first_picture(first));
    }
    // Connect on clean links, as the loss benchmark does: DTLS handshake
    // packets vary in size from run to run (ECDSA signatures), and a loss
    // pattern that depends on them would not repeat.
    sim.run_until(Duration::from_secs(10), |sim| {
        names.iter().all(|&name| {
            names
                .iter()
                .filter(|&&u| u != name)
                .all(|u| sim.member(name).pictures_from(u) > 0)
        })
    });
    for name in names {
        sim.member_mut(name).set_uplink(lossy());
        sim.member_mut(name).set_downlink(lossy());
    }
    sim.run_for(Duration::from_secs(10));
    for m in sim.members() {
        for (sender, kinds) in &m.playout {
            let pulled: u64 = kinds.values().sum();
            let concealed = kinds.get("Concealed").copied().unwrap_or(0);
            eprintln!("{} <- {sender}: {kinds:?}", m.name);
            // Uplink and downlink each lose 5 %: FEC rebuilds most single
            // losses; what is left is concealed.
            assert!(
                concealed * 100 < pulled * 8,
                "{} concealed {concealed} of {pulled} frames of {sender}",
                m.name
            );
        }
    }
    sim.members()
        .iter()
        .map(|m| {
            let pictures = m
                .pictures
                .iter()
                .map(|(u, p)| (u.clone(), p.clone()))
                .collect();
            let heard = m.heard.iter().map(|(u, n)| (u.clone(), *n)).collect();
            (m.name.clone(), pictures, heard)
        })
        .collect()
}

#[test]
fn a_seeded_lossy_call_repeats_exactly() {
    let first = run(21);
    for (name, pictures, heard) in &first {
        let pictures: Vec<_> = pictures.iter().map(|(u, p)| (u, p.len())).collect();
        eprintln!("{name}: pictures {pictures:?}, audio frames played {heard:?}");
    }
    for (name, pictures, heard) in &first {
        assert_eq!(pictures.len(), 2, "{name} decoded {pictures:?}");
        for (sender, numbers) in pictures {
            assert!(
                numbers.len() >= 200,
                "{name} decoded {} of {sender}'s pictures",
                numbers.len()
            );
        }
        for (sender, frames) in heard {
            assert!(
                *frames >= 300,
                "{name} played {frames} of {sender}'s audio frames"
            );
        }
    }
    assert_eq!(run(21), first, "the same seed gave another call");
    assert_ne!(run(22), first, "another seed gave the same call");
}
