//! `parley loadtest` against a real `parley-server` whose SFU signs tokens
//! with a configured secret: two publishers (Opus + H.264) and three
//! subscribers join, every frame sent in the window reaches everyone else,
//! and the report has packet rate, latency percentiles, and the server
//! process's CPU and memory (found from the SFU's UDP port in /proc). A
//! wrong secret is refused with a clear error.

use std::process::Command;

use parley_testkit::{binary, start_server};

#[test]
fn the_load_generator_measures_a_real_sfu() {
    let _media = parley_testkit::real_time_media();
    let dir = tempfile::tempdir().unwrap();
    let mut server_cmd = Command::new(binary("parley-server"));
    server_cmd
        .args(["--listen", "127.0.0.1:0", "--sfu-token-secret", "s3cret"])
        .arg("--data-dir")
        .arg(dir.path().join("server"));
    let (server, url) = start_server(server_cmd, &dir.path().join("server.log"));

    let report = dir.path().join("load.json");
    let out = Command::new(binary("parley"))
        .args(["loadtest", "--sfu", &url, "--token-secret", "s3cret"])
        .args([
            "--publishers",
            "2",
            "--subscribers",
            "3",
            "--duration",
            "3",
            "--video",
        ])
        .arg("--json")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("forwarded pkt/s"), "{table}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    eprintln!("{r}");
    let num = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    // 2 publishers x (50 audio + 30 video frames/s) x 3 s, to 4 others.
    assert!(num("frames_sent") >= 400.0, "{r}");
    assert!(num("loss_pct") < 1.0, "{r}");
    assert!(num("forwarded_pps") > 500.0, "{r}");
    assert!(num("forwarded_kbps") > 1000.0, "{r}");
    let (p50, p99, p999) = (
        num("latency_ms_p50"),
        num("latency_ms_p99"),
        num("latency_ms_p999"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{r}");
    assert!(num("sfu_cpu_pct") > 0.0, "{r}");
    assert!(num("sfu_rss_mib") > 1.0, "{r}");

    let out = Command::new(binary("parley"))
        .args(["loadtest", "--sfu", &url, "--token-secret", "wrong"])
        .args(["--publishers", "1", "--subscribers", "1", "--duration", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403"), "{err}");
    drop(server);
}
