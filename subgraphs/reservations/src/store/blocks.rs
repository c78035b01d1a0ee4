//! Calendar blocks: adding one (which the database refuses over live bookings and other
//! blocks, [`CALENDAR_NO_OVERLAP`]), removing one, and the reads behind `calendarBlocks` and
//! the public calendar. Each write commits with its outbox event, like a status change.

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use draftr_common::db::{is_deadlock, violates};
use draftr_common::events::calendar::{CalendarBlockEvent, CalendarEventKind};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, TransactionTrait,
};
use uuid::Uuid;

use super::entities::calendar_blocks::{self, Column, Entity};
use super::{CALENDAR_NO_OVERLAP, lock_property};
use crate::error::Error;

pub use calendar_blocks::Model as Block;

/// Why a block was not inserted.
#[derive(Debug)]
pub enum BlockError {
    /// A live booking or another block of the property shares a night with it.
    Overlap,
    Db(DbErr),
}

/// Inserts `block` with its `calendar.blocked` event, retrying when PostgreSQL's deadlock
/// detector picks it (as [`super::insert_hold`] does).
pub async fn insert(db: &DatabaseConnection, block: Block) -> Result<Block, BlockError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match insert_once(db, block.clone()).await {
            Ok(b) => return Ok(b),
            Err(e) if violates(&e, CALENDAR_NO_OVERLAP) => return Err(BlockError::Overlap),
            Err(e) if attempt < 5 && is_deadlock(&e) => {
                tracing::debug!(attempt, "block insert chosen as deadlock victim; retrying");
            }
            Err(e) => return Err(BlockError::Db(e)),
        }
    }
}

/// Takes the property's turn (the advisory lock holds and confirmations take), so blocks and
/// bookings of one property queue instead of waiting on each other's uncommitted claims.
pub(crate) async fn insert_once(db: &DatabaseConnection, block: Block) -> Result<Block, DbErr> {
    let txn = db.begin().await?;
    lock_property(&txn, block.property_id).await?;
    let inserted = block.into_active_model().reset_all().insert(&txn).await?;
    write_event(&txn, CalendarEventKind::Blocked, &inserted).await?;
    txn.commit().await?;
    Ok(inserted)
}

/// Removes `block` with its `calendar.unblocked` event; false when it was gone already (a
/// concurrent unblock won). Blocks never change, so the row read before is the one removed.
/// The DELETE comes first so that on SQLite the transaction starts as a writer (a read
/// upgraded to a write can fail at once instead of waiting its turn).
pub async fn delete(db: &DatabaseConnection, block: &Block) -> Result<bool, Error> {
    let txn = db.begin().await?;
    let removed = Entity::delete_by_id(block.id)
        .exec(&txn)
        .await?
        .rows_affected;
    if removed == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    write_event(&txn, CalendarEventKind::Unblocked, block).await?;
    txn.commit().await?;
    Ok(true)
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Block>, Error> {
    Ok(Entity::find_by_id(id).one(db).await?)
}

/// The property's blocks sharing a night with `[from, to)`, earliest first.
pub async fn overlapping(
    db: &impl ConnectionTrait,
    property: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Block>, Error> {
    Ok(Entity::find()
        .filter(Column::PropertyId.eq(property))
        .filter(Column::StartsOn.lt(to))
        .filter(Column::EndsOn.gt(from))
        .order_by_asc(Column::StartsOn)
        .all(db)
        .await?)
}

/// Blocked ranges of `properties` sharing a night with `[from, to)`, per property.
pub async fn ranges(
    db: &impl ConnectionTrait,
    properties: Vec<Uuid>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<Uuid, Vec<(NaiveDate, NaiveDate)>>, Error> {
    let rows = Entity::find()
        .filter(Column::PropertyId.is_in(properties))
        .filter(Column::StartsOn.lt(to))
        .filter(Column::EndsOn.gt(from))
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<_>> = HashMap::new();
    for b in rows {
        out.entry(b.property_id)
            .or_default()
            .push((b.starts_on, b.ends_on));
    }
    Ok(out)
}

/// The outbox row announcing the block's change (dates and source, never the note).
pub(crate) async fn write_event(
    txn: &impl ConnectionTrait,
    kind: CalendarEventKind,
    b: &Block,
) -> Result<(), DbErr> {
    let event = event_of(Uuid::now_v7(), kind, b, Utc::now());
    let payload = serde_json::to_string(&event)
        .map_err(|e| DbErr::Custom(format!("serializing a calendar event: {e}")))?;
    super::append_to_outbox(
        txn,
        event.event_id,
        kind.as_str(),
        b.id,
        payload,
        event.occurred_at,
    )
    .await
}

fn event_of(
    event_id: Uuid,
    kind: CalendarEventKind,
    b: &Block,
    at: chrono::DateTime<Utc>,
) -> CalendarBlockEvent {
    CalendarBlockEvent {
        version: CalendarBlockEvent::VERSION,
        event_id,
        kind,
        occurred_at: at,
        block_id: b.id,
        property_id: b.property_id,
        host_id: b.host_id,
        from: b.starts_on,
        to: b.ends_on,
        source: b.source.clone(),
    }
}
