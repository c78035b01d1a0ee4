//! The rules the code leaves to the database, checked on both backends: an overlapping hold
//! and a reused idempotency key are told apart by constraint name, and a status change
//! happens once, with its event.

use draftr_common::events::reservation::{ReservationEvent, ReservationEventKind};
use draftr_common::testing::{Backend, TestDatabase};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, IntoActiveModel};
use uuid::Uuid;

use super::testing::row;
use super::{Change, HoldError, Reservation, insert_hold, outbox, queries, transition};
use crate::domain::FailureCode;

async fn database(backend: Backend) -> (TestDatabase, DatabaseConnection) {
    let test = TestDatabase::new(backend).await;
    let db = draftr_common::db::connect(&test.settings).await.unwrap();
    crate::app::migrate(&db).await.unwrap();
    (test, db)
}

async fn hold(db: &DatabaseConnection, r: &Reservation) -> Result<Reservation, HoldError> {
    insert_hold(db, r.clone().into_active_model().reset_all(), r.property_id).await
}

async fn overlaps_and_reused_keys_are_told_apart(backend: Backend) {
    let (_test, db) = database(backend).await;
    let first = row();
    // (PostgreSQL keeps microseconds, so compare the id.)
    assert_eq!(hold(&db, &first).await.unwrap().id, first.id);

    // Same property, overlapping dates, another guest and key.
    let rival = Reservation {
        id: Uuid::now_v7(),
        guest_id: Uuid::now_v7(),
        idempotency_key: "another-key-0001".into(),
        check_in: "2027-03-03".parse().unwrap(),
        check_out: "2027-03-06".parse().unwrap(),
        ..first.clone()
    };
    assert!(matches!(hold(&db, &rival).await, Err(HoldError::Overlap)));

    // Same guest and key, other dates: the first attempt's.
    let retry = Reservation {
        id: Uuid::now_v7(),
        check_in: "2027-04-01".parse().unwrap(),
        check_out: "2027-04-02".parse().unwrap(),
        ..first.clone()
    };
    assert!(matches!(hold(&db, &retry).await, Err(HoldError::SameKey)));

    // Adjacent stays do not overlap (`[check_in, check_out)`).
    let next = Reservation {
        check_in: first.check_out,
        check_out: "2027-03-05".parse().unwrap(),
        ..rival
    };
    hold(&db, &next).await.unwrap();
}

async fn a_status_changes_once_with_its_event(backend: Backend) {
    let (_test, db) = database(backend).await;
    let held = hold(&db, &row()).await.unwrap();
    let payment_id = Uuid::now_v7();
    let confirm = Change::Confirm {
        payment_id,
        property_id: held.property_id,
    };
    let confirmed = transition(&db, held.id, confirm).await.unwrap().unwrap();
    assert_eq!(confirmed.status, "CONFIRMED");
    assert_eq!(confirmed.payment_id, Some(payment_id));
    assert!(confirmed.updated_at >= held.updated_at);

    // No longer PENDING: neither confirmed again nor failed, and nothing announced.
    assert_eq!(transition(&db, held.id, confirm).await.unwrap(), None);
    let fail = Change::Fail {
        code: FailureCode::HoldExpired,
        compensate: true,
    };
    assert_eq!(transition(&db, held.id, fail).await.unwrap(), None);
    let now = queries::require(&db, held.id).await.unwrap();
    assert_eq!((now.status.as_str(), now.failure_code), ("CONFIRMED", None));
    assert!(!now.compensation_pending);

    let at = chrono::Utc::now();
    let cancel = Change::Cancel { refund: 15_000, at };
    let cancelled = transition(&db, held.id, cancel).await.unwrap().unwrap();
    assert_eq!(cancelled.status, "CANCELLED");
    assert_eq!(cancelled.refund_amount, Some(15_000));
    assert!(cancelled.compensation_pending);
    assert!(cancelled.cancelled_at.is_some());

    let events = outbox::Entity::find().all(&db).await.unwrap();
    let mut kinds: Vec<_> = events
        .iter()
        .map(|row| {
            let envelope = draftr_common::events::Event {
                id: row.id,
                topic: "reservations".into(),
                kind: row.kind.clone(),
                payload: serde_json::from_str(&row.payload).unwrap(),
                occurred_at: row.created_at,
            };
            let event = ReservationEvent::from_event(&envelope).unwrap().unwrap();
            assert_eq!(event.reservation_id, held.id);
            assert_eq!(row.aggregate_id, held.id);
            event.kind
        })
        .collect();
    kinds.sort_by_key(|k| k.as_str());
    assert_eq!(
        kinds,
        [
            ReservationEventKind::Cancelled,
            ReservationEventKind::Confirmed
        ]
    );
}

async fn a_failure_is_recorded_with_its_code(backend: Backend) {
    let (_test, db) = database(backend).await;
    let held = hold(&db, &row()).await.unwrap();
    let fail = Change::Fail {
        code: FailureCode::PaymentUnavailable,
        compensate: true,
    };
    let failed = transition(&db, held.id, fail).await.unwrap().unwrap();
    assert_eq!(failed.status, "FAILED");
    assert_eq!(failed.failure_code.as_deref(), Some("PAYMENT_UNAVAILABLE"));
    assert!(failed.compensation_pending);
    // The dates are free again.
    let again = Reservation {
        id: Uuid::now_v7(),
        idempotency_key: "second-attempt-01".into(),
        ..held
    };
    hold(&db, &again).await.unwrap();
}

draftr_common::test_on_both_backends!(
    overlaps_and_reused_keys_are_told_apart,
    a_status_changes_once_with_its_event,
    a_failure_is_recorded_with_its_code,
);

fn block_of(r: &Reservation, from: &str, to: &str) -> super::blocks::Block {
    super::blocks::Block {
        id: Uuid::now_v7(),
        property_id: r.property_id,
        host_id: r.host_id,
        starts_on: from.parse().unwrap(),
        ends_on: to.parse().unwrap(),
        note: None,
        source: "MANUAL".into(),
        import_id: None,
        external_uid: None,
        created_by: r.host_id,
        created_at: chrono::Utc::now(),
    }
}

/// Inserted without the service's advisory lock or any check of the code's: what the
/// database alone allows.
async fn raw_block(
    db: &DatabaseConnection,
    b: &super::blocks::Block,
) -> Result<(), sea_orm::DbErr> {
    b.clone()
        .into_active_model()
        .reset_all()
        .insert(db)
        .await
        .map(drop)
}

async fn raw_hold(db: &DatabaseConnection, r: &Reservation) -> Result<(), sea_orm::DbErr> {
    r.clone()
        .into_active_model()
        .reset_all()
        .insert(db)
        .await
        .map(drop)
}

/// A block and a live reservation never share a night, whichever comes first and whatever
/// writes them; ended stays and removed blocks free their nights.
async fn blocks_and_live_bookings_exclude_each_other_in_the_database(backend: Backend) {
    use draftr_common::db::violates;
    let (_test, db) = database(backend).await;
    let stay = row(); // 2027-03-01 .. 2027-03-04, PENDING
    raw_hold(&db, &stay).await.unwrap();

    // A block over the stay's nights is refused by name; adjacent ones are not.
    let over = block_of(&stay, "2027-03-03", "2027-03-05");
    let err = raw_block(&db, &over).await.unwrap_err();
    assert!(violates(&err, super::CALENDAR_NO_OVERLAP), "{err}");
    assert!(matches!(
        super::blocks::insert(&db, over.clone()).await,
        Err(super::blocks::BlockError::Overlap)
    ));
    let after = block_of(&stay, "2027-03-04", "2027-03-06");
    raw_block(&db, &after).await.unwrap();
    // Two blocks never overlap either.
    let err = raw_block(&db, &block_of(&stay, "2027-03-05", "2027-03-07"))
        .await
        .unwrap_err();
    assert!(violates(&err, super::CALENDAR_NO_OVERLAP), "{err}");

    // A hold of blocked nights is refused, as an overlap.
    let rival = Reservation {
        id: Uuid::now_v7(),
        guest_id: Uuid::now_v7(),
        idempotency_key: "rival-key-00001".into(),
        check_in: "2027-03-05".parse().unwrap(),
        check_out: "2027-03-08".parse().unwrap(),
        ..stay.clone()
    };
    let err = raw_hold(&db, &rival).await.unwrap_err();
    assert!(violates(&err, super::CALENDAR_NO_OVERLAP), "{err}");
    assert!(matches!(hold(&db, &rival).await, Err(HoldError::Overlap)));
    // A booking over a booking still names the reservations' own constraint.
    let twin = Reservation {
        id: Uuid::now_v7(),
        guest_id: Uuid::now_v7(),
        idempotency_key: "twin-key-000001".into(),
        ..stay.clone()
    };
    let err = raw_hold(&db, &twin).await.unwrap_err();
    assert!(violates(&err, super::NO_OVERLAP), "{err}");

    // Confirming keeps the stay's claim; failing it frees the nights for a block.
    let confirm = Change::Confirm {
        payment_id: Uuid::now_v7(),
        property_id: stay.property_id,
    };
    transition(&db, stay.id, confirm).await.unwrap().unwrap();
    assert!(raw_block(&db, &over).await.is_err(), "still taken");
    let cancel = Change::Cancel {
        refund: 0,
        at: chrono::Utc::now(),
    };
    transition(&db, stay.id, cancel).await.unwrap().unwrap();
    let freed = block_of(&stay, "2027-03-01", "2027-03-04");
    raw_block(&db, &freed).await.unwrap();

    // Removing a block frees its nights for a booking.
    assert!(super::blocks::delete(&db, &after).await.unwrap());
    assert!(!super::blocks::delete(&db, &after).await.unwrap(), "once");
    hold(&db, &rival).await.unwrap();
}

/// 50 writers at once, bypassing the advisory lock: blocks and holds of random overlapping
/// ranges. Whatever wins, no night is ever taken twice.
async fn racing_raw_blocks_and_holds_never_take_a_night_twice(backend: Backend) {
    let (_test, db) = database(backend).await;
    let base = row();
    let day = |n: i64| base.check_in + chrono::Duration::days(n);
    let tasks = (0..50i64).map(|i| {
        let db = db.clone();
        let base = base.clone();
        let (from, to) = (day((i * 7) % 9), day((i * 7) % 9 + 1 + i % 3));
        tokio::spawn(async move {
            if i % 2 == 0 {
                let mut b = block_of(&base, "2027-01-01", "2027-01-02");
                (b.starts_on, b.ends_on) = (from, to);
                raw_block(&db, &b).await.is_ok()
            } else {
                let r = Reservation {
                    id: Uuid::now_v7(),
                    guest_id: Uuid::now_v7(),
                    idempotency_key: format!("race-key-{i:04}"),
                    check_in: from,
                    check_out: to,
                    ..base
                };
                raw_hold(&db, &r).await.is_ok()
            }
        })
    });
    let handles: Vec<_> = tasks.collect();
    let mut won = 0;
    for h in handles {
        won += usize::from(h.await.unwrap());
    }
    assert!(won > 0);
    let mut taken: Vec<_> = super::reservations::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.check_in, r.check_out))
        .chain(
            super::entities::calendar_blocks::Entity::find()
                .all(&db)
                .await
                .unwrap()
                .into_iter()
                .map(|b| (b.starts_on, b.ends_on)),
        )
        .collect();
    assert_eq!(taken.len(), won, "every winner stored");
    taken.sort();
    for pair in taken.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlap: {pair:?}");
    }
}

draftr_common::test_on_both_backends!(
    blocks_and_live_bookings_exclude_each_other_in_the_database,
    racing_raw_blocks_and_holds_never_take_a_night_twice,
);
