//! Settings of the payments subgraph (`DRAFTR_PAYMENTS__…` environment variables override).

use draftr_common::config::{Subgraph, SubgraphSettings};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PaymentsSettings {
    /// Listen address, database, Redis, token policy, trusted proxies, service credential.
    #[serde(flatten)]
    pub subgraph: SubgraphSettings<Self>,
    pub provider: ProviderSettings,
}

/// Which payment provider to use, and how to reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ProviderSettings {
    /// `simulated` (default: no network, Stripe's test payment methods) or `stripe`.
    pub kind: String,
    /// Stripe secret key (`sk_test_…`); required for `stripe`.
    pub stripe_secret_key: Option<SecretString>,
    /// Stripe's API base URL; change it only to talk to a Stripe stand-in in tests.
    pub stripe_api_base: Option<String>,
    /// The webhook endpoint's signing secret (`whsec_…`); without it webhooks are refused.
    pub stripe_webhook_secret: Option<SecretString>,
    /// Per attempt.
    pub timeout_ms: u64,
    /// Attempts per Stripe call that Stripe did not execute (a network error, a timeout, 409,
    /// 429); every attempt carries the same idempotency key. A 500 is not repeated: Stripe
    /// replays it for that key, so the outcome is looked up instead.
    pub attempts: u32,
    /// How far Stripe's search may lag behind its writes. An authorization whose answer was
    /// lost is looked for by search; only when this long has passed since the attempt does
    /// "not found" mean it never happened (and a new attempt may be made). Stripe says search
    /// is typically under a minute behind, up to an hour during its own outages.
    pub search_lag_ms: u64,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        Self {
            kind: "simulated".into(),
            stripe_secret_key: None,
            stripe_api_base: None,
            stripe_webhook_secret: None,
            timeout_ms: 10_000,
            attempts: 3,
            search_lag_ms: 600_000,
        }
    }
}

impl Subgraph for PaymentsSettings {
    const NAME: &'static str = "payments";
    const PORT: u16 = 4004;
}
