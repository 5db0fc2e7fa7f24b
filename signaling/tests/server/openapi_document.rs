//! `/openapi.json` describes every route the server answers, with the
//! shared error schema and bearer security, so third-party apps (a bot is
//! a device like any other) can generate a client from it.

use std::collections::BTreeSet;

use parley_signaling::ServerConfig;

use crate::device::start;

#[tokio::test(flavor = "multi_thread")]
async fn the_document_lists_every_route_with_schemas() {
    let (server, _dir) = start(ServerConfig::default()).await;
    let doc: serde_json::Value = reqwest::get(format!("{}/openapi.json", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let routes: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    let expected: BTreeSet<String> = [
        "GET /healthz",
        "GET /metrics",
        "POST /v1/register",
        "POST /v1/auth/challenge",
        "POST /v1/auth/token",
        "POST /v1/calls/relay",
        "POST /v1/link-codes",
        "POST /v1/devices",
        "POST /v1/keys",
        "GET /v1/keys/count",
        "POST /v1/keys/claim",
        "GET /v1/users/{handle}/devices",
        "POST /v1/messages",
        "GET /v1/devices/{device_id}/messages",
        "POST /v1/devices/{device_id}/messages/ack",
        "POST /v1/groups",
        "GET /v1/groups",
        "GET /v1/groups/{group_id}",
        "POST /v1/groups/{group_id}/members",
        "DELETE /v1/groups/{group_id}/members/{handle}",
        "POST /v1/groups/{group_id}/call",
        "POST /v1/sfu/join",
        "POST /v1/demo/join",
        "POST /v1/attachments",
        "GET /v1/attachments/{id}",
        "GET /v1/ws",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(routes, expected);

    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "ErrorBody",
        "RegisterRequest",
        "Envelope",
        "OutgoingEnvelope",
        "GroupInfo",
    ] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    let register = &doc["paths"]["/v1/register"]["post"];
    assert!(
        register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("RegisterRequest")
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let send = &doc["paths"]["/v1/messages"]["post"];
    assert!(send["security"].to_string().contains("bearer"), "{send}");

    // Every documented route exists on the server: none answers with the
    // router's "no such route".
    let http = reqwest::Client::new();
    for route in &expected {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path
            .replace("{handle}", "nobody")
            .replace("{device_id}", "x")
            .replace("{group_id}", "x")
            .replace("{id}", "x");
        let r = http
            .request(method.parse().unwrap(), format!("{}{path}", server.url()))
            .send()
            .await
            .unwrap();
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("no such route"),
            "{route} is documented but not served"
        );
    }
}
