//! The availability projection behind `properties(filter: {availableFrom, availableTo})`.
//!
//! Consumer group `catalog-availability` on the reservation events: a confirmation marks the
//! stay's dates booked, a cancellation or failure frees them. Each row is keyed by reservation
//! and remembers when its event happened, so redelivered or out-of-order events change nothing
//! they should not.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use draftr_common::events::{Event, EventBus};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use uuid::Uuid;

use crate::store::booked_stays;

pub const TOPIC: &str = "reservations";
pub const GROUP: &str = "catalog-availability";

/// Applies one reservation event to the projection.
pub async fn apply(db: &DatabaseConnection, event: &Event) -> anyhow::Result<()> {
    let active = match event.kind.as_str() {
        "reservation.confirmed" => true,
        "reservation.cancelled" | "reservation.failed" => false,
        _ => return Ok(()),
    };
    let p = &event.payload;
    let uuid = |k: &str| -> anyhow::Result<Uuid> {
        p[k].as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| anyhow::anyhow!("event without {k}"))
    };
    let date = |k: &str| -> anyhow::Result<NaiveDate> {
        p[k].as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("event without {k}"))
    };
    let at: DateTime<Utc> = event.occurred_at;
    let row = booked_stays::ActiveModel {
        reservation_id: Set(uuid("reservationId")?),
        property_id: Set(uuid("propertyId")?),
        check_in: Set(date("checkIn")?),
        check_out: Set(date("checkOut")?),
        active: Set(active),
        event_at: Set(at),
    };
    booked_stays::Entity::insert(row)
        .on_conflict(
            OnConflict::column(booked_stays::Column::ReservationId)
                .update_columns([booked_stays::Column::Active, booked_stays::Column::EventAt])
                // An older event (redelivered late) never undoes a newer one.
                .action_and_where(
                    Expr::col((booked_stays::Entity, booked_stays::Column::EventAt)).lte(at),
                )
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Consumes until `stop`.
pub async fn run(db: DatabaseConnection, bus: Arc<dyn EventBus>, stop: impl Future<Output = ()>) {
    draftr_common::events::consume(bus, TOPIC, GROUP, stop, |event| {
        let db = db.clone();
        async move { apply(&db, &event).await }
    })
    .await
}
