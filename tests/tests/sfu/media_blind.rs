//! The SFU forwards what it cannot read: two participants encrypt with
//! their own sender keys (handed to each other directly here, as E2E
//! envelopes would), a tap on the SFU copies every frame it forwards, and
//! those copies open with no key the SFU could have, decode to no picture,
//! and contain none of the Opus packets sent, while the members decode
//! each other's pictures.

use std::sync::mpsc;
use std::time::Duration;

use crate::common::{TestPeer, TestSfu, drive};
use parley_client::call::group_e2ee::{SenderDecryptor, SenderEncryptor, SenderKey};
use parley_media::h264::H264Decoder;
use parley_wire::sfu::TrackKind;

const ROOM: &str = "room-1";

#[test]
fn forwarded_frames_are_ciphertext_members_decode_them() {
    let (tap, tapped) = mpsc::sync_channel(100_000);
    let sfu = TestSfu::start(|config| config.tap = Some(tap));
    let (mut alice, offer) = TestPeer::offer("alice", 0);
    let (mut bob, bob_offer) = TestPeer::offer("bob", 10_000);
    alice.encryptor = Some(SenderEncryptor::new(ROOM).unwrap());
    bob.encryptor = Some(SenderEncryptor::new(ROOM).unwrap());
    let key_of = |peer: &TestPeer| {
        let mut decryptor = SenderDecryptor::new(ROOM);
        decryptor
            .add_key(peer.encryptor.as_ref().unwrap().key().clone())
            .unwrap();
        decryptor
    };
    let (for_bob, for_alice) = (key_of(&alice), key_of(&bob));
    bob.decryptors.insert("alice".into(), for_bob);
    alice.decryptors.insert("bob".into(), for_alice);
    sfu.join(&mut alice, ROOM, &offer);
    sfu.join(&mut bob, ROOM, &bob_offer);
    drive(&mut [&mut alice, &mut bob], Duration::from_secs(20), |p| {
        p[0].from("bob").pictures.len() >= 30 && p[1].from("alice").pictures.len() >= 30
    });
    assert_eq!(alice.decrypt_failures + bob.decrypt_failures, 0);
    assert!(bob.from("alice").pictures.iter().all(|&n| n < 10_000));
    assert!(alice.from("bob").pictures.iter().all(|&n| n >= 10_000));

    let frames: Vec<_> = tapped.try_iter().collect();
    let (mut video, mut audio) = (0, 0);
    let mut decoder = H264Decoder::new().unwrap();
    // Keys the SFU might guess at: none, or any key of its own.
    let mut keyless = SenderDecryptor::new(ROOM);
    let mut guessed = SenderDecryptor::new(ROOM);
    guessed.add_key(SenderKey::random(0)).unwrap();
    for frame in &frames {
        let sender = if frame.publisher.user == "alice" {
            &alice
        } else {
            &bob
        };
        match frame.kind {
            TrackKind::Video => {
                video += 1;
                assert!(keyless.decrypt_h264(&frame.data).is_err());
                assert!(guessed.decrypt_h264(&frame.data).is_err());
                assert!(
                    !matches!(decoder.decode(&frame.data), Ok(Some(_))),
                    "a forwarded frame decoded as H.264"
                );
            }
            TrackKind::Audio => {
                audio += 1;
                assert!(keyless.decrypt_audio(&frame.data).is_err());
                assert!(guessed.decrypt_audio(&frame.data).is_err());
                assert!(
                    !sender.sent_opus.iter().any(|p| p[..] == frame.data[..]),
                    "a forwarded audio frame is a plain Opus packet"
                );
            }
        }
    }
    eprintln!(
        "tapped {video} video and {audio} audio frames; bob decoded {} of alice's pictures, alice {} of bob's",
        bob.from("alice").pictures.len(),
        alice.from("bob").pictures.len()
    );
    assert!(
        video >= 50 && audio >= 50,
        "tapped {video} video, {audio} audio"
    );
}
