//! The audio-loss benchmark repeats exactly from its seed, shows FEC
//! beating no protection, and writes the documented JSON rows and its
//! report (CSV, markdown, SVG plots).

use std::process::Command;

use parley_bench::audio_loss::{AudioLossBench, Condition, LossKind, Protection};

fn bench(conditions: Vec<Condition>) -> AudioLossBench {
    AudioLossBench {
        conditions,
        protections: vec![Protection::None, Protection::Plc, Protection::Fec],
        runs: 1,
        seed: 4,
        threads: 2,
    }
}

#[test]
fn same_seed_gives_identical_rows_and_fec_wins_at_20_percent() {
    let speech = parley_media::speech::speech_clip().unwrap();
    let b = bench(vec![Condition {
        kind: LossKind::Random,
        loss_pct: 20,
    }]);
    let first = b.run(&speech, &|_| {}).unwrap();
    let second = b.run(&speech, &|_| {}).unwrap();
    assert_eq!(first, second);

    let pesq = |p| first.iter().find(|r| r.protection == p).unwrap().pesq_wb;
    let (none, plc, fec) = (
        pesq(Protection::None),
        pesq(Protection::Plc),
        pesq(Protection::Fec),
    );
    eprintln!("20 % random loss: none {none:.2}, plc {plc:.2}, fec {fec:.2}");
    assert!(plc > none, "PLC {plc:.2} not above silence {none:.2}");
    assert!(fec >= none + 1.0, "FEC {fec:.2} vs none {none:.2}");
    for row in &first {
        assert!((row.measured_loss_pct - 20.0).abs() < 5.0, "{row:?}");
    }
}

#[test]
fn binary_writes_the_documented_json_rows() {
    let dir = std::env::temp_dir().join(format!("parley-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("rows.json");
    let out = Command::new(env!("CARGO_BIN_EXE_parley-bench"))
        .args([
            "audio-loss",
            "--runs",
            "1",
            "--protections",
            "fec",
            "--json",
        ])
        .arg(&json)
        .arg("--report")
        .arg(dir.join("report"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("| random | 10 |"), "{table}");
    assert!(
        table.contains("target: fec PESQ-WB at 10 % random loss"),
        "{table}"
    );

    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 8, "6 random + 2 gilbert conditions");
    for row in &rows {
        assert!(
            matches!(row["loss_model"].as_str(), Some("random" | "gilbert")),
            "{row}"
        );
        assert_eq!(row["protection"], "fec");
        assert!(row["loss_pct"].as_u64().is_some(), "{row}");
        let pesq = row["pesq_wb"].as_f64().unwrap();
        assert!((1.0..=4.7).contains(&pesq), "{row}");
        assert!(row["concealed_pct"].as_f64().is_some(), "{row}");
    }
    let lossless = &rows[0];
    assert_eq!(lossless["loss_pct"], 0);
    assert!(lossless["pesq_wb"].as_f64().unwrap() > 4.5, "{lossless}");

    // The report: a CSV row per JSON row, the table, a plot per loss model
    // with a line for the protection run.
    let report = dir.join("report");
    let csv = std::fs::read_to_string(report.join("audio-loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + rows.len(), "{csv}");
    assert!(
        csv.lines().nth(1).unwrap().starts_with("random,0,fec,"),
        "{csv}"
    );
    let md = std::fs::read_to_string(report.join("audio-loss.md")).unwrap();
    assert!(md.contains("| random | 40 |"), "{md}");
    for model in ["random", "gilbert"] {
        let svg = std::fs::read_to_string(report.join(format!("audio-loss-{model}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"), "{model}");
        assert!(svg.contains("PESQ-WB"), "{model}");
        assert!(svg.contains("<polyline"), "{model}: no line drawn");
    }
}

#[test]
fn bad_arguments_are_refused_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_parley-bench"))
        .args(["audio-loss", "--protections", "magic"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("magic"));
}
