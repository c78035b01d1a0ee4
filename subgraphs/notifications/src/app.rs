//! Building and running the notifications service: GraphQL at `/`, graphql-ws subscriptions
//! at `/ws` ([`crate::socket`]), the event consumer and the mailer beside them until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use draftr_common::db::StatementCounter;
use draftr_common::events::EventBus;
use draftr_common::graphql::subgraph_app;
use draftr_common::http::serve;
use draftr_common::jwt::KeySource;
use draftr_common::kv::KvStore;
use draftr_common::metrics::{NotificationMetrics, SubgraphMetrics};
use draftr_common::service_client::ServiceClient;
use draftr_notifications_migration::MigratorTrait;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::NotificationsSettings;
use crate::consumer::Consumer;
use crate::domain::EmailStatus;
use crate::live::LiveHub;
use crate::mailer::{Mailer, Transport};
use crate::service::NotificationService;

pub struct App {
    statements: StatementCounter,
    listener: TcpListener,
    port: u16,
    router: axum::Router,
    db: DatabaseConnection,
    hub: LiveHub,
    consumer: Arc<Consumer>,
    mailer: Arc<Mailer>,
    bus: Option<Arc<dyn EventBus>>,
    metrics: Arc<SubgraphMetrics>,
}

/// Reads the emails by status at every metrics scrape (`draftr_emails`). A status with no
/// rows is 0, not left at its last count.
fn watch_emails(metrics: &SubgraphMetrics, emails: &NotificationMetrics, db: DatabaseConnection) {
    let emails = emails.clone();
    metrics.refresh_at_scrape("emails", move || {
        let (db, emails) = (db.clone(), emails.clone());
        async move {
            let counts = crate::store::queries::count_by_status(&db).await?;
            for status in EmailStatus::ALL {
                let n = counts
                    .iter()
                    .find(|(s, _)| s == status.as_str())
                    .map_or(0, |(_, n)| *n);
                emails.set_emails(status.as_str(), u64::try_from(n).unwrap_or(0));
            }
            Ok(())
        }
    });
}

/// Applies the notifications migrations (also run by `draftr migrate`).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    draftr_notifications_migration::Migrator::up(db, None).await?;
    Ok(())
}

/// The largest message a subscription client may send (see [`crate::socket`]).
pub use crate::socket::WS_MAX_MESSAGE;

impl App {
    /// Connects, migrates and binds; tokens are verified with auth's JWKS from `settings`.
    pub async fn build(settings: NotificationsSettings) -> anyhow::Result<Self> {
        let (kv, keys) = settings.subgraph.token_sources().await?;
        Self::build_with(settings, kv, keys).await
    }

    /// As [`App::build`], with the revocation list and the keys given.
    pub async fn build_with(
        settings: NotificationsSettings,
        kv: Arc<dyn KvStore>,
        keys: KeySource,
    ) -> anyhow::Result<Self> {
        let (db, statements) =
            draftr_common::db::connect_counted(&settings.subgraph.database).await?;
        migrate(&db).await?;
        let identify = settings.subgraph.identify(keys, kv).await?;
        let hub = match &settings.subgraph.redis.url {
            Some(url) => {
                LiveHub::redis(url.expose_secret(), settings.subgraph.redis.namespace()).await?
            }
            None => LiveHub::local(),
        };
        let bus = draftr_common::stream::RedisStreamBus::from_settings(
            &settings.subgraph.redis,
            "notifications",
            Duration::from_millis(settings.reclaim_idle_ms.max(100)),
        )
        .await?;
        let metrics = SubgraphMetrics::new("notifications")?;
        let statuses = EmailStatus::ALL.map(EmailStatus::as_str);
        let notification_metrics = NotificationMetrics::register(&metrics, &statuses)?;
        watch_emails(&metrics, &notification_metrics, db.clone());
        let auth = ServiceClient::new(
            "auth",
            settings.auth_url.clone(),
            settings.subgraph.service_token.clone(),
            settings.calls.clone(),
        )?
        .with_metrics(&metrics);
        let service = Arc::new(NotificationService::new(db.clone()));
        let consumer = Arc::new(Consumer::new(service.clone(), hub.clone(), auth));
        let mailer = Arc::new(Mailer::new(
            db.clone(),
            Transport::from_settings(&settings.mail)?,
            settings.mail.clone(),
            notification_metrics.clone(),
        ));
        let schema = crate::graphql::schema(service, hub.clone(), &settings.subgraph.limits);
        let ws_routes = crate::socket::routes(
            schema.clone(),
            identify.verifier.clone(),
            &settings.allowed_origins,
            &settings.socket,
            notification_metrics,
        )?;
        let router = subgraph_app(schema, identify, db.clone(), ws_routes, metrics.clone());
        let listener = TcpListener::bind(&settings.subgraph.listen).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            statements,
            listener,
            port,
            router,
            db,
            hub,
            consumer,
            mailer,
            bus,
            metrics,
        })
    }

    /// Consumes from `bus` instead of the Redis stream (the embedded default's in-process bus).
    pub fn with_event_bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Statements run on this service's database so far.
    pub fn statements(&self) -> StatementCounter {
        self.statements.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> DatabaseConnection {
        self.db.clone()
    }

    pub fn hub(&self) -> LiveHub {
        self.hub.clone()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(port = self.port, "notifications subgraph listening");
        let (stop_tx, _) = tokio::sync::watch::channel(false);
        let mut workers = vec![tokio::spawn(crate::mailer::run(
            self.mailer.clone(),
            draftr_common::http::stopped(stop_tx.subscribe()),
        ))];
        match self.bus {
            Some(bus) => {
                self.metrics.watch_consumer(
                    bus.clone(),
                    draftr_common::events::reservation::TOPIC,
                    crate::consumer::GROUP,
                );
                workers.push(tokio::spawn(crate::consumer::run(
                    self.consumer.clone(),
                    bus,
                    draftr_common::http::stopped(stop_tx.subscribe()),
                )))
            }
            None => tracing::warn!(
                "no event bus configured: no reservation events will arrive (set DRAFTR_NOTIFICATIONS__REDIS__URL)"
            ),
        }
        let served = serve(self.listener, self.router, shutdown).await;
        let _ = stop_tx.send(true);
        for w in workers {
            let _ = w.await;
        }
        served
    }
}
