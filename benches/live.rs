//! Live updates and email throughput: latency from the confirming commit to a subscriber's
//! receipt with many connected subscribers, memory per idle subscription, and emails per second
//! through the SMTP path. PostgreSQL and Redis on loopback; prints numbers, asserts only that
//! every push and email arrived.
//!
//! `cargo bench --bench live`. Knobs: `BENCH_SUBSCRIBERS` (1000), `BENCH_BOOKINGS` (50),
//! `BENCH_EMAILS` (2000).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use draftr_common::config::RedisSettings;
use draftr_test_support::bench::{
    BenchStack, StackOptions, create_listing, day, env_usize, gql, percentile, register_users,
};
use draftr_test_support::{smtp, ws};
use sea_orm::ConnectionTrait;
use secrecy::SecretString;
use serde_json::json;

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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Set in the child process that only holds idle subscriptions.
const CHILD: &str = "BENCH_LIVE_SUBSCRIBER_PROCESS";

/// `n` graphql-ws connections, each with a `bookingConfirmed` subscription, spread over
/// `tokens`.
async fn open_subscriptions(
    ws_url: &str,
    tokens: &[String],
    n: usize,
) -> anyhow::Result<Vec<ws::WsClient>> {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        let mut c = ws::WsClient::connect(ws_url, Some(&tokens[i % tokens.len()]))
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
    Ok(clients)
}

/// The child: opens the subscriptions, says `ready`, and holds them until killed.
async fn subscriber_process() -> anyhow::Result<()> {
    let tokens: Vec<String> = std::env::var("BENCH_CHILD_TOKENS")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let _clients = open_subscriptions(
        &std::env::var("BENCH_CHILD_WS_URL")?,
        &tokens,
        env_usize("BENCH_SUBSCRIBERS", 1000),
    )
    .await?;
    println!("ready");
    std::io::Write::flush(&mut std::io::stdout())?;
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os(CHILD).is_some() {
        return subscriber_process().await;
    }
    draftr_common::telemetry::init();
    let subscribers = env_usize("BENCH_SUBSCRIBERS", 1000);
    let bookings = env_usize("BENCH_BOOKINGS", 50);
    let emails = env_usize("BENCH_EMAILS", 2000);
    let smtp = smtp::SmtpSink::start().await;
    let redis = RedisSettings {
        url: Some(SecretString::from(
            std::env::var("DRAFTR_BENCH_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        )),
        namespace: Some(format!("bench{}", uuid::Uuid::new_v4().simple())),
    };
    let stack = BenchStack::start(StackOptions {
        max_connections: 16,
        events: Some((redis, smtp.url.clone())),
    })
    .await?;
    let notifications = stack.stack.notifications.first().expect("notifications");
    let (notifications_port, hub) = (notifications.port, notifications.hub.clone());
    let url = stack.url.clone();
    let client = reqwest::Client::new();

    let mut tokens = register_users(&client, &url, &stack.run, 11).await;
    let host = tokens.remove(0);
    let property = create_listing(&client, &url, &host, "Live flat", "FLEXIBLE").await;

    // Idle subscriptions, server side alone: the subscribers live in a child process (this
    // bench run again), so this process's growth is the subgraph's, not the clients'.
    let ws_url = format!("ws://127.0.0.1:{notifications_port}/ws");
    let before = rss_kib();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .env(CHILD, "1")
        .env("BENCH_CHILD_WS_URL", &ws_url)
        .env("BENCH_CHILD_TOKENS", tokens[..10].join(","))
        .env("BENCH_SUBSCRIBERS", subscribers.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let ready = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).map(|_| line)
    })
    .await??;
    anyhow::ensure!(ready.trim() == "ready", "subscriber process: {ready:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (after, listening) = (rss_kib(), hub.listeners());
    child.kill()?;
    child.wait()?;
    println!(
        "{subscribers} idle subscriptions (clients in another process): {listening} listening; server RSS +{} KiB, {:.1} KiB per subscription",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / subscribers as f64
    );

    // Subscribers for the pushes, in this process.
    let clients = open_subscriptions(&ws_url, &tokens[..10], subscribers).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;

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
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
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
    notifications
        .db
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
        "{emails} emails through the mailer (one sequential mailer, its own SMTP session, a local SMTP listener): {:.1} s, {:.0} emails/s",
        took.as_secs_f64(),
        emails as f64 / took.as_secs_f64()
    );

    stack.drop_schemas().await;
    Ok(())
}
