//! `parley chat`: lines on stdin are sent, messages already waiting from
//! the other side are shown (others marked as another chat's), and end of
//! input ends the chat.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::{parley, start_server};

#[test]
fn chat_shows_the_conversation_and_sends_each_line() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"), &tmp.path().join("server.log"));
    let suffix = parley_testkit::unique("");
    let (alice, bob, carol) = (
        format!("alice{suffix}"),
        format!("bob{suffix}"),
        format!("carol{suffix}"),
    );
    let dir = |n: &str| tmp.path().join(n);
    for who in [&alice, &bob, &carol] {
        parley(&server.url, &dir(who), &["register", who]);
    }
    parley(&server.url, &dir(&alice), &["send", &bob, "are you there?"]);
    parley(
        &server.url,
        &dir(&carol),
        &["send", &bob, "not part of this chat"],
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_parley"))
        .arg("--server")
        .arg(&server.url)
        .arg("--data-dir")
        .arg(dir(&bob))
        .args(["chat", &alice])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "yes, here").unwrap();
    writeln!(stdin).unwrap(); // empty lines are not sent
    writeln!(stdin, "and again").unwrap();
    drop(stdin); // end of input
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(
        shown.contains(&format!("[{alice}] are you there?")),
        "{shown}"
    );
    // A message from another conversation is shown, marked, not dropped.
    assert!(
        shown.contains(&format!("(other chat) [{carol}] not part of this chat")),
        "{shown}"
    );

    let at_alice = parley(&server.url, &dir(&alice), &["inbox", "--json"]);
    let texts: Vec<String> = at_alice
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(texts, ["yes, here", "and again"]);
}
