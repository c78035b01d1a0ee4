//! An OTLP/HTTP trace receiver: what a collector is to Draftr's parts, in the test process, so a
//! test (or a bench) can point `OTEL_EXPORTER_OTLP_ENDPOINT` at it and look at the spans that
//! arrive.
//!
//! It accepts `POST /v1/traces` with a protobuf `ExportTraceServiceRequest` (the
//! `http/protobuf` protocol every OpenTelemetry SDK speaks, the router's included), keeps every
//! span flattened with its resource's `service.name`, and answers as a collector does. gzip
//! bodies are refused with 415: neither Draftr's exporter nor the router's compresses unless
//! `OTEL_EXPORTER_OTLP_COMPRESSION` asks it to.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message as _;

/// One span as it arrived, with the service that sent it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The resource's `service.name` (e.g. `draftr-reservations`).
    pub service: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// `None` for a root span.
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `server`, `client`, `internal`, `producer`, `consumer` (or `unspecified`).
    pub kind: &'static str,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    /// Attribute values rendered as text (strings as they are, numbers and booleans as
    /// written, arrays as JSON-like lists).
    pub attributes: BTreeMap<String, String>,
}

impl ReceivedSpan {
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nanos.saturating_sub(self.start_unix_nanos))
    }

    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

type Spans = Arc<Mutex<Vec<ReceivedSpan>>>;

/// A running receiver; stops when dropped.
pub struct OtlpReceiver {
    addr: SocketAddr,
    spans: Spans,
    requests: Arc<std::sync::atomic::AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    /// Listens on a free port of 127.0.0.1.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let spans = Spans::default();
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/v1/traces", post(export))
            .with_state((spans.clone(), requests.clone()));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            spans,
            requests,
            server,
        })
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporters append `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Export requests received so far (each carries one batch of spans).
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<ReceivedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    /// Polls until `done` holds for the spans received, or `limit` passes; returns the spans
    /// either way (the caller's assertions then say what is missing).
    pub async fn wait_for(
        &self,
        limit: Duration,
        mut done: impl FnMut(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let spans = self.spans();
            if done(&spans) || tokio::time::Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn export(
    State((spans, requests)): State<(Spans, Arc<std::sync::atomic::AtomicUsize>)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    if !encoding.eq_ignore_ascii_case("identity") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content-encoding {encoding} is not supported here"),
        )
            .into_response();
    }
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an ExportTraceServiceRequest: {e}"),
            )
                .into_response();
        }
    };
    requests.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| kv.value.as_ref())
            .map(text)
            .unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            received.push(ReceivedSpan {
                service: service.clone(),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: (!span.parent_span_id.is_empty())
                    .then(|| hex(&span.parent_span_id)),
                name: span.name,
                kind: match span.kind {
                    1 => "internal",
                    2 => "server",
                    3 => "client",
                    4 => "producer",
                    5 => "consumer",
                    _ => "unspecified",
                },
                start_unix_nanos: span.start_time_unix_nano,
                end_unix_nanos: span.end_time_unix_nano,
                attributes: attributes(&span.attributes),
            });
        }
    }
    if let Ok(mut all) = spans.lock() {
        all.extend(received);
    }
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::ArrayValue(a)) => format!(
            "[{}]",
            a.values.iter().map(text).collect::<Vec<_>>().join(", ")
        ),
        Some(any_value::Value::KvlistValue(l)) => format!("{:?}", attributes(&l.values)),
        Some(any_value::Value::BytesValue(b)) => hex(b),
        None => String::new(),
    }
}

/// One trace as an indented tree: each span under its parent, with its service and duration,
/// children in start order; spans whose parent did not arrive are listed as roots.
pub fn render_trace(spans: &[ReceivedSpan]) -> String {
    let ids: std::collections::HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    let mut children: HashMap<Option<&str>, Vec<&ReceivedSpan>> = HashMap::new();
    for span in spans {
        let parent = span.parent_span_id.as_deref().filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(span);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_unix_nanos);
    }
    let start = spans.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
    let mut out = String::new();
    fn walk(
        out: &mut String,
        children: &HashMap<Option<&str>, Vec<&ReceivedSpan>>,
        parent: Option<&str>,
        depth: usize,
        start: u64,
    ) {
        for span in children.get(&parent).into_iter().flatten() {
            let _ = writeln!(
                out,
                "{:>9.2} ms {:>9.2} ms  {}{} [{} {}]",
                span.start_unix_nanos.saturating_sub(start) as f64 / 1e6,
                span.duration().as_secs_f64() * 1e3,
                "  ".repeat(depth),
                span.name,
                span.service,
                span.kind,
            );
            walk(out, children, Some(&span.span_id), depth + 1, start);
        }
    }
    let _ = writeln!(out, "   starts at   duration  span [service kind]");
    walk(&mut out, &children, None, 0, start);
    out
}
