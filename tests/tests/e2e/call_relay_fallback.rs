//! When the two ends of a call cannot reach each other, the call goes
//! through the server's relay. Three network namespaces: the server's,
//! alice's and bob's, each client joined to the server by its own veth
//! pair with the server as default gateway, and the server forwarding
//! nothing (a new namespace's default): alice and bob both reach the
//! server, never each other. The call must connect, carry audio and video
//! both ways, and both ends must report the relayed path.

use std::time::Duration;

use parley_testkit::{NetNs, Process, binary, default_route, link, namespaces_available};

#[test]
fn call_falls_back_to_the_server_relay() {
    let _media = parley_testkit::real_time_media();
    if let Err(why) = namespaces_available() {
        panic!("this test needs network namespaces (run as root with iproute2): {why}");
    }
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let tag = std::process::id() % 10_000;
    let server_ns = NetNs::new(&format!("rs{tag}"));
    let (ns_a, ns_b) = (
        NetNs::new(&format!("ra{tag}")),
        NetNs::new(&format!("rb{tag}")),
    );
    link(&server_ns, "10.79.1.1", &ns_a, "10.79.1.2");
    link(&server_ns, "10.79.2.1", &ns_b, "10.79.2.2");
    default_route(&ns_a, "10.79.1.1");
    default_route(&ns_b, "10.79.2.1");

    let mut command = server_ns.command(binary("parley-server"));
    command
        .args(["--listen", "0.0.0.0:0", "--udp", "0.0.0.0:0", "--data-dir"])
        .arg(dir.join("server"));
    let mut server = Process::spawn("parley-server", command, &dir.join("server.log"));
    let port = |line: String| line.rsplit(':').next().unwrap().trim().to_string();
    let udp = port(server.wait_for("udp://", Duration::from_secs(20)));
    let http = port(server.wait_for("listening on", Duration::from_secs(20)));
    assert!(!udp.is_empty() && !http.is_empty());

    // Each client knows the server by the address on its own link.
    let parley = |ns: &NetNs, server_ip: &str, home: &str, args: &[&str]| {
        let mut command = ns.command(binary("parley"));
        command
            .arg("--server")
            .arg(format!("http://{server_ip}:{http}"))
            .arg("--data-dir")
            .arg(dir.join(home))
            .args(args);
        command
    };
    let a = |args: &[&str]| parley(&ns_a, "10.79.1.1", "alice", args);
    let b = |args: &[&str]| parley(&ns_b, "10.79.2.1", "bob", args);
    for (mut command, handle) in [
        (a(&["register", "alice"]), "alice"),
        (b(&["register", "bob"]), "bob"),
    ] {
        let out = command.output().unwrap();
        assert!(out.status.success(), "register {handle}: {out:?}");
    }

    let media = [
        "--audio-in",
        "speech",
        "--video-in",
        "pattern",
        "--audio-out",
        "null",
    ];
    let stats = |name: &str| dir.join(name).display().to_string();
    let (alice_stats, bob_stats) = (stats("alice.jsonl"), stats("bob.jsonl"));
    let mut listen = vec!["listen", "--answer", "--once", "--stats-json", &bob_stats];
    listen.extend(media);
    let mut bob = Process::spawn("bob", b(&listen), &dir.join("bob.log"));
    bob.wait_for("listening for calls", Duration::from_secs(20));
    let mut call = vec![
        "call",
        "bob",
        "--video",
        "--duration",
        "4",
        "--stats-json",
        &alice_stats,
    ];
    call.extend(media);
    let mut alice = Process::spawn("alice", a(&call), &dir.join("alice.log"));

    let (status, alice_out) = alice.wait(Duration::from_secs(60));
    assert!(status.success(), "alice's call failed:\n{alice_out}");
    let (status, bob_out) = bob.wait(Duration::from_secs(30));
    assert!(status.success(), "bob failed:\n{bob_out}");

    for (name, path) in [("alice", &alice_stats), ("bob", &bob_stats)] {
        let text = std::fs::read_to_string(path).unwrap();
        let summary: serde_json::Value =
            serde_json::from_str(text.lines().last().unwrap()).unwrap();
        eprintln!("{name}: {summary}");
        assert_eq!(summary["connected"], true, "{name}: {summary}");
        assert_eq!(summary["path"], "relay", "{name}: {summary}");
        assert!(
            summary["relayed_datagrams"].as_u64().unwrap() > 100,
            "{name}: {summary}"
        );
        assert!(
            summary["video_frames_decoded"].as_u64().unwrap() > 60,
            "{name}: {summary}"
        );
        assert_eq!(summary["decrypt_failures"], 0, "{name}: {summary}");
    }
    drop(server);
}
