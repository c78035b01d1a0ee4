//! The embedded default: every subgraph and the router in one process, SQLite files under a
//! data directory, in-process shared state — nothing to install or start first.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use draftr_auth::{App as AuthApp, AuthSettings};
use draftr_catalog::{App as CatalogApp, CatalogSettings};
use draftr_common::Role;
use draftr_common::events::{EventBus, InProcessBus};
use draftr_common::http::stopped;
use draftr_common::jwt::KeySource;
use draftr_common::kv::{InMemoryKv, KvStore};
use draftr_notifications::{App as NotificationsApp, NotificationsSettings};
use draftr_payments::provider::SimulatedProvider;
use draftr_payments::{App as PaymentsApp, PaymentsSettings};
use draftr_reservations::{App as ReservationsApp, ReservationsSettings};
use draftr_router::embed::{EmbeddedRouter, Overrides, config_with};
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where the embedded default listens and keeps its files.
#[derive(Debug, Clone)]
pub struct EmbeddedSettings {
    pub data_dir: PathBuf,
    pub router_listen: String,
    pub auth_listen: String,
    pub catalog_listen: String,
    pub reservations_listen: String,
    pub payments_listen: String,
    pub notifications_listen: String,
    /// Create the demo accounts (on first start; later starts find them).
    pub demo_data: bool,
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".draftr-data"),
            router_listen: "127.0.0.1:4000".into(),
            auth_listen: "127.0.0.1:4001".into(),
            catalog_listen: "127.0.0.1:4002".into(),
            reservations_listen: "127.0.0.1:4003".into(),
            payments_listen: "127.0.0.1:4004".into(),
            notifications_listen: "127.0.0.1:4005".into(),
            demo_data: true,
        }
    }
}

/// Development-only demo accounts: (email, password, display name, role).
pub const DEMO_USERS: &[(&str, &str, &str, Role)] = &[
    (
        "admin@draftr.test",
        "correct-horse-ada",
        "Ada Admin",
        Role::Admin,
    ),
    (
        "host@draftr.test",
        "correct-horse-hugo",
        "Hugo Host",
        Role::Host,
    ),
    (
        "guest@draftr.test",
        "correct-horse-greta",
        "Greta Guest",
        Role::Guest,
    ),
];

pub struct Embedded {
    pub router: EmbeddedRouter,
    pub auth_port: u16,
    pub catalog_port: u16,
    pub reservations_port: u16,
    pub payments_port: u16,
    pub notifications_port: u16,
    /// Where the embedded mail catcher writes emails (`.eml` files).
    pub mail_dir: PathBuf,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl Embedded {
    pub async fn start(settings: EmbeddedSettings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)?;
        let kv: Arc<dyn KvStore> = Arc::new(InMemoryKv::default());
        // One process: events travel on an in-process bus with the same delivery guarantees.
        let events: Arc<dyn EventBus> = Arc::new(InProcessBus::default());
        let (stop, stop_rx) = watch::channel(false);

        // Environment settings (token lifetimes, throttling…) apply; where things listen and
        // live is the embedded default's to decide.
        // One process: a fresh service credential per start, shared by its subgraphs.
        let service_token = SecretString::from(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut auth_settings: AuthSettings = draftr_common::config::load("auth", None)?;
        auth_settings.service_token = Some(service_token.clone());
        auth_settings.listen = settings.auth_listen.clone();
        auth_settings.database.url = SecretString::from(format!(
            "sqlite://{}",
            settings.data_dir.join("auth.db").display()
        ));
        auth_settings.redis.url = None;
        auth_settings.tokens.signing_key_file = settings.data_dir.join("auth-signing-key.pem");
        let auth = AuthApp::build_with(auth_settings, kv.clone()).await?;
        let auth_port = auth.port();
        let mut demo_host = None;
        if settings.demo_data {
            let service = auth.service();
            for (email, password, name, role) in DEMO_USERS {
                let user = service
                    .ensure_user(email, password, name, *role)
                    .await
                    .map_err(|e| anyhow::anyhow!("demo user {email}: {e}"))?;
                if *role == Role::Host {
                    demo_host = Some(user.id);
                }
            }
        }
        let jwks = auth.jwks();
        let auth_jwks = jwks.clone();
        let auth_jwks_for_notifications = jwks.clone();
        let mut tasks = vec![tokio::spawn(
            auth.run_until_stopped(stopped(stop_rx.clone())),
        )];

        let mut catalog_settings: CatalogSettings = draftr_common::config::load("catalog", None)?;
        catalog_settings.listen = settings.catalog_listen.clone();
        catalog_settings.auth_url = format!("http://127.0.0.1:{auth_port}/");
        catalog_settings.service_token = Some(service_token.clone());
        catalog_settings.database.url = SecretString::from(format!(
            "sqlite://{}",
            settings.data_dir.join("catalog.db").display()
        ));
        let catalog = CatalogApp::build_with(catalog_settings, kv.clone(), KeySource::Static(jwks))
            .await?
            .with_event_bus(events.clone());
        let catalog_port = catalog.port();
        if let Some(host) = demo_host {
            crate::demo::seed_catalog(&catalog.service(), host).await?;
        }
        tasks.push(tokio::spawn(
            catalog.run_until_stopped(stopped(stop_rx.clone())),
        ));

        // Payments: the simulated provider (Stripe's test cards, no network) unless the
        // environment configures Stripe.
        let mut payments_settings: PaymentsSettings =
            draftr_common::config::load("payments", None)?;
        payments_settings.listen = settings.payments_listen.clone();
        payments_settings.service_token = Some(service_token.clone());
        payments_settings.database.url = SecretString::from(format!(
            "sqlite://{}",
            settings.data_dir.join("payments.db").display()
        ));
        let provider = if payments_settings.provider.kind == "simulated" {
            Arc::new(SimulatedProvider::new())
                as Arc<dyn draftr_payments::provider::PaymentProvider>
        } else {
            draftr_payments::app::provider_from(&payments_settings.provider)?
        };
        let payments = PaymentsApp::build_with(
            payments_settings,
            kv.clone(),
            KeySource::Static(auth_jwks.clone()),
            provider,
        )
        .await?;
        let payments_port = payments.port();
        tasks.push(tokio::spawn(
            payments.run_until_stopped(stopped(stop_rx.clone())),
        ));

        let mut reservations_settings: ReservationsSettings =
            draftr_common::config::load("reservations", None)?;
        reservations_settings.listen = settings.reservations_listen.clone();
        reservations_settings.service_token = Some(service_token.clone());
        reservations_settings.catalog_url = format!("http://127.0.0.1:{catalog_port}/");
        reservations_settings.payments_url = format!("http://127.0.0.1:{payments_port}/");
        reservations_settings.database.url = SecretString::from(format!(
            "sqlite://{}",
            settings.data_dir.join("reservations.db").display()
        ));
        let reservations = ReservationsApp::build_with(
            reservations_settings,
            kv.clone(),
            KeySource::Static(auth_jwks),
        )
        .await?
        .with_event_bus(events.clone());
        let reservations_port = reservations.port();
        tasks.push(tokio::spawn(
            reservations.run_until_stopped(stopped(stop_rx.clone())),
        ));

        // Notifications: emails land as .eml files under the data directory unless an SMTP
        // server is configured; live updates stay in process.
        let mut notifications_settings: NotificationsSettings =
            draftr_common::config::load("notifications", None)?;
        notifications_settings.listen = settings.notifications_listen.clone();
        notifications_settings.service_token = Some(service_token);
        notifications_settings.auth_url = format!("http://127.0.0.1:{auth_port}/");
        notifications_settings.redis.url = None;
        notifications_settings.database.url = SecretString::from(format!(
            "sqlite://{}",
            settings.data_dir.join("notifications.db").display()
        ));
        let mail_dir = settings.data_dir.join("mail");
        notifications_settings.mail.dir = mail_dir.display().to_string();
        let notifications = NotificationsApp::build_with(
            notifications_settings,
            kv.clone(),
            KeySource::Static(auth_jwks_for_notifications),
        )
        .await?
        .with_event_bus(events.clone());
        let notifications_port = notifications.port();
        tasks.push(tokio::spawn(
            notifications.run_until_stopped(stopped(stop_rx.clone())),
        ));

        let subgraphs = crate::schema::subgraphs();
        let supergraph = draftr_router::compose::compose(&subgraphs)?;
        let overrides = Overrides {
            listen: settings.router_listen.clone(),
            subgraph_urls: BTreeMap::from([
                ("auth".to_owned(), format!("http://127.0.0.1:{auth_port}/")),
                (
                    "catalog".to_owned(),
                    format!("http://127.0.0.1:{catalog_port}/"),
                ),
                (
                    "reservations".to_owned(),
                    format!("http://127.0.0.1:{reservations_port}/"),
                ),
                (
                    "payments".to_owned(),
                    format!("http://127.0.0.1:{payments_port}/"),
                ),
                (
                    "notifications".to_owned(),
                    format!("http://127.0.0.1:{notifications_port}/"),
                ),
            ]),
        };
        let router = EmbeddedRouter::start(
            &config_with(draftr_router::ROUTER_YAML, &overrides)?,
            supergraph,
        )
        .await?;
        Ok(Self {
            router,
            auth_port,
            catalog_port,
            reservations_port,
            payments_port,
            notifications_port,
            mail_dir,
            stop,
            tasks,
        })
    }

    /// Stops the router, then the subgraphs, letting in-flight requests finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.router.shutdown().await?;
        let _ = self.stop.send(true);
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}
