//! Scaling out: confirmed bookings per second through the nginx edge on a cluster of
//! `draftr <part>` processes, first with one replica of every part (router included), then with
//! two, in one run, under the same load: `BENCH_CLIENTS` clients each booking one night after
//! another of a listing of its own (distinct dates, no conflicts) for `BENCH_SECS` seconds.
//! Prints confirmed/s and latency percentiles for each, and the ratio of two replicas to one.
//!
//! On one machine the replicas share its cores with each other, PostgreSQL, Redis, nginx and
//! the clients: the ratio says how much a second replica buys when the machine has room for
//! it, not what a second machine would.
//!
//! Needs PostgreSQL at 127.0.0.1:5432, Redis at 127.0.0.1:6379, nginx, and `draftr-router`
//! built beside `draftr` in the bench's profile (`cargo build --release -p draftr-router`):
//! `cargo bench --bench scale`. To measure the debug binaries the tests run instead:
//! `cargo build -p draftr-router && cargo bench --profile dev --bench scale`.
//! Knobs: `BENCH_CLIENTS` (16), `BENCH_SECS` (20).

use std::time::{Duration, Instant};

use draftr_test_support::bench::{create_listing, day, env_usize, gql, percentile, register_users};
use draftr_test_support::cluster::{Binaries, Cluster, ClusterOptions};
use serde_json::json;

const BOOK: &str =
    "mutation($i: CreateReservationInput!) { createReservation(input: $i) { id status } }";
/// Nights one listing can be booked for (bookings start at most 730 days ahead).
const NIGHTS_PER_LISTING: usize = 700;

struct Figures {
    confirmed: usize,
    failed: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn measure(replicas: usize, clients: usize, secs: u64) -> anyhow::Result<Figures> {
    let started = Instant::now();
    let cluster = Cluster::start_with(
        ClusterOptions {
            replicas,
            edge: true,
            env: Vec::new(),
        },
        Binaries::new(env!("CARGO_BIN_EXE_draftr"))?,
    )
    .await?;
    println!(
        "{replicas} replica(s) of every part up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let url = cluster.url();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut tokens = register_users(&http, &url, &run, clients + 1).await;
    let host = tokens.remove(0);
    // Enough listings that no client runs out of nights.
    let per_client = 1 + (secs as usize * 50) / NIGHTS_PER_LISTING;
    let mut listings = Vec::new();
    for c in 0..clients {
        let mut own = Vec::new();
        for l in 0..per_client {
            own.push(
                create_listing(&http, &url, &host, &format!("Flat {c}.{l}"), "FLEXIBLE").await,
            );
        }
        listings.push(own);
    }

    let book = |token: String, property: String, night: usize| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let started = Instant::now();
            let res = gql(
                &http,
                &url,
                BOOK,
                json!({ "i": {
                    "propertyId": property, "checkIn": day(night), "checkOut": day(night + 1),
                    "guests": 2, "paymentMethod": "pm_card_visa",
                    "idempotencyKey": uuid::Uuid::new_v4().to_string(),
                }}),
                Some(&token),
            )
            .await;
            (
                res["data"]["createReservation"]["status"] == "CONFIRMED",
                started.elapsed(),
            )
        }
    };
    // Warm-up: connections, query plans, every replica reached.
    for c in 0..clients {
        book(tokens[c].clone(), listings[c][0].clone(), 1).await;
    }

    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let workers = (0..clients).map(|c| {
        let token = tokens[c].clone();
        let own = listings[c].clone();
        let book = &book;
        async move {
            let mut outcomes = Vec::new();
            let mut k = 1;
            while Instant::now() < deadline && k < own.len() * NIGHTS_PER_LISTING {
                let listing = own[k / NIGHTS_PER_LISTING].clone();
                outcomes.push(book(token.clone(), listing, 2 + k % NIGHTS_PER_LISTING).await);
                k += 1;
            }
            outcomes
        }
    });
    let outcomes: Vec<(bool, Duration)> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = outcomes.iter().filter(|o| o.0).map(|o| o.1).collect();
    latencies.sort();
    anyhow::ensure!(!latencies.is_empty(), "no booking was confirmed");
    let figures = Figures {
        confirmed: latencies.len(),
        failed: outcomes.len() - latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    };
    println!(
        "{replicas} replica(s): {:>6} confirmed  {:>4} not  {:>7.1} confirmed/s  p50 {:>7.1} ms  p99 {:>7.1} ms",
        figures.confirmed,
        figures.failed,
        figures.per_second,
        figures.p50.as_secs_f64() * 1e3,
        figures.p99.as_secs_f64() * 1e3,
    );
    drop(cluster);
    Ok(figures)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = env_usize("BENCH_CLIENTS", 16);
    let secs = env_usize("BENCH_SECS", 20) as u64;
    println!(
        "{clients} clients, {secs} s each, distinct dates, through the edge; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let one = measure(1, clients, secs).await?;
    let two = measure(2, clients, secs).await?;
    println!(
        "2 vs 1 replica: {:.2}x confirmed/s, p50 {:.2}x, p99 {:.2}x",
        two.per_second / one.per_second,
        two.p50.as_secs_f64() / one.p50.as_secs_f64(),
        two.p99.as_secs_f64() / one.p99.as_secs_f64(),
    );
    Ok(())
}
