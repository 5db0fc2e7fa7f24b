//! Ctrl-C during a call hangs up cleanly: the caller's `parley call`
//! exits successfully saying it hung up, and the callee sees the hangup
//! (an E2E signal, not a media timeout) and ends its call too.

use std::time::Duration;

use crate::common::{parley, spawn, start_server};

#[test]
fn ctrl_c_hangs_up_and_the_other_side_sees_it() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"), &tmp.path().join("server.log"));
    let tag = std::process::id();
    let (alice, bob) = (format!("alice-{tag}"), format!("bob-{tag}"));
    let (alice_dir, bob_dir) = (tmp.path().join("alice"), tmp.path().join("bob"));
    parley(&server.url, &alice_dir, &["register", &alice]);
    parley(&server.url, &bob_dir, &["register", &bob]);
    let media = ["--audio-in", "speech", "--audio-out", "null"];

    let mut listen = vec!["listen", "--answer", "--once"];
    listen.extend(media);
    let mut callee = spawn("bob", &server.url, &bob_dir, &listen);
    callee.wait_for("listening for calls", Duration::from_secs(20));
    let mut call = vec!["call", bob.as_str()];
    call.extend(media);
    let mut caller = spawn("alice", &server.url, &alice_dir, &call);
    caller.wait_for(&format!("connected to {bob}"), Duration::from_secs(30));
    // A second of media, then Ctrl-C.
    caller.wait_for("rtt", Duration::from_secs(10));
    caller.interrupt();

    let (status, out) = caller.wait(Duration::from_secs(20));
    assert!(status.success(), "the caller must exit cleanly:\n{out}");
    assert!(out.contains("ended: you hung up"), "{out}");
    let (status, out) = callee.wait(Duration::from_secs(20));
    assert!(status.success(), "{out}");
    assert!(out.contains("ended: the other side hung up"), "{out}");
}
