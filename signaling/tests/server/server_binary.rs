//! The `parley-server` binary starts on the address it is given, prints
//! where it listens, serves, and refuses a bad database URL with a clear
//! message.

use std::process::Command;

use crate::common::spawn_server;

#[test]
fn starts_prints_its_address_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let (mut child, url) = spawn_server(&["--listen", "127.0.0.1:0", "--data-dir", data_dir]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body = rt.block_on(async {
        reqwest::get(format!("{url}/healthz"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(body, "ok");
    assert!(
        dir.path().join("parley.db").exists(),
        "SQLite file in the data dir"
    );
}

#[test]
fn a_bad_database_url_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_parley-server"))
        .args(["--listen", "127.0.0.1:0", "--db", "mysql://nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported database URL"), "{err}");
}
