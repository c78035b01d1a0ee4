//! Bookings through the router on PostgreSQL with the simulated payment provider: confirmed
//! bookings per second and latency percentiles, first with every client on distinct dates,
//! then with all clients fighting for the same dates. Prints numbers; asserts only that the
//! outcomes are right (one winner per contested stay, no overlaps).
//!
//! Needs PostgreSQL at 127.0.0.1:5432. `cargo bench --bench booking`.
//! Knobs: `BENCH_CLIENTS` (50), `BENCH_BOOKINGS` (500), `BENCH_ROUNDS` (20).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use draftr_auth::{App as AuthApp, AuthSettings};
use draftr_catalog::{App as CatalogApp, CatalogSettings};
use draftr_common::config::DatabaseSettings;
use draftr_common::jwt::KeySource;
use draftr_common::kv::{InMemoryKv, KvStore};
use draftr_payments::provider::SimulatedProvider;
use draftr_payments::{App as PaymentsApp, PaymentsSettings};
use draftr_reservations::{App as ReservationsApp, ReservationsSettings};
use draftr_router::embed::{EmbeddedRouter, Overrides, config_with};
use futures::StreamExt;
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use serde_json::{Value, json};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn database(schema: &str) -> DatabaseSettings {
    let url = std::env::var("DRAFTR_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    DatabaseSettings {
        url: SecretString::from(url),
        schema: Some(schema.to_owned()),
        max_connections: 32,
        ..Default::default()
    }
}

async fn gql(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    vars: Value,
    token: Option<&str>,
) -> Value {
    let mut req = client
        .post(url)
        .json(&json!({ "query": query, "variables": vars }));
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

fn day(n: usize) -> String {
    (Utc::now().date_naive() + chrono::Duration::days(n as i64))
        .format("%Y-%m-%d")
        .to_string()
}

const BOOK: &str =
    "mutation($i: CreateReservationInput!) { createReservation(input: $i) { id status } }";

struct Outcome {
    latency: Duration,
    confirmed: bool,
    conflict: bool,
}

fn report(name: &str, mut outcomes: Vec<Outcome>, elapsed: Duration) {
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    draftr_common::telemetry::init();
    let clients = env_usize("BENCH_CLIENTS", 50);
    let bookings = env_usize("BENCH_BOOKINGS", 500);
    let rounds = env_usize("BENCH_ROUNDS", 20);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let kv: Arc<dyn KvStore> = Arc::new(InMemoryKv::default());
    let token = SecretString::from(format!("bench-{run}"));

    let auth = AuthApp::build_with(
        AuthSettings {
            listen: "127.0.0.1:0".into(),
            database: database(&format!("bench_auth_{run}")),
            service_token: Some(token.clone()),
            ..Default::default()
        },
        kv.clone(),
    )
    .await?;
    let auth_url = format!("http://127.0.0.1:{}/", auth.port());
    let jwks = auth.jwks();
    tokio::spawn(auth.run_until_stopped(std::future::pending()));

    let catalog = CatalogApp::build_with(
        CatalogSettings {
            listen: "127.0.0.1:0".into(),
            database: database(&format!("bench_catalog_{run}")),
            auth_url: auth_url.clone(),
            service_token: Some(token.clone()),
            ..Default::default()
        },
        kv.clone(),
        KeySource::Static(jwks.clone()),
    )
    .await?;
    let catalog_url = format!("http://127.0.0.1:{}/", catalog.port());
    tokio::spawn(catalog.run_until_stopped(std::future::pending()));

    let provider = Arc::new(SimulatedProvider::new());
    let payments = PaymentsApp::build_with(
        PaymentsSettings {
            listen: "127.0.0.1:0".into(),
            database: database(&format!("bench_payments_{run}")),
            service_token: Some(token.clone()),
            ..Default::default()
        },
        kv.clone(),
        KeySource::Static(jwks.clone()),
        provider.clone(),
    )
    .await?;
    let payments_url = format!("http://127.0.0.1:{}/", payments.port());
    tokio::spawn(payments.run_until_stopped(std::future::pending()));

    let reservations = ReservationsApp::build_with(
        ReservationsSettings {
            listen: "127.0.0.1:0".into(),
            database: database(&format!("bench_reservations_{run}")),
            service_token: Some(token.clone()),
            catalog_url: catalog_url.clone(),
            payments_url: payments_url.clone(),
            ..Default::default()
        },
        kv.clone(),
        KeySource::Static(jwks),
    )
    .await?;
    let reservations_url = format!("http://127.0.0.1:{}/", reservations.port());
    let reservations_db = reservations.service().db().clone();
    tokio::spawn(reservations.run_until_stopped(std::future::pending()));

    let supergraph = draftr_router::compose::compose(&draftr::schema::subgraphs())?;
    let overrides = Overrides {
        listen: "127.0.0.1:0".into(),
        subgraph_urls: BTreeMap::from([
            ("auth".into(), auth_url),
            ("catalog".into(), catalog_url),
            ("reservations".into(), reservations_url),
            ("payments".into(), payments_url),
        ]),
    };
    let router = EmbeddedRouter::start(
        &config_with(draftr_router::ROUTER_YAML, &overrides)?,
        supergraph,
    )
    .await?;
    let url = router.url();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;

    // One host with 10 listings; `clients` guests.
    let register = "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }";
    let mut tokens = Vec::new();
    for i in 0..=clients {
        let res = gql(
            &client,
            &url,
            register,
            json!({ "i": { "email": format!("b{i}-{run}@bench.test"), "password": "correct horse battery", "displayName": format!("Bench {i}") } }),
            None,
        )
        .await;
        tokens.push(
            res["data"]["register"]["accessToken"]
                .as_str()
                .expect("token")
                .to_owned(),
        );
    }
    let host = tokens.remove(0);
    let mut properties = Vec::new();
    for i in 0..10 {
        let res = gql(
            &client,
            &url,
            "mutation($i: CreatePropertyInput!) { createProperty(input: $i) { id } }",
            json!({ "i": {
                "title": format!("Bench flat {i}"), "description": "For measuring",
                "address": { "line1": "1 Bench Road", "city": "Lyon", "country": "FR" },
                "nightlyRate": { "amount": 10_000, "currency": "EUR" },
                "maxGuests": 4, "bedrooms": 1, "cancellationPolicy": "MODERATE", "status": "PUBLISHED"
            }}),
            Some(&host),
        )
        .await;
        properties.push(
            res["data"]["createProperty"]["id"]
                .as_str()
                .expect("property")
                .to_owned(),
        );
    }

    let book = |token: String, property: String, check_in: usize| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let started = Instant::now();
            let res = gql(
                &client,
                &url,
                BOOK,
                json!({ "i": {
                    "propertyId": property, "checkIn": day(check_in), "checkOut": day(check_in + 1),
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
            Outcome {
                latency: started.elapsed(),
                confirmed: res["data"]["createReservation"]["status"] == "CONFIRMED",
                conflict: code == "BOOKING_CONFLICT",
            }
        }
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

    let overlaps = reservations_db
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
    let counts = provider.counts();
    println!(
        "provider: {} authorizations, {} captures; overlapping active reservations: {overlaps}",
        counts.authorizations, counts.captures
    );
    for schema in ["auth", "catalog", "payments", "reservations"] {
        let _ = reservations_db
            .execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS bench_{schema}_{run} CASCADE"
            ))
            .await;
    }
    Ok(())
}
