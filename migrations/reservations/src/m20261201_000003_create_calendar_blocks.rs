//! Host calendar blocks: nights a host takes off sale (a private stay, maintenance, a booking
//! made elsewhere), and the one rule that makes them mean anything: a block and a live booking
//! (PENDING or CONFIRMED) of one property never share a night, and neither do two blocks.
//!
//! Like "no two live bookings overlap", the rule is the database's, on both backends:
//! - PostgreSQL: an exclusion constraint cannot span two tables, so `calendar_claims` holds
//!   one row per night range that is taken (a live reservation's or a block's) and carries
//!   the exclusion constraint `calendar_no_overlap`. Nothing in the code writes it: triggers on
//!   `reservations` and `calendar_blocks` add and remove the claims in the same statement (so
//!   the same transaction) as the row they mirror. The booking path is unchanged: a hold of
//!   blocked nights fails its INSERT with `calendar_no_overlap`, a booking over a booking still
//!   fails with `reservations_no_overlap` (checked first, on the reservation's own index).
//! - SQLite: triggers that abort with the same name, under its single writer (the check and
//!   the write are one serialized step), as for bookings.
//!
//! `calendar_blocks.source` is where a block came from: `MANUAL` (the host's `blockDates`);
//! later imports will name their feed. Rows are deleted on `unblockDates`; ids are UUIDv7 and
//! never reused, so an exported feed can refer to them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "CREATE TABLE calendar_blocks (
        id uuid PRIMARY KEY,
        property_id uuid NOT NULL,
        host_id uuid NOT NULL,
        starts_on date NOT NULL,
        ends_on date NOT NULL,
        note varchar(500),
        source varchar(64) NOT NULL,
        created_by uuid NOT NULL,
        created_at timestamp with time zone NOT NULL,
        CHECK (ends_on > starts_on)
    )",
    "CREATE INDEX calendar_blocks_property_idx ON calendar_blocks (property_id, starts_on)",
];

const POSTGRES: &[&str] = &[
    "SELECT pg_advisory_xact_lock(724001)",
    "CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public",
    // Exactly one of `reservation_id` / `block_id` says whose claim it is; deleting either
    // row (an admin's delete of a failed reservation, an unblock) takes the claim with it.
    "CREATE TABLE calendar_claims (
        property_id uuid NOT NULL,
        starts_on date NOT NULL,
        ends_on date NOT NULL,
        reservation_id uuid UNIQUE REFERENCES reservations (id) ON DELETE CASCADE,
        block_id uuid UNIQUE REFERENCES calendar_blocks (id) ON DELETE CASCADE,
        CHECK ((reservation_id IS NULL) <> (block_id IS NULL)),
        CHECK (ends_on > starts_on),
        CONSTRAINT calendar_no_overlap EXCLUDE USING gist (
            property_id WITH =,
            daterange(starts_on, ends_on, '[)') WITH &&
        )
    )",
    // A reservation holds a claim exactly while it is live; a change that keeps it live on
    // the same nights (PENDING → CONFIRMED) leaves the claim alone.
    "CREATE FUNCTION reservations_calendar_claim() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF (OLD.status IN ('PENDING', 'CONFIRMED')) = (NEW.status IN ('PENDING', 'CONFIRMED'))
               AND OLD.property_id = NEW.property_id
               AND OLD.check_in = NEW.check_in AND OLD.check_out = NEW.check_out THEN
                RETURN NULL;
            END IF;
            DELETE FROM calendar_claims WHERE reservation_id = OLD.id;
        END IF;
        IF NEW.status IN ('PENDING', 'CONFIRMED') THEN
            INSERT INTO calendar_claims (property_id, starts_on, ends_on, reservation_id)
            VALUES (NEW.property_id, NEW.check_in, NEW.check_out, NEW.id);
        END IF;
        RETURN NULL;
     END $$",
    "CREATE TRIGGER reservations_calendar_claim
     AFTER INSERT OR UPDATE OF status, check_in, check_out, property_id ON reservations
     FOR EACH ROW EXECUTE FUNCTION reservations_calendar_claim()",
    "CREATE FUNCTION calendar_blocks_claim() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
        IF TG_OP = 'UPDATE' THEN
            DELETE FROM calendar_claims WHERE block_id = OLD.id;
        END IF;
        INSERT INTO calendar_claims (property_id, starts_on, ends_on, block_id)
        VALUES (NEW.property_id, NEW.starts_on, NEW.ends_on, NEW.id);
        RETURN NULL;
     END $$",
    "CREATE TRIGGER calendar_blocks_claim
     AFTER INSERT OR UPDATE OF property_id, starts_on, ends_on ON calendar_blocks
     FOR EACH ROW EXECUTE FUNCTION calendar_blocks_claim()",
    // The stays already live when this migration runs.
    "INSERT INTO calendar_claims (property_id, starts_on, ends_on, reservation_id)
     SELECT property_id, check_in, check_out, id FROM reservations
     WHERE status IN ('PENDING', 'CONFIRMED')",
];

const SQLITE: &[&str] = &[
    "CREATE TRIGGER calendar_blocks_no_overlap_insert BEFORE INSERT ON calendar_blocks
     WHEN EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.property_id = NEW.property_id AND r.status IN ('PENDING', 'CONFIRMED')
          AND r.check_in < NEW.ends_on AND NEW.starts_on < r.check_out)
     OR EXISTS (
        SELECT 1 FROM calendar_blocks b
        WHERE b.property_id = NEW.property_id
          AND b.starts_on < NEW.ends_on AND NEW.starts_on < b.ends_on)
     BEGIN SELECT RAISE(ABORT, 'calendar_no_overlap'); END",
    "CREATE TRIGGER calendar_blocks_no_overlap_update
     BEFORE UPDATE OF property_id, starts_on, ends_on ON calendar_blocks
     WHEN EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.property_id = NEW.property_id AND r.status IN ('PENDING', 'CONFIRMED')
          AND r.check_in < NEW.ends_on AND NEW.starts_on < r.check_out)
     OR EXISTS (
        SELECT 1 FROM calendar_blocks b
        WHERE b.id <> NEW.id AND b.property_id = NEW.property_id
          AND b.starts_on < NEW.ends_on AND NEW.starts_on < b.ends_on)
     BEGIN SELECT RAISE(ABORT, 'calendar_no_overlap'); END",
    "CREATE TRIGGER reservations_blocked_insert BEFORE INSERT ON reservations
     WHEN NEW.status IN ('PENDING', 'CONFIRMED') AND EXISTS (
        SELECT 1 FROM calendar_blocks b
        WHERE b.property_id = NEW.property_id
          AND b.starts_on < NEW.check_out AND NEW.check_in < b.ends_on)
     BEGIN SELECT RAISE(ABORT, 'calendar_no_overlap'); END",
    "CREATE TRIGGER reservations_blocked_update
     BEFORE UPDATE OF status, check_in, check_out, property_id ON reservations
     WHEN NEW.status IN ('PENDING', 'CONFIRMED') AND EXISTS (
        SELECT 1 FROM calendar_blocks b
        WHERE b.property_id = NEW.property_id
          AND b.starts_on < NEW.check_out AND NEW.check_in < b.ends_on)
     BEGIN SELECT RAISE(ABORT, 'calendar_no_overlap'); END",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let specific = match manager.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES,
            DatabaseBackend::Sqlite => SQLITE,
            other => {
                return Err(DbErr::Migration(format!(
                    "reservations needs PostgreSQL or SQLite, not {other:?}"
                )));
            }
        };
        for statement in TABLES.iter().chain(specific) {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements: &[&str] = match manager.get_database_backend() {
            DatabaseBackend::Postgres => &[
                "DROP TRIGGER IF EXISTS reservations_calendar_claim ON reservations",
                "DROP FUNCTION IF EXISTS reservations_calendar_claim()",
                "DROP TABLE IF EXISTS calendar_claims",
                "DROP TABLE IF EXISTS calendar_blocks",
                "DROP FUNCTION IF EXISTS calendar_blocks_claim()",
            ],
            _ => &[
                "DROP TRIGGER IF EXISTS reservations_blocked_insert",
                "DROP TRIGGER IF EXISTS reservations_blocked_update",
                "DROP TABLE IF EXISTS calendar_blocks",
            ],
        };
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
