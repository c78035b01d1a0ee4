//! Reviews of stays through the router: a guest reviews a stay once it has ended (not before,
//! not twice — not even with concurrent attempts —, not someone else's, not after the window),
//! a property's rating and reviews page follow, the host replies once, and an admin's removal
//! takes a review out of the page and the rating.
//!
//! A stay cannot be booked in the past through the API, so the tests book future dates and
//! then move the stay's dates into the past with a direct SQL update of the reservations
//! database ([`end_stay`]): that is how a test makes a stay "ended".

use chrono::{Duration, NaiveDate, Utc};
use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use futures::future::join_all;
use serde_json::{Value, json};

use crate::booking::{book, booking, new_listing, reservations_count};
use crate::helpers::{Gql, TestApp, spawn};

test_on_both_backends!(
    a_guest_reviews_an_ended_stay_once_and_no_one_else_can,
    concurrent_reviews_of_one_stay_store_exactly_one,
    a_stay_is_reviewable_only_within_the_window_and_when_confirmed,
    the_rating_and_the_reviews_page_follow_several_reviews,
    the_host_replies_once_and_an_admin_removal_updates_the_rating,
);

const REVIEW: &str = "mutation($i: CreateReviewInput!) { createReview(input: $i) {
  id rating comment createdAt reply repliedAt
  author { id displayName } property { id } reservation { id status }
} }";

const REPLY: &str = "mutation($id: ID!, $r: String!) { replyToReview(id: $id, reply: $r) {
  id reply repliedAt
} }";

const PROPERTY_REVIEWS: &str = "query($id: ID!, $first: Int, $after: String) {
  property(id: $id) {
    rating { average count }
    reviews(first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { cursor node { id rating comment reply author { id } } }
    }
  }
}";

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// Books `[from, to)` days from today for `guest_token`; returns the reservation id.
async fn stay(app: &TestApp, guest_token: &str, property: &str, from: i64, to: i64) -> String {
    let res = book(
        app,
        guest_token,
        booking(property, from, to, "pm_card_visa"),
    )
    .await;
    let r = &res.ok()["createReservation"];
    assert_eq!(r["status"], "CONFIRMED");
    r["id"].as_str().unwrap().to_owned()
}

/// Moves a stay's dates so it checked out `days_ago` days ago (one night long): the test's
/// way to let time pass, since the API books future dates only. Stays of one property given
/// different `days_ago` do not overlap.
async fn end_stay(app: &TestApp, reservation: &str, days_ago: i64) {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    let db = draftr_common::db::connect(&app.reservations_db.settings)
        .await
        .unwrap();
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => {
            "UPDATE reservations SET check_in = $1, check_out = $2 WHERE id = $3"
        }
        _ => "UPDATE reservations SET check_in = ?, check_out = ? WHERE id = ?",
    };
    let check_out = today() - Duration::days(days_ago);
    let id = uuid::Uuid::parse_str(reservation).unwrap();
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                (check_out - Duration::days(1)).into(),
                check_out.into(),
                id.into(),
            ],
        ))
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1, "the stay's dates were moved");
}

async fn review(app: &TestApp, token: &str, reservation: &str, rating: i64, comment: &str) -> Gql {
    app.gql(
        REVIEW,
        json!({ "i": { "reservationId": reservation, "rating": rating, "comment": comment } }),
        Some(token),
    )
    .await
}

fn assert_refused(res: &Gql, code: &str, field: Option<&str>) {
    assert_eq!(res.code(), code, "{}", res.body);
    if let Some(field) = field {
        assert_eq!(
            res.body["errors"][0]["extensions"]["field"], field,
            "{}",
            res.body
        );
    }
}

async fn property_reviews(app: &TestApp, property: &str, first: i64, after: Option<&str>) -> Value {
    app.gql(
        PROPERTY_REVIEWS,
        json!({ "id": property, "first": first, "after": after }),
        None,
    )
    .await
    .ok()["property"]
        .clone()
}

async fn a_guest_reviews_an_ended_stay_once_and_no_one_else_can(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, guest_id) = app.new_user().await;
    let (_, stranger, _, _) = app.new_user().await;
    let reservation = stay(&app, &guest, &property, 10, 12).await;

    // Before check-out: too early.
    let early = review(&app, &guest, &reservation, 5, "Lovely").await;
    assert_refused(&early, "BAD_USER_INPUT", Some("reservationId"));
    assert!(early.message().contains("ended"), "{}", early.body);

    end_stay(&app, &reservation, 1).await;

    // Someone else's stay: it does not exist for a stranger; the host knows it does.
    assert_refused(
        &review(&app, &stranger, &reservation, 5, "Mine?").await,
        "NOT_FOUND",
        None,
    );
    assert_refused(
        &review(&app, &host, &reservation, 5, "My own place").await,
        "FORBIDDEN",
        None,
    );
    // Out-of-range ratings and empty or overlong comments.
    for rating in [0, 6] {
        assert_refused(
            &review(&app, &guest, &reservation, rating, "Fine").await,
            "BAD_USER_INPUT",
            Some("rating"),
        );
    }
    assert_refused(
        &review(&app, &guest, &reservation, 4, "   ").await,
        "BAD_USER_INPUT",
        Some("comment"),
    );
    assert_refused(
        &review(&app, &guest, &reservation, 4, &"x".repeat(2001)).await,
        "BAD_USER_INPUT",
        Some("comment"),
    );
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM reviews").await,
        0,
        "nothing refused was stored"
    );

    // After check-out, by its guest: accepted.
    let res = review(&app, &guest, &reservation, 4, "  Quiet and bright.  ").await;
    let r = &res.ok()["createReview"];
    assert_eq!(r["rating"], 4);
    assert_eq!(r["comment"], "Quiet and bright.", "trimmed");
    assert_eq!(r["reply"], Value::Null);
    assert_eq!(r["author"]["id"], guest_id.as_str());
    assert_eq!(r["author"]["displayName"], "Test User", "resolved by auth");
    assert_eq!(r["property"]["id"], property.as_str());
    assert_eq!(r["reservation"]["id"], reservation.as_str());
    let review_id = r["id"].as_str().unwrap().to_owned();

    // Twice: refused, and the first stays as it was.
    let again = review(&app, &guest, &reservation, 1, "Changed my mind").await;
    assert_refused(&again, "BAD_USER_INPUT", Some("reservationId"));
    assert!(
        again.message().contains("reviewed already"),
        "{}",
        again.body
    );

    // `Reservation.review` resolves for the guest and the host.
    for token in [&guest, &host] {
        let res = app
            .gql(
                "query($id: ID!) { reservation(id: $id) { review { id rating comment } } }",
                json!({ "id": reservation }),
                Some(token),
            )
            .await;
        let got = &res.ok()["reservation"]["review"];
        assert_eq!(got["id"], review_id.as_str());
        assert_eq!(got["rating"], 4);
    }
    // A stay without a review has none.
    let other = stay(&app, &guest, &property, 20, 21).await;
    let res = app
        .gql(
            "query($id: ID!) { reservation(id: $id) { review { id } } }",
            json!({ "id": other }),
            Some(&guest),
        )
        .await;
    assert_eq!(res.ok()["reservation"]["review"], Value::Null);

    // The review is public, but the stay behind it is not: null for a stranger.
    let page = app
        .gql(
            "query($id: ID!) { property(id: $id) { reviews { edges { node { id reservation { id } } } } } }",
            json!({ "id": property }),
            Some(&stranger),
        )
        .await;
    let node = &page.ok()["property"]["reviews"]["edges"][0]["node"];
    assert_eq!(node["id"], review_id.as_str());
    assert_eq!(node["reservation"], Value::Null);
}

async fn concurrent_reviews_of_one_stay_store_exactly_one(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let reservation = stay(&app, &guest, &property, 10, 12).await;
    end_stay(&app, &reservation, 2).await;

    let attempts = join_all((1..=8).map(|i| {
        let (app, guest, reservation) = (&app, &guest, &reservation);
        async move { review(app, guest, reservation, 1 + i % 5, &format!("Attempt {i}")).await }
    }))
    .await;
    let won: Vec<_> = attempts
        .iter()
        .filter(|r| r.body.get("errors").is_none())
        .collect();
    assert_eq!(won.len(), 1, "exactly one review is stored");
    for lost in attempts.iter().filter(|r| r.body.get("errors").is_some()) {
        assert_refused(lost, "BAD_USER_INPUT", Some("reservationId"));
    }
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM reviews").await,
        1
    );
    let page = property_reviews(&app, &property, 10, None).await;
    assert_eq!(page["rating"]["count"], 1);
    assert_eq!(
        page["reviews"]["edges"][0]["node"]["id"],
        won[0].data()["createReview"]["id"]
    );
}

async fn a_stay_is_reviewable_only_within_the_window_and_when_confirmed(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    // 15 days after check-out: too late.
    let late = stay(&app, &guest, &property, 10, 11).await;
    end_stay(&app, &late, 15).await;
    let res = review(&app, &guest, &late, 3, "Late").await;
    assert_refused(&res, "BAD_USER_INPUT", Some("reservationId"));
    assert!(res.message().contains("14 days"), "{}", res.body);

    // 14 days after: the last day it can be.
    let last_day = stay(&app, &guest, &property, 12, 13).await;
    end_stay(&app, &last_day, 14).await;
    review(&app, &guest, &last_day, 3, "Just in time")
        .await
        .ok();

    // On the check-out day itself: accepted.
    let today_out = stay(&app, &guest, &property, 14, 15).await;
    end_stay(&app, &today_out, 0).await;
    review(&app, &guest, &today_out, 5, "Checked out this morning")
        .await
        .ok();

    // A cancelled stay is not reviewable.
    let cancelled = stay(&app, &guest, &property, 16, 17).await;
    app.gql(
        "mutation($id: ID!) { cancelReservation(id: $id) { status } }",
        json!({ "id": cancelled }),
        Some(&guest),
    )
    .await
    .ok();
    end_stay(&app, &cancelled, 3).await;
    let res = review(&app, &guest, &cancelled, 2, "Never went").await;
    assert_refused(&res, "BAD_USER_INPUT", Some("reservationId"));

    // Anonymous: a signed-in guest is needed; a malformed id is bad input.
    let anon = app
        .gql(
            REVIEW,
            json!({ "i": { "reservationId": last_day, "rating": 3, "comment": "x" } }),
            None,
        )
        .await;
    assert_refused(&anon, "UNAUTHENTICATED", None);
    assert_refused(
        &review(&app, &guest, "not-an-id", 3, "x").await,
        "BAD_USER_INPUT",
        Some("reservationId"),
    );
    let page = property_reviews(&app, &property, 10, None).await;
    assert_eq!(page["rating"]["count"], 2);
}

async fn the_rating_and_the_reviews_page_follow_several_reviews(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let untouched = new_listing(&app, &host, 10_000, "FLEXIBLE").await;

    // No reviews yet.
    let page = property_reviews(&app, &property, 2, None).await;
    assert_eq!(page["rating"], json!({ "average": null, "count": 0 }));
    assert_eq!(page["reviews"]["totalCount"], 0);
    assert_eq!(page["reviews"]["edges"], json!([]));

    // Three guests review their stays 5, 4, 2, in that order.
    let mut written = Vec::new();
    for (i, rating) in [5, 4, 2].into_iter().enumerate() {
        let (_, guest, _, _) = app.new_user().await;
        let i = i as i64;
        let reservation = stay(&app, &guest, &property, 10 + 2 * i, 11 + 2 * i).await;
        end_stay(&app, &reservation, 1 + i).await;
        let res = review(
            &app,
            &guest,
            &reservation,
            rating,
            &format!("Rated {rating}"),
        )
        .await;
        written.push(res.ok()["createReview"]["id"].as_str().unwrap().to_owned());
    }

    let first = property_reviews(&app, &property, 2, None).await;
    let average = first["rating"]["average"].as_f64().unwrap();
    assert!((average - 11.0 / 3.0).abs() < 1e-9, "average {average}");
    assert_eq!(format!("{average:.2}"), "3.67");
    assert_eq!(first["rating"]["count"], 3);
    let reviews = &first["reviews"];
    assert_eq!(reviews["totalCount"], 3);
    let ids = |page: &Value| -> Vec<String> {
        page["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Newest first.
    assert_eq!(ids(reviews), [written[2].clone(), written[1].clone()]);
    assert_eq!(reviews["edges"][0]["node"]["rating"], 2);
    assert_eq!(reviews["pageInfo"]["hasNextPage"], true);
    assert_eq!(reviews["pageInfo"]["hasPreviousPage"], false);

    let cursor = reviews["pageInfo"]["endCursor"].as_str().unwrap();
    let second = property_reviews(&app, &property, 2, Some(cursor)).await;
    let reviews = &second["reviews"];
    assert_eq!(ids(reviews), [written[0].clone()]);
    assert_eq!(reviews["pageInfo"]["hasNextPage"], false);
    assert_eq!(reviews["pageInfo"]["hasPreviousPage"], true);

    // Another property's rating is its own; a page of properties gets each its own rating.
    let other = property_reviews(&app, &untouched, 2, None).await;
    assert_eq!(other["rating"], json!({ "average": null, "count": 0 }));
    let res = app
        .gql(
            "{ properties(first: 50) { edges { node { id rating { average count } } } } }",
            json!({}),
            None,
        )
        .await;
    let nodes = res.ok()["properties"]["edges"].as_array().unwrap().clone();
    let rating_of = |id: &str| {
        nodes
            .iter()
            .find(|e| e["node"]["id"] == id)
            .map(|e| e["node"]["rating"]["count"].clone())
    };
    assert_eq!(rating_of(&property), Some(json!(3)));
    assert_eq!(rating_of(&untouched), Some(json!(0)));

    // A cursor this API did not issue, and a page size out of range.
    let bad = app
        .gql(
            PROPERTY_REVIEWS,
            json!({ "id": property, "first": 2, "after": "garbage!" }),
            None,
        )
        .await;
    assert_refused(&bad, "BAD_USER_INPUT", Some("after"));
    let bad = app
        .gql(
            PROPERTY_REVIEWS,
            json!({ "id": property, "first": 101 }),
            None,
        )
        .await;
    assert_refused(&bad, "BAD_USER_INPUT", Some("first"));
}

async fn the_host_replies_once_and_an_admin_removal_updates_the_rating(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let (_, stranger, _, _) = app.new_user().await;
    let (_, admin) = app.new_admin().await;

    let mut ids = Vec::new();
    for (i, rating) in [5, 1].into_iter().enumerate() {
        let i = i as i64;
        let reservation = stay(&app, &guest, &property, 10 + 2 * i, 11 + 2 * i).await;
        end_stay(&app, &reservation, 1 + i).await;
        let res = review(&app, &guest, &reservation, rating, "Stayed here").await;
        ids.push((
            res.ok()["createReview"]["id"].as_str().unwrap().to_owned(),
            reservation,
        ));
    }
    let (kept, _) = &ids[0];
    let (removed, removed_stay) = &ids[1];
    let reply = |token: &str, id: &str, text: &str| {
        let token = token.to_owned();
        let vars = json!({ "id": id, "r": text });
        let app = &app;
        async move { app.gql(REPLY, vars, Some(&token)).await }
    };

    // Only the host replies: not a stranger, not the guest.
    assert_refused(&reply(&stranger, kept, "Hi").await, "FORBIDDEN", None);
    assert_refused(&reply(&guest, kept, "Me again").await, "FORBIDDEN", None);
    assert_refused(
        &reply(&host, kept, "  ").await,
        "BAD_USER_INPUT",
        Some("reply"),
    );
    let res = reply(&host, kept, "  Thank you, come again!  ").await;
    let r = &res.ok()["replyToReview"];
    assert_eq!(r["reply"], "Thank you, come again!");
    assert!(r["repliedAt"].is_string());
    // Once.
    let again = reply(&host, kept, "And again").await;
    assert_refused(&again, "BAD_USER_INPUT", Some("id"));
    let page = property_reviews(&app, &property, 10, None).await;
    let shown = page["reviews"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["node"]["id"] == kept.as_str())
        .unwrap()
        .clone();
    assert_eq!(shown["node"]["reply"], "Thank you, come again!");
    assert_eq!(page["rating"], json!({ "average": 3.0, "count": 2 }));

    // Removal is for admins.
    let remove = "mutation($id: ID!) { removeReview(id: $id) }";
    for token in [&host, &guest] {
        let res = app.gql(remove, json!({ "id": removed }), Some(token)).await;
        assert_refused(&res, "FORBIDDEN", None);
    }
    let res = app
        .gql(remove, json!({ "id": removed }), Some(&admin))
        .await;
    assert_eq!(res.ok()["removeReview"], true);
    // It leaves the page, the rating and the stay.
    let page = property_reviews(&app, &property, 10, None).await;
    assert_eq!(page["rating"], json!({ "average": 5.0, "count": 1 }));
    assert_eq!(page["reviews"]["totalCount"], 1);
    assert_eq!(page["reviews"]["edges"].as_array().unwrap().len(), 1);
    assert_eq!(page["reviews"]["edges"][0]["node"]["id"], kept.as_str());
    let res = app
        .gql(
            "query($id: ID!) { reservation(id: $id) { review { id } } }",
            json!({ "id": removed_stay }),
            Some(&guest),
        )
        .await;
    assert_eq!(res.ok()["reservation"]["review"], Value::Null);
    // Removing it again changes nothing; replying to it or reviewing the stay again is refused.
    let res = app
        .gql(remove, json!({ "id": removed }), Some(&admin))
        .await;
    assert_eq!(res.ok()["removeReview"], false);
    assert_refused(&reply(&host, removed, "Hello?").await, "NOT_FOUND", None);
    assert_refused(
        &review(&app, &guest, removed_stay, 5, "Once more").await,
        "BAD_USER_INPUT",
        Some("reservationId"),
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    let res = app
        .gql(remove, json!({ "id": unknown }), Some(&admin))
        .await;
    assert_refused(&res, "NOT_FOUND", None);
}
