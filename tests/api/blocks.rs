//! Host calendar blocks through the router: a block and a live booking never share a night (by
//! the database, under 50-way races), guests see blocked nights only as taken, strangers can
//! neither block, unblock nor see blocks, unblocking frees the nights, date search leaves a
//! blocked property out, and bad input is typed.

use std::sync::Arc;
use std::time::Duration;

use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use futures::future::join_all;
use serde_json::{Value, json};

use crate::booking::{book, booking, day, new_listing, reservations_count};
use crate::events::free_ids;
use crate::helpers::{Gql, TestApp, spawn, wait_until};

test_on_both_backends!(
    a_block_and_a_booking_never_share_a_night,
    guests_see_blocked_nights_as_taken_and_never_why,
    strangers_cannot_block_unblock_or_see_blocks,
    unblocking_frees_the_nights_for_a_booking,
    date_search_leaves_out_a_blocked_property,
    fifty_concurrent_blocks_and_bookings_never_overlap_in_the_database,
    bad_block_input_is_typed_and_stores_nothing,
);

const BLOCK: &str = "mutation($i: BlockDatesInput!) {
  blockDates(input: $i) { id from to note source createdAt }
}";

const UNBLOCK: &str = "mutation($id: ID!) { unblockDates(id: $id) }";

const BLOCKS: &str = "query($id: ID!, $a: Date!, $b: Date!) { property(id: $id) {
  id calendarBlocks(from: $a, to: $b) { id from to note source }
} }";

/// Pairs of taken ranges (live reservations and blocks) of one property sharing a night:
/// must always be 0.
const TAKEN_TWICE: &str = "WITH taken AS (
    SELECT property_id, check_in AS s, check_out AS e, id FROM reservations
      WHERE status IN ('PENDING', 'CONFIRMED')
    UNION ALL
    SELECT property_id, starts_on AS s, ends_on AS e, id FROM calendar_blocks)
  SELECT COUNT(*) AS n FROM taken a JOIN taken b
    ON a.property_id = b.property_id AND a.id < b.id AND a.s < b.e AND b.s < a.e";

async fn block(app: &TestApp, token: &str, property: &str, from: i64, to: i64) -> Gql {
    block_with(
        app,
        token,
        json!({ "propertyId": property, "from": day(from), "to": day(to), "note": "family visit" }),
    )
    .await
}

async fn block_with(app: &TestApp, token: &str, input: Value) -> Gql {
    app.gql(BLOCK, json!({ "i": input }), Some(token)).await
}

fn id_of(res: &Gql) -> String {
    res.ok()["blockDates"]["id"].as_str().unwrap().to_owned()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    reservations_count(app, sql).await
}

async fn a_block_and_a_booking_never_share_a_night(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    // A booking on blocked nights conflicts, before any card is touched.
    let res = block(&app, &host, &property, 30, 33).await;
    let b = &res.ok()["blockDates"];
    assert_eq!(b["from"], day(30));
    assert_eq!(b["to"], day(33));
    assert_eq!(b["note"], "family visit");
    assert_eq!(b["source"], "MANUAL");
    let refused = book(&app, &guest, booking(&property, 31, 32, "pm_card_visa")).await;
    assert_eq!(refused.code(), "BOOKING_CONFLICT", "{}", refused.body);
    let refused = book(&app, &guest, booking(&property, 28, 31, "pm_card_visa")).await;
    assert_eq!(refused.code(), "BOOKING_CONFLICT", "{}", refused.body);
    assert_eq!(
        app.provider.counts().authorizations,
        0,
        "no card was touched"
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM reservations").await,
        0
    );
    // `to` is exclusive: a stay from that day is fine, so is one ending on `from`.
    book(&app, &guest, booking(&property, 33, 35, "pm_card_visa"))
        .await
        .ok();
    book(&app, &guest, booking(&property, 28, 30, "pm_card_visa"))
        .await
        .ok();

    // A block on booked nights conflicts; back to back is fine.
    let res = block(&app, &host, &property, 34, 36).await;
    assert_eq!(res.code(), "BOOKING_CONFLICT", "{}", res.body);
    block(&app, &host, &property, 35, 37).await.ok();

    // A block over another block (or itself again) conflicts.
    for (from, to) in [(30, 33), (32, 34), (36, 40)] {
        let res = block(&app, &host, &property, from, to).await;
        assert_eq!(res.code(), "BOOKING_CONFLICT", "{from}..{to}: {}", res.body);
    }
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM calendar_blocks").await,
        2
    );
    assert_eq!(count(&app, TAKEN_TWICE).await, 0);
    // Each block's event went to the outbox with it; refused ones wrote nothing.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'calendar.blocked'"
        )
        .await,
        2
    );
    assert_eq!(
        app.provider.counts().authorizations,
        2,
        "the two stays only"
    );
}

async fn guests_see_blocked_nights_as_taken_and_never_why(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    book(&app, &guest, booking(&property, 60, 62, "pm_card_visa"))
        .await
        .ok();
    let block_id = id_of(&block(&app, &host, &property, 64, 66).await);

    let res = app
        .gql(
            "query($id: ID!, $a: Date!, $b: Date!, $c: Date!, $d: Date!) { property(id: $id) {
                blocked: isAvailable(checkIn: $b, checkOut: $c)
                free: isAvailable(checkIn: $a, checkOut: $b)
                bookedRanges(from: $a, to: $d) { start end }
            } }",
            json!({ "id": property, "a": day(62), "b": day(64), "c": day(65), "d": day(70) }),
            None,
        )
        .await;
    let p = &res.ok()["property"];
    assert_eq!(p["blocked"], false);
    assert_eq!(p["free"], true);
    assert_eq!(
        p["bookedRanges"],
        json!([{ "start": day(64), "end": day(66) }])
    );
    let all = app
        .gql(
            "query($id: ID!, $a: Date!, $b: Date!) { property(id: $id) { bookedRanges(from: $a, to: $b) { start end } } }",
            json!({ "id": property, "a": day(50), "b": day(80) }),
            Some(&guest),
        )
        .await;
    assert_eq!(
        all.ok()["property"]["bookedRanges"],
        json!([{ "start": day(60), "end": day(62) }, { "start": day(64), "end": day(66) }]),
        "a booking and a block look alike"
    );
    let quote = app
        .gql(
            "query($id: ID!, $a: Date!, $b: Date!) { quote(propertyId: $id, checkIn: $a, checkOut: $b, guests: 2) { available } }",
            json!({ "id": property, "a": day(65), "b": day(67) }),
            Some(&guest),
        )
        .await;
    assert_eq!(quote.ok()["quote"]["available"], false);

    // The host and admins see the block itself.
    let vars = json!({ "id": property, "a": day(50), "b": day(80) });
    let mine = app.gql(BLOCKS, vars.clone(), Some(&host)).await;
    assert_eq!(
        mine.ok()["property"]["calendarBlocks"],
        json!([{ "id": block_id, "from": day(64), "to": day(66), "note": "family visit", "source": "MANUAL" }])
    );
    let (_, admin) = app.new_admin().await;
    let theirs = app.gql(BLOCKS, vars.clone(), Some(&admin)).await;
    assert_eq!(
        theirs.ok()["property"]["calendarBlocks"][0]["id"],
        block_id.as_str()
    );
    // Outside the range asked: nothing.
    let none = app
        .gql(
            BLOCKS,
            json!({ "id": property, "a": day(66), "b": day(70) }),
            Some(&host),
        )
        .await;
    assert_eq!(none.ok()["property"]["calendarBlocks"], json!([]));

    // The guest learns nothing of it: FORBIDDEN, the field null, the rest intact.
    let refused = app.gql(BLOCKS, vars.clone(), Some(&guest)).await;
    assert_eq!(refused.code(), "FORBIDDEN", "{}", refused.body);
    assert_eq!(refused.data()["property"]["id"], property.as_str());
    assert_eq!(refused.data()["property"]["calendarBlocks"], Value::Null);
    assert!(!refused.body.to_string().contains("family visit"));
    let anonymous = app.gql(BLOCKS, vars, None).await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED", "{}", anonymous.body);
    assert_eq!(anonymous.data()["property"]["calendarBlocks"], Value::Null);
}

async fn strangers_cannot_block_unblock_or_see_blocks(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, stranger, _, _) = app.new_user().await;

    let res = block(&app, &stranger, &property, 10, 12).await;
    assert_eq!(res.code(), "FORBIDDEN", "{}", res.body);
    let res = block_with(
        &app,
        &stranger,
        json!({ "propertyId": property, "from": day(10), "to": day(12) }),
    )
    .await;
    assert_eq!(res.code(), "FORBIDDEN");
    let anonymous = app
        .gql(
            BLOCK,
            json!({ "i": { "propertyId": property, "from": day(10), "to": day(12) } }),
            None,
        )
        .await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM calendar_blocks").await,
        0
    );

    let id = id_of(&block(&app, &host, &property, 10, 12).await);
    let res = app.gql(UNBLOCK, json!({ "id": id }), Some(&stranger)).await;
    assert_eq!(res.code(), "FORBIDDEN", "{}", res.body);
    let res = app.gql(UNBLOCK, json!({ "id": id }), None).await;
    assert_eq!(res.code(), "UNAUTHENTICATED");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM calendar_blocks").await,
        1,
        "the block stands"
    );
    let seen = app
        .gql(
            BLOCKS,
            json!({ "id": property, "a": day(1), "b": day(30) }),
            Some(&stranger),
        )
        .await;
    assert_eq!(seen.code(), "FORBIDDEN");
    assert_eq!(seen.data()["property"]["calendarBlocks"], Value::Null);
    // A stranger's own listing does not make them anyone's host.
    new_listing(&app, &stranger, 10_000, "FLEXIBLE").await;
    assert_eq!(
        block(&app, &stranger, &property, 20, 22).await.code(),
        "FORBIDDEN"
    );
}

async fn unblocking_frees_the_nights_for_a_booking(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    let id = id_of(&block(&app, &host, &property, 40, 45).await);
    assert_eq!(
        book(&app, &guest, booking(&property, 41, 43, "pm_card_visa"))
            .await
            .code(),
        "BOOKING_CONFLICT"
    );
    let res = app.gql(UNBLOCK, json!({ "id": id }), Some(&host)).await;
    assert_eq!(res.ok()["unblockDates"], true);
    let again = app.gql(UNBLOCK, json!({ "id": id }), Some(&host)).await;
    assert_eq!(again.ok()["unblockDates"], false, "removed already");
    let r = book(&app, &guest, booking(&property, 41, 43, "pm_card_visa")).await;
    assert_eq!(r.ok()["createReservation"]["status"], "CONFIRMED");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'calendar.unblocked'"
        )
        .await,
        1
    );

    // An admin may block and unblock any property.
    let (_, admin) = app.new_admin().await;
    let res = block(&app, &admin, &property, 50, 52).await;
    let id = id_of(&res);
    assert_eq!(
        book(&app, &guest, booking(&property, 51, 52, "pm_card_visa"))
            .await
            .code(),
        "BOOKING_CONFLICT"
    );
    let res = app.gql(UNBLOCK, json!({ "id": id }), Some(&admin)).await;
    assert_eq!(res.ok()["unblockDates"], true);
    book(&app, &guest, booking(&property, 51, 52, "pm_card_visa"))
        .await
        .ok();
    // A cancelled stay frees its nights for a block too.
    let stay = book(&app, &guest, booking(&property, 60, 62, "pm_card_visa")).await;
    let stay_id = stay.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        block(&app, &host, &property, 60, 62).await.code(),
        "BOOKING_CONFLICT"
    );
    app.gql(
        "mutation($id: ID!) { cancelReservation(id: $id) { status } }",
        json!({ "id": stay_id }),
        Some(&guest),
    )
    .await
    .ok();
    block(&app, &host, &property, 60, 62).await.ok();
    assert_eq!(count(&app, TAKEN_TWICE).await, 0);
}

async fn date_search_leaves_out_a_blocked_property(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let blocked = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let other = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    assert_eq!(free_ids(&app, &guest, 20, 23).await.len(), 2);

    let id = id_of(&block(&app, &host, &blocked, 20, 23).await);
    wait_until(
        "the block in date search",
        Duration::from_secs(10),
        async || !free_ids(&app, &guest, 21, 22).await.contains(&blocked),
    )
    .await;
    assert_eq!(free_ids(&app, &guest, 21, 22).await, vec![other.clone()]);
    // `to` is exclusive, as a check-out is.
    assert_eq!(free_ids(&app, &guest, 23, 25).await.len(), 2);

    app.gql(UNBLOCK, json!({ "id": id }), Some(&host))
        .await
        .ok();
    wait_until(
        "the unblock in date search",
        Duration::from_secs(10),
        async || free_ids(&app, &guest, 21, 22).await.contains(&blocked),
    )
    .await;
}

async fn fifty_concurrent_blocks_and_bookings_never_overlap_in_the_database(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let mut guests = Vec::new();
    for _ in 0..5 {
        guests.push(app.new_user().await.1);
    }

    // 25 blocks by the host and 25 bookings by 5 guests, all within nights 100..112, released
    // together: ranges of 1–4 nights from a fixed pseudo-random sequence.
    let mut seed = 0x2545_f491_u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        ((seed >> 33) % n) as i64
    };
    let requests: Vec<(bool, i64, i64)> = (0..50)
        .map(|i| {
            let from = 100 + next(9);
            (i % 2 == 0, from, from + 1 + next(4))
        })
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(requests.len()));
    let tasks = requests
        .iter()
        .enumerate()
        .map(|(i, &(is_block, from, to))| {
            let app = &app;
            let barrier = barrier.clone();
            let (host, guest, property) = (host.clone(), guests[i % 5].clone(), property.clone());
            async move {
                barrier.wait().await;
                if is_block {
                    block(app, &host, &property, from, to).await
                } else {
                    book(app, &guest, booking(&property, from, to, "pm_card_visa")).await
                }
            }
        });
    let results: Vec<Gql> = join_all(tasks).await;

    let mut won = (0, 0);
    for (r, &(is_block, from, to)) in results.iter().zip(&requests) {
        if r.body.get("errors").is_some() {
            assert_eq!(r.code(), "BOOKING_CONFLICT", "{from}..{to}: {}", r.body);
        } else if is_block {
            won.0 += 1;
        } else {
            assert_eq!(r.data()["createReservation"]["status"], "CONFIRMED");
            won.1 += 1;
        }
    }
    assert!(won.0 + won.1 > 0, "someone gets the nights");
    assert_eq!(
        count(&app, TAKEN_TWICE).await,
        0,
        "never a night taken twice"
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM calendar_blocks").await,
        won.0,
        "every block that succeeded is stored, and only those"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM reservations WHERE status = 'CONFIRMED'"
        )
        .await,
        won.1
    );
    assert_eq!(
        app.provider.counts().authorizations as i64,
        won.1,
        "bookings that lost to a block never touched a card"
    );
    println!("50-way race: {} blocks and {} bookings won", won.0, won.1);
}

async fn bad_block_input_is_typed_and_stores_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let input = |from: String, to: String, note: Option<String>| json!({ "propertyId": property, "from": from, "to": to, "note": note });
    let cases = [
        ("in the past", input(day(-1), day(2), None), "from"),
        ("empty", input(day(5), day(5), None), "to"),
        ("backwards", input(day(6), day(5), None), "to"),
        ("too far ahead", input(day(731), day(733), None), "from"),
        ("too long", input(day(1), day(368), None), "to"),
        (
            "note too long",
            input(day(1), day(2), Some("x".repeat(501))),
            "note",
        ),
        (
            "not an id",
            json!({ "propertyId": "nope", "from": day(1), "to": day(2) }),
            "propertyId",
        ),
    ];
    for (what, i, field) in cases {
        let r = block_with(&app, &host, i).await;
        assert_eq!(r.code(), "BAD_USER_INPUT", "{what}: {}", r.body);
        assert_eq!(r.body["errors"][0]["extensions"]["field"], field, "{what}");
    }
    let unknown = block_with(
        &app,
        &host,
        json!({ "propertyId": uuid::Uuid::now_v7().to_string(), "from": day(1), "to": day(2) }),
    )
    .await;
    assert_eq!(unknown.code(), "NOT_FOUND", "{}", unknown.body);
    let bad_range = app
        .gql(
            BLOCKS,
            json!({ "id": property, "a": day(5), "b": day(5) }),
            Some(&host),
        )
        .await;
    assert_eq!(bad_range.code(), "BAD_USER_INPUT");
    let bad_id = app.gql(UNBLOCK, json!({ "id": "nope" }), Some(&host)).await;
    assert_eq!(bad_id.code(), "BAD_USER_INPUT");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM calendar_blocks").await,
        0
    );
    // Today (UTC) may be blocked, and a note of 500 characters is fine.
    let today = block_with(&app, &host, input(day(0), day(1), Some("y".repeat(500)))).await;
    assert_eq!(
        today.ok()["blockDates"]["note"].as_str().unwrap().len(),
        500
    );
}
