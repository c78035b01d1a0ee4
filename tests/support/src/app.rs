use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{Context, EmptyMutation, EmptySubscription, ID, Object, Schema};
use draftr_auth::service::AuthService;
use draftr_auth::{App as AuthApp, AuthSettings};
use draftr_catalog::{App as CatalogApp, CatalogSettings};
use draftr_common::db::StatementCounter;
use draftr_common::graphql::{harden, request_meta, viewer};
use draftr_common::http::{Identify, identify, serve, stopped, with_standard_layers};
use draftr_common::jwt::{KeySource, SigningKey, TokenPolicy, TokenVerifier};
use draftr_common::testing::{Backend, TestDatabase, redis_test_settings};
use draftr_common::{ApiResult, Role};
use draftr_notifications::{App as NotificationsApp, NotificationsSettings};
use draftr_payments::provider::{PaymentProvider, SimulatedProvider};
use draftr_payments::{App as PaymentsApp, PaymentsSettings};
use draftr_reservations::service::ReservationService;
use draftr_reservations::{App as ReservationsApp, ReservationsSettings};
use draftr_router::compose::{SubgraphSdl, compose};
use draftr_router::embed::{EmbeddedRouter, Overrides, config_with};
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
    harden(Schema::build(ProbeQuery, EmptyMutation, EmptySubscription).enable_federation()).finish()
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
    router: Option<EmbeddedRouter>,
    stop: watch::Sender<bool>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

pub async fn spawn_with(
    backend: Backend,
    tweak: impl FnOnce(&mut AuthSettings) + 'static,
) -> TestApp {
    spawn_custom(backend, Options::default().auth(tweak)).await
}

type Tweak<T> = Box<dyn FnOnce(&mut T)>;

/// How a test wants its app different from the default.
#[derive(Default)]
pub struct Options {
    auth: Option<Tweak<AuthSettings>>,
    reservations: Option<Tweak<ReservationsSettings>>,
    /// Instead of the simulated provider (e.g. Stripe against a stand-in).
    provider: Option<Arc<dyn PaymentProvider>>,
    /// Start no notifications replicas (the test runs its own).
    no_notifications: bool,
    /// Events and live updates on this Redis instead of the shared one.
    events_redis: Option<String>,
}

impl Options {
    pub fn auth(mut self, f: impl FnOnce(&mut AuthSettings) + 'static) -> Self {
        self.auth = Some(Box::new(f));
        self
    }
    pub fn reservations(mut self, f: impl FnOnce(&mut ReservationsSettings) + 'static) -> Self {
        self.reservations = Some(Box::new(f));
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

pub async fn spawn_custom(backend: Backend, options: Options) -> TestApp {
    draftr_common::telemetry::init_for_tests();
    let db = TestDatabase::new(backend).await;
    let key = SigningKey::generate();
    let mut settings = AuthSettings {
        listen: "127.0.0.1:0".into(),
        database: db.settings.clone(),
        redis: redis_test_settings(),
        ..Default::default()
    };
    settings.tokens.signing_key_pem = Some(SecretString::from(key.to_pem().to_owned()));
    settings.service_token = Some(SecretString::from(SERVICE_TOKEN));
    if let Some(tweak) = options.auth {
        tweak(&mut settings);
    }
    let policy = TokenPolicy {
        issuer: settings.tokens.issuer.clone(),
        audience: settings.tokens.audience.clone(),
    };

    let (stop, stop_rx) = watch::channel(false);

    let auth = AuthApp::build(settings).await.expect("auth starts");
    let auth_url = format!("http://127.0.0.1:{}/", auth.port());
    let service = auth.service();
    let auth_statements = auth.statements();
    tokio::spawn(auth.run_until_stopped(stopped(stop_rx.clone())));

    let catalog_db = TestDatabase::new(backend).await;
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let catalog = CatalogApp::build(CatalogSettings {
        listen: "127.0.0.1:0".into(),
        database: catalog_db.settings.clone(),
        redis: draftr_common::config::RedisSettings {
            namespace: Some(namespace.clone()),
            url: Some(SecretString::from(
                options.events_redis.clone().unwrap_or_else(|| {
                    secrecy::ExposeSecret::expose_secret(
                        redis_test_settings().url.as_ref().unwrap(),
                    )
                    .to_owned()
                }),
            )),
        },
        jwks_url: format!("{auth_url}.well-known/jwks.json"),
        auth_url: auth_url.clone(),
        service_token: Some(SecretString::from(SERVICE_TOKEN)),
        ..Default::default()
    })
    .await
    .expect("catalog starts");
    let catalog_url = format!("http://127.0.0.1:{}/", catalog.port());
    let catalog_statements = catalog.statements();
    tokio::spawn(catalog.run_until_stopped(stopped(stop_rx.clone())));

    let provider = Arc::new(SimulatedProvider::new());
    let payments_db = TestDatabase::new(backend).await;
    let mut payments_settings = PaymentsSettings {
        listen: "127.0.0.1:0".into(),
        database: payments_db.settings.clone(),
        redis: redis_test_settings(),
        jwks_url: format!("{auth_url}.well-known/jwks.json"),
        service_token: Some(SecretString::from(SERVICE_TOKEN)),
        ..Default::default()
    };
    payments_settings.provider.stripe_webhook_secret = Some(SecretString::from(WEBHOOK_SECRET));
    let payments_kv = draftr_common::kv::connect(&payments_settings.redis)
        .await
        .expect("Redis at 127.0.0.1:6379");
    let payments = PaymentsApp::build_with(
        payments_settings.clone(),
        payments_kv,
        KeySource::Url(payments_settings.jwks_url.clone()),
        options
            .provider
            .unwrap_or_else(|| provider.clone() as Arc<dyn PaymentProvider>),
    )
    .await
    .expect("payments starts");
    let payments_url = format!("http://127.0.0.1:{}/", payments.port());
    tokio::spawn(payments.run_until_stopped(stopped(stop_rx.clone())));

    let reservations_db = TestDatabase::new(backend).await;
    let mut reservations_settings = ReservationsSettings {
        listen: "127.0.0.1:0".into(),
        database: reservations_db.settings.clone(),
        redis: redis_test_settings(),
        jwks_url: format!("{auth_url}.well-known/jwks.json"),
        service_token: Some(SecretString::from(SERVICE_TOKEN)),
        catalog_url: catalog_url.clone(),
        payments_url: payments_url.clone(),
        ..Default::default()
    };
    reservations_settings.redis.namespace = Some(namespace.clone());
    if let Some(url) = &options.events_redis {
        reservations_settings.redis.url = Some(SecretString::from(url.clone()));
    }
    if let Some(tweak) = options.reservations {
        tweak(&mut reservations_settings);
    }
    let reservations = ReservationsApp::build(reservations_settings)
        .await
        .expect("reservations starts");
    let reservations_url = format!("http://127.0.0.1:{}/", reservations.port());
    let reservations_service = reservations.service();
    tokio::spawn(reservations.run_until_stopped(stopped(stop_rx.clone())));

    let smtp = crate::smtp::SmtpSink::start().await;
    let notifications_db = TestDatabase::new(backend).await;
    let mut notifications_settings = NotificationsSettings {
        listen: "127.0.0.1:0".into(),
        database: notifications_db.settings.clone(),
        redis: redis_test_settings(),
        jwks_url: format!("{auth_url}.well-known/jwks.json"),
        service_token: Some(SecretString::from(SERVICE_TOKEN)),
        auth_url: auth_url.clone(),
        ..Default::default()
    };
    notifications_settings.redis.namespace = Some(namespace.clone());
    if let Some(url) = &options.events_redis {
        notifications_settings.redis.url = Some(SecretString::from(url.clone()));
    }
    notifications_settings.mail.smtp_url = Some(SecretString::from(smtp.url.clone()));
    notifications_settings.mail.backoff_ms = 200;
    notifications_settings.mail.max_backoff_ms = 1_000;
    notifications_settings.mail.poll_ms = 50;
    notifications_settings.mail.stale_sending_ms = 3_000;
    notifications_settings.mail.send_timeout_ms = 1_000;
    notifications_settings.reclaim_idle_ms = 2_000;
    let mut notifications_ports = Vec::new();
    let replicas = if options.no_notifications { 0 } else { 2 };
    for _ in 0..replicas {
        let replica = NotificationsApp::build(notifications_settings.clone())
            .await
            .expect("notifications starts");
        notifications_ports.push(replica.port());
        tokio::spawn(replica.run_until_stopped(stopped(stop_rx.clone())));
    }
    if notifications_ports.is_empty() {
        // Nothing listens there: the test brings its own notifications.
        notifications_ports = vec![9, 9];
    }
    let notifications_url = format!("http://127.0.0.1:{}/", notifications_ports[0]);

    // The probe is its own service: its own Redis connection, keys fetched over HTTP.
    let kv = draftr_common::kv::connect(&redis_test_settings())
        .await
        .expect("Redis at 127.0.0.1:6379");
    let verifier = TokenVerifier::new(
        KeySource::Url(format!("{auth_url}.well-known/jwks.json")),
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
    let probe_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let probe_url = format!("http://{}/", probe_listener.local_addr().unwrap());
    tokio::spawn(serve(
        probe_listener,
        probe_router,
        stopped(stop_rx.clone()),
    ));

    let supergraph = compose(&[
        SubgraphSdl {
            name: "auth".into(),
            url: auth_url.clone(),
            sdl: draftr_auth::graphql::sdl(),
        },
        SubgraphSdl {
            name: "catalog".into(),
            url: catalog_url.clone(),
            sdl: draftr_catalog::graphql::sdl(),
        },
        SubgraphSdl {
            name: "reservations".into(),
            url: reservations_url.clone(),
            sdl: draftr_reservations::graphql::sdl(),
        },
        SubgraphSdl {
            name: "payments".into(),
            url: payments_url.clone(),
            sdl: draftr_payments::graphql::sdl(),
        },
        SubgraphSdl {
            name: "notifications".into(),
            url: notifications_url.clone(),
            sdl: draftr_notifications::graphql::sdl(),
        },
        SubgraphSdl {
            name: "probe".into(),
            url: probe_url.clone(),
            sdl: probe_sdl(),
        },
    ])
    .expect("supergraph composes");
    let overrides = Overrides {
        listen: "127.0.0.1:0".into(),
        subgraph_urls: BTreeMap::from([
            ("auth".into(), auth_url.clone()),
            ("catalog".into(), catalog_url.clone()),
            ("reservations".into(), reservations_url.clone()),
            ("payments".into(), payments_url.clone()),
            ("notifications".into(), notifications_url.clone()),
            ("probe".into(), probe_url.clone()),
        ]),
    };
    let router = EmbeddedRouter::start(
        &config_with(draftr_router::ROUTER_YAML, &overrides).unwrap(),
        supergraph,
    )
    .await
    .expect("router starts without a GraphOS key");

    let octets: [u8; 4] = rand_octets();
    TestApp {
        router_url: router.url(),
        auth_url,
        catalog_url,
        auth_statements,
        catalog_statements,
        probe_url,
        reservations_url,
        payments_url,
        provider,
        reservations: reservations_service,
        reservations_db,
        payments_db,
        namespace,
        smtp,
        notifications_url,
        notifications_ws: format!("ws://127.0.0.1:{}/ws", notifications_ports[0]),
        notifications2_ws: format!("ws://127.0.0.1:{}/ws", notifications_ports[1]),
        notifications_settings,
        _notifications_db: notifications_db,
        client: reqwest::Client::new(),
        client_ip: format!("10.{}.{}.{}", octets[1], octets[2], octets[3].max(1)),
        service,
        key,
        db,
        _catalog_db: catalog_db,
        router: Some(router),
        stop,
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

    pub fn router(&self) -> &EmbeddedRouter {
        self.router.as_ref().unwrap()
    }
}

pub const PASSWORD: &str = "correct horse battery staple";

/// The Stripe webhook signing secret of the test payments service.
pub const WEBHOOK_SECRET: &str = "whsec_test_0123456789abcdef";

/// The service credential the test subgraphs share.
pub const SERVICE_TOKEN: &str = "test-service-token-0123456789abcdef";
