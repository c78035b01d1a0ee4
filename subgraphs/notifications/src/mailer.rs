//! Sending the stored emails: SMTP through lettre (or `.eml` files for the embedded default),
//! retries with exponential backoff, and a status on every row that tells the story.
//!
//! Each email's `Message-ID` is derived from its row id, itself derived from the event, so the
//! same notification always carries the same id. A row is claimed (PENDING/RETRYING →
//! SENDING, one conditional update) before it is sent, so two mailers never send the same row;
//! a row left SENDING by a mailer that died is retried after `stale_sending_ms`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use lettre::message::{Mailbox, MultiPart, header};
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;

use draftr_common::metrics::NotificationMetrics;

use crate::config::MailSettings;
use crate::domain::EmailStatus;
use crate::smtp::{SmtpSender, SmtpTarget};
use crate::store::{notifications, queries};

pub enum Transport {
    Smtp(Box<SmtpSender>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    pub fn from_settings(mail: &MailSettings) -> anyhow::Result<Self> {
        match &mail.smtp_url {
            Some(url) => {
                anyhow::ensure!(
                    mail.send_timeout_ms > 0 && mail.send_timeout_ms < mail.stale_sending_ms,
                    "mail.send_timeout_ms ({}) must be above 0 and below mail.stale_sending_ms ({})",
                    mail.send_timeout_ms,
                    mail.stale_sending_ms
                );
                Ok(Transport::Smtp(Box::new(SmtpSender::new(
                    SmtpTarget::from_url(url.expose_secret())?,
                    Duration::from_millis(mail.send_timeout_ms),
                ))))
            }
            None => {
                std::fs::create_dir_all(&mail.dir)?;
                Ok(Transport::Files(AsyncFileTransport::new(&mail.dir)))
            }
        }
    }

    /// Ends an open SMTP session (QUIT) when the mailer stops.
    async fn close(&self) {
        if let Transport::Smtp(t) = self {
            t.close().await;
        }
    }

    async fn send(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Transport::Smtp(t) => {
                t.send(message.envelope(), &message.formatted()).await?;
            }
            Transport::Files(t) => {
                t.send(message).await?;
            }
        }
        Ok(())
    }
}

pub struct Mailer {
    db: DatabaseConnection,
    transport: Transport,
    settings: MailSettings,
    /// `draftr_email_sends_total`.
    metrics: NotificationMetrics,
}

/// `<row id@notifications.draftr>`: the same for every attempt at the same email, so a resend
/// (after a crash mid-send) is recognisably the same message.
pub fn message_id(row: &notifications::Model) -> String {
    format!("<{}@notifications.draftr>", row.id)
}

impl Mailer {
    pub fn new(
        db: DatabaseConnection,
        transport: Transport,
        settings: MailSettings,
        metrics: NotificationMetrics,
    ) -> Self {
        Self {
            db,
            transport,
            settings,
            metrics,
        }
    }

    fn compose(&self, row: &notifications::Model) -> anyhow::Result<Message> {
        let from: Mailbox = self.settings.from.parse()?;
        let to: Mailbox = row.recipient.parse()?;
        Ok(Message::builder()
            .from(from)
            .to(to)
            .subject(row.subject.clone())
            .message_id(Some(message_id(row)))
            .header(header::Date::now())
            .multipart(MultiPart::alternative_plain_html(
                row.body_text.clone(),
                row.body_html.clone(),
            ))?)
    }

    fn backoff(&self, attempts: i32) -> chrono::Duration {
        let ms = self
            .settings
            .backoff_ms
            .saturating_mul(1u64 << attempts.clamp(0, 20))
            .min(self.settings.max_backoff_ms);
        chrono::Duration::milliseconds(ms as i64)
    }

    /// Sends what is due; returns how many emails went out. `stopping` is checked before each
    /// email, so a shutdown waits for the one send in flight and records it: a stop (SIGTERM)
    /// never leaves a row SENDING, which is the only state that can be sent twice.
    pub async fn send_due(&self, stopping: impl Fn() -> bool) -> anyhow::Result<usize> {
        let now = Utc::now();
        // Rows a dead mailer left SENDING go back in the queue.
        queries::requeue_abandoned(
            &self.db,
            now - chrono::Duration::milliseconds(self.settings.stale_sending_ms as i64),
        )
        .await?;
        let due = queries::due(&self.db, now, 50).await?;
        let mut sent = 0;
        for row in due {
            if stopping() {
                break;
            }
            if !queries::claim(&self.db, &row).await? {
                continue;
            }
            // A message that cannot even be built (an address that does not parse) will not
            // build on the next attempt either.
            let (result, permanent) = match self.compose(&row) {
                Ok(message) => {
                    let result = self.transport.send(message).await;
                    let permanent = result.as_ref().is_err_and(recipient_refused);
                    (result, permanent)
                }
                Err(e) => (Err(e), true),
            };
            match result {
                Ok(()) => {
                    queries::mark_sent(&self.db, row.id).await?;
                    self.metrics.email_send("sent");
                    tracing::info!(notification.id = %row.id, notification.kind = %row.kind, "email sent");
                    sent += 1;
                }
                Err(e) => {
                    let attempts = row.attempts + 1;
                    let give_up = permanent || attempts >= self.settings.max_attempts;
                    let status = if give_up {
                        EmailStatus::Failed
                    } else {
                        EmailStatus::Retrying
                    };
                    let next = Utc::now() + self.backoff(attempts - 1);
                    queries::mark_unsent(&self.db, row.id, status, next, &e.to_string()).await?;
                    self.metrics
                        .email_send(if give_up { "failed" } else { "retrying" });
                    tracing::warn!(notification.id = %row.id, attempts, error = %e, give_up, "email not sent");
                }
            }
        }
        Ok(sent)
    }
}

/// Whether the SMTP server refused the recipient for good: 550 (mailbox unavailable), 551 (user
/// not local) or 553 (mailbox name not allowed). Retrying cannot change that answer, so the
/// email is FAILED at once instead of twelve times over half an hour. Other permanent (5xx)
/// answers, such as 530 (authentication required) or 554, usually mean the relay is
/// misconfigured, which an operator can fix: those are retried like any failure.
fn recipient_refused(e: &anyhow::Error) -> bool {
    e.downcast_ref::<lettre::transport::smtp::Error>()
        .and_then(|e| e.status())
        .is_some_and(|code| matches!(u16::from(code), 550 | 551 | 553))
}

/// Sends due emails every `poll` until `stop`. A stop that arrives during a pass lets the
/// email in flight finish and be recorded, then returns.
pub async fn run(mailer: std::sync::Arc<Mailer>, stop: impl Future<Output = ()>) {
    let poll = Duration::from_millis(mailer.settings.poll_ms.max(20));
    tokio::pin!(stop);
    loop {
        let stopping = AtomicBool::new(false);
        let pass = mailer.send_due(|| stopping.load(Ordering::Relaxed));
        tokio::pin!(pass);
        let (result, stopped) = tokio::select! {
            r = &mut pass => (r, false),
            _ = &mut stop => {
                stopping.store(true, Ordering::Relaxed);
                ((&mut pass).await, true)
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = ?e, "mailer pass failed");
        }
        if stopped {
            break;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
    mailer.transport.close().await;
}
