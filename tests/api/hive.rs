//! A federated subscription end to end through an open-source federation gateway: Hive
//! Gateway (MIT, from npm, pinned in `tests/hive-gateway/`) runs the composed supergraph,
//! subscribes to notifications over graphql-ws, and resolves `reservation { property { title } }`
//! from reservations and catalog for each pushed event. `scripts/test` installs it once into
//! `$HOME/.cache/draftr/hive` (override with `DRAFTR_HIVE_GATEWAY_DIR`).

use std::path::PathBuf;
use std::time::Duration;

use draftr_common::testing::Backend;
use draftr_router::compose::compose;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::booking::{book, booking, new_listing};
use crate::helpers::{spawn, wait_until};

fn hive_dir() -> PathBuf {
    std::env::var("DRAFTR_HIVE_GATEWAY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/draftr/hive")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_federated_subscription_through_hive_gateway_resolves_the_property_title() {
    let hive = hive_dir().join("node_modules/.bin/hive-gateway");
    assert!(
        hive.exists(),
        "Hive Gateway is not installed at {}: run scripts/test (it installs tests/hive-gateway with npm)",
        hive.display()
    );
    let app = spawn(Backend::Postgres).await;
    let supergraph = compose(&draftr::schema::subgraphs_at(&app.subgraph_urls())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("supergraph.graphql"), supergraph).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/hive-gateway/gateway.config.mjs"
        ),
        dir.path().join("gateway.config.mjs"),
    )
    .unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let _gateway = tokio::process::Command::new(&hive)
        .args([
            "supergraph",
            "supergraph.graphql",
            "--port",
            &port.to_string(),
            "--host",
            "127.0.0.1",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("hive-gateway starts");
    let gateway = format!("http://127.0.0.1:{port}/graphql");
    wait_until(
        "Hive Gateway to come up",
        Duration::from_secs(60),
        async || {
            let up = app
                .client
                .post(&gateway)
                .json(&json!({ "query": "{ __typename }" }))
                .send()
                .await;
            up.is_ok_and(|r| r.status().is_success())
        },
    )
    .await;

    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    // Subscribe through the gateway (server-sent events to the client; graphql-ws from the
    // gateway to notifications).
    let response = app
        .client
        .post(&gateway)
        .bearer_auth(&guest)
        .header("accept", "text/event-stream")
        .json(&json!({ "query": "subscription { bookingConfirmed { reservationId propertyTitle reservation { id status nights property { title } } } }" }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        let mut body = response.bytes_stream();
        let mut buffer = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                for line in event.lines() {
                    if let Some(data) = line.strip_prefix("data:")
                        && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                    {
                        let _ = tx.send(v);
                    }
                }
            }
        }
    });
    // Let the gateway open its graphql-ws subscription to notifications.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let booked = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    let id = booked.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let event = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let v = rx.recv().await.expect("stream open");
            if v["data"]["bookingConfirmed"].is_object() || v["errors"].is_array() {
                return v;
            }
        }
    })
    .await
    .expect("the gateway pushed the confirmation");
    let c = &event["data"]["bookingConfirmed"];
    assert_eq!(c["reservationId"], id.as_str(), "{event}");
    assert_eq!(
        c["reservation"]["property"]["title"], "Harbour flat",
        "{event}"
    );
    assert_eq!(c["reservation"]["status"], "CONFIRMED");
    assert_eq!(c["reservation"]["nights"], 2);
}
