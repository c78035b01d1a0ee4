//! The HTTP shell around every subgraph: request ids, the caller, limits, health, shutdown.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::jwt::TokenVerifier;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest request body a subgraph accepts (the router enforces its own, smaller limit).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Facts about the HTTP request that resolvers may need.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The router's `x-request-id` (or one made here for direct calls), also in every log line.
    pub request_id: String,
    /// The end user's address, as far as it can be trusted (see [`Identify`]).
    pub client_ip: Option<IpAddr>,
    /// The request carried this deployment's service credential: it comes from another Draftr
    /// subgraph, not from a client (the router never forwards the header).
    pub service_call: bool,
}

/// The header that carries the service credential between subgraphs.
pub const SERVICE_TOKEN: HeaderName = HeaderName::from_static("x-draftr-service-token");

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Establishes who is calling: the bearer token, verified, and the client address.
pub struct Identify {
    pub verifier: Arc<TokenVerifier>,
    /// Networks whose peers may tell us the client address in `X-Forwarded-For` (the router,
    /// a load balancer). Anyone else's header is ignored, so a client cannot pose as another
    /// address.
    pub trusted_proxies: Vec<IpNet>,
    /// The shared service credential; `None` refuses every service call.
    pub service_token: Option<secrecy::SecretString>,
}

impl Identify {
    pub fn is_service_call(&self, headers: &HeaderMap) -> bool {
        let (Some(expected), Some(given)) = (&self.service_token, headers.get(SERVICE_TOKEN))
        else {
            return false;
        };
        same_secret(
            secrecy::ExposeSecret::expose_secret(expected).as_bytes(),
            given.as_bytes(),
        )
    }

    fn trusted(&self, ip: &IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }

    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted(&peer) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        // Right to left: the first address not added by one of our own proxies is the client.
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !self.trusted(ip))
            .unwrap_or(peer)
    }
}

/// Middleware: puts a [`Viewer`](crate::jwt::Viewer) and a [`RequestMeta`] into the request extensions.
pub async fn identify(
    State(identify): State<Arc<Identify>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    let headers = req.headers();
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let viewer = identify.verifier.viewer_from_header(auth).await;
    let meta = RequestMeta {
        request_id: headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        client_ip: Some(identify.client_ip(peer.ip(), headers)),
        service_call: identify.is_service_call(headers),
    };
    req.extensions_mut().insert(viewer);
    req.extensions_mut().insert(meta);
    next.run(req).await
}

/// Request id (kept from the router or made here), a span per request carrying it, the id
/// echoed in the response, a body limit, a timeout, and panics turned into 500s.
pub fn with_standard_layers(router: Router) -> Router {
    // Each `Router::layer` wraps everything added before it, so the last one is outermost:
    // the request id is set first, so the span and every later layer see it.
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::new())
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| request_span(req)))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The span of one request: its request id, method and path, the GraphQL operation once
/// known ([`crate::telemetry::record_operation`]), and, where traces are exported, a child of
/// the caller's span named in `traceparent` (the router's subgraph fetch, or the subgraph that
/// called this one), so one booking is one trace. `trace_id` is filled only where this process
/// exports nothing but the caller sent a trace context (the log lines then still name the
/// router's trace); otherwise the JSON log lines take both ids from the span itself.
pub fn request_span<B>(req: &http::Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        "graphql.operation.type" = tracing::field::Empty,
        "graphql.operation.name" = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::telemetry::set_remote_parent(&span, req.headers());
    span
}

/// `/health`: the process answers. `/ready`: its dependencies answer too.
pub fn health_routes<F, Fut>(ready: F) -> Router
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route(
            "/ready",
            get(move || {
                let ready = ready.clone();
                async move {
                    match ready().await {
                        Ok(()) => (
                            StatusCode::OK,
                            axum::Json(serde_json::json!({ "status": "ready" })),
                        )
                            .into_response(),
                        Err(why) => {
                            tracing::warn!(reason = %why, "not ready");
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                axum::Json(serde_json::json!({ "status": "unavailable" })),
                            )
                                .into_response()
                        }
                    }
                }
            }),
        )
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves once `rx` turns true: one switch stops several servers of one process.
pub async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{KeySource, SigningKey, TokenPolicy};
    use crate::kv::InMemoryKv;

    async fn identify(trusted: Vec<IpNet>) -> Identify {
        let key = SigningKey::generate();
        let policy = TokenPolicy {
            issuer: "i".into(),
            audience: "a".into(),
        };
        let verifier = TokenVerifier::new(
            KeySource::Static(key.jwks()),
            &policy,
            Arc::new(InMemoryKv::default()),
        )
        .await
        .unwrap();
        Identify {
            verifier: Arc::new(verifier),
            trusted_proxies: trusted,
            service_token: Some(secrecy::SecretString::from("s3cret-token")),
        }
    }

    #[tokio::test]
    async fn only_the_exact_service_token_makes_a_service_call() {
        let id = identify(vec![]).await;
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(SERVICE_TOKEN, v.parse().unwrap());
            h
        };
        assert!(id.is_service_call(&with("s3cret-token")));
        assert!(!id.is_service_call(&with("s3cret-tokem")));
        assert!(!id.is_service_call(&with("s3cret")));
        assert!(!id.is_service_call(&HeaderMap::new()));
        let closed = Identify {
            service_token: None,
            ..identify(vec![]).await
        };
        assert!(!closed.is_service_call(&with("s3cret-token")));
    }

    #[tokio::test]
    async fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let router: IpAddr = "127.0.0.1".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());

        let id = identify(vec!["127.0.0.1/32".parse().unwrap()]).await;
        assert_eq!(
            id.client_ip(router, &headers),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(id.client_ip(stranger, &headers), stranger);
        assert_eq!(id.client_ip(router, &HeaderMap::new()), router);

        // A whole network can be trusted (containers get addresses from a range).
        let id = identify(vec!["10.0.0.0/8".parse().unwrap()]).await;
        let mut chain = HeaderMap::new();
        chain.insert("x-forwarded-for", "203.0.113.9, 10.1.2.3".parse().unwrap());
        assert_eq!(
            id.client_ip("10.9.9.9".parse().unwrap(), &chain),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }
}
