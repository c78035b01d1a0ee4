//! The GraphQL side of iCal feeds (`crate::service::ical`): `CalendarImport` and its input.

use async_graphql::{Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use draftr_common::ApiResult;

use super::Date;
use crate::service::ical::{Import, STATUS_CONFLICTS, STATUS_ERROR, STATUS_OK, STATUS_PENDING};

/// How an import's last sync went.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarImportStatus {
    /// Not synced yet.
    Pending,
    /// The feed's events are blocks.
    Ok,
    /// Synced, but some events overlap bookings (or other blocks) and were not blocked: see
    /// `conflicts`. The bookings are untouched.
    Conflicts,
    /// The last fetch failed or the body was not a calendar (`lastError`); the blocks of the
    /// sync before are kept.
    Error,
}

impl CalendarImportStatus {
    fn parse(s: &str) -> Result<Self, crate::error::Error> {
        Ok(match s {
            STATUS_PENDING => Self::Pending,
            STATUS_OK => Self::Ok,
            STATUS_CONFLICTS => Self::Conflicts,
            STATUS_ERROR => Self::Error,
            other => {
                return Err(crate::error::Error::Internal(anyhow::anyhow!(
                    "unknown calendar import status {other:?}"
                )));
            }
        })
    }
}

/// A feed event that was not blocked because its nights are taken.
#[derive(SimpleObject, Clone, Debug)]
pub struct CalendarImportConflict {
    /// The event's UID in the feed.
    pub uid: String,
    pub from: Date,
    /// Exclusive.
    pub to: Date,
    /// The event's SUMMARY, if it has one.
    pub summary: Option<String>,
}

/// An iCal feed whose events block the property's nights (host and admins only).
pub struct CalendarImport(pub Import);

#[Object]
impl CalendarImport {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn status(&self) -> ApiResult<CalendarImportStatus> {
        Ok(CalendarImportStatus::parse(&self.0.status)?)
    }
    /// When the feed was last read and applied.
    async fn last_synced_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_synced_at
    }
    /// Why the last sync failed (status `ERROR`).
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// The events of the last sync that overlap taken nights.
    async fn conflicts(&self) -> Vec<CalendarImportConflict> {
        self.0
            .conflict_list()
            .into_iter()
            .map(|c| CalendarImportConflict {
                uid: c.uid,
                from: Date(c.from),
                to: Date(c.to),
                summary: c.summary,
            })
            .collect()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject)]
pub struct AddCalendarImportInput {
    pub property_id: ID,
    /// The feed's `http(s)://` (or `webcal://`) URL; it must reach a public address.
    pub url: String,
    /// The host's name for it (e.g. "Airbnb"); at most 100 characters.
    pub name: Option<String>,
}
