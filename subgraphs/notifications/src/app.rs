//! Building and running the notifications service: GraphQL at `/`, graphql-ws subscriptions
//! at `/ws`, the event consumer and the mailer beside them until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use draftr_common::Viewer;
use draftr_common::db::StatementCounter;
use draftr_common::events::EventBus;
use draftr_common::graphql::subgraph_app;
use draftr_common::http::serve;
use draftr_common::jwt::{KeySource, TokenVerifier};
use draftr_common::kv::KvStore;
use draftr_common::service_client::ServiceClient;
use draftr_notifications_migration::MigratorTrait;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::config::NotificationsSettings;
use crate::consumer::Consumer;
use crate::graphql::NotificationsSchema;
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
}

/// Applies the notifications migrations (also run by `draftr migrate`).
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    draftr_notifications_migration::Migrator::up(db, None).await?;
    Ok(())
}

#[derive(Clone)]
struct WsState {
    schema: NotificationsSchema,
    verifier: Arc<TokenVerifier>,
    /// Browser origins that may open a socket (see `NotificationsSettings::allowed_origins`).
    origins: regex::Regex,
}

/// Per-connection buffer of the subscription socket; messages larger than it still pass.
const WS_BUFFER: usize = 4 * 1024;
/// The largest message a subscription client may send (a subscribe with its query).
pub const WS_MAX_MESSAGE: usize = 64 * 1024;

/// `GET /ws`: graphql-ws (and the older subscriptions-transport-ws). The token may come on the
/// upgrade request's `Authorization` header or in `connection_init` as
/// `{ "authorization": "Bearer …" }`; a connection without a valid one is refused.
///
/// A browser page from an origin that is not allowed is refused before the upgrade (403): a
/// WebSocket is not subject to CORS, so without this any site could open one with a token it
/// got hold of, or probe the endpoint from a visitor's browser.
async fn ws(
    State(state): State<WsState>,
    protocol: GraphQLProtocol,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Some(origin) = headers.get(axum::http::header::ORIGIN)
        && !origin.to_str().is_ok_and(|o| state.origins.is_match(o))
    {
        tracing::info!(origin = ?origin, "subscription socket refused: origin not allowed");
        return (
            StatusCode::FORBIDDEN,
            "this origin may not open a subscription socket",
        )
            .into_response();
    }
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(h) = &header
        && let Viewer::Rejected(_) = state.verifier.viewer_from_header(Some(h)).await
    {
        return (StatusCode::UNAUTHORIZED, "invalid or revoked token").into_response();
    }
    let verifier = state.verifier.clone();
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        // Clients only send protocol messages (init, subscribe, ping), a few hundred bytes:
        // tungstenite's defaults (128 KiB buffers, 64 MiB messages) would cost 128 KiB per idle
        // subscriber and let anyone, before signing in, make the server hold 64 MiB.
        .read_buffer_size(WS_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_message_size(WS_MAX_MESSAGE)
        .max_frame_size(WS_MAX_MESSAGE)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let token = payload
                        .get("authorization")
                        .or_else(|| payload.get("Authorization"))
                        .and_then(|v| v.as_str())
                        .map(str::to_owned)
                        .or(header);
                    match verifier.viewer_from_header(token.as_deref()).await {
                        viewer @ Viewer::User(_) => {
                            let mut data = Data::default();
                            data.insert(viewer);
                            Ok(data)
                        }
                        Viewer::Anonymous => Err(async_graphql::Error::new(
                            "sign in: send { authorization: \"Bearer <accessToken>\" } in connection_init",
                        )),
                        Viewer::Rejected(_) => Err(async_graphql::Error::new(
                            "the access token is invalid, expired or revoked",
                        )),
                    }
                })
                .serve()
        })
}

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
        let auth = ServiceClient::new(
            "auth",
            settings.auth_url.clone(),
            settings.subgraph.service_token.clone(),
            settings.calls.clone(),
        )?;
        let service = Arc::new(NotificationService::new(db.clone()));
        let consumer = Arc::new(Consumer::new(service.clone(), hub.clone(), auth));
        let mailer = Arc::new(Mailer::new(
            db.clone(),
            Transport::from_settings(&settings.mail)?,
            settings.mail.clone(),
        ));
        let schema = crate::graphql::schema(service, hub.clone(), &settings.subgraph.limits);
        let ws_routes = axum::Router::new()
            .route("/ws", get(ws))
            .with_state(WsState {
                schema: schema.clone(),
                verifier: identify.verifier.clone(),
                origins: regex::Regex::new(&settings.allowed_origins).map_err(|e| {
                    anyhow::anyhow!(
                        "notifications.allowed_origins is not a regular expression: {e}"
                    )
                })?,
            });
        let router = subgraph_app(schema, identify, db.clone(), ws_routes);
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
            Some(bus) => workers.push(tokio::spawn(crate::consumer::run(
                self.consumer.clone(),
                bus,
                draftr_common::http::stopped(stop_tx.subscribe()),
            ))),
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
