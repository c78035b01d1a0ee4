//! Reservation events: written in the outbox with the state change, relayed to the Redis
//! Stream once, and relayed again if Redis lost its data.

use std::time::{Duration, Instant};

use draftr_common::events::EventBus;
use draftr_common::stream::RedisStreamBus;
use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use fred::prelude::*;

use crate::booking::{book, booking, new_listing};
use crate::helpers::spawn;

test_on_both_backends!(confirmed_bookings_reach_the_stream_once_and_survive_redis_losing_its_data);

fn redis_url() -> String {
    std::env::var("DRAFTR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
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

    let bus = RedisStreamBus::connect(&redis_url(), &ns, "test", Duration::from_secs(30))
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
    let redis = Builder::from_config(Config::from_url(&redis_url()).unwrap())
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while bus.len("reservations").await.unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "the outbox was not published again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
