//! Booking through the router: prices from catalog, no double booking under real concurrency,
//! declines, idempotent retries, cancellation refunds per policy, and who sees what.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Duration, Utc};
use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Gql, TestApp, spawn};

test_on_both_backends!(
    a_booking_through_the_router_resolves_property_guest_and_payment,
    a_hundred_concurrent_bookings_of_the_same_dates_confirm_exactly_one,
    randomised_overlapping_bookings_never_overlap_and_every_success_is_stored,
    back_to_back_stays_both_succeed_and_an_overlap_conflicts,
    a_declined_card_fails_the_booking_and_frees_the_dates_at_once,
    a_retry_with_the_same_key_returns_the_same_reservation_and_charges_once,
    cancellation_refunds_exactly_what_the_policy_gives_back,
    guests_hosts_admins_and_strangers_see_what_they_should,
    bad_booking_input_is_bad_user_input_and_stores_nothing,
    availability_and_booked_ranges_come_from_reservations,
);

pub const BOOK: &str = "mutation($i: CreateReservationInput!) {
  createReservation(input: $i) { id status nights checkIn checkOut total { amount currency } }
}";

/// `n` days from today (UTC), as the API writes dates.
pub fn day(n: i64) -> String {
    (Utc::now().date_naive() + Duration::days(n))
        .format("%Y-%m-%d")
        .to_string()
}

/// A published listing by `host_token`; returns its id.
pub async fn new_listing(app: &TestApp, host_token: &str, rate: i64, policy: &str) -> String {
    let res = app
        .gql(
            "mutation($i: CreatePropertyInput!) { createProperty(input: $i) { id status } }",
            json!({ "i": {
                "title": "Harbour flat",
                "description": "Bright flat over the old harbour",
                "address": { "line1": "3 Quay Street", "city": "Marseille", "country": "FR" },
                "nightlyRate": { "amount": rate, "currency": "EUR" },
                "maxGuests": 4,
                "bedrooms": 2,
                "amenities": ["wifi"],
                "cancellationPolicy": policy,
                "status": "PUBLISHED",
            }}),
            Some(host_token),
        )
        .await;
    let p = &res.ok()["createProperty"];
    assert_eq!(p["status"], "PUBLISHED");
    p["id"].as_str().unwrap().to_owned()
}

pub fn booking(property: &str, from: i64, to: i64, pm: &str) -> Value {
    json!({
        "propertyId": property,
        "checkIn": day(from),
        "checkOut": day(to),
        "guests": 2,
        "paymentMethod": pm,
        "idempotencyKey": uuid::Uuid::new_v4().to_string(),
    })
}

pub async fn book(app: &TestApp, token: &str, input: Value) -> Gql {
    app.gql(BOOK, json!({ "i": input }), Some(token)).await
}

/// A number read from the reservations database.
pub async fn reservations_count(app: &TestApp, sql: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = draftr_common::db::connect(&app.reservations_db.settings)
        .await
        .unwrap();
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Pairs of active reservations of one property whose dates overlap: must always be 0.
pub const OVERLAPS: &str = "SELECT COUNT(*) AS n FROM reservations a JOIN reservations b
  ON a.property_id = b.property_id AND a.id < b.id
  WHERE a.status IN ('PENDING', 'CONFIRMED') AND b.status IN ('PENDING', 'CONFIRMED')
    AND a.check_in < b.check_out AND b.check_in < a.check_out";

async fn a_booking_through_the_router_resolves_property_guest_and_payment(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 12_500, "MODERATE").await;
    let (guest_email, guest, _, _) = app.new_user().await;

    let res = app
        .gql(
            "mutation($i: CreateReservationInput!) { createReservation(input: $i) {
                id status nights total { amount currency }
                property { title host { displayName } isAvailable(checkIn: $ci, checkOut: $co) }
                guest { email }
                payment { status amount { amount currency } refunded { amount } provider }
            } }"
            .replace("$ci", &format!("\"{}\"", day(10)))
            .replace("$co", &format!("\"{}\"", day(13)))
            .as_str(),
            json!({ "i": booking(&property, 10, 13, "pm_card_visa") }),
            Some(&guest),
        )
        .await;
    let r = &res.ok()["createReservation"];
    assert_eq!(r["status"], "CONFIRMED");
    assert_eq!(r["nights"], 3);
    assert_eq!(r["total"], json!({ "amount": 37_500, "currency": "EUR" }));
    assert_eq!(r["property"]["title"], "Harbour flat");
    assert_eq!(r["property"]["host"]["displayName"], "Test User");
    assert_eq!(r["property"]["isAvailable"], false);
    assert_eq!(r["guest"]["email"], guest_email);
    assert_eq!(r["payment"]["status"], "CAPTURED");
    assert_eq!(r["payment"]["amount"]["amount"], 37_500);
    assert_eq!(r["payment"]["refunded"]["amount"], 0);
    assert_eq!(r["payment"]["provider"], "simulated");
    let counts = app.provider.counts();
    assert_eq!((counts.authorizations, counts.captures), (1, 1));

    // User.reservations comes from reservations, joined to auth's `me` by the router.
    let mine = app
        .gql(
            "{ me { email reservations { totalCount edges { node { id status property { title } } } } } }",
            json!({}),
            Some(&guest),
        )
        .await;
    let me = &mine.ok()["me"];
    assert_eq!(me["email"], guest_email);
    assert_eq!(me["reservations"]["totalCount"], 1);
    assert_eq!(me["reservations"]["edges"][0]["node"]["id"], r["id"]);
    assert_eq!(
        me["reservations"]["edges"][0]["node"]["property"]["title"],
        "Harbour flat"
    );

    // The outbox has the confirmation, written with the state change.
    let events = reservations_count(
        &app,
        "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'reservation.confirmed'",
    )
    .await;
    assert_eq!(events, 1);
}

async fn a_hundred_concurrent_bookings_of_the_same_dates_confirm_exactly_one(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 9_900, "FLEXIBLE").await;
    let mut guests = Vec::new();
    for _ in 0..10 {
        guests.push(app.new_user().await.1);
    }

    // 100 requests, released together: 10 guests × 10 attempts, each with its own key.
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks = (0..100).map(|i| {
        let app = &app;
        let token = guests[i % 10].clone();
        let input = booking(&property, 20, 24, "pm_card_visa");
        let barrier = barrier.clone();
        async move {
            barrier.wait().await;
            book(app, &token, input).await
        }
    });
    let results: Vec<Gql> = join_all(tasks).await;

    let confirmed: Vec<_> = results
        .iter()
        .filter(|r| r.data()["createReservation"]["status"] == "CONFIRMED")
        .collect();
    let conflicts = results
        .iter()
        .filter(|r| r.code() == "BOOKING_CONFLICT")
        .count();
    assert_eq!(confirmed.len(), 1, "exactly one booking wins");
    assert_eq!(conflicts, 99, "every other one is a BOOKING_CONFLICT");
    let counts = app.provider.counts();
    assert_eq!(counts.authorizations, 1, "losers never touch a card");
    assert_eq!(counts.captures, 1);
    assert_eq!(reservations_count(&app, OVERLAPS).await, 0);
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM reservations").await,
        1,
        "losers leave no row behind"
    );
}

async fn randomised_overlapping_bookings_never_overlap_and_every_success_is_stored(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let mut properties = Vec::new();
    for _ in 0..3 {
        properties.push(new_listing(&app, &host, 10_000, "FLEXIBLE").await);
    }
    let mut guests = Vec::new();
    for _ in 0..6 {
        guests.push(app.new_user().await.1);
    }

    // 90 random stays of 1–5 nights inside a 20-day window, 16 at a time.
    let seed = uuid::Uuid::new_v4().as_u128();
    let requests: Vec<(String, i64, i64)> = (0..90u128)
        .map(|i| {
            let r = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(i * 1442695040888963407);
            let r = (r >> 64) as u64 ^ (r as u64).rotate_left(17).wrapping_mul(i as u64 + 1);
            let property = properties[(r % 3) as usize].clone();
            let start = 5 + ((r >> 8) % 20) as i64;
            let nights = 1 + ((r >> 16) % 5) as i64;
            (property, start, start + nights)
        })
        .collect();
    let semaphore = Arc::new(tokio::sync::Semaphore::new(16));
    let tasks = requests.into_iter().enumerate().map(|(i, (p, from, to))| {
        let app = &app;
        let token = guests[i % guests.len()].clone();
        let semaphore = semaphore.clone();
        async move {
            let _permit = semaphore.acquire().await.unwrap();
            book(app, &token, booking(&p, from, to, "pm_card_visa")).await
        }
    });
    let results: Vec<Gql> = join_all(tasks).await;

    let mut won = HashSet::new();
    for r in &results {
        match r.code() {
            "" => {
                won.insert(
                    r.ok()["createReservation"]["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                );
            }
            "BOOKING_CONFLICT" => {}
            other => panic!("unexpected error {other}: {}", r.body),
        }
    }
    assert!(!won.is_empty());
    assert_eq!(reservations_count(&app, OVERLAPS).await, 0);
    let stored = reservations_count(
        &app,
        "SELECT COUNT(*) AS n FROM reservations WHERE status = 'CONFIRMED'",
    )
    .await;
    assert_eq!(
        stored as usize,
        won.len(),
        "every success is in the database"
    );
    for id in &won {
        let r = app
            .post(
                &app.reservations_url,
                "query($id: ID!) { reservation(id: $id) { status } }",
                json!({ "id": id }),
                Some(&guests[0]),
                &[],
            )
            .await;
        // Guest 0 sees its own; for others NOT_FOUND proves the row exists but is theirs.
        assert!(
            r.data()["reservation"]["status"] == "CONFIRMED" || r.code() == "NOT_FOUND",
            "{}",
            r.body
        );
    }
    assert_eq!(app.provider.counts().captures as usize, won.len());
}

async fn back_to_back_stays_both_succeed_and_an_overlap_conflicts(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    let first = book(&app, &guest, booking(&property, 31, 35, "pm_card_visa")).await;
    assert_eq!(first.ok()["createReservation"]["status"], "CONFIRMED");
    let second = book(&app, &guest, booking(&property, 35, 38, "pm_card_visa")).await;
    assert_eq!(
        second.ok()["createReservation"]["status"],
        "CONFIRMED",
        "check-out day is the next check-in day"
    );
    let overlap = book(&app, &guest, booking(&property, 34, 36, "pm_card_visa")).await;
    assert_eq!(overlap.code(), "BOOKING_CONFLICT", "{}", overlap.body);
    assert_eq!(app.provider.counts().authorizations, 2);
}

async fn a_declined_card_fails_the_booking_and_frees_the_dates_at_once(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    let declined = book(
        &app,
        &guest,
        booking(&property, 12, 14, "pm_card_chargeDeclinedInsufficientFunds"),
    )
    .await;
    assert_eq!(declined.code(), "PAYMENT_DECLINED", "{}", declined.body);
    assert!(declined.message().contains("insufficient funds"));
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM reservations WHERE status = 'FAILED'"
        )
        .await,
        1
    );
    let counts = app.provider.counts();
    assert_eq!((counts.declines, counts.captures), (1, 0));

    let retry = book(&app, &guest, booking(&property, 12, 14, "pm_card_visa")).await;
    assert_eq!(retry.ok()["createReservation"]["status"], "CONFIRMED");
}

async fn a_retry_with_the_same_key_returns_the_same_reservation_and_charges_once(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let input = booking(&property, 40, 42, "pm_card_visa");

    // Ten concurrent retries of one attempt (a flaky network, an impatient client).
    let tasks = (0..10).map(|_| book(&app, &guest, input.clone()));
    let results: Vec<Gql> = join_all(tasks).await;
    let ids: HashSet<_> = results
        .iter()
        .map(|r| {
            r.ok()["createReservation"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one reservation for one key: {results:?}");
    let later = book(&app, &guest, input.clone()).await;
    assert_eq!(later.ok()["createReservation"]["status"], "CONFIRMED");
    assert!(ids.contains(later.ok()["createReservation"]["id"].as_str().unwrap()));
    let counts = app.provider.counts();
    assert_eq!((counts.authorizations, counts.captures), (1, 1));

    // The same key for a different booking is refused, not silently replayed.
    let mut other = input.clone();
    other["checkOut"] = json!(day(43));
    let reused = book(&app, &guest, other).await;
    assert_eq!(reused.code(), "BAD_USER_INPUT");
    assert_eq!(
        reused.body["errors"][0]["extensions"]["field"],
        "idempotencyKey"
    );
}

async fn cancellation_refunds_exactly_what_the_policy_gives_back(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let (_, guest, _, _) = app.new_user().await;
    // (policy, check-in in days, expected refund percent). Windows count back from 15:00 UTC
    // on the check-in day; these cases are far from every boundary whatever the time of day.
    let cases = [
        ("FLEXIBLE", 3, 100),
        ("MODERATE", 10, 100),
        ("MODERATE", 2, 50),
        ("STRICT", 10, 50),
        ("STRICT", 3, 0),
    ];
    for (policy, start, percent) in cases {
        let property = new_listing(&app, &host, 10_001, policy).await;
        let booked = book(
            &app,
            &guest,
            booking(&property, start, start + 2, "pm_card_visa"),
        )
        .await;
        let id = booked.ok()["createReservation"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let total = 20_002;
        let expected = total * percent / 100;

        let res = app
            .gql(
                "mutation($id: ID!) { cancelReservation(id: $id) {
                    status refund { amount } cancelledAt
                    payment { status refunded { amount } }
                    property { isAvailable(checkIn: $ci, checkOut: $co) }
                } }"
                .replace("$ci", &format!("\"{}\"", day(start)))
                .replace("$co", &format!("\"{}\"", day(start + 2)))
                .as_str(),
                json!({ "id": id }),
                Some(&guest),
            )
            .await;
        let r = &res.ok()["cancelReservation"];
        assert_eq!(r["status"], "CANCELLED", "{policy}");
        assert_eq!(r["refund"]["amount"], expected, "{policy} at {start} days");
        assert_eq!(r["payment"]["refunded"]["amount"], expected, "{policy}");
        let status = match percent {
            100 => "REFUNDED",
            0 => "CAPTURED",
            _ => "PARTIALLY_REFUNDED",
        };
        assert_eq!(r["payment"]["status"], status, "{policy}");
        assert_eq!(r["property"]["isAvailable"], true, "dates freed");
        assert!(r["cancelledAt"].is_string());

        // Cancelling again changes nothing and refunds nothing more.
        let again = app
            .gql(
                "mutation($id: ID!) { cancelReservation(id: $id) { status payment { refunded { amount } } } }",
                json!({ "id": id }),
                Some(&guest),
            )
            .await;
        assert_eq!(
            again.ok()["cancelReservation"]["payment"]["refunded"]["amount"],
            expected
        );
    }
    assert_eq!(
        app.provider.counts().refunds,
        4,
        "a 0 % refund makes no refund"
    );
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'reservation.cancelled'"
        )
        .await,
        5
    );
}

async fn guests_hosts_admins_and_strangers_see_what_they_should(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, host_id) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, guest_id) = app.new_user().await;
    let (_, stranger, _, _) = app.new_user().await;
    let (_, admin) = app.new_admin().await;
    let booked = book(&app, &guest, booking(&property, 50, 52, "pm_card_visa")).await;
    let id = booked.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let read = |token: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.gql(
                "query($id: ID!) { reservation(id: $id) { id status payment { status } } }",
                json!({ "id": id }),
                Some(&token),
            )
            .await
        }
    };
    for (who, token) in [("guest", &guest), ("host", &host), ("admin", &admin)] {
        let r = read(token.clone()).await;
        assert_eq!(r.ok()["reservation"]["status"], "CONFIRMED", "{who}");
        assert_eq!(
            r.ok()["reservation"]["payment"]["status"],
            "CAPTURED",
            "{who}"
        );
    }
    assert_eq!(read(stranger.clone()).await.code(), "NOT_FOUND");
    let anonymous = app
        .gql(
            "query($id: ID!) { reservation(id: $id) { id } }",
            json!({ "id": id }),
            None,
        )
        .await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");

    // Straight to the subgraph's _entities: no way around the check.
    for (subgraph, fields) in [
        (&app.reservations_url, "id status"),
        (&app.payments_url, "id payment { status }"),
    ] {
        let entities = app
            .post(
                subgraph,
                &format!("query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on Reservation {{ {fields} }} }} }}"),
                json!({ "r": [{ "__typename": "Reservation", "id": id }] }),
                Some(&stranger),
                &[],
            )
            .await;
        let e = &entities.body["data"]["_entities"][0];
        assert!(
            e.is_null() || (e["status"].is_null() && e["payment"].is_null()),
            "a stranger learns nothing: {}",
            entities.body
        );
    }

    // Lists: the guest's own, the host's (as host), the admin's (all); a stranger's is empty.
    let list = "{ reservations { totalCount edges { node { id } } } }";
    for (token, n) in [(&guest, 1), (&host, 1), (&admin, 1), (&stranger, 0)] {
        let r = app.gql(list, json!({}), Some(token)).await;
        assert_eq!(r.ok()["reservations"]["totalCount"], n);
    }
    let of_user = "query($u: ID!) { _entities(representations: [{ __typename: \"User\", id: $u }]) { ... on User { reservations { totalCount } } } }";
    let own = app
        .post(
            &app.reservations_url,
            of_user,
            json!({ "u": guest_id }),
            Some(&guest),
            &[],
        )
        .await;
    assert_eq!(own.ok()["_entities"][0]["reservations"]["totalCount"], 1);
    let others = app
        .post(
            &app.reservations_url,
            of_user,
            json!({ "u": guest_id }),
            Some(&host),
            &[],
        )
        .await;
    assert_eq!(others.code(), "FORBIDDEN");
    let _ = host_id;

    // Only the guest or an admin cancels; only an admin deletes, and only what is over.
    let cancel = "mutation($id: ID!) { cancelReservation(id: $id) { status } }";
    let delete = "mutation($id: ID!) { deleteReservation(id: $id) }";
    assert_eq!(
        app.gql(cancel, json!({ "id": id }), Some(&host))
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(cancel, json!({ "id": id }), Some(&stranger))
            .await
            .code(),
        "NOT_FOUND"
    );
    assert_eq!(
        app.gql(delete, json!({ "id": id }), Some(&guest))
            .await
            .code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(delete, json!({ "id": id }), Some(&admin))
            .await
            .code(),
        "BAD_USER_INPUT"
    );
    assert_eq!(
        app.gql(cancel, json!({ "id": id }), Some(&guest))
            .await
            .ok()["cancelReservation"]["status"],
        "CANCELLED"
    );
    assert_eq!(
        app.gql(delete, json!({ "id": id }), Some(&admin))
            .await
            .ok()["deleteReservation"],
        true
    );
    assert_eq!(read(admin.clone()).await.code(), "NOT_FOUND");
}

async fn bad_booking_input_is_bad_user_input_and_stores_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let draft = app
        .gql(
            "mutation($i: CreatePropertyInput!) { createProperty(input: $i) { id } }",
            json!({ "i": {
                "title": "Unfinished", "description": "Not ready",
                "address": { "line1": "1 Rue", "city": "Lyon", "country": "FR" },
                "nightlyRate": { "amount": 5000, "currency": "EUR" },
                "maxGuests": 2, "bedrooms": 1, "amenities": [], "cancellationPolicy": "STRICT",
                "status": "DRAFT"
            }}),
            Some(&host),
        )
        .await;
    let draft = draft.ok()["createProperty"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, guest, _, _) = app.new_user().await;

    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = booking(&property, 10, 12, "pm_card_visa");
        f(&mut b);
        b
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "past check-in",
            with(&|b| b["checkIn"] = json!(day(-1))),
            "checkIn",
        ),
        ("today", with(&|b| b["checkIn"] = json!(day(0))), "checkIn"),
        (
            "check-out first",
            with(&|b| b["checkOut"] = json!(day(9))),
            "checkOut",
        ),
        (
            "too long",
            with(&|b| b["checkOut"] = json!(day(60))),
            "checkOut",
        ),
        (
            "too many guests",
            with(&|b| b["guests"] = json!(9)),
            "guests",
        ),
        ("no guests", with(&|b| b["guests"] = json!(0)), "guests"),
        (
            "card number",
            with(&|b| b["paymentMethod"] = json!("4242424242424242")),
            "paymentMethod",
        ),
        (
            "unknown method",
            with(&|b| b["paymentMethod"] = json!("pm_card_nonexistent")),
            "paymentMethod",
        ),
        (
            "short key",
            with(&|b| b["idempotencyKey"] = json!("abc")),
            "idempotencyKey",
        ),
        (
            "unpublished",
            with(&|b| b["propertyId"] = json!(draft)),
            "propertyId",
        ),
        (
            "bad id",
            with(&|b| b["propertyId"] = json!("nope")),
            "propertyId",
        ),
    ];
    for (what, input, field) in cases {
        let r = book(&app, &guest, input).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{what}: {}", r.body);
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{what}");
    }
    let own = book(&app, &host, booking(&property, 10, 12, "pm_card_visa")).await;
    assert_eq!(
        own.code(),
        "BAD_USER_INPUT",
        "a host cannot book their own listing"
    );
    let missing = book(
        &app,
        &guest,
        with(&|b| b["propertyId"] = json!(uuid::Uuid::new_v4().to_string())),
    )
    .await;
    assert_eq!(missing.code(), "NOT_FOUND");
    let malformed_date = book(&app, &guest, with(&|b| b["checkIn"] = json!("10/12/2027"))).await;
    assert!(!malformed_date.code().is_empty(), "{}", malformed_date.body);
    let anonymous = app
        .gql(
            BOOK,
            json!({ "i": booking(&property, 10, 12, "pm_card_visa") }),
            None,
        )
        .await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");

    // Only the unknown payment method reached payments (and failed there); nothing is held.
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM reservations WHERE status IN ('PENDING', 'CONFIRMED')"
        )
        .await,
        0
    );
    assert_eq!(app.provider.counts().authorizations, 0);
}

async fn availability_and_booked_ranges_come_from_reservations(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    book(&app, &guest, booking(&property, 60, 63, "pm_card_visa"))
        .await
        .ok();
    book(&app, &guest, booking(&property, 66, 67, "pm_card_visa"))
        .await
        .ok();

    let res = app
        .gql(
            "query($id: ID!, $a: Date!, $b: Date!, $c: Date!, $d: Date!) { property(id: $id) {
                title
                busy: isAvailable(checkIn: $a, checkOut: $b)
                free: isAvailable(checkIn: $b, checkOut: $c)
                bookedRanges(from: $a, to: $d) { start end }
            } }",
            json!({ "id": property, "a": day(61), "b": day(63), "c": day(66), "d": day(70) }),
            Some(&guest),
        )
        .await;
    let p = &res.ok()["property"];
    assert_eq!(p["title"], "Harbour flat");
    assert_eq!(p["busy"], false);
    assert_eq!(p["free"], true);
    assert_eq!(
        p["bookedRanges"],
        json!([{ "start": day(60), "end": day(63) }, { "start": day(66), "end": day(67) }])
    );
    let quote = app
        .gql(
            "query($id: ID!, $a: Date!, $b: Date!) { quote(propertyId: $id, checkIn: $a, checkOut: $b, guests: 2) { nights total { amount } available cancellationPolicy } }",
            json!({ "id": property, "a": day(63), "b": day(66) }),
            Some(&guest),
        )
        .await;
    assert_eq!(
        quote.ok()["quote"],
        json!({ "nights": 3, "total": { "amount": 30_000 }, "available": true, "cancellationPolicy": "FLEXIBLE" })
    );
    let bad = app
        .gql(
            "query($id: ID!, $a: Date!) { property(id: $id) { isAvailable(checkIn: $a, checkOut: $a) } }",
            json!({ "id": property, "a": day(61) }),
            Some(&guest),
        )
        .await;
    assert_eq!(bad.code(), "BAD_USER_INPUT");
}
