//! A user with two devices sees incoming messages on both, and what they
//! send from one shows on the other, each once.

use parley_client::Messenger;
use parley_client::vault::KeySource;
use parley_testkit::{TestServer, inbox};

#[tokio::test(flavor = "multi_thread")]
async fn both_devices_receive_and_sent_messages_sync() {
    let server = TestServer::start().await;
    let mut alice = server.register("alice").await;
    let mut bob_phone = server.register("bob").await;
    let (a, b) = (alice.handle().to_string(), bob_phone.handle().to_string());

    let code = bob_phone.create_link_code().await.unwrap();
    let mut bob_laptop = Messenger::link(
        &server.url,
        &server.client_dir("bob-laptop"),
        KeySource::KeyFile,
        &b,
        &code.code,
    )
    .await
    .unwrap();
    assert_eq!(bob_phone.devices_of(&b).await.unwrap().len(), 2);

    let id = alice.send_text(&b, "to both of you").await.unwrap();
    for device in [&mut bob_phone, &mut bob_laptop] {
        let got = inbox(device).await;
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].id.as_str(), got[0].text.as_str()),
            (id.as_str(), "to both of you")
        );
    }

    let reply = bob_laptop
        .send_text(&a, "reply from the laptop")
        .await
        .unwrap();
    let at_alice = inbox(&mut alice).await;
    assert_eq!(at_alice.len(), 1);
    assert_eq!(at_alice[0].id, reply);
    let on_phone = inbox(&mut bob_phone).await;
    assert_eq!(on_phone.len(), 1, "the phone sees what the laptop sent");
    assert_eq!(
        (on_phone[0].from.as_str(), on_phone[0].to.as_str()),
        (b.as_str(), a.as_str())
    );
    assert_eq!(on_phone[0].id, reply);
    assert!(
        inbox(&mut bob_laptop).await.is_empty(),
        "the laptop does not get its own message"
    );

    // A used link code cannot link another device.
    let again = Messenger::link(
        &server.url,
        &server.client_dir("intruder"),
        KeySource::KeyFile,
        &b,
        &code.code,
    )
    .await;
    let err = again.err().expect("a used code is refused").to_string();
    assert!(err.contains("403"), "{err}");
}
