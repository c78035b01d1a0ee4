//! Changes of confirmed stays: recording one, applying it (the re-hold), ending it, and the
//! rows the reconciler must finish.
//!
//! Applying is one transaction that moves the change PENDING → APPLIED, rewrites the stay's
//! dates, guests and total *only if the stay is still CONFIRMED exactly as the change was
//! priced from*, and writes the `reservation.changed` event. The stay keeps its row, so the
//! database checks the new nights against every other live booking and block (the exclusion
//! constraints on PostgreSQL, the triggers on SQLite) but not against the stay's own old
//! nights: a change that overlaps itself succeeds, and no other request can take either range
//! in between, because the old nights are released in the very statement that takes the new.

use chrono::{DateTime, NaiveDate, Utc};
use draftr_common::db::{is_deadlock, violates};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use uuid::Uuid;

use super::entities::reservation_changes::{self, Column, Entity};
use super::{CALENDAR_NO_OVERLAP, NO_OVERLAP, Reservation, lock_property, queries, reservations};
use crate::domain::{ChangeFailure, ChangeStatus, ReservationStatus};
use crate::error::Error;

pub use reservation_changes::Model as ChangeRow;

/// One change per reservation and idempotency key.
pub const CHANGE_KEY: draftr_common::db::Constraint = draftr_common::db::Constraint {
    postgres: "reservation_changes_key",
    sqlite: "reservation_changes.reservation_id, reservation_changes.idempotency_key",
};

/// How many rows each reconciler query hands over per pass.
const RECONCILER_BATCH: u64 = 100;

/// Why a change was not recorded.
#[derive(Debug)]
pub enum RecordError {
    /// A change with this idempotency key exists for the reservation.
    SameKey,
    Db(DbErr),
}

/// Records a PENDING change.
pub async fn record(
    db: &DatabaseConnection,
    row: reservation_changes::ActiveModel,
) -> Result<ChangeRow, RecordError> {
    match row.insert(db).await {
        Ok(c) => Ok(c),
        Err(e) if violates(&e, CHANGE_KEY) => Err(RecordError::SameKey),
        Err(e) => Err(RecordError::Db(e)),
    }
}

/// The reservation's change made with this idempotency key.
pub async fn by_key(
    db: &impl ConnectionTrait,
    reservation: Uuid,
    key: &str,
) -> Result<Option<ChangeRow>, Error> {
    Ok(Entity::find()
        .filter(Column::ReservationId.eq(reservation))
        .filter(Column::IdempotencyKey.eq(key))
        .one(db)
        .await?)
}

pub async fn require(db: &impl ConnectionTrait, id: Uuid) -> Result<ChangeRow, Error> {
    Entity::find_by_id(id).one(db).await?.ok_or(Error::NotFound)
}

/// What applying a change came to.
#[derive(Debug)]
pub enum Applied {
    /// The stay has the new dates; its row as it now is.
    Done(Box<Reservation>),
    /// Another live booking or a block has one of the new nights: nothing was written.
    Conflict,
    /// The stay is no longer CONFIRMED as the change was priced from (cancelled, or changed
    /// by another request): nothing was written.
    Superseded,
    /// The change is no longer PENDING (the reconciler ended it): nothing was written.
    NotPending,
}

/// Applies a PENDING change (see the module docs), retrying when PostgreSQL's deadlock
/// detector picks it, as holds are.
pub async fn apply(
    db: &DatabaseConnection,
    change: &ChangeRow,
    property: Uuid,
    payment_id: Option<Uuid>,
    refund: i64,
    notice_from: NaiveDate,
) -> Result<Applied, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match apply_once(db, change, property, payment_id, refund, notice_from).await {
            Err(e) if violates(&e, NO_OVERLAP) || violates(&e, CALENDAR_NO_OVERLAP) => {
                return Ok(Applied::Conflict);
            }
            Err(e) if attempt < 5 && is_deadlock(&e) => {
                tracing::debug!(attempt, "change chosen as deadlock victim; retrying");
            }
            Err(e) => return Err(e.into()),
            Ok(Ok(applied)) => return Ok(applied),
            Ok(Err(e)) => return Err(e),
        }
    }
}

/// One attempt. The outer `Err` is the database's (a constraint, a deadlock); the inner one
/// is ours (an event that cannot be written).
async fn apply_once(
    db: &DatabaseConnection,
    change: &ChangeRow,
    property: Uuid,
    payment_id: Option<Uuid>,
    refund: i64,
    notice_from: NaiveDate,
) -> Result<Result<Applied, Error>, DbErr> {
    let txn = db.begin().await?;
    lock_property(&txn, property).await?;
    let now = Utc::now();
    let moved = Entity::update_many()
        .col_expr(Column::Status, Expr::value(ChangeStatus::Applied.as_str()))
        .col_expr(Column::PaymentId, Expr::value(payment_id))
        .col_expr(
            Column::RefundAmount,
            Expr::value((change.difference() < 0).then_some(refund)),
        )
        .col_expr(Column::CompensationPending, Expr::value(refund > 0))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(change.id))
        .filter(Column::Status.eq(ChangeStatus::Pending.as_str()))
        .exec(&txn)
        .await?;
    if moved.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(Ok(Applied::NotPending));
    }
    use reservations::Column as R;
    let stay = reservations::Entity::update_many()
        .col_expr(R::CheckIn, Expr::value(change.to_check_in))
        .col_expr(R::CheckOut, Expr::value(change.to_check_out))
        .col_expr(R::Guests, Expr::value(change.to_guests))
        .col_expr(R::Nights, Expr::value(change.to_nights))
        .col_expr(R::TotalAmount, Expr::value(change.to_total))
        .col_expr(R::PaymentMethod, Expr::value(change.payment_method.clone()))
        .col_expr(R::PolicyCheckIn, Expr::value(notice_from))
        .col_expr(R::UpdatedAt, Expr::value(now))
        .filter(R::Id.eq(change.reservation_id))
        .filter(R::Status.eq(ReservationStatus::Confirmed.as_str()))
        .filter(R::CheckIn.eq(change.from_check_in))
        .filter(R::CheckOut.eq(change.from_check_out))
        .filter(R::Guests.eq(change.from_guests))
        .filter(R::TotalAmount.eq(change.from_total))
        .exec(&txn)
        .await?;
    if stay.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(Ok(Applied::Superseded));
    }
    let row = match queries::require(&txn, change.reservation_id).await {
        Ok(row) => row,
        Err(e) => return Ok(Err(e)),
    };
    let applied = ChangeRow {
        status: ChangeStatus::Applied.as_str().into(),
        payment_id,
        refund_amount: (change.difference() < 0).then_some(refund),
        ..change.clone()
    };
    if let Err(e) = super::transition::write_change_event(&txn, &row, &applied, now).await {
        txn.rollback().await?;
        return Ok(Err(e));
    }
    txn.commit().await?;
    Ok(Ok(Applied::Done(Box::new(row))))
}

/// PENDING → FAILED. `compensate`: an extra charge may exist and must be voided. `false` if
/// the change was no longer PENDING.
pub async fn fail(
    db: &impl ConnectionTrait,
    id: Uuid,
    failure: ChangeFailure,
    compensate: bool,
) -> Result<bool, Error> {
    let updated = Entity::update_many()
        .col_expr(Column::Status, Expr::value(ChangeStatus::Failed.as_str()))
        .col_expr(Column::FailureCode, Expr::value(failure.as_str()))
        .col_expr(Column::CompensationPending, Expr::value(compensate))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(ChangeStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// The extra charge was captured.
pub async fn mark_captured(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    set_flag(db, id, Column::Captured, true).await
}

/// The refund (APPLIED) or the void (FAILED) the change owed is done.
pub async fn clear_compensation(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    set_flag(db, id, Column::CompensationPending, false).await
}

async fn set_flag(
    db: &impl ConnectionTrait,
    id: Uuid,
    column: Column,
    value: bool,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(column, Expr::value(value))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// PENDING changes not touched since `older_than`: the requests that made them are gone.
pub async fn stale_pending(
    db: &impl ConnectionTrait,
    older_than: DateTime<Utc>,
) -> Result<Vec<ChangeRow>, Error> {
    Ok(Entity::find()
        .filter(Column::Status.eq(ChangeStatus::Pending.as_str()))
        .filter(Column::UpdatedAt.lt(older_than))
        .order_by_asc(Column::UpdatedAt)
        .limit(RECONCILER_BATCH)
        .all(db)
        .await?)
}

/// Changes with money still to move: an applied extra charge not captured, an applied
/// refund not made, a failed change's charge not voided.
pub async fn unsettled(db: &impl ConnectionTrait) -> Result<Vec<ChangeRow>, Error> {
    use sea_orm::Condition;
    Ok(Entity::find()
        .filter(
            Condition::any()
                .add(Column::CompensationPending.eq(true))
                .add(
                    Condition::all()
                        .add(Column::Status.eq(ChangeStatus::Applied.as_str()))
                        .add(Column::PaymentId.is_not_null())
                        .add(Column::Captured.eq(false)),
                ),
        )
        .limit(RECONCILER_BATCH)
        .all(db)
        .await?)
}

/// How many changes still owe a refund or a void (for metrics).
pub async fn count_unsettled(db: &impl ConnectionTrait) -> Result<u64, Error> {
    use sea_orm::PaginatorTrait;
    Ok(Entity::find()
        .filter(Column::CompensationPending.eq(true))
        .count(db)
        .await?)
}
