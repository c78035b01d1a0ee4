//! Changes of confirmed stays (`changeReservation`): one row per change a guest (or an admin)
//! asks for, written before any money moves, so every step after it can be finished or undone
//! by the reconciler after a crash, and a retry with the same idempotency key finds it.
//!
//! - `status`: `PENDING` (priced; an extra charge may be in flight), `APPLIED` (the stay has
//!   the new dates, in the same transaction as this row's update and the `reservation.changed`
//!   event) or `FAILED` (the stay was left exactly as it was; `failure_code` says why).
//! - The row's `id` is also the charge id of its extra payment at payments, when the new total
//!   is higher (`to_total > from_total`): `captured` records that it was taken.
//! - `refund_amount`: what a lower total gives back under the policy; `compensation_pending`:
//!   a refund (APPLIED) or a void of the extra charge (FAILED) is still owed.
//!
//! `reservations.policy_check_in` is the check-in the cancellation policy counts notice from:
//! the earliest the stay has had, so moving a stay later and then cancelling cannot turn a
//! late cancellation into an early one. NULL means the stay's own check-in (never changed).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE reservation_changes (
        id uuid PRIMARY KEY,
        reservation_id uuid NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
        requested_by uuid NOT NULL,
        idempotency_key varchar(128) NOT NULL,
        request_fingerprint varchar(64) NOT NULL,
        from_check_in date NOT NULL,
        from_check_out date NOT NULL,
        from_guests integer NOT NULL,
        from_total bigint NOT NULL,
        to_check_in date NOT NULL,
        to_check_out date NOT NULL,
        to_guests integer NOT NULL CHECK (to_guests > 0),
        to_nights integer NOT NULL CHECK (to_nights > 0),
        to_total bigint NOT NULL CHECK (to_total > 0),
        payment_method varchar(255) NOT NULL,
        status varchar(16) NOT NULL,
        failure_code varchar(32),
        payment_id uuid,
        captured boolean NOT NULL DEFAULT false,
        refund_amount bigint CHECK (refund_amount >= 0),
        compensation_pending boolean NOT NULL DEFAULT false,
        created_at timestamp with time zone NOT NULL,
        updated_at timestamp with time zone NOT NULL,
        CHECK (to_check_out > to_check_in),
        CONSTRAINT reservation_changes_key UNIQUE (reservation_id, idempotency_key)
    )",
    "CREATE INDEX reservation_changes_status_idx ON reservation_changes (status, updated_at)",
    "ALTER TABLE reservations ADD COLUMN policy_check_in date",
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
        db.execute_unprepared("DROP TABLE IF EXISTS reservation_changes")
            .await?;
        db.execute_unprepared("ALTER TABLE reservations DROP COLUMN policy_check_in")
            .await?;
        Ok(())
    }
}
