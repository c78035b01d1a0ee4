//! A cluster of `draftr <part>` processes: Draftr as production runs it, on one machine.
//!
//! [`Cluster::start`] migrates each part once (`draftr migrate <part>`, as the Kubernetes Job
//! does), then starts `replicas` processes of every subgraph and `replicas` routers
//! (`draftr-router`), each part on a fresh PostgreSQL schema, all of them on one Redis under a
//! namespace of the cluster's own, emails to an [`SmtpSink`], payments to a shared Stripe
//! stand-in ([`FakeStripe`], reached by its URL), and optionally the nginx [`Edge`] in front of
//! the routers.
//!
//! **Services.** Every subgraph is reached at one address, whatever its number of replicas, as a
//! Kubernetes Service would be: the routers and the other subgraphs call a [`Balancer`], a
//! small TCP balancer in this process that hands each new connection to the next replica in
//! turn and skips a replica that refuses it. It is a TCP balancer (not nginx, not HTTP-aware)
//! because that is what a ClusterIP Service is: kube-proxy balances connections, not requests,
//! so a client's kept-alive connection stays on its replica until it breaks, and a replica that
//! goes away breaks exactly the connections it held. Being in this process it needs no
//! configuration file, no reload when a replica stops, and no nginx for clusters without the
//! edge. The edge itself lists every router, notifications and payments replica directly, as an
//! ingress controller lists a Service's endpoints.
//!
//! **Processes** are killed with the cluster (and with this process, through
//! `PR_SET_PDEATHSIG`, should it die first). Each one's stdout and stderr are kept
//! ([`Cluster::log`]), `RUST_LOG=warn` unless [`ClusterOptions::env`] says otherwise. Ports come
//! from [`free_port`]: below the kernel's ephemeral range (so no outgoing connection holds one
//! while its replica is down) and never the same twice in a run, so a replica restarted on its
//! port cannot find it taken, and no two clusters of one run share one.

use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use draftr_common::config::DatabaseSettings;
use draftr_common::jwt::SigningKey;
use draftr_common::testing::{TestDatabase, redis_test_url};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::edge::{Edge, EdgeUpstreams};
use crate::smtp::SmtpSink;
use crate::stripe::FakeStripe;

/// The subgraphs, in the order they are started (auth first: the others fetch its keys).
pub const SUBGRAPHS: [&str; 5] = [
    "auth",
    "catalog",
    "payments",
    "reservations",
    "notifications",
];

/// The routers' part name in [`Cluster::log`], [`Cluster::stop`] and the others.
pub const ROUTER: &str = "router";

/// How long a process may take to answer `/ready` once started.
const READY_LIMIT: Duration = Duration::from_secs(90);
/// How long a process may take to exit after SIGTERM (or SIGKILL).
const EXIT_LIMIT: Duration = Duration::from_secs(30);
/// The service credential every part of a cluster shares.
const SERVICE_TOKEN: &str = "cluster-service-token-0123456789abcdef";
/// What the payments replicas present to the Stripe stand-in.
const STRIPE_KEY: &str = "sk_test_cluster";
/// Kept of each process's output (the oldest half goes past this).
const LOG_LIMIT: usize = 8 << 20;

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Processes per part (every subgraph, and routers); at least 1.
    pub replicas: usize,
    /// The nginx edge in front of the routers ([`Cluster::url`] is then the edge's).
    pub edge: bool,
    /// Added to every process's environment, router included, after the cluster's own (so
    /// they override it: `RUST_LOG`, `DRAFTR_RESERVATIONS__BOOKING__HOLD_TIMEOUT_MS`, …).
    pub env: Vec<(String, String)>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            replicas: 1,
            edge: false,
            env: Vec::new(),
        }
    }
}

/// Where the `draftr` and `draftr-router` executables are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub draftr: PathBuf,
    pub router: PathBuf,
}

impl Binaries {
    /// `draftr` at `draftr` (a test's `env!("CARGO_BIN_EXE_draftr")`), `draftr-router` beside
    /// it, where `cargo test --workspace` builds it.
    pub fn new(draftr: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let draftr = draftr.into();
        let router = draftr.with_file_name("draftr-router");
        if !draftr.is_file() {
            bail!(
                "{} does not exist: build it with `cargo build -p draftr`",
                draftr.display()
            );
        }
        if !router.is_file() {
            let profile = if draftr.components().any(|c| c.as_os_str() == "release") {
                " --release"
            } else {
                ""
            };
            bail!(
                "{} does not exist: the cluster runs the router as its own process; build it \
                 with `cargo build{profile} -p draftr-router`",
                router.display()
            );
        }
        Ok(Self { draftr, router })
    }

    /// `DRAFTR_BIN_DIR` if set, else the target directory the running test or bench was built
    /// in (`target/<profile>/deps/<test>` → `target/<profile>/`).
    pub fn find() -> anyhow::Result<Self> {
        let dir = match std::env::var_os("DRAFTR_BIN_DIR").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                let exe = std::env::current_exe().context("the running executable")?;
                let deps = exe.parent().context("the executable's directory")?;
                match deps.file_name() {
                    Some(name) if name == "deps" => deps.parent().unwrap_or(deps).to_owned(),
                    _ => deps.to_owned(),
                }
            }
        };
        Self::new(dir.join("draftr"))
    }
}

/// A process's captured output.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<String>>);

impl Log {
    fn lock(&self) -> MutexGuard<'_, String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, line: &str) {
        let mut log = self.lock();
        if log.len() > LOG_LIMIT {
            let cut = log.len() / 2;
            let cut = (cut..log.len())
                .find(|i| log.is_char_boundary(*i))
                .unwrap_or(cut);
            log.replace_range(..cut, "[… earlier output dropped …]\n");
        }
        log.push_str(line);
        log.push('\n');
    }

    fn text(&self) -> String {
        self.lock().clone()
    }
}

/// One replica of one part: how to start it, and the process while it runs.
struct Replica {
    part: String,
    index: usize,
    /// Where it serves (GraphQL for the router).
    addr: SocketAddr,
    /// Answers 200 once the process is ready.
    ready_url: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: Log,
    child: Option<Child>,
    starts: usize,
}

impl Replica {
    fn spawn(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        if self.starts > 1 {
            self.log
                .push(&format!("--- cluster: start #{} ---", self.starts));
        }
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let mut child = command.spawn().with_context(|| {
            format!(
                "starting {} for {} {}",
                self.program.display(),
                self.part,
                self.index
            )
        })?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(capture(out, self.log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(capture(err, self.log.clone()));
        }
        self.child = Some(child);
        Ok(())
    }
}

async fn capture(stream: impl AsyncRead + Unpin, log: Log) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        log.push(&line);
    }
}

/// The child gets SIGKILL when the thread that started it ends (this process dying included),
/// so a test run that is killed leaves no part running.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

/// A port of 127.0.0.1 that is free now and that this process has not handed out before.
///
/// Taken from below the kernel's ephemeral range (`ip_local_port_range`), where neither
/// outgoing connections nor `bind(…:0)` elsewhere land, starting at a place that depends on
/// the process id so that concurrent test processes start apart.
pub fn free_port() -> anyhow::Result<u16> {
    static GIVEN: Mutex<Option<(HashSet<u16>, u32)>> = Mutex::new(None);
    let (low, high) = unprivileged_below_ephemeral();
    let span = u32::from(high - low);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let (used, cursor) =
        given.get_or_insert_with(|| (HashSet::new(), std::process::id().wrapping_mul(7919)));
    for _ in 0..span {
        *cursor = cursor.wrapping_add(1);
        let port = low + (*cursor % span) as u16;
        if used.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            used.insert(port);
            return Ok(port);
        }
    }
    bail!("no free port left between {low} and {high}")
}

/// The ports to hand out: 20000 up to the start of the ephemeral range (32768 by default).
fn unprivileged_below_ephemeral() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_low > 21_000 {
        (20_000, ephemeral_low)
    } else {
        // An unusual range: above it, then.
        (61_000, 65_000)
    }
}

/// A part's one address: each new connection goes to the next replica in turn; a replica that
/// refuses (stopped, or not started yet) is skipped. See the module documentation for why.
pub struct Balancer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks (a JoinSet): they end with it.
        self.task.abort();
    }
}

impl Balancer {
    /// Listens on `127.0.0.1:port` in front of `backends`.
    pub async fn start(port: u16, backends: Vec<SocketAddr>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .with_context(|| format!("the balancer's port {port}"))?;
        let addr = listener.local_addr()?;
        let backends = Arc::new(backends);
        let next = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // Reap finished connections so the set does not grow with the run.
                while connections.try_join_next().is_some() {}
                let backends = backends.clone();
                let first = next.fetch_add(1, Ordering::Relaxed);
                connections.spawn(forward(inbound, backends, first));
            }
        });
        Ok(Self { addr, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

async fn forward(mut inbound: TcpStream, backends: Arc<Vec<SocketAddr>>, first: usize) {
    let _ = inbound.set_nodelay(true);
    for i in 0..backends.len() {
        let backend = backends[(first + i) % backends.len()];
        let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(backend));
        if let Ok(Ok(mut outbound)) = connect.await {
            let _ = outbound.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            return;
        }
    }
    // No replica answers: the connection is closed, as a Service with no endpoints does.
}

/// A running cluster. Dropping it kills every process (and the edge, and the balancers).
pub struct Cluster {
    replicas: usize,
    /// Every part's replicas, routers included, by (part, index).
    processes: Mutex<BTreeMap<(String, usize), Replica>>,
    balancers: BTreeMap<String, Balancer>,
    databases: BTreeMap<String, TestDatabase>,
    namespace: String,
    redis_url: String,
    smtp: SmtpSink,
    stripe: FakeStripe,
    /// Serves [`Cluster::stripe`] until the cluster is dropped.
    _stripe_server: wiremock::MockServer,
    edge: Option<Edge>,
}

impl Drop for Cluster {
    /// Kills every process and reaps it (a SIGKILLed process is gone within milliseconds, so
    /// the short blocking wait is fine even on a runtime thread); a failing test keeps their
    /// logs in a file, named on stderr.
    fn drop(&mut self) {
        let mut children: Vec<Child> = self
            .lock()
            .values_mut()
            .filter_map(|r| r.child.take())
            .collect();
        for child in &mut children {
            let _ = child.start_kill();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !children.is_empty() && Instant::now() < deadline {
            children.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
            std::thread::sleep(Duration::from_millis(5));
        }
        if std::thread::panicking() {
            let path = std::env::temp_dir().join(format!("draftr-{}.log", self.namespace));
            match std::fs::write(&path, self.logs()) {
                Ok(()) => eprintln!("the cluster's logs are in {}", path.display()),
                Err(e) => eprintln!("cannot keep the cluster's logs in {}: {e}", path.display()),
            }
        }
    }
}

impl Cluster {
    /// The cluster with the binaries of the running test or bench ([`Binaries::find`]).
    pub async fn start(options: ClusterOptions) -> anyhow::Result<Cluster> {
        Self::start_with(options, Binaries::find()?).await
    }

    /// Migrates each part once, starts every replica and waits until each answers `/ready`
    /// (the routers `/health?ready`), then starts the edge if asked.
    pub async fn start_with(options: ClusterOptions, bin: Binaries) -> anyhow::Result<Cluster> {
        let replicas = options.replicas.max(1);
        let run = uuid::Uuid::new_v4().simple().to_string();
        let namespace = format!("cluster{}", &run[..12]);
        let redis_url = redis_test_url();
        let smtp = SmtpSink::start().await;
        let (stripe_server, stripe) = FakeStripe::start().await;
        // Its base URL, with the trailing `/` the provider's `stripe_api_base` wants.
        let stripe_url = format!("{}/", stripe_server.uri());
        let key = SigningKey::generate();

        let mut databases = BTreeMap::new();
        for part in SUBGRAPHS {
            databases.insert(part.to_owned(), TestDatabase::postgres().await);
        }
        let mut balancers = BTreeMap::new();
        let mut addrs: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
        for part in SUBGRAPHS {
            let ports = (0..replicas)
                .map(|_| free_port().map(|p| SocketAddr::from((Ipv4Addr::LOCALHOST, p))))
                .collect::<anyhow::Result<Vec<_>>>()?;
            balancers.insert(
                part.to_owned(),
                Balancer::start(free_port()?, ports.clone()).await?,
            );
            addrs.insert(part.to_owned(), ports);
        }
        let service = |part: &str| balancers[part].url();
        let jwks = format!("{}.well-known/jwks.json", service("auth"));
        let user_env = &options.env;
        let sets_log = user_env.iter().any(|(k, _)| k == "RUST_LOG");

        let mut processes = BTreeMap::new();
        let mut migrations = Vec::new();
        for part in SUBGRAPHS {
            let p = format!("DRAFTR_{}__", part.to_ascii_uppercase());
            let db = &databases[part].settings;
            let mut env = vec![
                (
                    format!("{p}DATABASE__URL"),
                    db.url.expose_secret().to_owned(),
                ),
                (
                    format!("{p}DATABASE__SCHEMA"),
                    db.schema.clone().unwrap_or_default(),
                ),
                // Ten processes on one PostgreSQL, beside the other tests.
                (format!("{p}DATABASE__MAX_CONNECTIONS"), "4".to_owned()),
                (format!("{p}REDIS__URL"), redis_url.clone()),
                (format!("{p}REDIS__NAMESPACE"), namespace.clone()),
                (format!("{p}SERVICE_TOKEN"), SERVICE_TOKEN.to_owned()),
            ];
            let mut add = |k: &str, v: String| env.push((format!("{p}{k}"), v));
            match part {
                "auth" => add("TOKENS__SIGNING_KEY_PEM", key.to_pem().to_owned()),
                "catalog" => {
                    add("JWKS_URL", jwks.clone());
                    add("AUTH_URL", service("auth"));
                }
                "payments" => {
                    add("JWKS_URL", jwks.clone());
                    add("PROVIDER__KIND", "stripe".into());
                    add("PROVIDER__STRIPE_SECRET_KEY", STRIPE_KEY.into());
                    add("PROVIDER__STRIPE_API_BASE", stripe_url.clone());
                    // The stand-in's search is consistent at once.
                    add("PROVIDER__SEARCH_LAG_MS", "0".into());
                    add("PROVIDER__TIMEOUT_MS", "5000".into());
                }
                "reservations" => {
                    add("JWKS_URL", jwks.clone());
                    add("CATALOG_URL", service("catalog"));
                    add("PAYMENTS_URL", service("payments"));
                    // A crashed saga's hold is settled within seconds, not minutes.
                    add("BOOKING__HOLD_TIMEOUT_MS", "15000".into());
                    add("BOOKING__RECONCILE_INTERVAL_MS", "1000".into());
                }
                "notifications" => {
                    add("JWKS_URL", jwks.clone());
                    add("AUTH_URL", service("auth"));
                    add("MAIL__SMTP_URL", smtp.url.clone());
                    add("MAIL__BACKOFF_MS", "200".into());
                    add("MAIL__MAX_BACKOFF_MS", "1000".into());
                    add("MAIL__POLL_MS", "50".into());
                    add("MAIL__STALE_SENDING_MS", "3000".into());
                    add("MAIL__SEND_TIMEOUT_MS", "1000".into());
                    add("RECLAIM_IDLE_MS", "2000".into());
                }
                _ => {}
            }
            if !sets_log {
                env.push(("RUST_LOG".into(), "warn".into()));
            }
            // Plain text: the logs end up in assertion messages.
            env.push(("NO_COLOR".into(), "1".into()));
            env.extend(user_env.iter().cloned());
            migrations.push(migrate(&bin.draftr, part, env.clone()));
            for (index, addr) in addrs[part].iter().enumerate() {
                let mut env = env.clone();
                env.push((format!("{p}LISTEN"), addr.to_string()));
                processes.insert(
                    (part.to_owned(), index),
                    Replica {
                        part: part.to_owned(),
                        index,
                        addr: *addr,
                        ready_url: format!("http://{addr}/ready"),
                        program: bin.draftr.clone(),
                        args: vec![part.to_owned()],
                        env,
                        log: Log::default(),
                        child: None,
                        starts: 0,
                    },
                );
            }
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let router_args = vec![
            "--config".to_owned(),
            root.join("router/router.yaml").display().to_string(),
            "--supergraph".to_owned(),
            root.join("schema/supergraph.graphql").display().to_string(),
        ];
        let mut router_addrs = Vec::new();
        for index in 0..replicas {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
            let health = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
            let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
            let mut env = vec![
                ("DRAFTR_ROUTER_LISTEN".to_owned(), addr.to_string()),
                ("DRAFTR_ROUTER_HEALTH_LISTEN".to_owned(), health.to_string()),
                (
                    "DRAFTR_ROUTER_METRICS_LISTEN".to_owned(),
                    metrics.to_string(),
                ),
                ("APOLLO_TELEMETRY_DISABLED".to_owned(), "true".to_owned()),
            ];
            for part in SUBGRAPHS {
                env.push((
                    format!("DRAFTR_{}_URL", part.to_ascii_uppercase()),
                    service(part),
                ));
            }
            if !sets_log {
                env.push(("RUST_LOG".into(), "warn".into()));
                env.push(("APOLLO_ROUTER_LOG".into(), "warn".into()));
            }
            env.push(("NO_COLOR".into(), "1".into()));
            env.extend(user_env.iter().cloned());
            router_addrs.push(addr);
            processes.insert(
                (ROUTER.to_owned(), index),
                Replica {
                    part: ROUTER.to_owned(),
                    index,
                    addr,
                    ready_url: format!("http://{health}/health?ready"),
                    program: bin.router.clone(),
                    args: router_args.clone(),
                    env,
                    log: Log::default(),
                    child: None,
                    starts: 0,
                },
            );
        }

        let mut cluster = Cluster {
            replicas,
            processes: Mutex::new(processes),
            balancers,
            databases,
            namespace,
            redis_url,
            smtp,
            stripe,
            _stripe_server: stripe_server,
            edge: None,
        };
        for result in futures::future::join_all(migrations).await {
            result?;
        }
        // Auth first: every other part fetches its keys at start.
        cluster.start_parts(&["auth"]).await?;
        cluster
            .start_parts(&["catalog", "payments", "reservations", "notifications"])
            .await?;
        cluster.start_parts(&[ROUTER]).await?;
        if options.edge {
            let list = |addrs: &[SocketAddr]| -> Vec<String> {
                addrs.iter().map(|a| a.to_string()).collect()
            };
            cluster.edge = Some(
                Edge::start(EdgeUpstreams {
                    router: list(&router_addrs),
                    notifications: list(&addrs["notifications"]),
                    payments: list(&addrs["payments"]),
                    reservations: list(&addrs["reservations"]),
                })
                .await
                .context("starting the edge proxy")?,
            );
        }
        Ok(cluster)
    }

    /// Starts every replica of `parts` at once and waits until each is ready.
    async fn start_parts(&self, parts: &[&str]) -> anyhow::Result<()> {
        let mut waits = Vec::new();
        for part in parts {
            for index in 0..self.replicas {
                self.with_replica(part, index, |r| r.spawn())?;
                waits.push(self.wait_ready(part, index));
            }
        }
        for result in futures::future::join_all(waits).await {
            result?;
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, usize), Replica>> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_replica<T>(
        &self,
        part: &str,
        index: usize,
        f: impl FnOnce(&mut Replica) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut processes = self.lock();
        let replica = processes
            .get_mut(&(part.to_owned(), index))
            .with_context(|| format!("the cluster has no {part} {index}"))?;
        f(replica)
    }

    async fn wait_ready(&self, part: &str, index: usize) -> anyhow::Result<()> {
        let url = self.with_replica(part, index, |r| Ok(r.ready_url.clone()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()?;
        let started = Instant::now();
        loop {
            let exited = self.with_replica(part, index, |r| match r.child.as_mut() {
                Some(child) => Ok(child.try_wait()?),
                None => bail!("{part} {index} is not running"),
            })?;
            if let Some(status) = exited {
                bail!(
                    "{part} {index} exited ({status}) before it was ready:\n{}",
                    tail(&self.log(part, index), 40)
                );
            }
            if let Ok(res) = client.get(&url).send().await
                && res.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > READY_LIMIT {
                bail!(
                    "{part} {index} was not ready ({url}) within {READY_LIMIT:?}:\n{}",
                    tail(&self.log(part, index), 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The GraphQL URL clients use: the edge's if it runs, else the first router's.
    pub fn url(&self) -> String {
        match &self.edge {
            Some(edge) => edge.url(),
            None => self.router_url(0),
        }
    }

    /// The graphql-ws URL clients use: the edge's `/ws` if it runs, else the first
    /// notifications replica's.
    pub fn ws_url(&self) -> String {
        match &self.edge {
            Some(edge) => edge.ws_url(),
            None => self.notifications_ws(0),
        }
    }

    /// Router `replica`'s own GraphQL URL.
    pub fn router_url(&self, replica: usize) -> String {
        format!("http://{}/", self.addr(ROUTER, replica))
    }

    /// Notifications replica `replica`'s own subscription endpoint.
    pub fn notifications_ws(&self, replica: usize) -> String {
        format!("ws://{}/ws", self.addr("notifications", replica))
    }

    /// Where replica `replica` of `part` serves (the router's GraphQL address for
    /// [`ROUTER`]). Panics for a part or replica the cluster does not have.
    pub fn addr(&self, part: &str, replica: usize) -> SocketAddr {
        self.with_replica(part, replica, |r| Ok(r.addr))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A subgraph's one address, `http://…/`, balanced over its replicas (what the routers
    /// and the other subgraphs call).
    pub fn service_url(&self, part: &str) -> String {
        self.balancers
            .get(part)
            .map(Balancer::url)
            .unwrap_or_else(|| panic!("no subgraph {part}"))
    }

    pub fn edge(&self) -> Option<&Edge> {
        self.edge.as_ref()
    }

    /// Processes per part.
    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// A process's captured stdout and stderr, every start of it ("" if there is no such
    /// process).
    pub fn log(&self, part: &str, replica: usize) -> String {
        self.with_replica(part, replica, |r| Ok(r.log.text()))
            .unwrap_or_default()
    }

    /// Every process's log, each under a heading (for failure messages).
    pub fn logs(&self) -> String {
        let processes = self.lock();
        let mut all = String::new();
        for ((part, index), r) in processes.iter() {
            let text = r.log.text();
            if !text.is_empty() {
                all.push_str(&format!("===== {part} {index} =====\n{text}"));
            }
        }
        all
    }

    /// `part`'s database settings (its own PostgreSQL schema).
    pub fn database(&self, part: &str) -> &DatabaseSettings {
        &self
            .databases
            .get(part)
            .unwrap_or_else(|| panic!("no subgraph {part}"))
            .settings
    }

    /// `part`'s PostgreSQL schema name.
    pub fn schema(&self, part: &str) -> String {
        self.database(part).schema.clone().unwrap_or_default()
    }

    /// A connection to `part`'s schema (for queries on its tables).
    pub async fn connect(&self, part: &str) -> anyhow::Result<DatabaseConnection> {
        Ok(draftr_common::db::connect(self.database(part)).await?)
    }

    /// The key prefix of the cluster's event streams and live channel in Redis.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn redis_url(&self) -> &str {
        &self.redis_url
    }

    /// Where every email goes.
    pub fn smtp(&self) -> &SmtpSink {
        &self.smtp
    }

    /// The payment provider the payments replicas share.
    pub fn stripe(&self) -> &FakeStripe {
        &self.stripe
    }

    /// The process id of a running replica.
    pub fn pid(&self, part: &str, replica: usize) -> Option<u32> {
        self.with_replica(part, replica, |r| Ok(r.child.as_ref().and_then(Child::id)))
            .ok()
            .flatten()
    }

    /// Whether the replica's process is running.
    pub fn is_running(&self, part: &str, replica: usize) -> bool {
        self.with_replica(part, replica, |r| {
            Ok(match r.child.as_mut() {
                Some(child) => child.try_wait()?.is_none(),
                None => false,
            })
        })
        .unwrap_or(false)
    }

    /// Sends SIGTERM (what Kubernetes sends first) and waits for the process to exit; returns
    /// how it exited. A process still running after 30 s is killed and this is an error.
    pub async fn stop(&self, part: &str, replica: usize) -> anyhow::Result<ExitStatus> {
        let mut child = self.take_child(part, replica)?;
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) on a child of ours that has not been reaped yet (we hold it).
            let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            if sent == -1 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("SIGTERM to {part} {replica}"));
            }
        }
        match tokio::time::timeout(EXIT_LIMIT, child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                let _ = child.kill().await;
                bail!(
                    "{part} {replica} did not exit within {EXIT_LIMIT:?} of SIGTERM:\n{}",
                    tail(&self.log(part, replica), 40)
                )
            }
        }
    }

    /// Sends SIGKILL (a crash, an OOM kill) and waits until the process is gone.
    pub async fn kill(&self, part: &str, replica: usize) -> anyhow::Result<()> {
        let mut child = self.take_child(part, replica)?;
        child.start_kill()?;
        tokio::time::timeout(EXIT_LIMIT, child.wait())
            .await
            .with_context(|| format!("{part} {replica} still running after SIGKILL"))??;
        Ok(())
    }

    /// Starts a stopped or killed replica again, on its port and with its settings, and waits
    /// until it is ready.
    pub async fn restart(&self, part: &str, replica: usize) -> anyhow::Result<()> {
        self.with_replica(part, replica, |r| {
            if let Some(child) = r.child.as_mut()
                && child.try_wait()?.is_none()
            {
                bail!("{part} {replica} is still running");
            }
            r.spawn()
        })?;
        self.wait_ready(part, replica).await
    }

    fn take_child(&self, part: &str, replica: usize) -> anyhow::Result<Child> {
        self.with_replica(part, replica, |r| {
            r.child
                .take()
                .with_context(|| format!("{part} {replica} is not running"))
        })
    }
}

/// Runs `draftr migrate <part>` with the part's environment.
async fn migrate(draftr: &Path, part: &str, env: Vec<(String, String)>) -> anyhow::Result<()> {
    let mut command = Command::new(draftr);
    command
        .args(["migrate", part])
        .envs(env)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(READY_LIMIT, command.output())
        .await
        .with_context(|| format!("draftr migrate {part} did not finish"))??;
    if !out.status.success() {
        bail!(
            "draftr migrate {part} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
