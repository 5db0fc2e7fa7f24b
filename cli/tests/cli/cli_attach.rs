//! `parley attach` and `parley inbox --download`: a file goes out
//! encrypted and comes back byte-exact into the download directory.

use crate::common::{parley, start_server};

#[test]
fn cli_attaches_and_downloads_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"), &tmp.path().join("server.log"));
    let suffix = parley_testkit::unique("");
    let (alice, bob) = (format!("alice{suffix}"), format!("bob{suffix}"));
    let dir = |n: &str| tmp.path().join(n);
    parley(&server.url, &dir(&alice), &["register", &alice]);
    parley(&server.url, &dir(&bob), &["register", &bob]);

    let file = tmp.path().join("report.pdf");
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &bytes).unwrap();
    parley(
        &server.url,
        &dir(&alice),
        &["attach", &bob, file.to_str().unwrap()],
    );

    let downloads = tmp.path().join("downloads");
    let out = parley(
        &server.url,
        &dir(&bob),
        &["inbox", "--json", "--download", downloads.to_str().unwrap()],
    );
    let m: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(m["attachment"]["name"], "report.pdf");
    assert_eq!(m["attachment"]["size"], 50_000);
    assert_eq!(std::fs::read(downloads.join("report.pdf")).unwrap(), bytes);

    // Bob's inbox sent a delivery and a read receipt; alice sees both.
    let receipts = parley(
        &server.url,
        &dir(&alice),
        &["inbox", "--json", "--receipts"],
    );
    let kinds: Vec<String> = receipts
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["receipt"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["delivered", "read"], "{receipts}");
}
