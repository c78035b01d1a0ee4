//! The reservations tables: every statement the service runs lives here, so the rules the
//! database enforces (no overlapping active stays, one reservation per idempotency key) and
//! the way the code relies on them can be read together.
//!
//! - reads, in [`queries`];
//! - inserting a PENDING hold, which the database refuses for taken dates, in [`hold`];
//! - the one way a status changes (conditionally, with its outbox event, in one
//!   transaction), in [`transition`];
//! - the payment flags (`captured`, `compensation_pending`) and deletion, which change no
//!   status and announce nothing, in [`bookkeeping`];
//! - reviews of stays (one per reservation, by the database's UNIQUE key), in [`reviews`];
//! - changes of confirmed stays (recorded, then applied to the stay in one transaction that
//!   the same constraints check), in [`changes`];
//! - host calendar blocks (never sharing a night with a live booking or another block, by the
//!   database), in [`blocks`].

pub mod blocks;
pub mod bookkeeping;
pub mod changes;
pub mod entities;
pub mod hold;
pub mod ical;
pub mod queries;
pub mod reviews;
pub mod transition;

use draftr_common::db::Constraint;
use sea_orm::{ConnectionTrait, DatabaseBackend, DbErr, Statement};
use uuid::Uuid;

pub use entities::{outbox, reservations};
pub use hold::{HoldError, insert_hold};
pub use queries::Scope;
pub use transition::{Change, transition};

pub use entities::reviews::Model as Review;
pub use reservations::Model as Reservation;

/// No two active reservations of one property overlap: an exclusion constraint on
/// PostgreSQL; on SQLite, triggers that abort with this name as their message.
pub const NO_OVERLAP: Constraint = Constraint {
    postgres: "reservations_no_overlap",
    sqlite: "reservations_no_overlap",
};

/// No night of a property is taken twice by live bookings and calendar blocks: on PostgreSQL
/// the exclusion constraint of `calendar_claims` (which triggers fill from both tables); on
/// SQLite, triggers that abort with this name. A booking over a booking still reports
/// [`NO_OVERLAP`] first.
pub const CALENDAR_NO_OVERLAP: Constraint = Constraint {
    postgres: "calendar_no_overlap",
    sqlite: "calendar_no_overlap",
};

/// One reservation per guest and idempotency key (a retried booking finds the first
/// attempt). SQLite names a unique constraint by its columns.
pub const IDEMPOTENCY_KEY: Constraint = Constraint {
    postgres: "reservations_idempotency_key",
    sqlite: "reservations.guest_id, reservations.idempotency_key",
};

/// One review per stay (`reviews.reservation_id`).
pub const REVIEW_ONCE: Constraint = Constraint {
    postgres: "reviews_reservation_once",
    sqlite: "reviews.reservation_id",
};

/// On PostgreSQL, takes the property's transaction-scoped advisory lock, so holds and
/// confirmations of one property take turns (see [`hold::insert_hold`]); SQLite already runs
/// one writer at a time.
async fn lock_property(txn: &impl ConnectionTrait, property: Uuid) -> Result<(), DbErr> {
    if txn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    // The random half of the id (the first half of a UUIDv7 is its timestamp).
    let key = i64::from_be_bytes(property.as_bytes()[8..].try_into().expect("8 bytes"));
    txn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [key.into()],
    ))
    .await?;
    Ok(())
}

/// Rows for unit tests of what is computed from a reservation.
#[cfg(test)]
pub mod testing {
    use chrono::Utc;
    use uuid::Uuid;

    use super::Reservation;

    /// A PENDING hold of three nights for 300.00 EUR, with fresh ids.
    pub fn row() -> Reservation {
        let now = Utc::now();
        Reservation {
            id: Uuid::now_v7(),
            property_id: Uuid::now_v7(),
            property_title: "Loft".into(),
            guest_id: Uuid::now_v7(),
            host_id: Uuid::now_v7(),
            check_in: "2027-03-01".parse().unwrap(),
            check_out: "2027-03-04".parse().unwrap(),
            guests: 2,
            nights: 3,
            total_amount: 30_000,
            currency: "EUR".into(),
            cancellation_policy: "MODERATE".into(),
            status: "PENDING".into(),
            idempotency_key: "4b1f0f2e-7c1c-4a55-9a5e-0d9f1f7f9a10".into(),
            request_fingerprint: "f".repeat(64),
            payment_method: "pm_card_visa".into(),
            payment_id: None,
            captured: false,
            compensation_pending: false,
            refund_amount: None,
            failure_code: None,
            created_at: now,
            updated_at: now,
            cancelled_at: None,
            policy_check_in: None,
        }
    }
}

#[cfg(test)]
mod tests;

/// Appends one event to the outbox in the caller's transaction, so it is written exactly when
/// the change it announces is; the relay publishes the row as is. Reservation and calendar-block
/// changes both announce themselves through here.
pub(crate) async fn append_to_outbox(
    txn: &impl sea_orm::ConnectionTrait,
    event_id: uuid::Uuid,
    kind: &str,
    aggregate_id: uuid::Uuid,
    payload: String,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{ActiveModelTrait, Set};
    outbox::ActiveModel {
        id: Set(event_id),
        kind: Set(kind.to_owned()),
        aggregate_id: Set(aggregate_id),
        payload: Set(payload),
        created_at: Set(at),
        published_at: Set(None),
    }
    .insert(txn)
    .await?;
    Ok(())
}
