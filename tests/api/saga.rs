//! The saga when things break: payments down, the provider down, and the reservations and
//! payments processes killed mid-booking, then restarted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use draftr_common::jwt::KeySource;
use draftr_common::test_on_both_backends;
use draftr_common::testing::{Backend, TestDatabase, redis_test_settings};
use draftr_payments::provider::SimulatedProvider;
use draftr_payments::provider::simulated::Stall;
use draftr_payments::{App as PaymentsApp, PaymentsSettings};
use draftr_reservations::{App as ReservationsApp, ReservationsSettings};
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;
use serde_json::json;

use crate::booking::{BOOK, book, booking, new_listing, reservations_count};
use crate::helpers::{Options, SERVICE_TOKEN, TestApp, spawn, spawn_custom, wait_until};

test_on_both_backends!(
    payments_down_gives_a_quick_typed_error_and_leaves_no_hold,
    a_payments_service_that_hangs_is_cut_off_by_the_timeout,
    catalog_down_gives_a_clear_error_quickly,
    a_provider_outage_is_compensated_once_it_ends,
    a_crash_after_authorize_is_finished_by_the_reconciler_after_restart,
    a_crash_before_capture_is_captured_by_the_reconciler_after_restart,
);

async fn payments_down_gives_a_quick_typed_error_and_leaves_no_hold(backend: Backend) {
    // Payments' address has nothing listening: connection refused, every time.
    let app = spawn_custom(
        backend,
        Options::default().reservations(|s| {
            s.payments_url = "http://127.0.0.1:9/".into();
            s.calls.backoff_ms = 50;
            s.calls.breaker_failures = 3;
            s.calls.breaker_open_ms = 60_000;
        }),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    let started = Instant::now();
    let first = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    let first_took = started.elapsed();
    assert_eq!(first.code(), "PAYMENT_UNAVAILABLE", "{}", first.body);
    // The breaker is open now (3 failed attempts): the next booking fails without trying.
    let started = Instant::now();
    let second = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    let second_took = started.elapsed();
    assert_eq!(second.code(), "PAYMENT_UNAVAILABLE");
    println!(
        "payments down: first booking answered in {first_took:?}, with the breaker open in {second_took:?}"
    );

    // No hold is left: the dates were released at once, and the possible authorization is
    // marked for the reconciler to void.
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM reservations WHERE status IN ('PENDING', 'CONFIRMED')"
        )
        .await,
        0
    );
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM reservations WHERE status = 'FAILED' AND compensation_pending"
        )
        .await,
        2
    );
    let free = app
        .gql(
            "query($id: ID!, $a: Date!, $b: Date!) { property(id: $id) { isAvailable(checkIn: $a, checkOut: $b) } }",
            json!({ "id": property, "a": crate::booking::day(10), "b": crate::booking::day(12) }),
            Some(&guest),
        )
        .await;
    assert_eq!(free.ok()["property"]["isAvailable"], true);
}

async fn a_payments_service_that_hangs_is_cut_off_by_the_timeout(backend: Backend) {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let app = spawn_custom(
        backend,
        Options::default().reservations(move |s| {
            s.payments_url = hanging;
            s.calls.timeout_ms = 300;
            s.calls.attempts = 2;
        }),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    let started = Instant::now();
    let res = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    println!(
        "payments hanging: booking answered in {:?}",
        started.elapsed()
    );
    assert_eq!(res.code(), "PAYMENT_UNAVAILABLE", "{}", res.body);
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM reservations WHERE status IN ('PENDING', 'CONFIRMED')"
        )
        .await,
        0
    );
}

async fn catalog_down_gives_a_clear_error_quickly(backend: Backend) {
    let app = spawn_custom(
        backend,
        Options::default().reservations(|s| s.catalog_url = "http://127.0.0.1:9/".into()),
    )
    .await;
    let (_, guest, _, _) = app.new_user().await;
    let started = Instant::now();
    let res = book(
        &app,
        &guest,
        booking(&uuid::Uuid::new_v4().to_string(), 10, 12, "pm_card_visa"),
    )
    .await;
    println!("catalog down: booking answered in {:?}", started.elapsed());
    assert_eq!(res.code(), "INTERNAL_SERVER_ERROR", "{}", res.body);
    assert!(res.message().contains("temporarily unavailable"));
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM reservations").await,
        0,
        "nothing is held when the price cannot be known"
    );
}

async fn a_provider_outage_is_compensated_once_it_ends(backend: Backend) {
    // The failures open the breaker; a short open period keeps the test short.
    let app = spawn_custom(
        backend,
        Options::default().reservations(|s| s.calls.breaker_open_ms = 200),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    app.provider.set_outage(true);
    let res = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    assert_eq!(res.code(), "PAYMENT_UNAVAILABLE", "{}", res.body);
    assert_eq!(app.provider.counts().authorizations, 0);

    // Still down: the reconciler tries, and leaves the compensation pending.
    draftr_reservations::reconciler::reconcile(&app.reservations)
        .await
        .unwrap();
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM reservations WHERE compensation_pending"
        )
        .await,
        1
    );

    // Back: the outcome is settled by looking the authorization up at the provider (there is
    // none: the outage refused the call), never by authorizing again just to void it.
    app.provider.set_outage(false);
    // The next passes are refused by the open breaker until its open period ends. The void the
    // booking started in the background may still be retrying and win the race; either way
    // it is settled exactly once.
    let mut compensated = 0;
    let mut pending = 1;
    for _ in 0..50 {
        let pass = draftr_reservations::reconciler::reconcile(&app.reservations)
            .await
            .unwrap();
        compensated += pass.compensated;
        pending = reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM reservations WHERE compensation_pending",
        )
        .await;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        pending, 0,
        "the compensation is settled once payments answers"
    );
    assert!(compensated <= 1);
    let counts = app.provider.counts();
    assert_eq!(
        (counts.authorizations, counts.cancels, counts.captures),
        (0, 0, 0),
        "nothing was held, nothing is authorized to be undone, nothing is charged"
    );
    assert_eq!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM reservations WHERE compensation_pending"
        )
        .await,
        0
    );
    // And the same dates can be booked.
    let again = book(&app, &guest, booking(&property, 10, 12, "pm_card_visa")).await;
    assert_eq!(again.ok()["createReservation"]["status"], "CONFIRMED");
}

/// Reservations and payments in their own runtime: shutting it down drops every task at
/// whatever `.await` it was on, with no graceful path, which is what a killed process looks
/// like to the databases and to the provider.
struct Killable {
    runtime: tokio::runtime::Runtime,
    reservations_url: String,
}

struct Databases {
    reservations: TestDatabase,
    payments: TestDatabase,
}

fn start_killable(
    app: &TestApp,
    dbs: &Databases,
    provider: Arc<SimulatedProvider>,
    hold_timeout_ms: u64,
) -> Killable {
    let jwks = format!("{}.well-known/jwks.json", app.auth_url);
    let catalog_url = app.catalog_url.clone();
    let payments_db = dbs.payments.settings.clone();
    let reservations_db = dbs.reservations.settings.clone();
    // A runtime cannot be started from inside another one's worker: build it on a thread.
    let (runtime, url) = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let url = runtime.block_on(async move {
            let kv = draftr_common::kv::connect(&redis_test_settings())
                .await
                .unwrap();
            let mut payments_settings = PaymentsSettings::default();
            payments_settings.subgraph.listen = "127.0.0.1:0".into();
            payments_settings.subgraph.database = payments_db;
            payments_settings.subgraph.service_token = Some(SecretString::from(SERVICE_TOKEN));
            let payments = PaymentsApp::build_with(
                payments_settings,
                kv.clone(),
                KeySource::Url(jwks.clone()),
                provider,
            )
            .await
            .unwrap();
            let payments_url = format!("http://127.0.0.1:{}/", payments.port());
            tokio::spawn(payments.run_until_stopped(std::future::pending()));
            let mut settings = ReservationsSettings {
                catalog_url,
                payments_url,
                ..Default::default()
            };
            settings.subgraph.listen = "127.0.0.1:0".into();
            settings.subgraph.database = reservations_db;
            settings.subgraph.redis = redis_test_settings();
            settings.subgraph.jwks_url = jwks;
            settings.subgraph.service_token = Some(SecretString::from(SERVICE_TOKEN));
            settings.booking.hold_timeout_ms = hold_timeout_ms;
            settings.booking.reconcile_interval_ms = 100;
            let reservations = ReservationsApp::build(settings).await.unwrap();
            let url = format!("http://127.0.0.1:{}/", reservations.port());
            tokio::spawn(reservations.run_until_stopped(std::future::pending()));
            url
        });
        (runtime, url)
    })
    .join()
    .unwrap();
    Killable {
        runtime,
        reservations_url: url,
    }
}

async fn rows(db: &TestDatabase, sql: &str) -> Vec<(String, String)> {
    let conn = draftr_common::db::connect(&db.settings).await.unwrap();
    conn.query_all_raw(Statement::from_string(conn.get_database_backend(), sql))
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            (
                r.try_get::<String>("", "a").unwrap(),
                r.try_get::<String>("", "b").unwrap_or_default(),
            )
        })
        .collect()
}

/// Books through a killable stack until the provider stalls at `stall`, kills the stack,
/// restarts it and waits for the reconciler. Returns the databases for the checks.
async fn crash_and_restart(backend: Backend, stall: Stall) -> (Arc<SimulatedProvider>, Databases) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "MODERATE").await;
    let (_, guest, _, _) = app.new_user().await;
    let dbs = Databases {
        reservations: TestDatabase::new(backend).await,
        payments: TestDatabase::new(backend).await,
    };
    let provider = Arc::new(SimulatedProvider::new());
    provider.stall(stall, true);

    // The first life: the booking gets as far as the stall, then the processes die.
    let stack = start_killable(&app, &dbs, provider.clone(), 60_000);
    let client = app.client.clone();
    let url = stack.reservations_url.clone();
    let request = tokio::spawn(async move {
        client
            .post(&url)
            .bearer_auth(&guest)
            .json(&json!({ "query": BOOK, "variables": { "i": booking(&property, 20, 23, "pm_card_visa") } }))
            .send()
            .await
    });
    let p = provider.clone();
    wait_until("the authorization", Duration::from_secs(20), async || {
        p.counts().authorizations == 1
    })
    .await;
    if stall == Stall::BeforeCapture {
        let db = &dbs.reservations;
        wait_until("the confirmation", Duration::from_secs(20), async || {
            rows(db, "SELECT status AS a, status AS b FROM reservations")
                .await
                .first()
                .is_some_and(|r| r.0 == "CONFIRMED")
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    stack.runtime.shutdown_background();
    assert!(
        request.await.unwrap().is_err(),
        "the client saw the connection die"
    );
    let state = rows(
        &dbs.reservations,
        "SELECT status AS a, status AS b FROM reservations",
    )
    .await;
    let expected = if stall == Stall::AfterAuthorize {
        "PENDING"
    } else {
        "CONFIRMED"
    };
    assert_eq!(state[0].0, expected, "the crash left the saga half done");

    // The second life: same databases, same provider (Stripe keeps its state), no stall.
    provider.stall(stall, false);
    let restarted = start_killable(&app, &dbs, provider.clone(), 300);
    let db = &dbs.reservations;
    wait_until("the reconciler", Duration::from_secs(20), async || {
        rows(db, "SELECT status AS a, CASE WHEN captured THEN 'yes' ELSE 'no' END AS b FROM reservations")
            .await
            .first()
            .is_some_and(|r| r.0 == "CONFIRMED" && r.1 == "yes")
    })
    .await;
    restarted.runtime.shutdown_background();
    (provider, dbs)
}

/// After recovery: every payment held or taken belongs to a confirmed reservation, and every
/// confirmed reservation's payment was taken, exactly once.
async fn assert_accounts_balance(provider: &SimulatedProvider, dbs: &Databases) {
    let counts = provider.counts();
    assert_eq!(counts.authorizations, 1, "no second authorization");
    assert_eq!(counts.captures, 1, "captured exactly once");
    let payments = rows(
        &dbs.payments,
        "SELECT status AS a, status AS b FROM payments",
    )
    .await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].0, "CAPTURED");
    let reservations = rows(
        &dbs.reservations,
        "SELECT status AS a, status AS b FROM reservations",
    )
    .await;
    assert_eq!(reservations.len(), 1);
    assert_eq!(reservations[0].0, "CONFIRMED");
    let events = rows(
        &dbs.reservations,
        "SELECT kind AS a, kind AS b FROM outbox WHERE kind = 'reservation.confirmed'",
    )
    .await;
    assert_eq!(events.len(), 1, "one confirmation event");
}

async fn a_crash_after_authorize_is_finished_by_the_reconciler_after_restart(backend: Backend) {
    let (provider, dbs) = crash_and_restart(backend, Stall::AfterAuthorize).await;
    assert_accounts_balance(&provider, &dbs).await;
}

async fn a_crash_before_capture_is_captured_by_the_reconciler_after_restart(backend: Backend) {
    let (provider, dbs) = crash_and_restart(backend, Stall::BeforeCapture).await;
    assert_accounts_balance(&provider, &dbs).await;
}
