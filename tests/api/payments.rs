//! Payments against an HTTP server that speaks Stripe's API and behaves as Stripe documents
//! (`draftr_test_support::stripe`: stored answers by `Idempotency-Key`, 500s included,
//! forgotten after 24 hours), and Stripe's webhooks.

use std::sync::Arc;
use std::time::Duration;

use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use draftr_payments::provider::{Authorization, Charge, PaymentProvider, StripeProvider};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::MockServer;

use crate::booking::{book, booking, new_listing};
use crate::helpers::{Options, SERVICE_TOKEN, TestApp, WEBHOOK_SECRET, spawn, spawn_custom};
use draftr_test_support::stripe::{FakeStripe, Fault, KEY_TTL, Op};

test_on_both_backends!(
    a_booking_with_the_stripe_provider_charges_once_despite_a_failed_capture,
    an_authorization_answered_with_a_500_is_found_by_the_retry_and_charged_once,
    an_authorization_answered_with_a_500_is_charged_once_even_after_stripe_forgot_the_key,
    webhooks_are_verified_and_each_event_is_processed_once,
    a_webhook_whose_apply_fails_is_not_recorded_so_the_redelivery_applies_it,
);

fn stripe_provider(server: &MockServer) -> StripeProvider {
    stripe_provider_with(server, Duration::from_secs(5), 3, Duration::from_secs(600))
}

fn stripe_provider_with(
    server: &MockServer,
    timeout: Duration,
    attempts: u32,
    search_lag: Duration,
) -> StripeProvider {
    StripeProvider::new(
        &SecretString::from("sk_test_fake"),
        Some(&format!("{}/", server.uri())),
        timeout,
        attempts,
        search_lag,
    )
    .unwrap()
}

/// POSTs that create a PaymentIntent (replays included).
fn creates(fake: &FakeStripe) -> usize {
    fake.state()
        .requests
        .iter()
        .filter(|(m, p, _)| m == "POST" && p == "/v1/payment_intents")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_operations_are_for_services_only() {
    let app = spawn(Backend::Postgres).await;
    let (_, user, _, user_id) = app.new_user().await;
    let authorize = "mutation($r: ID!, $u: ID!) { authorizePayment(reservationId: $r, guestId: $u, hostId: $u, amount: 100, currency: \"EUR\", paymentMethod: \"pm_card_visa\") { id } }";
    let vars = json!({ "r": uuid::Uuid::new_v4().to_string(), "u": user_id });
    // The router does not even know the operation (@inaccessible).
    let routed = app.gql(authorize, vars.clone(), Some(&user)).await;
    assert_eq!(
        routed.code(),
        "GRAPHQL_VALIDATION_FAILED",
        "{}",
        routed.body
    );
    // Straight to payments: a user token is not a service credential, nor is a wrong one.
    let direct = app
        .post(&app.payments_url, authorize, vars.clone(), Some(&user), &[])
        .await;
    assert_eq!(direct.code(), "FORBIDDEN");
    let forged = app
        .post(
            &app.payments_url,
            authorize,
            vars,
            None,
            &[("x-draftr-service-token", "guess")],
        )
        .await;
    assert_eq!(forged.code(), "FORBIDDEN");
    assert_eq!(app.provider.counts().authorizations, 0);
}

/// A visa charge of `amount` for a new reservation, authorized under its first key.
async fn authorized(stripe: &StripeProvider, amount: i64) -> (Charge, String) {
    let reservation = uuid::Uuid::new_v4();
    let charge = Charge {
        reservation_id: reservation,
        amount,
        currency: "EUR".into(),
        payment_method: "pm_card_visa".into(),
    };
    let Authorization::Authorized { provider_ref } = stripe
        .authorize(&charge, &format!("draftr-{reservation}-authorize"))
        .await
        .unwrap()
    else {
        panic!("visa is authorized")
    };
    (charge, provider_ref)
}

#[tokio::test]
async fn the_stripe_provider_settles_a_stored_500_by_looking_never_by_replaying() {
    let (server, fake) = FakeStripe::start().await;
    let stripe = stripe_provider(&server);
    let (charge, provider_ref) = authorized(&stripe, 30_000).await;
    let reservation = charge.reservation_id;
    let key = |step: &str| format!("draftr-{reservation}-{step}");
    // A repeat of the key is answered with the first response: the same PaymentIntent.
    let again = stripe.authorize(&charge, &key("authorize")).await.unwrap();
    assert_eq!(
        again,
        Authorization::Authorized {
            provider_ref: provider_ref.clone()
        }
    );
    assert_eq!(fake.state().intents.len(), 1);

    // The capture happens and the answer is a 500, stored under the key: the provider looks
    // at the PaymentIntent instead of repeating the key (which would only replay the 500).
    fake.fail_next(Op::Capture, Fault::After);
    stripe
        .capture(&provider_ref, &key("capture"))
        .await
        .expect("settled by retrieving the PaymentIntent");
    // Asked again (a reconciler pass): the stored 500 comes back, the look says captured.
    stripe
        .capture(&provider_ref, &key("capture"))
        .await
        .unwrap();
    assert_eq!(fake.state().captures, 1);

    // The refund is made and the answer lost: found among the PaymentIntent's refunds.
    fake.fail_next(Op::Refund, Fault::After);
    let refund = stripe
        .refund(&provider_ref, 10_000, &key("refund"))
        .await
        .unwrap();
    let again = stripe
        .refund(&provider_ref, 10_000, &key("refund"))
        .await
        .unwrap();
    assert_eq!(refund, again);
    assert_eq!(fake.state().refunds.len(), 1, "one refund, however asked");

    // Found by the reservation id in the metadata (how a lost authorization is settled).
    let found = stripe.find_authorization(reservation).await.unwrap();
    assert_eq!(
        found,
        Some(draftr_payments::provider::Found::Captured {
            provider_ref: provider_ref.clone()
        })
    );
    assert_eq!(
        stripe
            .find_authorization(uuid::Uuid::new_v4())
            .await
            .unwrap(),
        None
    );

    let declined = stripe
        .authorize(
            &Charge {
                payment_method: "pm_card_chargeDeclined".into(),
                reservation_id: uuid::Uuid::new_v4(),
                ..charge.clone()
            },
            "draftr-other-authorize",
        )
        .await
        .unwrap();
    assert!(
        matches!(declined, Authorization::Declined { ref message, .. } if message == "Your card was declined.")
    );

    let s = fake.state();
    assert!(
        s.requests
            .iter()
            .all(|(m, _, key)| m != "POST" || key.is_some()),
        "every POST carries an Idempotency-Key: {:?}",
        s.requests
    );
    let captures: Vec<_> = s
        .requests
        .iter()
        .filter(|r| r.1.ends_with("/capture"))
        .collect();
    assert_eq!(
        captures.len(),
        2,
        "the stored 500 is not hammered: {captures:?}"
    );
}

#[tokio::test]
async fn a_capture_that_failed_before_happening_is_made_under_a_fresh_key_once() {
    let (server, fake) = FakeStripe::start().await;
    let stripe = stripe_provider(&server);
    let (charge, provider_ref) = authorized(&stripe, 5_000).await;
    let reservation = charge.reservation_id;
    fake.fail_next(Op::Capture, Fault::Before);
    let key = format!("draftr-{reservation}-capture");
    stripe.capture(&provider_ref, &key).await.unwrap();
    stripe.capture(&provider_ref, &key).await.unwrap();
    let s = fake.state();
    assert_eq!(s.captures, 1);
    let keys: Vec<_> = s
        .requests
        .iter()
        .filter(|r| r.1.ends_with("/capture"))
        .map(|r| r.2.clone().unwrap())
        .collect();
    assert_eq!(keys[0], key);
    assert!(
        keys[1].starts_with(&key) && keys[1] != key,
        "a fresh key, after a look: {keys:?}"
    );
}

async fn a_booking_with_the_stripe_provider_charges_once_despite_a_failed_capture(
    backend: Backend,
) {
    let (server, fake) = FakeStripe::start().await;
    let app = spawn_custom(
        backend,
        Options::default().provider(Arc::new(stripe_provider(&server))),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 15_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    fake.fail_next(Op::Capture, Fault::Before);

    let res = app
        .gql(
            "mutation($i: CreateReservationInput!) { createReservation(input: $i) { status payment { status provider amount { amount } } } }",
            json!({ "i": booking(&property, 10, 12, "pm_card_visa") }),
            Some(&guest),
        )
        .await;
    let r = &res.ok()["createReservation"];
    assert_eq!(r["status"], "CONFIRMED");
    assert_eq!(r["payment"]["provider"], "stripe");
    assert_eq!(r["payment"]["status"], "CAPTURED");
    assert_eq!(r["payment"]["amount"]["amount"], 30_000);

    let declined = book(
        &app,
        &guest,
        booking(&property, 20, 22, "pm_card_chargeDeclined"),
    )
    .await;
    assert_eq!(declined.code(), "PAYMENT_DECLINED");

    let s = fake.state();
    assert!(
        s.requests
            .iter()
            .all(|(m, _, key)| m != "POST" || key.is_some())
    );
    assert!(
        s.requests
            .iter()
            .filter_map(|r| r.2.as_deref())
            .all(|k| k.starts_with("draftr-")),
        "keys derive from the reservation"
    );
    assert_eq!((s.live_intents(), s.captures), (1, 1));
}

/// A booking whose authorization is made at Stripe but answered with a 500 (stored under the
/// key); then the guest retries with the same `idempotencyKey`, `expire` after Stripe forgot
/// the key or not. Returns the stand-in to count on.
async fn authorize_answered_500_then_retry(backend: Backend, expire: bool) -> FakeStripe {
    let (server, fake) = FakeStripe::start().await;
    let app = spawn_custom(
        backend,
        Options::default().provider(Arc::new(stripe_provider(&server))),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 15_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let input = booking(&property, 10, 12, "pm_card_visa");

    // Search lags writes, as Stripe's does.
    fake.set_search_lag(Duration::from_secs(30));
    fake.fail_next(Op::Authorize, Fault::After);
    let first = book(&app, &guest, input.clone()).await;
    assert_eq!(first.code(), "PAYMENT_UNAVAILABLE", "{}", first.body);
    assert!(
        first.message().contains("same idempotencyKey"),
        "{}",
        first.message()
    );
    // The dates stay held: the guest may well have been charged.
    let held = app
        .gql(
            "query($id: ID!, $a: Date!, $b: Date!) { property(id: $id) { isAvailable(checkIn: $a, checkOut: $b) } }",
            json!({ "id": property, "a": crate::booking::day(10), "b": crate::booking::day(12) }),
            Some(&guest),
        )
        .await;
    assert_eq!(held.ok()["property"]["isAvailable"], false);

    // Retried at once: search does not show the PaymentIntent yet, and it is too early to
    // conclude there is none, so nothing is sent again.
    let early = book(&app, &guest, input.clone()).await;
    assert_eq!(early.code(), "PAYMENT_UNAVAILABLE", "{}", early.body);
    assert_eq!(creates(&fake), 1);

    fake.advance(if expire {
        KEY_TTL + Duration::from_secs(3600)
    } else {
        Duration::from_secs(60)
    });
    let retry = app
        .gql(
            "mutation($i: CreateReservationInput!) { createReservation(input: $i) { status payment { status } } }",
            json!({ "i": input }),
            Some(&guest),
        )
        .await;
    let r = &retry.ok()["createReservation"];
    assert_eq!(r["status"], "CONFIRMED", "{}", retry.body);
    assert_eq!(r["payment"]["status"], "CAPTURED");
    assert_eq!(
        creates(&fake),
        1,
        "the retry looked the authorization up and did not send it again"
    );
    fake
}

async fn an_authorization_answered_with_a_500_is_found_by_the_retry_and_charged_once(
    backend: Backend,
) {
    let fake = authorize_answered_500_then_retry(backend, false).await;
    let s = fake.state();
    assert_eq!((s.intents.len(), s.captures), (1, 1));
}

async fn an_authorization_answered_with_a_500_is_charged_once_even_after_stripe_forgot_the_key(
    backend: Backend,
) {
    // A replay of the key would now create a second PaymentIntent; a lookup does not.
    let fake = authorize_answered_500_then_retry(backend, true).await;
    let s = fake.state();
    assert_eq!((s.intents.len(), s.captures), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_that_never_happened_is_tried_again_only_once_a_lookup_can_be_trusted() {
    // The 500 comes before anything is made, and search lags: until the lag has passed, "not
    // found" proves nothing, so the retry is told to wait; after it, a new attempt (a new key)
    // is safe and makes the one PaymentIntent.
    let (server, fake) = FakeStripe::start().await;
    let lag = Duration::from_millis(800);
    let provider = stripe_provider_with(&server, Duration::from_millis(200), 1, lag);
    let app = spawn_custom(
        Backend::Postgres,
        Options::default().provider(Arc::new(provider)),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 15_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let input = booking(&property, 10, 12, "pm_card_visa");

    fake.fail_next(Op::Authorize, Fault::Before);
    assert_eq!(
        book(&app, &guest, input.clone()).await.code(),
        "PAYMENT_UNAVAILABLE"
    );
    let early = book(&app, &guest, input.clone()).await;
    assert_eq!(early.code(), "PAYMENT_UNAVAILABLE", "{}", early.body);
    assert_eq!(
        creates(&fake),
        1,
        "no second attempt while the lookup may lag"
    );

    tokio::time::sleep(lag + Duration::from_millis(200)).await;
    let retry = book(&app, &guest, input).await;
    assert_eq!(
        retry.ok()["createReservation"]["status"],
        "CONFIRMED",
        "{}",
        retry.body
    );
    let s = fake.state();
    assert_eq!((s.intents.len(), s.captures), (1, 1));
    let keys: Vec<_> = s
        .requests
        .iter()
        .filter(|(m, p, _)| m == "POST" && p == "/v1/payment_intents")
        .map(|r| r.2.clone().unwrap())
        .collect();
    assert!(keys[1].ends_with("-authorize-2"), "{keys:?}");
}

fn sign(payload: &str, secret: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

async fn post_webhook(app: &TestApp, body: &str, signature: Option<String>) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}webhooks/stripe", app.payments_url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(sig) = signature {
        req = req.header("stripe-signature", sig);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Authorizes a payment as the saga does (a service call) and returns its reservation and a
/// `payment_intent.canceled` event `event_id` for it, as Stripe sends one when the payment is
/// canceled from its dashboard.
async fn authorized_then_canceled(app: &TestApp, event_id: &str) -> (uuid::Uuid, String) {
    let reservation = uuid::Uuid::new_v4();
    let authorized = app
        .post(
            &app.payments_url,
            "mutation($r: ID!, $u: ID!) { authorizePayment(reservationId: $r, guestId: $u, hostId: $u, amount: 5000, currency: \"EUR\", paymentMethod: \"pm_card_visa\") { id status } }",
            json!({ "r": reservation.to_string(), "u": uuid::Uuid::new_v4().to_string() }),
            None,
            &[("x-draftr-service-token", SERVICE_TOKEN)],
        )
        .await;
    assert_eq!(authorized.ok()["authorizePayment"]["status"], "AUTHORIZED");
    let provider_ref = {
        use sea_orm::{ConnectionTrait, Statement};
        let db = draftr_common::db::connect(&app.payments_db.settings)
            .await
            .unwrap();
        db.query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT provider_ref FROM payments",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<String>("", "provider_ref")
        .unwrap()
    };
    let event = json!({
        "id": event_id, "object": "event", "api_version": "2025-01-27.acacia",
        "created": 1_790_000_000, "livemode": false, "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": "payment_intent.canceled",
        "data": { "object": draftr_test_support::stripe::payment_intent(&provider_ref, 5000, "eur", "canceled") },
    })
    .to_string();
    (reservation, event)
}

async fn webhooks_are_verified_and_each_event_is_processed_once(backend: Backend) {
    let app = spawn(backend).await;
    // An authorization to act on, made the way the saga makes it (a service call), and
    // Stripe's word that it was canceled from the dashboard.
    let (reservation, event) = authorized_then_canceled(&app, "evt_test_canceled_1").await;
    let now = chrono::Utc::now().timestamp();

    let refused = [
        ("missing header", post_webhook(&app, &event, None).await),
        (
            "wrong secret",
            post_webhook(&app, &event, Some(sign(&event, "whsec_wrong", now))).await,
        ),
        (
            "tampered body",
            post_webhook(
                &app,
                &event.replace("\"livemode\":false", "\"livemode\":true"),
                Some(sign(&event, WEBHOOK_SECRET, now)),
            )
            .await,
        ),
        (
            "stale timestamp",
            post_webhook(&app, &event, Some(sign(&event, WEBHOOK_SECRET, now - 301))).await,
        ),
        (
            "garbage header",
            post_webhook(&app, &event, Some("t=abc,v1=zz".into())).await,
        ),
    ];
    for (what, (status, _)) in &refused {
        assert_eq!(*status, 400, "{what}");
    }
    assert_eq!(
        payment_status(&app, reservation).await,
        "AUTHORIZED",
        "refused events change nothing"
    );

    // The same event, delivered five times: processed once.
    let mut duplicates = Vec::new();
    for _ in 0..5 {
        let (status, body) =
            post_webhook(&app, &event, Some(sign(&event, WEBHOOK_SECRET, now))).await;
        assert_eq!(status, 200);
        duplicates.push(body["duplicate"].as_bool().unwrap());
    }
    assert_eq!(duplicates, [false, true, true, true, true]);
    assert_eq!(payment_status(&app, reservation).await, "CANCELED");
    let recorded = {
        use sea_orm::{ConnectionTrait, Statement};
        let db = draftr_common::db::connect(&app.payments_db.settings)
            .await
            .unwrap();
        db.query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM webhook_events",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
    };
    assert_eq!(recorded, 1);
}

async fn payment_status(app: &TestApp, reservation: uuid::Uuid) -> String {
    app.post(
        &app.payments_url,
        "query($r: ID!) { paymentForReservation(reservationId: $r) { status } }",
        json!({ "r": reservation.to_string() }),
        None,
        &[("x-draftr-service-token", SERVICE_TOKEN)],
    )
    .await
    .ok()["paymentForReservation"]["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Runs `sql` on the payments database (DDL a test uses to make a step fail).
async fn payments_sql(app: &TestApp, sql: &str) {
    use sea_orm::ConnectionTrait;
    let db = draftr_common::db::connect(&app.payments_db.settings)
        .await
        .unwrap();
    db.execute_unprepared(sql).await.unwrap();
}

/// A crash between recording a webhook and applying it must not lose the event. The apply is
/// made to fail (a trigger refuses the payment update) and so is any attempt to forget the
/// delivery afterwards (a trigger refuses deleting webhook events), as if the process died in
/// between: the event is not recorded, and Stripe's redelivery applies it.
async fn a_webhook_whose_apply_fails_is_not_recorded_so_the_redelivery_applies_it(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let (reservation, event) = authorized_then_canceled(&app, "evt_test_crash_1").await;
    let now = chrono::Utc::now().timestamp();

    let (fail_apply, fail_forget, heal): (&[&str], &[&str], &[&str]) = match backend {
        Backend::Postgres => (
            &[
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'simulated crash'; END $$",
                "CREATE TRIGGER crash_apply BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION refuse()",
            ],
            &[
                "CREATE TRIGGER crash_forget BEFORE DELETE ON webhook_events FOR EACH ROW EXECUTE FUNCTION refuse()",
            ],
            &["DROP TRIGGER crash_apply ON payments"],
        ),
        Backend::Sqlite => (
            &[
                "CREATE TRIGGER crash_apply BEFORE UPDATE ON payments BEGIN SELECT RAISE(ABORT, 'simulated crash'); END",
            ],
            &[
                "CREATE TRIGGER crash_forget BEFORE DELETE ON webhook_events BEGIN SELECT RAISE(ABORT, 'simulated crash'); END",
            ],
            &["DROP TRIGGER crash_apply"],
        ),
    };
    for sql in fail_apply.iter().chain(fail_forget) {
        payments_sql(&app, sql).await;
    }
    let (status, _) = post_webhook(&app, &event, Some(sign(&event, WEBHOOK_SECRET, now))).await;
    assert_eq!(status, 500, "Stripe must retry");
    assert_eq!(payment_status(&app, reservation).await, "AUTHORIZED");

    for sql in heal {
        payments_sql(&app, sql).await;
    }
    let (status, body) = post_webhook(&app, &event, Some(sign(&event, WEBHOOK_SECRET, now))).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["duplicate"], false,
        "the failed delivery left nothing recorded"
    );
    assert_eq!(payment_status(&app, reservation).await, "CANCELED");
}
