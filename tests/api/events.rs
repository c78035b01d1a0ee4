//! Reservation events: written in the outbox with the state change, relayed to the Redis
//! Stream once, and relayed again if Redis lost its data.

use std::time::{Duration, Instant};

use draftr_common::events::EventBus;
use draftr_common::stream::RedisStreamBus;
use draftr_common::test_on_both_backends;
use draftr_common::testing::{Backend, redis_test_url};
use fred::prelude::*;

use crate::booking::{book, booking, new_listing};
use crate::helpers::{spawn, wait_until};

test_on_both_backends!(
    two_relays_racing_over_one_outbox_publish_every_event_exactly_once,
    confirmed_bookings_reach_the_stream_once_and_survive_redis_losing_its_data,
    date_search_reflects_a_booking_and_its_cancellation_within_seconds,
    an_event_that_breaks_the_contract_stays_pending_and_is_never_acted_on,
);

async fn two_relays_racing_over_one_outbox_publish_every_event_exactly_once(backend: Backend) {
    let app = spawn(backend).await;
    // A second relay replica over the same outbox and stream, relaying as fast as it can.
    let db = draftr_common::db::connect(&app.reservations_db.settings)
        .await
        .unwrap();
    let bus = std::sync::Arc::new(
        RedisStreamBus::connect(
            &redis_test_url(),
            &app.namespace,
            "relay-2",
            Duration::from_secs(30),
        )
        .await
        .unwrap(),
    );
    let second = std::sync::Arc::new(draftr_reservations::relay::Relay::new(db, bus.clone()));
    let racing = {
        let second = second.clone();
        tokio::spawn(async move {
            loop {
                let _ = second.relay_once().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    for i in 0..20 {
        book(
            &app,
            &guest,
            booking(&property, 10 + i, 11 + i, "pm_card_visa"),
        )
        .await
        .ok();
    }
    wait_until("the outbox drained", Duration::from_secs(10), async || {
        crate::booking::reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL",
        )
        .await
            == 0
    })
    .await;
    racing.abort();
    let outbox = crate::booking::reservations_count(&app, "SELECT COUNT(*) AS n FROM outbox").await;
    assert_eq!(outbox, 20);
    assert_eq!(
        bus.len("reservations").await.unwrap(),
        20,
        "none twice, none skipped"
    );
}

/// Ids of published properties free on `[from, to)` (days from today), per catalog's date
/// search (also used by the calendar-block tests).
pub(crate) async fn free_ids(
    app: &crate::helpers::TestApp,
    token: &str,
    from: i64,
    to: i64,
) -> Vec<String> {
    let res = app
        .gql(
            "query($a: Date!, $b: Date!) { properties(first: 100, filter: { availableFrom: $a, availableTo: $b }) { edges { node { id } } } }",
            serde_json::json!({ "a": crate::booking::day(from), "b": crate::booking::day(to) }),
            Some(token),
        )
        .await;
    res.ok()["properties"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn date_search_reflects_a_booking_and_its_cancellation_within_seconds(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let booked_one = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let other = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    assert_eq!(free_ids(&app, &guest, 20, 23).await.len(), 2);

    let res = book(&app, &guest, booking(&booked_one, 20, 23, "pm_card_visa")).await;
    let id = res.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    wait_until(
        "the booking in date search",
        Duration::from_secs(10),
        async || !free_ids(&app, &guest, 21, 22).await.contains(&booked_one),
    )
    .await;
    println!(
        "booking visible in date search after {:?}",
        started.elapsed()
    );
    // Overlap rules are the booking's: the check-out day is free, the other listing too.
    assert!(free_ids(&app, &guest, 23, 25).await.contains(&booked_one));
    assert!(free_ids(&app, &guest, 21, 22).await.contains(&other));

    app.gql(
        "mutation($id: ID!) { cancelReservation(id: $id) { status } }",
        serde_json::json!({ "id": id }),
        Some(&guest),
    )
    .await
    .ok();
    let started = Instant::now();
    wait_until(
        "the cancellation in date search",
        Duration::from_secs(10),
        async || free_ids(&app, &guest, 21, 22).await.contains(&booked_one),
    )
    .await;
    println!(
        "cancellation visible in date search after {:?}",
        started.elapsed()
    );

    let bad = app
        .gql(
            "query($a: Date!) { properties(filter: { availableFrom: $a }) { totalCount } }",
            serde_json::json!({ "a": crate::booking::day(3) }),
            Some(&guest),
        )
        .await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
}

async fn confirmed_bookings_reach_the_stream_once_and_survive_redis_losing_its_data(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let ns = app.namespace.clone();
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let booked = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    let id = booked.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let bus = RedisStreamBus::connect(&redis_test_url(), &ns, "test", Duration::from_secs(30))
        .await
        .unwrap();
    let mut rx = bus.subscribe("reservations", "test").await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("the relay publishes within seconds")
        .unwrap();
    assert_eq!(delivery.event.kind, "reservation.confirmed");
    assert_eq!(delivery.event.payload["reservationId"], id.as_str());
    assert_eq!(delivery.event.payload["propertyTitle"], "Harbour flat");
    assert_eq!(delivery.event.payload["total"]["amount"], 20_000);
    let event_id = delivery.event.id;
    delivery.ack();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bus.len("reservations").await.unwrap(), 1, "published once");

    // Redis loses everything of this deployment (a restart without persistence).
    let redis = Builder::from_config(Config::from_url(&redis_test_url()).unwrap())
        .build()
        .unwrap();
    redis.init().await.unwrap();
    let keys: Vec<String> = redis
        .custom(
            fred::types::CustomCommand::new_static("KEYS", fred::types::ClusterHash::Random, false),
            vec![format!("{ns}:*")],
        )
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: i64 = redis.del(keys).await.unwrap();

    // The relay notices and publishes the recent outbox again; a consumer group made anew
    // receives the confirmation again (consumers are idempotent by event id).
    wait_until(
        "the outbox published again",
        Duration::from_secs(10),
        async || bus.len("reservations").await.unwrap() > 0,
    )
    .await;
    let mut again = bus
        .subscribe("reservations", "after-restart")
        .await
        .unwrap();
    let replayed = tokio::time::timeout(Duration::from_secs(5), again.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replayed.event.id, event_id, "the same event, by id");
    replayed.ack();
}

/// A reservation event without a total (a writer bug, or a hand-made entry) is refused by the
/// typed contract: both consumer groups leave it pending, notifications mails nothing, the date
/// search does not take the dates, and the events after it still flow.
async fn an_event_that_breaks_the_contract_stays_pending_and_is_never_acted_on(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, host_id) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, guest_id) = app.new_user().await;
    let bus = RedisStreamBus::connect(
        &redis_test_url(),
        &app.namespace,
        "test-writer",
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let pending = async || {
        (
            bus.pending("reservations", "notifications")
                .await
                .unwrap_or(0),
            bus.pending("reservations", "catalog-availability")
                .await
                .unwrap_or(0),
        )
    };
    // Both groups exist and are idle once a real booking has been mailed.
    book(&app, &guest, booking(&property, 40, 42, "pm_card_visa"))
        .await
        .ok();
    wait_until(
        "the first booking's two emails",
        Duration::from_secs(20),
        async || app.smtp.messages().len() == 2,
    )
    .await;
    wait_until("nothing pending", Duration::from_secs(10), async || {
        pending().await == (0, 0)
    })
    .await;

    let id = uuid::Uuid::now_v7();
    let payload = serde_json::json!({
        "version": 1,
        "eventId": id,
        "kind": "reservation.confirmed",
        "occurredAt": chrono::Utc::now(),
        "reservationId": uuid::Uuid::now_v7(),
        "propertyId": property,
        "propertyTitle": "Harbour flat",
        "guestId": guest_id,
        "hostId": host_id,
        "checkIn": crate::booking::day(50),
        "checkOut": crate::booking::day(52),
        "nights": 2,
        "refund": null,
        "status": "CONFIRMED",
        "failureCode": null,
    });
    bus.publish(draftr_common::events::Event {
        id,
        topic: "reservations".into(),
        kind: "reservation.confirmed".into(),
        payload,
        occurred_at: chrono::Utc::now(),
    })
    .await
    .unwrap();

    wait_until(
        "the bad event pending in both groups",
        Duration::from_secs(10),
        async || pending().await == (1, 1),
    )
    .await;
    // Redelivered (the groups reclaim it after 2 s idle) and refused again, never acknowledged.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        pending().await,
        (1, 1),
        "a refused event is never acknowledged"
    );
    assert_eq!(app.smtp.messages().len(), 2, "no email from guessed values");
    assert!(
        free_ids(&app, &guest, 50, 52).await.contains(&property),
        "the date search did not take the bad event's dates"
    );

    // What comes after it still flows.
    book(&app, &guest, booking(&property, 60, 62, "pm_card_visa"))
        .await
        .ok();
    wait_until(
        "the next booking's two emails",
        Duration::from_secs(20),
        async || app.smtp.messages().len() == 4,
    )
    .await;
    assert_eq!(pending().await, (1, 1));
}
