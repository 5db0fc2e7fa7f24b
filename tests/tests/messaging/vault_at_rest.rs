//! A device's secrets are sealed at rest: the files hold no plaintext
//! keys or messages, the key file is private, and a wrong passphrase is a
//! clear error.

use std::os::unix::fs::PermissionsExt;

use parley_client::vault::{KEY_FILE, KeySource, STATE_FILE};
use parley_client::{Messenger, MessengerError};
use parley_testkit::{TestServer, inbox, unique};

#[tokio::test(flavor = "multi_thread")]
async fn state_is_sealed_and_a_wrong_passphrase_is_refused() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let handle = unique("bob");
    let dir = server.client_dir(&handle);
    let mut bob = Messenger::register(
        &server.url,
        &dir,
        KeySource::Passphrase("correct horse".into()),
        &handle,
    )
    .await
    .unwrap();
    alice
        .send_text(&handle, "SEALED-MARKER-7731")
        .await
        .unwrap();
    assert_eq!(inbox(&mut bob).await[0].text, "SEALED-MARKER-7731");
    drop(bob);

    let sealed = std::fs::read(dir.join(STATE_FILE)).unwrap();
    let text = String::from_utf8_lossy(&sealed);
    assert!(!text.contains("SEALED-MARKER-7731"));
    assert!(!text.contains(&handle), "even the handle is sealed");
    assert!(
        !dir.join(KEY_FILE).exists(),
        "passphrase vaults have no key file"
    );

    let wrong = Messenger::open(&dir, None, || Some("wrong".into())).await;
    assert!(
        matches!(wrong, Err(MessengerError::Vault(_))),
        "wrong passphrase opened the vault"
    );
    let none = Messenger::open(&dir, None, || None)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(none.contains("PARLEY_PASSPHRASE"), "{none}");
    let reopened = Messenger::open(&dir, None, || Some("correct horse".into()))
        .await
        .unwrap();
    assert_eq!(reopened.handle(), handle);

    // Registering again into a used data dir is refused before the server
    // hears of it.
    let eve = parley_testkit::unique("eve");
    let again = Messenger::register(&server.url, &dir, KeySource::KeyFile, &eve).await;
    assert!(matches!(again, Err(MessengerError::Vault(_))));
    assert!(
        server
            .state
            .store()
            .user_by_handle(&eve)
            .await
            .unwrap()
            .is_none()
    );

    // Key-file vaults keep the key private.
    let alice_dir = server.client_dir(alice.handle());
    let mode = std::fs::metadata(alice_dir.join(KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(alice_dir.join(STATE_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
