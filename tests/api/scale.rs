//! Scale-out under failures: two replicas of every part as separate `draftr <part>` processes
//! (two routers behind the nginx edge, two of every subgraph behind a balancing address each),
//! one PostgreSQL and one Redis, under a load of bookings and cancellations from several
//! clients. Midway one replica of every subgraph and one router are stopped with SIGTERM and
//! brought back; later the other replica of each is killed with SIGKILL and brought back.
//!
//! Clients behave as real ones: a request that fails because a replica died under it is sent
//! again with the same `idempotencyKey`. Two graphql-ws subscribers, one on each notifications
//! replica, watch one guest's confirmations and reconnect when their replica goes away.
//!
//! Once the reconcilers and mailers have settled, what must hold: no two confirmed stays of a
//! property overlap; every booking's money is where its state says (captured, refunded, voided
//! or never taken, in payments' tables and at the provider); one confirmation email per
//! confirmed booking (a SIGKILL may repeat the one email in flight, under its Message-ID);
//! every outbox event once on the Redis stream; and the subscribers heard of every
//! confirmation, before, during and after the failures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use draftr_test_support::cluster::{Binaries, Cluster, ClusterOptions, ROUTER, SUBGRAPHS};
use draftr_test_support::smtp::header;
use fred::prelude::*;
use futures::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult, Statement};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::booking::day;

/// Concurrent booking clients (the first books as the watched guest).
const CLIENTS: usize = 6;
/// Load before the first failure, and after the last replica is back.
const CALM: Duration = Duration::from_secs(10);
/// How long a stopped or killed replica stays down.
const DOWN: Duration = Duration::from_secs(3);
/// A client gives up on one booking (retrying all along) after this long.
const PATIENCE: Duration = Duration::from_secs(45);
/// Bound on the reconcilers, relays and mailers settling once the load has stopped.
const SETTLE: Duration = Duration::from_secs(60);

const BOOK: &str =
    "mutation($i: CreateReservationInput!) { createReservation(input: $i) { id status } }";
const CANCEL: &str = "mutation($id: ID!) { cancelReservation(id: $id) { id status } }";
const CONFIRMATIONS: &str = "subscription { bookingConfirmed { reservationId } }";

/// GraphQL over HTTP through the edge; `Err` for what a client would retry blindly (no
/// answer, a 502 from the edge, a body that is not GraphQL).
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn post(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> Result<Value, String> {
        let mut req = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.map_err(|e| format!("no answer: {e}"))?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| format!("{status}, body cut: {e}"))?;
        serde_json::from_str(&text).map_err(|_| format!("{status}: {}", truncate(&text, 200)))
    }

    /// Retries until `query` answers without errors (setup, before any failure).
    async fn ok(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let mut last = String::new();
        for _ in 0..20 {
            match self.post(query, variables.clone(), token).await {
                Ok(body) if body.get("errors").is_none() => return body["data"].clone(),
                Ok(body) => last = body.to_string(),
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("{query} kept failing: {last}");
    }

    /// A new user; returns (token, id).
    async fn user(&self, name: &str) -> (String, String) {
        let data = self
            .ok(
                "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }",
                json!({ "i": {
                    "email": format!("{name}-{}@scale.test", uuid::Uuid::new_v4().simple()),
                    "password": "correct horse battery staple",
                    "displayName": name,
                }}),
                None,
            )
            .await;
        (
            data["register"]["accessToken"].as_str().unwrap().to_owned(),
            data["register"]["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    async fn listing(&self, host: &str, title: &str) -> String {
        let data = self
            .ok(
                "mutation($i: CreatePropertyInput!) { createProperty(input: $i) { id } }",
                json!({ "i": {
                    "title": title, "description": "Booked by the scale-out test",
                    "address": { "line1": "1 Replica Row", "city": "Lyon", "country": "FR" },
                    "nightlyRate": { "amount": 10_000, "currency": "EUR" },
                    "maxGuests": 4, "bedrooms": 1, "cancellationPolicy": "FLEXIBLE",
                    "status": "PUBLISHED",
                }}),
                Some(host),
            )
            .await;
        data["createProperty"]["id"].as_str().unwrap().to_owned()
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A small deterministic generator (no rand in this crate's dependencies).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Confirmed,
    Conflict,
    Declined,
    /// Still no definitive answer after [`PATIENCE`].
    GaveUp,
}

/// One booking as its client saw it.
#[derive(Debug, Clone)]
struct Booking {
    guest: String,
    /// Every idempotency key used: a new one only when the answer says to use a new one.
    keys: Vec<String>,
    outcome: Outcome,
    id: Option<String>,
    /// Requests sent again after an answer that was no answer (same key).
    retries: usize,
    latency: Duration,
    /// When the first request was sent, and when the confirmation came back.
    sent: Instant,
    answered: Instant,
    /// Whether it was cancelled: `None` if the client did not try, `Some(false)` if the
    /// client never got an answer saying it was.
    cancelled: Option<bool>,
}

/// Books `input` (without its key) until there is a definitive answer.
async fn book(api: &Api, token: &str, guest: &str, mut input: Value) -> Booking {
    let sent = Instant::now();
    let mut keys = vec![uuid::Uuid::new_v4().to_string()];
    let mut retries = 0;
    let finish = |outcome, id: Option<String>, keys: Vec<String>, retries| Booking {
        guest: guest.to_owned(),
        keys,
        outcome,
        id,
        retries,
        latency: sent.elapsed(),
        sent,
        answered: Instant::now(),
        cancelled: None,
    };
    loop {
        if sent.elapsed() > PATIENCE {
            return finish(Outcome::GaveUp, None, keys, retries);
        }
        input["idempotencyKey"] = json!(keys.last().unwrap());
        let body = match api.post(BOOK, json!({ "i": input }), Some(token)).await {
            Ok(body) => body,
            Err(_) => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let r = &body["data"]["createReservation"];
        if r["status"] == "CONFIRMED" {
            let id = r["id"].as_str().map(str::to_owned);
            return finish(Outcome::Confirmed, id, keys, retries);
        }
        let error = &body["errors"][0];
        let code = error["extensions"]["code"].as_str().unwrap_or("");
        let message = error["message"].as_str().unwrap_or("");
        match code {
            "BOOKING_CONFLICT" => return finish(Outcome::Conflict, None, keys, retries),
            "PAYMENT_DECLINED" => return finish(Outcome::Declined, None, keys, retries),
            // This attempt is over (payments were unreachable, or it ran out of time) and the
            // answer says so: a new attempt needs a new key.
            _ if message.contains("new idempotencyKey") => {
                keys.push(uuid::Uuid::new_v4().to_string());
            }
            // Anything else (a subgraph unreachable for a moment, the outcome not known yet):
            // the same request again, which resumes the booking where it is.
            _ => retries += 1,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Cancels until the answer says CANCELLED; whether it did.
async fn cancel(api: &Api, token: &str, id: &str) -> bool {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if let Ok(body) = api.post(CANCEL, json!({ "id": id }), Some(token)).await
            && body["data"]["cancelReservation"]["status"] == "CANCELLED"
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// What one client does until `stop`: mostly stays of its own (distinct nights of its own
/// listing), some on the listing every client fights over, some with a card that declines;
/// a quarter of its confirmed bookings it cancels.
async fn client(
    api: Api,
    token: String,
    guest: String,
    own: String,
    contested: String,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> Vec<Booking> {
    let mut rng = Rng(seed | 1);
    let mut next_night = 10;
    let mut done = Vec::new();
    while !stop.load(Ordering::SeqCst) && next_night < 720 {
        let roll = rng.below(100);
        let (property, from, nights, card) = if roll < 20 {
            (
                &contested,
                10 + rng.below(12) as i64,
                1 + rng.below(2) as i64,
                "pm_card_visa",
            )
        } else {
            next_night += 1;
            let card = if roll < 28 {
                "pm_card_chargeDeclined"
            } else {
                "pm_card_visa"
            };
            (&own, next_night, 1, card)
        };
        let input = json!({
            "propertyId": property, "checkIn": day(from), "checkOut": day(from + nights),
            "guests": 2, "paymentMethod": card,
        });
        let mut b = book(&api, &token, &guest, input).await;
        if b.outcome == Outcome::Confirmed
            && rng.below(4) == 0
            && let Some(id) = &b.id
        {
            b.cancelled = Some(cancel(&api, &token, id).await);
        }
        done.push(b);
    }
    done
}

/// What a subscriber heard, and when it was listening.
#[derive(Default)]
struct Heard {
    /// (reservation id, when it arrived).
    pushes: Vec<(String, Instant)>,
    /// From the subscription being in place to the socket ending (`None`: still open).
    listening: Vec<(Instant, Option<Instant>)>,
}

impl Heard {
    fn listening_throughout(&self, from: Instant, to: Instant) -> bool {
        self.listening
            .iter()
            .any(|(start, end)| *start <= from && end.is_none_or(|end| to <= end))
    }
}

/// A graphql-ws client subscribed to `bookingConfirmed` at `url`, reconnecting (as a client
/// would) whenever its socket ends, until `stop`.
async fn subscriber(url: String, token: String, heard: Arc<Mutex<Heard>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut socket) = subscribe(&url, &token).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // The server registers the subscription just after reading it.
        let since = Instant::now() + Duration::from_millis(300);
        heard.lock().unwrap().listening.push((since, None));
        loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let message =
                match tokio::time::timeout(Duration::from_millis(250), socket.next()).await {
                    Err(_) => continue,
                    Ok(Some(Ok(m))) => m,
                    Ok(_) => break,
                };
            match message {
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(&text).unwrap_or_default();
                    match v["type"].as_str() {
                        Some("ping") => {
                            let pong = json!({ "type": "pong" }).to_string();
                            let _ = socket.send(Message::text(pong)).await;
                        }
                        Some("next") => {
                            if let Some(id) =
                                v["payload"]["data"]["bookingConfirmed"]["reservationId"].as_str()
                            {
                                heard
                                    .lock()
                                    .unwrap()
                                    .pushes
                                    .push((id.to_owned(), Instant::now()));
                            }
                        }
                        Some("error") | Some("complete") => break,
                        _ => {}
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        if let Some(last) = heard.lock().unwrap().listening.last_mut() {
            last.1 = Some(Instant::now());
        }
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn subscribe(url: &str, token: &str) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let connect = tokio_tungstenite::connect_async(request);
    let (mut socket, _) = tokio::time::timeout(Duration::from_secs(3), connect)
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    socket
        .send(Message::text(init.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match tokio::time::timeout(Duration::from_secs(3), socket.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("connection_ack") => break,
            Ok(Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_)))) => continue,
            other => return Err(format!("not acknowledged: {other:?}")),
        }
    }
    let subscribe =
        json!({ "id": "1", "type": "subscribe", "payload": { "query": CONFIRMATIONS } });
    socket
        .send(Message::text(subscribe.to_string()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(socket)
}

async fn rows(db: &DatabaseConnection, sql: &str) -> Vec<QueryResult> {
    db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    rows(db, sql).await[0].try_get::<i64>("", "n").unwrap()
}

fn text(row: &QueryResult, column: &str) -> String {
    row.try_get::<String>("", column)
        .unwrap_or_else(|e| panic!("{column}: {e}"))
}

fn uuid_text(row: &QueryResult, column: &str) -> String {
    row.try_get::<uuid::Uuid>("", column)
        .unwrap_or_else(|e| panic!("{column}: {e}"))
        .to_string()
}

/// Waits until `what` holds, or fails with the cluster's logs after `limit`.
async fn settle(
    cluster: &Cluster,
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Option<String>,
) {
    let deadline = Instant::now() + limit;
    loop {
        let Some(why_not) = check().await else { return };
        if Instant::now() > deadline {
            panic!(
                "{what} did not happen within {limit:?}: {why_not}\n{}",
                tail(&cluster.logs(), 200)
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Stops (SIGTERM) or kills (SIGKILL) replica `replica` of every subgraph and router at once;
/// returns how long the slowest took to go.
async fn take_down(cluster: &Cluster, replica: usize, kill: bool) -> Duration {
    let started = Instant::now();
    let parts: Vec<&str> = SUBGRAPHS.iter().copied().chain([ROUTER]).collect();
    let results = futures::future::join_all(parts.iter().map(|part| async move {
        if kill {
            cluster.kill(part, replica).await.map(|()| None)
        } else {
            cluster.stop(part, replica).await.map(Some)
        }
    }))
    .await;
    for (part, result) in parts.iter().zip(results) {
        match result {
            Ok(Some(status)) => assert!(
                status.success(),
                "{part} {replica} exited with {status} on SIGTERM:\n{}",
                tail(&cluster.log(part, replica), 40)
            ),
            Ok(None) => {}
            Err(e) => panic!("{e:#}"),
        }
    }
    started.elapsed()
}

async fn bring_back(cluster: &Cluster, replica: usize) {
    let parts: Vec<&str> = SUBGRAPHS.iter().copied().chain([ROUTER]).collect();
    for (part, result) in parts.iter().zip(
        futures::future::join_all(parts.iter().map(|part| cluster.restart(part, replica))).await,
    ) {
        result.unwrap_or_else(|e| panic!("{part} {replica} did not come back: {e:#}"));
    }
}

/// Waits until subscriber `heard` has been listening for a second.
async fn wait_listening(heard: &Mutex<Heard>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = heard
            .lock()
            .unwrap()
            .listening
            .last()
            .is_some_and(|(since, end)| {
                end.is_none() && Instant::now() > *since + Duration::from_secs(1)
            });
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "{name} did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_everything_survive_sigterm_and_sigkill_under_load() {
    let test_started = Instant::now();
    let bin = Binaries::new(env!("CARGO_BIN_EXE_draftr")).unwrap_or_else(|e| panic!("{e:#}"));
    let cluster = Cluster::start_with(
        ClusterOptions {
            replicas: 2,
            edge: true,
            env: Vec::new(),
        },
        bin,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let cluster = Arc::new(cluster);
    println!("cluster up in {:?}", test_started.elapsed());
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        url: cluster.url(),
    };

    let (host, _) = api.user("host").await;
    let contested = api.listing(&host, "Fought-over flat").await;
    let mut guests = Vec::new();
    for c in 0..CLIENTS {
        let (token, id) = api.user(&format!("guest{c}")).await;
        let own = api.listing(&host, &format!("Flat {c}")).await;
        guests.push((token, id, own));
    }
    let (watched_token, watched_id) = (guests[0].0.clone(), guests[0].1.clone());

    let stop_subscribers = Arc::new(AtomicBool::new(false));
    let heard: Vec<Arc<Mutex<Heard>>> = (0..2).map(|_| Arc::default()).collect();
    let subscribers: Vec<_> = (0..2)
        .map(|replica| {
            tokio::spawn(subscriber(
                cluster.notifications_ws(replica),
                watched_token.clone(),
                heard[replica].clone(),
                stop_subscribers.clone(),
            ))
        })
        .collect();
    for (replica, h) in heard.iter().enumerate() {
        wait_listening(h, &format!("subscriber {replica}")).await;
    }

    let stop_clients = Arc::new(AtomicBool::new(false));
    let load_started = Instant::now();
    let clients: Vec<_> = guests
        .iter()
        .enumerate()
        .map(|(c, (token, id, own))| {
            tokio::spawn(client(
                api.clone(),
                token.clone(),
                id.clone(),
                own.clone(),
                contested.clone(),
                0x9E37_79B9_7F4A_7C15 ^ ((c as u64 + 1) * 0x2545_F491),
                stop_clients.clone(),
            ))
        })
        .collect();

    // Before: both replicas of everything.
    tokio::time::sleep(CALM).await;
    let failures_started = Instant::now();
    // A rolling restart: replica 0 of everything stopped as Kubernetes stops a pod.
    let stopping = take_down(&cluster, 0, false).await;
    println!("SIGTERM: replica 0 of every part gone after {stopping:?}");
    tokio::time::sleep(DOWN).await;
    bring_back(&cluster, 0).await;
    wait_listening(&heard[0], "subscriber 0").await;
    tokio::time::sleep(DOWN).await;
    // A crash: replica 1 of everything killed.
    take_down(&cluster, 1, true).await;
    println!("SIGKILL: replica 1 of every part killed");
    tokio::time::sleep(DOWN).await;
    bring_back(&cluster, 1).await;
    wait_listening(&heard[1], "subscriber 1").await;
    let failures_ended = Instant::now();
    println!(
        "failures from {:?} to {:?} into the load",
        failures_started - load_started,
        failures_ended - load_started
    );
    // After: both again.
    tokio::time::sleep(CALM).await;
    stop_clients.store(true, Ordering::SeqCst);
    let mut bookings = Vec::new();
    for c in clients {
        bookings.extend(c.await.expect("a client panicked"));
    }
    let load_ended = Instant::now();
    println!("load ran {:?}", load_ended - load_started);

    // Settle: no hold pending, every payment settled, every event relayed, every email out.
    let reservations = cluster.connect("reservations").await.unwrap();
    let payments = cluster.connect("payments").await.unwrap();
    let notifications = cluster.connect("notifications").await.unwrap();
    settle(&cluster, "the reconcilers and mailers settling", SETTLE, async || {
        let checks = [
            (&reservations, "SELECT COUNT(*) AS n FROM reservations WHERE status = 'PENDING' OR compensation_pending OR (status = 'CONFIRMED' AND NOT captured)", "reservations not settled"),
            (&reservations, "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL", "outbox rows not relayed"),
            (&notifications, "SELECT COUNT(*) AS n FROM notifications WHERE status NOT IN ('SENT', 'FAILED')", "emails not sent"),
        ];
        for (db, sql, what) in checks {
            let n = count(db, sql).await;
            if n > 0 {
                return Some(format!("{n} {what}"));
            }
        }
        let confirmed = count(&reservations, "SELECT COUNT(*) AS n FROM reservations WHERE status IN ('CONFIRMED', 'CANCELLED')").await;
        let mails = count(&notifications, "SELECT COUNT(*) AS n FROM notifications WHERE kind = 'booking_confirmed'").await;
        (mails < confirmed).then(|| format!("{mails} confirmation emails for {confirmed} confirmed bookings"))
    })
    .await;
    // The subscribers hear what is still on its way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_subscribers.store(true, Ordering::SeqCst);
    for s in subscribers {
        s.await.unwrap();
    }

    // 1. No overlapping confirmed stays.
    let overlaps = count(
        &reservations,
        "SELECT COUNT(*) AS n FROM reservations a JOIN reservations b
           ON a.property_id = b.property_id AND a.id < b.id
          AND a.status = 'CONFIRMED' AND b.status = 'CONFIRMED'
          AND a.check_in < b.check_out AND b.check_in < a.check_out",
    )
    .await;
    assert_eq!(overlaps, 0, "overlapping confirmed stays");

    // 2. Money: every booking's payment where its state says, in payments and at the provider.
    let stored = rows(
        &reservations,
        "SELECT id, guest_id, idempotency_key, status, captured, compensation_pending, total_amount, refund_amount FROM reservations",
    )
    .await;
    let paid: HashMap<String, QueryResult> = rows(
        &payments,
        "SELECT reservation_id, status, amount, refunded FROM payments",
    )
    .await
    .into_iter()
    .map(|r| (uuid_text(&r, "reservation_id"), r))
    .collect();
    let mut intents: HashMap<String, Vec<_>> = HashMap::new();
    for i in cluster.stripe().intents() {
        intents
            .entry(i.reservation_id.clone().unwrap_or_default())
            .or_default()
            .push(i);
    }
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_key: HashMap<(String, String), (String, String)> = HashMap::new();
    for r in &stored {
        let id = uuid_text(r, "id");
        let status = text(r, "status");
        *by_status.entry(status.clone()).or_default() += 1;
        by_key.insert(
            (uuid_text(r, "guest_id"), text(r, "idempotency_key")),
            (id.clone(), status.clone()),
        );
        assert!(
            !r.try_get::<bool>("", "compensation_pending").unwrap(),
            "{id}: compensation pending"
        );
        let total: i64 = r.try_get("", "total_amount").unwrap();
        let payment = paid.get(&id);
        let pay_status = payment.map(|p| text(p, "status"));
        let refunded: i64 = payment.map_or(0, |p| p.try_get("", "refunded").unwrap());
        let held: Vec<_> = intents
            .get(&id)
            .map(|v| {
                v.iter()
                    .filter(|i| i.status == "succeeded" || i.status == "requires_capture")
                    .collect()
            })
            .unwrap_or_default();
        match status.as_str() {
            "CONFIRMED" => {
                assert_eq!(pay_status.as_deref(), Some("CAPTURED"), "{id} confirmed");
                assert!(
                    r.try_get::<bool>("", "captured").unwrap(),
                    "{id} not marked captured"
                );
                assert_eq!(
                    held.len(),
                    1,
                    "{id}: PaymentIntents holding money: {held:?}"
                );
                assert_eq!(
                    (held[0].status.as_str(), held[0].amount, held[0].refunded),
                    ("succeeded", total, 0),
                    "{id}"
                );
            }
            "CANCELLED" => {
                let refund: i64 = r
                    .try_get::<Option<i64>>("", "refund_amount")
                    .unwrap()
                    .unwrap_or(0);
                let expected = match refund {
                    0 => "CAPTURED",
                    r if r == total => "REFUNDED",
                    _ => "PARTIALLY_REFUNDED",
                };
                assert_eq!(
                    pay_status.as_deref(),
                    Some(expected),
                    "{id} cancelled, refund {refund}"
                );
                assert_eq!(refunded, refund, "{id}: refunded in payments");
                assert_eq!(held.len(), 1, "{id}: {held:?}");
                assert_eq!(
                    (held[0].status.as_str(), held[0].refunded),
                    ("succeeded", refund),
                    "{id}"
                );
            }
            "FAILED" => {
                assert!(
                    matches!(
                        pay_status.as_deref(),
                        None | Some("FAILED") | Some("CANCELED")
                    ),
                    "{id} failed with its payment {pay_status:?}"
                );
                assert!(
                    held.is_empty(),
                    "{id} failed, but the provider holds {held:?}"
                );
            }
            other => panic!("{id} is {other} after settling"),
        }
    }
    let known: HashSet<String> = stored.iter().map(|r| uuid_text(r, "id")).collect();
    for (reservation, p) in &paid {
        assert!(
            known.contains(reservation),
            "a payment for no reservation: {reservation}"
        );
        let s = text(p, "status");
        assert!(
            !matches!(s.as_str(), "AUTHORIZED" | "PENDING"),
            "payment {reservation} left {s}"
        );
    }
    for (reservation, list) in &intents {
        assert!(
            known.contains(reservation),
            "a PaymentIntent for no reservation: {list:?}"
        );
        assert!(
            list.iter().all(|i| i.status != "requires_capture"),
            "funds left held: {list:?}"
        );
    }

    // The clients' view agrees with the database.
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut retries, mut cancelled, mut new_keys) = (0, 0, 0);
    for b in &bookings {
        retries += b.retries;
        new_keys += b.keys.len() - 1;
        *outcomes
            .entry(match b.outcome {
                Outcome::Confirmed => "confirmed",
                Outcome::Conflict => "conflict",
                Outcome::Declined => "declined",
                Outcome::GaveUp => "gave up",
            })
            .or_default() += 1;
        let last = (b.guest.clone(), b.keys.last().unwrap().clone());
        match b.outcome {
            Outcome::Confirmed => {
                let (id, status) = by_key.get(&last).expect("a confirmed booking is stored");
                assert_eq!(Some(id), b.id.as_ref());
                let allowed: &[&str] = match b.cancelled {
                    None => &["CONFIRMED"],
                    Some(true) => &["CANCELLED"],
                    Some(false) => &["CONFIRMED", "CANCELLED"],
                };
                assert!(
                    allowed.contains(&status.as_str()),
                    "{id}: the client saw {:?} (cancelled {:?}), the database has {status}",
                    b.outcome,
                    b.cancelled
                );
                cancelled += usize::from(b.cancelled == Some(true));
            }
            Outcome::Conflict => {
                if let Some((id, status)) = by_key.get(&last) {
                    assert_eq!(
                        status, "FAILED",
                        "{id}: a conflict the database holds as {status}"
                    );
                }
            }
            Outcome::Declined => {
                let (id, status) = by_key.get(&last).expect("a declined booking is stored");
                assert_eq!(status, "FAILED", "{id}");
            }
            Outcome::GaveUp => {}
        }
    }
    assert_eq!(
        outcomes.get("gave up"),
        None,
        "bookings without a definitive answer"
    );

    // 3. Emails: one confirmation per confirmed booking; a SIGKILL may repeat the one email in
    // flight on the killed replica, under its Message-ID.
    let confirmed_events: HashMap<String, String> = rows(
        &reservations,
        "SELECT id, aggregate_id FROM outbox WHERE kind = 'reservation.confirmed'",
    )
    .await
    .iter()
    .map(|r| (uuid_text(r, "id"), uuid_text(r, "aggregate_id")))
    .collect();
    let mail_rows = rows(
        &notifications,
        "SELECT id, event_id, kind FROM notifications",
    )
    .await;
    let mut message_ids: HashMap<String, (String, String)> = HashMap::new();
    let mut confirmation_of: HashMap<String, Vec<String>> = HashMap::new();
    for m in &mail_rows {
        let id = uuid_text(m, "id");
        let kind = text(m, "kind");
        if kind == "booking_confirmed" {
            let event = uuid_text(m, "event_id");
            let reservation = confirmed_events
                .get(&event)
                .unwrap_or_else(|| panic!("a confirmation email for unknown event {event}"));
            confirmation_of
                .entry(reservation.clone())
                .or_default()
                .push(id.clone());
        }
        message_ids.insert(format!("<{id}@notifications.draftr>"), (id, kind));
    }
    let sent = cluster.smtp().messages();
    let mut received: HashMap<String, usize> = HashMap::new();
    for m in &sent {
        let mid = header(m, "Message-ID").expect("every email has a Message-ID");
        assert!(
            message_ids.contains_key(&mid),
            "an email no notification row sent: {mid}"
        );
        *received.entry(mid).or_default() += 1;
    }
    let duplicates: usize = received.values().map(|n| n - 1).sum();
    let ever_confirmed: Vec<String> = stored
        .iter()
        .filter(|r| matches!(text(r, "status").as_str(), "CONFIRMED" | "CANCELLED"))
        .map(|r| uuid_text(r, "id"))
        .collect();
    for id in &ever_confirmed {
        let rows = confirmation_of.get(id).map_or(&[][..], Vec::as_slice);
        assert_eq!(rows.len(), 1, "{id}: confirmation emails {rows:?}");
        let mid = format!("<{}@notifications.draftr>", rows[0]);
        assert!(
            received.get(&mid).copied().unwrap_or(0) >= 1,
            "{id}: its confirmation never arrived"
        );
    }
    assert_eq!(
        confirmation_of.len(),
        ever_confirmed.len(),
        "confirmations of bookings never confirmed"
    );
    for (mid, (_, kind)) in &message_ids {
        assert!(
            received.contains_key(mid),
            "{kind} email {mid} never arrived"
        );
    }
    let killed_notifications = 1;
    assert!(
        duplicates <= killed_notifications,
        "{duplicates} repeated emails, more than the {killed_notifications} a SIGKILL may cut: {:?}",
        received.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );

    // 4. Every outbox event once on the Redis stream.
    let redis = Builder::from_config(Config::from_url(cluster.redis_url()).unwrap())
        .build()
        .unwrap();
    redis.init().await.unwrap();
    let stream = format!("{}:events:reservations", cluster.namespace());
    let entries: Vec<(String, HashMap<String, String>)> =
        redis.xrange(stream.as_str(), "-", "+", None).await.unwrap();
    let mut on_stream: HashMap<String, usize> = HashMap::new();
    for (_, fields) in &entries {
        let event: Value = serde_json::from_str(&fields["event"]).unwrap();
        *on_stream
            .entry(event["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let outbox: HashSet<String> = rows(&reservations, "SELECT id FROM outbox")
        .await
        .iter()
        .map(|r| uuid_text(r, "id"))
        .collect();
    let twice: Vec<_> = on_stream.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "events on the stream more than once: {twice:?}"
    );
    let streamed: HashSet<String> = on_stream.keys().cloned().collect();
    assert_eq!(streamed, outbox, "the stream and the outbox differ");

    // 5. The subscribers: every confirmation of the watched guest pushed at least once (each
    // replica's subscriber hears all that were confirmed while it was listening, from before
    // the request to well after the answer), and pushes in every phase.
    let watched: Vec<&Booking> = bookings
        .iter()
        .filter(|b| b.guest == watched_id && b.outcome == Outcome::Confirmed)
        .collect();
    let listened: Vec<std::sync::MutexGuard<'_, Heard>> =
        heard.iter().map(|h| h.lock().unwrap()).collect();
    let mut pushes_by_phase = Vec::new();
    for (replica, h) in listened.iter().enumerate() {
        let got: HashSet<&str> = h.pushes.iter().map(|(id, _)| id.as_str()).collect();
        let expected: Vec<&&Booking> = watched
            .iter()
            .filter(|b| h.listening_throughout(b.sent, b.answered + Duration::from_secs(10)))
            .collect();
        let missed: Vec<_> = expected
            .iter()
            .filter(|b| !got.contains(b.id.as_deref().unwrap()))
            .map(|b| b.id.clone())
            .collect();
        assert!(missed.is_empty(), "subscriber {replica} missed {missed:?}");
        let phase = |from: Instant, to: Instant| {
            h.pushes
                .iter()
                .filter(|(_, at)| from <= *at && *at < to)
                .count()
        };
        let phases = [
            phase(load_started, failures_started),
            phase(failures_started, failures_ended),
            phase(failures_ended, Instant::now()),
        ];
        assert!(
            phases.iter().all(|n| *n > 0),
            "subscriber {replica}: pushes before/during/after {phases:?}"
        );
        pushes_by_phase.push((phases, h.pushes.len(), expected.len(), h.listening.len()));
    }
    for b in &watched {
        let id = b.id.as_deref().unwrap();
        assert!(
            listened
                .iter()
                .any(|h| h.pushes.iter().any(|(p, _)| p == id)),
            "the watched guest's confirmation {id} was pushed to no subscriber"
        );
    }

    // The figures.
    let mut latencies: Vec<Duration> = bookings
        .iter()
        .filter(|b| b.outcome == Outcome::Confirmed)
        .map(|b| b.latency)
        .collect();
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "scale-out: {} replicas of every part, {CLIENTS} clients",
        cluster.replicas()
    );
    println!(
        "  bookings attempted {} (new keys {new_keys}, same-key retries {retries}): {:?}; cancelled {cancelled}",
        bookings.len(),
        outcomes
    );
    println!("  reservations by status: {by_status:?}");
    println!(
        "  confirmed latency p50 {:?} p99 {:?}",
        pick(0.5),
        pick(0.99)
    );
    println!(
        "  emails: {} received, {} distinct, {duplicates} repeated; confirmations {}",
        sent.len(),
        received.len(),
        ever_confirmed.len()
    );
    println!(
        "  events: {} in the outbox, {} on the stream",
        outbox.len(),
        entries.len()
    );
    for (replica, (phases, total, expected, connections)) in pushes_by_phase.iter().enumerate() {
        println!(
            "  subscriber {replica}: {total} pushes (before/during/after {phases:?}), {expected} confirmations expected of it, {connections} connections"
        );
    }
    println!(
        "  watched guest: {} confirmations, all pushed",
        watched.len()
    );
    println!(
        "  replicas stopped (SIGTERM) {} and killed (SIGKILL) {}: one of each subgraph and one router each time",
        SUBGRAPHS.len() + 1,
        SUBGRAPHS.len() + 1
    );
    println!("  whole test {:?}", test_started.elapsed());
}
