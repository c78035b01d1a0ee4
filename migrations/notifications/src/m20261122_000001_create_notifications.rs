//! Notifications: one row per email to send, keyed by (event, kind, user).
//!
//! The primary key is derived from the event id, so a redelivered event finds its rows already
//! there and sends nothing twice; the status columns drive sending and retrying.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &[&str] = &[
    "CREATE TABLE notifications (
        id uuid PRIMARY KEY,
        event_id uuid NOT NULL,
        user_id uuid NOT NULL,
        kind varchar(40) NOT NULL,
        recipient varchar(320) NOT NULL,
        subject varchar(200) NOT NULL,
        body_text text NOT NULL,
        body_html text NOT NULL,
        status varchar(16) NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        last_error varchar(500),
        next_attempt_at timestamp with time zone NOT NULL,
        created_at timestamp with time zone NOT NULL,
        sent_at timestamp with time zone
    )",
    "CREATE INDEX notifications_user_idx ON notifications (user_id, id)",
    "CREATE INDEX notifications_due_idx ON notifications (status, next_attempt_at)",
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
            .execute_unprepared("DROP TABLE IF EXISTS notifications")
            .await?;
        Ok(())
    }
}
