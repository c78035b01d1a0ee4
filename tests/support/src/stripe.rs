//! A Stripe stand-in: an HTTP server that speaks the part of Stripe's API Draftr uses
//! (PaymentIntents with manual capture, their search, refunds) and behaves as Stripe documents
//! it (<https://docs.stripe.com/api/idempotent_requests>):
//!
//! - every answer to a POST with an `Idempotency-Key` is stored under the key, **500s
//!   included**, and replayed for a repeat of the key; a repeat with other parameters is
//!   refused (400 `idempotency_error`); keys are forgotten after 24 hours;
//! - Stripe's test payment methods: [`ACCEPTED`] ones authorize, `pm_card_chargeDeclined…`
//!   ones decline, any other id is refused (400 `resource_missing`, "No such PaymentMethod"),
//!   as the simulated provider does;
//! - a declined card still creates a PaymentIntent (`requires_payment_method`, with
//!   `last_payment_error`) and answers 402;
//! - capturing or voiding a PaymentIntent that is past that state answers 400
//!   `payment_intent_unexpected_state`;
//! - search (`metadata['reservation_id']:'…'`) is consistent at once unless told to lag behind
//!   writes ([`FakeStripe::set_search_lag`]).
//!
//! Time is virtual: [`FakeStripe::advance`] moves it, so "the key has expired" takes no wait.
//! Faults are injected per operation: a 500 before anything happens, or after the change
//! took effect (the worst case: it happened and nobody was told).
//!
//! One stand-in serves both kinds of test: a provider in the test process (`tests/api`
//! payments) and a [`Cluster`](crate::cluster::Cluster)'s payments replicas, separate
//! processes that reach it by its URL. The cluster cannot use the simulated provider: that one
//! keeps its PaymentIntents in the memory of the payments process that made them, so with two
//! replicas an authorization made by one is unknown to the other, and a replica that is killed
//! takes its authorizations with it. In production the replicas share Stripe; here they share
//! this.
//!
//! A request the stand-in does not model (another route, another search, a missing parameter)
//! is answered as Stripe would answer it (4xx `invalid_request_error`), so a caller that
//! strays fails its test rather than a server thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// How long Stripe keeps an idempotency key.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 3600);

/// Payment methods that authorize (Stripe's test cards).
pub const ACCEPTED: &[&str] = &[
    "pm_card_visa",
    "pm_card_visa_debit",
    "pm_card_mastercard",
    "pm_card_amex",
];

/// The prefix of Stripe's test payment methods that decline.
const DECLINED_PREFIX: &str = "pm_card_chargeDeclined";

/// Which call a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Authorize,
    Capture,
    Cancel,
    Refund,
}

/// A 500 injected into the next call of an [`Op`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing happens; the 500 is stored under the key.
    Before,
    /// The change takes effect, then the answer is a 500, stored under the key.
    After,
}

/// One PaymentIntent, as the stand-in keeps it.
#[derive(Debug, Clone)]
pub struct Intent {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// Stripe's status: `requires_capture`, `succeeded`, `canceled`, `requires_payment_method`.
    pub status: String,
    pub reservation_id: Option<String>,
    /// Refunded so far, in minor units.
    pub refunded: i64,
    created: Duration,
    decline: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct Refund {
    pub id: String,
    pub payment_intent: String,
    pub amount: i64,
    pub draftr_key: Option<String>,
}

/// What the stand-in saw and did.
#[derive(Default)]
pub struct State {
    /// (method, path, Idempotency-Key) of every request.
    pub requests: Vec<(String, String, Option<String>)>,
    /// Key → (stored at, parameters, status, body).
    replies: HashMap<String, (Duration, String, u16, Value)>,
    pub intents: Vec<Intent>,
    /// PaymentIntent id → its index in `intents` (a cluster's run makes thousands).
    by_id: HashMap<String, usize>,
    pub refunds: Vec<Refund>,
    faults: HashMap<Op, Vec<Fault>>,
    now: Duration,
    search_lag: Duration,
    next: u64,
    /// Funds really captured (never a replay).
    pub captures: u64,
}

impl State {
    /// PaymentIntents that hold or took money.
    pub fn live_intents(&self) -> usize {
        self.intents
            .iter()
            .filter(|i| i.status == "requires_capture" || i.status == "succeeded")
            .count()
    }
}

#[derive(Clone, Default)]
pub struct FakeStripe(pub Arc<Mutex<State>>);

impl FakeStripe {
    /// Starts the stand-in; its URL (with a trailing `/`) goes to the provider as `api_base`
    /// (a cluster's payments replicas get it as `PROVIDER__STRIPE_API_BASE`). It serves until
    /// the [`MockServer`] is dropped.
    pub async fn start() -> (MockServer, FakeStripe) {
        // The stand-in keeps its own log (`State::requests`); wiremock's copy of every request,
        // bodies included, would only grow through a long cluster run.
        let server = MockServer::builder()
            .disable_request_recording()
            .start()
            .await;
        let fake = FakeStripe::default();
        Mock::given(wiremock::matchers::any())
            .respond_with(fake.clone())
            .mount(&server)
            .await;
        (server, fake)
    }

    /// Its state. A panic elsewhere while it was held does not hide it: a failing test
    /// still gets to look.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every PaymentIntent made so far (a copy: the lock is not held).
    pub fn intents(&self) -> Vec<Intent> {
        self.state().intents.clone()
    }

    /// Funds really captured (a replayed capture is not counted).
    pub fn captures(&self) -> u64 {
        self.state().captures
    }

    /// Makes the next call of `op` fail with a 500, as described by `fault`.
    pub fn fail_next(&self, op: Op, fault: Fault) {
        self.state().faults.entry(op).or_default().push(fault);
    }

    /// Moves virtual time on (keys older than [`KEY_TTL`] are forgotten).
    pub fn advance(&self, by: Duration) {
        self.state().now += by;
    }

    /// Search results leave out PaymentIntents created less than `lag` ago (none, unless set).
    pub fn set_search_lag(&self, lag: Duration) {
        self.state().search_lag = lag;
    }
}

fn error(kind: &str, code: Option<&str>, message: &str) -> Value {
    let mut e = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        e["code"] = json!(code);
    }
    json!({ "error": e })
}

fn invalid(code: Option<&str>, message: &str) -> (u16, Value) {
    (400, error("invalid_request_error", code, message))
}

/// A PaymentIntent object as Stripe sends it (in webhook events, say).
pub fn payment_intent(id: &str, amount: i64, currency: &str, status: &str) -> Value {
    intent_json(&Intent {
        id: id.into(),
        amount,
        currency: currency.into(),
        status: status.into(),
        reservation_id: None,
        refunded: 0,
        created: Duration::ZERO,
        decline: None,
    })
}

fn intent_json(i: &Intent) -> Value {
    let mut v = json!({
        "id": i.id, "object": "payment_intent", "amount": i.amount,
        "amount_capturable": if i.status == "requires_capture" { i.amount } else { 0 },
        "amount_received": if i.status == "succeeded" { i.amount } else { 0 },
        "capture_method": "manual", "confirmation_method": "automatic",
        "created": 1_790_000_000 + i.created.as_secs(), "currency": i.currency, "livemode": false,
        "metadata": match &i.reservation_id {
            Some(r) => json!({ "reservation_id": r }),
            None => json!({}),
        },
        "payment_method_types": ["card"], "status": i.status,
    });
    if let Some(d) = &i.decline {
        v["last_payment_error"] = d.clone();
    }
    v
}

fn refund_json(r: &Refund, currency: &str) -> Value {
    json!({
        "id": r.id, "object": "refund", "amount": r.amount, "created": 1_790_000_000,
        "currency": currency, "payment_intent": r.payment_intent, "status": "succeeded",
        "metadata": match &r.draftr_key { Some(k) => json!({ "draftr_key": k }), None => json!({}) },
    })
}

impl State {
    fn fault(&mut self, op: Op) -> Option<Fault> {
        let queue = self.faults.get_mut(&op)?;
        (!queue.is_empty()).then(|| queue.remove(0))
    }

    fn intent(&self, id: &str) -> Option<&Intent> {
        self.intents.get(*self.by_id.get(id)?)
    }

    fn intent_mut(&mut self, id: &str) -> Option<&mut Intent> {
        self.intents.get_mut(*self.by_id.get(id)?)
    }

    fn server_error() -> (u16, Value) {
        (
            500,
            error(
                "api_error",
                None,
                "An unknown error occurred on Stripe's side.",
            ),
        )
    }

    fn not_found(id: &str) -> (u16, Value) {
        (
            404,
            error(
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such payment_intent: '{id}'"),
            ),
        )
    }

    fn create_intent(&mut self, form: &HashMap<String, String>) -> (u16, Value) {
        let fault = self.fault(Op::Authorize);
        if fault == Some(Fault::Before) {
            return Self::server_error();
        }
        let (Some(amount), Some(currency), Some(method)) = (
            form.get("amount").and_then(|a| a.parse::<i64>().ok()),
            form.get("currency"),
            form.get("payment_method"),
        ) else {
            return invalid(
                Some("parameter_missing"),
                "amount, currency and payment_method are required",
            );
        };
        // Draftr authorizes now and captures on confirmation; the stand-in models only that.
        if form.get("capture_method").map(String::as_str) != Some("manual") {
            return invalid(
                None,
                "the stand-in models PaymentIntents with capture_method=manual only",
            );
        }
        let declined = method.starts_with(DECLINED_PREFIX);
        if !declined && !ACCEPTED.contains(&method.as_str()) {
            return invalid(
                Some("resource_missing"),
                &format!("No such PaymentMethod: '{method}'"),
            );
        }
        self.next += 1;
        let mut intent = Intent {
            id: format!("pi_fake_{}", self.next),
            amount,
            currency: currency.clone(),
            status: "requires_capture".into(),
            reservation_id: form.get("metadata[reservation_id]").cloned(),
            refunded: 0,
            created: self.now,
            decline: None,
        };
        if declined {
            intent.status = "requires_payment_method".into();
            intent.decline = Some(json!({ "type": "card_error", "code": "card_declined",
                "decline_code": "generic_decline", "message": "Your card was declined." }));
        }
        let body = intent_json(&intent);
        self.by_id.insert(intent.id.clone(), self.intents.len());
        self.intents.push(intent);
        if fault == Some(Fault::After) {
            return Self::server_error();
        }
        if declined {
            let mut e = error(
                "card_error",
                Some("card_declined"),
                "Your card was declined.",
            );
            e["error"]["decline_code"] = json!("generic_decline");
            e["error"]["payment_intent"] = body;
            return (402, e);
        }
        (200, body)
    }

    fn change_intent(&mut self, op: Op, id: &str) -> (u16, Value) {
        let fault = self.fault(op);
        if fault == Some(Fault::Before) {
            return Self::server_error();
        }
        let Some(intent) = self.intent_mut(id) else {
            return Self::not_found(id);
        };
        let (from, to) = match op {
            Op::Capture => ("requires_capture", "succeeded"),
            _ => ("requires_capture", "canceled"),
        };
        if intent.status != from
            && !(op == Op::Cancel && intent.status == "requires_payment_method")
        {
            let verb = if op == Op::Capture {
                "capture"
            } else {
                "cancel"
            };
            return invalid(
                Some("payment_intent_unexpected_state"),
                &format!(
                    "You cannot {verb} this PaymentIntent because it has a status of {}.",
                    intent.status
                ),
            );
        }
        intent.status = to.into();
        let body = intent_json(intent);
        if op == Op::Capture {
            self.captures += 1;
        }
        if fault == Some(Fault::After) {
            return Self::server_error();
        }
        (200, body)
    }

    fn create_refund(&mut self, form: &HashMap<String, String>) -> (u16, Value) {
        let fault = self.fault(Op::Refund);
        if fault == Some(Fault::Before) {
            return Self::server_error();
        }
        let (Some(pi), Some(amount)) = (
            form.get("payment_intent").cloned(),
            form.get("amount").and_then(|a| a.parse::<i64>().ok()),
        ) else {
            return invalid(
                Some("parameter_missing"),
                "payment_intent and amount are required",
            );
        };
        let id = format!("re_fake_{}", self.refunds.len() + 1);
        let Some(intent) = self.intent_mut(&pi) else {
            return Self::not_found(&pi);
        };
        if intent.status != "succeeded" || amount <= 0 || intent.refunded + amount > intent.amount {
            return invalid(
                Some("amount_too_large"),
                "Refund amount is greater than unrefunded amount on charge.",
            );
        }
        intent.refunded += amount;
        let currency = intent.currency.clone();
        let refund = Refund {
            id,
            payment_intent: pi,
            amount,
            draftr_key: form.get("metadata[draftr_key]").cloned(),
        };
        let body = refund_json(&refund, &currency);
        self.refunds.push(refund);
        if fault == Some(Fault::After) {
            return Self::server_error();
        }
        (200, body)
    }

    fn search(&self, query: &str) -> (u16, Value) {
        let Some(wanted) = query
            .strip_prefix("metadata['reservation_id']:'")
            .and_then(|q| q.strip_suffix('\''))
        else {
            return invalid(
                None,
                &format!("the stand-in only searches by metadata['reservation_id'], not {query:?}"),
            );
        };
        let data: Vec<Value> = self
            .intents
            .iter()
            .filter(|i| i.reservation_id.as_deref() == Some(wanted))
            .filter(|i| self.now >= i.created + self.search_lag)
            .map(intent_json)
            .collect();
        (
            200,
            json!({ "object": "search_result", "url": "/v1/payment_intents/search",
                "has_more": false, "data": data, "next_page": null }),
        )
    }

    fn list_refunds(&self, pi: &str) -> (u16, Value) {
        let currency = self
            .intent(pi)
            .map_or_else(|| "eur".to_owned(), |i| i.currency.clone());
        let data: Vec<Value> = self
            .refunds
            .iter()
            .filter(|r| r.payment_intent == pi)
            .map(|r| refund_json(r, &currency))
            .collect();
        (
            200,
            json!({ "object": "list", "url": "/v1/refunds", "has_more": false, "data": data }),
        )
    }
}

impl Respond for FakeStripe {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut s = self.state();
        let path = request.url.path().to_owned();
        let method = request.method.to_string();
        let key = request
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        s.requests.push((method.clone(), path.clone(), key.clone()));
        let now = s.now;
        s.replies.retain(|_, (at, ..)| now < *at + KEY_TTL);
        let params = String::from_utf8_lossy(&request.body).into_owned();
        if method == "POST"
            && let Some((_, first, status, body)) = key.as_ref().and_then(|k| s.replies.get(k))
        {
            if *first != params {
                return ResponseTemplate::new(400).set_body_json(error(
                    "idempotency_error",
                    None,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                ));
            }
            return ResponseTemplate::new(*status).set_body_json(body.clone());
        }
        let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let parts: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
        let (status, body) = match (method.as_str(), parts.as_slice()) {
            ("POST", ["payment_intents"]) => s.create_intent(&form),
            ("GET", ["payment_intents", "search"]) => {
                s.search(query.get("query").map_or("", String::as_str))
            }
            ("GET", ["payment_intents", id]) => match s.intent(id) {
                Some(i) => (200, intent_json(i)),
                None => State::not_found(id),
            },
            ("POST", ["payment_intents", id, "capture"]) => s.change_intent(Op::Capture, id),
            ("POST", ["payment_intents", id, "cancel"]) => s.change_intent(Op::Cancel, id),
            ("POST", ["refunds"]) => s.create_refund(&form),
            ("GET", ["refunds"]) => {
                s.list_refunds(query.get("payment_intent").map_or("", String::as_str))
            }
            _ => (
                404,
                error(
                    "invalid_request_error",
                    None,
                    &format!("the stand-in does not serve {method} {path}"),
                ),
            ),
        };
        if method == "POST"
            && let Some(k) = key
        {
            s.replies.insert(k, (now, params, status, body.clone()));
        }
        ResponseTemplate::new(status).set_body_json(body)
    }
}
