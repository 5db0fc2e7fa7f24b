//! The SFU admits only holders of a token it signed, for the room they
//! ask for, before it expires, with an offer it can renegotiate; every
//! refusal says why, and a refused join leaves the SFU serving others.

use std::time::Duration;

use parley_client::call::group_session::{GroupKeys, GroupSession, Publish};
use parley_sfu::{JoinClaims, JoinError, TokenError, TokenKey};
use parley_testkit::sfu_sim::{MemberOptions, RoomSim};

#[test]
fn bad_tokens_and_offers_are_refused_with_a_reason() {
    let mut sim = RoomSim::new(5);
    let (_, offer) = GroupSession::offer(
        sim.now(),
        "10.0.9.9:5000".parse().unwrap(),
        "room-1",
        Publish::Video,
        GroupKeys::SenderKeys,
    )
    .unwrap();
    let unix_now = sim.unix_now();
    let key = sim.key().clone();
    let claims = |room: &str, expires_at| JoinClaims {
        room: room.into(),
        user: "mallory".into(),
        device: "laptop".into(),
        expires_at,
    };
    let mut join = |token: &str, offer: &str| sim.join_raw("room-1", token, offer);

    let expired = key.sign(&claims("room-1", unix_now - 1));
    assert!(matches!(
        join(&expired, &offer),
        Err(JoinError::Token(TokenError::Expired))
    ));

    let foreign = TokenKey::generate().sign(&claims("room-1", unix_now + 60));
    let err = join(&foreign, &offer).unwrap_err();
    assert!(
        matches!(err, JoinError::Token(TokenError::BadSignature)),
        "{err}"
    );
    assert_eq!(err.to_string(), "join token has a bad signature");

    let other_room = key.sign(&claims("room-2", unix_now + 60));
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

    let good = key.sign(&claims("room-1", unix_now + 60));
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
    assert!(sim.users_in("room-1").is_empty());

    // Still serving: two good joins connect and hear each other.
    sim.join("alice", "room-1", MemberOptions::first_picture(0));
    sim.join("bob", "room-1", MemberOptions::first_picture(10_000));
    sim.run_until(Duration::from_secs(20), |sim| {
        sim.member("alice").heard_from("bob") > 10 && sim.member("bob").heard_from("alice") > 10
    });
}
