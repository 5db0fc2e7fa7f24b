//! Joining a group's call: members get a join token for the group's room
//! on the server's SFU, others do not; the join route hands a real str0m
//! offer to the SFU and returns its answer, and refuses a token the SFU did
//! not sign or an offer it cannot use, saying why.

use std::time::Instant;

use parley_client::MessengerError;
use parley_signaling::ServerConfig;
use parley_testkit::TestServer;
use str0m::media::{Direction, MediaKind};

fn offer() -> String {
    let mut rtc = parley_rtc::build(parley_rtc::Role::GroupParticipant, Instant::now());
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
    change.add_channel(parley_wire::sfu::CHANNEL_LABEL.to_string());
    change.apply().unwrap().0.to_sdp_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn members_join_the_group_call_others_are_refused() {
    let server = TestServer::with_sfu(ServerConfig::default()).await;
    let public = server.server().sfu_addr().expect("the server runs an SFU");
    let sfu = server.state.config().sfu.as_ref().unwrap().sfu.clone();
    let mut alice = server.register("alice").await;
    let mut bob = server.register("bob").await;
    let mut carol = server.register("carol").await;
    let group = alice.create_group("standup").await.unwrap();
    let g = group.group_id.clone();
    alice.add_member(&g, bob.handle()).await.unwrap();

    let err = carol.group_call(&g).await.unwrap_err();
    assert!(
        matches!(err, MessengerError::Refused { status: 404, .. }),
        "a non-member: {err}"
    );

    let grant = alice.group_call(&g).await.unwrap();
    assert_eq!(grant.room, g);
    assert_eq!(grant.sfu_addr, public.to_string());
    let answer = alice
        .sfu_join(&grant.room, &grant.token, &offer())
        .await
        .unwrap();
    assert!(
        answer.contains(&format!("{} {} typ host", public.ip(), public.port())),
        "the answer offers the SFU's socket:\n{answer}"
    );
    let inside = sfu.participants(&g).await.unwrap();
    assert_eq!(inside.len(), 1);
    assert_eq!(inside[0].user, alice.handle());
    assert_eq!(inside[0].device, alice.device_id());

    // Bob's token is his, and for this room only.
    let bob_grant = bob.group_call(&g).await.unwrap();
    let err = bob
        .sfu_join("another-room", &bob_grant.token, &offer())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MessengerError::Refused { status: 403, message, .. } if message.contains("another room")),
        "{err}"
    );
    let forged = format!("{}x", bob_grant.token);
    let err = bob.sfu_join(&g, &forged, &offer()).await.unwrap_err();
    assert!(
        matches!(&err, MessengerError::Refused { status: 403, message, .. } if message.contains("signature") || message.contains("malformed")),
        "{err}"
    );
    let err = bob
        .sfu_join(&g, &bob_grant.token, "v=0\r\n")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MessengerError::Refused { status: 400, message, .. } if message.contains("data channel")),
        "{err}"
    );
    assert_eq!(sfu.participants(&g).await.unwrap().len(), 1);
}
