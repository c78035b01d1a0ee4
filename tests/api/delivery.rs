//! Delivery under failure: the notifications processes killed in the middle of 200 bookings,
//! and Redis restarted (losing its streams) with events not yet consumed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use draftr_common::stream::RedisStreamBus;
use draftr_common::testing::Backend;
use draftr_notifications::{App as NotificationsApp, NotificationsSettings};
use futures::StreamExt;

use crate::booking::{book, booking, new_listing};
use crate::helpers::{Options, TestApp, spawn_custom};
use crate::smtp::header;

/// Notifications in its own runtime, so the test can kill it like a process.
struct Killable(tokio::runtime::Runtime);

fn start_notifications(settings: NotificationsSettings) -> Killable {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = NotificationsApp::build(settings).await.unwrap();
            tokio::spawn(app.run_until_stopped(std::future::pending()));
        });
        Killable(runtime)
    })
    .join()
    .unwrap()
}

async fn wait_until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Books `n` one-night stays (10 listings, 10 guests, 10 at a time); `during(i)` runs after
/// the i-th booking is sent.
async fn book_many(app: &TestApp, n: usize, mut during: impl FnMut(usize)) {
    let (_, host, _, _) = app.new_user().await;
    let mut properties = Vec::new();
    for _ in 0..10 {
        properties.push(new_listing(app, &host, 10_000, "FLEXIBLE").await);
    }
    let mut guests = Vec::new();
    for _ in 0..10 {
        guests.push(app.new_user().await.1);
    }
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let input = booking(
                &properties[i % 10],
                10 + (i / 10) as i64,
                11 + (i / 10) as i64,
                "pm_card_visa",
            );
            let token = guests[i % 10].clone();
            async move { book(app, &token, input).await }
        })
        .buffered(10)
        .enumerate();
    while let Some((i, r)) = results.next().await {
        assert_eq!(r.ok()["createReservation"]["status"], "CONFIRMED");
        during(i + 1);
    }
}

/// Every booking's two emails arrived, each under its own Message-ID. `cut_sends` is how many
/// SMTP sends a kill may have cut between the server accepting the message and the mailer
/// recording it: such an email is sent again after the restart, under the same Message-ID (so
/// the receiving side can fold it). No protocol can close that window (SMTP has no idempotent
/// submission); the mailer sends one email at a time, so it is at most one per kill.
fn assert_each_email_delivered(app: &TestApp, bookings: usize, cut_sends: usize) {
    let messages = app.smtp.messages();
    let ids: Vec<String> = app.smtp.message_ids();
    let unique: HashSet<&String> = ids.iter().collect();
    let confirmations: HashSet<String> = messages
        .iter()
        .filter(|m| header(m, "Subject").is_some_and(|s| s.starts_with("Your stay at")))
        .filter_map(|m| header(m, "Message-ID"))
        .collect();
    let repeated = ids.len() - unique.len();
    println!(
        "{} emails, {} distinct confirmations, {} distinct Message-IDs, {repeated} repeated",
        messages.len(),
        confirmations.len(),
        unique.len()
    );
    assert_eq!(ids.len(), messages.len(), "every email has a Message-ID");
    assert_eq!(
        confirmations.len(),
        bookings,
        "one confirmation per booking"
    );
    assert_eq!(
        unique.len(),
        2 * bookings,
        "guest and host, each under its own Message-ID"
    );
    assert!(
        repeated <= cut_sends,
        "{repeated} emails sent twice; at most {cut_sends} can be cut by the kills"
    );
}

async fn pending(app: &TestApp, redis: &str) -> u64 {
    let bus = RedisStreamBus::connect(redis, &app.namespace, "check", Duration::from_secs(60))
        .await
        .unwrap();
    bus.pending("reservations", "notifications").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_bookings_with_notifications_killed_midway_send_each_email_once() {
    let app = spawn_custom(
        Backend::Postgres,
        Options::default().without_notifications(),
    )
    .await;
    let settings = app.notifications_settings.clone();
    let mut first = Some(start_notifications(settings.clone()));
    let mut second = None;
    book_many(&app, 200, |done| {
        if done == 80 {
            // Killed while events and emails are in flight.
            if let Some(k) = first.take() {
                k.0.shutdown_background();
            }
        }
        if done == 140 {
            second = Some(start_notifications(settings.clone()));
        }
    })
    .await;
    wait_until("400 distinct emails", Duration::from_secs(90), async || {
        app.smtp.message_ids().iter().collect::<HashSet<_>>().len() >= 400
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_each_email_delivered(&app, 200, 1);
    let redis =
        std::env::var("DRAFTR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    wait_until(
        "an empty pending list",
        Duration::from_secs(10),
        async || pending(&app, &redis).await == 0,
    )
    .await;
    if let Some(k) = second {
        k.0.shutdown_background();
    }
}

/// A Redis server of this test's own, which it can kill and restart.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        std::thread::sleep(Duration::from_millis(300));
        Self {
            port,
            child: Some(child),
        }
    }
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_that_loses_the_stream_loses_no_confirmation_email() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut redis = OwnRedis::start(port);
    let url = redis.url();
    let app = spawn_custom(
        Backend::Postgres,
        Options::default()
            .without_notifications()
            .events_redis(&url),
    )
    .await;
    book_many(&app, 20, |_| {}).await;
    // The relay has published them; nobody consumed them yet.
    let bus = RedisStreamBus::connect(&url, &app.namespace, "check", Duration::from_secs(60))
        .await
        .unwrap();
    wait_until(
        "20 events on the stream",
        Duration::from_secs(10),
        async || bus.len("reservations").await.unwrap_or(0) >= 20,
    )
    .await;

    // Redis restarts without persistence: the stream, the groups and the markers are gone.
    redis.kill();
    redis = OwnRedis::start(port);
    let mut settings = app.notifications_settings.clone();
    settings.redis.url = Some(secrecy::SecretString::from(url.clone()));
    let notifications = start_notifications(settings);

    wait_until("40 emails", Duration::from_secs(60), async || {
        app.smtp.messages().len() >= 40
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_each_email_delivered(&app, 20, 0);
    notifications.0.shutdown_background();
    drop(redis);
}
