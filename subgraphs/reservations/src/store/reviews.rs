//! Reviews of stays. Every read leaves removed reviews out; the writes are conditional, so
//! "once" holds under concurrency: the UNIQUE key refuses a second review of a stay, and a
//! reply is set only where there is none yet.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QuerySelect, Select,
};
use uuid::Uuid;

use super::REVIEW_ONCE;
use super::entities::reviews::{Column, Entity, Model as Review};

/// Why a review was not stored.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// The stay has a review already (perhaps written a moment ago by a concurrent request).
    #[error("this stay has been reviewed already")]
    AlreadyReviewed,
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn shown() -> Select<Entity> {
    Entity::find().filter(Column::RemovedAt.is_null())
}

/// Inserts `review`; [`InsertError::AlreadyReviewed`] when `reviews_reservation_once` refuses it.
pub async fn insert(db: &impl ConnectionTrait, review: Review) -> Result<Review, InsertError> {
    review
        .into_active_model()
        .reset_all()
        .insert(db)
        .await
        .map_err(|e| {
            if draftr_common::db::violates(&e, REVIEW_ONCE) {
                InsertError::AlreadyReviewed
            } else {
                InsertError::Db(e)
            }
        })
}

/// The review, removed or not (for the writes, which tell the two apart).
pub async fn find_any(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Review>, DbErr> {
    Entity::find_by_id(id).one(db).await
}

/// Shown reviews by id.
pub async fn get_many(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Review>, DbErr> {
    Ok(shown()
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect())
}

/// The shown review of each stay that has one.
pub async fn by_reservations(
    db: &impl ConnectionTrait,
    reservations: &[Uuid],
) -> Result<HashMap<Uuid, Review>, DbErr> {
    Ok(shown()
        .filter(Column::ReservationId.is_in(reservations.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.reservation_id, r))
        .collect())
}

/// A property's shown reviews, newest first (UUIDv7 ids), after the cursor's id; whether more
/// follow. One statement on `reviews_property_page_idx`.
pub async fn page(
    db: &impl ConnectionTrait,
    property: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<(Vec<Review>, bool), DbErr> {
    draftr_common::db::page_by_id_desc(
        db,
        shown().filter(Column::PropertyId.eq(property)),
        Column::Id,
        after,
        limit,
    )
    .await
}

/// `(count, sum of ratings)` of the shown reviews of each property that has any: one
/// statement for the whole batch.
pub async fn ratings(
    db: &impl ConnectionTrait,
    properties: &[Uuid],
) -> Result<HashMap<Uuid, (i64, i64)>, DbErr> {
    let rows: Vec<(Uuid, i64, i64)> = shown()
        .select_only()
        .column(Column::PropertyId)
        .column_as(Column::Id.count(), "n")
        .column_as(Column::Rating.sum(), "total")
        .filter(Column::PropertyId.is_in(properties.iter().copied()))
        .group_by(Column::PropertyId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(p, n, total)| (p, (n, total)))
        .collect())
}

/// Sets the reply if the review is shown and has none; whether it did.
pub async fn set_reply(
    db: &impl ConnectionTrait,
    id: Uuid,
    reply: &str,
    at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let updated = Entity::update_many()
        .col_expr(Column::Reply, Expr::value(reply.to_owned()))
        .col_expr(Column::RepliedAt, Expr::value(at))
        .filter(Column::Id.eq(id))
        .filter(Column::Reply.is_null())
        .filter(Column::RemovedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Marks a shown review removed; whether it did.
pub async fn remove(db: &impl ConnectionTrait, id: Uuid, at: DateTime<Utc>) -> Result<bool, DbErr> {
    let updated = Entity::update_many()
        .col_expr(Column::RemovedAt, Expr::value(at))
        .filter(Column::Id.eq(id))
        .filter(Column::RemovedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}
