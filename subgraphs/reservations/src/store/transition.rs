//! Status changes. Each one is conditional on the state it leaves (so of a saga, the
//! reconciler and a retry racing to move the same row exactly one does), and commits together
//! with the outbox event announcing it (so nothing is announced that did not happen, and
//! nothing that happened goes unannounced).

use chrono::{DateTime, Utc};
use draftr_common::events::reservation::{
    Amount, ReservationEvent, ReservationEventKind, ReservationState, StayChange,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use super::{Reservation, lock_property, queries, reservations};
use crate::domain::{FailureCode, ReservationStatus};
use crate::error::Error;

/// A status change and what it records besides the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// PENDING → CONFIRMED with the authorized payment. A new version of an active row is
    /// checked against the exclusion constraint again, so it takes the property's turn like a
    /// hold does.
    Confirm { payment_id: Uuid, property_id: Uuid },
    /// PENDING → FAILED: the dates are free again. `compensate`: a payment may exist and must
    /// be voided (by the saga now, or the reconciler).
    Fail { code: FailureCode, compensate: bool },
    /// CONFIRMED → CANCELLED, refunding `refund` (always compensated). `at` is the moment the
    /// refund was computed for, recorded as the cancellation time.
    Cancel { refund: i64, at: DateTime<Utc> },
}

impl Change {
    fn from(self) -> ReservationStatus {
        match self {
            Self::Confirm { .. } | Self::Fail { .. } => ReservationStatus::Pending,
            Self::Cancel { .. } => ReservationStatus::Confirmed,
        }
    }

    fn to(self) -> ReservationStatus {
        match self {
            Self::Confirm { .. } => ReservationStatus::Confirmed,
            Self::Fail { .. } => ReservationStatus::Failed,
            Self::Cancel { .. } => ReservationStatus::Cancelled,
        }
    }

    fn event(self) -> ReservationEventKind {
        match self {
            Self::Confirm { .. } => ReservationEventKind::Confirmed,
            Self::Fail { .. } => ReservationEventKind::Failed,
            Self::Cancel { .. } => ReservationEventKind::Cancelled,
        }
    }
}

/// Applies `change` to reservation `id` if it is still in the state the change leaves, and
/// writes its event, in one transaction. `None`: the row was no longer in that state (someone
/// else moved it first), and nothing was written.
pub async fn transition(
    db: &DatabaseConnection,
    id: Uuid,
    change: Change,
) -> Result<Option<Reservation>, Error> {
    let txn = db.begin().await?;
    if let Change::Confirm { property_id, .. } = change {
        lock_property(&txn, property_id).await?;
    }
    let now = match change {
        Change::Cancel { at, .. } => at,
        _ => Utc::now(),
    };
    use reservations::Column;
    let update = reservations::Entity::update_many()
        .col_expr(Column::Status, Expr::value(change.to().as_str()))
        .col_expr(Column::UpdatedAt, Expr::value(now));
    let update = match change {
        Change::Confirm { payment_id, .. } => {
            update.col_expr(Column::PaymentId, Expr::value(payment_id))
        }
        Change::Fail { code, compensate } => update
            .col_expr(Column::FailureCode, Expr::value(code.as_str()))
            .col_expr(Column::CompensationPending, Expr::value(compensate)),
        Change::Cancel { refund, at } => update
            .col_expr(Column::CancelledAt, Expr::value(at))
            .col_expr(Column::RefundAmount, Expr::value(refund))
            .col_expr(Column::CompensationPending, Expr::value(true)),
    };
    let updated = update
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(change.from().as_str()))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    let row = queries::require(&txn, id).await?;
    write_event(&txn, change.event(), &row, now).await?;
    txn.commit().await?;
    Ok(Some(row))
}

/// The outbox row announcing `r`'s new state; the relay publishes it as is.
async fn write_event(
    txn: &impl ConnectionTrait,
    kind: ReservationEventKind,
    r: &Reservation,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let event = event_of(Uuid::now_v7(), kind, r, at)?;
    append(txn, &event).await
}

/// The `reservation.changed` row for an applied `change`; `r` is the stay as it now is.
pub(super) async fn write_change_event(
    txn: &impl ConnectionTrait,
    r: &Reservation,
    change: &super::changes::ChangeRow,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let event = change_event_of(Uuid::now_v7(), r, change, at)?;
    append(txn, &event).await
}

/// The event contract's view of an applied change.
fn change_event_of(
    event_id: Uuid,
    r: &Reservation,
    change: &super::changes::ChangeRow,
    at: DateTime<Utc>,
) -> Result<ReservationEvent, Error> {
    let amount = |amount| Amount {
        amount,
        currency: r.currency.clone(),
    };
    let difference = change.difference();
    Ok(ReservationEvent {
        refund: change.refund_amount.map(amount),
        change: Some(StayChange {
            change_id: change.id,
            previous_check_in: change.from_check_in,
            previous_check_out: change.from_check_out,
            previous_guests: change.from_guests,
            guests: change.to_guests,
            previous_total: amount(change.from_total),
            charged: (difference > 0).then(|| amount(difference)),
        }),
        ..event_of(event_id, ReservationEventKind::Changed, r, at)?
    })
}

async fn append(txn: &impl ConnectionTrait, event: &ReservationEvent) -> Result<(), Error> {
    let (kind, r_id, at) = (event.kind, event.reservation_id, event.occurred_at);
    let payload = serde_json::to_string(&event)
        .map_err(|e| Error::Internal(anyhow::Error::new(e).context("serializing an event")))?;
    super::append_to_outbox(txn, event.event_id, kind.as_str(), r_id, payload, at).await?;
    Ok(())
}

/// The event contract's view of a reservation row.
fn event_of(
    event_id: Uuid,
    kind: ReservationEventKind,
    r: &Reservation,
    at: DateTime<Utc>,
) -> Result<ReservationEvent, Error> {
    let amount = |amount| Amount {
        amount,
        currency: r.currency.clone(),
    };
    Ok(ReservationEvent {
        version: ReservationEvent::VERSION,
        event_id,
        kind,
        occurred_at: at,
        reservation_id: r.id,
        property_id: r.property_id,
        property_title: r.property_title.clone(),
        guest_id: r.guest_id,
        host_id: r.host_id,
        check_in: r.check_in,
        check_out: r.check_out,
        nights: r.nights,
        total: amount(r.total_amount),
        refund: r.refund_amount.map(amount),
        status: match ReservationStatus::parse(&r.status)? {
            ReservationStatus::Pending => ReservationState::Pending,
            ReservationStatus::Confirmed => ReservationState::Confirmed,
            ReservationStatus::Cancelled => ReservationState::Cancelled,
            ReservationStatus::Failed => ReservationState::Failed,
        },
        failure_code: r.failure_code.clone(),
        change: None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::testing::row;

    #[test]
    fn changes_leave_and_enter_the_states_their_events_name() {
        let confirm = Change::Confirm {
            payment_id: Uuid::nil(),
            property_id: Uuid::nil(),
        };
        let fail = Change::Fail {
            code: FailureCode::HoldExpired,
            compensate: false,
        };
        let cancel = Change::Cancel {
            refund: 0,
            at: Utc::now(),
        };
        use ReservationStatus::*;
        let seen: Vec<_> = [confirm, fail, cancel]
            .into_iter()
            .map(|c| (c.from(), c.to(), c.event().as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (Pending, Confirmed, "reservation.confirmed"),
                (Pending, Failed, "reservation.failed"),
                (Confirmed, Cancelled, "reservation.cancelled"),
            ]
        );
    }

    /// The payload has the fields the hand-written JSON before the shared contract had, with
    /// the same names and values, plus `version`.
    #[test]
    fn the_payload_is_the_contract_with_the_fields_readers_always_had() {
        let mut r = row();
        r.status = "CANCELLED".into();
        r.refund_amount = Some(15_000);
        let id = Uuid::now_v7();
        let at: DateTime<Utc> = "2027-02-01T10:00:00Z".parse().unwrap();
        let event = event_of(id, ReservationEventKind::Cancelled, &r, at).unwrap();
        let payload = serde_json::to_value(&event).unwrap();
        assert_eq!(
            payload,
            json!({
                "version": 1,
                "eventId": id,
                "kind": "reservation.cancelled",
                "occurredAt": at,
                "reservationId": r.id,
                "propertyId": r.property_id,
                "propertyTitle": "Loft",
                "guestId": r.guest_id,
                "hostId": r.host_id,
                "checkIn": "2027-03-01",
                "checkOut": "2027-03-04",
                "nights": 3,
                "total": { "amount": 30_000, "currency": "EUR" },
                "refund": { "amount": 15_000, "currency": "EUR" },
                "status": "CANCELLED",
                "failureCode": null,
            })
        );
        let envelope = event.to_event();
        assert_eq!(
            ReservationEvent::from_event(&envelope).unwrap(),
            Some(event)
        );

        r.status = "FAILED".into();
        r.refund_amount = None;
        r.failure_code = Some(FailureCode::PaymentDeclined.as_str().into());
        let failed = event_of(id, ReservationEventKind::Failed, &r, at).unwrap();
        let payload = serde_json::to_value(&failed).unwrap();
        assert_eq!(payload["refund"], json!(null));
        assert_eq!(payload["failureCode"], "PAYMENT_DECLINED");
        assert_eq!(payload["status"], "FAILED");

        r.status = "ON_HOLD".into();
        assert!(matches!(
            event_of(id, ReservationEventKind::Failed, &r, at),
            Err(Error::Internal(_))
        ));
    }
}
