//! The availability projection: which dates of which property are booked, as reported by
//! reservation events. Eventually consistent; reservations' exclusion constraint stays the
//! authority on double booking.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE booked_stays (
        reservation_id uuid PRIMARY KEY,
        property_id uuid NOT NULL,
        check_in date NOT NULL,
        check_out date NOT NULL,
        active boolean NOT NULL,
        event_at timestamp with time zone NOT NULL
    )",
    "CREATE INDEX booked_stays_property_idx ON booked_stays (property_id, check_in)",
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
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS booked_stays")
            .await?;
        Ok(())
    }
}
