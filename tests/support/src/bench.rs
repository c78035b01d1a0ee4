//! What the benches share: knobs from the environment, a PostgreSQL schema per subgraph and
//! run, the subgraphs behind the embedded router (the committed `router.yaml`), and GraphQL
//! calls. Each bench uses part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use draftr_auth::{App as AuthApp, AuthSettings};
use draftr_catalog::{App as CatalogApp, CatalogSettings};
use draftr_common::config::{DatabaseSettings, RedisSettings};
use draftr_common::jwt::KeySource;
use draftr_common::kv::{InMemoryKv, KvStore};
use draftr_notifications::live::LiveHub;
use draftr_notifications::{App as NotificationsApp, NotificationsSettings};
use draftr_payments::provider::SimulatedProvider;
use draftr_payments::{App as PaymentsApp, PaymentsSettings};
use draftr_reservations::{App as ReservationsApp, ReservationsSettings};
use draftr_router::embed::{EmbeddedRouter, Overrides, config_with};
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

/// The notifications subgraph of a [`Stack`], for the live bench.
pub struct Notifications {
    pub port: u16,
    pub hub: LiveHub,
    pub db: DatabaseConnection,
}

/// Auth, catalog, payments (simulated provider) and reservations, with notifications when
/// Redis and an SMTP server are given, behind the embedded router; all in this process, each
/// subgraph on its own port and schema, as in production.
pub struct Stack {
    pub run: String,
    pub router: EmbeddedRouter,
    pub url: String,
    pub provider: Arc<SimulatedProvider>,
    pub reservations_db: DatabaseConnection,
    pub notifications: Option<Notifications>,
    /// Stops every subgraph (their background loops too) before the schemas are dropped, so a
    /// relay or mailer pass never runs against a dropped table.
    stop: tokio::sync::watch::Sender<bool>,
    subgraphs: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct StackOptions {
    pub max_connections: u32,
    /// Redis for the event stream and live fan-out, and the SMTP URL the mailer sends to.
    pub events: Option<(RedisSettings, String)>,
}

const SUBGRAPHS: [&str; 5] = [
    "auth",
    "catalog",
    "payments",
    "reservations",
    "notifications",
];

impl Stack {
    pub async fn start(options: StackOptions) -> anyhow::Result<Self> {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let db =
            |subgraph: &str| database(&format!("bench_{subgraph}_{run}"), options.max_connections);
        let kv: Arc<dyn KvStore> = Arc::new(InMemoryKv::default());
        let token = SecretString::from(format!("bench-{run}"));
        let redis = options
            .events
            .as_ref()
            .map(|(redis, _)| redis.clone())
            .unwrap_or_default();
        let url_of = |port: u16| format!("http://127.0.0.1:{port}/");
        let (stop, _) = tokio::sync::watch::channel(false);
        let stopped = || draftr_common::http::stopped(stop.subscribe());
        let mut subgraphs = Vec::new();

        let auth = AuthApp::build_with(
            AuthSettings {
                listen: "127.0.0.1:0".into(),
                database: db("auth"),
                service_token: Some(token.clone()),
                ..Default::default()
            },
            kv.clone(),
        )
        .await?;
        let auth_url = url_of(auth.port());
        let jwks = auth.jwks();
        subgraphs.push(tokio::spawn(auth.run_until_stopped(stopped())));

        let catalog = CatalogApp::build_with(
            CatalogSettings {
                listen: "127.0.0.1:0".into(),
                database: db("catalog"),
                redis: redis.clone(),
                auth_url: auth_url.clone(),
                service_token: Some(token.clone()),
                ..Default::default()
            },
            kv.clone(),
            KeySource::Static(jwks.clone()),
        )
        .await?;
        let catalog_url = url_of(catalog.port());
        subgraphs.push(tokio::spawn(catalog.run_until_stopped(stopped())));

        let provider = Arc::new(SimulatedProvider::new());
        let payments = PaymentsApp::build_with(
            PaymentsSettings {
                listen: "127.0.0.1:0".into(),
                database: db("payments"),
                service_token: Some(token.clone()),
                ..Default::default()
            },
            kv.clone(),
            KeySource::Static(jwks.clone()),
            provider.clone(),
        )
        .await?;
        let payments_url = url_of(payments.port());
        subgraphs.push(tokio::spawn(payments.run_until_stopped(stopped())));

        let mut reservations_settings = ReservationsSettings {
            listen: "127.0.0.1:0".into(),
            database: db("reservations"),
            redis: redis.clone(),
            service_token: Some(token.clone()),
            catalog_url: catalog_url.clone(),
            payments_url: payments_url.clone(),
            ..Default::default()
        };
        // The live figures measure delivery, not the relay's polling interval.
        reservations_settings.relay_interval_ms = 20;
        let reservations = ReservationsApp::build_with(
            reservations_settings,
            kv.clone(),
            KeySource::Static(jwks.clone()),
        )
        .await?;
        let reservations_url = url_of(reservations.port());
        let reservations_db = reservations.service().db().clone();
        subgraphs.push(tokio::spawn(reservations.run_until_stopped(stopped())));

        let mut subgraph_urls = BTreeMap::from([
            ("auth".into(), auth_url.clone()),
            ("catalog".into(), catalog_url),
            ("reservations".into(), reservations_url),
            ("payments".into(), payments_url),
        ]);
        let notifications = match &options.events {
            Some((redis, smtp_url)) => {
                let mut settings = NotificationsSettings {
                    listen: "127.0.0.1:0".into(),
                    database: db("notifications"),
                    redis: redis.clone(),
                    service_token: Some(token.clone()),
                    auth_url,
                    ..Default::default()
                };
                settings.mail.smtp_url = Some(SecretString::from(smtp_url.clone()));
                settings.mail.poll_ms = 20;
                let app =
                    NotificationsApp::build_with(settings, kv.clone(), KeySource::Static(jwks))
                        .await?;
                let notifications = Notifications {
                    port: app.port(),
                    hub: app.hub(),
                    db: app.db(),
                };
                subgraph_urls.insert("notifications".into(), url_of(notifications.port));
                subgraphs.push(tokio::spawn(app.run_until_stopped(stopped())));
                Some(notifications)
            }
            None => None,
        };

        let router = EmbeddedRouter::start(
            &config_with(
                draftr_router::ROUTER_YAML,
                &Overrides {
                    listen: "127.0.0.1:0".into(),
                    subgraph_urls,
                },
            )?,
            draftr_router::compose::compose(&draftr::schema::subgraphs())?,
        )
        .await?;
        let url = router.url();
        Ok(Self {
            run,
            router,
            url,
            provider,
            reservations_db,
            notifications,
            stop,
            subgraphs,
        })
    }

    /// Stops the subgraphs, then drops every schema this run created.
    pub async fn drop_schemas(self) {
        let _ = self.stop.send(true);
        for subgraph in self.subgraphs {
            let _ = tokio::time::timeout(Duration::from_secs(30), subgraph).await;
        }
        drop_schemas(&self.reservations_db, &self.run, &SUBGRAPHS).await;
    }
}
