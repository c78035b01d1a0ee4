//! Several payments per reservation, and several refunds per payment.
//!
//! A payment is keyed by its **charge id**: the reservation's id for the booking's own payment
//! (so every existing row keeps its key), a change's id for the extra charge of a change of
//! dates or guests. `reservation_id` stays the reservation the payment belongs to. The old
//! `reservation_id` column becomes `charge_id` (its unique constraint follows it, renamed
//! `payments_charge_key` on PostgreSQL) and a new `reservation_id` is filled from it.
//!
//! A refund is one part of a refund of the reservation under a **refund key** (`cancel` for a
//! cancellation, which is what every refund so far was): at most one per payment and key,
//! `UNIQUE (payment_id, refund_key)` instead of `UNIQUE (payment_id)`. SQLite cannot drop a
//! constraint, so there the refunds table is rebuilt (nothing references it).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE payments RENAME COLUMN reservation_id TO charge_id",
    "ALTER TABLE payments RENAME CONSTRAINT payments_reservation_key TO payments_charge_key",
    "ALTER TABLE payments ADD COLUMN reservation_id uuid",
    "UPDATE payments SET reservation_id = charge_id",
    "ALTER TABLE payments ALTER COLUMN reservation_id SET NOT NULL",
    "CREATE INDEX payments_reservation_idx ON payments (reservation_id)",
    "ALTER TABLE refunds ADD COLUMN refund_key varchar(64) NOT NULL DEFAULT 'cancel'",
    // Every refund from now on names its key.
    "ALTER TABLE refunds ALTER COLUMN refund_key DROP DEFAULT",
    "ALTER TABLE refunds DROP CONSTRAINT refunds_payment_key",
    "ALTER TABLE refunds ADD CONSTRAINT refunds_payment_refund_key UNIQUE (payment_id, refund_key)",
];

const SQLITE_UP: &[&str] = &[
    "ALTER TABLE payments RENAME COLUMN reservation_id TO charge_id",
    // SQLite adds a NOT NULL column only with a default; every row is then given its own value.
    "ALTER TABLE payments ADD COLUMN reservation_id uuid NOT NULL \
        DEFAULT X'00000000000000000000000000000000'",
    "UPDATE payments SET reservation_id = charge_id",
    "CREATE INDEX payments_reservation_idx ON payments (reservation_id)",
    "CREATE TABLE refunds_new (
        id uuid PRIMARY KEY,
        payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
        refund_key varchar(64) NOT NULL,
        amount bigint NOT NULL CHECK (amount > 0),
        provider_ref varchar(255) NOT NULL,
        created_at timestamp with time zone NOT NULL,
        CONSTRAINT refunds_payment_refund_key UNIQUE (payment_id, refund_key)
    )",
    "INSERT INTO refunds_new (id, payment_id, refund_key, amount, provider_ref, created_at)
        SELECT id, payment_id, 'cancel', amount, provider_ref, created_at FROM refunds",
    "DROP TABLE refunds",
    "ALTER TABLE refunds_new RENAME TO refunds",
];

const POSTGRES_DOWN: &[&str] = &[
    "ALTER TABLE refunds DROP CONSTRAINT refunds_payment_refund_key",
    "ALTER TABLE refunds ADD CONSTRAINT refunds_payment_key UNIQUE (payment_id)",
    "ALTER TABLE refunds DROP COLUMN refund_key",
    "DROP INDEX payments_reservation_idx",
    "ALTER TABLE payments DROP COLUMN reservation_id",
    "ALTER TABLE payments RENAME CONSTRAINT payments_charge_key TO payments_reservation_key",
    "ALTER TABLE payments RENAME COLUMN charge_id TO reservation_id",
];

const SQLITE_DOWN: &[&str] = &[
    "CREATE TABLE refunds_old (
        id uuid PRIMARY KEY,
        payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
        amount bigint NOT NULL CHECK (amount > 0),
        provider_ref varchar(255) NOT NULL,
        created_at timestamp with time zone NOT NULL,
        CONSTRAINT refunds_payment_key UNIQUE (payment_id)
    )",
    "INSERT INTO refunds_old (id, payment_id, amount, provider_ref, created_at)
        SELECT id, payment_id, amount, provider_ref, created_at FROM refunds",
    "DROP TABLE refunds",
    "ALTER TABLE refunds_old RENAME TO refunds",
    "DROP INDEX payments_reservation_idx",
    "ALTER TABLE payments DROP COLUMN reservation_id",
    "ALTER TABLE payments RENAME COLUMN charge_id TO reservation_id",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// On SQLite too: all or nothing, and every statement on one connection (a pooled
    /// connection whose cached schema predates the rename would refuse the new
    /// `reservation_id` as a duplicate column).
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let statements = match manager.get_database_backend() {
            DatabaseBackend::Sqlite => SQLITE_UP,
            _ => POSTGRES_UP,
        };
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    /// Only when it loses nothing: no change charges and no refund but cancellations' (the
    /// old schema has room for neither).
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let extra = db
            .query_one_raw(Statement::from_string(
                backend,
                "SELECT (SELECT COUNT(*) FROM payments WHERE charge_id <> reservation_id) \
                    + (SELECT COUNT(*) FROM refunds WHERE refund_key <> 'cancel') AS n",
            ))
            .await?
            .map(|row| row.try_get::<i64>("", "n"))
            .transpose()?
            .unwrap_or(0);
        if extra > 0 {
            return Err(DbErr::Migration(format!(
                "cannot undo payment charges: {extra} change charges or non-cancellation refunds \
                 have no place in the older schema"
            )));
        }
        let statements = match backend {
            DatabaseBackend::Sqlite => SQLITE_DOWN,
            _ => POSTGRES_DOWN,
        };
        for statement in statements {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
