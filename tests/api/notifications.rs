//! Booking emails over a real SMTP listener, their status, and live subscriptions over
//! graphql-ws, fanned out through Redis pub/sub.

use std::time::{Duration, Instant};

use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use serde_json::{Value, json};

use crate::booking::{book, booking, new_listing};
use crate::helpers::{TestApp, spawn, wait_until};
use crate::smtp::{SmtpSink, header};
use crate::ws::WsClient;

test_on_both_backends!(
    the_free_router_answers_a_subscription_with_a_clear_error,
    a_booking_emails_the_guest_and_the_host_once_with_what_they_booked,
    emails_wait_out_an_smtp_outage_and_the_status_tells_the_story,
    a_server_that_stops_answering_mid_send_does_not_hang_the_mailer,
    an_address_the_server_refuses_for_good_fails_without_retries,
    the_guest_hears_of_their_booking_live_and_nobody_else_does,
);

async fn my_notifications(app: &TestApp, token: &str) -> Vec<Value> {
    let res = app
        .gql(
            "{ me { notifications(first: 20) { totalCount edges { node { kind subject status attempts sentAt } } } } }",
            json!({}),
            Some(token),
        )
        .await;
    res.ok()["me"]["notifications"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

async fn a_booking_emails_the_guest_and_the_host_once_with_what_they_booked(backend: Backend) {
    let app = spawn(backend).await;
    let (host_email, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (guest_email, guest, _, _) = app.new_user().await;
    let booked = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    let id = booked.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    wait_until("two emails", Duration::from_secs(15), async || {
        app.smtp.messages().len() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = app.smtp.messages();
    assert_eq!(messages.len(), 2, "one email each, no more");
    let to_guest = messages
        .iter()
        .find(|m| header(m, "To").is_some_and(|t| t.contains(&guest_email)))
        .expect("the guest's confirmation");
    let to_host = messages
        .iter()
        .find(|m| header(m, "To").is_some_and(|t| t.contains(&host_email)))
        .expect("the host's new-booking email");
    assert_eq!(
        header(to_guest, "Subject").unwrap(),
        "Your stay at Harbour flat is confirmed"
    );
    assert_eq!(
        header(to_host, "Subject").unwrap(),
        "New booking for Harbour flat"
    );
    for text in [
        "Property: Harbour flat",
        &format!(
            "Dates: {} to {} (2 nights)",
            crate::booking::day(10),
            crate::booking::day(12)
        ),
        "Total: EUR 200.00",
        &id[..8].to_uppercase(),
        "text/plain",
        "text/html",
    ] {
        assert!(to_guest.contains(text), "{text:?} in\n{to_guest}");
    }
    let ids = app.smtp.message_ids();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);

    // The guest's list says what was sent; the host's list is the host's own.
    let mine = my_notifications(&app, &guest).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["kind"], "booking_confirmed");
    assert_eq!(mine[0]["status"], "SENT");
    assert!(mine[0]["sentAt"].is_string());
    assert_eq!(
        my_notifications(&app, &host).await[0]["kind"],
        "new_booking"
    );

    // Cancelling (flexible, 10 days ahead): a cancellation and a refund email to the guest,
    // and a note to the host.
    app.gql(
        "mutation($id: ID!) { cancelReservation(id: $id) { status } }",
        json!({ "id": id }),
        Some(&guest),
    )
    .await
    .ok();
    wait_until("three more emails", Duration::from_secs(15), async || {
        app.smtp.messages().len() >= 5
    })
    .await;
    let kinds: Vec<String> = my_notifications(&app, &guest)
        .await
        .iter()
        .map(|n| n["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.contains(&"booking_cancelled".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"refund_issued".to_owned()), "{kinds:?}");
    let refund = app
        .smtp
        .messages()
        .into_iter()
        .find(|m| header(m, "Subject").is_some_and(|s| s.starts_with("Your refund")))
        .unwrap();
    assert!(refund.contains("EUR 200.00"));
}

/// The guest's newest notification, once it has reached `status` (within `limit`).
async fn first_notification_when(
    app: &TestApp,
    token: &str,
    status: &str,
    limit: Duration,
) -> Value {
    let mut found = Value::Null;
    wait_until(
        &format!("a notification {status}"),
        limit,
        async || match my_notifications(app, token).await.into_iter().next() {
            Some(n) if n["status"] == status => {
                found = n;
                true
            }
            _ => false,
        },
    )
    .await;
    found
}

/// Books one stay while the SMTP server misbehaves (`fault(true)`): the guest's confirmation
/// goes RETRYING and nothing is received. Once the fault is lifted it goes out: SENT after at
/// least two attempts, and guest and host receive exactly one email each.
async fn emails_go_out_once_the_server_recovers(backend: Backend, fault: fn(&SmtpSink, bool)) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    fault(&app.smtp, true);
    book(&app, &guest, booking(&property, 10, 12, "pm_card_visa"))
        .await
        .ok();

    first_notification_when(&app, &guest, "RETRYING", Duration::from_secs(15)).await;
    assert!(app.smtp.messages().is_empty());

    fault(&app.smtp, false);
    let n = first_notification_when(&app, &guest, "SENT", Duration::from_secs(20)).await;
    assert!(n["attempts"].as_i64().unwrap() >= 2, "{n}");
    wait_until("both emails", Duration::from_secs(20), async || {
        app.smtp.messages().len() >= 2
    })
    .await;
    assert_eq!(app.smtp.messages().len(), 2);
}

/// The server answers 421 for a while: the email waits it out.
async fn emails_wait_out_an_smtp_outage_and_the_status_tells_the_story(backend: Backend) {
    emails_go_out_once_the_server_recovers(backend, SmtpSink::set_down).await;
}

/// A server that accepts the connection and then never answers must not stall every email
/// behind it: the send times out (`mail.send_timeout_ms`), the row is retried, and the hung
/// connection is dropped rather than reused.
async fn a_server_that_stops_answering_mid_send_does_not_hang_the_mailer(backend: Backend) {
    emails_go_out_once_the_server_recovers(backend, SmtpSink::set_stalled).await;
}

/// A 550 for the recipient will be a 550 next time too: the email is FAILED after one attempt
/// rather than retried twelve times, and it stays FAILED.
async fn an_address_the_server_refuses_for_good_fails_without_retries(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    app.smtp.set_refusing(true);
    book(&app, &guest, booking(&property, 10, 12, "pm_card_visa"))
        .await
        .ok();

    first_notification_when(&app, &guest, "FAILED", Duration::from_secs(15)).await;
    // Retries in the tests come every 200 ms to 1 s: two seconds would show one.
    app.smtp.set_refusing(false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = &my_notifications(&app, &guest).await[0];
    assert_eq!(n["status"], "FAILED", "{n}");
    assert_eq!(n["attempts"], 1, "{n}");
    assert!(n["sentAt"].is_null(), "{n}");
    let to_guest = app
        .smtp
        .messages()
        .iter()
        .filter(|m| header(m, "Subject").is_some_and(|s| s.starts_with("Your stay")))
        .count();
    assert_eq!(to_guest, 0);
}

/// Without a GraphOS licence the router cannot enable subscriptions; it must say so, and
/// clients subscribe at notifications' /ws instead (README: Apollo Client split link).
async fn the_free_router_answers_a_subscription_with_a_clear_error(backend: Backend) {
    let app = spawn(backend).await;
    let (_, guest, _, _) = app.new_user().await;
    let plain = app.gql(BOOKING_CONFIRMED, json!({}), Some(&guest)).await;
    assert_eq!(plain.code(), "SUBSCRIPTION_BAD_HEADER", "{}", plain.body);
    // Even a client that speaks the router's multipart subscription protocol is told no.
    let res = app
        .client
        .post(&app.router_url)
        .bearer_auth(&guest)
        .header("accept", "multipart/mixed;subscriptionSpec=1.0")
        .json(&json!({ "query": BOOKING_CONFIRMED }))
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    println!("router on a multipart subscription: {body}");
    assert!(body.contains("SUBSCRIPTION_DISABLED"), "{body}");
}

const BOOKING_CONFIRMED: &str = "subscription { bookingConfirmed { reservationId propertyTitle checkIn checkOut total { amount currency } confirmedAt } }";

async fn the_guest_hears_of_their_booking_live_and_nobody_else_does(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, guest_refresh, _) = app.new_user().await;
    let (_, other, _, _) = app.new_user().await;

    let mut mine = WsClient::connect(&app.notifications_ws, Some(&guest))
        .await
        .unwrap();
    mine.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    let mut theirs = WsClient::connect(&app.notifications_ws, Some(&other))
        .await
        .unwrap();
    theirs.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    // A second replica of notifications: a subscriber there hears it too, whichever replica
    // consumed the event (they share the consumer group; Redis pub/sub fans out).
    let mut elsewhere = WsClient::connect(&app.notifications2_ws, Some(&guest))
        .await
        .unwrap();
    elsewhere.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let booked = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    let id = booked.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = mine
        .next_result(Duration::from_secs(5))
        .await
        .expect("pushed");
    println!(
        "booking → subscriber: {:?} after the mutation was sent",
        started.elapsed()
    );
    let c = &got["data"]["bookingConfirmed"];
    assert_eq!(c["reservationId"], id.as_str(), "{got}");
    assert_eq!(c["propertyTitle"], "Harbour flat");
    assert_eq!(c["total"], json!({ "amount": 20_000, "currency": "EUR" }));
    assert_eq!(c["checkIn"], crate::booking::day(10));
    let there = elsewhere
        .next_result(Duration::from_secs(5))
        .await
        .expect("fanned out");
    assert_eq!(
        there["data"]["bookingConfirmed"]["reservationId"],
        id.as_str()
    );
    assert!(
        theirs
            .next_result(Duration::from_millis(1_500))
            .await
            .is_none(),
        "another user's subscriber receives nothing"
    );

    // Status changes of one reservation: its guest and its host hear of the cancellation,
    // another user subscribing to the same id hears nothing.
    let status = "subscription($id: ID!) { reservationStatusChanged(reservationId: $id) { reservationId status occurredAt } }";
    let mut guest_watch = WsClient::connect(&app.notifications_ws, Some(&guest))
        .await
        .unwrap();
    guest_watch
        .subscribe("2", status, json!({ "id": id }))
        .await;
    let mut host_watch = WsClient::connect(&app.notifications_ws, Some(&host))
        .await
        .unwrap();
    host_watch.subscribe("2", status, json!({ "id": id })).await;
    let mut snoop = WsClient::connect(&app.notifications_ws, Some(&other))
        .await
        .unwrap();
    snoop.subscribe("2", status, json!({ "id": id })).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.gql(
        "mutation($id: ID!) { cancelReservation(id: $id) { status } }",
        json!({ "id": id }),
        Some(&guest),
    )
    .await
    .ok();
    for watcher in [&mut guest_watch, &mut host_watch] {
        let got = watcher
            .next_result(Duration::from_secs(5))
            .await
            .expect("status pushed");
        assert_eq!(
            got["data"]["reservationStatusChanged"]["status"], "CANCELLED",
            "{got}"
        );
        assert_eq!(
            got["data"]["reservationStatusChanged"]["reservationId"],
            id.as_str()
        );
    }
    assert!(
        snoop
            .next_result(Duration::from_millis(1_000))
            .await
            .is_none()
    );

    // No token, a garbage token, a revoked token: refused.
    assert!(
        WsClient::connect(&app.notifications_ws, None)
            .await
            .is_err()
    );
    assert!(
        WsClient::connect(&app.notifications_ws, Some("garbage"))
            .await
            .is_err()
    );
    app.gql("mutation { logout }", json!({}), Some(&guest))
        .await
        .ok();
    let _ = guest_refresh;
    assert!(
        WsClient::connect(&app.notifications_ws, Some(&guest))
            .await
            .is_err()
    );
}

/// A subscription client cannot make the server hold a huge message: past
/// `WS_MAX_MESSAGE` the connection is closed, and others are unaffected.
#[tokio::test]
async fn an_oversized_subscription_message_closes_only_that_connection() {
    let app = spawn(Backend::Postgres).await;
    let (_, guest, _, _) = app.new_user().await;
    let query = "subscription { bookingConfirmed { reservationId } }";

    // Just under the limit: accepted (an unused variable pads it).
    let mut fits = WsClient::connect(&app.notifications_ws, Some(&guest))
        .await
        .unwrap();
    let pad = "x".repeat(draftr_notifications::app::WS_MAX_MESSAGE - 1_000);
    fits.send_text(json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": { "pad": pad } } }).to_string())
        .await;
    assert!(!fits.closed_within(Duration::from_millis(800)).await);

    // Twice the limit: the connection is closed.
    let mut oversized = WsClient::connect(&app.notifications_ws, Some(&guest))
        .await
        .unwrap();
    let pad = "x".repeat(2 * draftr_notifications::app::WS_MAX_MESSAGE);
    oversized
        .send_text(json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": { "pad": pad } } }).to_string())
        .await;
    assert!(oversized.closed_within(Duration::from_secs(3)).await);

    // The subscriber that stayed within bounds still gets its booking.
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let res = book(&app, &guest, booking(&property, 20, 22, "pm_card_visa")).await;
    let id = res.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = fits
        .next_result(Duration::from_secs(5))
        .await
        .expect("pushed");
    assert_eq!(
        got["data"]["bookingConfirmed"]["reservationId"],
        id.as_str()
    );
}
