//! One row per email, keyed by (event, kind, user): see [`crate::domain::notification_id`].

use sea_orm::entity::prelude::*;

use crate::domain::{EmailStatus, NotificationKind};
use crate::error::Error;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub event_id: Uuid,
    pub user_id: Uuid,
    /// A [`NotificationKind`] name; read with [`Model::kind`].
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    pub body_html: String,
    /// An [`EmailStatus`] name; read with [`Model::status`].
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn kind(&self) -> Result<NotificationKind, Error> {
        NotificationKind::parse(&self.kind).ok_or_else(|| self.unknown("kind", &self.kind))
    }

    pub fn status(&self) -> Result<EmailStatus, Error> {
        EmailStatus::parse(&self.status).ok_or_else(|| self.unknown("status", &self.status))
    }

    fn unknown(&self, column: &'static str, value: &str) -> Error {
        Error::UnknownStoredValue {
            id: self.id,
            column,
            value: value.to_owned(),
        }
    }
}
