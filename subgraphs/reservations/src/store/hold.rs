//! Inserting a PENDING hold: the step where the database, not the code, decides which of any
//! number of concurrent bookings of the same dates gets them.

use draftr_common::db::{is_deadlock, violates};
use sea_orm::{ActiveModelTrait, DatabaseBackend, DatabaseConnection, DbErr, TransactionTrait};
use uuid::Uuid;

use super::{
    CALENDAR_NO_OVERLAP, IDEMPOTENCY_KEY, NO_OVERLAP, Reservation, lock_property, reservations,
};

/// Why a hold was not inserted.
#[derive(Debug)]
pub enum HoldError {
    /// An active reservation of the property overlaps the dates ([`NO_OVERLAP`]), or a
    /// calendar block does ([`CALENDAR_NO_OVERLAP`]).
    Overlap,
    /// The guest already used this idempotency key ([`IDEMPOTENCY_KEY`]).
    SameKey,
    Db(DbErr),
}

/// Inserts `row` (a hold of `property`), retrying when PostgreSQL's deadlock detector picks it.
///
/// PostgreSQL checks an exclusion constraint after inserting the index entry, so two racing
/// inserts of overlapping stays can each wait for the other; the deadlock detector then aborts
/// one of them. Retrying decides it: by then the other has committed (a conflict) or rolled
/// back (this one wins).
pub async fn insert_hold(
    db: &DatabaseConnection,
    row: reservations::ActiveModel,
    property: Uuid,
) -> Result<Reservation, HoldError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match insert_once(db, row.clone(), property).await {
            Ok(r) => return Ok(r),
            Err(e) if violates(&e, NO_OVERLAP) || violates(&e, CALENDAR_NO_OVERLAP) => {
                return Err(HoldError::Overlap);
            }
            Err(e) if violates(&e, IDEMPOTENCY_KEY) => return Err(HoldError::SameKey),
            Err(e) if attempt < 5 && is_deadlock(&e) => {
                tracing::debug!(attempt, "hold insert chosen as deadlock victim; retrying");
            }
            Err(e) => return Err(HoldError::Db(e)),
        }
    }
}

/// On PostgreSQL, holds and confirmations of one property take turns on an advisory lock
/// first: the exclusion constraint alone would make racing inserts wait on one another's
/// uncommitted rows, and under load those waits pile up into deadlocks and pool exhaustion.
/// Different properties never wait for each other.
async fn insert_once(
    db: &DatabaseConnection,
    row: reservations::ActiveModel,
    property: Uuid,
) -> Result<Reservation, DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        // SQLite: one statement, so the write lock is held for the insert alone.
        return row.insert(db).await;
    }
    let txn = db.begin().await?;
    lock_property(&txn, property).await?;
    let inserted = row.insert(&txn).await?;
    txn.commit().await?;
    Ok(inserted)
}
