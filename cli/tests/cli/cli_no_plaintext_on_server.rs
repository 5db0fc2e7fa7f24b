//! Two real `parley` CLIs exchange a marker message through a server
//! logging at debug level; the server's database files and its log never
//! contain it, and `inbox --json` prints the documented fields. The CLI
//! runs with stdin closed and never waits for input.

use std::path::{Path, PathBuf};

use crate::common::{parley, start_server};

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hits.extend(files_containing(&path, needle));
        } else if std::fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            hits.push(path);
        }
    }
    hits
}

#[test]
fn server_database_and_logs_never_hold_the_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("server"), tmp.path().join("server.log"));
    let server = start_server(&data, &log);
    let suffix = &parley_testkit::unique("marker");
    let (alice, bob) = (format!("alice-{suffix}"), format!("bob-{suffix}"));
    let (alice_dir, bob_dir) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let marker = format!("PLAINTEXT-MARKER-{suffix}");

    parley(&server.url, &alice_dir, &["register", &alice]);
    parley(&server.url, &bob_dir, &["register", &bob]);
    let sent = parley(&server.url, &alice_dir, &["send", &bob, &marker]);
    assert!(sent.starts_with("sent "), "{sent}");

    // Stored on the server, not yet delivered: the ciphertext is there,
    // the plaintext is not.
    let hits = files_containing(&data, marker.as_bytes());
    assert!(hits.is_empty(), "plaintext in {hits:?}");

    let inbox = parley(&server.url, &bob_dir, &["inbox", "--json"]);
    let lines: Vec<serde_json::Value> = inbox
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{inbox}");
    let m = &lines[0];
    assert_eq!(m["text"], marker.as_str());
    assert_eq!(m["from"], alice.as_str());
    assert!(m["group"].is_null());
    assert!(m["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(m["sent_at"].as_i64().is_some_and(|t| t > 0));
    assert_eq!(
        parley(&server.url, &bob_dir, &["inbox", "--json"]),
        "",
        "acked: nothing twice"
    );

    drop(server);
    // Let the server's last log lines reach the file.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("registered"),
        "the server did log: {log_text}"
    );
    assert!(!log_text.contains(&marker), "plaintext in the server log");
    let hits = files_containing(&data, marker.as_bytes());
    assert!(hits.is_empty(), "plaintext in {hits:?}");
    // Nor in either client's sealed state.
    assert!(files_containing(&alice_dir, marker.as_bytes()).is_empty());
    assert!(files_containing(&bob_dir, marker.as_bytes()).is_empty());
}
