//! Messaging over HTTPS and WSS: clients that trust the server's CA
//! (SDK `Endpoint::with_ca_*`, CLI `--ca-cert`) register, send and receive
//! through a TLS-only server; a client without it is refused with a clear
//! error.

use std::path::Path;

use parley_client::vault::KeySource;
use parley_client::{Endpoint, Messenger, MessengerError};
use parley_signaling::server::Server;
use parley_signaling::tls;
use parley_testkit::{inbox, unique};

/// A TLS-only server with a fresh self-signed certificate; returns its URL
/// and the certificate's path.
async fn start_tls_server(dir: &Path) -> (String, std::path::PathBuf) {
    let pair = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    let server = Server::builder()
        .data_dir(dir.join("server"))
        .tls(Some(tls::load_server_config(&cert, &key).unwrap()))
        .start()
        .await
        .unwrap();
    let url = server.url().to_string();
    assert!(url.starts_with("https://"), "{url}");
    (url, cert)
}

#[tokio::test]
async fn sdk_messages_travel_over_https_and_wss() {
    let dir = tempfile::tempdir().unwrap();
    let (url, cert) = start_tls_server(dir.path()).await;
    let server = Endpoint::new(url.as_str()).with_ca_file(&cert).unwrap();

    let (alice_name, bob_name) = (unique("alice"), unique("bob"));
    let mut alice = Messenger::register(
        &server,
        &dir.path().join("alice"),
        KeySource::KeyFile,
        &alice_name,
    )
    .await
    .unwrap();
    let bob_dir = dir.path().join("bob");
    Messenger::register(&server, &bob_dir, KeySource::KeyFile, &bob_name)
        .await
        .unwrap();
    alice.send_text(&bob_name, "over tls").await.unwrap();

    // Reopened from disk with the same trust: receiving uses the websocket.
    let mut bob = Messenger::open(&bob_dir, Some(server.clone()), || None)
        .await
        .unwrap();
    let got = inbox(&mut bob).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text, "over tls");
    assert_eq!(got[0].from, alice_name);
}

#[tokio::test]
async fn a_client_without_the_ca_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _cert) = start_tls_server(dir.path()).await;
    let err = Messenger::register(
        url.as_str(),
        &dir.path().join("eve"),
        KeySource::KeyFile,
        &unique("eve"),
    )
    .await
    .err()
    .expect("an untrusted certificate must fail registration");
    assert!(
        matches!(err, MessengerError::Unreachable { .. }),
        "unexpected error {err:?}"
    );

    let bad_ca = dir.path().join("not-a-cert.pem");
    std::fs::write(&bad_ca, "hello").unwrap();
    let err = Endpoint::new(url.as_str())
        .with_ca_file(&bad_ca)
        .unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}

#[tokio::test]
async fn cli_ca_cert_flag_reaches_a_tls_server() {
    let dir = tempfile::tempdir().unwrap();
    let (url, cert) = start_tls_server(dir.path()).await;
    let (alice, bob) = (unique("alice"), unique("bob"));
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    let cert = cert.to_str().unwrap().to_string();
    let run = move |data: std::path::PathBuf, args: Vec<String>| {
        let url = url.clone();
        let cert = cert.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--ca-cert".to_string(), cert];
            all.extend(args);
            let all: Vec<&str> = all.iter().map(String::as_str).collect();
            crate::common::parley(&url, &data, &all)
        })
    };
    run(alice_dir.clone(), vec!["register".into(), alice.clone()])
        .await
        .unwrap();
    run(bob_dir.clone(), vec!["register".into(), bob.clone()])
        .await
        .unwrap();
    run(
        alice_dir,
        vec!["send".into(), bob.clone(), "hello over tls".into()],
    )
    .await
    .unwrap();
    let out = run(bob_dir, vec!["inbox".into(), "--json".into()])
        .await
        .unwrap();
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(line["text"], "hello over tls");
    assert_eq!(line["from"], alice);
}
