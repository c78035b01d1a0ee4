//! Settings of the catalog subgraph (`DRAFTR_CATALOG__…` environment variables override).

use ipnet::IpNet;

use draftr_common::config::{DatabaseSettings, RedisSettings};
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CatalogSettings {
    pub listen: String,
    pub database: DatabaseSettings,
    /// The shared revocation list (the same Redis as auth), and the reservation events that
    /// feed the availability projection.
    pub redis: RedisSettings,
    /// Auth's public keys.
    pub jwks_url: String,
    pub issuer: String,
    pub audience: String,
    pub trusted_proxies: Vec<IpNet>,
    /// Where catalog tells auth that a user now hosts (a service call).
    pub auth_url: String,
    /// The credential shared by Draftr's subgraphs for service-only operations.
    pub service_token: Option<SecretString>,
}

impl Default for CatalogSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:4002".to_owned(),
            database: DatabaseSettings {
                url: SecretString::from("sqlite://.draftr-data/catalog.db"),
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
            auth_url: "http://127.0.0.1:4001/".to_owned(),
            service_token: None,
        }
    }
}
