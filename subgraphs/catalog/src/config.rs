//! Settings of the catalog subgraph (`DRAFTR_CATALOG__…` environment variables override).

use draftr_common::config::{Subgraph, SubgraphSettings};
use draftr_common::service_client::CallPolicy;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CatalogSettings {
    /// Listen address, database, Redis, token policy, trusted proxies, service credential.
    #[serde(flatten)]
    pub subgraph: SubgraphSettings<Self>,
    /// Where catalog tells auth that a user now hosts (a service call).
    pub auth_url: String,
    /// Timeout, retries and circuit breaker of that call. The listing is committed before it
    /// is made and the next listing tries again, so two attempts are enough.
    pub calls: CallPolicy,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            subgraph: SubgraphSettings::default(),
            auth_url: "http://127.0.0.1:4001/".to_owned(),
            calls: CallPolicy {
                timeout_ms: 3_000,
                attempts: 2,
                backoff_ms: 200,
                ..CallPolicy::default()
            },
        }
    }
}

impl Subgraph for CatalogSettings {
    const NAME: &'static str = "catalog";
    const PORT: u16 = 4002;
}
