//! The embedded default: every subgraph and the router in one process, SQLite files under a
//! data directory, in-process shared state — nothing to install or start first.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::stack::{Shared, Stack, StackSettings};

/// Where the embedded default listens and keeps its files.
#[derive(Debug, Clone)]
pub struct EmbeddedSettings {
    pub data_dir: PathBuf,
    pub router_listen: String,
    pub auth_listen: String,
    pub catalog_listen: String,
    pub reservations_listen: String,
    pub payments_listen: String,
    pub notifications_listen: String,
    /// Create the demo accounts (on first start; later starts find them).
    pub demo_data: bool,
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".draftr-data"),
            router_listen: "127.0.0.1:4000".into(),
            auth_listen: "127.0.0.1:4001".into(),
            catalog_listen: "127.0.0.1:4002".into(),
            reservations_listen: "127.0.0.1:4003".into(),
            payments_listen: "127.0.0.1:4004".into(),
            notifications_listen: "127.0.0.1:4005".into(),
            demo_data: true,
        }
    }
}

pub use crate::demo::DEMO_USERS;

/// The embedded default, running.
pub struct Embedded {
    /// Where the router serves GraphQL and `/health`.
    pub router_addr: SocketAddr,
    pub auth_port: u16,
    pub catalog_port: u16,
    pub reservations_port: u16,
    pub payments_port: u16,
    pub notifications_port: u16,
    /// Where the embedded mail catcher writes emails (`.eml` files).
    pub mail_dir: PathBuf,
    stack: Stack,
}

fn port_of(url: &str) -> u16 {
    url.trim_end_matches('/')
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_default()
}

impl Embedded {
    /// Environment settings (token lifetimes, throttling, an SMTP server, Stripe…) apply; where
    /// things listen and keep their data is the embedded default's to decide.
    pub async fn start(settings: EmbeddedSettings) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&settings.data_dir)?;
        let mut stack = StackSettings::from_env()?.in_sqlite_dir(&settings.data_dir);
        stack.shared = Shared::InProcess;
        stack.demo_data = settings.demo_data;
        stack.router_listen = settings.router_listen.clone();
        stack.auth.subgraph.listen = settings.auth_listen.clone();
        stack.catalog.subgraph.listen = settings.catalog_listen.clone();
        stack.reservations.subgraph.listen = settings.reservations_listen.clone();
        stack.payments.subgraph.listen = settings.payments_listen.clone();
        stack.notifications.subgraph.listen = settings.notifications_listen.clone();
        stack.auth.tokens.signing_key_file = settings.data_dir.join("auth-signing-key.pem");
        // For development: every subgraph answers introspection and shows GraphiQL on `GET /`
        // (a part started on its own keeps the production default, off), unless
        // DRAFTR_<PART>__LIMITS__INTROSPECTION says otherwise.
        stack.for_each(|c| {
            let variable = format!(
                "DRAFTR_{}__LIMITS__INTROSPECTION",
                c.name.to_ascii_uppercase()
            );
            if std::env::var_os(variable).is_none() {
                c.limits.introspection = true;
            }
        });
        // Emails land as .eml files under the data directory unless SMTP is configured.
        let mail_dir = settings.data_dir.join("mail");
        stack.notifications.mail.dir = mail_dir.display().to_string();
        // One setting for the router's CORS and the subscription socket's Origin check.
        if let Ok(origins) = std::env::var("DRAFTR_ALLOWED_ORIGINS") {
            stack.notifications.allowed_origins = origins;
        }
        let stack = Stack::start(stack).await?;
        let urls = stack.urls.clone();
        Ok(Self {
            router_addr: stack.router.addr,
            auth_port: port_of(&urls.auth),
            catalog_port: port_of(&urls.catalog),
            reservations_port: port_of(&urls.reservations),
            payments_port: port_of(&urls.payments),
            notifications_port: urls.notifications.first().map_or(0, |u| port_of(u)),
            mail_dir,
            stack,
        })
    }

    /// Stops the router, then the subgraphs, letting in-flight requests finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stack.shutdown().await
    }
}
