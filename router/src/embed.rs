//! Running the router inside another process (the embedded default, and tests), from the
//! committed `router.yaml` with a few values replaced.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use apollo_router::{
    ConfigurationSource, ListenAddr, RouterHttpServer, SchemaSource, ShutdownSource,
};
use serde_yaml::Value;

/// What differs from the committed configuration when the router runs embedded.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Where GraphQL is served, e.g. `127.0.0.1:4000` (port 0 picks a free port). Health
    /// (`/health`) is served on the same address. Prometheus metrics are set up by the stock
    /// router entry point only, so they are served by the `draftr-router` binary, not here.
    pub listen: String,
    /// Subgraph name → URL.
    pub subgraph_urls: BTreeMap<String, String>,
}

fn map_mut<'a>(value: &'a mut Value, key: &str) -> anyhow::Result<&'a mut serde_yaml::Mapping> {
    let map = value
        .as_mapping_mut()
        .ok_or_else(|| anyhow::anyhow!("router config: expected a mapping"))?;
    let entry = map
        .entry(Value::from(key))
        .or_insert_with(|| Value::Mapping(Default::default()));
    entry
        .as_mapping_mut()
        .ok_or_else(|| anyhow::anyhow!("router config: {key} must be a mapping"))
}

/// The committed YAML with the listen addresses and subgraph URLs replaced.
pub fn config_with(base_yaml: &str, overrides: &Overrides) -> anyhow::Result<String> {
    let mut config: Value = serde_yaml::from_str(base_yaml)?;
    let listen = Value::from(overrides.listen.clone());
    map_mut(&mut config, "supergraph")?.insert("listen".into(), listen.clone());
    map_mut(&mut config, "health_check")?.insert("listen".into(), listen.clone());
    {
        let telemetry = map_mut(&mut config, "telemetry")?;
        let mut t = Value::Mapping(std::mem::take(telemetry));
        let exporters = map_mut(&mut t, "exporters")?;
        let mut e = Value::Mapping(std::mem::take(exporters));
        let metrics = map_mut(&mut e, "metrics")?;
        let mut m = Value::Mapping(std::mem::take(metrics));
        map_mut(&mut m, "prometheus")?.insert("listen".into(), listen);
        *map_mut(&mut e, "metrics")? = m.as_mapping().cloned().unwrap_or_default();
        *map_mut(&mut t, "exporters")? = e.as_mapping().cloned().unwrap_or_default();
        *map_mut(&mut config, "telemetry")? = t.as_mapping().cloned().unwrap_or_default();
    }
    let urls = map_mut(&mut config, "override_subgraph_url")?;
    urls.clear();
    for (name, url) in &overrides.subgraph_urls {
        urls.insert(Value::from(name.clone()), Value::from(url.clone()));
    }
    Ok(serde_yaml::to_string(&config)?)
}

/// A router running in this process.
pub struct EmbeddedRouter {
    server: RouterHttpServer,
    pub addr: SocketAddr,
    _config: tempfile::NamedTempFile,
}

impl EmbeddedRouter {
    /// Starts the router and waits until it serves GraphQL. No GraphOS key or licence is given.
    pub async fn start(config_yaml: &str, supergraph_sdl: String) -> anyhow::Result<Self> {
        crate::plugins::ensure_registered();
        // Written to a file so the router expands `${env.…}` values exactly as in production.
        let mut file = tempfile::Builder::new()
            .prefix("draftr-router-")
            .suffix(".yaml")
            .tempfile()?;
        std::io::Write::write_all(&mut file, config_yaml.as_bytes())?;
        let mut server = RouterHttpServer::builder()
            .configuration(ConfigurationSource::File {
                path: file.path().to_path_buf(),
                watch: false,
            })
            .schema(SchemaSource::Static {
                schema_sdl: supergraph_sdl,
            })
            .shutdown(ShutdownSource::None)
            // No anonymous usage reports to Apollo from an embedded router.
            .is_telemetry_disabled(true)
            .start();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            // A router that cannot start (its address is taken, say) ends its server future
            // with the reason; without this check the wait would run to the deadline in
            // silence.
            if let Ok(ended) = tokio::time::timeout(Duration::from_millis(50), &mut server).await {
                return Err(match ended {
                    Ok(()) => anyhow::anyhow!("the router stopped while starting"),
                    Err(e) => anyhow::anyhow!("the router could not start: {e}"),
                });
            }
            if let Some(ListenAddr::SocketAddr(addr)) = server.listen_address().await {
                return Ok(Self {
                    server,
                    addr,
                    _config: file,
                });
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("the router did not start within 120 s (see its log lines above)");
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.server.shutdown().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_addresses_and_urls_and_keep_everything_else() {
        let overrides = Overrides {
            listen: "127.0.0.1:0".into(),
            subgraph_urls: BTreeMap::from([("auth".into(), "http://127.0.0.1:5555/".into())]),
        };
        let yaml = config_with(crate::ROUTER_YAML, &overrides).unwrap();
        let v: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(v["supergraph"]["listen"], Value::from("127.0.0.1:0"));
        assert_eq!(v["health_check"]["listen"], Value::from("127.0.0.1:0"));
        assert_eq!(
            v["telemetry"]["exporters"]["metrics"]["prometheus"]["listen"],
            Value::from("127.0.0.1:0")
        );
        assert_eq!(
            v["override_subgraph_url"]["auth"],
            Value::from("http://127.0.0.1:5555/")
        );
        assert_eq!(v["include_subgraph_errors"]["all"], Value::from(true));
        assert!(v["plugins"]["draftr.request_id"].is_mapping());
    }
}
