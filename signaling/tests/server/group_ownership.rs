//! A group whose owner leaves passes to its longest-standing member, who
//! can manage it; the old owner, added back, is a member like any other.
//! (An owner's leaving used to leave the group unmanageable, and re-adding
//! the ex-owner restored their powers.)

use parley_signaling::ServerConfig;
use parley_wire::api::{AddMember, CreateGroup, GroupInfo};

use crate::device::{Device, refusal, start};

async fn ok(response: reqwest::Response) -> GroupInfo {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn ownership_passes_on_and_is_not_regained() {
    let (server, _dir) = start(ServerConfig::default()).await;
    let alice = Device::register(server.url(), "alice").await;
    let bob = Device::register(server.url(), "bob").await;
    let carol = Device::register(server.url(), "carol").await;
    let dave = Device::register(server.url(), "dave").await;
    let (ta, tb, tc) = (alice.token().await, bob.token().await, carol.token().await);
    let http = alice.http();

    let create = CreateGroup {
        name: "hikers".into(),
    };
    let group = ok(http
        .post(alice.at("/v1/groups"))
        .bearer_auth(&ta)
        .json(&create)
        .send()
        .await
        .unwrap())
    .await;
    let members = alice.at(&format!("/v1/groups/{}/members", group.group_id));
    let add = async |token: &str, who: &Device| {
        let body = AddMember {
            handle: who.handle.clone(),
        };
        http.post(&members)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    let remove = async |token: &str, who: &Device| {
        http.delete(format!("{members}/{}", who.handle))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    };
    ok(add(&ta, &bob).await).await;
    // Later than bob, so bob is the longest-standing after alice.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    ok(add(&ta, &carol).await).await;

    let group = ok(remove(&ta, &alice).await).await;
    assert_eq!(group.owner, bob.handle, "the longest-standing member");

    // Bob manages it: adds dave, removes carol.
    ok(add(&tb, &dave).await).await;
    let group = ok(remove(&tb, &carol).await).await;
    assert!(!group.members.contains(&carol.handle));

    // Alice, added back, is a member and nothing more.
    ok(add(&tb, &alice).await).await;
    ok(add(&tb, &carol).await).await;
    assert_eq!(refusal(remove(&ta, &carol).await).await.0, 403);
    let group = ok(remove(&tc, &carol).await).await;
    assert_eq!(group.owner, bob.handle);
}
