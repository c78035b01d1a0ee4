//! `draftr.request_id`: every request gets an `x-request-id`, which travels to every subgraph
//! call it causes and comes back in the response, so one id finds a request's log lines
//! across the router and all subgraphs.
//!
//! A client-supplied id is kept when it is short and plain (so a caller can correlate with its
//! own logs); anything else is replaced, so log lines cannot be forged or flooded through it.
//!
//! The rest of the request runs in a span of ours, `draftr.request_id`, carrying the id as
//! `request_id`: a child of the router's own span, so the id is on the router's part of the
//! trace as it is on every subgraph's request span. (The router's own way to put a header on
//! its spans, `telemetry.instrumentation.spans.router.attributes`, needs a GraphOS plan.)

use apollo_router::layers::ServiceBuilderExt as _;
use apollo_router::plugin::{Plugin, PluginInit};
use apollo_router::register_plugin;
use apollo_router::services::{router, subgraph};
use http::HeaderValue;
use schemars::JsonSchema;
use serde::Deserialize;
use tower::{BoxError, ServiceBuilder, ServiceExt};

pub const HEADER: &str = "x-request-id";
const CONTEXT_KEY: &str = "draftr::request_id";
const MAX_LEN: usize = 128;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {}

pub struct RequestId;

/// An incoming id worth keeping: 1..=128 characters of `[A-Za-z0-9._:-]`.
pub fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[async_trait::async_trait]
impl Plugin for RequestId {
    type Config = Config;

    async fn new(_init: PluginInit<Self::Config>) -> Result<Self, BoxError> {
        Ok(RequestId)
    }

    fn router_service(&self, service: router::BoxService) -> router::BoxService {
        ServiceBuilder::new()
            .map_request(|mut req: router::Request| {
                let incoming = req
                    .router_request
                    .headers()
                    .get(HEADER)
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| acceptable(v));
                let id = incoming
                    .map(str::to_owned)
                    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                if let Ok(value) = HeaderValue::from_str(&id) {
                    req.router_request.headers_mut().insert(HEADER, value);
                }
                let _ = req.context.insert(CONTEXT_KEY, id);
                req
            })
            // After the id is settled above; in the router's span, so a child of it.
            .instrument(|req: &router::Request| {
                let id = req
                    .router_request
                    .headers()
                    .get(HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("draftr.request_id", request_id = %id)
            })
            .map_response(|mut res: router::Response| {
                let id = res.context.get::<_, String>(CONTEXT_KEY).ok().flatten();
                if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                    res.response.headers_mut().insert(HEADER, value);
                }
                res
            })
            .service(service)
            .boxed()
    }

    fn subgraph_service(&self, _name: &str, service: subgraph::BoxService) -> subgraph::BoxService {
        ServiceBuilder::new()
            .map_request(|mut req: subgraph::Request| {
                let id = req.context.get::<_, String>(CONTEXT_KEY).ok().flatten();
                if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                    req.subgraph_request.headers_mut().insert(HEADER, value);
                }
                req
            })
            .service(service)
            .boxed()
    }
}

register_plugin!("draftr", "request_id", RequestId);

pub(crate) fn ensure_linked() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_short_ids_are_kept_and_others_replaced() {
        assert!(acceptable("3f1c2a7e-0000-4000-8000-000000000000"));
        assert!(acceptable("client:req.42_a"));
        assert!(!acceptable(""));
        assert!(!acceptable(&"a".repeat(129)));
        assert!(!acceptable("id with spaces"));
        assert!(!acceptable("inject\nnewline"));
    }
}
