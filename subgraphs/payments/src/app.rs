//! Building and running the payments service: bind first (so tests can use port 0), then serve.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use draftr_common::db::StatementCounter;
use draftr_common::graphql::subgraph_app;
use draftr_common::http::serve;
use draftr_common::jwt::KeySource;
use draftr_common::kv::KvStore;
use draftr_payments_migration::MigratorTrait;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::config::{PaymentsSettings, ProviderSettings};
use crate::provider::{PaymentProvider, SimulatedProvider, StripeProvider};
use crate::service::PaymentService;

pub struct App {
    statements: StatementCounter,
    listener: TcpListener,
    port: u16,
    router: axum::Router,
    service: Arc<PaymentService>,
}

/// Applies the payments migrations (also run by `draftr migrate`).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    draftr_payments_migration::Migrator::up(db, None).await?;
    Ok(())
}

/// The provider the settings ask for. Stripe without a secret key is a configuration error,
/// not a silent fallback to the simulation.
pub fn provider_from(settings: &ProviderSettings) -> anyhow::Result<Arc<dyn PaymentProvider>> {
    match settings.kind.as_str() {
        "simulated" => Ok(Arc::new(SimulatedProvider::new())),
        "stripe" => {
            let key = settings.stripe_secret_key.as_ref().ok_or_else(|| {
                anyhow::anyhow!("provider.kind = stripe needs provider.stripe_secret_key (DRAFTR_PAYMENTS__PROVIDER__STRIPE_SECRET_KEY)")
            })?;
            Ok(Arc::new(StripeProvider::new(
                key,
                settings.stripe_api_base.as_deref(),
                Duration::from_millis(settings.timeout_ms),
                settings.attempts,
                Duration::from_millis(settings.search_lag_ms),
            )?))
        }
        other => anyhow::bail!("unknown payment provider {other:?}: use simulated or stripe"),
    }
}

impl App {
    /// Connects, migrates and binds, with the provider the settings name.
    pub async fn build(settings: PaymentsSettings) -> anyhow::Result<Self> {
        let (kv, keys) = settings.subgraph.token_sources().await?;
        let provider = provider_from(&settings.provider)?;
        Self::build_with(settings, kv, keys, provider).await
    }

    /// As [`App::build`], with the revocation list, keys and provider given (the embedded
    /// default shares them in process; tests keep a handle on the simulated provider).
    pub async fn build_with(
        settings: PaymentsSettings,
        kv: Arc<dyn KvStore>,
        keys: KeySource,
        provider: Arc<dyn PaymentProvider>,
    ) -> anyhow::Result<Self> {
        let (db, statements) =
            draftr_common::db::connect_counted(&settings.subgraph.database).await?;
        migrate(&db).await?;
        let identify = settings.subgraph.identify(keys, kv).await?;
        let service = Arc::new(PaymentService::new(db.clone(), provider));
        let schema = crate::graphql::schema(service.clone(), &settings.subgraph.limits);
        let webhooks = crate::webhook::routes(
            service.clone(),
            settings.provider.stripe_webhook_secret.clone(),
        );
        let metrics = draftr_common::metrics::SubgraphMetrics::new("payments")?;
        let router = subgraph_app(schema, identify, db, webhooks, metrics);
        let listener = TcpListener::bind(&settings.subgraph.listen).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            statements,
            listener,
            port,
            router,
            service,
        })
    }

    /// Statements run on this service's database so far.
    pub fn statements(&self) -> StatementCounter {
        self.statements.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> Arc<PaymentService> {
        self.service.clone()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(port = self.port, "payments subgraph listening");
        serve(self.listener, self.router, shutdown).await
    }
}
