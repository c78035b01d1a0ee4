//! Traces across processes: every part as its own process (the cluster), exporting over
//! OTLP/HTTP to a receiver in this test; one booking followed from the router through
//! reservations to catalog and payments as one trace, with the request id on the spans and on
//! the JSON log lines; and the last spans of a part stopped with SIGTERM not lost.
//!
//! What the environment must say, learnt the hard way: the router binary refuses to start with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` set, so every process is given `DRAFTR_OTLP_ENDPOINT`; and the
//! router's spans are `info` spans under its log filter, so `RUST_LOG` must leave
//! `apollo_router` at `info` (at `warn` the router samples nothing and tells the subgraphs so in
//! `traceparent`, and they, respecting it, export nothing of its requests either).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use draftr_test_support::cluster::{Cluster, ClusterOptions, SUBGRAPHS};
use draftr_test_support::otlp::{OtlpReceiver, ReceivedSpan, render_trace};
use serde_json::{Value, json};

use crate::booking::booking;
use crate::helpers::PASSWORD;

/// The booking, named: the router names the operations it sends the subgraphs after it
/// (`BookTracedStay__reservations__0`), and every request span is named after those.
const BOOK: &str = "mutation BookTracedStay($i: CreateReservationInput!) {
  createReservation(input: $i) { id status }
}";

/// A GraphQL call through the router: the body and the `x-request-id` the router answered with.
async fn gql(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    token: Option<&str>,
) -> (Value, String) {
    let mut request = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the router answers");
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("the router returns a request id")
        .to_owned();
    let body: Value = response.json().await.expect("a JSON body");
    assert!(body.get("errors").is_none(), "{body}");
    (body["data"].clone(), id)
}

async fn new_user(client: &reqwest::Client, url: &str) -> String {
    let email = format!("t{}@example.com", uuid::Uuid::new_v4().simple());
    let (data, _) = gql(
        client,
        url,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        json!({ "i": { "email": email, "password": PASSWORD, "displayName": "Tracy" } }),
        None,
    )
    .await;
    data["register"]["accessToken"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// The trace whose span from `service` carries request id `id`.
fn trace_of(spans: &[ReceivedSpan], service: &str, id: &str) -> Option<String> {
    spans
        .iter()
        .find(|s| s.service == service && s.attribute("request_id") == Some(id))
        .map(|s| s.trace_id.clone())
}

fn services(trace: &[ReceivedSpan]) -> BTreeSet<&str> {
    trace.iter().map(|s| s.service.as_str()).collect()
}

/// Every parent named in the trace has arrived.
fn complete(trace: &[ReceivedSpan]) -> bool {
    let ids: BTreeSet<&str> = trace.iter().map(|s| s.span_id.as_str()).collect();
    trace
        .iter()
        .filter_map(|s| s.parent_span_id.as_deref())
        .all(|p| ids.contains(p))
}

/// Every span's parents lead, inside the trace, to the one root, the router's; returns it.
fn assert_one_tree_rooted_at_the_router<'a>(
    trace: &'a [ReceivedSpan],
    shown: &str,
) -> &'a ReceivedSpan {
    let by_id: HashMap<&str, &ReceivedSpan> =
        trace.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let roots: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|s| s.parent_span_id.is_none())
        .collect();
    assert_eq!(roots.len(), 1, "one root span:\n{shown}");
    let root = roots[0];
    assert_eq!(root.service, "draftr-router", "{shown}");
    for span in trace {
        let mut at = span;
        for _ in 0..trace.len() {
            let Some(parent) = &at.parent_span_id else {
                break;
            };
            at = by_id.get(parent.as_str()).unwrap_or_else(|| {
                panic!(
                    "the parent {parent} of {} [{}] is not in the trace:\n{shown}",
                    span.name, span.service
                )
            });
        }
        assert_eq!(
            at.span_id, root.span_id,
            "{} [{}]:\n{shown}",
            span.name, span.service
        );
    }
    root
}

/// A cluster exporting to `receiver`, its batches sent every `batch_delay_ms`, logging JSON.
async fn traced_cluster(receiver: &OtlpReceiver, batch_delay_ms: u64) -> Cluster {
    let env = [
        ("DRAFTR_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".into()),
        ("DRAFTR_OTLP_TRACES", "true".into()),
        ("OTEL_BSP_SCHEDULE_DELAY", batch_delay_ms.to_string()),
        ("DRAFTR_LOG_FORMAT", "json".into()),
        ("RUST_LOG", "info,sqlx=warn,sea_orm=warn,hyper=warn".into()),
    ];
    Cluster::start(ClusterOptions {
        env: env.map(|(k, v)| (k.to_owned(), v)).to_vec(),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_booking_is_one_trace_from_the_router_through_reservations_to_catalog_and_payments() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let cluster = traced_cluster(&receiver, 200).await;
    let client = reqwest::Client::new();
    let url = cluster.url();

    let host = new_user(&client, &url).await;
    let (listing, listing_id) = gql(
        &client,
        &url,
        "mutation($i: CreatePropertyInput!) { createProperty(input: $i) { id status } }",
        json!({ "i": {
            "title": "Traced flat",
            "description": "A flat whose booking is traced",
            "address": { "line1": "1 Span Street", "city": "Lyon", "country": "FR" },
            "nightlyRate": { "amount": 9_000, "currency": "EUR" },
            "maxGuests": 2,
            "bedrooms": 1,
            "amenities": ["wifi"],
            "cancellationPolicy": "FLEXIBLE",
            "status": "PUBLISHED",
        }}),
        Some(&host),
    )
    .await;
    let property = listing["createProperty"]["id"].as_str().unwrap().to_owned();
    let guest = new_user(&client, &url).await;
    let (booked, request_id) = gql(
        &client,
        &url,
        BOOK,
        json!({ "i": booking(&property, 20, 23, "pm_card_visa") }),
        Some(&guest),
    )
    .await;
    assert_eq!(booked["createReservation"]["status"], "CONFIRMED");

    // Each process sends its batch on its own clock: wait until the trace is whole.
    let spans = receiver
        .wait_for(Duration::from_secs(20), |spans| {
            trace_of(spans, "draftr-reservations", &request_id).is_some_and(|t| {
                let trace: Vec<_> = spans.iter().filter(|s| s.trace_id == t).cloned().collect();
                complete(&trace)
                    && ["draftr-router", "draftr-catalog", "draftr-payments"]
                        .iter()
                        .all(|s| services(&trace).contains(s))
            })
        })
        .await;
    let received: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    let trace_id = trace_of(&spans, "draftr-reservations", &request_id).unwrap_or_else(|| {
        let heard: Vec<String> = spans
            .iter()
            .map(|s| format!("{} [{}] {:?}", s.name, s.service, s.attributes))
            .collect();
        panic!(
            "no span of reservations carries the booking's request id {request_id}; services \
             heard from: {received:?}; spans:\n{}\n{}",
            heard.join("\n"),
            cluster.logs()
        )
    });
    let trace = receiver.trace(&trace_id);
    let shown = render_trace(&trace);
    println!("The trace of one booking ({trace_id}, request id {request_id}):\n{shown}");

    // One trace: the router's, with reservations, catalog and payments in it.
    let in_trace = services(&trace);
    for service in [
        "draftr-router",
        "draftr-reservations",
        "draftr-catalog",
        "draftr-payments",
    ] {
        assert!(in_trace.contains(service), "{service} missing:\n{shown}");
    }
    let root = assert_one_tree_rooted_at_the_router(&trace, &shown);
    // The router's part of the trace carries the request id it returned (on the span of the
    // draftr.request_id plugin).
    assert!(
        trace
            .iter()
            .any(|s| s.service == "draftr-router" && s.attribute("request_id") == Some(&request_id)),
        "no router span has request_id {request_id} (root: {root:?}):\n{shown}"
    );
    // Each subgraph's request span carries it, named after the operation the router sent.
    for service in ["draftr-reservations", "draftr-catalog", "draftr-payments"] {
        let requests: Vec<&ReceivedSpan> = trace
            .iter()
            .filter(|s| s.service == service && s.kind == "server")
            .collect();
        assert!(
            !requests.is_empty(),
            "no request span of {service}:\n{shown}"
        );
        for span in requests {
            assert_eq!(
                span.attribute("request_id"),
                Some(request_id.as_str()),
                "{span:?}"
            );
            assert_eq!(span.attribute("path"), Some("/"), "{span:?}");
            assert!(
                span.attribute("graphql.operation.type").is_some(),
                "{span:?}"
            );
        }
    }
    // Reservations' calls are client spans, each the parent of the callee's request span.
    let calls: Vec<&ReceivedSpan> = trace
        .iter()
        .filter(|s| s.service == "draftr-reservations" && s.kind == "client")
        .collect();
    for callee in ["draftr-catalog", "draftr-payments"] {
        assert!(
            trace.iter().any(|s| s.service == callee
                && s.kind == "server"
                && calls
                    .iter()
                    .any(|c| s.parent_span_id.as_deref() == Some(c.span_id.as_str()))),
            "no {callee} request span under a reservations call:\n{shown}"
        );
    }
    // No span of this trace speaks of another request.
    for span in &trace {
        if let Some(id) = span.attribute("request_id") {
            assert_eq!(id, request_id, "{span:?}");
        }
    }

    // Creating the listing was its own trace, with catalog calling auth (promoteToHost).
    let listing_trace = trace_of(&spans, "draftr-catalog", &listing_id)
        .map(|t| receiver.trace(&t))
        .unwrap_or_default();
    assert!(
        services(&listing_trace).is_superset(&BTreeSet::from([
            "draftr-router",
            "draftr-catalog",
            "draftr-auth"
        ])),
        "{}",
        render_trace(&listing_trace)
    );
    assert_ne!(listing_trace[0].trace_id, trace_id);

    // The JSON log lines written inside the booking's requests carry both ids at the top level.
    for (part, message) in [
        ("reservations", "reservation confirmed"),
        ("payments", "payment authorized"),
    ] {
        let log = cluster.log(part, 0);
        let line = log
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["message"] == message && l["request_id"] == request_id.as_str())
            .unwrap_or_else(|| panic!("no \"{message}\" line with the request id in:\n{log}"));
        assert_eq!(line["trace_id"], trace_id.as_str(), "{line}");
        let span_id = line["span_id"].as_str().unwrap_or_default();
        assert!(
            trace.iter().any(|s| s.span_id == span_id),
            "the line's span {span_id} is not in the trace: {line}"
        );
    }
}

/// The batch exporters wait ten minutes between sends here, so what arrives was sent by each
/// subgraph flushing on its way out after SIGTERM (the router does not flush when it stops:
/// only its own batch delay, 5 s by default, bounds what it loses).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_part_stopped_with_sigterm_sends_the_spans_it_still_held() {
    let receiver = OtlpReceiver::start().await.unwrap();
    let cluster = traced_cluster(&receiver, 600_000).await;
    let client = reqwest::Client::new();
    let url = cluster.url();
    let (_, registered) = gql(
        &client,
        &url,
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        json!({ "i": {
            "email": format!("t{}@example.com", uuid::Uuid::new_v4().simple()),
            "password": PASSWORD,
            "displayName": "Last",
        }}),
        None,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver.spans().is_empty(),
        "spans arrived before any process stopped: the test would not show the flush"
    );

    for part in SUBGRAPHS {
        let status = cluster.stop(part, 0).await.unwrap();
        assert!(
            status.success(),
            "{part} exited with {status}:\n{}",
            cluster.log(part, 0)
        );
    }
    let spans = receiver.spans();
    let heard = |service: &str| spans.iter().filter(|s| s.service == service).count();
    for part in SUBGRAPHS {
        assert!(
            heard(&format!("draftr-{part}")) > 0,
            "nothing from {part} after it stopped:\n{}",
            cluster.log(part, 0)
        );
    }
    // The last request auth served is among what it sent on its way out.
    assert!(
        trace_of(&spans, "draftr-auth", &registered).is_some(),
        "auth's span of request {registered} was lost"
    );
}
