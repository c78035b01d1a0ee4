//! Reservations (the booking calendar) and the outbox.
//!
//! The rule this subgraph exists for, "no two active reservations of one property overlap", is
//! enforced by the database on both backends, so no code path (a second replica, the
//! reconciler, a hand-written admin query) can break it:
//! - PostgreSQL: an exclusion constraint over the property and the half-open date range
//!   `[check_in, check_out)` of PENDING and CONFIRMED rows (btree_gist supplies `=` on uuid).
//! - SQLite: triggers that abort the insert or update with the same constraint name. SQLite
//!   runs one writer at a time, so the trigger's check and the write are one serialized step.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLES: &[&str] = &[
    "CREATE TABLE reservations (
        id uuid PRIMARY KEY,
        property_id uuid NOT NULL,
        property_title varchar(200) NOT NULL,
        guest_id uuid NOT NULL,
        host_id uuid NOT NULL,
        check_in date NOT NULL,
        check_out date NOT NULL,
        guests integer NOT NULL CHECK (guests > 0),
        nights integer NOT NULL CHECK (nights > 0),
        total_amount bigint NOT NULL CHECK (total_amount > 0),
        currency varchar(3) NOT NULL,
        cancellation_policy varchar(16) NOT NULL,
        status varchar(16) NOT NULL,
        idempotency_key varchar(128) NOT NULL,
        request_fingerprint varchar(64) NOT NULL,
        payment_method varchar(255) NOT NULL,
        payment_id uuid,
        captured boolean NOT NULL DEFAULT false,
        compensation_pending boolean NOT NULL DEFAULT false,
        refund_amount bigint,
        failure_code varchar(32),
        created_at timestamp with time zone NOT NULL,
        updated_at timestamp with time zone NOT NULL,
        cancelled_at timestamp with time zone,
        CHECK (check_out > check_in),
        CONSTRAINT reservations_idempotency_key UNIQUE (guest_id, idempotency_key)
    )",
    "CREATE INDEX reservations_property_idx ON reservations (property_id, check_in)",
    "CREATE INDEX reservations_guest_idx ON reservations (guest_id, created_at)",
    "CREATE INDEX reservations_host_idx ON reservations (host_id, created_at)",
    "CREATE INDEX reservations_status_idx ON reservations (status, updated_at)",
    // Written in the same transaction as the state change it announces; relayed later.
    "CREATE TABLE outbox (
        id uuid PRIMARY KEY,
        kind varchar(64) NOT NULL,
        aggregate_id uuid NOT NULL,
        payload text NOT NULL,
        created_at timestamp with time zone NOT NULL,
        published_at timestamp with time zone
    )",
    "CREATE INDEX outbox_unpublished_idx ON outbox (published_at, created_at)",
];

const POSTGRES: &[&str] = &[
    // Several services (or parallel test schemas) may migrate at once; CREATE EXTENSION IF NOT
    // EXISTS alone can still collide, so they queue on an advisory lock.
    "SELECT pg_advisory_xact_lock(724001)",
    "CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public",
    "ALTER TABLE reservations ADD CONSTRAINT reservations_no_overlap EXCLUDE USING gist (
        property_id WITH =,
        daterange(check_in, check_out, '[)') WITH &&
    ) WHERE (status IN ('PENDING', 'CONFIRMED'))",
];

const SQLITE: &[&str] = &[
    "CREATE TRIGGER reservations_no_overlap_insert BEFORE INSERT ON reservations
     WHEN NEW.status IN ('PENDING', 'CONFIRMED') AND EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.property_id = NEW.property_id AND r.status IN ('PENDING', 'CONFIRMED')
          AND r.check_in < NEW.check_out AND NEW.check_in < r.check_out)
     BEGIN SELECT RAISE(ABORT, 'reservations_no_overlap'); END",
    "CREATE TRIGGER reservations_no_overlap_update BEFORE UPDATE OF status, check_in, check_out, property_id ON reservations
     WHEN NEW.status IN ('PENDING', 'CONFIRMED') AND EXISTS (
        SELECT 1 FROM reservations r
        WHERE r.id <> NEW.id AND r.property_id = NEW.property_id
          AND r.status IN ('PENDING', 'CONFIRMED')
          AND r.check_in < NEW.check_out AND NEW.check_in < r.check_out)
     BEGIN SELECT RAISE(ABORT, 'reservations_no_overlap'); END",
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
        for table in ["outbox", "reservations"] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        Ok(())
    }
}
