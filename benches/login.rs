//! Sign-in and a cheap authenticated query, through the router and straight to the auth
//! subgraph, on the embedded default (SQLite, in-process state). Prints latency percentiles and
//! throughput; asserts nothing about speed.
//!
//! `cargo bench --bench login` (release) or `cargo bench --profile dev --bench login` (debug,
//! argon2 still optimised). Knobs: `BENCH_REQUESTS` (default 400), `BENCH_CONCURRENCY` (8).

use std::time::{Duration, Instant};

use draftr::embedded::{Embedded, EmbeddedSettings};
use draftr_test_support::bench::{env_usize, percentile};
use futures::StreamExt;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

async fn post(client: &reqwest::Client, url: &str, body: &Value, token: Option<&str>) -> Value {
    let mut req = client.post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

struct Figures {
    p50: Duration,
    p99: Duration,
    per_sec: f64,
}

async fn measure<F, Fut>(requests: usize, concurrency: usize, one: F) -> Figures
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..requests)
        .map(|i| {
            let fut = one(i);
            async move {
                let t = Instant::now();
                fut.await;
                t.elapsed()
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let total = started.elapsed();
    latencies.sort();
    Figures {
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        per_sec: requests as f64 / total.as_secs_f64(),
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<40} p50 {:>8.2} ms   p99 {:>8.2} ms   {:>8.1} req/s",
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.per_sec
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests = env_usize("BENCH_REQUESTS", 400);
    let concurrency = env_usize("BENCH_CONCURRENCY", 8);
    let data = tempfile::tempdir()?;
    let stack = Embedded::start(EmbeddedSettings {
        data_dir: data.path().to_path_buf(),
        router_listen: "127.0.0.1:0".into(),
        auth_listen: "127.0.0.1:0".into(),
        catalog_listen: "127.0.0.1:0".into(),
        reservations_listen: "127.0.0.1:0".into(),
        payments_listen: "127.0.0.1:0".into(),
        notifications_listen: "127.0.0.1:0".into(),
        demo_data: false,
    })
    .await?;
    let router = format!("http://{}/", stack.router_addr);
    let auth = format!("http://127.0.0.1:{}/", stack.auth_port);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;

    let users = 16;
    let mut tokens = Vec::new();
    for i in 0..users {
        let reg = json!({
            "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
            "variables": { "i": { "email": format!("bench{i}@example.com"), "password": PASSWORD, "displayName": "Bench" } }
        });
        let res = post(&client, &router, &reg, None).await;
        tokens.push(
            res["data"]["register"]["accessToken"]
                .as_str()
                .expect("registered")
                .to_owned(),
        );
    }

    println!(
        "{requests} requests per row, {concurrency} concurrent, {} cores",
        std::thread::available_parallelism()?.get()
    );
    for (name, url) in [
        ("login via router", &router),
        ("login direct to auth", &auth),
    ] {
        let figures = measure(requests, concurrency, |i| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let body = json!({
                    "query": "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
                    "variables": { "i": { "email": format!("bench{}@example.com", i % users), "password": PASSWORD } }
                });
                let res = post(&client, &url, &body, None).await;
                assert!(res["data"]["login"]["accessToken"].is_string(), "{res}");
            }
        })
        .await;
        print(name, &figures);
    }
    for (name, url) in [("me via router", &router), ("me direct to auth", &auth)] {
        let figures = measure(requests * 5, concurrency, |i| {
            let (client, url, token) = (client.clone(), url.clone(), tokens[i % users].clone());
            async move {
                let res = post(
                    &client,
                    &url,
                    &json!({ "query": "{ me { id displayName } }" }),
                    Some(&token),
                )
                .await;
                assert!(res["data"]["me"]["id"].is_string(), "{res}");
            }
        })
        .await;
        print(name, &figures);
    }
    stack.shutdown().await?;
    Ok(())
}
