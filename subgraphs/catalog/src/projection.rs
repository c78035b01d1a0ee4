//! The availability projection behind `properties(filter: {availableFrom, availableTo})`.
//!
//! Consumer group `catalog-availability` on the reservation events, read through the shared
//! contract ([`ReservationEvent`]): a confirmation marks the stay's dates booked, a
//! cancellation or failure frees them. Each row is keyed by reservation and remembers when its
//! event happened, so redelivered or out-of-order events change nothing they should not.
//!
//! Host calendar blocks travel on the same topic ([`CalendarBlockEvent`]): `calendar.blocked`
//! marks the block's nights taken, `calendar.unblocked` frees them. A block is a row like a
//! stay, keyed by the block's id (a UUIDv7 like reservation ids, so the two never collide), so
//! date search leaves a blocked property out exactly as a booked one, and cannot tell which.

use std::future::Future;
use std::sync::Arc;

use draftr_common::events::calendar::{CalendarBlockEvent, CalendarEventKind};
use draftr_common::events::reservation::{ReservationEvent, ReservationEventKind, TOPIC};
use draftr_common::events::{Event, EventBus};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{DatabaseConnection, EntityTrait, Set};

use crate::store::booked_stays;

pub const GROUP: &str = "catalog-availability";

/// Applies one reservation event to the projection. A kind the contract of this build does not
/// define is skipped; an event that breaks the contract is an error, so the consume loop leaves
/// it pending (and logs why) instead of acting on a guess.
pub async fn apply(db: &DatabaseConnection, event: &Event) -> anyhow::Result<()> {
    if let Some(block) = CalendarBlockEvent::from_event(event)? {
        let taken = match block.kind {
            CalendarEventKind::Blocked => true,
            CalendarEventKind::Unblocked => false,
        };
        return upsert(
            db,
            booked_stays::Model {
                reservation_id: block.block_id,
                property_id: block.property_id,
                check_in: block.from,
                check_out: block.to,
                active: taken,
                event_at: event.occurred_at,
            },
        )
        .await;
    }
    let Some(reservation) = ReservationEvent::from_event(event)? else {
        return Ok(());
    };
    let active = match reservation.kind {
        ReservationEventKind::Confirmed | ReservationEventKind::Changed => true,
        ReservationEventKind::Cancelled | ReservationEventKind::Failed => false,
    };
    upsert(
        db,
        booked_stays::Model {
            reservation_id: reservation.reservation_id,
            property_id: reservation.property_id,
            check_in: reservation.check_in,
            check_out: reservation.check_out,
            active,
            event_at: event.occurred_at,
        },
    )
    .await
}

/// Records `row`'s state unless a newer event already did.
async fn upsert(db: &DatabaseConnection, row: booked_stays::Model) -> anyhow::Result<()> {
    let at = row.event_at;
    let row = booked_stays::ActiveModel {
        reservation_id: Set(row.reservation_id),
        property_id: Set(row.property_id),
        check_in: Set(row.check_in),
        check_out: Set(row.check_out),
        active: Set(row.active),
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

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};
    use draftr_common::events::reservation::ReservationState;
    use draftr_common::testing::{Backend, TestDatabase};
    use uuid::Uuid;

    use super::*;

    fn event(
        reservation_id: Uuid,
        kind: ReservationEventKind,
        status: ReservationState,
        minutes: i64,
    ) -> Event {
        ReservationEvent {
            reservation_id,
            occurred_at: Utc::now() + Duration::minutes(minutes),
            status,
            ..draftr_common::testing::reservation_event(kind)
        }
        .to_event()
    }

    async fn active(db: &DatabaseConnection, reservation_id: Uuid) -> Option<bool> {
        booked_stays::Entity::find_by_id(reservation_id)
            .one(db)
            .await
            .unwrap()
            .map(|row| row.active)
    }

    /// Confirmed books the dates, cancelled frees them, an older event redelivered late
    /// changes nothing; unknown kinds are skipped and contract breaches refused.
    async fn reservation_events_book_and_free_dates(backend: Backend) {
        use ReservationEventKind::*;
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();

        let stay = Uuid::now_v7();
        let confirmed = event(stay, Confirmed, ReservationState::Confirmed, 0);
        apply(&db, &confirmed).await.unwrap();
        assert_eq!(active(&db, stay).await, Some(true));
        let cancelled = event(stay, Cancelled, ReservationState::Cancelled, 1);
        apply(&db, &cancelled).await.unwrap();
        assert_eq!(active(&db, stay).await, Some(false));
        apply(&db, &confirmed).await.unwrap();
        assert_eq!(active(&db, stay).await, Some(false), "the older event lost");

        let failed = Uuid::now_v7();
        apply(&db, &event(failed, Failed, ReservationState::Failed, 0))
            .await
            .unwrap();
        assert_eq!(active(&db, failed).await, Some(false));

        let renamed = Uuid::now_v7();
        let mut newer_kind = event(renamed, Confirmed, ReservationState::Confirmed, 0);
        newer_kind.kind = "reservation.renamed".into();
        apply(&db, &newer_kind).await.unwrap();
        assert_eq!(active(&db, renamed).await, None, "skipped");

        let broken = Uuid::now_v7();
        let mut malformed = event(broken, Confirmed, ReservationState::Confirmed, 0);
        malformed.payload.as_object_mut().unwrap().remove("checkIn");
        let err = apply(&db, &malformed).await.unwrap_err();
        assert!(err.to_string().contains("checkIn"), "{err}");
        assert_eq!(active(&db, broken).await, None, "left for redelivery");
    }

    draftr_common::test_on_both_backends!(reservation_events_book_and_free_dates);

    fn block_event(block_id: Uuid, kind: CalendarEventKind, minutes: i64) -> Event {
        CalendarBlockEvent {
            version: CalendarBlockEvent::VERSION,
            event_id: Uuid::now_v7(),
            kind,
            occurred_at: Utc::now() + Duration::minutes(minutes),
            block_id,
            property_id: Uuid::now_v7(),
            host_id: Uuid::now_v7(),
            from: "2027-03-01".parse().unwrap(),
            to: "2027-03-04".parse().unwrap(),
            source: "MANUAL".into(),
        }
        .to_event()
    }

    /// A block takes its nights, an unblock frees them, a late redelivery of the block does
    /// not take them again; a block event breaking the contract is refused.
    async fn block_events_take_and_free_dates(backend: Backend) {
        use CalendarEventKind::*;
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();

        let block = Uuid::now_v7();
        let blocked = block_event(block, Blocked, 0);
        apply(&db, &blocked).await.unwrap();
        assert_eq!(active(&db, block).await, Some(true));
        apply(&db, &block_event(block, Unblocked, 1)).await.unwrap();
        assert_eq!(active(&db, block).await, Some(false));
        apply(&db, &blocked).await.unwrap();
        assert_eq!(
            active(&db, block).await,
            Some(false),
            "the older event lost"
        );

        let broken = Uuid::now_v7();
        let mut malformed = block_event(broken, Blocked, 0);
        malformed.payload.as_object_mut().unwrap().remove("from");
        assert!(apply(&db, &malformed).await.is_err());
        assert_eq!(active(&db, broken).await, None, "left for redelivery");
    }

    draftr_common::test_on_both_backends!(block_events_take_and_free_dates);
}
