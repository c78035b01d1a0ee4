//! Typed settings: built-in defaults, then an optional TOML file, then environment variables.
//!
//! Environment variables win, so a container or CI can override anything without a file:
//! `DRAFTR_AUTH__DATABASE__URL=postgres://…` sets `database.url` of the `auth` component
//! (`DRAFTR_<COMPONENT>__<SECTION>__<KEY>`). Defaults are for local development only.

use std::path::Path;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Loads the settings of one component (`auth`, `catalog`, …).
pub fn load<T: DeserializeOwned>(component: &str, file: Option<&Path>) -> anyhow::Result<T> {
    load_with_env(component, file, None)
}

/// [`load`] with an explicit environment instead of the process's (for tests, and for callers
/// that assemble settings for several components in one process).
pub fn load_with_env<T: DeserializeOwned>(
    component: &str,
    file: Option<&Path>,
    env: Option<std::collections::HashMap<String, String>>,
) -> anyhow::Result<T> {
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        builder = builder.add_source(config::File::from(file).required(true));
    }
    let prefix = format!("DRAFTR_{}", component.to_ascii_uppercase());
    builder = builder.add_source(
        config::Environment::with_prefix(&prefix)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            // Lists in the environment are comma-separated: TRUSTED_PROXIES=10.0.0.0/8,::1/128
            .list_separator(",")
            .with_list_parse_key("trusted_proxies")
            .source(env),
    );
    Ok(builder.build()?.try_deserialize()?)
}

/// Where a subgraph keeps its data.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://user@host/db` (production).
    pub url: SecretString,
    /// PostgreSQL only: the schema this service owns inside a shared database. Each service
    /// gets its own, so no service can read another's tables by accident.
    pub schema: Option<String>,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://.draftr-data/draftr.db"),
            schema: None,
            max_connections: 10,
            connect_timeout_secs: 5,
        }
    }
}

/// Shared, short-lived state (token revocations, login throttling, event streams).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    /// `redis://127.0.0.1:6379`. Unset means in-process state, which is only correct when
    /// every component runs in one process (the embedded default).
    pub url: Option<SecretString>,
    /// Prefix of the event-stream keys (`<namespace>:events:<topic>`); `draftr` when unset.
    /// Deployments that share one Redis, or tests running in parallel, keep theirs apart.
    pub namespace: Option<String>,
}

impl RedisSettings {
    /// The configured namespace, or [`crate::stream::DEFAULT_NAMESPACE`].
    pub fn namespace(&self) -> &str {
        self.namespace
            .as_deref()
            .unwrap_or(crate::stream::DEFAULT_NAMESPACE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Sample {
        database: DatabaseSettings,
        listen: String,
        trusted_proxies: Vec<ipnet::IpNet>,
    }

    #[test]
    fn environment_overrides_defaults() {
        let env = std::collections::HashMap::from([
            (
                "DRAFTR_CFGTEST__DATABASE__URL".to_owned(),
                "postgres://x@y/z".to_owned(),
            ),
            ("DRAFTR_CFGTEST__LISTEN".to_owned(), "0.0.0.0:1".to_owned()),
            ("DRAFTR_OTHER__LISTEN".to_owned(), "ignored".to_owned()),
            (
                "DRAFTR_CFGTEST__TRUSTED_PROXIES".to_owned(),
                "10.0.0.0/8,::1/128".to_owned(),
            ),
        ]);
        let s: Sample = load_with_env("cfgtest", None, Some(env)).unwrap();
        assert_eq!(s.database.url.expose_secret(), "postgres://x@y/z");
        assert_eq!(s.listen, "0.0.0.0:1");
        assert_eq!(s.database.max_connections, 10);
        assert_eq!(
            s.trusted_proxies,
            vec![
                "10.0.0.0/8".parse::<ipnet::IpNet>().unwrap(),
                "::1/128".parse().unwrap()
            ]
        );
    }
}
