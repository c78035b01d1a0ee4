//! Building and running the auth service: bind first (so tests can use port 0), then serve.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use draftr_auth_migration::MigratorTrait;
use draftr_common::db::StatementCounter;
use draftr_common::graphql::subgraph_app;
use draftr_common::http::serve;
use draftr_common::jwt::{KeySource, SigningKey};
use draftr_common::kv::KvStore;
use jsonwebtoken::jwk::JwkSet;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::{AuthSettings, TokenSettings};
use crate::passwords::Passwords;
use crate::service::AuthService;
use crate::tokens::TokenIssuer;

pub struct App {
    statements: StatementCounter,
    listener: TcpListener,
    port: u16,
    router: Router,
    service: Arc<AuthService>,
    jwks: JwkSet,
}

/// Applies the auth migrations (also run by `draftr migrate`).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    draftr_auth_migration::Migrator::up(db, None).await?;
    Ok(())
}

/// The signing key: from configuration, else (development only) from a key file that is
/// generated on first start.
pub fn load_signing_key(settings: &TokenSettings) -> anyhow::Result<SigningKey> {
    if let Some(pem) = &settings.signing_key_pem {
        return SigningKey::from_pem(pem.expose_secret());
    }
    let path = &settings.signing_key_file;
    if path.exists() {
        return SigningKey::from_pem(&std::fs::read_to_string(path)?);
    }
    let key = SigningKey::generate();
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    write_private(path, key.to_pem())?;
    tracing::warn!(
        path = %path.display(),
        "generated a development signing key; in production set DRAFTR_AUTH__TOKENS__SIGNING_KEY_PEM"
    );
    Ok(key)
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

impl App {
    /// Connects, migrates and binds, with shared state from `settings.subgraph.redis`.
    pub async fn build(settings: AuthSettings) -> anyhow::Result<Self> {
        let kv = draftr_common::kv::connect(&settings.subgraph.redis).await?;
        Self::build_with(settings, kv).await
    }

    /// As [`App::build`], with the revocation/throttle store given (the embedded default
    /// shares one in-process store between all subgraphs).
    pub async fn build_with(settings: AuthSettings, kv: Arc<dyn KvStore>) -> anyhow::Result<Self> {
        let (db, statements) =
            draftr_common::db::connect_counted(&settings.subgraph.database).await?;
        migrate(&db).await?;
        let key = load_signing_key(&settings.tokens)?;
        let jwks = key.jwks();
        let policy = settings.subgraph.token_policy();
        let identify = settings
            .subgraph
            .identify(KeySource::Static(jwks.clone()), kv.clone())
            .await?;
        let service = Arc::new(AuthService::new(
            db.clone(),
            Passwords::new()?,
            TokenIssuer::new(key, settings.tokens.clone(), policy.clone()),
            kv.clone(),
            settings.throttle.clone(),
        ));

        let jwks_doc = jwks.clone();
        let own_routes = Router::new().route(
            "/.well-known/jwks.json",
            get(move || {
                let jwks = jwks_doc.clone();
                async move { axum::Json(jwks) }
            }),
        );
        let router = subgraph_app(
            crate::graphql::schema(service.clone(), &settings.subgraph.limits),
            identify,
            db,
            own_routes,
            draftr_common::metrics::SubgraphMetrics::new("auth")?,
        );

        let listener = TcpListener::bind(&settings.subgraph.listen).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            statements,
            listener,
            port,
            router,
            service,
            jwks,
        })
    }

    /// Statements run on this service's database so far.
    pub fn statements(&self) -> StatementCounter {
        self.statements.clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The public keys, for subgraphs in the same process.
    pub fn jwks(&self) -> JwkSet {
        self.jwks.clone()
    }

    pub fn service(&self) -> Arc<AuthService> {
        self.service.clone()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(port = self.port, "auth subgraph listening");
        serve(self.listener, self.router, shutdown).await
    }
}
