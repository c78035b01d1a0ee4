//! The edge proxy in front of a test stack: a real nginx running the production configuration,
//! `deploy/edge/draftr.conf.template`, rendered as docker-compose.yml renders it, with upstream
//! blocks listing the test's replicas (compose and Kubernetes name one service each instead).
//!
//! Every [`Edge`] is an nginx process of its own, run as the current user in the foreground on a
//! free port, with its prefix, pid file, logs and temp paths in a directory of its own: it never
//! touches the machine's nginx (Debian's package may run one on port 80) nor another test's.
//! `nginx` is found through `DRAFTR_NGINX` (set by scripts/test), then `PATH`, then `/usr/sbin`
//! (Debian installs it there, outside a normal user's `PATH`).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The replicas behind the edge, each `"127.0.0.1:port"`. Every list needs at least one.
#[derive(Debug, Clone, Default)]
pub struct EdgeUpstreams {
    pub router: Vec<String>,
    pub notifications: Vec<String>,
    pub payments: Vec<String>,
    /// Reservations' replicas (the iCal export feeds at `/calendar/`).
    pub reservations: Vec<String>,
}

impl EdgeUpstreams {
    /// The parts of a test app behind the edge: its router, its notifications replicas (both,
    /// unless it runs none), payments and reservations.
    pub fn of(app: &crate::app::TestApp) -> anyhow::Result<Self> {
        let mut notifications = Vec::new();
        for ws in [&app.notifications_ws, &app.notifications2_ws] {
            let server = host_port(ws)?;
            // The app's stand-in for "no replica" (the discard port).
            if server != "127.0.0.1:9" {
                notifications.push(server);
            }
        }
        Ok(Self {
            router: vec![host_port(&app.router_url)?],
            notifications,
            payments: vec![host_port(&app.payments_url)?],
            reservations: vec![host_port(&app.reservations_url)?],
        })
    }
}

/// `"host:port"` of a URL such as `http://127.0.0.1:4000/` or `ws://127.0.0.1:4005/ws`.
pub fn host_port(url: &str) -> anyhow::Result<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    if authority
        .rsplit_once(':')
        .is_none_or(|(_, port)| port.parse::<u16>().is_err())
    {
        bail!("no host:port in {url:?}");
    }
    Ok(authority.to_owned())
}

/// A running edge proxy; nginx is killed (and its directory removed) on drop.
pub struct Edge {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

/// How long nginx may take to answer after it was started.
const START_LIMIT: Duration = Duration::from_secs(15);

impl Edge {
    /// Renders the edge configuration for `upstreams`, starts nginx on a free port of 127.0.0.1
    /// and returns once it answers.
    pub async fn start(upstreams: EdgeUpstreams) -> anyhow::Result<Edge> {
        let nginx = nginx_binary()?;
        let template_dir = workspace_root().join("deploy/edge");
        let template_path = template_dir.join("draftr.conf.template");
        let template = std::fs::read_to_string(&template_path)
            .with_context(|| format!("reading {}", template_path.display()))?;
        let upstream_conf = upstream_blocks(&upstreams)?;

        // The free port is found by binding and letting go; another process may take it in
        // between, so a start that failed on the address is tried again on another port.
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let dir =
                std::env::temp_dir().join(format!("draftr-edge-{}", uuid::Uuid::new_v4().simple()));
            let edge = match prepare(&dir, &template, &upstream_conf, port) {
                Ok(()) => spawn(&nginx, &dir, port),
                Err(e) => Err(e),
            };
            match edge {
                Ok(mut edge) => match edge.wait_ready().await {
                    Ok(()) => return Ok(edge),
                    Err(e) => {
                        let in_use = edge.startup_output().contains("Address already in use");
                        drop(edge);
                        if !in_use {
                            return Err(e);
                        }
                        last_error = Some(e);
                    }
                },
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("nginx did not start")))
    }

    /// The public entry: `http://127.0.0.1:<port>/` (GraphQL, through the router).
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Subscriptions: `ws://127.0.0.1:<port>/ws` (graphql-ws, to notifications).
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// nginx's error log so far (upstream failures, refused requests), for assertion messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }

    /// The access log so far, one line per request:
    /// `<client address> "<request line>" <status> upstream=<address tried, or ->`.
    /// `upstream=-` means the edge answered itself and no part saw the request.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/access.log")).unwrap_or_default()
    }

    /// What nginx printed before its error log was open (configuration errors), plus the log.
    fn startup_output(&self) -> String {
        let stderr = std::fs::read_to_string(self.dir.join("logs/stderr.log")).unwrap_or_default();
        format!("{stderr}{}", self.error_log())
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .no_proxy()
            .build()?;
        // A path the edge answers itself, so a stack still starting does not matter.
        let probe = format!("http://{}/edge-not-found", self.addr);
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "nginx exited ({status}) before answering on {}:\n{}",
                    self.addr,
                    self.startup_output()
                );
            }
            if let Ok(res) = client.get(&probe).send().await
                && res.status() == reqwest::StatusCode::NOT_FOUND
            {
                return Ok(());
            }
            if started.elapsed() > START_LIMIT {
                bail!(
                    "nginx did not answer on {} within {START_LIMIT:?}:\n{}",
                    self.addr,
                    self.startup_output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        // One process (`master_process off`), so killing it leaves no worker holding the port.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("edge proxy logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Renders every `deploy/edge/*.template` as the nginx image does in docker-compose.yml (each
/// `${NAME}` of `vars` replaced, the rest left alone) into a `conf.d` included whole by an
/// `http` block, as the image's nginx.conf includes it, and has nginx check the result
/// (`nginx -t`, which binds no port). Returns nginx's verdict.
pub fn check_templates(vars: &[(&str, &str)]) -> anyhow::Result<String> {
    let nginx = nginx_binary()?;
    let dir = std::env::temp_dir().join(format!(
        "draftr-edge-check-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let checked = (|| {
        for sub in ["conf.d", "logs", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let templates = workspace_root().join("deploy/edge");
        for entry in std::fs::read_dir(&templates)? {
            let path = entry?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".template"))
            else {
                continue;
            };
            let mut text = std::fs::read_to_string(&path)?;
            for (var, value) in vars {
                text = text.replace(&format!("${{{var}}}"), value);
            }
            std::fs::write(dir.join("conf.d").join(name), text)?;
        }
        let d = dir.display();
        let main = format!(
            r#"pid "{d}/nginx.pid";
error_log "{d}/logs/error.log" notice;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path "{d}/tmp/body";
    proxy_temp_path "{d}/tmp/proxy";
    fastcgi_temp_path "{d}/tmp/fastcgi";
    uwsgi_temp_path "{d}/tmp/uwsgi";
    scgi_temp_path "{d}/tmp/scgi";
    include "{d}/conf.d/*.conf";
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), main)?;
        let out = Command::new(&nginx)
            .arg("-t")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", nginx.display()))?;
        let verdict = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("nginx -t refused the rendered templates:\n{verdict}");
        }
        anyhow::Ok(verdict)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    checked
}

/// The workspace root: this crate is tests/support.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn nginx_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("DRAFTR_NGINX").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!("DRAFTR_NGINX is {}, which is not a file", path.display());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .context(
            "nginx is not installed, and the edge proxy tests run a real one: run scripts/test \
             (it installs Debian's nginx-light as root), install it yourself (Debian: sudo \
             apt-get install -y nginx-light), or set DRAFTR_NGINX to its path",
        )
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// The test's upstream blocks, named as the template expects: every replica listed, a failed
/// one skipped for 2 s (short, so tests that stop and start replicas see it back soon).
fn upstream_blocks(upstreams: &EdgeUpstreams) -> anyhow::Result<String> {
    let mut conf = String::new();
    for (name, servers, keepalive) in [
        ("draftr_router", &upstreams.router, true),
        ("draftr_notifications", &upstreams.notifications, false),
        ("draftr_payments", &upstreams.payments, true),
        ("draftr_reservations", &upstreams.reservations, true),
    ] {
        if servers.is_empty() {
            bail!("the edge needs at least one {name} server");
        }
        writeln!(conf, "upstream {name} {{")?;
        for server in servers {
            if server.contains(|c: char| c.is_whitespace() || c == ';' || c == '{' || c == '}') {
                bail!("not a host:port for {name}: {server:?}");
            }
            writeln!(conf, "    server {server} max_fails=1 fail_timeout=2s;")?;
        }
        if keepalive {
            writeln!(conf, "    keepalive 16;")?;
        }
        writeln!(conf, "}}\n")?;
    }
    Ok(conf)
}

/// Writes the whole configuration under `dir`.
fn prepare(dir: &Path, template: &str, upstream_conf: &str, port: u16) -> anyhow::Result<()> {
    for sub in ["conf.d", "logs", "tmp"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    let server = template.replace("${DRAFTR_EDGE_LISTEN}", &format!("127.0.0.1:{port}"));
    if let Some(at) = server.find("${") {
        let rest: String = server[at..].chars().take(40).collect();
        bail!("draftr.conf.template has a variable the tests do not set: {rest}");
    }
    std::fs::write(dir.join("conf.d/draftr.conf"), server)?;
    std::fs::write(dir.join("conf.d/upstreams.conf"), upstream_conf)?;

    let d = dir.display();
    // One process, no workers: nothing switches to another user (as workers started by root
    // would, to `nobody`, who could not write the temp paths here), and killing it is enough.
    let main = format!(
        r#"# Written by draftr-test-support's Edge: everything under {d}.
master_process off;
pid "{d}/nginx.pid";
error_log "{d}/logs/error.log" notice;

events {{
    worker_connections 1024;
}}

http {{
    log_format draftr '$remote_addr "$request" $status upstream=$upstream_addr';
    access_log "{d}/logs/access.log" draftr;
    client_body_temp_path "{d}/tmp/body";
    proxy_temp_path "{d}/tmp/proxy";
    fastcgi_temp_path "{d}/tmp/fastcgi";
    uwsgi_temp_path "{d}/tmp/uwsgi";
    scgi_temp_path "{d}/tmp/scgi";

    # The order compose's template step gives them (alphabetical).
    include "{d}/conf.d/draftr.conf";
    include "{d}/conf.d/upstreams.conf";
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), main)?;
    Ok(())
}

fn spawn(nginx: &Path, dir: &Path, port: u16) -> anyhow::Result<Edge> {
    let stderr = std::fs::File::create(dir.join("logs/stderr.log"))?;
    let child = Command::new(nginx)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {}", nginx.display()))?;
    Ok(Edge {
        child,
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        dir: dir.to_owned(),
    })
}
