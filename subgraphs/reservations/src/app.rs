//! Building and running the reservations service: bind first (so tests can use port 0), then
//! serve, with the reconciler, the outbox relay and the calendar-import poller running beside
//! the server until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use draftr_common::db::StatementCounter;
use draftr_common::events::EventBus;
use draftr_common::graphql::subgraph_app;
use draftr_common::http::serve;
use draftr_common::jwt::KeySource;
use draftr_common::kv::KvStore;
use draftr_common::metrics::{ReservationMetrics, SubgraphMetrics};
use draftr_reservations_migration::MigratorTrait;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::clients::{CatalogClient, PaymentsClient};
use crate::config::ReservationsSettings;
use crate::service::ReservationService;

pub struct App {
    statements: StatementCounter,
    listener: TcpListener,
    port: u16,
    router: axum::Router,
    service: Arc<ReservationService>,
    reconcile_every: Duration,
    bus: Option<Arc<dyn EventBus>>,
    relay_every: Duration,
    ical_every: Duration,
}

/// Reads the compensations still pending and the outbox backlog at every metrics scrape.
fn watch_backlogs(metrics: &SubgraphMetrics, service: &Arc<ReservationService>) {
    let s = service.clone();
    metrics.refresh_at_scrape("compensations", move || {
        let s = s.clone();
        async move {
            let n = s.compensations_pending().await?;
            s.metrics()
                .compensations_pending
                .set(i64::try_from(n).unwrap_or(i64::MAX));
            Ok(())
        }
    });
    let s = service.clone();
    metrics.refresh_at_scrape("outbox", move || {
        let s = s.clone();
        async move {
            let (unpublished, oldest) = crate::relay::backlog(s.db()).await?;
            let m = s.metrics();
            m.outbox_unpublished
                .set(i64::try_from(unpublished).unwrap_or(i64::MAX));
            let age = oldest.map_or(0.0, |t| {
                (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1_000.0
            });
            m.outbox_oldest_age.set(age);
            Ok(())
        }
    });
}

/// Applies the reservations migrations (also run by `draftr migrate`).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    draftr_reservations_migration::Migrator::up(db, None).await?;
    Ok(())
}

impl App {
    pub async fn build(settings: ReservationsSettings) -> anyhow::Result<Self> {
        let (kv, keys) = settings.subgraph.token_sources().await?;
        Self::build_with(settings, kv, keys).await
    }

    /// As [`App::build`], with the revocation list and the keys given (the embedded default
    /// shares them in process).
    pub async fn build_with(
        settings: ReservationsSettings,
        kv: Arc<dyn KvStore>,
        keys: KeySource,
    ) -> anyhow::Result<Self> {
        let (db, statements) =
            draftr_common::db::connect_counted(&settings.subgraph.database).await?;
        migrate(&db).await?;
        let identify = settings.subgraph.identify(keys, kv).await?;
        let metrics = SubgraphMetrics::new("reservations")?;
        let booking_metrics = ReservationMetrics::register(&metrics)?;
        let catalog = Arc::new(
            CatalogClient::new(
                settings.catalog_url.clone(),
                settings.subgraph.service_token.clone(),
                settings.calls.clone(),
            )?
            .with_metrics(&metrics),
        );
        let payments = Arc::new(
            PaymentsClient::new(
                settings.payments_url.clone(),
                settings.subgraph.service_token.clone(),
                settings.calls.clone(),
            )?
            .with_metrics(&metrics),
        );
        let listener = TcpListener::bind(&settings.subgraph.listen).await?;
        let port = listener.local_addr()?.port();
        let ical = crate::ical::app_ical(&settings.ical, listener.local_addr()?)?;
        let service = Arc::new(
            ReservationService::new(
                db.clone(),
                catalog,
                payments,
                settings.booking.clone(),
                settings.reviews.clone(),
                booking_metrics,
            )
            .with_ical(ical),
        );
        watch_backlogs(&metrics, &service);
        let schema = crate::graphql::schema(service.clone(), &settings.subgraph.limits);
        let extra = crate::ical::export::routes(service.clone());
        let router = subgraph_app(schema, identify, db, extra, metrics);
        Ok(Self {
            statements,
            listener,
            port,
            router,
            service,
            reconcile_every: Duration::from_millis(settings.booking.reconcile_interval_ms.max(50)),
            bus: draftr_common::stream::RedisStreamBus::from_settings(
                &settings.subgraph.redis,
                "reservations",
                Duration::from_secs(30),
            )
            .await?,
            relay_every: Duration::from_millis(settings.relay_interval_ms.max(10)),
            ical_every: Duration::from_millis(settings.ical.poller_tick_ms.max(50)),
        })
    }

    /// Publishes the outbox on `bus` instead of the Redis stream from the settings (the
    /// embedded default shares an in-process bus between its subgraphs).
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

    pub fn service(&self) -> Arc<ReservationService> {
        self.service.clone()
    }

    /// Serves until `shutdown`, with the reconciler running (a pass at start, then on its
    /// interval) and stopped with the server.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(port = self.port, "reservations subgraph listening");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let reconciler = tokio::spawn(crate::reconciler::run(
            self.service.clone(),
            self.reconcile_every,
            draftr_common::http::stopped(stop_rx),
        ));
        let relay = match self.bus {
            Some(bus) => Some(tokio::spawn(crate::relay::run(
                Arc::new(crate::relay::Relay::new(self.service.db().clone(), bus)),
                self.relay_every,
                draftr_common::http::stopped(stop_tx.subscribe()),
            ))),
            None => {
                tracing::warn!(
                    "no event bus configured: reservation events stay in the outbox until one is (set DRAFTR_RESERVATIONS__REDIS__URL)"
                );
                None
            }
        };
        let poller = tokio::spawn(crate::ical::poller::run(
            self.service.clone(),
            self.ical_every,
            draftr_common::http::stopped(stop_tx.subscribe()),
        ));
        let served = serve(self.listener, self.router, shutdown).await;
        let _ = stop_tx.send(true);
        let _ = reconciler.await;
        let _ = poller.await;
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        served
    }
}
