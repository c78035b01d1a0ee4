//! The iCal tables (migration `m20261202_000001_calendar_imports`): export generations, the
//! imports a host subscribed to, and the statements that move an import's blocks. Blocks are
//! added and removed through [`super::blocks`] (with their `calendar.*` events); moving one
//! ([`move_block`]) replaces it by a block with a new id in one transaction, with its
//! `calendar.unblocked` (old nights) and `calendar.blocked` (new nights) events, so catalog's
//! date search follows.

use chrono::{DateTime, NaiveDate, Utc};
use draftr_common::db::{is_deadlock, violates, violates_foreign_key};
use draftr_common::events::calendar::CalendarEventKind;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use super::blocks::{self, Block, BlockError};
use super::entities::calendar_blocks;
use super::{CALENDAR_NO_OVERLAP, lock_property};
use crate::error::Error;

pub mod ical_exports {
    use sea_orm::entity::prelude::*;

    /// The generation of a property's export URL (absent: 0).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ical_exports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub property_id: Uuid,
        pub generation: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod calendar_imports {
    use sea_orm::entity::prelude::*;

    /// A feed a host subscribed a property to.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "calendar_imports")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        pub property_id: Uuid,
        /// The property's host when the import was added (from catalog).
        pub host_id: Uuid,
        pub url: String,
        pub name: Option<String>,
        /// `PENDING` (never synced), `OK`, `CONFLICTS`, `ERROR`.
        pub status: String,
        pub last_synced_at: Option<DateTimeUtc>,
        pub last_error: Option<String>,
        /// JSON list of [`crate::store::ical::Conflict`].
        pub conflicts: String,
        pub next_poll_at: DateTimeUtc,
        pub created_by: Uuid,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use calendar_imports::Model as CalendarImport;

/// A feed event refused because its nights are taken (by a booking, or another block).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Conflict {
    pub uid: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub summary: Option<String>,
}

impl CalendarImport {
    /// The recorded conflicts (an unreadable column reads as none).
    pub fn conflict_list(&self) -> Vec<Conflict> {
        serde_json::from_str(&self.conflicts).unwrap_or_default()
    }
}

/// The export generation of `property` (0 until first rotated).
pub async fn generation(db: &impl ConnectionTrait, property: Uuid) -> Result<i64, Error> {
    Ok(ical_exports::Entity::find_by_id(property)
        .one(db)
        .await?
        .map_or(0, |r| r.generation))
}

/// Adds one to the generation of `property`; the new one.
pub async fn rotate(db: &DatabaseConnection, property: Uuid) -> Result<i64, Error> {
    let txn = db.begin().await?;
    let updated = ical_exports::Entity::update_many()
        .col_expr(
            ical_exports::Column::Generation,
            Expr::col(ical_exports::Column::Generation).add(1),
        )
        .filter(ical_exports::Column::PropertyId.eq(property))
        .exec(&txn)
        .await?
        .rows_affected;
    if updated == 0 {
        ical_exports::ActiveModel {
            property_id: Set(property),
            generation: Set(1),
        }
        .insert(&txn)
        .await?;
    }
    let g = generation(&txn, property).await?;
    txn.commit().await?;
    Ok(g)
}

/// Confirmed stays of `property` ending on or after `since`: (id, from, to, updated).
pub async fn confirmed_stays(
    db: &impl ConnectionTrait,
    property: Uuid,
    since: NaiveDate,
) -> Result<Vec<super::Reservation>, Error> {
    use super::reservations::{Column, Entity};
    Ok(Entity::find()
        .filter(Column::PropertyId.eq(property))
        .filter(Column::Status.eq("CONFIRMED"))
        .filter(Column::CheckOut.gte(since))
        .order_by_asc(Column::CheckIn)
        .all(db)
        .await?)
}

/// Blocks of `property` ending on or after `since`, earliest first.
pub async fn blocks_since(
    db: &impl ConnectionTrait,
    property: Uuid,
    since: NaiveDate,
) -> Result<Vec<Block>, Error> {
    use calendar_blocks::{Column, Entity};
    Ok(Entity::find()
        .filter(Column::PropertyId.eq(property))
        .filter(Column::EndsOn.gte(since))
        .order_by_asc(Column::StartsOn)
        .all(db)
        .await?)
}

pub async fn insert_import(db: &DatabaseConnection, row: CalendarImport) -> Result<(), Error> {
    row.into_active_model().reset_all().insert(db).await?;
    Ok(())
}

pub async fn find_import(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<CalendarImport>, Error> {
    Ok(calendar_imports::Entity::find_by_id(id).one(db).await?)
}

pub async fn imports_of(
    db: &impl ConnectionTrait,
    property: Uuid,
) -> Result<Vec<CalendarImport>, Error> {
    use calendar_imports::{Column, Entity};
    Ok(Entity::find()
        .filter(Column::PropertyId.eq(property))
        .order_by_asc(Column::CreatedAt)
        .order_by_asc(Column::Id)
        .all(db)
        .await?)
}

pub async fn count_imports(db: &impl ConnectionTrait, property: Uuid) -> Result<u64, Error> {
    use calendar_imports::{Column, Entity};
    Ok(Entity::find()
        .filter(Column::PropertyId.eq(property))
        .count(db)
        .await?)
}

/// The blocks made from `import`'s feed.
pub async fn blocks_of_import(
    db: &impl ConnectionTrait,
    import: Uuid,
) -> Result<Vec<Block>, Error> {
    use calendar_blocks::{Column, Entity};
    Ok(Entity::find()
        .filter(Column::ImportId.eq(import))
        .order_by_asc(Column::StartsOn)
        .all(db)
        .await?)
}

/// Imports due for a poll at `now` (at most `limit`), to be claimed with [`claim`].
pub async fn due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Uuid>, Error> {
    use calendar_imports::{Column, Entity};
    Ok(Entity::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::NextPollAt.lte(now))
        .order_by_asc(Column::NextPollAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?)
}

/// Takes the poll of `import` if it is still due at `now`, moving its next poll to `next`:
/// of several replicas racing for one feed, exactly one sees true.
pub async fn claim(
    db: &impl ConnectionTrait,
    import: Uuid,
    now: DateTime<Utc>,
    next: DateTime<Utc>,
) -> Result<bool, Error> {
    use calendar_imports::{Column, Entity};
    let n = Entity::update_many()
        .col_expr(Column::NextPollAt, Expr::value(next))
        .filter(Column::Id.eq(import))
        .filter(Column::NextPollAt.lte(now))
        .exec(db)
        .await?
        .rows_affected;
    Ok(n == 1)
}

/// Records the outcome of a sync (or a failed fetch: `last_synced_at` unchanged then).
pub async fn record(
    db: &impl ConnectionTrait,
    import: Uuid,
    status: &str,
    synced_at: Option<DateTime<Utc>>,
    error: Option<String>,
    conflicts: Option<&[Conflict]>,
) -> Result<(), Error> {
    use calendar_imports::{Column, Entity};
    // The column holds 500 characters.
    let error = error.map(|e| e.chars().take(500).collect::<String>());
    let mut update = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status))
        .col_expr(Column::LastError, Expr::value(error))
        .filter(Column::Id.eq(import));
    if let Some(at) = synced_at {
        update = update.col_expr(Column::LastSyncedAt, Expr::value(at));
    }
    if let Some(c) = conflicts {
        let json = serde_json::to_string(c).map_err(|e| Error::Internal(e.into()))?;
        update = update.col_expr(Column::Conflicts, Expr::value(json));
    }
    update.exec(db).await?;
    Ok(())
}

/// One block per import and feed UID (`calendar_blocks_import_uid`). SQLite names a unique
/// index by its columns.
pub const IMPORT_UID: draftr_common::db::Constraint = draftr_common::db::Constraint {
    postgres: "calendar_blocks_import_uid",
    sqlite: "calendar_blocks.import_id, calendar_blocks.external_uid",
};

/// Why a block was not moved.
#[derive(Debug)]
pub enum MoveError {
    Overlap,
    /// The block was removed meanwhile (a concurrent sync, or the import's removal).
    Gone,
    Db(DbErr),
}

/// Moves `block` to `[from, to)`: in one transaction, the block is removed (with its
/// `calendar.unblocked` event) and a new block with a new id, the same import and UID and the
/// new nights is added (with its `calendar.blocked` event). A new id rather than an UPDATE, so
/// every reader of block events (catalog's projection keys them by block id) sees a removal
/// and an addition, never a block whose nights change under its id.
pub async fn move_block(
    db: &DatabaseConnection,
    block: &Block,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Block, MoveError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match move_once(db, block, from, to).await {
            Ok(Some(b)) => return Ok(b),
            Ok(None) => return Err(MoveError::Gone),
            Err(e) if violates(&e, CALENDAR_NO_OVERLAP) => return Err(MoveError::Overlap),
            // The import was removed meanwhile, and its blocks with it.
            Err(e) if violates_foreign_key(&e) => return Err(MoveError::Gone),
            Err(e) if attempt < 5 && is_deadlock(&e) => {}
            Err(e) => return Err(MoveError::Db(e)),
        }
    }
}

/// The DELETE comes first so that on SQLite the transaction starts as a writer; on
/// PostgreSQL the property's turn is taken first, as for any block.
async fn move_once(
    db: &DatabaseConnection,
    block: &Block,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Option<Block>, DbErr> {
    let txn = db.begin().await?;
    lock_property(&txn, block.property_id).await?;
    let removed = calendar_blocks::Entity::delete_by_id(block.id)
        .exec(&txn)
        .await?
        .rows_affected;
    if removed == 0 {
        txn.rollback().await?;
        return Ok(None);
    }
    let moved = Block {
        id: Uuid::now_v7(),
        starts_on: from,
        ends_on: to,
        created_at: Utc::now(),
        ..block.clone()
    }
    .into_active_model()
    .reset_all()
    .insert(&txn)
    .await?;
    blocks::write_event(&txn, CalendarEventKind::Unblocked, block).await?;
    blocks::write_event(&txn, CalendarEventKind::Blocked, &moved).await?;
    txn.commit().await?;
    Ok(Some(moved))
}

/// What inserting an imported block did.
#[derive(Debug)]
pub enum Inserted {
    Block,
    /// Its nights are taken (a live booking, another block).
    Overlap,
    /// A concurrent sync of the same import inserted the event's block first.
    Already,
    /// The import was removed meanwhile (the foreign key refused the block): stop syncing it.
    ImportGone,
}

/// Inserts an imported block. A refusal is told apart from a concurrent sync's insert of the
/// same event by looking for that block: SQLite's overlap trigger runs before the unique index
/// would, so a race there reads as an overlap with the twin.
pub async fn insert_block(db: &DatabaseConnection, block: Block) -> Result<Inserted, Error> {
    let (import, uid) = (block.import_id, block.external_uid.clone());
    match blocks::insert(db, block).await {
        Ok(_) => Ok(Inserted::Block),
        Err(BlockError::Db(e)) if violates(&e, IMPORT_UID) => Ok(Inserted::Already),
        Err(BlockError::Db(e)) if violates_foreign_key(&e) => Ok(Inserted::ImportGone),
        Err(BlockError::Overlap) => {
            use calendar_blocks::{Column, Entity};
            let twin = Entity::find()
                .filter(Column::ImportId.eq(import))
                .filter(Column::ExternalUid.eq(uid))
                .count(db)
                .await?;
            Ok(if twin > 0 {
                Inserted::Already
            } else {
                Inserted::Overlap
            })
        }
        Err(BlockError::Db(e)) => Err(e.into()),
    }
}

/// Removes the import and every block made from it (each with its `calendar.unblocked`
/// event), in one transaction; false when it was gone already. It takes the property's turn
/// first, as block inserts do, and its first statement is a write (so SQLite starts it as the
/// writer): a sync inserting a block meanwhile either commits first (and the block is removed
/// here) or comes after (and the foreign key refuses it), never leaving a block behind.
pub async fn delete_import(
    db: &DatabaseConnection,
    import: Uuid,
    property: Uuid,
) -> Result<bool, Error> {
    let txn = db.begin().await?;
    lock_property(&txn, property).await?;
    let present = calendar_imports::Entity::update_many()
        .col_expr(
            calendar_imports::Column::Status,
            Expr::col(calendar_imports::Column::Status),
        )
        .filter(calendar_imports::Column::Id.eq(import))
        .exec(&txn)
        .await?
        .rows_affected;
    if present == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    for block in blocks_of_import(&txn, import).await? {
        calendar_blocks::Entity::delete_by_id(block.id)
            .exec(&txn)
            .await?;
        blocks::write_event(&txn, CalendarEventKind::Unblocked, &block).await?;
    }
    calendar_imports::Entity::delete_by_id(import)
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(true)
}

/// Records a finished sync: status, time, the conflicts now, no error; and, when `new` (the
/// conflicts not recorded before) is not empty, the `calendar.import_conflict` event that has
/// notifications email the host, in the same transaction.
pub async fn record_sync(
    db: &DatabaseConnection,
    row: &CalendarImport,
    status: &str,
    at: DateTime<Utc>,
    conflicts: &[Conflict],
    new: &[&Conflict],
) -> Result<(), Error> {
    use draftr_common::events::calendar_import::{
        CalendarImportConflictEvent, ConflictNights, ImportConflictKind,
    };
    let txn = db.begin().await?;
    record(&txn, row.id, status, Some(at), None, Some(conflicts)).await?;
    if !new.is_empty() {
        let event = CalendarImportConflictEvent {
            version: CalendarImportConflictEvent::VERSION,
            event_id: Uuid::now_v7(),
            kind: ImportConflictKind::Conflict,
            occurred_at: at,
            import_id: row.id,
            property_id: row.property_id,
            host_id: row.host_id,
            import_name: row.name.clone(),
            conflicts: new
                .iter()
                .map(|c| ConflictNights {
                    from: c.from,
                    to: c.to,
                })
                .collect(),
        };
        let payload = serde_json::to_string(&event).map_err(|e| Error::Internal(e.into()))?;
        super::append_to_outbox(
            &txn,
            event.event_id,
            event.kind.as_str(),
            row.id,
            payload,
            at,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use draftr_common::test_on_both_backends;
    use draftr_common::testing::{Backend, TestDatabase};

    use super::*;

    test_on_both_backends!(
        of_racing_pollers_one_claims_a_due_feed,
        generations_start_at_zero_and_rotate_by_one,
        a_block_for_a_removed_import_is_refused_and_removing_takes_its_blocks,
    );

    async fn database(backend: Backend) -> (TestDatabase, DatabaseConnection) {
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();
        (test, db)
    }

    fn import(next_poll_at: DateTime<Utc>) -> CalendarImport {
        let now = Utc::now();
        CalendarImport {
            id: Uuid::now_v7(),
            property_id: Uuid::now_v7(),
            host_id: Uuid::now_v7(),
            url: "https://example.com/a.ics".into(),
            name: None,
            status: "PENDING".into(),
            last_synced_at: None,
            last_error: None,
            conflicts: "[]".into(),
            next_poll_at,
            created_by: Uuid::now_v7(),
            created_at: now,
        }
    }

    async fn of_racing_pollers_one_claims_a_due_feed(backend: Backend) {
        let (_test, db) = database(backend).await;
        let now = Utc::now();
        let due = import(now - Duration::seconds(5));
        let later = import(now + Duration::seconds(60));
        insert_import(&db, due.clone()).await.unwrap();
        insert_import(&db, later.clone()).await.unwrap();
        assert_eq!(due_ids(&db, now).await, [due.id]);
        // Eight replicas polling at once: exactly one takes the feed.
        let next = now + Duration::seconds(900);
        let claims = futures::future::join_all((0..8).map(|_| claim(&db, due.id, now, next))).await;
        let won = claims.into_iter().filter(|c| *c.as_ref().unwrap()).count();
        assert_eq!(won, 1);
        assert!(
            due_ids(&db, now).await.is_empty(),
            "not due again until next"
        );
        assert!(
            !claim(&db, later.id, now, next).await.unwrap(),
            "not due yet"
        );
    }

    async fn due_ids(db: &DatabaseConnection, now: DateTime<Utc>) -> Vec<Uuid> {
        due(db, now, 10).await.unwrap()
    }

    async fn generations_start_at_zero_and_rotate_by_one(backend: Backend) {
        let (_test, db) = database(backend).await;
        let p = Uuid::now_v7();
        assert_eq!(generation(&db, p).await.unwrap(), 0);
        assert_eq!(rotate(&db, p).await.unwrap(), 1);
        assert_eq!(rotate(&db, p).await.unwrap(), 2);
        assert_eq!(generation(&db, p).await.unwrap(), 2);
        assert_eq!(generation(&db, Uuid::now_v7()).await.unwrap(), 0);
    }

    fn imported_block(of: &CalendarImport, uid: &str, from: i64) -> Block {
        let today = Utc::now().date_naive();
        Block {
            id: Uuid::now_v7(),
            property_id: of.property_id,
            host_id: of.host_id,
            starts_on: today + Duration::days(from),
            ends_on: today + Duration::days(from + 2),
            note: None,
            source: "IMPORTED".into(),
            import_id: Some(of.id),
            external_uid: Some(uid.into()),
            created_by: of.created_by,
            created_at: Utc::now(),
        }
    }

    /// The race a sync and a removal can run: whichever commits first, no imported block
    /// outlives its import (without the foreign key, the late insert would stay for good).
    async fn a_block_for_a_removed_import_is_refused_and_removing_takes_its_blocks(
        backend: Backend,
    ) {
        let (_test, db) = database(backend).await;
        let row = import(Utc::now());
        insert_import(&db, row.clone()).await.unwrap();
        let first = insert_block(&db, imported_block(&row, "a", 10))
            .await
            .unwrap();
        assert!(matches!(first, Inserted::Block), "{first:?}");
        assert!(delete_import(&db, row.id, row.property_id).await.unwrap());
        assert!(blocks_of_import(&db, row.id).await.unwrap().is_empty());
        assert!(!delete_import(&db, row.id, row.property_id).await.unwrap());

        // A sync still running inserts after the removal committed: refused.
        let late = insert_block(&db, imported_block(&row, "b", 20))
            .await
            .unwrap();
        assert!(matches!(late, Inserted::ImportGone), "{late:?}");
        assert!(blocks_of_import(&db, row.id).await.unwrap().is_empty());
        // A manual block (no import) is unaffected.
        let manual = Block {
            import_id: None,
            external_uid: None,
            source: "MANUAL".into(),
            ..imported_block(&row, "c", 30)
        };
        assert!(matches!(
            insert_block(&db, manual).await.unwrap(),
            Inserted::Block
        ));
    }
}
