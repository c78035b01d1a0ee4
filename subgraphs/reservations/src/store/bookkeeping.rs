//! Writes that change no status and announce nothing: the flags that record where a
//! reservation's payment stands, and an admin's delete.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::reservations::{Column, Entity};

/// The payment was captured; the reconciler stops trying.
pub async fn mark_captured(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    set_flag(db, id, Column::Captured, true).await
}

/// A payment may exist that must be voided or refunded; the reconciler retries until it is.
pub async fn mark_compensation_pending(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    set_flag(db, id, Column::CompensationPending, true).await
}

/// The payment was voided or refunded.
pub async fn clear_compensation_pending(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
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
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes the row; whether there was one.
pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<bool, DbErr> {
    Ok(Entity::delete_by_id(id).exec(db).await?.rows_affected == 1)
}
