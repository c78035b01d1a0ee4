//! Delivery under failure: the notifications process (the real `draftr notifications` binary)
//! stopped with SIGTERM or SIGKILL in the middle of 200 bookings and started again, and Redis
//! restarted (losing its streams) with events not yet consumed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use draftr_common::stream::RedisStreamBus;
use draftr_common::testing::{Backend, redis_test_url};
use draftr_notifications::NotificationsSettings;
use futures::StreamExt;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::ExposeSecret;

use crate::booking::{book, booking, new_listing};
use crate::helpers::{Options, TestApp, spawn_custom, wait_until};
use crate::smtp::header;

/// `draftr notifications` as a real process, configured like the test app's replicas through
/// the same `DRAFTR_NOTIFICATIONS__…` variables an operator would set, so the test can stop it
/// the two ways an orchestrator does: SIGTERM (graceful) and SIGKILL.
struct NotificationsProcess {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl NotificationsProcess {
    fn start(settings: &NotificationsSettings) -> Self {
        let s = settings;
        let log = std::env::temp_dir().join(format!(
            "draftr-notifications-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_draftr"));
        cmd.arg("notifications")
            .current_dir(std::env::temp_dir())
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut vars = vec![
            ("LISTEN", "127.0.0.1:0".to_owned()),
            (
                "DATABASE__URL",
                s.subgraph.database.url.expose_secret().to_owned(),
            ),
            ("JWKS_URL", s.subgraph.jwks_url.clone()),
            ("AUTH_URL", s.auth_url.clone()),
            ("MAIL__BACKOFF_MS", s.mail.backoff_ms.to_string()),
            ("MAIL__MAX_BACKOFF_MS", s.mail.max_backoff_ms.to_string()),
            ("MAIL__POLL_MS", s.mail.poll_ms.to_string()),
            (
                "MAIL__STALE_SENDING_MS",
                s.mail.stale_sending_ms.to_string(),
            ),
            ("MAIL__SEND_TIMEOUT_MS", s.mail.send_timeout_ms.to_string()),
            ("RECLAIM_IDLE_MS", s.reclaim_idle_ms.to_string()),
        ];
        let optional = [
            ("DATABASE__SCHEMA", s.subgraph.database.schema.clone()),
            (
                "REDIS__URL",
                s.subgraph
                    .redis
                    .url
                    .as_ref()
                    .map(|u| u.expose_secret().to_owned()),
            ),
            ("REDIS__NAMESPACE", s.subgraph.redis.namespace.clone()),
            (
                "SERVICE_TOKEN",
                s.subgraph
                    .service_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
            ),
            (
                "MAIL__SMTP_URL",
                s.mail
                    .smtp_url
                    .as_ref()
                    .map(|u| u.expose_secret().to_owned()),
            ),
        ];
        vars.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        for (key, value) in vars {
            cmd.env(format!("DRAFTR_NOTIFICATIONS__{key}"), value);
        }
        let child = cmd.spawn().expect("the draftr binary starts");
        Self { child, log }
    }

    fn assert_running(&mut self) {
        let status = self.child.try_wait().expect("wait");
        assert!(
            status.is_none(),
            "notifications exited early ({status:?}): {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// SIGKILL: the process ends wherever it is, mid-send included.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// SIGTERM, then waits for a clean exit.
    async fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill(1)");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "notifications did not stop within 20 s of SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            status.success(),
            "notifications exited with {status} after SIGTERM: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

impl Drop for NotificationsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Books `n` one-night stays (10 listings, 10 guests, 10 at a time); `during(i)` runs after
/// the i-th booking is confirmed.
async fn book_many(app: &TestApp, n: usize, mut during: impl AsyncFnMut(usize)) {
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
        during(i + 1).await;
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

/// Rows a stopped mailer left claimed but not recorded: the only ones that can be sent twice.
async fn rows_left_sending(settings: &NotificationsSettings) -> i64 {
    let db = draftr_common::db::connect(&settings.subgraph.database)
        .await
        .unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM notifications WHERE status = 'SENDING'",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

enum Stop {
    /// SIGTERM, what `kill`, `docker stop` and Kubernetes send first.
    Term,
    /// SIGKILL: no chance to finish anything.
    Kill,
}

/// 200 bookings; the notifications process is stopped after the 80th and a new one started
/// after the 140th. Returns the rows the stopped process left SENDING.
async fn two_hundred_bookings_across_a_restart(app: &TestApp, stop: Stop) -> i64 {
    let settings = app.notifications_settings.clone();
    let mut first = Some(NotificationsProcess::start(&settings));
    let mut second = None;
    let mut left_sending = 0;
    book_many(app, 200, async |done| {
        if done == 80 {
            let mut process = first.take().unwrap();
            process.assert_running();
            let before = app.smtp.messages().len();
            // Mail is flowing when the process is stopped, so the stop lands mid-stream.
            assert!(
                (1..400).contains(&before),
                "{before} emails before the stop"
            );
            match stop {
                Stop::Term => process.terminate().await,
                Stop::Kill => process.kill(),
            }
            left_sending = rows_left_sending(&settings).await;
            println!("{before} emails before the stop; {left_sending} rows left SENDING");
        }
        if done == 140 {
            second = Some(NotificationsProcess::start(&settings));
        }
    })
    .await;
    wait_until("400 distinct emails", Duration::from_secs(90), async || {
        app.smtp.message_ids().iter().collect::<HashSet<_>>().len() >= 400
    })
    .await;
    // Anything sent twice would arrive within the stale-claim time; wait past it.
    tokio::time::sleep(Duration::from_millis(
        settings.mail.stale_sending_ms + 1_000,
    ))
    .await;
    let bus = RedisStreamBus::connect(
        &redis_test_url(),
        &app.namespace,
        "check",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    wait_until(
        "an empty pending list",
        Duration::from_secs(10),
        async || bus.pending("reservations", "notifications").await.unwrap() == 0,
    )
    .await;
    second.expect("restarted").assert_running();
    left_sending
}

/// SIGTERM in the middle: the mailer finishes and records the email in flight before the
/// process exits, so nothing is left half-sent and not one email goes out twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_bookings_with_notifications_terminated_midway_send_each_email_exactly_once() {
    let app = spawn_custom(
        Backend::Postgres,
        Options::default().without_notifications(),
    )
    .await;
    let left_sending = two_hundred_bookings_across_a_restart(&app, Stop::Term).await;
    assert_eq!(left_sending, 0, "a graceful stop leaves no email half-sent");
    assert_each_email_delivered(&app, 200, 0);
}

/// SIGKILL in the middle: at most the one email the kill cut between the SMTP server's 250 and
/// the mailer's record is sent again, under the same Message-ID; none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_bookings_with_notifications_killed_midway_lose_no_email() {
    let app = spawn_custom(
        Backend::Postgres,
        Options::default().without_notifications(),
    )
    .await;
    let left_sending = two_hundred_bookings_across_a_restart(&app, Stop::Kill).await;
    assert!(left_sending <= 1, "one mailer claims one email at a time");
    assert_each_email_delivered(&app, 200, left_sending as usize);
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
    book_many(&app, 20, async |_| {}).await;
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
    settings.subgraph.redis.url = Some(secrecy::SecretString::from(url.clone()));
    let mut notifications = NotificationsProcess::start(&settings);

    wait_until("40 emails", Duration::from_secs(60), async || {
        app.smtp.messages().len() >= 40
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_each_email_delivered(&app, 20, 0);
    notifications.assert_running();
    drop(redis);
}
