//! The calendar-import conflict event: the contract between reservations (which writes it to
//! its outbox when a sync of an imported feed finds events it could not block because their
//! nights are booked) and notifications (which emails the property's host).
//!
//! It travels on the reservation topic ([`super::reservation::TOPIC`]) like the block events;
//! its kind (`calendar.import_conflict`) is neither a reservation nor a block kind, so those
//! readers skip it. One event per sync that found conflicts not reported before, listing only
//! those new ones: a feed that keeps the same conflicting event is reported once. The payload
//! has the nights and the import's name, nothing from the booking.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Event;
use super::reservation::{ContractError, read_contract};

/// The one kind of this contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImportConflictKind {
    #[serde(rename = "calendar.import_conflict")]
    Conflict,
}

impl ImportConflictKind {
    pub fn as_str(self) -> &'static str {
        "calendar.import_conflict"
    }

    pub fn parse(s: &str) -> Option<Self> {
        (s == Self::Conflict.as_str()).then_some(Self::Conflict)
    }
}

/// Nights `[from, to)` of a feed event that overlap a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConflictNights {
    pub from: NaiveDate,
    /// Exclusive.
    pub to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarImportConflictEvent {
    /// [`CalendarImportConflictEvent::VERSION`] of the writer.
    pub version: u32,
    pub event_id: Uuid,
    pub kind: ImportConflictKind,
    pub occurred_at: DateTime<Utc>,
    pub import_id: Uuid,
    pub property_id: Uuid,
    /// Who is told: the property's host.
    pub host_id: Uuid,
    /// The host's name for the import, if any.
    pub import_name: Option<String>,
    /// The conflicts not reported before (at least one).
    pub conflicts: Vec<ConflictNights>,
}

impl CalendarImportConflictEvent {
    pub const VERSION: u32 = 1;

    pub fn to_event(&self) -> Event {
        super::reservation::envelope(self.event_id, self.kind.as_str(), self, self.occurred_at)
    }

    /// `Ok(None)` for another kind; `Err` for an event of this kind that breaks the contract.
    pub fn from_event(event: &Event) -> Result<Option<Self>, ContractError> {
        read_contract(
            event,
            ImportConflictKind::parse,
            None,
            Self::VERSION,
            |e: &Self| e.kind,
            ImportConflictKind::as_str,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::calendar::CalendarBlockEvent;
    use crate::events::reservation::ReservationEvent;

    #[test]
    fn what_the_writer_sends_the_reader_reads_and_others_skip() {
        let e = CalendarImportConflictEvent {
            version: CalendarImportConflictEvent::VERSION,
            event_id: Uuid::now_v7(),
            kind: ImportConflictKind::Conflict,
            occurred_at: Utc::now(),
            import_id: Uuid::now_v7(),
            property_id: Uuid::now_v7(),
            host_id: Uuid::now_v7(),
            import_name: Some("Airbnb".into()),
            conflicts: vec![ConflictNights {
                from: "2027-03-01".parse().unwrap(),
                to: "2027-03-04".parse().unwrap(),
            }],
        };
        let envelope = e.to_event();
        assert_eq!(envelope.kind, "calendar.import_conflict");
        assert_eq!(
            CalendarImportConflictEvent::from_event(&envelope).unwrap(),
            Some(e)
        );
        assert_eq!(ReservationEvent::from_event(&envelope).unwrap(), None);
        assert_eq!(CalendarBlockEvent::from_event(&envelope).unwrap(), None);
        let mut broken = envelope.clone();
        broken.payload.as_object_mut().unwrap().remove("hostId");
        assert!(CalendarImportConflictEvent::from_event(&broken).is_err());
    }
}
