//! The CLI's group commands: create, add, send by group name, and the
//! group in `inbox --json`.

use crate::common::{parley, start_server};

#[test]
fn cli_creates_a_group_and_members_read_its_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let server = start_server(&tmp.path().join("server"), &tmp.path().join("server.log"));
    let suffix = parley_testkit::unique("");
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(|n| format!("{n}{suffix}"));
    let dir = |n: &str| tmp.path().join(n);
    for who in [&alice, &bob, &carol] {
        parley(&server.url, &dir(who), &["register", who]);
    }
    let created = parley(&server.url, &dir(&alice), &["group", "create", "hikers"]);
    assert!(created.starts_with("created group hikers ("), "{created}");
    parley(&server.url, &dir(&alice), &["group", "add", "hikers", &bob]);
    let members = parley(
        &server.url,
        &dir(&alice),
        &["group", "add", "hikers", &carol],
    );
    assert!(
        members.contains(&bob) && members.contains(&carol),
        "{members}"
    );

    parley(
        &server.url,
        &dir(&alice),
        &["send", "hikers", "summit at noon"],
    );
    for who in [&bob, &carol] {
        let out = parley(&server.url, &dir(who), &["inbox", "--json"]);
        let m: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(m["text"], "summit at noon");
        assert_eq!(m["from"], alice.as_str());
        assert!(
            m["group"].as_str().is_some_and(|g| created.contains(g)),
            "{m}"
        );
    }
    let list = parley(&server.url, &dir(&bob), &["group", "list"]);
    assert!(list.starts_with("hikers ("), "{list}");

    parley(
        &server.url,
        &dir(&alice),
        &["group", "remove", "hikers", &carol],
    );
    parley(
        &server.url,
        &dir(&alice),
        &["send", "hikers", "carol is out"],
    );
    assert_eq!(parley(&server.url, &dir(&carol), &["inbox"]), "");
    assert!(parley(&server.url, &dir(&bob), &["inbox"]).contains("carol is out"));
}
