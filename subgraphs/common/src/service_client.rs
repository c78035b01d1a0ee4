//! Calls from one Draftr subgraph to another (reservations → catalog and payments, catalog →
//! auth, notifications → auth).
//!
//! Every call has a per-attempt timeout, a bounded number of attempts with backoff, and goes
//! through a circuit breaker: after a run of failures the breaker opens and calls fail at once
//! with [`CallError::Unavailable`] instead of each waiting for a timeout, so a user hears
//! "payments are unavailable" in milliseconds while the dependency is down, and the dependency
//! is not hammered while it recovers. The original system's gateway had the same protection.
//!
//! Retrying is only safe because every operation called this way is idempotent on the callee's
//! side (keyed by the reservation id, or, like auth's `promoteToHost`, a no-op when repeated),
//! which is a rule for anyone adding a call here.

use std::time::Duration;

use failsafe::futures::CircuitBreaker as _;
use failsafe::{Config, StateMachine, backoff, failure_policy};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;

use crate::http::{REQUEST_ID, SERVICE_TOKEN};
use crate::metrics::{BreakerGauge, CallOutcome, DependencyMetrics};

/// How hard to try before giving up on a dependency.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CallPolicy {
    /// Per attempt, connection and response included.
    pub timeout_ms: u64,
    /// Attempts per call (1 = no retry).
    pub attempts: u32,
    /// Pause before the second attempt; doubled for each further one.
    pub backoff_ms: u64,
    /// Consecutive failed attempts that open the breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls before letting one through to probe.
    pub breaker_open_ms: u64,
}

impl Default for CallPolicy {
    fn default() -> Self {
        Self {
            timeout_ms: 3_000,
            attempts: 3,
            backoff_ms: 100,
            breaker_failures: 5,
            breaker_open_ms: 5_000,
        }
    }
}

/// Why a call did not produce data.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The dependency could not be reached, timed out, failed internally, or its breaker is
    /// open. The outcome of the operation is unknown; the caller must treat it as such.
    #[error("{service} is unavailable: {reason}")]
    Unavailable {
        service: &'static str,
        reason: String,
    },
    /// The dependency answered and refused, with a typed error (its `extensions.code`).
    #[error("{service} refused: {code}: {message}")]
    Refused {
        service: &'static str,
        code: String,
        message: String,
    },
}

impl CallError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CallError::Unavailable { .. })
    }
}

/// The breaker reports its state changes to `draftr_service_breaker_state` once the client
/// has metrics ([`ServiceClient::with_metrics`]).
type Breaker = StateMachine<failure_policy::ConsecutiveFailures<backoff::Constant>, BreakerGauge>;

fn breaker(policy: &CallPolicy, gauge: BreakerGauge) -> Breaker {
    Config::new()
        .failure_policy(failure_policy::consecutive_failures(
            policy.breaker_failures.max(1),
            backoff::constant(Duration::from_millis(policy.breaker_open_ms)),
        ))
        .instrument(gauge)
        .build()
}

/// A GraphQL client for one dependency, with the service credential, timeouts, retries and a
/// circuit breaker.
pub struct ServiceClient {
    service: &'static str,
    url: String,
    token: Option<SecretString>,
    http: reqwest::Client,
    policy: CallPolicy,
    breaker: Breaker,
    metrics: Option<DependencyMetrics>,
}

impl ServiceClient {
    pub fn new(
        service: &'static str,
        url: String,
        token: Option<SecretString>,
        policy: CallPolicy,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(policy.timeout_ms))
            .connect_timeout(Duration::from_millis(policy.timeout_ms.min(1_000)))
            .build()?;
        let breaker = breaker(&policy, BreakerGauge::default());
        Ok(Self {
            service,
            url,
            token,
            http,
            policy,
            breaker,
            metrics: None,
        })
    }

    /// Counts every call's outcome (`draftr_service_calls_total`) and reports the breaker's
    /// state (`draftr_service_breaker_state`) under this client's dependency name. Call before
    /// the first call: the breaker starts closed again.
    pub fn with_metrics(mut self, metrics: &crate::metrics::SubgraphMetrics) -> Self {
        let dependency = metrics.dependency(self.service);
        self.breaker = breaker(&self.policy, dependency.breaker_gauge());
        self.metrics = Some(dependency);
        self
    }

    /// Runs `query` and returns its `data`. Unavailability is retried (the callee is
    /// idempotent); a typed refusal is returned at once.
    pub async fn call(
        &self,
        query: &str,
        variables: Value,
        request_id: &str,
    ) -> Result<Value, CallError> {
        let (outcome, result) = self.call_counted(query, variables, request_id).await;
        if let Some(metrics) = &self.metrics {
            metrics.call(outcome);
        }
        result
    }

    async fn call_counted(
        &self,
        query: &str,
        variables: Value,
        request_id: &str,
    ) -> (CallOutcome, Result<Value, CallError>) {
        let body = serde_json::json!({ "query": query, "variables": variables });
        let attempts = self.policy.attempts.max(1);
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                let pause = self
                    .policy
                    .backoff_ms
                    .saturating_mul(1 << (attempt - 1).min(6));
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            let result = self
                .breaker
                .call_with(CallError::is_unavailable, self.attempt(&body, request_id))
                .await;
            match result {
                Ok(data) => return (CallOutcome::Ok, Ok(data)),
                Err(failsafe::Error::Inner(err)) if err.is_unavailable() => {
                    tracing::warn!(
                        dependency = self.service,
                        attempt = attempt + 1,
                        error = %err,
                        "service call failed"
                    );
                    last = Some(err);
                }
                Err(failsafe::Error::Inner(err)) => return (CallOutcome::Refused, Err(err)),
                Err(failsafe::Error::Rejected) => {
                    return (
                        CallOutcome::Rejected,
                        Err(CallError::Unavailable {
                            service: self.service,
                            reason: "circuit breaker open after repeated failures".into(),
                        }),
                    );
                }
            }
        }
        (
            CallOutcome::Unavailable,
            Err(last.unwrap_or_else(|| CallError::Unavailable {
                service: self.service,
                reason: "no attempt made".into(),
            })),
        )
    }

    /// One attempt, as a client span (`POST catalog`, …) whose context goes out in
    /// `traceparent`: the callee's request span is its child, so the call is part of the
    /// caller's trace. An unavailable dependency marks the span as an error; a typed refusal
    /// is an answer, not a failure of the call.
    async fn attempt(&self, body: &Value, request_id: &str) -> Result<Value, CallError> {
        let span = tracing::info_span!(
            "service call",
            otel.name = %format_args!("POST {}", self.service),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            dependency = self.service,
            request_id,
        );
        let result =
            tracing::Instrument::instrument(self.send(body, request_id), span.clone()).await;
        if matches!(result, Err(CallError::Unavailable { .. })) {
            span.record("otel.status_code", "error");
        }
        result
    }

    async fn send(&self, body: &Value, request_id: &str) -> Result<Value, CallError> {
        let unavailable = |reason: String| CallError::Unavailable {
            service: self.service,
            reason,
        };
        let mut trace_context = http::HeaderMap::new();
        crate::telemetry::inject_context(&mut trace_context);
        let mut request = self
            .http
            .post(&self.url)
            .headers(trace_context)
            .header(REQUEST_ID, request_id)
            .json(body);
        if let Some(token) = &self.token {
            request = request.header(SERVICE_TOKEN, token.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(unavailable(format!("HTTP {status}")));
        }
        let json: Value = response
            .json()
            .await
            .map_err(|e| unavailable(format!("unreadable response ({status}): {e}")))?;
        if let Some(error) = json["errors"].as_array().and_then(|e| e.first()) {
            let code = error["extensions"]["code"]
                .as_str()
                .unwrap_or("INTERNAL_SERVER_ERROR")
                .to_owned();
            let message = error["message"].as_str().unwrap_or_default().to_owned();
            // The callee failing internally, or its own dependency being down, is
            // unavailability from our side too: retry, and count it against the breaker.
            if code == "INTERNAL_SERVER_ERROR" || code == "PAYMENT_UNAVAILABLE" {
                return Err(unavailable(format!("{code}: {message}")));
            }
            return Err(CallError::Refused {
                service: self.service,
                code,
                message,
            });
        }
        Ok(json["data"].clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A dependency that answers every request with a 500, counting them.
    async fn failing_dependency() -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits)
    }

    fn policy() -> CallPolicy {
        CallPolicy {
            timeout_ms: 1_000,
            attempts: 3,
            backoff_ms: 1,
            breaker_failures: 4,
            breaker_open_ms: 60_000,
        }
    }

    #[tokio::test]
    async fn failures_are_retried_then_the_breaker_stops_calling_the_dependency() {
        let (url, hits) = failing_dependency().await;
        let client = ServiceClient::new("dep", url, None, policy()).unwrap();

        let first = client.call("{ x }", Value::Null, "r1").await;
        assert!(matches!(first, Err(CallError::Unavailable { .. })));
        assert_eq!(hits.load(Ordering::SeqCst), 3, "three attempts");

        // The fourth failure opens the breaker; from then on the dependency is not called.
        let second = client.call("{ x }", Value::Null, "r2").await;
        assert!(second.is_err());
        let after_open = hits.load(Ordering::SeqCst);
        assert_eq!(after_open, 4);
        for _ in 0..5 {
            let refused = client.call("{ x }", Value::Null, "r3").await;
            assert!(
                matches!(&refused, Err(CallError::Unavailable { reason, .. }) if reason.contains("circuit breaker")),
                "{refused:?}"
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), after_open);
    }

    #[tokio::test]
    async fn outcomes_are_counted_and_the_breaker_state_is_reported() {
        let (url, _) = failing_dependency().await;
        let metrics = crate::metrics::SubgraphMetrics::new("test").unwrap();
        let client = ServiceClient::new("dep", url, None, policy())
            .unwrap()
            .with_metrics(&metrics);
        let series = |name: &str, outcome: Option<&str>| {
            let text = metrics.encode();
            let wanted = match outcome {
                Some(o) => {
                    format!("{name}{{dependency=\"dep\",outcome=\"{o}\",subgraph=\"test\"}} ")
                }
                None => format!("{name}{{dependency=\"dep\",subgraph=\"test\"}} "),
            };
            text.lines()
                .find_map(|l| l.strip_prefix(&wanted))
                .unwrap_or_else(|| panic!("{wanted} in {text}"))
                .to_owned()
        };
        assert_eq!(series("draftr_service_breaker_state", None), "0");
        let _ = client.call("{ x }", Value::Null, "r1").await;
        let _ = client.call("{ x }", Value::Null, "r2").await;
        let _ = client.call("{ x }", Value::Null, "r3").await;
        // Three failed attempts; then the fourth opens the breaker, which refuses what follows.
        assert_eq!(
            series("draftr_service_calls_total", Some("unavailable")),
            "1"
        );
        assert_eq!(series("draftr_service_calls_total", Some("rejected")), "2");
        assert_eq!(series("draftr_service_calls_total", Some("ok")), "0");
        assert_eq!(series("draftr_service_breaker_state", None), "2", "open");
    }

    #[tokio::test]
    async fn a_typed_refusal_is_returned_at_once_and_not_retried() {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    axum::Json(serde_json::json!({
                        "data": null,
                        "errors": [{ "message": "Your card was declined.", "extensions": { "code": "PAYMENT_DECLINED" } }]
                    }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = ServiceClient::new("dep", url, None, policy()).unwrap();
        let refused = client.call("{ x }", Value::Null, "r").await;
        assert!(
            matches!(&refused, Err(CallError::Refused { code, .. }) if code == "PAYMENT_DECLINED"),
            "{refused:?}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
}
