//! Authorization attempts: how many were made for a payment, and since when the last one's
//! outcome is unknown. An unknown outcome is settled by looking the authorization up at the
//! provider; these say which key the next attempt gets and when a "not found" can be trusted.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One column per statement: SQLite's ALTER TABLE adds one at a time.
const UP: &[&str] = &[
    "ALTER TABLE payments ADD COLUMN attempts integer NOT NULL DEFAULT 0",
    "ALTER TABLE payments ADD COLUMN attempted_at timestamp with time zone",
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
        for column in ["attempted_at", "attempts"] {
            db.execute_unprepared(&format!("ALTER TABLE payments DROP COLUMN {column}"))
                .await?;
        }
        Ok(())
    }
}
