//! The router itself: the committed configuration and supergraph, request ids, health.

use std::collections::BTreeMap;
use std::path::PathBuf;

use draftr_common::testing::Backend;
use draftr_router::embed::{EmbeddedRouter, Overrides, config_with};
use serde_json::json;

use crate::helpers::{PASSWORD, spawn};

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_config_and_supergraph_start_without_a_graphos_key_and_resolve_users() {
    assert!(
        std::env::var_os("APOLLO_KEY").is_none()
            && std::env::var_os("APOLLO_ROUTER_LICENSE").is_none()
    );
    let app = spawn(Backend::Sqlite).await;
    // Only the addresses differ from the committed files.
    let overrides = Overrides {
        listen: "127.0.0.1:0".into(),
        subgraph_urls: BTreeMap::from([("auth".into(), app.auth_url.clone())]),
    };
    let config = config_with(&repo_file("router/router.yaml"), &overrides).unwrap();
    let router = EmbeddedRouter::start(&config, repo_file("schema/supergraph.graphql"))
        .await
        .expect("router starts");

    let client = reqwest::Client::new();
    let register = client
        .post(router.url())
        .json(&json!({
            "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
            "variables": { "i": { "email": "committed@example.com", "password": PASSWORD, "displayName": "Cora" } }
        }))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let token = register["data"]["register"]["accessToken"]
        .as_str()
        .unwrap_or_else(|| panic!("{register}"));
    let me = client
        .post(router.url())
        .bearer_auth(token)
        .json(&json!({ "query": "{ me { id email displayName role createdAt } }" }))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(me["data"]["me"]["email"], "committed@example.com", "{me}");
    assert_eq!(me["data"]["me"]["displayName"], "Cora");
    assert_eq!(me["data"]["me"]["role"], "GUEST");
    router.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_reaches_every_subgraph_and_comes_back() {
    let app = spawn(Backend::Sqlite).await;
    let q = "{ probeRequestId }";

    let given = app
        .post(
            &app.router_url,
            q,
            json!({}),
            None,
            &[("x-request-id", "client-req-42")],
        )
        .await;
    assert_eq!(given.ok()["probeRequestId"], "client-req-42");
    assert_eq!(given.headers["x-request-id"], "client-req-42");

    let made = app.post(&app.router_url, q, json!({}), None, &[]).await;
    let id = made.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(made.ok()["probeRequestId"], id.as_str());

    let hostile = app
        .post(
            &app.router_url,
            q,
            json!({}),
            None,
            &[("x-request-id", "evil id\twith tab")],
        )
        .await;
    assert_ne!(hostile.ok()["probeRequestId"], "evil id\twith tab");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_jwks_answer() {
    let app = spawn(Backend::Sqlite).await;
    let get = |url: String| async move { reqwest::get(url).await.unwrap() };

    assert!(
        get(format!("http://{}/health", app.router().addr))
            .await
            .status()
            .is_success()
    );
    assert!(
        get(format!("{}health", app.auth_url))
            .await
            .status()
            .is_success()
    );
    assert!(
        get(format!("{}ready", app.auth_url))
            .await
            .status()
            .is_success()
    );

    let jwks: serde_json::Value = get(format!("{}.well-known/jwks.json", app.auth_url))
        .await
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert!(
        key.get("d").is_none(),
        "the JWKS must never carry the private key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simple_cross_site_request_is_refused_by_csrf_prevention() {
    let app = spawn(Backend::Sqlite).await;
    let res = reqwest::Client::new()
        .get(format!("{}?query=%7Bme%7Bid%7D%7D", app.router_url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_is_refused_before_any_subgraph_sees_it() {
    let app = spawn(Backend::Sqlite).await;
    let padding = "x".repeat(3_000_000);
    let res = reqwest::Client::new()
        .post(&app.router_url)
        .json(&json!({ "query": "{ me { id } }", "variables": { "padding": padding } }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
}
