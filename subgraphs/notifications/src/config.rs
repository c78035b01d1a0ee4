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
    /// The subscription socket's limits and timers (`DRAFTR_NOTIFICATIONS__SOCKET__…`).
    pub socket: SocketSettings,
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

/// What one subscription socket (`GET /ws`) may hold and how long it may stay quiet. Each
/// exists against a client that would otherwise hold server resources for nothing; see
/// `crate::socket` for how they are enforced and which close code each one ends with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SocketSettings {
    /// How long a client may take from the upgrade to `connection_init` before the socket is
    /// closed with 4408 (graphql-ws clients give up on their side after 3 s by default).
    pub init_timeout_ms: u64,
    /// Open sockets one user may have on **one replica** (counted per process, not across
    /// replicas); the one over it is closed with 4403. Browser tabs each open one.
    pub max_connections_per_user: usize,
    /// Subscriptions active at once on one socket; a `subscribe` over it gets an `error`
    /// message (`RATE_LIMITED`) for that id and the socket stays open.
    pub max_subscriptions_per_connection: usize,
    /// How often the server sends a keepalive `ping` (graphql-transport-ws) or `ka` plus a
    /// WebSocket ping frame (the legacy graphql-ws protocol).
    pub ping_interval_ms: u64,
    /// A socket from which nothing at all (no pong, no message, no frame) has arrived for this
    /// long is closed with 3008; also the bound on sending one message to a client that has
    /// stopped reading. About three ping intervals.
    pub idle_timeout_ms: u64,
    /// How often the token given at `connection_init` is verified again, so that a `logout`
    /// (a revoked session, seen through Redis by every replica) closes the socket with 4403
    /// within this long. Its expiry closes it at `exp`, without waiting for a check.
    pub session_check_ms: u64,
}

impl Default for SocketSettings {
    fn default() -> Self {
        Self {
            init_timeout_ms: 5_000,
            max_connections_per_user: 8,
            max_subscriptions_per_connection: 16,
            ping_interval_ms: 15_000,
            idle_timeout_ms: 45_000,
            session_check_ms: 2_000,
        }
    }
}

impl SocketSettings {
    /// Refuses settings that would disable a protection by accident (a zero interval, a cap
    /// of nothing), so a typo stops the part from starting instead of opening it up.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, value) in [
            ("init_timeout_ms", self.init_timeout_ms),
            ("ping_interval_ms", self.ping_interval_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("session_check_ms", self.session_check_ms),
            (
                "max_connections_per_user",
                self.max_connections_per_user as u64,
            ),
            (
                "max_subscriptions_per_connection",
                self.max_subscriptions_per_connection as u64,
            ),
        ] {
            anyhow::ensure!(value > 0, "notifications.socket.{name} must be above 0");
        }
        anyhow::ensure!(
            self.idle_timeout_ms > self.ping_interval_ms,
            "notifications.socket.idle_timeout_ms must be longer than ping_interval_ms, or a \
             client that answers every ping is still closed"
        );
        Ok(())
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
            socket: SocketSettings::default(),
            reclaim_idle_ms: 30_000,
        }
    }
}

impl Subgraph for NotificationsSettings {
    const NAME: &'static str = "notifications";
    const PORT: u16 = 4005;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The socket settings are read from `DRAFTR_NOTIFICATIONS__SOCKET__…`, keep their
    /// defaults otherwise, and a zero cap is refused.
    #[test]
    fn socket_settings_come_from_the_environment_and_zero_is_refused() {
        let env = [
            (
                "DRAFTR_NOTIFICATIONS__SOCKET__MAX_CONNECTIONS_PER_USER",
                "3",
            ),
            ("DRAFTR_NOTIFICATIONS__SOCKET__PING_INTERVAL_MS", "500"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let s: NotificationsSettings =
            draftr_common::config::load_with_env("notifications", None, Some(env)).unwrap();
        assert_eq!(s.socket.max_connections_per_user, 3);
        assert_eq!(s.socket.ping_interval_ms, 500);
        assert_eq!(s.socket.max_subscriptions_per_connection, 16);
        assert_eq!(s.socket.init_timeout_ms, 5_000);
        s.socket.validate().unwrap();
        SocketSettings::default().validate().unwrap();

        let zero = SocketSettings {
            max_subscriptions_per_connection: 0,
            ..SocketSettings::default()
        };
        assert!(zero.validate().is_err());
    }
}
