//! Logs and traces. Every line is structured; every request's lines carry the router's request
//! id and the trace id (see [`crate::http::with_standard_layers`]), and when OTLP is configured
//! every request is a span of the trace the router started.
//!
//! Traces follow the standard OpenTelemetry environment, so a collector or an agent's sidecar
//! configures them the same way for every part:
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns export on;
//!   with neither set nothing is installed and nothing is paid per request. `DRAFTR_OTLP_ENDPOINT`
//!   does the same where those are not set: it is the one the router reads too (router.yaml),
//!   for environments shared by every part, because the Apollo Router refuses to start when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set;
//! - `OTEL_EXPORTER_OTLP_PROTOCOL` (or `…_TRACES_PROTOCOL`): `http/protobuf` (the default, to
//!   `<endpoint>/v1/traces`) or `grpc`;
//! - `OTEL_SERVICE_NAME` overrides the name the caller gives ([`init_service`]);
//! - `OTEL_BSP_SCHEDULE_DELAY` and the other batch settings, `OTEL_EXPORTER_OTLP_HEADERS`,
//!   `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_TRACES_SAMPLER` as the SDK reads them;
//!   `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn export off again.
//!
//! Trace context travels in W3C `traceparent`/`tracestate` headers: [`set_remote_parent`] on
//! the way in, [`inject_context`] on the way out ([`crate::service_client`]). The propagator is
//! an instance of our own rather than OpenTelemetry's global one, which the router sets for
//! itself when it runs in the same process (`draftr run`).

use std::fmt as stdfmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use serde_json::{Map, Value};
use tracing::{Event, Level, Subscriber};
use tracing_opentelemetry::{OpenTelemetrySpanExt, OtelData};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{self, FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// Whether this process exports traces (set once, when the subscriber is installed): without
/// it, the per-request work of extracting and injecting trace context is skipped.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// What [`init_service`] installed; [`Telemetry::shutdown`] sends the spans still buffered.
#[must_use = "call shutdown() on the way out, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported (OTLP was configured and this call installed the subscriber).
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes the batch of spans not yet sent and stops the exporter, waiting at most 5 s (a
    /// collector that does not answer must not hold up a pod's termination).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK's shutdown blocks until the batch task (on this runtime) has exported: run it
        // on a thread of its own, so it blocks neither this runtime nor its teardown.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || {
                let _ = tx.send(provider.shutdown());
            });
        if spawned.is_err() {
            eprintln!("traces: could not start the thread that flushes them");
            return;
        }
        match tokio::time::timeout(Duration::from_secs(5), rx).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("traces: the last spans may be lost: {e}"),
            Ok(Err(_)) => eprintln!("traces: the exporter stopped before flushing"),
            Err(_) => eprintln!("traces: the collector did not take the last spans within 5 s"),
        }
    }
}

/// Installs the global subscriber for logs only; later calls are no-ops (tests call it
/// repeatedly). For a part that serves requests use [`init_service`], which also exports traces
/// when OTLP is configured.
///
/// `RUST_LOG` filters (default `info`); `DRAFTR_LOG_FORMAT=json` switches to JSON lines for
/// log shippers such as Loki.
pub fn init() {
    let _ = install(None);
}

/// [`init`], and when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`,
/// `DRAFTR_OTLP_ENDPOINT`: see the module's documentation), traces exported over OTLP as
/// `service_name` (`draftr-auth`, …; `draftr` for everything in one process). Needs a Tokio
/// runtime when exporting. Only the first call installs anything.
pub fn init_service(service_name: &str) -> Telemetry {
    install(Some(service_name))
}

/// For tests: logs only when `TEST_LOG` is set, so a passing run stays quiet.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init();
    }
}

fn install(service_name: Option<&str>) -> Telemetry {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    let mut telemetry = Telemetry { provider: None };
    INSTALLED.get_or_init(|| {
        // Another subscriber (a test's) already owns this process: leave it, and build no
        // exporter that nothing would feed.
        if tracing::dispatcher::has_been_set() {
            return;
        }
        let mut problem = None;
        let provider = match service_name.map(tracer_provider) {
            Some(Ok(provider)) => provider,
            Some(Err(why)) => {
                problem = Some(why);
                None
            }
            None => None,
        };
        // Traces do not depend on the log level: Draftr's own spans (requests, service calls)
        // and events at info and above, other crates' warnings and errors (as span events).
        let otel = provider.as_ref().map(|p| {
            tracing_opentelemetry::layer()
                .with_tracer(p.tracer("draftr"))
                .with_threads(false)
                .with_filter(
                    Targets::new()
                        .with_default(Level::WARN)
                        .with_target("draftr", Level::INFO),
                )
        });
        // The router's own deprecation notices about its metrics are for its maintainers, not ours.
        let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new("info,sea_orm=warn,sqlx=warn,apollo_router=warn,apollo_router::axum_factory=error,hyper=warn")
        });
        // The request span is kept whatever the level, so that even with RUST_LOG=warn a
        // request's warnings carry its request id.
        let filter = match "draftr_common::http=info".parse() {
            Ok(directive) => filter.add_directive(directive),
            Err(_) => filter,
        };
        let json = std::env::var("DRAFTR_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
        let registry = tracing_subscriber::registry().with(otel);
        let installed = if json {
            registry
                .with(
                    fmt::layer()
                        .event_format(JsonLines)
                        .fmt_fields(JsonFields::new())
                        .with_filter(filter),
                )
                .try_init()
        } else {
            registry
                .with(fmt::layer().compact().with_filter(filter))
                .try_init()
        };
        if installed.is_ok() && provider.is_some() {
            EXPORTING.store(true, Ordering::Relaxed);
            telemetry.provider = provider;
        }
        if let Some(why) = problem {
            tracing::warn!(reason = %why, "traces are not exported");
        }
    });
    telemetry
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The exporter the environment asks for, or `None` when it asks for none.
fn tracer_provider(service_name: &str) -> Result<Option<SdkTracerProvider>, String> {
    let standard =
        env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
    // The standard variables win; DRAFTR_OTLP_ENDPOINT is for a deployment whose router
    // shares the environment (the router refuses to start with OTEL_EXPORTER_OTLP_ENDPOINT).
    let ours = env("DRAFTR_OTLP_ENDPOINT").filter(|_| standard.is_none());
    if (standard.is_none() && ours.is_none())
        || env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    // The batch processor runs as a task on the caller's runtime (the HTTP client is async).
    if tokio::runtime::Handle::try_current().is_err() {
        return Err("OTLP export needs a Tokio runtime; none is running".into());
    }
    let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|| "http/protobuf".into());
    let exporter = match protocol.to_ascii_lowercase().as_str() {
        "http/protobuf" | "http" => {
            let mut builder = SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
            if let Some(base) = &ours {
                // As the SDK does with OTEL_EXPORTER_OTLP_ENDPOINT: the signal's path appended.
                let base = base.trim_end_matches('/');
                builder = builder.with_endpoint(if base.ends_with("/v1/traces") {
                    base.to_owned()
                } else {
                    format!("{base}/v1/traces")
                });
            }
            builder.build()
        }
        "grpc" => {
            let mut builder = SpanExporter::builder().with_tonic();
            if let Some(endpoint) = &ours {
                builder = builder.with_endpoint(endpoint.clone());
            }
            builder.build()
        }
        other => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported: use http/protobuf or grpc"
            ));
        }
    }
    .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if env("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service_name.to_owned());
    }
    Ok(Some(
        SdkTracerProvider::builder()
            .with_span_processor(
                BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build(),
            )
            .with_resource(resource.build())
            .build(),
    ))
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` (not yet entered) a child of the caller's span named in the request's W3C
/// `traceparent`/`tracestate` headers. Where this process exports no traces, only records the
/// caller's trace id in the span's `trace_id` field, if it has one, so the log lines still
/// lead to the router's trace.
pub fn set_remote_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if EXPORTING.load(Ordering::Relaxed) {
        // Fails only when the span was filtered out or already started; it then stays a root.
        let _ = span.set_parent(parent);
    } else {
        let remote = parent.span().span_context().clone();
        if remote.is_valid() {
            let trace_id = remote.trace_id().to_string();
            span.record("trace_id", trace_id.as_str());
        }
    }
}

/// Adds the current span's trace context to an outgoing request's headers (`traceparent`,
/// `tracestate`), so the callee's spans join this trace. Nothing when traces are off.
pub fn inject_context(headers: &mut http::HeaderMap) {
    if !EXPORTING.load(Ordering::Relaxed) {
        return;
    }
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Puts the GraphQL operation's type and name on the current (request) span, and names the
/// span after them as OpenTelemetry's GraphQL conventions do (`mutation CreateReservation`).
/// The type is read from the document's first keyword, not parsed: cheap, and right for
/// every single-operation document the router sends.
pub fn record_operation(request: &async_graphql::Request) {
    let span = tracing::Span::current();
    let (kind, named) = operation_header(&request.query);
    let name = request.operation_name.as_deref().or(named);
    if let Some(kind) = kind {
        span.record("graphql.operation.type", kind);
    }
    if let Some(name) = name {
        span.record("graphql.operation.name", name);
    }
    if EXPORTING.load(Ordering::Relaxed) {
        let title = match (kind, name) {
            (Some(kind), Some(name)) => format!("{kind} {name}"),
            (Some(kind), None) => kind.to_owned(),
            _ => return,
        };
        span.context().span().update_name(title);
    }
}

/// `("mutation", Some("Book"))` for `mutation Book($i: …) { … }`; `("query", None)` for `{ … }`.
fn operation_header(query: &str) -> (Option<&'static str>, Option<&str>) {
    let mut rest = query.trim_start();
    // Comments before the operation.
    while let Some(comment) = rest.strip_prefix('#') {
        rest = comment
            .split_once('\n')
            .map(|(_, r)| r)
            .unwrap_or("")
            .trim_start();
    }
    if rest.starts_with('{') {
        return (Some("query"), None);
    }
    let kind = ["query", "mutation", "subscription"].into_iter().find(|k| {
        rest.strip_prefix(k)
            .is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    });
    let Some(kind) = kind else {
        return (None, None);
    };
    let after = rest[kind.len()..].trim_start();
    let end = after
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    (Some(kind), (end > 0).then(|| &after[..end]))
}

/// JSON lines for log shippers: one object per event, with the event's fields, `message`,
/// `timestamp`, `level` and `target` at the top level, next to the fields of every span it
/// happened in (`request_id`, `method`, `path`, the GraphQL operation, …; inner spans win) and,
/// where traces are on, the `trace_id` and `span_id` of the innermost span. So in Loki
/// `| json | request_id="…"` or `trace_id="…"` finds a request's lines in every part; lines
/// outside requests (startup, background loops) simply have no request id.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> stdfmt::Result {
        let mut line = Map::new();
        if let Some(scope) = ctx.event_scope() {
            let mut innermost = None;
            for span in scope.from_root() {
                let extensions = span.extensions();
                // The span's fields as JsonFields wrote them: a JSON object.
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields)
                {
                    line.extend(fields.into_iter().filter(|(k, _)| !k.starts_with("otel.")));
                }
                if let Some(otel) = extensions.get::<OtelData>()
                    && let (Some(trace_id), Some(span_id)) = (otel.trace_id(), otel.span_id())
                {
                    line.insert("trace_id".into(), trace_id.to_string().into());
                    line.insert("span_id".into(), span_id.to_string().into());
                }
                innermost = Some(span.name());
            }
            if let Some(name) = innermost {
                line.insert("span".into(), name.into());
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        let meta = event.metadata();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        let text = serde_json::to_string(&line).map_err(|_| stdfmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn stdfmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::SpanData;

    use super::*;

    /// Keeps what is exported, for the test to look at.
    #[derive(Debug, Clone, Default)]
    struct Collected(Arc<Mutex<Vec<SpanData>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Collected {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    /// A writer the JSON lines go to.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CALLER: &str = "00f067aa0ba902b7";

    /// The request span of a request whose caller sent `traceparent`, under a subscriber with
    /// the OpenTelemetry layer (exporting to memory) and the JSON lines.
    #[test]
    fn a_request_joins_the_callers_trace_and_its_log_lines_carry_both_ids() {
        let collected = Collected::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(collected.clone())
            .build();
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
            .with(
                fmt::layer()
                    .event_format(JsonLines)
                    .fmt_fields(JsonFields::new())
                    .with_writer(move || writer.clone()),
            );
        EXPORTING.store(true, Ordering::Relaxed);
        let mut outgoing = http::HeaderMap::new();
        tracing::subscriber::with_default(subscriber, || {
            let request = http::Request::builder()
                .method("POST")
                .uri("/")
                .header("x-request-id", "req-42")
                .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
                .body(())
                .unwrap();
            {
                let span = crate::http::request_span(&request);
                let _entered = span.enter();
                record_operation(&async_graphql::Request::new(
                    "mutation Book($i: In!) { book(input: $i) { id } }",
                ));
                tracing::info!(nights = 3, "booked");
                inject_context(&mut outgoing);
            }
            tracing::info!("outside any request");
        });

        let spans = collected.0.lock().unwrap().clone();
        assert_eq!(spans.len(), 1, "{spans:?}");
        let request = &spans[0];
        assert_eq!(request.span_context.trace_id().to_string(), TRACE);
        assert_eq!(request.parent_span_id.to_string(), CALLER);
        assert!(request.parent_span_is_remote);
        assert_eq!(request.name, "mutation Book");
        let attribute = |key: &str| {
            request
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(attribute("request_id").as_deref(), Some("req-42"));
        assert_eq!(
            attribute("graphql.operation.type").as_deref(),
            Some("mutation")
        );
        assert_eq!(attribute("graphql.operation.name").as_deref(), Some("Book"));

        // The call made inside the request carries this span as the parent.
        let span_id = request.span_context.span_id().to_string();
        assert_eq!(
            outgoing["traceparent"].to_str().unwrap(),
            format!("00-{TRACE}-{span_id}-01")
        );

        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let logged: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(logged.len(), 2, "{text}");
        let line = &logged[0];
        assert_eq!(line["message"], "booked");
        assert_eq!(line["nights"], 3);
        assert_eq!(line["request_id"], "req-42");
        assert_eq!(line["trace_id"], TRACE);
        assert_eq!(line["span_id"], span_id);
        assert_eq!(line["graphql.operation.name"], "Book");
        assert_eq!(line["level"], "INFO");
        assert!(line.get("otel.kind").is_none(), "{line}");
        let outside = &logged[1];
        assert_eq!(outside["message"], "outside any request");
        assert!(outside.get("request_id").is_none(), "{outside}");
        assert!(outside.get("trace_id").is_none(), "{outside}");
    }

    #[test]
    fn the_operation_type_and_name_are_read_from_the_first_keyword() {
        assert_eq!(
            operation_header("mutation Book($i: X) { a }"),
            (Some("mutation"), Some("Book"))
        );
        assert_eq!(
            operation_header("  # a comment\nquery Q__catalog__1{a}"),
            (Some("query"), Some("Q__catalog__1"))
        );
        assert_eq!(operation_header("{ a }"), (Some("query"), None));
        assert_eq!(operation_header("query { a }"), (Some("query"), None));
        assert_eq!(
            operation_header("subscription($x: ID) { a }"),
            (Some("subscription"), None)
        );
        assert_eq!(operation_header("queryX { a }"), (None, None));
        assert_eq!(operation_header("fragment F on T { a }"), (None, None));
    }
}
