//! Typed settings: built-in defaults, then an optional TOML file, then environment variables.
//!
//! Environment variables win, so a container or CI can override anything without a file:
//! `DRAFTR_AUTH__DATABASE__URL=postgres://…` sets `database.url` of the `auth` component
//! (`DRAFTR_<COMPONENT>__<SECTION>__<KEY>`). Defaults are for local development only.

use std::marker::PhantomData;
use std::path::Path;

use ipnet::IpNet;
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

/// Which subgraph a [`SubgraphSettings`] belongs to: its name and development port decide the
/// defaults (`127.0.0.1:<port>`, `sqlite://.draftr-data/<name>.db`).
pub trait Subgraph: 'static {
    const NAME: &'static str;
    const PORT: u16;
}

/// The settings every subgraph has, flattened into each one's own settings (so the variables
/// keep their short names: `DRAFTR_CATALOG__LISTEN`, `DRAFTR_CATALOG__DATABASE__URL`). The type
/// parameter only picks the defaults, which are for development on one machine.
#[derive(Deserialize)]
#[serde(default, bound = "")]
pub struct SubgraphSettings<S: Subgraph> {
    pub listen: String,
    /// A partial `database` section (only `max_connections`, say) keeps this subgraph's own
    /// default for the rest, so two subgraphs never end up in one SQLite file by accident.
    #[serde(deserialize_with = "database_of::<S, _>")]
    pub database: DatabaseSettings,
    /// Token revocations (shared with auth), login throttling, the event stream and the live
    /// fan-out. Unset: in-process state, correct only when everything runs in one process.
    pub redis: RedisSettings,
    /// Auth's public keys. Auth itself verifies with the key it signs with and ignores this.
    pub jwks_url: String,
    /// The `iss` and `aud` every access token carries: auth signs with them, every other
    /// subgraph refuses tokens without them.
    pub issuer: String,
    pub audience: String,
    /// Peers whose `X-Forwarded-For` is believed (the router, the load balancer in front of it).
    pub trusted_proxies: Vec<IpNet>,
    /// The credential Draftr's subgraphs present to each other for service-only operations
    /// (the same value everywhere). Unset refuses them all.
    pub service_token: Option<SecretString>,
    /// What one GraphQL request may ask for (`DRAFTR_<PART>__LIMITS__COST`, …).
    pub limits: LimitSettings,
    #[serde(skip)]
    subgraph: PhantomData<S>,
}

/// What one GraphQL request may ask of a subgraph; the router's `draftr.limits` plugin applies
/// the same limits with the same defaults to the client's whole operation (`router.yaml`).
/// A request over any of them is refused before anything is resolved, with
/// `GRAPHQL_VALIDATION_FAILED` and a message naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Every field costs 1, and a list field (one with `first`) costs its page size (20 when
    /// not given, at most 100) times what it selects (`graphql::list_cost`).
    pub cost: usize,
    /// Fields nested in fields (`{ me { id } }` is 2 deep); introspection is not counted.
    pub depth: usize,
    /// Aliased fields in an operation, fragments included (each time they are spread).
    pub aliases: usize,
    /// Root fields of one mutation.
    pub mutation_fields: usize,
    /// `register`, `login` and `refreshToken` fields in one request: each runs a password
    /// hash or a token rotation, so a request cannot sign up or sign in more than once.
    pub sign_ins: usize,
    /// Whether `__schema` and `__type` are answered and `GET /` shows GraphiQL. Off by
    /// default, as a part runs in production (`draftr <part>`): a caller that reaches a
    /// subgraph directly learns nothing of its service-only operations. The embedded default
    /// (`draftr run`) turns it on. `_service { sdl }` and `_entities`, which composition and
    /// the router use, are answered either way.
    pub introspection: bool,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            cost: 5_000,
            depth: 10,
            aliases: 15,
            mutation_fields: 5,
            sign_ins: 1,
            introspection: false,
        }
    }
}

/// Subgraph `S`'s own database by default: `sqlite://.draftr-data/<name>.db`.
fn default_database<S: Subgraph>() -> DatabaseSettings {
    DatabaseSettings {
        url: SecretString::from(format!("sqlite://.draftr-data/{}.db", S::NAME)),
        ..Default::default()
    }
}

/// The `database` section over [`default_database`]: what is given replaces the default, what
/// is not keeps it.
fn database_of<'de, S: Subgraph, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<DatabaseSettings, D::Error> {
    #[derive(Deserialize)]
    struct Given {
        url: Option<SecretString>,
        schema: Option<String>,
        max_connections: Option<u32>,
        connect_timeout_secs: Option<u64>,
    }
    let given = Given::deserialize(deserializer)?;
    let mut database = default_database::<S>();
    if let Some(url) = given.url {
        database.url = url;
    }
    if given.schema.is_some() {
        database.schema = given.schema;
    }
    if let Some(n) = given.max_connections {
        database.max_connections = n;
    }
    if let Some(secs) = given.connect_timeout_secs {
        database.connect_timeout_secs = secs;
    }
    Ok(database)
}

impl<S: Subgraph> Default for SubgraphSettings<S> {
    fn default() -> Self {
        Self {
            listen: format!("127.0.0.1:{}", S::PORT),
            database: default_database::<S>(),
            redis: RedisSettings::default(),
            jwks_url: "http://127.0.0.1:4001/.well-known/jwks.json".to_owned(),
            issuer: "draftr-auth".to_owned(),
            audience: "draftr".to_owned(),
            trusted_proxies: vec![
                "127.0.0.1/32".parse().expect("net"),
                "::1/128".parse().expect("net"),
            ],
            service_token: None,
            limits: LimitSettings::default(),
            subgraph: PhantomData,
        }
    }
}

impl<S: Subgraph> Clone for SubgraphSettings<S> {
    fn clone(&self) -> Self {
        Self {
            listen: self.listen.clone(),
            database: self.database.clone(),
            redis: self.redis.clone(),
            jwks_url: self.jwks_url.clone(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            service_token: self.service_token.clone(),
            limits: self.limits,
            subgraph: PhantomData,
        }
    }
}

impl<S: Subgraph> std::fmt::Debug for SubgraphSettings<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubgraphSettings")
            .field("subgraph", &S::NAME)
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("redis", &self.redis)
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("service_token", &self.service_token)
            .field("limits", &self.limits)
            .finish()
    }
}

impl<S: Subgraph> SubgraphSettings<S> {
    /// The token policy every verifier checks.
    pub fn token_policy(&self) -> crate::jwt::TokenPolicy {
        crate::jwt::TokenPolicy {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
        }
    }

    /// A subgraph running as its own process verifies tokens against the revocation list auth
    /// writes sign-outs to, in Redis: without one, a logout would never reach it. So a process
    /// started on its own refuses to start without Redis; only the embedded default, where
    /// everything shares one in-process list, runs without it.
    pub fn require_redis(&self) -> anyhow::Result<()> {
        if self.redis.url.is_some() {
            return Ok(());
        }
        let part = S::NAME.to_ascii_uppercase();
        anyhow::bail!(
            "DRAFTR_{part}__REDIS__URL is not set: the {name} subgraph on its own needs the Redis \
             that auth records sign-outs in (and events travel through), or a logout would not \
             reach it. Set it, e.g. DRAFTR_{part}__REDIS__URL=redis://127.0.0.1:6379, or run \
             everything in one process with `draftr run`.",
            name = S::NAME
        )
    }

    /// What a subgraph running on its own checks tokens against: the revocation list in its
    /// Redis (in process without one) and auth's public keys from `jwks_url`.
    pub async fn token_sources(
        &self,
    ) -> anyhow::Result<(
        std::sync::Arc<dyn crate::kv::KvStore>,
        crate::jwt::KeySource,
    )> {
        let kv = crate::kv::connect(&self.redis).await?;
        Ok((kv, crate::jwt::KeySource::Url(self.jwks_url.clone())))
    }

    /// How the subgraph tells who is calling: tokens verified against `keys` and `kv` under
    /// this token policy, forwarded addresses believed from the trusted proxies only, and the
    /// service credential.
    pub async fn identify(
        &self,
        keys: crate::jwt::KeySource,
        kv: std::sync::Arc<dyn crate::kv::KvStore>,
    ) -> anyhow::Result<crate::http::Identify> {
        let verifier = crate::jwt::TokenVerifier::new(keys, &self.token_policy(), kv).await?;
        Ok(crate::http::Identify {
            verifier: std::sync::Arc::new(verifier),
            trusted_proxies: self.trusted_proxies.clone(),
            service_token: self.service_token.clone(),
        })
    }
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

    struct Probe;
    impl Subgraph for Probe {
        const NAME: &'static str = "probe";
        const PORT: u16 = 4999;
    }

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Flattened {
        #[serde(flatten)]
        subgraph: SubgraphSettings<Probe>,
        own: u32,
    }

    #[test]
    fn a_subgraph_on_its_own_requires_redis_and_says_which_variable() {
        let mut s = SubgraphSettings::<Probe>::default();
        let err = s.require_redis().unwrap_err().to_string();
        assert!(err.contains("DRAFTR_PROBE__REDIS__URL"), "{err}");
        s.redis.url = Some(SecretString::from("redis://127.0.0.1:6379"));
        assert!(s.require_redis().is_ok());
    }

    #[test]
    fn shared_settings_keep_their_names_and_each_subgraphs_defaults() {
        let s: Flattened = load_with_env("cfgflat", None, Some(Default::default())).unwrap();
        assert_eq!(s.subgraph.listen, "127.0.0.1:4999");
        assert_eq!(
            s.subgraph.database.url.expose_secret(),
            "sqlite://.draftr-data/probe.db"
        );
        let env = std::collections::HashMap::from([
            ("DRAFTR_CFGFLAT__LISTEN".to_owned(), "0.0.0.0:1".to_owned()),
            (
                "DRAFTR_CFGFLAT__DATABASE__MAX_CONNECTIONS".to_owned(),
                "3".to_owned(),
            ),
            (
                "DRAFTR_CFGFLAT__SERVICE_TOKEN".to_owned(),
                "s3cret".to_owned(),
            ),
            (
                "DRAFTR_CFGFLAT__TRUSTED_PROXIES".to_owned(),
                "10.0.0.0/8".to_owned(),
            ),
            ("DRAFTR_CFGFLAT__OWN".to_owned(), "7".to_owned()),
        ]);
        let s: Flattened = load_with_env("cfgflat", None, Some(env)).unwrap();
        assert_eq!(s.subgraph.listen, "0.0.0.0:1");
        assert_eq!(s.subgraph.database.max_connections, 3);
        assert_eq!(
            s.subgraph.database.url.expose_secret(),
            "sqlite://.draftr-data/probe.db"
        );
        assert_eq!(
            s.subgraph.service_token.as_ref().map(|t| t.expose_secret()),
            Some("s3cret")
        );
        assert_eq!(
            s.subgraph.trusted_proxies,
            vec!["10.0.0.0/8".parse::<IpNet>().unwrap()]
        );
        assert_eq!(s.own, 7);
    }

    #[test]
    fn limits_have_safe_defaults_and_come_from_the_environment() {
        let s: Flattened = load_with_env("cfglimits", None, Some(Default::default())).unwrap();
        assert_eq!(s.subgraph.limits, LimitSettings::default());
        assert_eq!(s.subgraph.limits.cost, 5_000);
        let env = std::collections::HashMap::from([
            (
                "DRAFTR_CFGLIMITS__LIMITS__COST".to_owned(),
                "800".to_owned(),
            ),
            (
                "DRAFTR_CFGLIMITS__LIMITS__ALIASES".to_owned(),
                "3".to_owned(),
            ),
        ]);
        let s: Flattened = load_with_env("cfglimits", None, Some(env)).unwrap();
        assert_eq!(s.subgraph.limits.cost, 800);
        assert_eq!(s.subgraph.limits.aliases, 3);
        assert_eq!(
            s.subgraph.limits.depth, 10,
            "the others keep their defaults"
        );
        assert!(
            !s.subgraph.limits.introspection,
            "introspection is off unless turned on"
        );
        let on = std::collections::HashMap::from([(
            "DRAFTR_CFGLIMITS__LIMITS__INTROSPECTION".to_owned(),
            "true".to_owned(),
        )]);
        let s: Flattened = load_with_env("cfglimits", None, Some(on)).unwrap();
        assert!(s.subgraph.limits.introspection);
        let typo = std::collections::HashMap::from([(
            "DRAFTR_CFGLIMITS__LIMITS__COSTS".to_owned(),
            "1".to_owned(),
        )]);
        assert!(
            load_with_env::<Flattened>("cfglimits", None, Some(typo)).is_err(),
            "a misspelt limit is refused, not ignored"
        );
    }

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
