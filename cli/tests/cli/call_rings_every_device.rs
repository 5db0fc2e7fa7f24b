//! A call rings every device of the callee (one offer each, each with its
//! own media secret); the first to answer gets the call and the others
//! are told it was answered on another device and stop ringing.

use std::time::Duration;

use crate::common::{parley, spawn, start_server};

#[test]
fn first_device_to_answer_wins_and_the_other_stops_ringing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"), &tmp.path().join("server.log"));
    let tag = std::process::id();
    let (alice, bob) = (format!("alice-{tag}"), format!("bob-{tag}"));
    let alice_dir = tmp.path().join("alice");
    let (phone, laptop) = (tmp.path().join("bob-phone"), tmp.path().join("bob-laptop"));
    parley(&server.url, &alice_dir, &["register", &alice]);
    parley(&server.url, &phone, &["register", &bob]);
    let out = parley(&server.url, &phone, &["link"]);
    let code = out.split_whitespace().last().unwrap();
    parley(&server.url, &laptop, &["link", "--join", &bob, code]);
    let media = ["--audio-in", "speech", "--audio-out", "null"];

    // The laptop only rings (stdin is not a terminal, no --answer); the
    // phone answers.
    let mut ring_only = vec!["listen", "--once"];
    ring_only.extend(media);
    let mut laptop_run = spawn("laptop", &server.url, &laptop, &ring_only);
    laptop_run.wait_for("listening for calls", Duration::from_secs(20));
    let mut answer = vec!["listen", "--answer", "--once"];
    answer.extend(media);
    let mut phone_run = spawn("phone", &server.url, &phone, &answer);
    phone_run.wait_for("listening for calls", Duration::from_secs(20));

    let mut call = vec!["call", bob.as_str(), "--duration", "2"];
    call.extend(media);
    let mut caller = spawn("alice", &server.url, &alice_dir, &call);
    let (status, out) = caller.wait(Duration::from_secs(60));
    assert!(status.success(), "{out}");
    assert!(
        out.contains("(2 device(s))"),
        "both devices are offered: {out}"
    );
    assert!(out.contains(&format!("connected to {bob}")), "{out}");

    let (status, out) = laptop_run.wait(Duration::from_secs(20));
    assert!(status.success(), "{out}");
    assert!(
        out.contains(&format!("incoming voice call from {alice}")),
        "the laptop rang: {out}"
    );
    assert!(out.contains("ended: answered on another device"), "{out}");
    assert!(!out.contains("connected to"), "{out}");
    let (status, out) = phone_run.wait(Duration::from_secs(20));
    assert!(status.success(), "{out}");
    assert!(out.contains(&format!("connected to {alice}")), "{out}");
}
