//! Payments against an HTTP server that speaks Stripe's API (a wiremock stand-in that replays
//! by `Idempotency-Key` and fails the first capture with a 500), and Stripe's webhooks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use draftr_payments::provider::{Authorization, Charge, PaymentProvider, StripeProvider};
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::booking::{book, booking, new_listing};
use crate::helpers::{Options, SERVICE_TOKEN, TestApp, WEBHOOK_SECRET, spawn, spawn_custom};

test_on_both_backends!(
    a_booking_with_the_stripe_provider_charges_once_despite_a_failed_capture,
    webhooks_are_verified_and_each_event_is_processed_once,
    a_webhook_whose_apply_fails_is_not_recorded_so_the_redelivery_applies_it,
);

/// What the Stripe stand-in saw and did.
#[derive(Default)]
struct StripeState {
    /// (method, path, Idempotency-Key) of every request.
    requests: Vec<(String, String, Option<String>)>,
    /// Idempotency-Key → the first (status, body), replayed for repeats, as Stripe does.
    replies: HashMap<String, (u16, Value)>,
    intents: HashMap<String, (i64, String, String)>,
    next: u64,
    captures_failed: u64,
    captures: u64,
    authorizations: u64,
    refunds: u64,
}

#[derive(Clone, Default)]
struct FakeStripe(Arc<Mutex<StripeState>>);

fn intent(id: &str, amount: i64, currency: &str, status: &str) -> Value {
    json!({
        "id": id, "object": "payment_intent", "amount": amount,
        "amount_capturable": if status == "requires_capture" { amount } else { 0 },
        "amount_received": if status == "succeeded" { amount } else { 0 },
        "capture_method": "manual", "confirmation_method": "automatic",
        "created": 1_790_000_000, "currency": currency, "livemode": false,
        "metadata": {}, "payment_method_types": ["card"], "status": status,
    })
}

impl Respond for FakeStripe {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();
        let path = request.url.path().to_owned();
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        s.requests
            .push((request.method.to_string(), path.clone(), key.clone()));
        if let Some((status, body)) = key.as_ref().and_then(|k| s.replies.get(k)) {
            return ResponseTemplate::new(*status).set_body_json(body.clone());
        }
        let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        let parts: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
        let (status, body) = match parts.as_slice() {
            ["payment_intents"] => {
                let amount: i64 = form["amount"].parse().unwrap();
                let currency = form["currency"].clone();
                assert_eq!(
                    form.get("capture_method").map(String::as_str),
                    Some("manual")
                );
                match form["payment_method"].as_str() {
                    "pm_card_visa" => {
                        s.next += 1;
                        s.authorizations += 1;
                        let id = format!("pi_fake_{}", s.next);
                        s.intents.insert(
                            id.clone(),
                            (amount, currency.clone(), "requires_capture".into()),
                        );
                        (200, intent(&id, amount, &currency, "requires_capture"))
                    }
                    _ => (
                        402,
                        json!({ "error": { "type": "card_error", "code": "card_declined",
                            "decline_code": "generic_decline", "message": "Your card was declined." } }),
                    ),
                }
            }
            ["payment_intents", id, "capture"] => {
                if s.captures_failed == 0 {
                    // Stripe had a bad moment; nothing happened, and nothing is stored for the key.
                    s.captures_failed += 1;
                    return ResponseTemplate::new(500).set_body_json(
                        json!({ "error": { "type": "api_error", "message": "An unknown error occurred" } }),
                    );
                }
                let (amount, currency, _) = s.intents[*id].clone();
                s.intents.get_mut(*id).unwrap().2 = "succeeded".into();
                s.captures += 1;
                (200, intent(id, amount, &currency, "succeeded"))
            }
            ["payment_intents", id, "cancel"] => {
                let (amount, currency, _) = s.intents[*id].clone();
                (200, intent(id, amount, &currency, "canceled"))
            }
            ["refunds"] => {
                s.refunds += 1;
                let (_, currency, _) = s.intents[&form["payment_intent"]].clone();
                (
                    200,
                    json!({ "id": format!("re_fake_{}", s.refunds), "object": "refund",
                        "amount": form["amount"].parse::<i64>().unwrap(), "created": 1_790_000_000,
                        "currency": currency, "payment_intent": form["payment_intent"], "status": "succeeded" }),
                )
            }
            other => panic!("unexpected Stripe call {other:?}"),
        };
        if let Some(k) = key {
            s.replies.insert(k, (status, body.clone()));
        }
        ResponseTemplate::new(status).set_body_json(body)
    }
}

async fn fake_stripe() -> (MockServer, FakeStripe) {
    let server = MockServer::start().await;
    let fake = FakeStripe::default();
    Mock::given(wiremock::matchers::any())
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    (server, fake)
}

fn stripe_provider(server: &MockServer) -> StripeProvider {
    StripeProvider::new(
        &SecretString::from("sk_test_fake"),
        Some(&format!("{}/", server.uri())),
        Duration::from_secs(5),
        3,
    )
    .unwrap()
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

#[tokio::test]
async fn the_stripe_provider_retries_a_failed_capture_with_the_same_key_and_captures_once() {
    let (server, fake) = fake_stripe().await;
    let stripe = stripe_provider(&server);
    let reservation = uuid::Uuid::new_v4();
    let charge = Charge {
        reservation_id: reservation,
        amount: 30_000,
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
    // A replay of the authorization (a retried saga step) gets the same PaymentIntent.
    let again = stripe
        .authorize(&charge, &format!("draftr-{reservation}-authorize"))
        .await
        .unwrap();
    assert_eq!(
        again,
        Authorization::Authorized {
            provider_ref: provider_ref.clone()
        }
    );

    stripe
        .capture(&provider_ref, &format!("draftr-{reservation}-capture"))
        .await
        .expect("the 500 is retried");
    stripe
        .refund(
            &provider_ref,
            10_000,
            &format!("draftr-{reservation}-refund"),
        )
        .await
        .unwrap();
    let declined = stripe
        .authorize(
            &Charge {
                payment_method: "pm_card_chargeDeclined".into(),
                ..charge.clone()
            },
            "draftr-other-authorize",
        )
        .await
        .unwrap();
    assert!(
        matches!(declined, Authorization::Declined { ref message, .. } if message == "Your card was declined.")
    );

    let s = fake.0.lock().unwrap();
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
    assert_eq!(captures.len(), 2, "the failed capture was retried");
    assert_eq!(captures[0].2, captures[1].2, "with the same key");
    assert_eq!((s.authorizations, s.captures, s.refunds), (1, 1, 1));
}

async fn a_booking_with_the_stripe_provider_charges_once_despite_a_failed_capture(
    backend: Backend,
) {
    let (server, fake) = fake_stripe().await;
    let app = spawn_custom(
        backend,
        Options::default().provider(Arc::new(stripe_provider(&server))),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 15_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

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

    let s = fake.0.lock().unwrap();
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
    assert_eq!((s.authorizations, s.captures_failed, s.captures), (1, 1, 1));
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
        "data": { "object": intent(&provider_ref, 5000, "eur", "canceled") },
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
