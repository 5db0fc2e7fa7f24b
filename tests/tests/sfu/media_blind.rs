//! The SFU forwards what it cannot read: two members encrypt with their
//! own sender keys (handed to each other as E2E envelopes would carry
//! them), the SFU core's tap copies every frame it forwards, and those
//! copies open with no key the SFU could have and decode to no picture,
//! while they do open with the sender's own key and the members decode
//! each other's pictures.

use std::time::Duration;

use parley_client::call::group_e2ee::{SenderDecryptor, SenderKey};
use parley_media::h264::H264Decoder;
use parley_testkit::sfu_sim::{MemberOptions, RoomSim};
use parley_wire::sfu::TrackKind;

const ROOM: &str = "room-1";

#[test]
fn forwarded_frames_are_ciphertext_members_decode_them() {
    let mut sim = RoomSim::with_config(4, |config| config.tap = true);
    sim.join("alice", ROOM, MemberOptions::first_picture(0));
    sim.join("bob", ROOM, MemberOptions::first_picture(10_000));
    sim.run_until(Duration::from_secs(20), |sim| {
        sim.member("alice").pictures_from("bob") >= 30
            && sim.member("bob").pictures_from("alice") >= 30
    });
    for m in sim.members() {
        assert!(
            m.decrypt_failures.is_empty(),
            "{}: {:?}",
            m.name,
            m.decrypt_failures
        );
    }
    assert!(
        sim.member("bob").pictures["alice"]
            .iter()
            .all(|&n| n < 10_000)
    );
    assert!(
        sim.member("alice").pictures["bob"]
            .iter()
            .all(|&n| n >= 10_000)
    );

    // Keys the SFU might guess at: none, or any key of its own; and the
    // key each sender holds now (the SFU never sees it).
    let mut keyless = SenderDecryptor::new(ROOM);
    let mut guessed = SenderDecryptor::new(ROOM);
    guessed.add_key(SenderKey::random(0)).unwrap();
    let mut owners = std::collections::BTreeMap::new();
    for m in sim.members() {
        let mut decryptor = SenderDecryptor::new(ROOM);
        decryptor.add_key(m.session.sender_key().clone()).unwrap();
        owners.insert(m.name.clone(), decryptor);
    }
    let mut decoder = H264Decoder::new().unwrap();
    let (mut video, mut audio, mut opened) = (0, 0, 0);
    for frame in sim.tapped() {
        let owner = owners
            .get_mut(&frame.publisher.user)
            .expect("a member's frame");
        match frame.kind {
            TrackKind::Video => {
                video += 1;
                assert!(keyless.decrypt_h264(&frame.data).is_err());
                assert!(guessed.decrypt_h264(&frame.data).is_err());
                assert!(
                    !matches!(decoder.decode(&frame.data), Ok(Some(_))),
                    "a forwarded frame decoded as H.264"
                );
                opened += usize::from(owner.decrypt_h264(&frame.data).is_ok());
            }
            TrackKind::Audio => {
                audio += 1;
                assert!(keyless.decrypt_audio(&frame.data).is_err());
                assert!(guessed.decrypt_audio(&frame.data).is_err());
                opened += usize::from(owner.decrypt_audio(&frame.data).is_ok());
            }
        }
    }
    eprintln!(
        "tapped {video} video and {audio} audio frames; {opened} open with their sender's key"
    );
    assert!(
        video >= 50 && audio >= 50,
        "tapped {video} video, {audio} audio"
    );
    // Frames from before a ratchet need the older key; the rest open.
    assert!(
        opened >= (video + audio) / 2,
        "only {opened} opened with their sender's key"
    );
}
