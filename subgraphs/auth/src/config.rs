//! Settings of the auth subgraph (`DRAFTR_AUTH__…` environment variables override).

use ipnet::IpNet;
use std::path::PathBuf;

use draftr_common::config::{DatabaseSettings, RedisSettings};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    pub listen: String,
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub tokens: TokenSettings,
    pub throttle: ThrottleSettings,
    /// Peers whose `X-Forwarded-For` is believed (the router, the load balancer in front of it).
    pub trusted_proxies: Vec<IpNet>,
    /// The credential other subgraphs present for service-only operations (the same value in
    /// every subgraph). Unset refuses them all.
    pub service_token: Option<SecretString>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4001".to_owned(),
            database: DatabaseSettings {
                url: SecretString::from("sqlite://.draftr-data/auth.db"),
                ..Default::default()
            },
            redis: RedisSettings::default(),
            tokens: TokenSettings::default(),
            throttle: ThrottleSettings::default(),
            trusted_proxies: vec![
                "127.0.0.1/32".parse().expect("net"),
                "::1/128".parse().expect("net"),
            ],
            service_token: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    /// Access tokens are short-lived: a stolen one is useful for minutes, not days.
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// The Ed25519 private key (PKCS#8 PEM). Production sets this from a secret store, and
    /// every auth replica gets the same key.
    pub signing_key_pem: Option<SecretString>,
    /// Development only: where to keep a generated key when no PEM is given, so tokens
    /// survive a restart of the embedded default.
    pub signing_key_file: PathBuf,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            issuer: "draftr-auth".to_owned(),
            audience: "draftr".to_owned(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            signing_key_pem: None,
            signing_key_file: PathBuf::from(".draftr-data/auth-signing-key.pem"),
        }
    }
}

/// Failed sign-ins tolerated per window before `RATE_LIMITED`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ThrottleSettings {
    pub max_failures_per_account: u64,
    pub max_failures_per_ip: u64,
    pub window_secs: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_ip: 30,
            window_secs: 15 * 60,
        }
    }
}
