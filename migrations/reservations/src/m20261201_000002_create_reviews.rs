//! Reviews of stays: one per reservation, written by its guest after check-out, answered once
//! by the host.
//!
//! "Once" is the database's rule, not the code's: `reviews_reservation_once` (UNIQUE on
//! `reservation_id`) makes a second review of a stay impossible, so of two concurrent
//! `createReview` calls exactly one inserts and the other is told the stay is reviewed.
//!
//! An admin's removal sets `removed_at` instead of deleting the row: the UNIQUE key stays, so
//! a guest cannot post a removed review again, and moderation keeps what it removed. Every
//! read (the property's page of reviews, its rating, `Reservation.review`, `_entities`)
//! leaves removed rows out, and the partial indexes below hold only the rows still shown.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The same on both backends: SQLite accepts the CHECK, the foreign key and partial indexes.
const STATEMENTS: &[&str] = &[
    "CREATE TABLE reviews (
        id uuid PRIMARY KEY,
        reservation_id uuid NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
        property_id uuid NOT NULL,
        guest_id uuid NOT NULL,
        host_id uuid NOT NULL,
        rating smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
        comment varchar(2000) NOT NULL,
        created_at timestamp with time zone NOT NULL,
        reply varchar(2000),
        replied_at timestamp with time zone,
        removed_at timestamp with time zone,
        CONSTRAINT reviews_reservation_once UNIQUE (reservation_id)
    )",
    // `Property.reviews`: newest first by id (UUIDv7, taken when the review is written), the
    // keyset every Draftr connection pages on.
    "CREATE INDEX reviews_property_page_idx ON reviews (property_id, id) WHERE removed_at IS NULL",
    // `Property.rating`: count and sum per property from the index alone.
    "CREATE INDEX reviews_property_rating_idx ON reviews (property_id, rating) WHERE removed_at IS NULL",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DatabaseBackend::Postgres | DatabaseBackend::Sqlite => {}
            other => {
                return Err(DbErr::Migration(format!(
                    "reservations needs PostgreSQL or SQLite, not {other:?}"
                )));
            }
        }
        for statement in STATEMENTS {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE IF EXISTS reviews")
            .await?;
        Ok(())
    }
}
