//! Settings of the notifications subgraph (`DRAFTR_NOTIFICATIONS__…` environment variables
//! override).

use draftr_common::config::{Subgraph, SubgraphSettings};
use draftr_common::service_client::CallPolicy;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct NotificationsSettings {
    /// Listen address, database, Redis, token policy, trusted proxies, service credential.
    #[serde(flatten)]
    pub subgraph: SubgraphSettings<Self>,
    /// Where recipients' addresses and names are looked up (a service call).
    pub auth_url: String,
    pub calls: CallPolicy,
    pub mail: MailSettings,
    /// Browser origins allowed to open the subscription socket: a regular expression the
    /// `Origin` header must match (anchor it), the same setting as the router's CORS
    /// (`DRAFTR_ALLOWED_ORIGINS`). Clients that send no `Origin` (not browsers) are not
    /// affected; they still need a token.
    pub allowed_origins: String,
    /// How long an event may stay unacknowledged by a consumer (one that crashed) before
    /// another takes it over.
    pub reclaim_idle_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MailSettings {
    /// `smtp://host:port` (plain, for local catchers), `smtps://user:pass@host:465` or
    /// `smtp://user:pass@host:587?tls=required`. Unset: emails are written as `.eml` files to
    /// `dir` (the embedded default's mail catcher).
    pub smtp_url: Option<SecretString>,
    pub dir: String,
    pub from: String,
    /// Attempts per email before it is marked FAILED.
    pub max_attempts: i32,
    /// First retry delay; doubled per attempt, at most `max_backoff_ms`.
    pub backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// How often the mailer looks for due emails.
    pub poll_ms: u64,
    /// An email left SENDING this long belongs to a mailer that died; it is sent again (it
    /// may have gone out just before the crash: the one window for a duplicate).
    pub stale_sending_ms: u64,
    /// Bound on one SMTP send (connect, MAIL … DATA, the server's final reply). A send that
    /// takes longer counts as failed and is retried; must be below `stale_sending_ms`, or
    /// another mailer could take over a row that is still being sent.
    pub send_timeout_ms: u64,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            dir: ".draftr-data/mail".into(),
            from: "Draftr <bookings@draftr.test>".into(),
            max_attempts: 12,
            backoff_ms: 1_000,
            max_backoff_ms: 60_000,
            poll_ms: 200,
            stale_sending_ms: 120_000,
            send_timeout_ms: 30_000,
        }
    }
}

/// The web app's dev server (vite, 5173) and preview (4173) on this machine; the router's CORS
/// default is the same pattern.
pub const DEFAULT_ALLOWED_ORIGINS: &str = r"^http://(localhost|127\.0\.0\.1):(5173|4173)$";

impl Default for NotificationsSettings {
    fn default() -> Self {
        Self {
            subgraph: SubgraphSettings::default(),
            auth_url: "http://127.0.0.1:4001/".to_owned(),
            calls: CallPolicy::default(),
            mail: MailSettings::default(),
            allowed_origins: DEFAULT_ALLOWED_ORIGINS.to_owned(),
            reclaim_idle_ms: 30_000,
        }
    }
}

impl Subgraph for NotificationsSettings {
    const NAME: &'static str = "notifications";
    const PORT: u16 = 4005;
}
