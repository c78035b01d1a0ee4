//! The `draftr-router` binary with the committed `router.yaml` and `schema/supergraph.graphql`:
//! it starts with no GraphOS key and serves GraphQL, health and Prometheus metrics.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_router_binary_starts_with_the_committed_files_and_no_graphos_key() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let (listen, health, metrics) = (free_addr(), free_addr(), free_addr());
    let child = Command::new(env!("CARGO_BIN_EXE_draftr-router"))
        .current_dir(root)
        .args([
            "--config",
            "router/router.yaml",
            "--supergraph",
            "schema/supergraph.graphql",
        ])
        .env("DRAFTR_ROUTER_LISTEN", &listen)
        .env("DRAFTR_ROUTER_HEALTH_LISTEN", &health)
        .env("DRAFTR_ROUTER_METRICS_LISTEN", &metrics)
        .env("APOLLO_TELEMETRY_DISABLED", "true")
        .env_remove("APOLLO_KEY")
        .env_remove("APOLLO_GRAPH_REF")
        .env_remove("APOLLO_ROUTER_LICENSE")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("draftr-router runs");
    let mut child = Killed(child);

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let probe = client.get(format!("http://{health}/health")).send().await;
        if probe.is_ok_and(|res| res.status().is_success()) {
            break;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("draftr-router exited during start-up: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "draftr-router not healthy within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let res: serde_json::Value = client
        .post(format!("http://{listen}/"))
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(res["data"]["__typename"], "Query", "{res}");

    let scraped = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert!(scraped.status().is_success());
    assert!(
        scraped.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}
