//! The reservation events: the one contract between the writer (reservations' outbox) and
//! every reader (catalog's availability projection, notifications' emails and live updates).
//!
//! Both sides use these types, so a field cannot be renamed on one side only. The payload
//! carries a `version`; a reader refuses a version it does not know, or a payload that does not
//! parse, with [`ContractError`], and the consume loop then leaves the event pending (with the
//! reason logged) instead of acting on guessed defaults. Kinds a reader has no use for are
//! skipped by the reader, not refused, so a new kind can be published before every reader
//! handles it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Event;

/// The stream reservation events travel on.
pub const TOPIC: &str = "reservations";

/// What happened to the reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReservationEventKind {
    /// PENDING → CONFIRMED: the stay is booked and paid for.
    #[serde(rename = "reservation.confirmed")]
    Confirmed,
    /// CONFIRMED → CANCELLED: the dates are free again; `refund` says what is given back.
    #[serde(rename = "reservation.cancelled")]
    Cancelled,
    /// PENDING → FAILED: the booking did not happen; the dates are free again.
    #[serde(rename = "reservation.failed")]
    Failed,
    /// A CONFIRMED stay's dates or guests changed (`changeReservation`); it stays CONFIRMED.
    /// `change` says what it was before and what money moved; `refund` is what the change
    /// gives back (a lower total), if anything.
    #[serde(rename = "reservation.changed")]
    Changed,
}

impl ReservationEventKind {
    pub const ALL: [Self; 4] = [
        Self::Confirmed,
        Self::Cancelled,
        Self::Failed,
        Self::Changed,
    ];

    /// The name on the stream and in the outbox (`reservation.confirmed`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "reservation.confirmed",
            Self::Cancelled => "reservation.cancelled",
            Self::Failed => "reservation.failed",
            Self::Changed => "reservation.changed",
        }
    }

    /// `None` for a kind this contract does not define (a newer writer's).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The reservation's status after the change, as reservations stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationState {
    Pending,
    Confirmed,
    Cancelled,
    Failed,
}

impl ReservationState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
            Self::Failed => "FAILED",
        }
    }
}

/// An amount in minor units (cents) with its ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub amount: i64,
    pub currency: String,
}

/// One reservation event. Every field is required unless it is an `Option`: a payload without
/// a total is refused, never read as zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationEvent {
    /// The contract version the writer used ([`ReservationEvent::VERSION`]). Payloads written
    /// before the field existed have exactly version 1's fields, so a missing version is 1.
    #[serde(default = "first_version")]
    pub version: u32,
    pub event_id: Uuid,
    pub kind: ReservationEventKind,
    pub occurred_at: DateTime<Utc>,
    pub reservation_id: Uuid,
    pub property_id: Uuid,
    /// The title when it was booked (the listing may be renamed later).
    pub property_title: String,
    pub guest_id: Uuid,
    pub host_id: Uuid,
    pub check_in: NaiveDate,
    pub check_out: NaiveDate,
    pub nights: i32,
    pub total: Amount,
    /// What a cancellation (or a change that lowered the total) refunds; `None` otherwise.
    pub refund: Option<Amount>,
    pub status: ReservationState,
    /// Why a booking failed (`PAYMENT_DECLINED`, `HOLD_EXPIRED`, …); `None` otherwise.
    pub failure_code: Option<String>,
    /// For `reservation.changed` only: the stay before the change. Absent from every other
    /// kind (so readers of those, which refuse unknown fields, are unaffected: they skip the
    /// kind before reading the payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<StayChange>,
}

/// What a `reservation.changed` event adds: the stay as it was, the guest count now and then
/// (the other fields of the event are the stay as it is now), and what was charged on top.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StayChange {
    /// The change's id (also the key of its extra charge, if any).
    pub change_id: Uuid,
    pub previous_check_in: NaiveDate,
    pub previous_check_out: NaiveDate,
    pub previous_guests: i32,
    pub guests: i32,
    pub previous_total: Amount,
    /// Charged on top of what was paid (a higher total); `None` when nothing was.
    pub charged: Option<Amount>,
}

fn first_version() -> u32 {
    1
}

/// Why an event could not be read as a [`ReservationEvent`].
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("event {id} on topic {topic:?} is not a reservation event")]
    WrongTopic { id: Uuid, topic: String },
    #[error("event {id} has contract version {found}; this reader knows version {known}")]
    UnknownVersion { id: Uuid, found: u64, known: u32 },
    #[error("event {id} ({kind}) does not match the reservation-event contract: {source}")]
    Malformed {
        id: Uuid,
        kind: String,
        source: serde_json::Error,
    },
    #[error("event {id} says kind {envelope:?} outside and {payload:?} inside")]
    KindMismatch {
        id: Uuid,
        envelope: String,
        payload: &'static str,
    },
}

/// The bus envelope of a contract's payload on this topic: what every contract's `to_event`
/// writes (the reading side is [`read_contract`]).
pub(crate) fn envelope<T: Serialize>(
    id: Uuid,
    kind: &str,
    payload: &T,
    occurred_at: DateTime<Utc>,
) -> Event {
    Event {
        id,
        topic: TOPIC.to_owned(),
        kind: kind.to_owned(),
        payload: serde_json::to_value(payload).expect("an event contract serializes to JSON"),
        occurred_at,
    }
}

/// What every contract on this topic checks when it reads an event: the topic; a kind this
/// build defines (`parse`; `Ok(None)` for another, which readers skip); the version (`missing`
/// stands for payloads written before versions were recorded); the payload's shape; and the
/// payload's own kind agreeing with the envelope's.
pub(crate) fn read_contract<T, K>(
    event: &Event,
    parse: fn(&str) -> Option<K>,
    missing: Option<u32>,
    known: u32,
    kind_of: fn(&T) -> K,
    name: fn(K) -> &'static str,
) -> Result<Option<T>, ContractError>
where
    T: serde::de::DeserializeOwned,
    K: Copy + PartialEq,
{
    if event.topic != TOPIC {
        return Err(ContractError::WrongTopic {
            id: event.id,
            topic: event.topic.clone(),
        });
    }
    let Some(kind) = parse(&event.kind) else {
        return Ok(None);
    };
    let version = match (event.payload.get("version"), missing) {
        (None, Some(first)) => u64::from(first),
        (v, _) => v.and_then(|v| v.as_u64()).unwrap_or(0),
    };
    if version != u64::from(known) {
        return Err(ContractError::UnknownVersion {
            id: event.id,
            found: version,
            known,
        });
    }
    let parsed: T = serde_json::from_value(event.payload.clone()).map_err(|source| {
        ContractError::Malformed {
            id: event.id,
            kind: event.kind.clone(),
            source,
        }
    })?;
    if kind_of(&parsed) != kind {
        return Err(ContractError::KindMismatch {
            id: event.id,
            envelope: event.kind.clone(),
            payload: name(kind_of(&parsed)),
        });
    }
    Ok(Some(parsed))
}

impl ReservationEvent {
    /// The version this build writes and reads. Bump it (and teach readers the old one) when a
    /// field changes meaning or a required field is added.
    pub const VERSION: u32 = 1;

    /// The bus envelope for this event.
    pub fn to_event(&self) -> Event {
        envelope(self.event_id, self.kind.as_str(), self, self.occurred_at)
    }

    /// Reads a bus event. `Ok(None)`: a reservation event of a kind this build does not define,
    /// which readers skip. `Err`: the event claims to be one this contract defines but is not.
    pub fn from_event(event: &Event) -> Result<Option<Self>, ContractError> {
        read_contract(
            event,
            ReservationEventKind::parse,
            Some(first_version()),
            Self::VERSION,
            |e: &Self| e.kind,
            ReservationEventKind::as_str,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReservationEvent {
        crate::testing::reservation_event(ReservationEventKind::Cancelled)
    }

    #[test]
    fn what_the_writer_sends_the_reader_reads() {
        let e = sample();
        let envelope = e.to_event();
        assert_eq!(envelope.kind, "reservation.cancelled");
        assert_eq!(envelope.payload["checkIn"], "2027-03-01");
        assert_eq!(envelope.payload["total"]["amount"], 30_000);
        assert_eq!(ReservationEvent::from_event(&envelope).unwrap(), Some(e));
    }

    #[test]
    fn a_missing_total_is_refused_not_read_as_zero() {
        let mut envelope = sample().to_event();
        envelope.payload.as_object_mut().unwrap().remove("total");
        let err = ReservationEvent::from_event(&envelope).unwrap_err();
        assert!(matches!(err, ContractError::Malformed { .. }), "{err}");
        assert!(err.to_string().contains("total"), "{err}");
    }

    #[test]
    fn unknown_versions_and_mismatched_kinds_are_refused() {
        let mut envelope = sample().to_event();
        envelope.payload["version"] = 2.into();
        assert!(matches!(
            ReservationEvent::from_event(&envelope),
            Err(ContractError::UnknownVersion { found: 2, .. })
        ));
        let mut envelope = sample().to_event();
        envelope.payload["version"] = "one".into();
        assert!(matches!(
            ReservationEvent::from_event(&envelope),
            Err(ContractError::UnknownVersion { found: 0, .. })
        ));
        // Written before the field existed: version 1's shape.
        let mut envelope = sample().to_event();
        envelope.payload.as_object_mut().unwrap().remove("version");
        assert!(ReservationEvent::from_event(&envelope).unwrap().is_some());
        let mut envelope = sample().to_event();
        envelope.kind = "reservation.confirmed".into();
        assert!(matches!(
            ReservationEvent::from_event(&envelope),
            Err(ContractError::KindMismatch { .. })
        ));
        let mut envelope = sample().to_event();
        envelope.payload["status"] = "SOMETHING".into();
        assert!(ReservationEvent::from_event(&envelope).is_err());
    }

    #[test]
    fn a_change_carries_the_stay_before_it_and_other_kinds_do_not() {
        let changed = crate::testing::reservation_event(ReservationEventKind::Changed);
        let envelope = changed.to_event();
        assert_eq!(envelope.kind, "reservation.changed");
        assert_eq!(envelope.payload["change"]["previousCheckIn"], "2027-02-28");
        assert_eq!(
            envelope.payload["change"]["charged"],
            serde_json::Value::Null
        );
        assert_eq!(
            ReservationEvent::from_event(&envelope).unwrap(),
            Some(changed)
        );
        assert!(sample().to_event().payload.get("change").is_none());
    }

    #[test]
    fn kinds_this_build_does_not_define_are_skipped() {
        let mut envelope = sample().to_event();
        envelope.kind = "reservation.renamed".into();
        assert_eq!(ReservationEvent::from_event(&envelope).unwrap(), None);
        let mut other = sample().to_event();
        other.topic = "payments".into();
        assert!(ReservationEvent::from_event(&other).is_err());
    }
}
