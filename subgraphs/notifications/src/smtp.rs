//! One SMTP session for the mailer, on lettre's `AsyncSmtpConnection`, instead of lettre's
//! pooled `AsyncSmtpTransport`. Two things in lettre 0.11.23's transport made it unfit:
//!
//! - **Nagle.** lettre writes a message body and its `\r\n.\r\n` terminator as two writes on a
//!   socket without `TCP_NODELAY`, so the terminator waits for the server's delayed ACK: 40 ms
//!   on Linux, for every email (the live bench measured 22 emails/s). The fix is merged
//!   upstream (lettre PR #1159) but not released; here the socket is ours, with
//!   `TCP_NODELAY` set. (`smtps://` still connects through lettre, which owns that TLS
//!   handshake, so implicit TLS keeps the stall until lettre releases the fix.)
//! - **No timeout after connecting.** The transport's timeout covers only the connect; a
//!   server that stops answering mid-session hangs the send forever, and with it the mailer
//!   and its shutdown. Here every send (connect, NOOP, MAIL … DATA) is bounded by one timeout,
//!   and a connection whose send failed or timed out is dropped, never reused: a send cut
//!   short leaves unread replies behind that would answer the next command.
//!
//! The URL forms are lettre's (`from_url`): `smtp://host[:25]`,
//! `smtp://user:pass@host[:587]?tls=required|opportunistic`, `smtps://user:pass@host[:465]`,
//! and a path sets the EHLO name.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// How the session is encrypted (lettre's `Tls`, which is not `Clone`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text: local catchers only.
    None,
    /// STARTTLS if the server offers it.
    Opportunistic,
    /// STARTTLS, or no send at all.
    Required,
    /// TLS from the first byte (`smtps://`).
    Implicit,
}

/// Where and how to submit mail, parsed from the configured URL.
#[derive(Clone)]
pub struct SmtpTarget {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub hello: ClientId,
    credentials: Option<Credentials>,
}

impl std::fmt::Debug for SmtpTarget {
    // The password stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTarget")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl SmtpTarget {
    pub fn from_url(raw: &str) -> anyhow::Result<Self> {
        let url = url::Url::parse(raw).context("mail.smtp_url is not a URL")?;
        let host = url
            .host_str()
            .ok_or_else(|| anyhow!("mail.smtp_url has no host"))?
            .to_owned();
        let tls = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (Security::None, 25),
            ("smtp", Some("required")) => (Security::Required, 587),
            ("smtp", Some("opportunistic")) => (Security::Opportunistic, 587),
            ("smtps", _) => (Security::Implicit, 465),
            (scheme, tls) => bail!(
                "mail.smtp_url: unknown scheme {scheme:?} or tls={tls:?} (smtp://, smtps://, ?tls=required|opportunistic)"
            ),
        };
        let hello = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        let decode = |s: &str| -> anyhow::Result<String> {
            Ok(percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(Cow::into_owned)?)
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        Ok(Self {
            port: url.port().unwrap_or(default_port),
            host,
            security,
            hello,
            credentials,
        })
    }

    async fn connect(&self) -> anyhow::Result<AsyncSmtpConnection> {
        let mut conn = if self.security == Security::Implicit {
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                None,
                &self.hello,
                Some(TlsParameters::new(self.host.clone())?),
                None,
            )
            .await?
        } else {
            let stream = TcpStream::connect((self.host.as_str(), self.port)).await?;
            // The reason this module exists: see the module docs.
            stream.set_nodelay(true)?;
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await?
        };
        let starttls = match self.security {
            Security::Required if !conn.can_starttls() => {
                conn.abort().await;
                bail!("the SMTP server does not offer STARTTLS, and tls=required");
            }
            Security::Required => true,
            Security::Opportunistic => conn.can_starttls(),
            Security::None | Security::Implicit => false,
        };
        if starttls {
            conn.starttls(TlsParameters::new(self.host.clone())?, &self.hello)
                .await?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(conn)
    }
}

/// A connection idle this long is replaced rather than probed (lettre's pool uses 60 s too);
/// servers close idle sessions after a few minutes.
const IDLE: Duration = Duration::from_secs(60);

/// One reused SMTP connection. Sends are serialized, which the mailer wants anyway: it sends
/// one email at a time so that a crash can cut at most one send.
pub struct SmtpSender {
    target: SmtpTarget,
    timeout: Duration,
    conn: Mutex<Option<(AsyncSmtpConnection, Instant)>>,
}

impl SmtpSender {
    pub fn new(target: SmtpTarget, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            conn: Mutex::new(None),
        }
    }

    /// Sends one message. On success the connection is kept for the next send; on any failure
    /// (including the timeout) it is dropped.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> anyhow::Result<()> {
        let mut slot = self.conn.lock().await;
        let kept = slot.take();
        let attempt = async {
            let mut conn = match kept {
                Some((mut conn, last)) => {
                    if last.elapsed() < IDLE && conn.test_connected().await {
                        conn
                    } else {
                        conn.abort().await;
                        self.target.connect().await?
                    }
                }
                None => self.target.connect().await?,
            };
            conn.send(envelope, message).await?;
            anyhow::Ok(conn)
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(conn)) => {
                *slot = Some((conn, Instant::now()));
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(anyhow!(
                "the SMTP server did not finish the send within {} ms",
                self.timeout.as_millis()
            )),
        }
    }

    /// Ends the session politely (QUIT), e.g. at shutdown.
    pub async fn close(&self) {
        if let Some((mut conn, _)) = self.conn.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.quit()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_the_way_lettre_reads_them() {
        let t = SmtpTarget::from_url("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.security),
            ("127.0.0.1", 2525, Security::None)
        );
        assert!(t.credentials.is_none());

        let t = SmtpTarget::from_url("smtp://me%40x.test:p%2Fss@mail.x.test?tls=required").unwrap();
        assert_eq!((t.port, t.security), (587, Security::Required));
        assert!(t.credentials == Some(Credentials::new("me@x.test".into(), "p/ss".into())));

        let t = SmtpTarget::from_url("smtps://u:s3cret@mail.x.test/relay.draftr.test").unwrap();
        assert_eq!((t.port, t.security), (465, Security::Implicit));
        assert_eq!(t.hello, ClientId::Domain("relay.draftr.test".into()));
        assert!(!format!("{t:?}").contains("s3cret"), "no password in Debug");

        let t = SmtpTarget::from_url("smtp://h?tls=opportunistic").unwrap();
        assert_eq!(t.security, Security::Opportunistic);

        for bad in [
            "http://h",
            "smtp://h?tls=sometimes",
            "smtp:///nohost",
            "nonsense",
        ] {
            assert!(SmtpTarget::from_url(bad).is_err(), "{bad} must be refused");
        }
    }
}
