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
    /// Attempts per Stripe call; every attempt carries the same idempotency key.
    pub attempts: u32,
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
        }
    }
}

impl Subgraph for PaymentsSettings {
    const NAME: &'static str = "payments";
    const PORT: u16 = 4004;
}
