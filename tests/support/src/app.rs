//! The end-to-end test app: the whole stack ([`draftr::stack`]) as production wires it, plus a
//! probe subgraph, and the GraphQL calls tests make.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{Context, EmptyMutation, EmptySubscription, ID, Object, Schema};
use draftr::stack::{Shared, Stack, StackSettings};
use draftr_auth::AuthSettings;
use draftr_auth::service::AuthService;
use draftr_common::db::StatementCounter;
use draftr_common::graphql::{harden, request_meta, viewer};
use draftr_common::http::{Identify, identify, serve, stopped, with_standard_layers};
use draftr_common::jwt::{KeySource, SigningKey, TokenVerifier};
use draftr_common::testing::{Backend, TestDatabase, redis_test_settings};
use draftr_common::{ApiResult, Role};
use draftr_notifications::NotificationsSettings;
use draftr_payments::provider::{PaymentProvider, SimulatedProvider};
use draftr_reservations::ReservationsSettings;
use draftr_reservations::service::ReservationService;
use draftr_router::compose::SubgraphSdl;
use draftr_router::embed::EmbeddedRouter;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Polls `check` every 50 ms until it holds; fails the test with `what` after `limit`. For
/// what happens in the background (consumers, mailers, reconcilers) and has no event to await.
pub async fn wait_until(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A second subgraph, standing in for the ones to come: it verifies tokens on its own, with
/// auth's public key from the JWKS endpoint and the shared revocation list in Redis.
pub struct ProbeQuery;

#[Object(name = "Query")]
impl ProbeQuery {
    /// The caller's user id as this subgraph sees it.
    async fn whoami(&self, ctx: &Context<'_>) -> ApiResult<Option<ID>> {
        Ok(viewer(ctx)
            .require_user()
            .map(|c| Some(ID(c.sub.to_string())))?)
    }
    /// The request id this subgraph received.
    async fn probe_request_id(&self, ctx: &Context<'_>) -> Option<String> {
        request_meta(ctx).map(|m| m.request_id.clone())
    }
}

pub fn probe_schema() -> Schema<ProbeQuery, EmptyMutation, EmptySubscription> {
    harden(
        Schema::build(ProbeQuery, EmptyMutation, EmptySubscription).enable_federation(),
        &Default::default(),
    )
    .finish()
}

pub fn probe_sdl() -> String {
    probe_schema().sdl_with_options(
        async_graphql::SDLExportOptions::new()
            .federation()
            .compose_directive(),
    )
}

pub struct TestApp {
    pub router_url: String,
    pub auth_url: String,
    pub catalog_url: String,
    /// SQL statements run by each subgraph, for N+1 checks.
    pub auth_statements: StatementCounter,
    pub catalog_statements: StatementCounter,
    pub probe_url: String,
    pub reservations_url: String,
    pub payments_url: String,
    /// The payment provider's view (what was really authorized, captured, refunded).
    pub provider: Arc<SimulatedProvider>,
    pub reservations: Arc<ReservationService>,
    pub reservations_db: TestDatabase,
    pub payments_db: TestDatabase,
    /// Key prefix of this app's event stream and live channel in the shared Redis.
    pub namespace: String,
    /// The SMTP listener notifications sends to.
    pub smtp: crate::smtp::SmtpSink,
    pub notifications_url: String,
    /// graphql-ws endpoints of two notifications replicas (one consumer group).
    pub notifications_ws: String,
    pub notifications2_ws: String,
    /// The settings the notifications replicas use (tests start more from them).
    pub notifications_settings: NotificationsSettings,
    _notifications_db: TestDatabase,
    pub client: reqwest::Client,
    /// Each test app poses as its own client address, so per-address throttling of one test
    /// never touches another running in parallel.
    pub client_ip: String,
    pub service: Arc<AuthService>,
    pub key: SigningKey,
    pub db: TestDatabase,
    /// Kept so the catalog's SQLite file lives as long as the app.
    _catalog_db: TestDatabase,
    /// Dropped with the app: the subgraphs and the router stop.
    stack: Stack,
    _stop_probe: watch::Sender<bool>,
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(
    backend: Backend,
    tweak: impl FnOnce(&mut AuthSettings) + Send + 'static,
) -> TestApp {
    spawn_custom(backend, Options::default().auth(tweak)).await
}

type Tweak<T> = Box<dyn FnOnce(&mut T) + Send>;

/// How a test wants its app different from the default.
#[derive(Default)]
pub struct Options {
    auth: Option<Tweak<AuthSettings>>,
    reservations: Option<Tweak<ReservationsSettings>>,
    /// Applied to the settings of every notifications replica.
    notifications: Option<Tweak<NotificationsSettings>>,
    /// Instead of the simulated provider (e.g. Stripe against a stand-in).
    provider: Option<Arc<dyn PaymentProvider>>,
    /// Start no notifications replicas (the test runs its own).
    no_notifications: bool,
    /// Events and live updates on this Redis instead of the shared one.
    events_redis: Option<String>,
    /// Subgraphs answer introspection and show GraphiQL, as in the embedded default (off, as
    /// in production, unless asked).
    subgraph_introspection: bool,
}

impl Options {
    pub fn auth(mut self, f: impl FnOnce(&mut AuthSettings) + Send + 'static) -> Self {
        self.auth = Some(Box::new(f));
        self
    }
    pub fn reservations(
        mut self,
        f: impl FnOnce(&mut ReservationsSettings) + Send + 'static,
    ) -> Self {
        self.reservations = Some(Box::new(f));
        self
    }
    /// Changes the notifications replicas' settings (both get the same).
    pub fn notifications(
        mut self,
        f: impl FnOnce(&mut NotificationsSettings) + Send + 'static,
    ) -> Self {
        self.notifications = Some(Box::new(f));
        self
    }
    pub fn subgraph_introspection(mut self) -> Self {
        self.subgraph_introspection = true;
        self
    }
    pub fn without_notifications(mut self) -> Self {
        self.no_notifications = true;
        self
    }
    pub fn events_redis(mut self, url: &str) -> Self {
        self.events_redis = Some(url.to_owned());
        self
    }
    pub fn provider(mut self, p: Arc<dyn PaymentProvider>) -> Self {
        self.provider = Some(p);
        self
    }
}

/// The stack as production runs it, in this process: every part on its own database (a fresh
/// PostgreSQL schema or SQLite file), revocations in the shared Redis, auth's keys fetched over
/// HTTP, events and live updates on Redis under a namespace of the test's own, two
/// notifications replicas sending to a real SMTP listener, and a probe subgraph beside them.
pub async fn spawn_custom(backend: Backend, options: Options) -> TestApp {
    draftr_common::telemetry::init_for_tests();
    let db = TestDatabase::new(backend).await;
    let catalog_db = TestDatabase::new(backend).await;
    let payments_db = TestDatabase::new(backend).await;
    let reservations_db = TestDatabase::new(backend).await;
    let notifications_db = TestDatabase::new(backend).await;
    let key = SigningKey::generate();
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let provider = Arc::new(SimulatedProvider::new());
    let smtp = crate::smtp::SmtpSink::start().await;

    let mut settings = StackSettings::default().on_free_ports();
    settings.shared = Shared::FromSettings;
    settings.service_token = Some(SecretString::from(SERVICE_TOKEN));
    settings.provider = Some(
        options
            .provider
            .unwrap_or_else(|| provider.clone() as Arc<dyn PaymentProvider>),
    );
    settings.notifications_replicas = if options.no_notifications { 0 } else { 2 };
    for (part, test_db) in [
        (&mut settings.auth.subgraph.database, &db),
        (&mut settings.catalog.subgraph.database, &catalog_db),
        (&mut settings.payments.subgraph.database, &payments_db),
        (
            &mut settings.reservations.subgraph.database,
            &reservations_db,
        ),
        (
            &mut settings.notifications.subgraph.database,
            &notifications_db,
        ),
    ] {
        *part = test_db.settings.clone();
    }
    let events_redis = options.events_redis.clone();
    settings.for_each(|c| {
        c.limits.introspection = options.subgraph_introspection;
        *c.redis = redis_test_settings();
        // Revocations are shared by everyone in the test Redis; events and live updates stay
        // under this test's namespace, on another Redis if the test asks.
        if matches!(c.name, "catalog" | "reservations" | "notifications") {
            c.redis.namespace = Some(namespace.clone());
            if let Some(url) = &events_redis {
                c.redis.url = Some(SecretString::from(url.clone()));
            }
        }
    });
    settings.auth.tokens.signing_key_pem = Some(SecretString::from(key.to_pem().to_owned()));
    settings.adjust.auth = options.auth;
    settings.payments.provider.stripe_webhook_secret = Some(SecretString::from(WEBHOOK_SECRET));
    settings.adjust.reservations = options.reservations;
    settings.adjust.notifications = options.notifications;
    let mail = &mut settings.notifications.mail;
    mail.smtp_url = Some(SecretString::from(smtp.url.clone()));
    mail.backoff_ms = 200;
    mail.max_backoff_ms = 1_000;
    mail.poll_ms = 50;
    mail.stale_sending_ms = 3_000;
    mail.send_timeout_ms = 1_000;
    settings.notifications.reclaim_idle_ms = 2_000;

    // The probe is its own service: its own Redis connection, keys fetched over HTTP from
    // auth (which is not started yet, so the probe's listener is bound first and it is served
    // once the stack is up).
    let probe_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probe_url = format!("http://{}/", probe_listener.local_addr().unwrap());
    settings.extra_subgraphs.push(SubgraphSdl {
        name: "probe".into(),
        url: probe_url.clone(),
        sdl: probe_sdl(),
    });
    let stack = Stack::start(settings).await.expect("the stack starts");
    let urls = stack.urls.clone();
    let policy = stack.settings.auth.subgraph.token_policy();

    let kv = draftr_common::kv::connect(&redis_test_settings())
        .await
        .expect("Redis at 127.0.0.1:6379");
    let verifier = TokenVerifier::new(
        KeySource::Url(format!("{}.well-known/jwks.json", urls.auth)),
        &policy,
        kv,
    )
    .await
    .expect("verifier");
    let identify_state = Arc::new(Identify {
        verifier: Arc::new(verifier),
        trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
        service_token: None,
    });
    let probe_router = with_standard_layers(draftr_common::graphql::routes(probe_schema()).layer(
        axum::middleware::from_fn_with_state(identify_state, identify),
    ));
    let (stop_probe, probe_stop) = watch::channel(false);
    tokio::spawn(serve(probe_listener, probe_router, stopped(probe_stop)));

    // Nothing listens on port 9 (discard): with no replicas, the test brings its own.
    let ws_of = |i: usize| {
        urls.notifications
            .get(i)
            .map_or("ws://127.0.0.1:9/ws".to_owned(), |u| {
                format!("{}ws", u.replacen("http://", "ws://", 1))
            })
    };
    let octets: [u8; 4] = rand_octets();
    TestApp {
        router_url: urls.router.clone(),
        auth_url: urls.auth.clone(),
        catalog_url: urls.catalog.clone(),
        auth_statements: stack.statements.auth.clone(),
        catalog_statements: stack.statements.catalog.clone(),
        probe_url,
        reservations_url: urls.reservations.clone(),
        payments_url: urls.payments.clone(),
        provider,
        reservations: stack.reservations.clone(),
        reservations_db,
        payments_db,
        namespace,
        smtp,
        notifications_url: urls
            .notifications
            .first()
            .cloned()
            .unwrap_or_else(|| "http://127.0.0.1:9/".to_owned()),
        notifications_ws: ws_of(0),
        notifications2_ws: ws_of(1),
        notifications_settings: stack.settings.notifications.clone(),
        _notifications_db: notifications_db,
        client: reqwest::Client::new(),
        client_ip: format!("10.{}.{}.{}", octets[1], octets[2], octets[3].max(1)),
        service: stack.auth.clone(),
        key,
        db,
        _catalog_db: catalog_db,
        stack,
        _stop_probe: stop_probe,
    }
}

fn rand_octets() -> [u8; 4] {
    *uuid::Uuid::new_v4().as_bytes().first_chunk::<4>().unwrap()
}

/// A GraphQL response, with helpers for what tests look at.
#[derive(Debug)]
pub struct Gql {
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Gql {
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    /// The first error's code, or "" when there is none.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["errors"][0]["message"].as_str().unwrap_or("")
    }
    pub fn ok(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        self.data()
    }
}

impl TestApp {
    pub async fn post(
        &self,
        url: &str,
        query: &str,
        variables: Value,
        token: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Gql {
        let forwarded = extra
            .iter()
            .find(|(k, _)| *k == "x-forwarded-for")
            .map(|(_, v)| *v)
            .unwrap_or(&self.client_ip);
        let mut req = self
            .client
            .post(url)
            .header("x-forwarded-for", forwarded)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (k, v) in extra.iter().filter(|(k, _)| *k != "x-forwarded-for") {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Gql { headers, body }
    }

    /// Through the router.
    pub async fn gql(&self, query: &str, variables: Value, token: Option<&str>) -> Gql {
        self.post(&self.router_url, query, variables, token, &[])
            .await
    }

    pub async fn register(&self, email: &str, password: &str, name: &str) -> Gql {
        self.gql(
            "mutation($i: RegisterInput!) { register(input: $i) { accessToken refreshToken expiresIn user { id email displayName role } } }",
            json!({ "i": { "email": email, "password": password, "displayName": name } }),
            None,
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Gql {
        let ip = self.client_ip.clone();
        self.login_from(&ip, email, password).await
    }

    /// Signs in as seen from client address `ip`.
    pub async fn login_from(&self, ip: &str, email: &str, password: &str) -> Gql {
        self.post(
            &self.router_url,
            "mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken expiresIn user { id email role } } }",
            json!({ "i": { "email": email, "password": password } }),
            None,
            &[("x-forwarded-for", ip)],
        )
        .await
    }

    /// Registers a fresh user and returns (email, access token, refresh token, id).
    pub async fn new_user(&self) -> (String, String, String, String) {
        let email = format!("u{}@example.com", uuid::Uuid::new_v4().simple());
        let r = self.register(&email, PASSWORD, "Test User").await;
        let p = &r.ok()["register"];
        (
            email,
            p["accessToken"].as_str().unwrap().to_owned(),
            p["refreshToken"].as_str().unwrap().to_owned(),
            p["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// An administrator, made the way an operator would (the bootstrap path), signed in.
    pub async fn new_admin(&self) -> (String, String) {
        let email = format!("admin{}@example.com", uuid::Uuid::new_v4().simple());
        let user = self
            .service
            .ensure_user(&email, PASSWORD, "Admin", Role::Admin)
            .await
            .unwrap();
        let token = self.login(&email, PASSWORD).await.ok()["login"]["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();
        (user.id.to_string(), token)
    }

    pub async fn me(&self, token: &str) -> Gql {
        self.gql(
            "{ me { id email displayName role createdAt } }",
            json!({}),
            Some(token),
        )
        .await
    }

    pub async fn whoami(&self, token: &str) -> Gql {
        self.gql("{ whoami }", json!({}), Some(token)).await
    }

    /// Rows in the users table, read straight from the database.
    pub async fn user_count(&self) -> i64 {
        let db = draftr_common::db::connect(&self.db.settings).await.unwrap();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM users",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }

    /// Subgraph name → URL of the five subgraphs (not the probe).
    pub fn subgraph_urls(&self) -> std::collections::BTreeMap<String, String> {
        self.stack.urls.subgraph_urls()
    }

    pub fn router(&self) -> &EmbeddedRouter {
        &self.stack.router
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The Stripe webhook signing secret of the test payments service.
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

/// The service credential the test subgraphs share.
pub const SERVICE_TOKEN: &str = "test-service-token-0123456789abcdef";
