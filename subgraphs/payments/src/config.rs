//! Settings of the payments subgraph (`DRAFTR_PAYMENTS__…` environment variables override).

use draftr_common::config::{DatabaseSettings, RedisSettings};
use ipnet::IpNet;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct PaymentsSettings {
    pub listen: String,
    pub database: DatabaseSettings,
    /// The shared revocation list (the same Redis as auth).
    pub redis: RedisSettings,
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    pub trusted_proxies: Vec<IpNet>,
    /// The credential shared by Draftr's subgraphs for service-only operations.
    pub service_token: Option<SecretString>,
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

impl Default for PaymentsSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4004".to_owned(),
            database: DatabaseSettings {
                url: SecretString::from("sqlite://.draftr-data/payments.db"),
                ..Default::default()
            },
            redis: RedisSettings::default(),
            jwks_url: "http://127.0.0.1:4001/.well-known/jwks.json".to_owned(),
            issuer: "draftr-auth".to_owned(),
            audience: "draftr".to_owned(),
            trusted_proxies: vec![
                "127.0.0.1/32".parse().expect("net"),
                "::1/128".parse().expect("net"),
            ],
            service_token: None,
            provider: ProviderSettings::default(),
        }
    }
}
