//! Bookings through the router on PostgreSQL with the simulated payment provider: confirmed
//! bookings per second and latency percentiles, first with every client on distinct dates,
//! then with all clients fighting for the same dates. Prints numbers; asserts only that the
//! outcomes are right (one winner per contested stay, no overlaps).
//!
//! Then changes next to new bookings in the same run: `BENCH_CHANGES` two-night stays booked,
//! each moved one night later (overlapping itself, same total: no money moves), then made a
//! night longer (the difference authorized and captured), with each latency's ratio to the
//! new bookings'.
//!
//! Needs PostgreSQL at 127.0.0.1:5432. `cargo bench --bench booking`.
//! Knobs: `BENCH_CLIENTS` (50), `BENCH_BOOKINGS` (500), `BENCH_ROUNDS` (20),
//! `BENCH_CHANGES` (200).

use std::time::{Duration, Instant};

use draftr_test_support::bench::{
    BenchStack, StackOptions, create_listing, day, env_usize, gql, register_users,
};
use futures::StreamExt;
use sea_orm::ConnectionTrait;
use serde_json::json;

const BOOK: &str =
    "mutation($i: CreateReservationInput!) { createReservation(input: $i) { id status } }";

struct Outcome {
    latency: Duration,
    confirmed: bool,
    conflict: bool,
}

const CHANGE: &str = "mutation($id: ID!, $i: ChangeReservationInput!) { changeReservation(id: $id, input: $i) { id status } }";

/// Prints the figures; returns (p50, p99).
fn report(name: &str, mut outcomes: Vec<Outcome>, elapsed: Duration) -> (Duration, Duration) {
    outcomes.sort_by_key(|o| o.latency);
    let pick =
        |q: f64| outcomes[((outcomes.len() as f64 * q) as usize).min(outcomes.len() - 1)].latency;
    let confirmed = outcomes.iter().filter(|o| o.confirmed).count();
    let conflicts = outcomes.iter().filter(|o| o.conflict).count();
    println!(
        "{name:<44} {:>5} requests  {confirmed:>4} confirmed  {conflicts:>4} conflicts  {:>7.1} confirmed/s  {:>7.1} requests/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
        outcomes.len(),
        confirmed as f64 / elapsed.as_secs_f64(),
        outcomes.len() as f64 / elapsed.as_secs_f64(),
        pick(0.5).as_secs_f64() * 1e3,
        pick(0.99).as_secs_f64() * 1e3,
    );
    (pick(0.5), pick(0.99))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    draftr_common::telemetry::init();
    let clients = env_usize("BENCH_CLIENTS", 50);
    let bookings = env_usize("BENCH_BOOKINGS", 500);
    let rounds = env_usize("BENCH_ROUNDS", 20);
    let stack = BenchStack::start(StackOptions {
        max_connections: 32,
        events: None,
    })
    .await?;
    let url = stack.url.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    // One host with 10 listings; `clients` guests.
    let mut tokens = register_users(&client, &url, &stack.run, clients + 1).await;
    let host = tokens.remove(0);
    let mut properties = Vec::new();
    for i in 0..10 {
        properties.push(
            create_listing(&client, &url, &host, &format!("Bench flat {i}"), "MODERATE").await,
        );
    }

    // A booking of `[check_in, check_out)`: its outcome, and the reservation's id when it got one.
    let book_stay = |token: String, property: String, check_in: usize, check_out: usize| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let started = Instant::now();
            let res = gql(
                &client,
                &url,
                BOOK,
                json!({ "i": {
                    "propertyId": property, "checkIn": day(check_in), "checkOut": day(check_out),
                    "guests": 2, "paymentMethod": "pm_card_visa",
                    "idempotencyKey": uuid::Uuid::new_v4().to_string(),
                }}),
                Some(&token),
            )
            .await;
            let code = res["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("");
            assert!(code.is_empty() || code == "BOOKING_CONFLICT", "{res}");
            let outcome = Outcome {
                latency: started.elapsed(),
                confirmed: res["data"]["createReservation"]["status"] == "CONFIRMED",
                conflict: code == "BOOKING_CONFLICT",
            };
            let id = res["data"]["createReservation"]["id"]
                .as_str()
                .map(str::to_owned);
            (outcome, id)
        }
    };
    let book = |token: String, property: String, check_in: usize| {
        let stay = book_stay(token, property, check_in, check_in + 1);
        async move { stay.await.0 }
    };

    // Warm-up: connections, query plans.
    for i in 0..20 {
        book(tokens[i % clients].clone(), properties[9].clone(), 700 - i).await;
    }

    println!("{clients} concurrent clients, PostgreSQL, simulated provider, through the router");
    // Distinct dates: request i books one night on property i % 10, night 1 + i / 10.
    let started = Instant::now();
    let outcomes: Vec<Outcome> = futures::stream::iter(0..bookings)
        .map(|i| {
            book(
                tokens[i % clients].clone(),
                properties[i % 10].clone(),
                1 + i / 10,
            )
        })
        .buffer_unordered(clients)
        .collect()
        .await;
    report("distinct dates", outcomes, started.elapsed());

    // Same dates: each round, every client asks for the same night of the same property.
    let started = Instant::now();
    let mut all = Vec::new();
    for round in 0..rounds {
        let night = 300 + round;
        let outcomes: Vec<Outcome> = futures::future::join_all(
            (0..clients).map(|c| book(tokens[c].clone(), properties[0].clone(), night)),
        )
        .await;
        assert_eq!(
            outcomes.iter().filter(|o| o.confirmed).count(),
            1,
            "one winner per round"
        );
        all.extend(outcomes);
    }
    report("same dates (all clients per night)", all, started.elapsed());

    // Changes next to new bookings: stay i is property i % 10, nights s..s+2 with s spaced 4
    // apart, so the move (s+1..s+3) and the extension (s+1..s+4) never meet another stay.
    let changes = env_usize("BENCH_CHANGES", 200);
    let start = |i: usize| 400 + (i / 10) * 4;
    let started = Instant::now();
    let made: Vec<(usize, Outcome, Option<String>)> = futures::stream::iter(0..changes)
        .map(|i| {
            let stay = book_stay(
                tokens[i % clients].clone(),
                properties[i % 10].clone(),
                start(i),
                start(i) + 2,
            );
            async move {
                let (outcome, id) = stay.await;
                (i, outcome, id)
            }
        })
        .buffer_unordered(clients)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut ids = Vec::new();
    let mut booked = Vec::new();
    for (i, outcome, id) in made {
        ids.push((i, id.expect("every two-night stay is free")));
        booked.push(outcome);
    }
    let (new_p50, new_p99) = report("new two-night bookings", booked, elapsed);
    let outcome = |latency, confirmed| Outcome {
        latency,
        confirmed,
        conflict: false,
    };

    let change = |i: usize, id: String, input: serde_json::Value| {
        let (client, url, token) = (client.clone(), url.clone(), tokens[i % clients].clone());
        async move {
            let started = Instant::now();
            let res = gql(
                &client,
                &url,
                CHANGE,
                json!({ "id": id, "i": input }),
                Some(&token),
            )
            .await;
            assert!(res.get("errors").is_none(), "{res}");
            outcome(
                started.elapsed(),
                res["data"]["changeReservation"]["status"] == "CONFIRMED",
            )
        }
    };
    let mut figures = Vec::new();
    for (name, shape) in [
        ("changes: one night later, same total", (1, 3)),
        ("changes: one night longer, difference charged", (1, 4)),
    ] {
        let started = Instant::now();
        let outcomes: Vec<Outcome> = futures::stream::iter(ids.clone())
            .map(|(i, id)| {
                let input = json!({
                    "checkIn": day(start(i) + shape.0), "checkOut": day(start(i) + shape.1),
                    "idempotencyKey": uuid::Uuid::new_v4().to_string(),
                });
                change(i, id, input)
            })
            .buffer_unordered(clients)
            .collect()
            .await;
        assert!(outcomes.iter().all(|o| o.confirmed));
        figures.push((name, report(name, outcomes, started.elapsed())));
    }
    for (name, (p50, p99)) in figures {
        println!(
            "{name:<44} p50 {:.2}x, p99 {:.2}x a new booking's",
            p50.as_secs_f64() / new_p50.as_secs_f64(),
            p99.as_secs_f64() / new_p99.as_secs_f64(),
        );
    }

    let overlaps = stack
        .reservations_db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT COUNT(*) AS n FROM reservations a JOIN reservations b ON a.property_id = b.property_id AND a.id < b.id
             WHERE a.status IN ('PENDING','CONFIRMED') AND b.status IN ('PENDING','CONFIRMED')
               AND a.check_in < b.check_out AND b.check_in < a.check_out",
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0);
    let counts = stack.provider.counts();
    println!(
        "provider: {} authorizations, {} captures; overlapping active reservations: {overlaps}",
        counts.authorizations, counts.captures
    );
    stack.drop_schemas().await;
    Ok(())
}
