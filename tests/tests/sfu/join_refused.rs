//! The SFU admits only holders of a token it signed, for the room they
//! ask for, before it expires, with an offer it can renegotiate; every
//! refusal says why, and a refused join leaves the SFU serving others.

use std::time::Duration;

use crate::common::{TestPeer, TestSfu, drive, unix_now};
use parley_sfu::{JoinClaims, JoinError, TokenError, TokenKey};

#[test]
fn bad_tokens_and_offers_are_refused_with_a_reason() {
    let sfu = TestSfu::start(|_| {});
    let (_, offer) = TestPeer::offer("mallory", 0);
    let claims = |room: &str, expires_at| JoinClaims {
        room: room.into(),
        user: "mallory".into(),
        device: "laptop".into(),
        expires_at,
    };
    let join = |token: &str, offer: &str| {
        sfu.runtime
            .block_on(sfu.handle.join("room-1", token, offer))
            .expect("SFU running")
    };

    let expired = sfu.key.sign(&claims("room-1", unix_now() - 1));
    assert!(matches!(
        join(&expired, &offer),
        Err(JoinError::Token(TokenError::Expired))
    ));

    let foreign = TokenKey::generate().sign(&claims("room-1", unix_now() + 60));
    let err = join(&foreign, &offer).unwrap_err();
    assert!(
        matches!(err, JoinError::Token(TokenError::BadSignature)),
        "{err}"
    );
    assert_eq!(err.to_string(), "join token has a bad signature");

    let other_room = sfu.key.sign(&claims("room-2", unix_now() + 60));
    assert!(matches!(
        join(&other_room, &offer),
        Err(JoinError::WrongRoom)
    ));

    for garbage in ["", "x", "a.b.c", "eyJ9.AAAA"] {
        assert!(
            matches!(join(garbage, &offer), Err(JoinError::Token(_))),
            "{garbage:?}"
        );
    }

    let good = sfu.key.sign(&claims("room-1", unix_now() + 60));
    let no_channel: String = offer
        .split_inclusive("\r\n")
        .take_while(|l| !l.starts_with("m=application"))
        .collect();
    assert!(matches!(
        join(&good, &no_channel),
        Err(JoinError::NoDataChannel)
    ));
    let err = join(&good, "v=0\r\nm=application nonsense\r\n").unwrap_err();
    assert!(matches!(err, JoinError::Sdp(_)), "{err}");
    assert!(sfu.participants("room-1").is_empty());

    // Still serving: two good joins connect and hear each other.
    let (mut alice, offer) = TestPeer::offer("alice", 0);
    sfu.join(&mut alice, "room-1", &offer);
    let (mut bob, offer) = TestPeer::offer("bob", 10_000);
    sfu.join(&mut bob, "room-1", &offer);
    drive(&mut [&mut alice, &mut bob], Duration::from_secs(20), |p| {
        p[0].from("bob").audio_frames > 10 && p[1].from("alice").audio_frames > 10
    });
}
