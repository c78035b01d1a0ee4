//! The subscription socket against hostile or careless clients (`subgraphs/notifications/src/
//! socket.rs`): the init timeout, refusals and protocol errors with graphql-ws close codes, the
//! per-user connection cap and the per-connection subscription cap, keepalive pings, and the
//! session ending the socket (logout, expiry). Intervals are shortened in the settings.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use draftr_common::testing::Backend;
use draftr_notifications::NotificationsSettings;
use serde_json::json;

use crate::booking::{book, booking, new_listing};
use crate::helpers::{Options, TestApp, spawn_custom};
use crate::ws::WsClient;

const BOOKING_CONFIRMED: &str = "subscription { bookingConfirmed { reservationId } }";

async fn spawn_with_socket(
    tweak: impl FnOnce(&mut NotificationsSettings) + Send + 'static,
) -> TestApp {
    spawn_custom(Backend::Sqlite, Options::default().notifications(tweak)).await
}

/// Opens a socket, sends `connection_init` with `token` and returns how the server closes it.
async fn refusal(url: &str, token: Option<&str>) -> (u16, String) {
    let mut c = WsClient::open(url).await.unwrap();
    let payload = match token {
        Some(t) => json!({ "authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    c.send_text(json!({ "type": "connection_init", "payload": payload }).to_string())
        .await;
    c.close_frame(Duration::from_secs(3))
        .await
        .expect("closed with a close frame")
}

/// Whether the socket is open and served: a graphql-ws `ping` is answered with a `pong`.
async fn answers_ping(c: &mut WsClient) -> bool {
    c.send_text(json!({ "type": "ping" }).to_string()).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while let Some(m) = c
        .raw_message(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        match m["type"].as_str() {
            Some("pong") => return true,
            Some("close") => return false,
            _ => continue,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_sends_connection_init_is_closed_with_4408() {
    let app = spawn_with_socket(|s| s.socket.init_timeout_ms = 500).await;
    let started = Instant::now();
    let mut idle = WsClient::open(&app.notifications_ws).await.unwrap();
    let (code, reason) = idle
        .close_frame(Duration::from_secs(3))
        .await
        .expect("closed");
    let after = started.elapsed();
    println!("no connection_init: closed {code} {reason:?} after {after:?}");
    assert_eq!(
        (code, reason.as_str()),
        (4408, "Connection initialisation timeout")
    );
    assert!(
        after >= Duration::from_millis(450) && after < Duration::from_secs(2),
        "{after:?}"
    );
    // A client that signs in in time is not affected, even past the timeout.
    let (_, token, _, _) = app.new_user().await;
    let mut prompt = WsClient::connect(&app.notifications_ws, Some(&token))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(answers_ping(&mut prompt).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_and_protocol_violations_close_with_their_graphql_ws_codes() {
    let app = spawn_with_socket(|_| {}).await;
    let ws = app.notifications_ws.as_str();
    let (_, token, _, _) = app.new_user().await;

    let (code, reason) = refusal(ws, None).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(
        reason.starts_with("Forbidden") && reason.contains("authorization"),
        "{reason}"
    );
    let (code, reason) = refusal(ws, Some("garbage")).await;
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("not valid"), "{reason}");

    // The legacy protocol is told with a message too, as it always was.
    let mut legacy = WsClient::open_with(ws, "graphql-ws", None).await.unwrap();
    legacy
        .send_text(
            json!({ "type": "connection_init", "payload": { "authorization": "Bearer garbage" } })
                .to_string(),
        )
        .await;
    let told = legacy.raw_message(Duration::from_secs(3)).await.unwrap();
    assert_eq!(told["type"], "connection_error", "{told}");
    assert!(
        told["payload"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid")
    );
    assert_eq!(
        legacy.close_frame(Duration::from_secs(3)).await.unwrap().0,
        4403
    );

    // Not a protocol message.
    let mut c = WsClient::connect(ws, Some(&token)).await.unwrap();
    c.send_text("{ not json".into()).await;
    let (code, reason) = c.close_frame(Duration::from_secs(3)).await.unwrap();
    assert_eq!(code, 4400, "{reason}");
    let mut c = WsClient::connect(ws, Some(&token)).await.unwrap();
    c.send_text(json!({ "type": "subscribe", "id": "1" }).to_string())
        .await;
    assert_eq!(c.close_frame(Duration::from_secs(3)).await.unwrap().0, 4400);
    // The reason (which is logged) does not repeat what the client sent.
    let mut c = WsClient::connect(ws, Some(&token)).await.unwrap();
    c.send_text(json!({ "type": format!("Bearer {token}") }).to_string())
        .await;
    let (code, reason) = c.close_frame(Duration::from_secs(3)).await.unwrap();
    assert_eq!(code, 4400, "{reason}");
    assert!(
        reason.starts_with("Bad request: not a graphql-ws message"),
        "{reason}"
    );
    assert!(!reason.contains(&token), "{reason}");

    // Subscribing before the ack.
    let mut c = WsClient::open(ws).await.unwrap();
    c.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    assert_eq!(
        c.close_frame(Duration::from_secs(3)).await.unwrap(),
        (4401, "Unauthorized".to_owned())
    );

    // A second connection_init.
    let mut c = WsClient::connect(ws, Some(&token)).await.unwrap();
    c.send_text(json!({ "type": "connection_init", "payload": {} }).to_string())
        .await;
    assert_eq!(c.close_frame(Duration::from_secs(3)).await.unwrap().0, 4429);

    // An id that is still active; one that was completed may be used again.
    let mut c = WsClient::connect(ws, Some(&token)).await.unwrap();
    c.subscribe("a", BOOKING_CONFIRMED, json!({})).await;
    c.complete("a").await;
    c.subscribe("a", BOOKING_CONFIRMED, json!({})).await;
    assert!(answers_ping(&mut c).await, "a completed id may be reused");
    c.subscribe("a", BOOKING_CONFIRMED, json!({})).await;
    assert_eq!(
        c.close_frame(Duration::from_secs(3)).await.unwrap(),
        (4409, "Subscriber for a already exists".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_over_the_per_user_cap_is_refused_and_the_others_keep_working() {
    let app = spawn_with_socket(|s| s.socket.max_connections_per_user = 2).await;
    let ws = app.notifications_ws.as_str();
    let (_, token, _, _) = app.new_user().await;
    let (_, other, _, _) = app.new_user().await;

    let mut first = WsClient::connect(ws, Some(&token)).await.unwrap();
    first.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    let second = WsClient::connect(ws, Some(&token)).await.unwrap();
    let (code, reason) = refusal(ws, Some(&token)).await;
    println!("third connection: {code} {reason:?}");
    assert_eq!(code, 4403, "{reason}");
    assert!(reason.contains("too many open connections"), "{reason}");
    assert!(reason.contains("at most 2"), "{reason}");

    // The earlier ones still work; another user is not affected.
    assert!(answers_ping(&mut first).await);
    assert!(WsClient::connect(ws, Some(&other)).await.is_ok());

    // A closed connection gives its place back.
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut again = loop {
        match WsClient::connect(ws, Some(&token)).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "the place never came back: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(answers_ping(&mut again).await);
    assert!(answers_ping(&mut first).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_over_the_cap_is_rate_limited_and_the_earlier_subscriptions_still_hear() {
    let app = spawn_with_socket(|s| s.socket.max_subscriptions_per_connection = 2).await;
    let ws = app.notifications_ws.as_str();
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    let mut c = WsClient::connect(ws, Some(&guest)).await.unwrap();
    c.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    c.subscribe("2", BOOKING_CONFIRMED, json!({})).await;
    c.subscribe("3", BOOKING_CONFIRMED, json!({})).await;
    let refused = c
        .raw_message(Duration::from_secs(3))
        .await
        .expect("an answer");
    println!("third subscription: {refused}");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "3");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    // Completing one makes room.
    c.complete("2").await;
    c.subscribe("4", BOOKING_CONFIRMED, json!({})).await;

    // The legacy protocol (subscriptions-transport-ws) still works as it did.
    let mut legacy = WsClient::open_with(ws, "graphql-ws", None).await.unwrap();
    legacy
        .send_text(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {guest}") } }).to_string())
        .await;
    let ack = legacy.raw_message(Duration::from_secs(3)).await.unwrap();
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    legacy
        .send_text(
            json!({ "type": "start", "id": "1", "payload": { "query": BOOKING_CONFIRMED } })
                .to_string(),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let res = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    let id = res.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut heard = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while heard.len() < 2 {
        let m = c
            .raw_message(deadline.saturating_duration_since(Instant::now()))
            .await
            .unwrap_or_else(|| panic!("only {heard:?} heard of the booking"));
        match m["type"].as_str() {
            Some("next") => {
                assert_eq!(
                    m["payload"]["data"]["bookingConfirmed"]["reservationId"],
                    id.as_str()
                );
                heard.insert(m["id"].as_str().unwrap().to_owned());
            }
            Some("complete") => assert_eq!(m["id"], "2", "{m}"),
            _ => panic!("unexpected {m}"),
        }
    }
    assert_eq!(heard, BTreeSet::from(["1".to_owned(), "4".to_owned()]));
    let data = legacy.raw_message(Duration::from_secs(5)).await.unwrap();
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(
        data["payload"]["data"]["bookingConfirmed"]["reservationId"],
        id.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_closes_the_sessions_open_socket_within_seconds() {
    let app = spawn_with_socket(|s| s.socket.session_check_ms = 300).await;
    let (email, token, _, _) = app.new_user().await;
    // A second session of the same user (another device) is not ended by this logout.
    let other_session =
        app.login(&email, crate::helpers::PASSWORD).await.ok()["login"]["accessToken"]
            .as_str()
            .unwrap()
            .to_owned();

    // On the second replica: the logout reaches it through the shared revocation list.
    let mut c = WsClient::connect(&app.notifications2_ws, Some(&token))
        .await
        .unwrap();
    c.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    let mut device = WsClient::connect(&app.notifications_ws, Some(&other_session))
        .await
        .unwrap();
    device.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    assert!(answers_ping(&mut c).await);

    let started = Instant::now();
    let out = app
        .gql("mutation { logout }", json!({}), Some(&token))
        .await;
    assert_eq!(out.ok()["logout"], true);
    let (code, reason) = c
        .close_frame(Duration::from_secs(3))
        .await
        .expect("closed after logout");
    println!(
        "after logout: closed {code} {reason:?} {:?} after the logout was sent",
        started.elapsed()
    );
    assert_eq!(code, 4403);
    assert!(reason.contains("session revoked"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        answers_ping(&mut device).await,
        "the other session's socket stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_is_closed_when_its_token_expires() {
    let app = spawn_custom(
        Backend::Sqlite,
        Options::default().auth(|s| s.tokens.access_ttl_secs = 3),
    )
    .await;
    let (_, token, _, _) = app.new_user().await;
    let issued = Instant::now();
    let mut c = WsClient::connect(&app.notifications_ws, Some(&token))
        .await
        .unwrap();
    c.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    let (code, reason) = c
        .close_frame(Duration::from_secs(6))
        .await
        .expect("closed at expiry");
    let after = issued.elapsed();
    println!("expiring token: closed {code} {reason:?} {after:?} after it was issued");
    assert_eq!(code, 4403);
    assert!(reason.contains("token expired"), "{reason}");
    // At `exp` (whole seconds, so 2–3 s after issue), not when a session check would notice
    // (the verifier allows 5 s of clock skew past `exp`).
    assert!(after < Duration::from_millis(4_500), "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_pings_and_closes_a_client_that_stays_silent() {
    let app = spawn_with_socket(|s| {
        s.socket.ping_interval_ms = 200;
        s.socket.idle_timeout_ms = 700;
    })
    .await;
    let ws = app.notifications_ws.as_str();
    let (_, token, _, _) = app.new_user().await;

    // Side by side: a client that answers the pings stays, well past the idle timeout; one
    // that does not gets the ping, and the server gives up on it.
    let mut lively = WsClient::connect(ws, Some(&token)).await.unwrap();
    lively.subscribe("1", BOOKING_CONFIRMED, json!({})).await;
    let mut silent = WsClient::connect(ws, Some(&token)).await.unwrap();
    let started = Instant::now();
    let (stayed, (ping, close)) =
        tokio::join!(lively.next_result(Duration::from_millis(1_600)), async {
            let ping = silent.raw_message(Duration::from_secs(1)).await;
            let close = silent.close_frame(Duration::from_secs(3)).await;
            (ping, close.map(|c| (c, started.elapsed())))
        });
    assert_eq!(
        stayed, None,
        "neither a result nor a close for the lively client"
    );
    assert_eq!(ping, Some(json!({ "type": "ping" })));
    let ((code, reason), after) = close.expect("the silent client is closed");
    println!("silent client: closed {code} {reason:?} {after:?} after its connection_init");
    assert_eq!(code, 3008, "{reason}");
    assert!(reason.contains("keepalive"), "{reason}");
    assert!(after < Duration::from_millis(1_500), "{after:?}");

    // A legacy client gets `ka` and WebSocket pings, which its WebSocket library answers.
    let mut legacy = WsClient::open_with(ws, "graphql-ws", None).await.unwrap();
    legacy
        .send_text(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } }).to_string())
        .await;
    let deadline = Instant::now() + Duration::from_millis(1_600);
    let mut kas = 0;
    while let Some(m) = legacy
        .raw_message(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        assert_ne!(m["type"], "close", "{m}");
        kas += usize::from(m["type"] == "ka");
    }
    assert!(kas >= 3, "{kas} keepalives");
}
