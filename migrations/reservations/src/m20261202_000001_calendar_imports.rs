//! iCal feeds of host calendars (docs/api.md, "Calendar feeds").
//!
//! - `ical_exports`: one row per property whose export URL was rotated, holding only the
//!   generation counter that goes into the URL's token (`HMAC(feed secret, property id +
//!   generation)`). No token is stored: a property without a row is at generation 0, and
//!   rotating adds one, so the previous URL stops working at once.
//! - `calendar_imports`: feeds a host subscribed the property to. The poller claims a feed by a
//!   conditional UPDATE of `next_poll_at`, so of several replicas one polls it. `conflicts` is
//!   a JSON list of the feed's events refused because they overlap a booking.
//! - `calendar_blocks.import_id` / `external_uid`: a block made from a feed's event keeps the
//!   import's id and the event's UID (unique per import), so a later poll can move or remove
//!   it. Blocks of an import are removed one by one through the block path (with their
//!   `calendar.unblocked` events) when the import is, so there is no cascading foreign key.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE ical_exports (
        property_id uuid PRIMARY KEY,
        generation bigint NOT NULL CHECK (generation >= 0)
    )",
    "CREATE TABLE calendar_imports (
        id uuid PRIMARY KEY,
        property_id uuid NOT NULL,
        host_id uuid NOT NULL,
        url varchar(2048) NOT NULL,
        name varchar(100),
        status varchar(16) NOT NULL,
        last_synced_at timestamp with time zone,
        last_error varchar(500),
        conflicts text NOT NULL,
        next_poll_at timestamp with time zone NOT NULL,
        created_by uuid NOT NULL,
        created_at timestamp with time zone NOT NULL
    )",
    "CREATE INDEX calendar_imports_property_idx ON calendar_imports (property_id)",
    "CREATE INDEX calendar_imports_poll_idx ON calendar_imports (next_poll_at)",
    // A block made from a feed names its import, and the database keeps it from outliving the
    // import: a sync inserting a block for an import removed meanwhile is refused.
    "ALTER TABLE calendar_blocks ADD COLUMN import_id uuid REFERENCES calendar_imports (id)",
    "ALTER TABLE calendar_blocks ADD COLUMN external_uid varchar(255)",
    "CREATE UNIQUE INDEX calendar_blocks_import_uid ON calendar_blocks (import_id, external_uid)",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in UP {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for statement in [
            "DROP INDEX IF EXISTS calendar_blocks_import_uid",
            "ALTER TABLE calendar_blocks DROP COLUMN external_uid",
            "ALTER TABLE calendar_blocks DROP COLUMN import_id",
            "DROP TABLE IF EXISTS calendar_imports",
            "DROP TABLE IF EXISTS ical_exports",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
