//! Catalog search on PostgreSQL with many properties (default 100 000), through the router and
//! straight to the catalog subgraph, so the router's share is visible. Prints latency
//! percentiles and throughput; asserts nothing about speed.
//!
//! Needs PostgreSQL at 127.0.0.1:5432 (see README). `cargo bench --bench search`.
//! Knobs: `BENCH_PROPERTIES` (100000), `BENCH_REQUESTS` (400), `BENCH_CONCURRENCY` (8).

use std::time::{Duration, Instant};

use draftr_common::Role;
use draftr_test_support::bench::{BenchStack, StackOptions, env_usize, percentile};
use futures::StreamExt;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

async fn measure(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    requests: usize,
    concurrency: usize,
) -> (Duration, Duration, f64) {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..requests)
        .map(|_| async move {
            let t = Instant::now();
            let res: Value = client
                .post(url)
                .json(body)
                .send()
                .await
                .expect("request")
                .json()
                .await
                .expect("json");
            assert!(res.get("errors").is_none(), "{res}");
            t.elapsed()
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let per_sec = requests as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        per_sec,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let properties = env_usize("BENCH_PROPERTIES", 100_000);
    let requests = env_usize("BENCH_REQUESTS", 400);
    let concurrency = env_usize("BENCH_CONCURRENCY", 8);
    let stack = BenchStack::start(StackOptions {
        max_connections: 16,
        events: None,
    })
    .await?;
    let catalog_url = stack.stack.urls.catalog.clone();
    let mut hosts = Vec::new();
    for i in 0..50 {
        let user = stack
            .stack
            .auth
            .ensure_user(
                &format!("host{i}@bench.test"),
                "correct horse battery",
                &format!("Host {i}"),
                Role::Host,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        hosts.push(user.id);
    }

    // Bulk rows straight in SQL: the point is to search them, not to time 100 000 mutations.
    let seeded = Instant::now();
    let host_array = hosts
        .iter()
        .map(|h| format!("'{h}'::uuid"))
        .collect::<Vec<_>>()
        .join(",");
    let db = stack.stack.catalog.db().clone();
    db.execute_unprepared(&format!(
        "INSERT INTO properties (id, host_id, title, description, line1, city, country, nightly_rate_amount, currency,
           max_guests, bedrooms, cancellation_policy, status, created_at, updated_at)
         SELECT gen_random_uuid(), (ARRAY[{host_array}])[1 + i % 50], 'Listing ' || i, 'A place to stay, number ' || i,
           i || ' Main Street',
           (ARRAY['Paris','Lyon','Marseille','Nice','Bordeaux','Lille','Nantes','Toulouse','Rennes','Grenoble',
                  'Berlin','Hamburg','Munich','Cologne','Leipzig','Madrid','Seville','Valencia','Lisbon','Porto'])[1 + i % 20],
           'FR', 4000 + ((i / 20) * 37) % 60000, 'EUR', 1 + (i / 20) % 10, 1 + i % 5, 'MODERATE',
           CASE WHEN i % 10 = 0 THEN 'DRAFT' ELSE 'PUBLISHED' END, now() - (i || ' seconds')::interval, now()
         FROM generate_series(1, {properties}) AS i"
    ))
    .await?;
    db.execute_unprepared(
        "INSERT INTO property_amenities (property_id, amenity)
         SELECT id, (ARRAY['wifi','kitchen','parking','pool'])[1 + abs(hashtext(id::text)) % 4] FROM properties",
    )
    .await?;
    db.execute_unprepared("ANALYZE properties; ANALYZE property_amenities")
        .await?;
    println!(
        "seeded {properties} properties in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    let router_url = stack.url.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;

    let filtered = json!({ "query": "{ properties(first: 20, filter: { city: \"Lyon\", minPrice: 10000, maxPrice: 20000, guests: 4 }) { totalCount edges { node { id title nightlyRate { amount } } } } }" });
    let with_hosts = json!({ "query": "{ properties(first: 50) { edges { node { id title host { displayName } } } } }" });
    let with_hosts_total = json!({ "query": "{ properties(first: 50) { totalCount edges { node { id title host { displayName } } } } }" });
    let page_direct =
        json!({ "query": "{ properties(first: 50) { edges { node { id title host { id } } } } }" });

    println!("{properties} properties, {requests} requests per row, {concurrency} concurrent");
    for (name, url, body) in [
        (
            "filtered (city+price+guests) via router",
            &router_url,
            &filtered,
        ),
        (
            "filtered (city+price+guests) direct",
            &catalog_url,
            &filtered,
        ),
        ("page of 50 with hosts via router", &router_url, &with_hosts),
        (
            "same + totalCount (90 000) via router",
            &router_url,
            &with_hosts_total,
        ),
        ("page of 50 direct to catalog", &catalog_url, &page_direct),
    ] {
        let (p50, p99, per_sec) = measure(&client, url, body, requests, concurrency).await;
        println!(
            "{name:<42} p50 {:>7.2} ms   p99 {:>7.2} ms   {:>7.1} req/s",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            per_sec
        );
    }
    stack.drop_schemas().await;
    Ok(())
}
