//! A server that rewrites a call offer on its way (to swap the DTLS
//! fingerprint or the media secret for its own) cannot make the call
//! happen: the offer travels inside Olm, so the rewritten envelope no
//! longer decrypts. Here the server's own database is edited while the
//! callee is offline, as a malicious server would; the callee reports the
//! altered envelope, never rings, and the caller's call ends unanswered.
//!
//! (What would happen if a wrong secret or fingerprint did reach a callee
//! is `call_tampered_keys.rs`: no connection, or nothing decrypts, and
//! the run says why.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{parley, start_server};
use sqlx::Row;

#[tokio::test(flavor = "multi_thread")]
async fn rewritten_offer_is_reported_and_never_connects() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, log) = (tmp.path().join("server"), tmp.path().join("server.log"));
    let server = start_server(&data, &log);
    let tag = std::process::id();
    let (alice, bob) = (format!("alice-{tag}"), format!("bob-{tag}"));
    let (alice_dir, bob_dir) = (tmp.path().join("alice"), tmp.path().join("bob"));
    parley(&server.url, &alice_dir, &["register", &alice]);
    parley(&server.url, &bob_dir, &["register", &bob]);

    // Alice calls; bob is offline, so the offer waits on the server.
    let caller = Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("--server")
        .arg(&server.url)
        .arg("--data-dir")
        .arg(&alice_dir)
        .args(["call", &bob, "--ring-timeout", "6"])
        .args(["--audio-in", "speech", "--audio-out", "null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The server rewrites the stored offer.
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", data.join("parley.db").display()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let (seq, mut ciphertext) = loop {
        let row = sqlx::query(
            "SELECT e.seq, e.ciphertext FROM envelopes e \
             JOIN devices d ON d.id = e.to_device JOIN users u ON u.id = d.user_id \
             WHERE u.handle = ? ORDER BY e.seq LIMIT 1",
        )
        .bind(&bob)
        .fetch_optional(&db)
        .await
        .unwrap();
        if let Some(row) = row {
            break (row.get::<i64, _>(0), row.get::<Vec<u8>, _>(1));
        }
        assert!(
            Instant::now() < deadline,
            "the offer never reached the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let middle = ciphertext.len() / 2;
    // A different base64 letter: still well-formed, different content.
    ciphertext[middle] = if ciphertext[middle] == b'A' {
        b'B'
    } else {
        b'A'
    };
    sqlx::query("UPDATE envelopes SET ciphertext = ? WHERE seq = ?")
        .bind(&ciphertext)
        .bind(seq)
        .execute(&db)
        .await
        .unwrap();

    let out = tokio::task::spawn_blocking(move || caller.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let caller_err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the call must not connect:\n{caller_err}"
    );
    assert!(caller_err.contains("no answer"), "{caller_err}");
    assert!(!caller_err.contains("connected to"), "{caller_err}");

    // Bob comes online, auto-answering: nothing rings, and he is told why.
    let mut callee = Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("--server")
        .arg(&server.url)
        .arg("--data-dir")
        .arg(&bob_dir)
        .args([
            "listen",
            "--answer",
            "--audio-in",
            "speech",
            "--audio-out",
            "null",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = callee.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen
        .iter()
        .any(|l: &String| l.contains("does not decrypt and was dropped"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "the callee never reported the altered offer:\n{}",
                seen.join("\n")
            ),
        }
    }
    // Give a wrongly accepted call time to show itself.
    std::thread::sleep(Duration::from_secs(1));
    seen.extend(rx.try_iter());
    let _ = callee.kill();
    let _ = callee.wait();
    let text = seen.join("\n");
    assert!(text.contains(&alice), "the report names the sender: {text}");
    assert!(
        !text.contains("incoming"),
        "an altered offer must not ring: {text}"
    );
    assert!(!text.contains("connected to"), "{text}");
}
