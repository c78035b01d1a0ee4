//! Changing a confirmed stay through the router (`changeReservation`): the new nights are taken
//! and the old released in one step (so a move by one night, overlapping itself, succeeds),
//! another booking's nights conflict and leave both stays untouched, 50 changes and bookings
//! racing for the same nights never overlap in the database, a longer stay charges exactly the
//! difference and a shorter one refunds what the policy says, a declined card for the
//! difference leaves the stay and its payment exactly as they were, a retry with the same key
//! changes nothing twice, and the guest and the host hear of it once each.

use std::time::Duration;

use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use futures::future::join_all;
use serde_json::{Value, json};

use crate::booking::{OVERLAPS, book, booking, day, new_listing, reservations_count};
use crate::helpers::{Gql, Options, TestApp, spawn, spawn_custom, wait_until};
use crate::smtp::header;
use crate::ws::WsClient;
use draftr_payments::provider::simulated::Stall;

test_on_both_backends!(
    moving_a_stay_by_one_night_overlapping_itself_succeeds_once_and_is_announced,
    a_change_onto_taken_nights_conflicts_and_leaves_both_stays_untouched,
    a_longer_stay_charges_exactly_the_difference_and_a_shorter_one_refunds_by_policy,
    a_declined_card_for_the_difference_leaves_the_stay_and_its_payment_as_they_were,
    fifty_concurrent_changes_and_bookings_of_the_same_nights_never_overlap,
    only_the_guest_or_an_admin_changes_and_bad_input_is_typed_and_stores_nothing,
    a_provider_outage_during_a_change_leaves_the_stay_and_is_settled_once_it_ends,
    a_capture_that_never_answers_after_a_change_is_finished_by_the_reconciler,
);

const CHANGE: &str = "mutation($id: ID!, $i: ChangeReservationInput!) {
  changeReservation(id: $id, input: $i) {
    id status checkIn checkOut nights guests total { amount currency }
    payment { id status amount { amount } }
    payments { purpose status amount { amount } refunded { amount } }
  }
}";

const STAY: &str = "query($id: ID!) { reservation(id: $id) {
  status checkIn checkOut nights guests total { amount }
  payments { id purpose status amount { amount } refunded { amount } }
} }";

async fn change(app: &TestApp, token: &str, id: &str, input: Value) -> Gql {
    app.gql(CHANGE, json!({ "id": id, "i": input }), Some(token))
        .await
}

fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn stay(app: &TestApp, token: &str, id: &str) -> Value {
    app.gql(STAY, json!({ "id": id }), Some(token)).await.ok()["reservation"].clone()
}

async fn booked(app: &TestApp, token: &str, property: &str, from: i64, to: i64) -> String {
    let res = book(app, token, booking(property, from, to, "pm_card_visa")).await;
    let r = &res.ok()["createReservation"];
    assert_eq!(r["status"], "CONFIRMED");
    r["id"].as_str().unwrap().to_owned()
}

async fn available(app: &TestApp, property: &str, from: i64, to: i64) -> bool {
    let res = app
        .gql(
            "query($id: ID!, $a: Date!, $b: Date!) { property(id: $id) { isAvailable(checkIn: $a, checkOut: $b) } }",
            json!({ "id": property, "a": day(from), "b": day(to) }),
            None,
        )
        .await;
    res.ok()["property"]["isAvailable"].as_bool().unwrap()
}

/// The stored row of a reservation, every column.
async fn row_of(app: &TestApp, id: &str) -> String {
    let row = app
        .reservations
        .require(uuid::Uuid::parse_str(id).unwrap())
        .await
        .unwrap();
    format!("{row:?}")
}

async fn moving_a_stay_by_one_night_overlapping_itself_succeeds_once_and_is_announced(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let (host_email, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (guest_email, guest, _, _) = app.new_user().await;
    let id = booked(&app, &guest, &property, 20, 23).await;
    wait_until(
        "the booking's two emails",
        Duration::from_secs(15),
        async || app.smtp.messages().len() >= 2,
    )
    .await;

    let watch = "subscription($id: ID!) { reservationStatusChanged(reservationId: $id) { reservationId status } }";
    let mut watcher = WsClient::connect(&app.notifications_ws, Some(&guest))
        .await
        .unwrap();
    watcher.subscribe("1", watch, json!({ "id": id })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts = app.provider.counts();

    // One night later: nights 21 and 22 are the stay's own, night 23 is new.
    let input = json!({ "checkIn": day(21), "checkOut": day(24), "idempotencyKey": key() });
    let res = change(&app, &guest, &id, input.clone()).await;
    let r = &res.ok()["changeReservation"];
    assert_eq!(r["status"], "CONFIRMED");
    assert_eq!(
        (r["checkIn"].as_str(), r["checkOut"].as_str()),
        (Some(day(21).as_str()), Some(day(24).as_str()))
    );
    assert_eq!(r["nights"], 3);
    assert_eq!(
        r["total"]["amount"], 30_000,
        "same price: nothing charged or refunded"
    );
    assert_eq!(r["payments"].as_array().unwrap().len(), 1);
    assert_eq!(r["payments"][0]["purpose"], "BOOKING");
    assert_eq!(app.provider.counts(), counts, "no money moved");

    assert!(
        available(&app, &property, 20, 21).await,
        "the old first night is free"
    );
    assert!(
        !available(&app, &property, 23, 24).await,
        "the new last night is taken"
    );
    assert_eq!(reservations_count(&app, OVERLAPS).await, 0);

    // The same key again: the same answer, nothing changed twice, one event.
    let again = change(&app, &guest, &id, input.clone()).await;
    assert_eq!(again.ok()["changeReservation"]["checkIn"], day(21));
    // Two copies of one request at once (a client retrying before the first answer), for a
    // longer stay so both copies go through the authorization: both get the changed stay, it
    // changes once, and the difference is charged once.
    let before = app.provider.counts();
    let twice = json!({ "checkIn": day(22), "checkOut": day(26), "idempotencyKey": key() });
    let (a, b) = futures::join!(
        change(&app, &guest, &id, twice.clone()),
        change(&app, &guest, &id, twice.clone())
    );
    for res in [&a, &b] {
        let r = &res.ok()["changeReservation"];
        assert_eq!(
            (r["checkIn"].as_str(), &r["total"]["amount"]),
            (Some(day(22).as_str()), &json!(40_000)),
            "{}",
            res.body
        );
    }
    let after = app.provider.counts();
    assert_eq!(
        (
            after.authorizations - before.authorizations,
            after.captures - before.captures
        ),
        (1, 1),
        "the difference charged once"
    );
    // And back, so the rest of the test sees the stay where the first change put it.
    change(
        &app,
        &guest,
        &id,
        json!({ "checkIn": day(21), "checkOut": day(24), "idempotencyKey": key() }),
    )
    .await
    .ok();
    let other = change(
        &app,
        &guest,
        &id,
        json!({ "checkIn": day(22), "checkOut": day(25), "idempotencyKey": input["idempotencyKey"] }),
    )
    .await;
    assert_eq!(other.code(), "BAD_USER_INPUT", "{}", other.body);
    assert_eq!(
        other.body["errors"][0]["extensions"]["field"],
        "idempotencyKey"
    );
    assert_eq!(stay(&app, &guest, &id).await["checkIn"], day(21));
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'reservation.changed'"
        )
        .await,
        3,
        "the first change, the doubled one once, and the move back"
    );
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM reservation_changes").await,
        3
    );

    // The guest's subscriber sees it; the guest and the host get one email each.
    let pushed = watcher
        .next_result(Duration::from_secs(10))
        .await
        .expect("the change pushed");
    assert_eq!(
        pushed["data"]["reservationStatusChanged"]["reservationId"],
        id.as_str()
    );
    assert_eq!(
        pushed["data"]["reservationStatusChanged"]["status"],
        "CONFIRMED"
    );
    // Three changes (the first, the doubled one, the move back): one email to each side per
    // change, no more.
    wait_until("six change emails", Duration::from_secs(15), async || {
        app.smtp.messages().len() >= 8
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let messages = app.smtp.messages();
    assert_eq!(
        messages.len(),
        8,
        "one change email each per change, no more"
    );
    for (who, address) in [("guest", &guest_email), ("host", &host_email)] {
        let mine: Vec<&String> = messages
            .iter()
            .filter(|m| header(m, "To").is_some_and(|t| t.contains(address.as_str())))
            .filter(|m| header(m, "Subject").is_some_and(|s| s.contains("changed")))
            .collect();
        assert_eq!(mine.len(), 3, "{who}: {mine:?}");
        assert!(
            mine.iter()
                .any(|m| m.contains(&day(21)) && m.contains(&day(24))),
            "{who}: the first change's new dates"
        );
    }
}

async fn a_change_onto_taken_nights_conflicts_and_leaves_both_stays_untouched(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, alice, _, _) = app.new_user().await;
    let (_, bob, _, _) = app.new_user().await;
    let a = booked(&app, &alice, &property, 20, 23).await;
    let b = booked(&app, &bob, &property, 25, 28).await;
    let before = (row_of(&app, &a).await, row_of(&app, &b).await);
    let counts = app.provider.counts();

    // Onto one of Bob's nights, and over a host's block.
    let res = change(
        &app,
        &alice,
        &a,
        json!({ "checkIn": day(24), "checkOut": day(26), "idempotencyKey": key() }),
    )
    .await;
    assert_eq!(res.code(), "BOOKING_CONFLICT", "{}", res.body);
    app.gql(
        "mutation($i: BlockDatesInput!) { blockDates(input: $i) { id } }",
        json!({ "i": { "propertyId": property, "from": day(23), "to": day(24) } }),
        Some(&host),
    )
    .await
    .ok();
    let res = change(
        &app,
        &alice,
        &a,
        json!({ "checkOut": day(24), "idempotencyKey": key() }),
    )
    .await;
    assert_eq!(res.code(), "BOOKING_CONFLICT", "{}", res.body);

    assert_eq!((row_of(&app, &a).await, row_of(&app, &b).await), before);
    assert_eq!(
        app.provider.counts(),
        counts,
        "a conflict found first costs no authorization"
    );
    assert!(!available(&app, &property, 20, 21).await && !available(&app, &property, 27, 28).await);
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'reservation.changed'"
        )
        .await,
        0
    );
}

async fn a_longer_stay_charges_exactly_the_difference_and_a_shorter_one_refunds_by_policy(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let (_, guest, _, _) = app.new_user().await;

    // FLEXIBLE, far out: a longer stay charges the two extra nights, exactly.
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let id = booked(&app, &guest, &property, 30, 32).await;
    let counts = app.provider.counts();
    let res = change(
        &app,
        &guest,
        &id,
        json!({ "checkOut": day(34), "idempotencyKey": key() }),
    )
    .await;
    let r = &res.ok()["changeReservation"];
    assert_eq!(r["total"]["amount"], 40_000);
    assert_eq!(r["nights"], 4);
    let now = app.provider.counts();
    assert_eq!(
        (
            now.authorizations - counts.authorizations,
            now.captures - counts.captures,
            now.refunds - counts.refunds,
            now.cancels - counts.cancels
        ),
        (1, 1, 0, 0),
        "one authorization and one capture, of the difference"
    );
    let payments = r["payments"].as_array().unwrap();
    assert_eq!(payments.len(), 2);
    assert_eq!(
        (
            &payments[0]["purpose"],
            &payments[0]["amount"]["amount"],
            &payments[0]["status"]
        ),
        (&json!("BOOKING"), &json!(20_000), &json!("CAPTURED"))
    );
    assert_eq!(
        (
            &payments[1]["purpose"],
            &payments[1]["amount"]["amount"],
            &payments[1]["status"]
        ),
        (&json!("CHANGE"), &json!(20_000), &json!("CAPTURED"))
    );
    assert_eq!(
        r["payment"]["amount"]["amount"], 20_000,
        "`payment` stays the booking's own"
    );

    // Back to one night, FLEXIBLE far out: all 30 000 of the difference comes back, newest
    // payment first.
    let res = change(
        &app,
        &guest,
        &id,
        json!({ "checkOut": day(31), "idempotencyKey": key() }),
    )
    .await;
    let r = &res.ok()["changeReservation"];
    assert_eq!(r["total"]["amount"], 10_000);
    let refunded: i64 = r["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["refunded"]["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(refunded, 30_000);
    assert_eq!(
        r["payments"][1]["refunded"]["amount"], 20_000,
        "the change's charge first"
    );
    assert_eq!(r["payments"][1]["status"], "REFUNDED");
    assert_eq!(r["payments"][0]["refunded"]["amount"], 10_000);

    // MODERATE, two days out: half of the difference comes back, and a later cancellation
    // refunds half of the new total.
    let moderate = new_listing(&app, &host, 10_000, "MODERATE").await;
    let id = booked(&app, &guest, &moderate, 2, 5).await;
    let res = change(
        &app,
        &guest,
        &id,
        json!({ "checkOut": day(4), "idempotencyKey": key() }),
    )
    .await;
    let r = &res.ok()["changeReservation"];
    assert_eq!(r["total"]["amount"], 20_000);
    assert_eq!(
        r["payments"][0]["refunded"]["amount"], 5_000,
        "50% of the 10 000 difference"
    );
    let cancelled = app
        .gql(
            "mutation($id: ID!) { cancelReservation(id: $id) { status refund { amount } payments { refunded { amount } } } }",
            json!({ "id": id }),
            Some(&guest),
        )
        .await;
    let c = &cancelled.ok()["cancelReservation"];
    assert_eq!(c["refund"]["amount"], 10_000, "50% of the new total");
    assert_eq!(c["payments"][0]["refunded"]["amount"], 15_000);

    // Moving a stay later does not buy a longer notice: STRICT, four days out, moved to 20
    // days out and then cancelled, refunds what four days' notice gives (nothing).
    let strict = new_listing(&app, &host, 10_000, "STRICT").await;
    let id = booked(&app, &guest, &strict, 4, 6).await;
    change(
        &app,
        &guest,
        &id,
        json!({ "checkIn": day(20), "checkOut": day(22), "idempotencyKey": key() }),
    )
    .await
    .ok();
    let cancelled = app
        .gql(
            "mutation($id: ID!) { cancelReservation(id: $id) { refund { amount } } }",
            json!({ "id": id }),
            Some(&guest),
        )
        .await;
    assert_eq!(cancelled.ok()["cancelReservation"]["refund"]["amount"], 0);
}

async fn a_declined_card_for_the_difference_leaves_the_stay_and_its_payment_as_they_were(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let id = booked(&app, &guest, &property, 40, 42).await;
    let row = row_of(&app, &id).await;
    let seen = stay(&app, &guest, &id).await;
    let counts = app.provider.counts();

    let input = json!({ "checkOut": day(44), "paymentMethod": "pm_card_chargeDeclined", "idempotencyKey": key() });
    let res = change(&app, &guest, &id, input.clone()).await;
    assert_eq!(res.code(), "PAYMENT_DECLINED", "{}", res.body);
    assert_eq!(
        row_of(&app, &id).await,
        row,
        "the stored stay is exactly as it was"
    );
    let now = stay(&app, &guest, &id).await;
    assert_eq!(now["payments"][0], seen["payments"][0], "its payment too");
    assert_eq!(
        now["payments"].as_array().unwrap().len(),
        2,
        "the declined attempt is listed"
    );
    assert_eq!(now["payments"][1]["status"], "FAILED");
    assert!(
        available(&app, &property, 42, 44).await,
        "the extra nights stay free"
    );
    let after = app.provider.counts();
    assert_eq!(after.declines - counts.declines, 1);
    assert_eq!(
        (after.captures, after.cancels, after.refunds),
        (counts.captures, counts.cancels, counts.refunds)
    );

    // Retrying the same key answers the same, without asking the provider again.
    let again = change(&app, &guest, &id, input).await;
    assert_eq!(again.code(), "PAYMENT_DECLINED");
    assert_eq!(app.provider.counts(), after);
    // Another card, with a new key, goes through.
    let res = change(&app, &guest, &id, json!({ "checkOut": day(44), "paymentMethod": "pm_card_mastercard", "idempotencyKey": key() })).await;
    assert_eq!(res.ok()["changeReservation"]["total"]["amount"], 40_000);
}

async fn fifty_concurrent_changes_and_bookings_of_the_same_nights_never_overlap(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    // 25 one-night stays far apart, each of which will try to move onto nights 60–62.
    let mut stays = Vec::new();
    for i in 0..25 {
        let (_, guest, _, _) = app.new_user().await;
        let id = booked(&app, &guest, &property, 70 + 3 * i, 71 + 3 * i).await;
        stays.push((guest, id, 70 + 3 * i));
    }
    let (_, newcomer, _, _) = app.new_user().await;
    let counts = app.provider.counts();

    // Every request is in flight at once (the router and the subgraphs serve them in
    // parallel); the test's own futures only wait.
    let app_ref = &app;
    let property = property.as_str();
    let newcomer = newcomer.as_str();
    let changes = stays.iter().enumerate().map(|(n, (guest, id, _))| {
        let shift = (n % 3) as i64;
        async move {
            let input = json!({ "checkIn": day(60 + shift), "checkOut": day(62 + shift), "idempotencyKey": key() });
            (true, change(app_ref, guest, id, input).await.code().to_owned())
        }
    });
    let bookings = (0..25).map(|n| {
        let shift = (n % 3) as i64;
        async move {
            let input = booking(property, 60 + shift, 62 + shift, "pm_card_visa");
            (
                false,
                book(app_ref, newcomer, input).await.code().to_owned(),
            )
        }
    });
    let (changed, booked) = futures::join!(join_all(changes), join_all(bookings));
    let results: Vec<(bool, String)> = changed.into_iter().chain(booked).collect();
    assert_eq!(results.len(), 50);
    for (is_change, code) in &results {
        assert!(
            code.is_empty() || code == "BOOKING_CONFLICT",
            "change {is_change}: {code}"
        );
    }
    let won = results.iter().filter(|(_, c)| c.is_empty()).count();
    assert!(
        (1..=2).contains(&won),
        "nights 60–63 fit one or two of these stays, got {won}"
    );
    assert_eq!(reservations_count(&app, OVERLAPS).await, 0);

    // Every stay whose change lost is where it was; every one that won moved.
    let mut moved = 0;
    for (guest, id, from) in &stays {
        let s = stay(&app, guest, id).await;
        if s["checkIn"] == day(*from) {
            assert_eq!(s["total"]["amount"], 10_000);
            assert_eq!(
                s["payments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|p| p["status"] == "CAPTURED")
                    .count(),
                1
            );
        } else {
            moved += 1;
            assert_eq!(s["total"]["amount"], 20_000);
        }
    }
    let changes_won = results
        .iter()
        .filter(|(c, code)| *c && code.is_empty())
        .count();
    assert_eq!(moved, changes_won);

    // Every authorization made is either captured (a win) or voided (lost at the database).
    wait_until(
        "losers' authorizations voided",
        Duration::from_secs(15),
        async || {
            let now = app.provider.counts();
            now.authorizations - counts.authorizations
                == (now.captures - counts.captures) + (now.cancels - counts.cancels)
        },
    )
    .await;
    let now = app.provider.counts();
    assert_eq!(now.captures - counts.captures, won as u64);
    assert_eq!(now.refunds, counts.refunds);
}

async fn only_the_guest_or_an_admin_changes_and_bad_input_is_typed_and_stores_nothing(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let (_, stranger, _, _) = app.new_user().await;
    let id = booked(&app, &guest, &property, 20, 23).await;
    let row = row_of(&app, &id).await;
    let move_by_one =
        || json!({ "checkIn": day(21), "checkOut": day(24), "idempotencyKey": key() });

    assert_eq!(
        change(&app, &host, &id, move_by_one()).await.code(),
        "FORBIDDEN"
    );
    assert_eq!(
        change(&app, &stranger, &id, move_by_one()).await.code(),
        "NOT_FOUND"
    );
    let anonymous = app
        .gql(CHANGE, json!({ "id": id, "i": move_by_one() }), None)
        .await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");

    let cases = [
        ("nothing asked", json!({ "idempotencyKey": key() }), "input"),
        (
            "the same stay",
            json!({ "checkIn": day(20), "idempotencyKey": key() }),
            "input",
        ),
        (
            "backwards",
            json!({ "checkOut": day(19), "idempotencyKey": key() }),
            "checkOut",
        ),
        (
            "in the past",
            json!({ "checkIn": day(-1), "idempotencyKey": key() }),
            "checkIn",
        ),
        (
            "too many guests",
            json!({ "guests": 5, "idempotencyKey": key() }),
            "guests",
        ),
        (
            "no guests",
            json!({ "guests": 0, "idempotencyKey": key() }),
            "guests",
        ),
        (
            "a card number",
            json!({ "checkOut": day(24), "paymentMethod": "4242424242424242", "idempotencyKey": key() }),
            "paymentMethod",
        ),
        (
            "a short key",
            json!({ "checkOut": day(24), "idempotencyKey": "k" }),
            "idempotencyKey",
        ),
    ];
    for (what, input, field) in cases {
        let r = change(&app, &guest, &id, input).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{what}: {}", r.body);
        assert_eq!(
            r.body["errors"][0]["extensions"]["field"], field,
            "{what}: {}",
            r.body
        );
    }
    let unknown = change(
        &app,
        &guest,
        &uuid::Uuid::now_v7().to_string(),
        move_by_one(),
    )
    .await;
    assert_eq!(unknown.code(), "NOT_FOUND");
    assert_eq!(row_of(&app, &id).await, row);
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM reservation_changes").await,
        0
    );

    // An admin may change it; a cancelled stay cannot be changed.
    let (_, admin) = app.new_admin().await;
    change(&app, &admin, &id, move_by_one()).await.ok();
    app.gql(
        "mutation($id: ID!) { cancelReservation(id: $id) { status } }",
        json!({ "id": id }),
        Some(&guest),
    )
    .await
    .ok();
    let r = change(&app, &guest, &id, move_by_one()).await;
    assert_eq!(r.code(), "BAD_USER_INPUT");
    assert_eq!(r.body["errors"][0]["extensions"]["field"], "id");
}

/// Runs reconciler passes until `sql` counts 0, or gives up after about 5 s; the last count.
async fn reconcile_until_none(app: &TestApp, sql: &str) -> i64 {
    let mut left = reservations_count(app, sql).await;
    for _ in 0..50 {
        if left == 0 {
            break;
        }
        draftr_reservations::reconciler::reconcile(&app.reservations)
            .await
            .unwrap();
        left = reservations_count(app, sql).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    left
}

async fn a_provider_outage_during_a_change_leaves_the_stay_and_is_settled_once_it_ends(
    backend: Backend,
) {
    let app = spawn_custom(
        backend,
        Options::default().reservations(|s| s.calls.breaker_open_ms = 200),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let id = booked(&app, &guest, &property, 20, 22).await;
    let row = row_of(&app, &id).await;
    let counts = app.provider.counts();

    app.provider.set_outage(true);
    let input = json!({ "checkOut": day(24), "idempotencyKey": key() });
    let res = change(&app, &guest, &id, input.clone()).await;
    assert_eq!(res.code(), "PAYMENT_UNAVAILABLE", "{}", res.body);
    assert_eq!(
        row_of(&app, &id).await,
        row,
        "the stay is exactly as it was"
    );
    assert!(available(&app, &property, 22, 24).await);
    // While it is down, the possible charge stays to be voided.
    draftr_reservations::reconciler::reconcile(&app.reservations)
        .await
        .unwrap();
    const OWED: &str = "SELECT COUNT(*) AS n FROM reservation_changes WHERE compensation_pending";
    assert_eq!(reservations_count(&app, OWED).await, 1);

    app.provider.set_outage(false);
    assert_eq!(
        reconcile_until_none(&app, OWED).await,
        0,
        "settled once payments answers"
    );
    let now = app.provider.counts();
    assert_eq!(
        (now.authorizations, now.captures, now.cancels),
        (counts.authorizations, counts.captures, counts.cancels),
        "the outage refused the authorization: nothing to undo, nothing charged"
    );
    // A retry of the same key answers as the first attempt ended; a new key goes through.
    let again = change(&app, &guest, &id, input).await;
    assert_eq!(again.code(), "PAYMENT_UNAVAILABLE");
    assert_eq!(row_of(&app, &id).await, row);
    let res = change(
        &app,
        &guest,
        &id,
        json!({ "checkOut": day(24), "idempotencyKey": key() }),
    )
    .await;
    assert_eq!(res.ok()["changeReservation"]["total"]["amount"], 40_000);
}

async fn a_capture_that_never_answers_after_a_change_is_finished_by_the_reconciler(
    backend: Backend,
) {
    let app = spawn_custom(
        backend,
        Options::default().reservations(|s| {
            s.calls.timeout_ms = 300;
            s.calls.attempts = 1;
        }),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let id = booked(&app, &guest, &property, 20, 22).await;
    let counts = app.provider.counts();

    // The difference is authorized and the change applied; its capture hangs. The change
    // stands (the guest is told so), and the capture is left to the reconciler.
    app.provider.stall(Stall::BeforeCapture, true);
    let res = change(
        &app,
        &guest,
        &id,
        json!({ "checkOut": day(23), "idempotencyKey": key() }),
    )
    .await;
    let r = &res.ok()["changeReservation"];
    assert_eq!(r["total"]["amount"], 30_000);
    assert_eq!(r["checkOut"], day(23));
    const UNCAPTURED: &str = "SELECT COUNT(*) AS n FROM reservation_changes WHERE status = 'APPLIED' AND payment_id IS NOT NULL AND NOT captured";
    assert_eq!(reservations_count(&app, UNCAPTURED).await, 1);

    app.provider.stall(Stall::BeforeCapture, false);
    assert_eq!(reconcile_until_none(&app, UNCAPTURED).await, 0);
    let now = app.provider.counts();
    assert_eq!(now.authorizations - counts.authorizations, 1);
    assert_eq!(
        now.captures - counts.captures,
        1,
        "captured once, by the reconciler"
    );
    let s = stay(&app, &guest, &id).await;
    assert_eq!(s["payments"][1]["status"], "CAPTURED");
    assert_eq!(s["payments"][1]["amount"]["amount"], 10_000);
}
