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
