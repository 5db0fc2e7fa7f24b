//! The messaging core keeps the server stocked with one-time keys (saving
//! their private halves before the public ones go out) and signs in again
//! only when its token is about to run out.

use parley_client::messenger::core::{
    Method, ONE_TIME_KEY_LOW, ONE_TIME_KEY_TARGET, PublishKeys, SignIn, TOKEN_MARGIN_MS,
};

use crate::in_memory_server::{Did, InMemoryServer};

#[test]
fn one_time_keys_are_topped_up_below_the_low_mark_and_saved_first() {
    let mut server = InMemoryServer::default();
    let mut bob = server.register("bob");
    let device = bob.device_id().to_string();
    assert_eq!(server.one_time_keys(&device) as i64, ONE_TIME_KEY_TARGET);

    // Stocked: a count and nothing more.
    let (_, did) = server.drive(&mut bob, PublishKeys::new());
    assert_eq!(did, vec![Did::Http(Method::Get, "/v1/keys/count".into())]);

    // Claimed down below the low mark: topped up to the target.
    let left = ONE_TIME_KEY_LOW - 5;
    server.take_one_time_keys(&device, (ONE_TIME_KEY_TARGET - left) as usize);
    let (_, did) = server.drive(&mut bob, PublishKeys::new());
    assert_eq!(
        did,
        vec![
            Did::Http(Method::Get, "/v1/keys/count".into()),
            Did::Persist,
            Did::Http(Method::Post, "/v1/keys".into()),
            Did::Persist,
        ]
    );
    assert_eq!(server.one_time_keys(&device) as i64, ONE_TIME_KEY_TARGET);
}

#[test]
fn the_token_is_kept_until_its_margin_and_saved() {
    let mut server = InMemoryServer::default();
    let mut bob = server.register("bob");
    assert_eq!(bob.token(0), None, "no token before signing in");

    let (token, did) = server.drive(&mut bob, SignIn::new());
    assert_eq!(
        did,
        vec![
            Did::Http(Method::Post, "/v1/auth/challenge".into()),
            Did::Http(Method::Post, "/v1/auth/token".into()),
            Did::Persist,
        ]
    );
    let expires_at = InMemoryServer::TOKEN_EXPIRES_AT;
    assert_eq!(bob.token(0), Some(token.as_str()));
    assert_eq!(
        bob.token(expires_at - TOKEN_MARGIN_MS - 1),
        Some(token.as_str())
    );
    assert_eq!(
        bob.token(expires_at - TOKEN_MARGIN_MS),
        None,
        "renewed before it runs out"
    );
}
