//! Live updates and email throughput: latency from the confirming commit to a subscriber's
//! receipt with many connected subscribers, memory per idle subscription, and emails per second
//! through the SMTP path. PostgreSQL and Redis on loopback; prints numbers, asserts only that
//! every push and email arrived.
//!
//! `cargo bench --bench live`. Knobs: `BENCH_SUBSCRIBERS` (1000), `BENCH_BOOKINGS` (50),
//! `BENCH_EMAILS` (2000).

// The tests' SMTP listener and graphql-ws client (the bench uses part of them).
#[allow(dead_code)]
#[path = "../tests/api/smtp.rs"]
mod smtp;
#[allow(dead_code)]
#[path = "../tests/api/ws.rs"]
mod ws;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use draftr_auth::{App as AuthApp, AuthSettings};
use draftr_catalog::{App as CatalogApp, CatalogSettings};
use draftr_common::config::{DatabaseSettings, RedisSettings};
use draftr_common::jwt::KeySource;
use draftr_common::kv::{InMemoryKv, KvStore};
use draftr_notifications::{App as NotificationsApp, NotificationsSettings};
use draftr_payments::provider::SimulatedProvider;
use draftr_payments::{App as PaymentsApp, PaymentsSettings};
use draftr_reservations::{App as ReservationsApp, ReservationsSettings};
use draftr_router::embed::{EmbeddedRouter, Overrides, config_with};
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
    DatabaseSettings {
        url: SecretString::from(
            std::env::var("DRAFTR_BENCH_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        ),
        schema: Some(schema.to_owned()),
        max_connections: 16,
        ..Default::default()
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn day(n: usize) -> String {
    (Utc::now().date_naive() + chrono::Duration::days(n as i64))
        .format("%Y-%m-%d")
        .to_string()
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

fn pick(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    draftr_common::telemetry::init();
    let subscribers = env_usize("BENCH_SUBSCRIBERS", 1000);
    let bookings = env_usize("BENCH_BOOKINGS", 50);
    let emails = env_usize("BENCH_EMAILS", 2000);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let token = SecretString::from(format!("bench-{run}"));
    let redis = RedisSettings {
        url: Some(SecretString::from(
            std::env::var("DRAFTR_BENCH_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        )),
        namespace: Some(format!("bench{run}")),
    };
    let kv: Arc<dyn KvStore> = Arc::new(InMemoryKv::default());
    let smtp = smtp::SmtpSink::start().await;

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
    let payments = PaymentsApp::build_with(
        PaymentsSettings {
            listen: "127.0.0.1:0".into(),
            database: database(&format!("bench_payments_{run}")),
            service_token: Some(token.clone()),
            ..Default::default()
        },
        kv.clone(),
        KeySource::Static(jwks.clone()),
        Arc::new(SimulatedProvider::new()),
    )
    .await?;
    let payments_url = format!("http://127.0.0.1:{}/", payments.port());
    tokio::spawn(payments.run_until_stopped(std::future::pending()));
    let mut reservations_settings = ReservationsSettings {
        listen: "127.0.0.1:0".into(),
        database: database(&format!("bench_reservations_{run}")),
        redis: redis.clone(),
        service_token: Some(token.clone()),
        catalog_url: catalog_url.clone(),
        payments_url: payments_url.clone(),
        ..Default::default()
    };
    reservations_settings.relay_interval_ms = 20;
    let reservations = ReservationsApp::build_with(
        reservations_settings,
        kv.clone(),
        KeySource::Static(jwks.clone()),
    )
    .await?;
    let reservations_url = format!("http://127.0.0.1:{}/", reservations.port());
    tokio::spawn(reservations.run_until_stopped(std::future::pending()));
    let mut notifications_settings = NotificationsSettings {
        listen: "127.0.0.1:0".into(),
        database: database(&format!("bench_notifications_{run}")),
        redis: redis.clone(),
        service_token: Some(token.clone()),
        auth_url: auth_url.clone(),
        ..Default::default()
    };
    notifications_settings.mail.smtp_url = Some(SecretString::from(smtp.url.clone()));
    notifications_settings.mail.poll_ms = 20;
    let notifications =
        NotificationsApp::build_with(notifications_settings, kv.clone(), KeySource::Static(jwks))
            .await?;
    let notifications_port = notifications.port();
    let hub = notifications.hub();
    let notifications_db = notifications.db();
    tokio::spawn(notifications.run_until_stopped(std::future::pending()));

    let router = EmbeddedRouter::start(
        &config_with(
            draftr_router::ROUTER_YAML,
            &Overrides {
                listen: "127.0.0.1:0".into(),
                subgraph_urls: BTreeMap::from([
                    ("auth".into(), auth_url),
                    ("catalog".into(), catalog_url),
                    ("reservations".into(), reservations_url),
                    ("payments".into(), payments_url),
                    (
                        "notifications".into(),
                        format!("http://127.0.0.1:{notifications_port}/"),
                    ),
                ]),
            },
        )?,
        draftr_router::compose::compose(&draftr::schema::subgraphs())?,
    )
    .await?;
    let url = router.url();
    let client = reqwest::Client::new();

    let register = "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }";
    let mut tokens = Vec::new();
    for i in 0..11 {
        let res = gql(&client, &url, register, json!({ "i": { "email": format!("l{i}-{run}@bench.test"), "password": "correct horse battery", "displayName": format!("Live {i}") } }), None).await;
        tokens.push(
            res["data"]["register"]["accessToken"]
                .as_str()
                .expect("token")
                .to_owned(),
        );
    }
    let host = tokens.remove(0);
    let property = gql(
        &client,
        &url,
        "mutation($i: CreatePropertyInput!) { createProperty(input: $i) { id } }",
        json!({ "i": { "title": "Live flat", "description": "x", "address": { "line1": "1 Road", "city": "Lyon", "country": "FR" },
            "nightlyRate": { "amount": 10_000, "currency": "EUR" }, "maxGuests": 4, "cancellationPolicy": "FLEXIBLE", "status": "PUBLISHED" } }),
        Some(&host),
    )
    .await["data"]["createProperty"]["id"]
        .as_str()
        .expect("property")
        .to_owned();

    // Idle subscriptions: 10 guests, subscribers spread over them.
    let ws_url = format!("ws://127.0.0.1:{notifications_port}/ws");
    let before = rss_kib();
    let mut clients = Vec::new();
    for i in 0..subscribers {
        let mut c = ws::WsClient::connect(&ws_url, Some(&tokens[i % 10]))
            .await
            .map_err(anyhow::Error::msg)?;
        c.subscribe(
            "1",
            "subscription { bookingConfirmed { reservationId confirmedAt } }",
            json!({}),
        )
        .await;
        clients.push(c);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib();
    println!(
        "{subscribers} idle subscriptions: {} listening; process RSS +{} KiB, {:.1} KiB per subscription (server and client sides, one process)",
        hub.listeners(),
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / subscribers as f64
    );

    // Pushes: each booking reaches the subscribers of its guest.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    for mut c in clients {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(v) = c.next_result(Duration::from_secs(120)).await {
                let at = v["data"]["bookingConfirmed"]["confirmedAt"]
                    .as_str()
                    .and_then(|s| s.parse::<DateTime<Utc>>().ok());
                if let Some(at) = at {
                    let _ = tx.send((Utc::now() - at).to_std().unwrap_or_default());
                }
            }
        });
    }
    drop(tx);
    for i in 0..bookings {
        let res = gql(
            &client,
            &url,
            "mutation($i: CreateReservationInput!) { createReservation(input: $i) { status } }",
            json!({ "i": { "propertyId": property, "checkIn": day(1 + i), "checkOut": day(2 + i), "guests": 2,
                "paymentMethod": "pm_card_visa", "idempotencyKey": uuid::Uuid::new_v4().to_string() } }),
            Some(&tokens[i % 10]),
        )
        .await;
        assert_eq!(
            res["data"]["createReservation"]["status"], "CONFIRMED",
            "{res}"
        );
    }
    let expected = bookings * subscribers / 10;
    let mut latencies = Vec::with_capacity(expected);
    let deadline = Instant::now() + Duration::from_secs(60);
    while latencies.len() < expected && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(d)) => latencies.push(d),
            _ => break,
        }
    }
    assert_eq!(latencies.len(), expected, "every subscriber got every push");
    latencies.sort();
    println!(
        "{bookings} bookings × {} subscribers each = {expected} pushes: commit → subscriber p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        subscribers / 10,
        pick(&latencies, 0.5),
        pick(&latencies, 0.99),
        latencies.last().unwrap().as_secs_f64() * 1e3
    );

    // Email throughput: the mailer drains `emails` stored notifications to the SMTP sink.
    let wait_for = |n: usize| {
        let smtp = smtp.clone();
        async move {
            while smtp.messages().len() < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(bookings * 2).await;
    let base = smtp.messages().len();
    let started = Instant::now();
    notifications_db
        .execute_unprepared(&format!(
            "INSERT INTO notifications (id, event_id, user_id, kind, recipient, subject, body_text, body_html, status, attempts, next_attempt_at, created_at)
             SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'booking_confirmed', 'guest' || i || '@bench.test',
                    'Your stay at Live flat is confirmed', 'Hello,\nyour booking is confirmed.\n', '<p>Hello,</p><p>your booking is confirmed.</p>',
                    'PENDING', 0, now(), now()
             FROM generate_series(1, {emails}) AS i"
        ))
        .await?;
    tokio::time::timeout(Duration::from_secs(300), wait_for(base + emails)).await?;
    let took = started.elapsed();
    println!(
        "{emails} emails through SMTP (lettre, one mailer, a local SMTP listener): {:.1} s, {:.0} emails/s",
        took.as_secs_f64(),
        emails as f64 / took.as_secs_f64()
    );

    for schema in [
        "auth",
        "catalog",
        "payments",
        "reservations",
        "notifications",
    ] {
        let _ = notifications_db
            .execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS bench_{schema}_{run} CASCADE"
            ))
            .await;
    }
    Ok(())
}
