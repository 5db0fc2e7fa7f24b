//! `parley-server --tls-cert --tls-key` serves HTTPS: a client trusting the
//! certificate gets through, one that does not is refused, plain HTTP on
//! the TLS port does not break the server, and a bad pair is a clear error
//! at start.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command};

use crate::common::spawn_server;

/// Writes a self-signed certificate for localhost/127.0.0.1 and its key;
/// returns the certificate's DER for the client's trust store.
fn write_cert_pair(dir: &Path) -> Vec<u8> {
    let pair =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), pair.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), pair.signing_key.serialize_pem()).unwrap();
    pair.cert.der().to_vec()
}

fn start(dir: &Path) -> (Child, String) {
    spawn_server(&[
        OsStr::new("--listen"),
        OsStr::new("127.0.0.1:0"),
        OsStr::new("--data-dir"),
        dir.as_os_str(),
        OsStr::new("--tls-cert"),
        dir.join("cert.pem").as_os_str(),
        OsStr::new("--tls-key"),
        dir.join("key.pem").as_os_str(),
    ])
}

#[test]
fn serves_https_to_clients_that_trust_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let der = write_cert_pair(dir.path());
    let (mut child, url) = start(dir.path());
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (trusted, untrusted) = rt.block_on(async {
        let trusting = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_der(&der).unwrap())
            .build()
            .unwrap();
        let trusted = trusting
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let untrusted = reqwest::get(format!("{url}/healthz")).await;
        (trusted, untrusted)
    });
    assert_eq!(trusted, "ok");
    let err = untrusted.expect_err("a client without the CA must refuse the server");
    assert!(err.is_connect(), "{err:?}");

    // Plain HTTP on the TLS port: the connection fails, the server lives.
    let addr = url.strip_prefix("https://").unwrap();
    let mut plain = std::net::TcpStream::connect(addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(
        !String::from_utf8_lossy(&reply).contains("200 OK"),
        "plain HTTP must not be served on the TLS port"
    );
    let again = rt.block_on(async {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_der(&der).unwrap())
            .build()
            .unwrap()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .map(|r| r.status())
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(again.unwrap(), 200, "still serving after the plain request");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write_cert_pair(dir.path());
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("key.pem"), other.serialize_pem()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_parley-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--tls-cert")
        .arg(dir.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("key.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("do not form a usable pair"), "{err}");
}

#[test]
fn a_missing_certificate_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_parley-server"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--tls-cert", "/nonexistent/cert.pem", "--tls-key"])
        .arg(dir.path().join("key.pem"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reading TLS certificate /nonexistent/cert.pem"),
        "{err}"
    );
}
