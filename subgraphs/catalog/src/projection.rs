//! The availability projection behind `properties(filter: {availableFrom, availableTo})`.
//!
//! Consumer group `catalog-availability` on the reservation events, read through the shared
//! contract ([`ReservationEvent`]): a confirmation marks the stay's dates booked, a
//! cancellation or failure frees them, a change (`reservation.changed`) moves the booked stay
//! to its new dates. Each row is keyed by reservation and remembers when its event happened,
//! so redelivered or out-of-order events change nothing they should not: the newest event's
//! dates and state win, so a change that arrives after a later cancellation does not book the
//! dates again.
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
    // A change keeps the stay booked; the event's dates are the stay as it is now.
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

/// Records `row`'s state and dates unless a newer event already did. The dates are updated too,
/// since a change moves the stay (every other event of a row carries the dates it already has).
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
                .update_columns([
                    booked_stays::Column::CheckIn,
                    booked_stays::Column::CheckOut,
                    booked_stays::Column::Active,
                    booked_stays::Column::EventAt,
                ])
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

    /// The stay row as date search reads it: (check-in, check-out, active).
    async fn stay(
        db: &DatabaseConnection,
        reservation_id: Uuid,
    ) -> Option<(chrono::NaiveDate, chrono::NaiveDate, bool)> {
        booked_stays::Entity::find_by_id(reservation_id)
            .one(db)
            .await
            .unwrap()
            .map(|row| (row.check_in, row.check_out, row.active))
    }

    fn changed(reservation_id: Uuid, check_in: &str, check_out: &str, minutes: i64) -> Event {
        ReservationEvent {
            check_in: check_in.parse().unwrap(),
            check_out: check_out.parse().unwrap(),
            ..event_fields(reservation_id, ReservationEventKind::Changed, minutes)
        }
        .to_event()
    }

    fn event_fields(
        reservation_id: Uuid,
        kind: ReservationEventKind,
        minutes: i64,
    ) -> ReservationEvent {
        ReservationEvent {
            reservation_id,
            occurred_at: Utc::now() + Duration::minutes(minutes),
            ..draftr_common::testing::reservation_event(kind)
        }
    }

    /// A change moves the booked stay to its new dates and keeps it booked; its redelivery
    /// and older events redelivered late change nothing; a change older than a cancellation
    /// does not book the dates again, whichever order they arrive in.
    async fn a_change_moves_the_booked_stay(backend: Backend) {
        use ReservationEventKind::*;
        let test = TestDatabase::new(backend).await;
        let db = draftr_common::db::connect(&test.settings).await.unwrap();
        crate::app::migrate(&db).await.unwrap();
        let date = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();

        let moved = Uuid::now_v7();
        let confirmed = event(moved, Confirmed, ReservationState::Confirmed, 0);
        apply(&db, &confirmed).await.unwrap();
        assert_eq!(
            stay(&db, moved).await,
            Some((date("2027-03-01"), date("2027-03-04"), true))
        );
        let change = changed(moved, "2027-03-10", "2027-03-12", 1);
        apply(&db, &change).await.unwrap();
        let after_change = Some((date("2027-03-10"), date("2027-03-12"), true));
        assert_eq!(stay(&db, moved).await, after_change, "moved, still booked");
        apply(&db, &change).await.unwrap();
        apply(&db, &confirmed).await.unwrap();
        assert_eq!(
            stay(&db, moved).await,
            after_change,
            "a redelivery and the older confirmation change nothing"
        );
        let second = changed(moved, "2027-04-01", "2027-04-05", 2);
        apply(&db, &second).await.unwrap();
        apply(&db, &change).await.unwrap();
        assert_eq!(
            stay(&db, moved).await,
            Some((date("2027-04-01"), date("2027-04-05"), true)),
            "the newer change wins"
        );
        let cancelled = ReservationEvent {
            check_in: date("2027-04-01"),
            check_out: date("2027-04-05"),
            ..event_fields(moved, Cancelled, 3)
        }
        .to_event();
        apply(&db, &cancelled).await.unwrap();
        apply(&db, &second).await.unwrap();
        assert_eq!(
            stay(&db, moved).await,
            Some((date("2027-04-01"), date("2027-04-05"), false)),
            "a change redelivered after the cancellation does not revive the stay"
        );

        // The cancellation first, then the older change (delivered late).
        let late = Uuid::now_v7();
        apply(&db, &event(late, Cancelled, ReservationState::Cancelled, 5))
            .await
            .unwrap();
        apply(&db, &changed(late, "2027-05-01", "2027-05-03", 4))
            .await
            .unwrap();
        assert_eq!(
            stay(&db, late).await,
            Some((date("2027-03-01"), date("2027-03-04"), false)),
            "the older change lost"
        );

        // A change seen before its confirmation (delivered out of order) books the new dates.
        let early = Uuid::now_v7();
        apply(&db, &changed(early, "2027-06-01", "2027-06-02", 1))
            .await
            .unwrap();
        apply(
            &db,
            &event(early, Confirmed, ReservationState::Confirmed, 0),
        )
        .await
        .unwrap();
        assert_eq!(
            stay(&db, early).await,
            Some((date("2027-06-01"), date("2027-06-02"), true))
        );

        // Breaking the contract is refused, as for every kind.
        let broken = Uuid::now_v7();
        let mut malformed = changed(broken, "2027-07-01", "2027-07-02", 0);
        malformed
            .payload
            .as_object_mut()
            .unwrap()
            .remove("checkOut");
        let err = apply(&db, &malformed).await.unwrap_err();
        assert!(err.to_string().contains("checkOut"), "{err}");
        assert_eq!(stay(&db, broken).await, None, "left for redelivery");
    }

    draftr_common::test_on_both_backends!(a_change_moves_the_booked_stay);

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
