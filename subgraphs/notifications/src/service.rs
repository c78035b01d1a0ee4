//! What notifications does with its table, independent of GraphQL: list a user's emails for
//! them, and store the emails an event calls for (once, however often the event arrives).

use chrono::{DateTime, Utc};
use draftr_common::Claims;
use sea_orm::{DatabaseConnection, Set};
use uuid::Uuid;

use crate::domain::{Email, notification_id};
pub use crate::domain::{EmailStatus, NotificationKind};
use crate::error::Error;
use crate::store::{notifications, queries};

/// An email as its recipient sees it listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: Uuid,
    pub kind: NotificationKind,
    pub subject: String,
    pub status: EmailStatus,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl TryFrom<notifications::Model> for Notification {
    type Error = Error;

    fn try_from(row: notifications::Model) -> Result<Self, Error> {
        Ok(Self {
            kind: row.kind()?,
            status: row.status()?,
            id: row.id,
            subject: row.subject,
            attempts: row.attempts,
            created_at: row.created_at,
            sent_at: row.sent_at,
        })
    }
}

/// One page of a user's notifications.
#[derive(Debug, Clone)]
pub struct NotificationPage {
    pub notifications: Vec<Notification>,
    /// Whether more follow this page.
    pub more: bool,
    /// How many the user has in all; 0 unless asked for (it costs a statement).
    pub total: u64,
}

pub struct NotificationService {
    db: DatabaseConnection,
}

impl NotificationService {
    pub(crate) fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Emails are private: a user sees their own, an admin anyone's.
    pub fn may_list(viewer: &Claims, user: Uuid) -> Result<(), Error> {
        if viewer.sub == user || viewer.is_admin() {
            Ok(())
        } else {
            Err(Error::NotYourNotifications)
        }
    }

    /// `user`'s notifications in descending id order, `limit` of them after `after`, counted
    /// in all when `with_total`. A stored kind or status this build does not know is an error.
    pub async fn notifications_of(
        &self,
        viewer: &Claims,
        user: Uuid,
        after: Option<Uuid>,
        limit: u64,
        with_total: bool,
    ) -> Result<NotificationPage, Error> {
        Self::may_list(viewer, user)?;
        let (rows, more) = queries::page_of_user(&self.db, user, after, limit).await?;
        let total = if with_total {
            queries::count_of_user(&self.db, user).await?
        } else {
            0
        };
        Ok(NotificationPage {
            notifications: rows
                .into_iter()
                .map(Notification::try_from)
                .collect::<Result<_, _>>()?,
            more,
            total,
        })
    }

    /// Stores `email` for `event` as PENDING, due at `now`, for the mailer to send to
    /// `recipient`; `false` if an earlier delivery of the event stored it already.
    pub(crate) async fn store_email(
        &self,
        event: Uuid,
        email: &Email,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let row = notifications::ActiveModel {
            id: Set(notification_id(event, email.kind, email.to)),
            event_id: Set(event),
            user_id: Set(email.to),
            kind: Set(email.kind.as_str().to_owned()),
            recipient: Set(recipient.to_owned()),
            // The column holds 200 characters.
            subject: Set(email.subject.chars().take(200).collect()),
            body_text: Set(email.text()),
            body_html: Set(email.html()),
            status: Set(EmailStatus::Pending.as_str().to_owned()),
            attempts: Set(0),
            last_error: Set(None),
            next_attempt_at: Set(now),
            created_at: Set(now),
            sent_at: Set(None),
        };
        Ok(queries::insert_new(&self.db, row).await?)
    }
}

#[cfg(test)]
mod tests {
    use draftr_common::Role;
    use draftr_common::testing::{Backend, TestDatabase};
    use sea_orm::ConnectionTrait;

    use super::*;

    fn claims(sub: Uuid, role: Role) -> Claims {
        Claims {
            sub,
            sid: Uuid::nil(),
            role,
            iss: String::new(),
            aud: String::new(),
            iat: 0,
            exp: 0,
            jti: Uuid::nil(),
        }
    }

    fn email(kind: NotificationKind, to: Uuid) -> Email {
        Email {
            kind,
            to,
            subject: "s".repeat(250),
            lines: vec!["Hello".into()],
        }
    }

    /// A redelivered event meets the primary key and stores nothing (on both backends, which
    /// name the key differently); pages read kinds and statuses back typed; a stored status
    /// this build does not know is refused, not shown.
    async fn emails_are_stored_once_and_listed_typed(backend: Backend) {
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();
        let service = NotificationService::new(db.clone());
        let (event, user) = (Uuid::now_v7(), Uuid::now_v7());
        let now = Utc::now();
        for kind in NotificationKind::ALL {
            let first = email(kind, user);
            assert!(
                service
                    .store_email(event, &first, "g@x.test", now)
                    .await
                    .unwrap()
            );
            assert!(
                !service
                    .store_email(event, &first, "g@x.test", now)
                    .await
                    .unwrap(),
                "a redelivery stores nothing"
            );
        }

        let me = claims(user, Role::Guest);
        // One email of every kind: a first page of 3, then the rest exactly.
        let page = service
            .notifications_of(&me, user, None, 3, true)
            .await
            .unwrap();
        let all = NotificationKind::ALL.len() as u64;
        assert_eq!(
            (page.notifications.len(), page.more, page.total),
            (3, true, all)
        );
        let n = &page.notifications[0];
        assert_eq!(
            (n.status, n.attempts, n.sent_at),
            (EmailStatus::Pending, 0, None)
        );
        assert_eq!(n.subject.chars().count(), 200, "cut to the column's size");
        let after = page.notifications[2].id;
        let rest = service
            .notifications_of(&me, user, Some(after), all - 3, false)
            .await
            .unwrap();
        assert_eq!(
            (rest.notifications.len() as u64, rest.more, rest.total),
            (all - 3, false, 0)
        );
        let mut kinds: Vec<_> = page
            .notifications
            .iter()
            .chain(&rest.notifications)
            .collect();
        assert!(
            kinds.windows(2).all(|w| w[0].id > w[1].id),
            "descending ids"
        );
        kinds.sort_by_key(|n| n.kind.as_str());
        kinds.dedup_by_key(|n| n.kind);
        assert_eq!(kinds.len() as u64, all, "one of each kind");

        let stranger = claims(Uuid::now_v7(), Role::Guest);
        assert!(matches!(
            service
                .notifications_of(&stranger, user, None, 3, false)
                .await,
            Err(Error::NotYourNotifications)
        ));
        let admin = claims(Uuid::now_v7(), Role::Admin);
        assert!(
            service
                .notifications_of(&admin, user, None, 3, false)
                .await
                .is_ok()
        );

        db.execute_unprepared("UPDATE notifications SET status = 'DELIVERED'")
            .await
            .unwrap();
        let err = service
            .notifications_of(&me, user, None, 3, false)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::UnknownStoredValue { column: "status", ref value, .. } if value == "DELIVERED"),
            "{err}"
        );
    }

    draftr_common::test_on_both_backends!(emails_are_stored_once_and_listed_typed);
}
