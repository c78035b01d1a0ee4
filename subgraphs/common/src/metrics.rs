//! Prometheus metrics: one registry per subgraph app, served at `GET /metrics` by
//! [`crate::graphql::subgraph_app`], and every metric family Draftr's subgraphs serve.
//!
//! **One registry per app, never the process-wide default.** `draftr run` runs all five
//! subgraphs in one process and the end-to-end tests run many stacks in one process at once;
//! each subgraph must serve its own numbers. So every `App::build_with` makes a
//! [`SubgraphMetrics`] and hands it (an `Arc`) to what records: [`crate::graphql::subgraph_app`]
//! (requests), [`crate::service_client::ServiceClient::with_metrics`] (calls and breakers), and
//! the subgraph's own loops through the typed parts registered on it
//! ([`ReservationMetrics`], [`NotificationMetrics`]).
//!
//! Every name is prefixed `draftr_` (the registry's namespace) and every series carries
//! `subgraph="<name>"` (a constant label of the registry). This file is the one catalogue of
//! the names: `docs/observability.md` lists them, and `tests/api/metrics.rs` checks that every
//! name the dashboard and the alert rules use is served.
//!
//! **Bounded labels only.** Operation names are chosen by clients, so they are never labels:
//! GraphQL requests are labelled by operation type and root field, which the schema bounds
//! (see [`RequestMetrics`]). Outcomes are the error codes of [`ErrorCode`], and every other
//! label takes values from a fixed list. Every known label value is set up at registration, so
//! each series exists (at 0) from the start: `rate()` sees the first increment, and a
//! dashboard's query finds its series before anything happened.
//!
//! **A scrape never waits on a slow dependency.** Gauges read from a database or Redis (the
//! outbox, compensations, emails by status, consumer lag) are refreshed at scrape time by
//! [`SubgraphMetrics::refresh_at_scrape`] hooks, each bounded by [`REFRESH_TIMEOUT`]: one that
//! fails or is late keeps its last value and counts `draftr_metrics_refresh_errors_total`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
    NextValidation,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, FragmentDefinition, OperationDefinition, OperationType,
    Selection, SelectionSet,
};
use async_graphql::{
    Name, Positioned, Request, Response, ServerError, ServerResult, ValidationResult, Variables,
};
use futures::future::BoxFuture;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::error::ErrorCode;

/// The handle types the typed parts expose, so subgraphs need no dependency of their own.
pub use prometheus::{Gauge, IntCounter, IntGauge};

/// The longest a scrape waits for a gauge read from a database or Redis.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(2);

/// Latency buckets (seconds) for a booking API: most reads take milliseconds; a booking
/// (quote, hold, authorize, confirm, capture) takes tens to hundreds; retries and a slow
/// provider take seconds, up to the 30 s request timeout.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// The `operation` label of a request with several root fields (each is counted in
/// `draftr_graphql_root_fields_total`). Joining their names would let a client mint a new
/// label value per combination.
pub const MULTIPLE_ROOT_FIELDS: &str = "(multiple)";
/// The `operation` label of a request that did not parse or validate: its field names are
/// whatever the client typed, so none of them is used.
pub const INVALID_OPERATION: &str = "(invalid)";
/// The `outcome` of a request without errors.
pub const OK: &str = "ok";
/// The `outcome` of an error without a code this build knows (never expected: every error gets
/// one, see [`crate::error`]).
pub const OTHER_ERROR: &str = "OTHER";

/// Every code an outcome can be (a new [`ErrorCode`] that is not added here fails to compile in
/// `listed` below).
pub const ERROR_CODES: [ErrorCode; 12] = [
    ErrorCode::BadUserInput,
    ErrorCode::Unauthenticated,
    ErrorCode::Forbidden,
    ErrorCode::NotFound,
    ErrorCode::BookingConflict,
    ErrorCode::PaymentDeclined,
    ErrorCode::PaymentUnavailable,
    ErrorCode::PaymentOutcomeUnknown,
    ErrorCode::RateLimited,
    ErrorCode::GraphqlParseFailed,
    ErrorCode::GraphqlValidationFailed,
    ErrorCode::InternalServerError,
];

/// Exhaustive on purpose: adding an [`ErrorCode`] variant stops this compiling until it is
/// listed in [`ERROR_CODES`] too.
#[allow(dead_code)]
const fn listed(code: ErrorCode) {
    match code {
        ErrorCode::BadUserInput
        | ErrorCode::Unauthenticated
        | ErrorCode::Forbidden
        | ErrorCode::NotFound
        | ErrorCode::BookingConflict
        | ErrorCode::PaymentDeclined
        | ErrorCode::PaymentUnavailable
        | ErrorCode::PaymentOutcomeUnknown
        | ErrorCode::RateLimited
        | ErrorCode::GraphqlParseFailed
        | ErrorCode::GraphqlValidationFailed
        | ErrorCode::InternalServerError => {}
    }
}

/// Every `outcome` of `draftr_graphql_requests_total`.
pub fn outcomes() -> impl Iterator<Item = &'static str> {
    std::iter::once(OK)
        .chain(ERROR_CODES.iter().map(|c| c.as_str()))
        .chain(std::iter::once(OTHER_ERROR))
}

/// HTTP status classes (`draftr_http_requests_total{status}`).
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// The `route` of a request no route matched.
pub const UNMATCHED_ROUTE: &str = "(unmatched)";

/// Outcomes of one service call ([`crate::service_client::ServiceClient::call`]).
pub const CALL_OUTCOMES: [&str; 4] = [
    // Data came back.
    "ok",
    // The dependency answered with a typed refusal (its error code).
    "refused",
    // Every attempt failed: unreachable, timed out, or failing internally.
    "unavailable",
    // The breaker was open: nothing was sent.
    "rejected",
];

/// `draftr_service_breaker_state` values.
pub const BREAKER_CLOSED: i64 = 0;
pub const BREAKER_HALF_OPEN: i64 = 1;
pub const BREAKER_OPEN: i64 = 2;

type Refresh = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// One subgraph app's registry and the families every subgraph has. Cheap to share (`Arc`).
pub struct SubgraphMetrics {
    subgraph: &'static str,
    registry: Registry,
    graphql_requests: IntCounterVec,
    graphql_duration: HistogramVec,
    graphql_root_fields: IntCounterVec,
    http_requests: IntCounterVec,
    service_calls: IntCounterVec,
    breaker_state: IntGaugeVec,
    consumer_lag: IntGaugeVec,
    consumer_pending: IntGaugeVec,
    refresh_errors: IntCounterVec,
    refreshers: Mutex<Vec<(&'static str, Refresh)>>,
}

impl std::fmt::Debug for SubgraphMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubgraphMetrics")
            .field("subgraph", &self.subgraph)
            .finish_non_exhaustive()
    }
}

fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn int_gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    let c = IntCounter::new(name, help)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl SubgraphMetrics {
    /// A fresh registry for subgraph `subgraph` with the common families registered.
    pub fn new(subgraph: &'static str) -> prometheus::Result<Arc<Self>> {
        let registry = Registry::new_custom(
            Some("draftr".to_owned()),
            Some(HashMap::from([(
                "subgraph".to_owned(),
                subgraph.to_owned(),
            )])),
        )?;
        let graphql_requests = counter_vec(
            &registry,
            "graphql_requests_total",
            "GraphQL requests by operation type, root field (or (multiple)/(invalid)) and outcome (ok or the first error's code).",
            &["type", "operation", "outcome"],
        )?;
        let graphql_duration = HistogramVec::new(
            HistogramOpts::new(
                "graphql_request_duration_seconds",
                "Time to answer a GraphQL request (parse, validate, execute), by operation type, root field and outcome (ok or error).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["type", "operation", "outcome"],
        )?;
        registry.register(Box::new(graphql_duration.clone()))?;
        let graphql_root_fields = counter_vec(
            &registry,
            "graphql_root_fields_total",
            "Root fields of valid GraphQL requests, one count per distinct root field per request.",
            &["type", "field"],
        )?;
        let http_requests = counter_vec(
            &registry,
            "http_requests_total",
            "HTTP requests by route and status class.",
            &["route", "status"],
        )?;
        let service_calls = counter_vec(
            &registry,
            "service_calls_total",
            "Calls to another Draftr subgraph by dependency and outcome (ok, refused, unavailable, rejected by the open breaker).",
            &["dependency", "outcome"],
        )?;
        let breaker_state = gauge_vec(
            &registry,
            "service_breaker_state",
            "Circuit breaker of calls to a dependency: 0 closed, 1 half-open, 2 open.",
            &["dependency"],
        )?;
        let consumer_lag = gauge_vec(
            &registry,
            "stream_consumer_lag",
            "Entries of the event stream not yet delivered to the consumer group (Redis XINFO GROUPS lag).",
            &["topic", "group"],
        )?;
        let consumer_pending = gauge_vec(
            &registry,
            "stream_consumer_pending",
            "Entries delivered to the consumer group but not acknowledged yet (XPENDING count).",
            &["topic", "group"],
        )?;
        let refresh_errors = counter_vec(
            &registry,
            "metrics_refresh_errors_total",
            "Gauges that could not be refreshed at scrape time (the dependency failed or took longer than the timeout); they keep their last value.",
            &["source"],
        )?;
        for status in STATUS_CLASSES {
            http_requests.with_label_values(&["/", status]);
        }
        let metrics = Self {
            subgraph,
            registry,
            graphql_requests,
            graphql_duration,
            graphql_root_fields,
            http_requests,
            service_calls,
            breaker_state,
            consumer_lag,
            consumer_pending,
            refresh_errors,
            refreshers: Mutex::new(Vec::new()),
        };
        for ty in ["query", "mutation"] {
            metrics.register_operation(ty, INVALID_OPERATION);
            metrics.register_operation(ty, MULTIPLE_ROOT_FIELDS);
        }
        metrics.register_operation("unknown", INVALID_OPERATION);
        Ok(Arc::new(metrics))
    }

    /// The subgraph these metrics are of.
    pub fn subgraph(&self) -> &'static str {
        self.subgraph
    }

    /// The registry, for the typed parts a subgraph registers on it.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Sets up the series of one operation label: every outcome of the request counter, and
    /// the latency histogram for ok and error.
    fn register_operation(&self, ty: &str, operation: &str) {
        for outcome in outcomes() {
            self.graphql_requests
                .with_label_values(&[ty, operation, outcome]);
        }
        for outcome in [OK, "error"] {
            self.graphql_duration
                .with_label_values(&[ty, operation, outcome]);
        }
    }

    /// Sets up the series of every root field of `schema_sdl` (the schema's own SDL), so each
    /// exists before its first request. `_entities` and `_service` are included where the SDL
    /// has them (a federation subgraph's does).
    pub fn register_schema(&self, schema_sdl: &str) {
        for (ty, field) in root_fields_of_sdl(schema_sdl) {
            self.register_operation(ty, &field);
            self.graphql_root_fields.with_label_values(&[ty, &field]);
        }
    }

    /// Counts one GraphQL request.
    fn record_request(&self, label: &OperationLabel, outcome: &str, elapsed: Duration) {
        self.graphql_requests
            .with_label_values(&[label.ty, &label.operation, outcome])
            .inc();
        let coarse = if outcome == OK { OK } else { "error" };
        self.graphql_duration
            .with_label_values(&[label.ty, &label.operation, coarse])
            .observe(elapsed.as_secs_f64());
        for field in &label.fields {
            self.graphql_root_fields
                .with_label_values(&[label.ty, field])
                .inc();
        }
    }

    /// Counts one HTTP request to `route` (a route pattern, never a raw path) answered with
    /// `status`.
    pub fn record_http(&self, route: &str, status: u16) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_requests.with_label_values(&[route, class]).inc();
    }

    /// The recorder of calls to `dependency`, with its series set up (breaker closed).
    pub fn dependency(&self, dependency: &'static str) -> DependencyMetrics {
        for outcome in CALL_OUTCOMES {
            self.service_calls.with_label_values(&[dependency, outcome]);
        }
        let state = self.breaker_state.with_label_values(&[dependency]);
        state.set(BREAKER_CLOSED);
        DependencyMetrics {
            calls: CALL_OUTCOMES.map(|o| self.service_calls.with_label_values(&[dependency, o])),
            state,
        }
    }

    /// Keeps `group`'s lag and pending gauges on `topic` up to date from `bus` at every scrape.
    pub fn watch_consumer(
        self: &Arc<Self>,
        bus: Arc<dyn crate::events::EventBus>,
        topic: &'static str,
        group: &'static str,
    ) {
        let lag = self.consumer_lag.with_label_values(&[topic, group]);
        let pending = self.consumer_pending.with_label_values(&[topic, group]);
        self.refresh_at_scrape("stream_consumer", move || {
            let (bus, lag, pending) = (bus.clone(), lag.clone(), pending.clone());
            async move {
                if let Some(backlog) = bus.backlog(topic, group).await? {
                    if let Some(n) = backlog.lag {
                        lag.set(i64::try_from(n).unwrap_or(i64::MAX));
                    }
                    pending.set(i64::try_from(backlog.pending).unwrap_or(i64::MAX));
                }
                Ok(())
            }
        });
    }

    /// Runs `refresh` before every scrape, for gauges read from a database or Redis. It is
    /// given [`REFRESH_TIMEOUT`]; a failure or a timeout is logged and counted under `source`
    /// (`draftr_metrics_refresh_errors_total`), and its gauges keep their last value.
    pub fn refresh_at_scrape<F, Fut>(&self, source: &'static str, refresh: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.refresh_errors.with_label_values(&[source]);
        let refresh: Refresh = Arc::new(move || Box::pin(refresh()));
        self.refreshers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((source, refresh));
    }

    /// Runs every refresh hook (at once, each bounded by [`REFRESH_TIMEOUT`]).
    pub async fn refresh(&self) {
        let hooks: Vec<_> = self
            .refreshers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let runs = hooks.into_iter().map(|(source, hook)| async move {
            let failed = match tokio::time::timeout(REFRESH_TIMEOUT, hook()).await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {} ms", REFRESH_TIMEOUT.as_millis()),
            };
            tracing::warn!(subgraph = self.subgraph, source, error = %failed, "metrics not refreshed; serving the last values");
            self.refresh_errors.with_label_values(&[source]).inc();
        });
        futures::future::join_all(runs).await;
    }

    /// What `GET /metrics` serves: refreshed gauges, then everything in the text format.
    pub async fn scrape(&self) -> String {
        self.refresh().await;
        self.encode()
    }

    /// Everything in the Prometheus text exposition format, as it is now.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Calls to one dependency: outcomes and the breaker's state.
#[derive(Clone)]
pub struct DependencyMetrics {
    calls: [IntCounter; 4],
    state: IntGauge,
}

/// How one service call ended (see [`CALL_OUTCOMES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    Refused,
    Unavailable,
    Rejected,
}

impl DependencyMetrics {
    pub fn call(&self, outcome: CallOutcome) {
        self.calls[outcome as usize].inc();
    }
}

impl DependencyMetrics {
    /// What keeps the breaker's gauge in step with the breaker.
    pub fn breaker_gauge(&self) -> BreakerGauge {
        BreakerGauge(Some(self.state.clone()))
    }
}

/// Keeps `draftr_service_breaker_state` in step with a failsafe circuit breaker (nothing, for
/// a client without metrics).
#[derive(Clone, Default)]
pub struct BreakerGauge(Option<IntGauge>);

impl failsafe::Instrument for BreakerGauge {
    fn on_call_rejected(&self) {}
    fn on_open(&self) {
        if let Some(g) = &self.0 {
            g.set(BREAKER_OPEN);
        }
    }
    fn on_half_open(&self) {
        if let Some(g) = &self.0 {
            g.set(BREAKER_HALF_OPEN);
        }
    }
    fn on_closed(&self) {
        if let Some(g) = &self.0 {
            g.set(BREAKER_CLOSED);
        }
    }
}

/// How the reservations subgraph's bookings, saga repairs and outbox are doing.
#[derive(Clone)]
pub struct ReservationMetrics {
    bookings: IntCounterVec,
    reconciler_actions: IntCounterVec,
    /// Reconciler passes that failed (a database error before the pass finished).
    pub reconciler_failed_passes: IntCounter,
    /// Failed or cancelled reservations whose payment is still to be voided or refunded.
    pub compensations_pending: IntGauge,
    /// Outbox rows not yet published on the event bus.
    pub outbox_unpublished: IntGauge,
    /// Age in seconds of the oldest unpublished outbox row (0 when none): the relay's lag.
    pub outbox_oldest_age: Gauge,
}

/// Every `outcome` of `draftr_bookings_total`, as [`BookingOutcome::as_str`] writes it.
pub const BOOKING_OUTCOMES: [BookingOutcome; 9] = [
    BookingOutcome::Confirmed,
    BookingOutcome::Replayed,
    BookingOutcome::Conflict,
    BookingOutcome::Declined,
    BookingOutcome::Unavailable,
    BookingOutcome::CatalogUnavailable,
    BookingOutcome::Invalid,
    BookingOutcome::NotFound,
    BookingOutcome::Error,
];

/// How a `createReservation` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingOutcome {
    /// Confirmed (a retry with the same key that finished a pending booking counts here too).
    Confirmed,
    /// A repeated idempotency key answered with a reservation that is no longer confirmed.
    Replayed,
    /// BOOKING_CONFLICT: the dates were taken.
    Conflict,
    /// PAYMENT_DECLINED: the card was declined.
    Declined,
    /// PAYMENT_UNAVAILABLE: payments unreachable, or the authorization's outcome unknown.
    Unavailable,
    /// Catalog could not price the stay.
    CatalogUnavailable,
    /// BAD_USER_INPUT: dates, guests, key, payment method, own property, …
    Invalid,
    /// NOT_FOUND: no such property.
    NotFound,
    /// INTERNAL_SERVER_ERROR.
    Error,
}

impl BookingOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Replayed => "replayed",
            Self::Conflict => "conflict",
            Self::Declined => "declined",
            Self::Unavailable => "unavailable",
            Self::CatalogUnavailable => "catalog_unavailable",
            Self::Invalid => "invalid",
            Self::NotFound => "not_found",
            Self::Error => "error",
        }
    }
}

/// Every `action` of `draftr_reconciler_actions_total`.
pub const RECONCILER_ACTIONS: [&str; 4] = [
    // A stale hold that payments had authorized: confirmed and captured.
    "finished",
    // A stale hold released (FAILED).
    "released",
    // A confirmed booking's payment captured.
    "captured",
    // A failed or cancelled booking's payment voided or refunded.
    "compensated",
];

impl ReservationMetrics {
    pub fn register(metrics: &SubgraphMetrics) -> prometheus::Result<Self> {
        let r = metrics.registry();
        let bookings = counter_vec(
            r,
            "bookings_total",
            "createReservation requests by outcome.",
            &["outcome"],
        )?;
        for outcome in BOOKING_OUTCOMES {
            bookings.with_label_values(&[outcome.as_str()]);
        }
        let reconciler_actions = counter_vec(
            r,
            "reconciler_actions_total",
            "What the reconciler did, by action (finished, released, captured, compensated).",
            &["action"],
        )?;
        for action in RECONCILER_ACTIONS {
            reconciler_actions.with_label_values(&[action]);
        }
        let outbox_oldest_age = Gauge::new(
            "outbox_oldest_unpublished_age_seconds",
            "Age of the oldest outbox row not yet published (0 when none): how far the relay is behind.",
        )?;
        r.register(Box::new(outbox_oldest_age.clone()))?;
        Ok(Self {
            bookings,
            reconciler_actions,
            reconciler_failed_passes: counter(
                r,
                "reconciler_failed_passes_total",
                "Reconciler passes that failed before finishing.",
            )?,
            compensations_pending: int_gauge(
                r,
                "compensations_pending",
                "Failed or cancelled reservations whose payment is still to be voided or refunded.",
            )?,
            outbox_unpublished: int_gauge(
                r,
                "outbox_unpublished",
                "Outbox rows not yet published on the event bus.",
            )?,
            outbox_oldest_age,
        })
    }

    pub fn booking(&self, outcome: BookingOutcome) {
        self.bookings.with_label_values(&[outcome.as_str()]).inc();
    }

    /// Counts `n` reconciler actions of kind `action` (one of [`RECONCILER_ACTIONS`]).
    pub fn reconciled(&self, action: &'static str, n: u32) {
        self.reconciler_actions
            .with_label_values(&[action])
            .inc_by(u64::from(n));
    }
}

/// Every `result` of `draftr_email_sends_total`.
pub const EMAIL_SEND_RESULTS: [&str; 3] = [
    // The relay accepted it.
    "sent",     // The attempt failed; another is scheduled.
    "retrying", // The attempt failed and the email is given up (FAILED).
    "failed",
];

/// How the notifications subgraph's emails and live connections are doing.
#[derive(Clone)]
pub struct NotificationMetrics {
    emails: IntGaugeVec,
    email_sends: IntCounterVec,
    /// Open subscription sockets (signed in or not yet).
    pub live_connections: IntGauge,
    /// Subscriptions running on those sockets.
    pub live_subscriptions: IntGauge,
}

impl NotificationMetrics {
    /// `statuses`: every status an email row can have (the store's names).
    pub fn register(metrics: &SubgraphMetrics, statuses: &[&str]) -> prometheus::Result<Self> {
        let r = metrics.registry();
        let emails = gauge_vec(
            r,
            "emails",
            "Email rows in the notifications store by status.",
            &["status"],
        )?;
        for status in statuses {
            emails.with_label_values(&[status]);
        }
        let email_sends = counter_vec(
            r,
            "email_sends_total",
            "Attempts to send an email by result (sent, retrying, failed).",
            &["result"],
        )?;
        for result in EMAIL_SEND_RESULTS {
            email_sends.with_label_values(&[result]);
        }
        Ok(Self {
            emails,
            email_sends,
            live_connections: int_gauge(
                r,
                "live_connections",
                "Open subscription WebSocket connections.",
            )?,
            live_subscriptions: int_gauge(
                r,
                "live_subscriptions",
                "Subscriptions running on open WebSocket connections.",
            )?,
        })
    }

    /// Sets the gauge of emails in `status`.
    pub fn set_emails(&self, status: &str, n: u64) {
        self.emails
            .with_label_values(&[status])
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Counts one attempt that ended with `result` (one of [`EMAIL_SEND_RESULTS`]).
    pub fn email_send(&self, result: &'static str) {
        self.email_sends.with_label_values(&[result]).inc();
    }
}

/// What a request's metrics are labelled with.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OperationLabel {
    ty: &'static str,
    operation: String,
    /// The distinct root fields of a valid request (empty for an invalid one).
    fields: Vec<String>,
}

impl OperationLabel {
    fn invalid(ty: &'static str) -> Self {
        Self {
            ty,
            operation: INVALID_OPERATION.to_owned(),
            fields: Vec::new(),
        }
    }
}

fn type_name(ty: OperationType) -> &'static str {
    match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

/// The operation async-graphql will run: the named one, or the only one.
fn selected_operation<'a>(
    doc: &'a ExecutableDocument,
    name: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match (&doc.operations, name) {
        (DocumentOperations::Single(op), None) => Some(op),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The root field names of `set`, fragments expanded (each fragment once).
fn collect_root_fields<'a>(
    set: &'a SelectionSet,
    fragments: &'a HashMap<Name, Positioned<FragmentDefinition>>,
    seen: &mut HashSet<&'a str>,
    out: &mut BTreeSet<String>,
) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                out.insert(field.node.name.node.to_string());
            }
            Selection::InlineFragment(inline) => {
                collect_root_fields(&inline.node.selection_set.node, fragments, seen, out)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if seen.insert(name)
                    && let Some(fragment) = fragments.get(name)
                {
                    collect_root_fields(&fragment.node.selection_set.node, fragments, seen, out);
                }
            }
        }
    }
}

/// The label of the operation `name` selects in `doc`: its type and its root field, or
/// [`MULTIPLE_ROOT_FIELDS`]. Only meaningful once the document validated (until then the
/// field names are the client's).
fn label_of(doc: &ExecutableDocument, name: Option<&str>) -> OperationLabel {
    let Some(op) = selected_operation(doc, name) else {
        return OperationLabel::invalid("unknown");
    };
    let ty = type_name(op.node.ty);
    let mut fields = BTreeSet::new();
    collect_root_fields(
        &op.node.selection_set.node,
        &doc.fragments,
        &mut HashSet::new(),
        &mut fields,
    );
    let fields: Vec<String> = fields.into_iter().collect();
    let operation = match fields.as_slice() {
        [one] => one.clone(),
        [] => return OperationLabel::invalid(ty),
        _ => MULTIPLE_ROOT_FIELDS.to_owned(),
    };
    OperationLabel {
        ty,
        operation,
        fields,
    }
}

/// The root fields of a schema's SDL: `(type, field)` for its Query, Mutation and Subscription
/// types (`extend type` included).
fn root_fields_of_sdl(sdl: &str) -> Vec<(&'static str, String)> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
        tracing::warn!("the schema's own SDL did not parse; request series start at first use");
        return Vec::new();
    };
    let mut roots = HashMap::from([
        ("Query".to_owned(), "query"),
        ("Mutation".to_owned(), "mutation"),
        ("Subscription".to_owned(), "subscription"),
    ]);
    for def in &doc.definitions {
        if let TypeSystemDefinition::Schema(schema) = def {
            let s = &schema.node;
            roots.clear();
            for (ty, name) in [
                ("query", &s.query),
                ("mutation", &s.mutation),
                ("subscription", &s.subscription),
            ] {
                if let Some(name) = name {
                    roots.insert(name.node.to_string(), ty);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    for def in &doc.definitions {
        if let TypeSystemDefinition::Type(t) = def
            && let Some(ty) = roots.get(t.node.name.node.as_str())
            && let TypeKind::Object(object) = &t.node.kind
        {
            for field in &object.fields {
                out.insert((*ty, field.node.name.node.to_string()));
            }
        }
    }
    out.into_iter().collect()
}

/// The outcome of a response: ok, or its first error's code.
fn outcome_of(response: &Response) -> &'static str {
    let Some(first) = response.errors.first() else {
        return OK;
    };
    code_of(first)
}

fn code_of(err: &ServerError) -> &'static str {
    let code = err
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .and_then(|v| match v {
            async_graphql::Value::String(s) => Some(s.as_str()),
            async_graphql::Value::Enum(n) => Some(n.as_str()),
            _ => None,
        });
    code.and_then(|c| ERROR_CODES.iter().find(|k| k.as_str() == c))
        .map_or(OTHER_ERROR, |k| k.as_str())
}

/// The async-graphql extension that counts and times every GraphQL request of a subgraph by
/// operation type, root field and outcome (see the module docs for why not operation names).
///
/// It is added first by [`crate::graphql::harden`], so it is the outermost extension and sees
/// each response with the codes [`crate::error::ErrorCodes`] gave it. It records into the
/// [`SubgraphMetrics`] in the request's data (put there by the subgraph's HTTP handler), so a
/// schema executed without one (a unit test, GraphiQL's probe) records nothing.
pub struct RequestMetrics;

impl ExtensionFactory for RequestMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestMetricsExtension::default())
    }
}

#[derive(Default)]
struct RequestState {
    metrics: Option<Arc<SubgraphMetrics>>,
    operation_name: Option<String>,
    /// Set once the document parsed.
    label: Option<OperationLabel>,
    validated: bool,
}

#[derive(Default)]
struct RequestMetricsExtension(Mutex<RequestState>);

impl RequestMetricsExtension {
    fn state(&self) -> std::sync::MutexGuard<'_, RequestState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Extension for RequestMetricsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let (metrics, label) = {
            let mut state = self.state();
            let label = match (state.label.take(), state.validated) {
                (Some(label), true) => label,
                (Some(label), false) => OperationLabel::invalid(label.ty),
                (None, _) => OperationLabel::invalid("unknown"),
            };
            (state.metrics.take(), label)
        };
        if let Some(metrics) = metrics {
            metrics.record_request(&label, outcome_of(&response), started.elapsed());
        }
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        {
            let mut state = self.state();
            state.metrics = request
                .data
                .get(&std::any::TypeId::of::<Arc<SubgraphMetrics>>())
                .and_then(|d| d.downcast_ref::<Arc<SubgraphMetrics>>())
                .cloned();
            state.operation_name = request.operation_name.clone();
        }
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let mut state = self.state();
        state.label = Some(label_of(&doc, state.operation_name.as_deref()));
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        self.state().validated = result.is_ok();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptySubscription, Object, Schema};

    struct Query;

    #[Object]
    impl Query {
        async fn me(&self) -> i32 {
            1
        }
        async fn things(&self) -> Vec<i32> {
            vec![1, 2]
        }
        async fn broken(&self) -> crate::ApiResult<i32> {
            Err(crate::ApiError::not_found("no such thing"))
        }
        #[graphql(entity)]
        async fn find_thing_by_id(&self, id: async_graphql::ID) -> Thing {
            Thing { id }
        }
    }

    #[derive(async_graphql::SimpleObject)]
    struct Thing {
        id: async_graphql::ID,
    }

    struct Mutation;

    #[Object]
    impl Mutation {
        async fn book(&self) -> i32 {
            7
        }
    }

    fn schema() -> Schema<Query, Mutation, EmptySubscription> {
        crate::graphql::harden(
            Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
            &Default::default(),
        )
        .finish()
    }

    /// The value of the series `name{labels…}` in `text` (labels in any order, all given).
    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| {
                let Some(rest) = l.strip_prefix(name) else {
                    return false;
                };
                (rest.starts_with('{') || rest.starts_with(' '))
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    async fn run(
        schema: &Schema<Query, Mutation, EmptySubscription>,
        m: &Arc<SubgraphMetrics>,
        query: &str,
    ) {
        schema.execute(Request::new(query).data(m.clone())).await;
    }

    #[tokio::test]
    async fn requests_are_counted_by_type_root_field_and_outcome_never_by_client_names() {
        let m = SubgraphMetrics::new("test").unwrap();
        let schema = schema();
        m.register_schema(&schema.sdl());
        let before = m.encode();
        // Every root field, federation's included, exists from the start at 0.
        for (ty, op) in [
            ("query", "me"),
            ("query", "_entities"),
            ("query", "_service"),
            ("mutation", "book"),
        ] {
            assert_eq!(
                value(
                    &before,
                    "draftr_graphql_requests_total",
                    &[
                        ("type", ty),
                        ("operation", op),
                        ("outcome", "ok"),
                        ("subgraph", "test")
                    ]
                ),
                Some(0.0),
                "{ty} {op}: {before}"
            );
        }

        run(&schema, &m, "query SomeClientName { me }").await;
        run(&schema, &m, "query AnotherName { a: me b: me }").await;
        run(&schema, &m, "{ me ...F } fragment F on Query { things }").await;
        run(&schema, &m, "mutation { book }").await;
        run(&schema, &m, "{ broken }").await;
        run(&schema, &m, "{ madeUpField }").await;
        run(&schema, &m, "{ me").await;
        let text = m.encode();
        let requests = |ty, op, outcome| {
            value(
                &text,
                "draftr_graphql_requests_total",
                &[("type", ty), ("operation", op), ("outcome", outcome)],
            )
        };
        assert_eq!(requests("query", "me", "ok"), Some(2.0), "{text}");
        assert_eq!(requests("query", MULTIPLE_ROOT_FIELDS, "ok"), Some(1.0));
        assert_eq!(requests("mutation", "book", "ok"), Some(1.0));
        assert_eq!(requests("query", "broken", "NOT_FOUND"), Some(1.0));
        assert_eq!(
            requests("query", INVALID_OPERATION, "GRAPHQL_VALIDATION_FAILED"),
            Some(1.0)
        );
        assert_eq!(
            requests("unknown", INVALID_OPERATION, "GRAPHQL_PARSE_FAILED"),
            Some(1.0)
        );
        // Neither client-chosen names nor unknown fields become label values.
        for made_up in [
            "SomeClientName",
            "AnotherName",
            "madeUpField",
            "\"a\"",
            "\"F\"",
        ] {
            assert!(!text.contains(made_up), "{made_up} leaked into {text}");
        }
        let fields = |field| {
            value(
                &text,
                "draftr_graphql_root_fields_total",
                &[("type", "query"), ("field", field)],
            )
        };
        assert_eq!(fields("me"), Some(3.0));
        assert_eq!(fields("things"), Some(1.0));
        assert_eq!(
            value(
                &text,
                "draftr_graphql_request_duration_seconds_count",
                &[("type", "query"), ("operation", "me"), ("outcome", "ok")]
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                &text,
                "draftr_graphql_request_duration_seconds_count",
                &[("operation", "broken"), ("outcome", "error")]
            ),
            Some(1.0)
        );
    }

    #[tokio::test]
    async fn a_schema_run_without_metrics_records_nothing() {
        let m = SubgraphMetrics::new("test").unwrap();
        let schema = schema();
        schema.execute("{ me }").await;
        assert!(!m.encode().contains("operation=\"me\""));
    }

    #[tokio::test]
    async fn two_apps_in_one_process_serve_their_own_numbers() {
        let a = SubgraphMetrics::new("auth").unwrap();
        let b = SubgraphMetrics::new("catalog").unwrap();
        let schema = schema();
        run(&schema, &a, "{ me }").await;
        let (ta, tb) = (a.encode(), b.encode());
        assert_eq!(
            value(
                &ta,
                "draftr_graphql_requests_total",
                &[("operation", "me"), ("outcome", "ok"), ("subgraph", "auth")]
            ),
            Some(1.0)
        );
        assert!(!tb.contains("subgraph=\"auth\""));
        assert_eq!(
            value(
                &tb,
                "draftr_graphql_requests_total",
                &[("operation", "me"), ("outcome", "ok")]
            ),
            None,
            "catalog never registered or served `me`"
        );
    }

    #[tokio::test]
    async fn a_refresh_that_fails_or_hangs_keeps_the_last_value_and_is_counted() {
        let m = SubgraphMetrics::new("test").unwrap();
        let gauge = int_gauge(m.registry(), "probe", "probe").unwrap();
        gauge.set(41);
        m.refresh_at_scrape("broken", || async { anyhow::bail!("database down") });
        m.refresh_at_scrape("slow", || async {
            tokio::time::sleep(Duration::from_secs(3_600)).await;
            Ok(())
        });
        let g = gauge.clone();
        m.refresh_at_scrape("fine", move || {
            let g = g.clone();
            async move {
                g.inc();
                Ok(())
            }
        });
        // The hanging one is given up after the timeout.
        let text = m.scrape().await;
        assert_eq!(value(&text, "draftr_probe", &[]), Some(42.0), "{text}");
        for (source, errors) in [("broken", 1.0), ("slow", 1.0), ("fine", 0.0)] {
            assert_eq!(
                value(
                    &text,
                    "draftr_metrics_refresh_errors_total",
                    &[("source", source)]
                ),
                Some(errors),
                "{source}"
            );
        }
    }

    #[test]
    fn every_label_value_is_there_from_the_start() {
        let m = SubgraphMetrics::new("reservations").unwrap();
        let r = ReservationMetrics::register(&m).unwrap();
        let n = NotificationMetrics::register(&m, &["PENDING", "SENT"]).unwrap();
        let payments = m.dependency("payments");
        let text = m.encode();
        for outcome in BOOKING_OUTCOMES {
            assert_eq!(
                value(
                    &text,
                    "draftr_bookings_total",
                    &[("outcome", outcome.as_str())]
                ),
                Some(0.0)
            );
        }
        for action in RECONCILER_ACTIONS {
            assert_eq!(
                value(
                    &text,
                    "draftr_reconciler_actions_total",
                    &[("action", action)]
                ),
                Some(0.0)
            );
        }
        for outcome in CALL_OUTCOMES {
            assert_eq!(
                value(
                    &text,
                    "draftr_service_calls_total",
                    &[("dependency", "payments"), ("outcome", outcome)]
                ),
                Some(0.0)
            );
        }
        assert_eq!(
            value(
                &text,
                "draftr_service_breaker_state",
                &[("dependency", "payments")]
            ),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "draftr_emails", &[("status", "SENT")]),
            Some(0.0)
        );
        assert_eq!(
            value(&text, "draftr_outbox_oldest_unpublished_age_seconds", &[]),
            Some(0.0)
        );

        r.booking(BookingOutcome::Confirmed);
        r.reconciled("captured", 2);
        n.email_send("sent");
        payments.call(CallOutcome::Rejected);
        failsafe::Instrument::on_open(&payments.breaker_gauge());
        let text = m.encode();
        assert_eq!(
            value(&text, "draftr_bookings_total", &[("outcome", "confirmed")]),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "draftr_reconciler_actions_total",
                &[("action", "captured")]
            ),
            Some(2.0)
        );
        assert_eq!(
            value(&text, "draftr_email_sends_total", &[("result", "sent")]),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "draftr_service_calls_total",
                &[("dependency", "payments"), ("outcome", "rejected")]
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "draftr_service_breaker_state",
                &[("dependency", "payments")]
            ),
            Some(2.0)
        );
    }

    #[test]
    fn root_fields_come_from_the_schema_including_federation_fields() {
        let fields = root_fields_of_sdl(&schema().sdl());
        for expected in [
            ("query", "me"),
            ("query", "_entities"),
            ("query", "_service"),
            ("mutation", "book"),
        ] {
            assert!(
                fields.iter().any(|(t, f)| (*t, f.as_str()) == expected),
                "{expected:?} in {fields:?}"
            );
        }
    }
}
