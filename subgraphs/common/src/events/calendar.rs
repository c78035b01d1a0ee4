//! The calendar-block events: the contract between reservations (which writes them to its
//! outbox in the transaction that adds or removes a block) and catalog's availability
//! projection (which treats blocked nights as taken in date search).
//!
//! They travel on the reservation topic ([`super::reservation::TOPIC`]), so the outbox relay
//! and the consumer groups need nothing new and events of one property stay in one order.
//! Their kinds (`calendar.blocked`, `calendar.unblocked`) are not reservation kinds, so
//! [`super::reservation::ReservationEvent::from_event`] skips them: notifications, which read
//! only reservation events, ignore blocks. The payload says which nights, never why (the
//! host's note stays in reservations).
//!
//! Versioned like the reservation events: a reader refuses a version it does not know or a
//! payload that does not parse ([`ContractError`]), and skips a kind it does not define.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Event;
use super::reservation::{ContractError, read_contract};

/// What happened to the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CalendarEventKind {
    /// The host took `[from, to)` off sale.
    #[serde(rename = "calendar.blocked")]
    Blocked,
    /// The block was removed: its nights are free again.
    #[serde(rename = "calendar.unblocked")]
    Unblocked,
}

impl CalendarEventKind {
    pub const ALL: [Self; 2] = [Self::Blocked, Self::Unblocked];

    /// The name on the stream and in the outbox.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "calendar.blocked",
            Self::Unblocked => "calendar.unblocked",
        }
    }

    /// `None` for a kind this contract does not define.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One calendar-block event. Every field is required unless it is an `Option`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarBlockEvent {
    /// [`CalendarBlockEvent::VERSION`] of the writer.
    pub version: u32,
    pub event_id: Uuid,
    pub kind: CalendarEventKind,
    pub occurred_at: DateTime<Utc>,
    /// The block's id (a UUIDv7, never reused; also the id `CalendarBlock.id` shows).
    pub block_id: Uuid,
    pub property_id: Uuid,
    pub host_id: Uuid,
    /// The first blocked night.
    pub from: NaiveDate,
    /// The day after the last blocked night (exclusive, like a check-out).
    pub to: NaiveDate,
    /// Where the block came from: `MANUAL`, or an import's name.
    pub source: String,
}

impl CalendarBlockEvent {
    /// The version this build writes and reads.
    pub const VERSION: u32 = 1;

    /// The bus envelope for this event.
    pub fn to_event(&self) -> Event {
        super::reservation::envelope(self.event_id, self.kind.as_str(), self, self.occurred_at)
    }

    /// Reads a bus event. `Ok(None)`: not a calendar kind (a reservation event, or a kind
    /// this build does not define). `Err`: the event claims a calendar kind but breaks the
    /// contract.
    pub fn from_event(event: &Event) -> Result<Option<Self>, ContractError> {
        read_contract(
            event,
            CalendarEventKind::parse,
            None,
            Self::VERSION,
            |e: &Self| e.kind,
            CalendarEventKind::as_str,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::reservation::ReservationEvent;

    fn sample() -> CalendarBlockEvent {
        CalendarBlockEvent {
            version: CalendarBlockEvent::VERSION,
            event_id: Uuid::now_v7(),
            kind: CalendarEventKind::Blocked,
            occurred_at: Utc::now(),
            block_id: Uuid::now_v7(),
            property_id: Uuid::now_v7(),
            host_id: Uuid::now_v7(),
            from: "2027-03-01".parse().unwrap(),
            to: "2027-03-04".parse().unwrap(),
            source: "MANUAL".into(),
        }
    }

    #[test]
    fn what_the_writer_sends_the_reader_reads_and_reservation_readers_skip() {
        let e = sample();
        let envelope = e.to_event();
        assert_eq!(envelope.topic, crate::events::reservation::TOPIC);
        assert_eq!(envelope.kind, "calendar.blocked");
        assert_eq!(envelope.payload["from"], "2027-03-01");
        assert_eq!(envelope.payload["to"], "2027-03-04");
        assert!(envelope.payload.get("note").is_none(), "never why");
        assert_eq!(CalendarBlockEvent::from_event(&envelope).unwrap(), Some(e));
        // Notifications read reservation events only: a block is not one of them.
        assert_eq!(ReservationEvent::from_event(&envelope).unwrap(), None);
        // And a reservation event is not a calendar event.
        let booking = crate::testing::reservation_event(
            crate::events::reservation::ReservationEventKind::Confirmed,
        )
        .to_event();
        assert_eq!(CalendarBlockEvent::from_event(&booking).unwrap(), None);
    }

    #[test]
    fn breaches_of_the_contract_are_refused() {
        let mut envelope = sample().to_event();
        envelope.payload.as_object_mut().unwrap().remove("to");
        assert!(matches!(
            CalendarBlockEvent::from_event(&envelope),
            Err(ContractError::Malformed { .. })
        ));
        let mut envelope = sample().to_event();
        envelope.payload["version"] = 2.into();
        assert!(matches!(
            CalendarBlockEvent::from_event(&envelope),
            Err(ContractError::UnknownVersion { found: 2, .. })
        ));
        let mut envelope = sample().to_event();
        envelope.kind = "calendar.unblocked".into();
        assert!(matches!(
            CalendarBlockEvent::from_event(&envelope),
            Err(ContractError::KindMismatch { .. })
        ));
        let mut other = sample().to_event();
        other.topic = "payments".into();
        assert!(CalendarBlockEvent::from_event(&other).is_err());
    }
}
