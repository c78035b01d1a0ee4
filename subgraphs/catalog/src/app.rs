//! Building and running the catalog service: bind first (so tests can use port 0), then serve.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use draftr_catalog_migration::MigratorTrait;
use draftr_common::db::StatementCounter;
use draftr_common::events::EventBus;
use draftr_common::graphql::subgraph_app;
use draftr_common::http::serve;
use draftr_common::jwt::KeySource;
use draftr_common::kv::KvStore;
use draftr_common::metrics::SubgraphMetrics;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::clients::AuthClient;
use crate::config::CatalogSettings;
use crate::service::CatalogService;

pub struct App {
    statements: StatementCounter,
    listener: TcpListener,
    port: u16,
    router: Router,
    service: Arc<CatalogService>,
    bus: Option<Arc<dyn EventBus>>,
    metrics: Arc<SubgraphMetrics>,
}

/// Applies the catalog migrations (also run by `draftr migrate`).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    draftr_catalog_migration::Migrator::up(db, None).await?;
    Ok(())
}

impl App {
    /// Connects, migrates and binds; tokens are verified with auth's JWKS from `settings`.
    pub async fn build(settings: CatalogSettings) -> anyhow::Result<Self> {
        let (kv, keys) = settings.subgraph.token_sources().await?;
        Self::build_with(settings, kv, keys).await
    }

    /// As [`App::build`], with the revocation list and the keys given (the embedded default
    /// shares them in process).
    pub async fn build_with(
        settings: CatalogSettings,
        kv: Arc<dyn KvStore>,
        keys: KeySource,
    ) -> anyhow::Result<Self> {
        let (db, statements) =
            draftr_common::db::connect_counted(&settings.subgraph.database).await?;
        migrate(&db).await?;
        let identify = settings.subgraph.identify(keys, kv).await?;
        let service = Arc::new(CatalogService::new(db.clone()));
        let metrics = SubgraphMetrics::new("catalog")?;
        let auth = Arc::new(
            AuthClient::new(
                settings.auth_url.clone(),
                settings.subgraph.service_token.clone(),
                settings.calls.clone(),
            )?
            .with_metrics(&metrics),
        );
        let schema = crate::graphql::schema(service.clone(), auth, &settings.subgraph.limits);
        let router = subgraph_app(schema, identify, db, Router::new(), metrics.clone());
        let listener = TcpListener::bind(&settings.subgraph.listen).await?;
        let port = listener.local_addr()?.port();
        let bus = draftr_common::stream::RedisStreamBus::from_settings(
            &settings.subgraph.redis,
            "catalog",
            std::time::Duration::from_secs(30),
        )
        .await?;
        Ok(Self {
            statements,
            listener,
            port,
            router,
            service,
            bus,
            metrics,
        })
    }

    /// Feeds the availability projection from `bus` instead of the Redis stream (the embedded
    /// default's in-process bus).
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

    pub fn service(&self) -> Arc<CatalogService> {
        self.service.clone()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(port = self.port, "catalog subgraph listening");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let projection = self.bus.map(|bus| {
            self.metrics.watch_consumer(
                bus.clone(),
                draftr_common::events::reservation::TOPIC,
                crate::projection::GROUP,
            );
            tokio::spawn(crate::projection::run(
                self.service.db().clone(),
                bus,
                draftr_common::http::stopped(stop_rx),
            ))
        });
        let served = serve(self.listener, self.router, shutdown).await;
        let _ = stop_tx.send(true);
        if let Some(p) = projection {
            let _ = p.await;
        }
        served
    }
}
