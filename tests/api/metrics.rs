//! Metrics, as Prometheus scrapes them: every subgraph's `/metrics` and the router's, after a
//! real booking, and the promise behind the dashboard and the alert rules: every metric name
//! (and every label they match on) in their PromQL is one the services really serve.
//!
//! The router is the production `draftr-router` process, started here against this test's
//! subgraphs: the embedded router (`draftr_router::embed`) has no telemetry plugin, because
//! Apollo Router sets telemetry up in its own entry point only, so it serves no Prometheus.
//! `cargo test --workspace` builds `draftr-router` beside `draftr`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use draftr_common::testing::Backend;
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::{Value, json};

use crate::booking::{BOOK, booking, new_listing};
use crate::helpers::{TestApp, spawn, wait_until};

/// The repository, where the dashboard, the alert rules and the router's files are.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// What a scrape served.

/// One series of a scrape: its labels and value.
#[derive(Debug, Clone)]
struct Series {
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Every series of one or more scrapes, by metric name (histograms as their `_bucket`, `_sum`
/// and `_count` series, which is what PromQL selects).
#[derive(Debug, Default, Clone)]
struct Served(BTreeMap<String, Vec<Series>>);

/// `name{a="x",b="y"} 1` (the text exposition format); `None` for comments and blank lines.
fn parse_line(line: &str) -> Option<(String, Series)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = body.len();
        while let Some(&(start, c)) = chars.peek() {
            if c == '}' {
                end = start + 1;
                break;
            }
            if c == ',' || c == ' ' {
                chars.next();
                continue;
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
            let mut value = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(other) => value.push(other),
                        None => {}
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(key.trim().to_owned(), value);
        }
        rest = &body[end..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, Series { labels, value }))
}

impl Served {
    fn parse(text: &str) -> Self {
        let mut served = Served::default();
        served.add(text);
        served
    }

    fn add(&mut self, text: &str) {
        for (name, series) in text.lines().filter_map(parse_line) {
            self.0.entry(name).or_default().push(series);
        }
    }

    fn series(&self, name: &str) -> &[Series] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }

    /// The sum of the series of `name` that carry every label in `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.series(name)
            .iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// The names PromQL uses.

/// Series Prometheus makes itself for every target: they are never on a `/metrics` page.
const SYNTHETIC: [&str; 1] = ["up"];

/// Grafana's variables, replaced by what they stand for so the expression parses as PromQL.
fn without_grafana_variables(expr: &str) -> String {
    ["$__rate_interval", "$__interval", "$__range"]
        .iter()
        .fold(expr.to_owned(), |e, v| e.replace(v, "5m"))
}

/// The vector selectors of one PromQL expression.
fn selectors(expr: &str) -> Result<Vec<VectorSelector>, String> {
    struct Collect(Vec<VectorSelector>);
    impl ExprVisitor for Collect {
        type Error = ();
        fn pre_visit(&mut self, expr: &Expr) -> Result<bool, ()> {
            match expr {
                Expr::VectorSelector(vs) => self.0.push(vs.clone()),
                Expr::MatrixSelector(ms) => self.0.push(ms.vs.clone()),
                _ => {}
            }
            Ok(true)
        }
    }
    let parsed = parser::parse(&without_grafana_variables(expr))?;
    let mut collect = Collect(Vec::new());
    walk_expr(&mut collect, &parsed).map_err(|()| "walk failed".to_owned())?;
    Ok(collect.0)
}

/// What is wrong with `expr` against `served`: a metric nobody serves, a label its series do
/// not have, or an exact label value none of them has. Empty when all is well.
fn problems(expr: &str, served: &Served) -> Vec<String> {
    let selectors = match selectors(expr) {
        Ok(s) => s,
        Err(e) => return vec![format!("not PromQL ({e}): {expr}")],
    };
    let mut out = Vec::new();
    if selectors.is_empty() {
        out.push(format!("selects no metric: {expr}"));
    }
    for vs in selectors {
        let name = vs.name.clone().or_else(|| {
            vs.matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal))
                .map(|m| m.value.clone())
        });
        let Some(name) = name else {
            out.push(format!("a selector without a metric name in {expr}"));
            continue;
        };
        if SYNTHETIC.contains(&name.as_str()) {
            continue;
        }
        let series = served.series(&name);
        if series.is_empty() {
            out.push(format!("{name} is not served (in {expr})"));
            continue;
        }
        for m in vs.matchers.matchers.iter().filter(|m| m.name != "__name__") {
            if !series.iter().any(|s| s.labels.contains_key(&m.name)) {
                out.push(format!("{name} has no label {} (in {expr})", m.name));
            } else if matches!(m.op, MatchOp::Equal)
                && !series
                    .iter()
                    .any(|s| s.labels.get(&m.name) == Some(&m.value))
            {
                out.push(format!(
                    "no series of {name} has {}={:?} (in {expr})",
                    m.name, m.value
                ));
            }
        }
    }
    out
}

/// Every `expr` in the dashboard JSON (panels, nested ones too, and their targets).
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    match (k.as_str(), v) {
                        ("expr", Value::String(e)) => out.push(e.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(dashboard, &mut out);
    out
}

/// Every rule's `expr` in the alerting rules file.
fn alert_exprs(rules: &serde_yaml::Value) -> Vec<String> {
    rules["groups"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|r| r["expr"].as_str().map(str::to_owned))
        .collect()
}

fn dashboard() -> Value {
    let path = root().join("deploy/grafana/dashboards/draftr-overview.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn alert_rules() -> serde_yaml::Value {
    let path = root().join("deploy/prometheus/alerts.yml");
    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The router as production runs it.

fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

/// `draftr-router` with the committed `router.yaml` and supergraph, pointed at `app`'s
/// subgraphs. Killed when dropped.
struct RouterProcess {
    url: String,
    metrics_url: String,
    _dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl RouterProcess {
    async fn start(app: &TestApp) -> Self {
        let exe = Path::new(env!("CARGO_BIN_EXE_draftr")).with_file_name("draftr-router");
        assert!(
            exe.is_file(),
            "{} does not exist: build it with `cargo build -p draftr-router` (`cargo test --workspace` does)",
            exe.display()
        );
        let (listen, health, metrics) = (free_addr(), free_addr(), free_addr());
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("router.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut command = tokio::process::Command::new(&exe);
        command
            .current_dir(root())
            .args(["--config", "router/router.yaml"])
            .args(["--supergraph", "schema/supergraph.graphql"])
            .env("DRAFTR_ROUTER_LISTEN", &listen)
            .env("DRAFTR_ROUTER_HEALTH_LISTEN", &health)
            .env("DRAFTR_ROUTER_METRICS_LISTEN", &metrics)
            .env("APOLLO_TELEMETRY_DISABLED", "true")
            .env("APOLLO_ROUTER_LOG", "warn")
            .env_remove("APOLLO_KEY")
            .env_remove("APOLLO_GRAPH_REF")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .kill_on_drop(true);
        for (name, url) in app.subgraph_urls() {
            command.env(format!("DRAFTR_{}_URL", name.to_ascii_uppercase()), url);
        }
        let mut child = command.spawn().expect("draftr-router starts");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ready = client
                .get(format!("http://{health}/health?ready"))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "draftr-router exited while starting ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "draftr-router not ready in 120 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            url: format!("http://{listen}/"),
            metrics_url: format!("http://{metrics}/metrics"),
            _dir: dir,
            _child: child,
        }
    }
}

/// The page at `url` (a `/metrics`), checked to be the text format.
async fn scrape(url: &str) -> String {
    let res = reqwest::get(url).await.expect("scraped");
    assert!(res.status().is_success(), "{url}: {}", res.status());
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(kind.starts_with("text/plain"), "{url}: content-type {kind}");
    res.text().await.unwrap()
}

/// The second notifications replica's HTTP URL (the app names it by its socket).
fn second_notifications_url(app: &TestApp) -> String {
    app.notifications2_ws
        .replacen("ws://", "http://", 1)
        .trim_end_matches("ws")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_booking_every_part_serves_the_names_the_dashboard_and_the_alerts_use() {
    let app = spawn(Backend::Postgres).await;
    let router = RouterProcess::start(&app).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 12_500, "MODERATE").await;
    let (_, guest, _, _) = app.new_user().await;

    // One booking through the production router, then the same nights again: a conflict.
    let book = |input: Value| {
        let (app, router, guest) = (&app, &router, &guest);
        async move {
            app.post(&router.url, BOOK, json!({ "i": input }), Some(guest), &[])
                .await
        }
    };
    let first = book(booking(&property, 10, 13, "pm_card_visa")).await;
    assert_eq!(first.ok()["createReservation"]["status"], "CONFIRMED");
    let second = book(booking(&property, 11, 12, "pm_card_visa")).await;
    assert_eq!(second.code(), "BOOKING_CONFLICT", "{:?}", second.body);

    // The confirmation emails go out in the background; the gauge is read at scrape time.
    let notifications = app.notifications_url.clone();
    wait_until(
        "the confirmation emails counted as SENT",
        Duration::from_secs(30),
        async || {
            Served::parse(&scrape(&format!("{notifications}metrics")).await)
                .value("draftr_emails", &[("status", "SENT")])
                >= 2.0
        },
    )
    .await;

    let mut everything = Served::default();
    let mut by_part = BTreeMap::new();
    for (name, url) in app.subgraph_urls() {
        let text = scrape(&format!("{url}metrics")).await;
        let served = Served::parse(&text);
        // Each subgraph serves its own numbers, every series under its name.
        for (metric, series) in &served.0 {
            assert!(metric.starts_with("draftr_"), "{name} serves {metric}");
            for s in series {
                assert_eq!(
                    s.labels.get("subgraph").map(String::as_str),
                    Some(name.as_str()),
                    "{name}: {metric} {:?}",
                    s.labels
                );
            }
        }
        everything.add(&text);
        by_part.insert(name, served);
    }
    everything.add(&scrape(&format!("{}metrics", second_notifications_url(&app))).await);
    let router_text = scrape(&router.metrics_url).await;
    let routed = Served::parse(&router_text);
    everything.add(&router_text);

    // The booking moved what it should.
    let reservations = &by_part["reservations"];
    assert_eq!(
        reservations.value("draftr_bookings_total", &[("outcome", "confirmed")]),
        1.0
    );
    assert_eq!(
        reservations.value("draftr_bookings_total", &[("outcome", "conflict")]),
        1.0
    );
    assert_eq!(
        reservations.value("draftr_bookings_total", &[("outcome", "declined")]),
        0.0
    );
    let create = [("type", "mutation"), ("operation", "createReservation")];
    let with = |outcome| [create[0], create[1], ("outcome", outcome)];
    assert_eq!(
        reservations.value("draftr_graphql_requests_total", &with("ok")),
        1.0
    );
    assert_eq!(
        reservations.value("draftr_graphql_requests_total", &with("BOOKING_CONFLICT")),
        1.0
    );
    assert_eq!(
        reservations.value("draftr_graphql_request_duration_seconds_count", &with("ok")),
        1.0
    );
    assert_eq!(
        reservations.value(
            "draftr_graphql_root_fields_total",
            &[("field", "createReservation")]
        ),
        2.0
    );
    assert!(
        reservations.value(
            "draftr_service_calls_total",
            &[("dependency", "catalog"), ("outcome", "ok")]
        ) >= 2.0
    );
    assert!(
        reservations.value(
            "draftr_service_calls_total",
            &[("dependency", "payments"), ("outcome", "ok")]
        ) >= 2.0,
        "authorize and capture"
    );
    assert_eq!(
        reservations.value(
            "draftr_service_breaker_state",
            &[("dependency", "payments")]
        ),
        0.0
    );
    assert!(
        reservations.value(
            "draftr_http_requests_total",
            &[("route", "/"), ("status", "2xx")]
        ) >= 2.0
    );
    let payments = &by_part["payments"];
    assert_eq!(
        payments.value(
            "draftr_graphql_requests_total",
            &[("operation", "authorizePayment"), ("outcome", "ok")]
        ),
        1.0
    );
    assert!(
        by_part["catalog"].value(
            "draftr_graphql_requests_total",
            &[("operation", "propertyQuote"), ("outcome", "ok")]
        ) >= 2.0
    );
    // The booking's payment was captured in the saga: nothing left to compensate.
    assert_eq!(reservations.value("draftr_compensations_pending", &[]), 0.0);
    assert!(
        everything.value("draftr_email_sends_total", &[("result", "sent")]) >= 2.0,
        "both replicas together"
    );
    assert!(
        by_part["catalog"]
            .series("draftr_stream_consumer_lag")
            .iter()
            .any(|s| s.labels.get("group").map(String::as_str) == Some("catalog-availability"))
    );
    // And the router saw it: two requests, fetches to reservations, the conflict's code.
    assert!(
        routed.value("http_server_request_duration_seconds_count", &[]) >= 2.0,
        "{router_text}"
    );
    assert!(
        routed.value(
            "http_client_request_duration_seconds_count",
            &[("subgraph_name", "reservations")]
        ) >= 2.0
    );
    assert_eq!(
        routed.value(
            "apollo_router_graphql_error_total",
            &[("code", "BOOKING_CONFLICT")]
        ),
        1.0
    );

    // Every name the dashboard and the alert rules use is one of those.
    let dashboard = dashboard_exprs(&dashboard());
    let alerts = alert_exprs(&alert_rules());
    assert!(
        dashboard.len() >= 20 && alerts.len() >= 8,
        "{} panels' queries, {} rules",
        dashboard.len(),
        alerts.len()
    );
    let wrong: Vec<String> = dashboard
        .iter()
        .chain(&alerts)
        .flat_map(|e| problems(e, &everything))
        .collect();
    assert!(
        wrong.is_empty(),
        "the dashboard or the alerts use what is not served:\n{}",
        wrong.join("\n")
    );
}

/// The checker itself: a made-up name, a made-up label or an exact value nobody serves is
/// caught; histograms are selected by their `_bucket`/`_count` series; Grafana's variables
/// parse.
#[test]
fn the_checker_catches_names_labels_and_values_that_are_not_served() {
    let served = Served::parse(
        "# TYPE draftr_bookings_total counter\n\
         draftr_bookings_total{outcome=\"confirmed\",subgraph=\"reservations\"} 3\n\
         draftr_graphql_request_duration_seconds_bucket{le=\"0.1\",subgraph=\"auth\"} 1\n\
         draftr_graphql_request_duration_seconds_count{subgraph=\"auth\"} 1\n\
         draftr_odd{path=\"a \\\"quoted\\\" \\\\ value\"} 1.5e3\n",
    );
    assert_eq!(
        served.value("draftr_bookings_total", &[("outcome", "confirmed")]),
        3.0
    );
    assert_eq!(
        served.value("draftr_odd", &[("path", "a \"quoted\" \\ value")]),
        1500.0
    );

    for good in [
        "sum by (outcome) (rate(draftr_bookings_total[$__rate_interval]))",
        "histogram_quantile(0.95, sum by (subgraph, le) (rate(draftr_graphql_request_duration_seconds_bucket[5m])))",
        r#"sum(rate(draftr_bookings_total{outcome=~"declined|unavailable"}[5m])) / sum(rate(draftr_graphql_request_duration_seconds_count[5m]))"#,
        r#"{__name__="draftr_bookings_total", outcome!="x"}"#,
        "up{job=\"draftr-router\"} == 0",
    ] {
        assert_eq!(problems(good, &served), Vec::<String>::new(), "{good}");
    }
    for (bad, says) in [
        (
            "rate(draftr_bookings_made_up_total[5m])",
            "draftr_bookings_made_up_total is not served",
        ),
        (
            "histogram_quantile(0.95, rate(draftr_graphql_request_duration_seconds[5m]))",
            "draftr_graphql_request_duration_seconds is not served",
        ),
        (
            r#"sum(draftr_bookings_total{outcom="confirmed"})"#,
            "has no label outcom",
        ),
        (
            r#"sum(draftr_bookings_total{outcome="confirmd"})"#,
            "outcome=\"confirmd\"",
        ),
        ("sum(rate(draftr_bookings_total[5m]) by", "not PromQL"),
        ("vector(1)", "selects no metric"),
    ] {
        let found = problems(bad, &served);
        assert!(found.iter().any(|p| p.contains(says)), "{bad}: {found:?}");
    }
}

/// The files a deployment loads are well formed: the dashboard's queries use the provisioned
/// datasource, and every alert has a name, a severity and a summary.
#[test]
fn the_dashboard_and_the_alerts_are_well_formed() {
    let datasources: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            root().join("deploy/grafana/provisioning/datasources/datasources.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let prometheus = datasources["datasources"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "prometheus")
        .expect("a Prometheus datasource");
    let uid = prometheus["uid"].as_str().unwrap();
    let d = dashboard();
    assert!(d["schemaVersion"].as_u64().unwrap() >= 39);
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel ids are unique"
        );
        assert!(
            matches!(p["type"].as_str(), Some("timeseries" | "stat")),
            "{}",
            p["title"]
        );
        assert_eq!(p["datasource"]["uid"], uid, "{}", p["title"]);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], uid, "{}", p["title"]);
        }
        let grid = &p["gridPos"];
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "{}",
            p["title"]
        );
    }
    for rule in alert_rules()["groups"][0]["rules"].as_sequence().unwrap() {
        assert!(
            rule["alert"]
                .as_str()
                .is_some_and(|a| a.starts_with("Draftr")),
            "{rule:?}"
        );
        assert!(rule["labels"]["severity"].as_str().is_some(), "{rule:?}");
        assert!(
            rule["annotations"]["summary"].as_str().is_some(),
            "{rule:?}"
        );
    }
}
