//! What the benches share: knobs from the environment, a PostgreSQL schema per subgraph and
//! run, the stack behind the embedded router (the committed `router.yaml`), and GraphQL
//! calls. Each bench uses part of it.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use draftr::stack::{Shared, Stack, StackSettings};
use draftr_common::config::{DatabaseSettings, RedisSettings};
use draftr_payments::provider::SimulatedProvider;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::SecretString;
use serde_json::{Value, json};

pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A schema of its own in the bench database (`DRAFTR_BENCH_DATABASE_URL`, default the local
/// PostgreSQL), so a run never touches anything but what it created.
pub fn database(schema: &str, max_connections: u32) -> DatabaseSettings {
    let url = std::env::var("DRAFTR_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    DatabaseSettings {
        url: SecretString::from(url),
        schema: Some(schema.to_owned()),
        max_connections,
        ..Default::default()
    }
}

/// Drops this run's schemas (`bench_<subgraph>_<run>`).
pub async fn drop_schemas(db: &DatabaseConnection, run: &str, subgraphs: &[&str]) {
    for subgraph in subgraphs {
        let _ = db
            .execute_unprepared(&format!(
                "DROP SCHEMA IF EXISTS bench_{subgraph}_{run} CASCADE"
            ))
            .await;
    }
}

pub async fn gql(
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

/// `YYYY-MM-DD`, `n` days from today.
pub fn day(n: usize) -> String {
    (Utc::now().date_naive() + chrono::Duration::days(n as i64))
        .format("%Y-%m-%d")
        .to_string()
}

/// The `q` quantile of sorted durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

/// Registers `n` users through the router; returns their access tokens.
pub async fn register_users(
    client: &reqwest::Client,
    url: &str,
    run: &str,
    n: usize,
) -> Vec<String> {
    let register = "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }";
    let mut tokens = Vec::with_capacity(n);
    for i in 0..n {
        let res = gql(
            client,
            url,
            register,
            json!({ "i": { "email": format!("u{i}-{run}@bench.test"), "password": "correct horse battery", "displayName": format!("Bench {i}") } }),
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
    tokens
}

/// Creates a published listing at 100.00 EUR a night; returns its id.
pub async fn create_listing(
    client: &reqwest::Client,
    url: &str,
    host: &str,
    title: &str,
    policy: &str,
) -> String {
    let res = gql(
        client,
        url,
        "mutation($i: CreatePropertyInput!) { createProperty(input: $i) { id } }",
        json!({ "i": {
            "title": title, "description": "For measuring",
            "address": { "line1": "1 Bench Road", "city": "Lyon", "country": "FR" },
            "nightlyRate": { "amount": 10_000, "currency": "EUR" },
            "maxGuests": 4, "bedrooms": 1, "cancellationPolicy": policy, "status": "PUBLISHED"
        }}),
        Some(host),
    )
    .await;
    res["data"]["createProperty"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("property: {res}"))
        .to_owned()
}

/// Auth, catalog, payments (simulated provider) and reservations, with notifications when
/// Redis and an SMTP server are given, behind the embedded router: the shared
/// [`draftr::stack::Stack`], each subgraph on its own port and PostgreSQL schema.
pub struct BenchStack {
    pub run: String,
    pub url: String,
    pub provider: Arc<SimulatedProvider>,
    pub reservations_db: DatabaseConnection,
    pub stack: Stack,
}

pub struct StackOptions {
    pub max_connections: u32,
    /// Redis for the event stream and live fan-out, and the SMTP URL the mailer sends to.
    /// `None`: no notifications, everything shared in process.
    pub events: Option<(RedisSettings, String)>,
}

const SUBGRAPHS: [&str; 5] = [
    "auth",
    "catalog",
    "payments",
    "reservations",
    "notifications",
];

impl BenchStack {
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let provider = Arc::new(SimulatedProvider::new());
        let mut settings = StackSettings::default()
            .on_free_ports()
            .with_databases(|part| {
                database(&format!("bench_{part}_{run}"), options.max_connections)
            });
        settings.provider = Some(provider.clone());
        settings.service_token = Some(SecretString::from(format!("bench-{run}")));
        match &options.events {
            Some((redis, smtp_url)) => {
                settings.shared = Shared::FromSettings;
                settings.for_each(|c| *c.redis = redis.clone());
                settings.notifications.mail.smtp_url = Some(SecretString::from(smtp_url.clone()));
                settings.notifications.mail.poll_ms = 20;
                // The live figures measure delivery, not the relay's polling interval.
                settings.reservations.relay_interval_ms = 20;
                // The live bench holds many idle sockets per user from a process that never
                // reads (so never answers pings): lift the per-user cap and the idle timeout.
                settings.notifications.socket.max_connections_per_user = usize::MAX;
                settings.notifications.socket.idle_timeout_ms = 24 * 3600 * 1000;
            }
            None => settings.notifications_replicas = 0,
        }
        let stack = Stack::start(settings).await?;
        let reservations_db = stack.reservations.db().clone();
        Ok(Self {
            url: stack.urls.router.clone(),
            run,
            provider,
            reservations_db,
            stack,
        })
    }

    /// Stops the subgraphs, then drops every schema this run created.
    pub async fn drop_schemas(self) {
        let Self {
            run,
            reservations_db,
            stack,
            ..
        } = self;
        let _ = tokio::time::timeout(Duration::from_secs(30), stack.shutdown()).await;
        drop_schemas(&reservations_db, &run, &SUBGRAPHS).await;
    }
}
