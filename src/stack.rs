//! Every subgraph and the router in this process, wired to one another: the one way the
//! embedded default (`draftr run`), the end-to-end tests and the benches start Draftr.
//!
//! The caller hands in each part's settings (where it keeps its data, how it is tuned); the
//! stack decides only what it alone knows once the ports are bound: the URLs the parts call one
//! another on, the service credential they share, and the router's subgraph URLs. Each part is
//! built with its own `App::build_with`, exactly as `draftr <part>` builds it, so what runs here
//! is what runs in production, minus the network between processes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use draftr_auth::service::AuthService;
use draftr_auth::{App as AuthApp, AuthSettings};
use draftr_catalog::service::CatalogService;
use draftr_catalog::{App as CatalogApp, CatalogSettings};
use draftr_common::config::{DatabaseSettings, Subgraph, SubgraphSettings};
use draftr_common::db::StatementCounter;
use draftr_common::events::{EventBus, InProcessBus};
use draftr_common::http::stopped;
use draftr_common::jwt::KeySource;
use draftr_common::kv::{InMemoryKv, KvStore};
use draftr_notifications::live::LiveHub;
use draftr_notifications::{App as NotificationsApp, NotificationsSettings};
use draftr_payments::provider::PaymentProvider;
use draftr_payments::{App as PaymentsApp, PaymentsSettings};
use draftr_reservations::service::ReservationService;
use draftr_reservations::{App as ReservationsApp, ReservationsSettings};
use draftr_router::compose::{SubgraphSdl, compose};
use draftr_router::embed::{EmbeddedRouter, Overrides, config_with};
use sea_orm::DatabaseConnection;
use secrecy::SecretString;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where the parts keep what they share: revocations and throttling, events, auth's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shared {
    /// In this process: one in-memory store, the in-process event bus, auth's public keys
    /// handed over directly, live updates without Redis. Correct only while every part runs
    /// here (the embedded default, and benches that measure the parts without Redis).
    InProcess,
    /// As in production: every part connects to the Redis in its own settings, and fetches
    /// auth's keys from auth's JWKS endpoint over HTTP.
    FromSettings,
}

/// What to start. Build it with [`StackSettings::from_env`] or [`StackSettings::default`],
/// then change what the caller cares about.
pub struct StackSettings {
    pub auth: AuthSettings,
    pub catalog: CatalogSettings,
    pub payments: PaymentsSettings,
    pub reservations: ReservationsSettings,
    pub notifications: NotificationsSettings,
    /// Notifications replicas sharing one consumer group. With none, the router's
    /// notifications URL points at a closed port (callers start their own processes).
    pub notifications_replicas: usize,
    pub router_listen: String,
    /// The router configuration the listen address and subgraph URLs are written into.
    pub router_yaml: String,
    pub shared: Shared,
    /// The payment provider; `None` builds the one payments' settings name.
    pub provider: Option<Arc<dyn PaymentProvider>>,
    /// Subgraphs composed into the supergraph beside Draftr's own (tests add a probe).
    pub extra_subgraphs: Vec<SubgraphSdl>,
    /// The credential the parts present to one another; `None` makes a fresh random one.
    pub service_token: Option<SecretString>,
    /// Demo accounts and listings, created on first start (development only).
    pub demo_data: bool,
    /// Changes made after the stack has wired a part, just before it is built (a test that
    /// points reservations at a dead catalog).
    pub adjust: Adjust,
}

type AdjustFn<T> = Option<Box<dyn FnOnce(&mut T) + Send>>;

/// One optional change per part, see [`StackSettings::adjust`].
#[derive(Default)]
pub struct Adjust {
    pub auth: AdjustFn<AuthSettings>,
    pub catalog: AdjustFn<CatalogSettings>,
    pub payments: AdjustFn<PaymentsSettings>,
    pub reservations: AdjustFn<ReservationsSettings>,
    pub notifications: AdjustFn<NotificationsSettings>,
}

fn adjust<T>(settings: &mut T, change: AdjustFn<T>) {
    if let Some(change) = change {
        change(settings);
    }
}

impl Default for StackSettings {
    /// Every part's built-in defaults (development ports, SQLite under `.draftr-data`),
    /// shared state in process, no demo data.
    fn default() -> Self {
        Self {
            auth: AuthSettings::default(),
            catalog: CatalogSettings::default(),
            payments: PaymentsSettings::default(),
            reservations: ReservationsSettings::default(),
            notifications: NotificationsSettings::default(),
            notifications_replicas: 1,
            router_listen: "127.0.0.1:4000".into(),
            router_yaml: draftr_router::ROUTER_YAML.to_owned(),
            shared: Shared::InProcess,
            provider: None,
            extra_subgraphs: Vec::new(),
            service_token: None,
            demo_data: false,
            adjust: Adjust::default(),
        }
    }
}

impl StackSettings {
    /// Each part's settings as `draftr <part>` would read them (defaults, then
    /// `DRAFTR_<PART>__…` variables).
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            auth: draftr_common::config::load("auth", None)?,
            catalog: draftr_common::config::load("catalog", None)?,
            payments: draftr_common::config::load("payments", None)?,
            reservations: draftr_common::config::load("reservations", None)?,
            notifications: draftr_common::config::load("notifications", None)?,
            ..Self::default()
        })
    }

    /// Every part on a free port, the router too (tests, benches).
    pub fn on_free_ports(mut self) -> Self {
        self.for_each(|c| *c.listen = "127.0.0.1:0".into());
        self.router_listen = "127.0.0.1:0".into();
        self
    }

    /// Each part's database from `database(part name)`.
    pub fn with_databases(mut self, database: impl Fn(&str) -> DatabaseSettings) -> Self {
        self.for_each(|c| *c.database = database(c.name));
        self
    }

    /// Each part in its own SQLite file `<dir>/<part>.db`.
    pub fn in_sqlite_dir(self, dir: &Path) -> Self {
        self.with_databases(|name| DatabaseSettings {
            url: SecretString::from(format!(
                "sqlite://{}",
                dir.join(format!("{name}.db")).display()
            )),
            ..Default::default()
        })
    }

    /// Runs `change` on each part's shared settings.
    pub fn for_each(&mut self, mut change: impl FnMut(Common<'_>)) {
        fn common<S: Subgraph>(s: &mut SubgraphSettings<S>) -> Common<'_> {
            Common {
                name: S::NAME,
                listen: &mut s.listen,
                database: &mut s.database,
                redis: &mut s.redis,
                service_token: &mut s.service_token,
                limits: &mut s.limits,
            }
        }
        change(common(&mut self.auth.subgraph));
        change(common(&mut self.catalog.subgraph));
        change(common(&mut self.payments.subgraph));
        change(common(&mut self.reservations.subgraph));
        change(common(&mut self.notifications.subgraph));
    }
}

/// The part of one subgraph's settings the stack changes for all of them at once.
pub struct Common<'a> {
    pub name: &'static str,
    pub listen: &'a mut String,
    pub database: &'a mut DatabaseSettings,
    pub redis: &'a mut draftr_common::config::RedisSettings,
    pub service_token: &'a mut Option<SecretString>,
    /// What a request may ask of the part, introspection included.
    pub limits: &'a mut draftr_common::config::LimitSettings,
}

/// Where each part answers, `http://127.0.0.1:<port>/`.
#[derive(Debug, Clone)]
pub struct StackUrls {
    pub router: String,
    pub auth: String,
    pub catalog: String,
    pub payments: String,
    pub reservations: String,
    /// One per replica (empty when none were started).
    pub notifications: Vec<String>,
}

impl StackUrls {
    /// Subgraph name → URL for Draftr's five subgraphs (the first notifications replica), as
    /// [`crate::schema::subgraphs_at`] takes them.
    pub fn subgraph_urls(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("auth".to_owned(), self.auth.clone()),
            ("catalog".to_owned(), self.catalog.clone()),
            ("reservations".to_owned(), self.reservations.clone()),
            ("payments".to_owned(), self.payments.clone()),
            (
                "notifications".to_owned(),
                self.notifications
                    .first()
                    .cloned()
                    .unwrap_or_else(|| NOWHERE.to_owned()),
            ),
        ])
    }
}

/// Statements each part has run on its database (N+1 checks compare them).
#[derive(Clone)]
pub struct Statements {
    pub auth: StatementCounter,
    pub catalog: StatementCounter,
    pub payments: StatementCounter,
    pub reservations: StatementCounter,
    /// The first replica's.
    pub notifications: Option<StatementCounter>,
}

/// One notifications replica's handles, for tests and benches that look inside.
pub struct NotificationsReplica {
    pub port: u16,
    pub hub: LiveHub,
    pub db: DatabaseConnection,
}

/// A running stack. [`Stack::shutdown`] stops it in order; dropping it stops the parts too
/// (the stop channel closes), and the router with its [`EmbeddedRouter`].
pub struct Stack {
    pub router: EmbeddedRouter,
    pub urls: StackUrls,
    pub statements: Statements,
    pub auth: Arc<AuthService>,
    pub catalog: Arc<CatalogService>,
    pub reservations: Arc<ReservationService>,
    pub notifications: Vec<NotificationsReplica>,
    /// The settings each part was started with, wiring included (tests start more replicas
    /// from these).
    pub settings: StartedSettings,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

/// The final settings of each part, after the stack filled in URLs and the credential.
#[derive(Clone)]
pub struct StartedSettings {
    pub auth: AuthSettings,
    pub catalog: CatalogSettings,
    pub payments: PaymentsSettings,
    pub reservations: ReservationsSettings,
    pub notifications: NotificationsSettings,
}

fn url_of(port: u16) -> String {
    format!("http://127.0.0.1:{port}/")
}

/// A closed port (discard): where the router's notifications URL points when none run here.
const NOWHERE: &str = "http://127.0.0.1:9/";

impl Stack {
    pub async fn start(mut s: StackSettings) -> anyhow::Result<Self> {
        let token = s.service_token.clone().unwrap_or_else(|| {
            SecretString::from(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ))
        });
        s.for_each(|c| *c.service_token = Some(token.clone()));
        let in_process = s.shared == Shared::InProcess;
        if in_process {
            s.for_each(|c| c.redis.url = None);
        }
        let kv: Arc<dyn KvStore> = Arc::new(InMemoryKv::default());
        let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::default());
        let kv_for = |settings: &draftr_common::config::RedisSettings| {
            let kv = kv.clone();
            let settings = settings.clone();
            async move {
                if in_process {
                    Ok(kv)
                } else {
                    draftr_common::kv::connect(&settings).await
                }
            }
        };
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        let changes = std::mem::take(&mut s.adjust);
        adjust(&mut s.auth, changes.auth);
        let auth =
            AuthApp::build_with(s.auth.clone(), kv_for(&s.auth.subgraph.redis).await?).await?;
        let auth_url = url_of(auth.port());
        let jwks = auth.jwks();
        let keys = || {
            if in_process {
                KeySource::Static(jwks.clone())
            } else {
                KeySource::Url(format!("{auth_url}.well-known/jwks.json"))
            }
        };
        let auth_service = auth.service();
        let auth_statements = auth.statements();
        let demo_host = match s.demo_data {
            true => Some(crate::demo::seed_users(&auth_service).await?),
            false => None,
        };
        tasks.push(tokio::spawn(
            auth.run_until_stopped(stopped(stop_rx.clone())),
        ));
        let jwks_url = format!("{auth_url}.well-known/jwks.json");

        s.catalog.subgraph.jwks_url = jwks_url.clone();
        s.catalog.auth_url = auth_url.clone();
        adjust(&mut s.catalog, changes.catalog);
        let mut catalog = CatalogApp::build_with(
            s.catalog.clone(),
            kv_for(&s.catalog.subgraph.redis).await?,
            keys(),
        )
        .await?;
        if in_process {
            catalog = catalog.with_event_bus(bus.clone());
        }
        let catalog_url = url_of(catalog.port());
        let catalog_service = catalog.service();
        let catalog_statements = catalog.statements();
        if let Some(host) = demo_host {
            crate::demo::seed_catalog(&catalog_service, host).await?;
        }
        tasks.push(tokio::spawn(
            catalog.run_until_stopped(stopped(stop_rx.clone())),
        ));

        s.payments.subgraph.jwks_url = jwks_url.clone();
        adjust(&mut s.payments, changes.payments);
        let provider = match s.provider.take() {
            Some(p) => p,
            None => draftr_payments::app::provider_from(&s.payments.provider)?,
        };
        let payments = PaymentsApp::build_with(
            s.payments.clone(),
            kv_for(&s.payments.subgraph.redis).await?,
            keys(),
            provider,
        )
        .await?;
        let payments_url = url_of(payments.port());
        let payments_statements = payments.statements();
        tasks.push(tokio::spawn(
            payments.run_until_stopped(stopped(stop_rx.clone())),
        ));

        s.reservations.subgraph.jwks_url = jwks_url.clone();
        s.reservations.catalog_url = catalog_url.clone();
        s.reservations.payments_url = payments_url.clone();
        adjust(&mut s.reservations, changes.reservations);
        let mut reservations = ReservationsApp::build_with(
            s.reservations.clone(),
            kv_for(&s.reservations.subgraph.redis).await?,
            keys(),
        )
        .await?;
        if in_process {
            reservations = reservations.with_event_bus(bus.clone());
        }
        let reservations_url = url_of(reservations.port());
        let reservations_service = reservations.service();
        let reservations_statements = reservations.statements();
        tasks.push(tokio::spawn(
            reservations.run_until_stopped(stopped(stop_rx.clone())),
        ));

        s.notifications.subgraph.jwks_url = jwks_url;
        s.notifications.auth_url = auth_url.clone();
        adjust(&mut s.notifications, changes.notifications);
        let mut notifications = Vec::new();
        let mut notifications_statements = None;
        for _ in 0..s.notifications_replicas {
            let mut replica = NotificationsApp::build_with(
                s.notifications.clone(),
                kv_for(&s.notifications.subgraph.redis).await?,
                keys(),
            )
            .await?;
            if in_process {
                replica = replica.with_event_bus(bus.clone());
            }
            notifications_statements.get_or_insert_with(|| replica.statements());
            notifications.push(NotificationsReplica {
                port: replica.port(),
                hub: replica.hub(),
                db: replica.db(),
            });
            tasks.push(tokio::spawn(
                replica.run_until_stopped(stopped(stop_rx.clone())),
            ));
        }
        let notifications_urls: Vec<String> =
            notifications.iter().map(|n| url_of(n.port)).collect();

        let mut urls = StackUrls {
            router: String::new(),
            auth: auth_url,
            catalog: catalog_url,
            payments: payments_url,
            reservations: reservations_url,
            notifications: notifications_urls,
        };
        let mut subgraph_urls = urls.subgraph_urls();
        let mut subgraphs = crate::schema::subgraphs_at(&subgraph_urls);
        for extra in &s.extra_subgraphs {
            subgraph_urls.insert(extra.name.clone(), extra.url.clone());
            subgraphs.push(extra.clone());
        }
        let supergraph = compose(&subgraphs)?;
        let router = EmbeddedRouter::start(
            &config_with(
                &s.router_yaml,
                &Overrides {
                    listen: s.router_listen.clone(),
                    subgraph_urls,
                },
            )?,
            supergraph,
        )
        .await?;

        urls.router = router.url();
        Ok(Self {
            urls,
            router,
            statements: Statements {
                auth: auth_statements,
                catalog: catalog_statements,
                payments: payments_statements,
                reservations: reservations_statements,
                notifications: notifications_statements,
            },
            auth: auth_service,
            catalog: catalog_service,
            reservations: reservations_service,
            notifications,
            settings: StartedSettings {
                auth: s.auth,
                catalog: s.catalog,
                payments: s.payments,
                reservations: s.reservations,
                notifications: s.notifications,
            },
            stop,
            tasks,
        })
    }

    /// Stops the router, then every part (their background loops too), letting in-flight
    /// requests finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let Self {
            router,
            stop,
            tasks,
            ..
        } = self;
        router.shutdown().await?;
        let _ = stop.send(true);
        for task in tasks {
            task.await??;
        }
        Ok(())
    }
}
