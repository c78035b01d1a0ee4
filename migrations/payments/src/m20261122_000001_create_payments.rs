//! Payments, refunds and processed webhook events.
//!
//! Plain SQL that both backends accept: the tables are simple, and the one rule that matters
//! (one payment per reservation) is a unique constraint on both.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    // No card data, ever: amounts, status, the provider's name and its object id only.
    "CREATE TABLE payments (
        id uuid PRIMARY KEY,
        reservation_id uuid NOT NULL,
        guest_id uuid NOT NULL,
        host_id uuid NOT NULL,
        amount bigint NOT NULL CHECK (amount > 0),
        currency varchar(3) NOT NULL,
        refunded bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount),
        status varchar(24) NOT NULL,
        provider varchar(24) NOT NULL,
        provider_ref varchar(255),
        failure_code varchar(64),
        failure_message varchar(255),
        created_at timestamp with time zone NOT NULL,
        updated_at timestamp with time zone NOT NULL,
        CONSTRAINT payments_reservation_key UNIQUE (reservation_id)
    )",
    "CREATE INDEX payments_provider_ref_idx ON payments (provider_ref)",
    "CREATE INDEX payments_guest_idx ON payments (guest_id)",
    "CREATE TABLE refunds (
        id uuid PRIMARY KEY,
        payment_id uuid NOT NULL REFERENCES payments (id) ON DELETE CASCADE,
        amount bigint NOT NULL CHECK (amount > 0),
        provider_ref varchar(255) NOT NULL,
        created_at timestamp with time zone NOT NULL,
        CONSTRAINT refunds_payment_key UNIQUE (payment_id)
    )",
    // The webhook endpoint inserts the event id first; a duplicate insert means "seen already".
    "CREATE TABLE webhook_events (
        id varchar(255) PRIMARY KEY,
        kind varchar(128) NOT NULL,
        received_at timestamp with time zone NOT NULL
    )",
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
        for table in ["webhook_events", "refunds", "payments"] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        Ok(())
    }
}
