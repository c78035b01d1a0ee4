//! Every statement on the notifications table. One function is one statement, so a caller's
//! statement count (tests compare them) reads off its calls.

use chrono::{DateTime, Utc};
use draftr_common::db::{Constraint, violates};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::notifications::{ActiveModel, Column, Entity, Model};
use crate::domain::EmailStatus;

/// The table's primary key (unnamed in the migration, so PostgreSQL calls it
/// `notifications_pkey`): a second delivery of an event meets it with the same row ids.
pub const PRIMARY_KEY: Constraint = Constraint {
    postgres: "notifications_pkey",
    sqlite: "notifications.id",
};

/// Stores `row`; `false` when a row with its id is already there (stored by an earlier
/// delivery of the same event). Any other refusal is an error.
pub async fn insert_new(db: &impl ConnectionTrait, row: ActiveModel) -> Result<bool, DbErr> {
    match row.insert(db).await {
        Ok(_) => Ok(true),
        Err(e) if violates(&e, PRIMARY_KEY) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Up to `limit` of `user`'s notifications in descending id order, those after `after`; and
/// whether more follow (one row more is read to tell).
pub async fn page_of_user(
    db: &impl ConnectionTrait,
    user: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<(Vec<Model>, bool), DbErr> {
    draftr_common::db::page_by_id_desc(
        db,
        Entity::find().filter(Column::UserId.eq(user)),
        Column::Id,
        after,
        limit,
    )
    .await
}

pub async fn count_of_user(db: &impl ConnectionTrait, user: Uuid) -> Result<u64, DbErr> {
    Entity::find()
        .filter(Column::UserId.eq(user))
        .count(db)
        .await
}

/// Rows per status (for metrics), in one grouped count.
pub async fn count_by_status(db: &impl ConnectionTrait) -> Result<Vec<(String, i64)>, DbErr> {
    Entity::find()
        .select_only()
        .column(Column::Status)
        .column_as(Column::Id.count(), "n")
        .group_by(Column::Status)
        .into_tuple::<(String, i64)>()
        .all(db)
        .await
}

/// Puts rows left SENDING since before `claimed_before` (by a mailer that died) back in the
/// queue as RETRYING.
pub async fn requeue_abandoned(
    db: &impl ConnectionTrait,
    claimed_before: DateTime<Utc>,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(EmailStatus::Retrying.as_str()))
        .filter(Column::Status.eq(EmailStatus::Sending.as_str()))
        .filter(Column::NextAttemptAt.lt(claimed_before))
        .exec(db)
        .await?;
    Ok(())
}

/// Up to `limit` rows waiting to be sent (PENDING or RETRYING) whose time has come by `now`,
/// longest waiting first.
pub async fn due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Model>, DbErr> {
    Entity::find()
        .filter(Column::Status.is_in([
            EmailStatus::Pending.as_str(),
            EmailStatus::Retrying.as_str(),
        ]))
        .filter(Column::NextAttemptAt.lte(now))
        .order_by_asc(Column::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await
}

/// Marks `row` SENDING and counts the attempt, if it is still in the status it was read in;
/// `false` when another mailer claimed it first. `next_attempt_at` becomes the claim time,
/// which is what [`requeue_abandoned`] measures.
pub async fn claim(db: &impl ConnectionTrait, row: &Model) -> Result<bool, DbErr> {
    let claimed = Entity::update_many()
        .col_expr(Column::Status, Expr::value(EmailStatus::Sending.as_str()))
        .col_expr(Column::Attempts, Expr::value(row.attempts + 1))
        .col_expr(Column::NextAttemptAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(row.id))
        .filter(Column::Status.eq(row.status.clone()))
        .exec(db)
        .await?;
    Ok(claimed.rows_affected != 0)
}

pub async fn mark_sent(db: &impl ConnectionTrait, id: Uuid) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(EmailStatus::Sent.as_str()))
        .col_expr(Column::SentAt, Expr::value(Utc::now()))
        .col_expr(Column::LastError, Expr::value(Option::<String>::None))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records a failed attempt: `status` is RETRYING (at `next`) or FAILED; `error` is kept
/// (its first 500 characters, the column's size) for the operator.
pub async fn mark_unsent(
    db: &impl ConnectionTrait,
    id: Uuid,
    status: EmailStatus,
    next: DateTime<Utc>,
    error: &str,
) -> Result<(), DbErr> {
    Entity::update_many()
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .col_expr(Column::NextAttemptAt, Expr::value(next))
        .col_expr(
            Column::LastError,
            Expr::value(error.chars().take(500).collect::<String>()),
        )
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
