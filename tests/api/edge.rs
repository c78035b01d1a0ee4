//! The edge proxy (`deploy/edge/draftr.conf.template`, a real nginx) in front of the test
//! stack, as docker-compose.yml puts it in front of the services: `/` reaches the router, `/ws`
//! notifications' subscriptions, `/webhooks/stripe` payments' webhook, `/calendar/` (GET only)
//! reservations' iCal export feeds, and nothing else of any part is reachable. X-Forwarded-For is the edge's peer, whatever the client sends, so the
//! per-address sign-in throttle cannot be dodged; bodies over the router's limit stop at the
//! edge.
//!
//! Whether a request reached a part is read from the edge's access log, which records the
//! upstream each request went to (`upstream=-`: the edge answered itself).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use draftr_common::testing::Backend;
use draftr_test_support::edge::{Edge, EdgeUpstreams};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::booking::{BOOK, booking, new_listing};
use crate::helpers::{PASSWORD, TestApp, WEBHOOK_SECRET, spawn, spawn_with};
use crate::ws::WsClient;

const LOGIN: &str = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }";

async fn edge_for(app: &TestApp) -> Edge {
    let upstreams = EdgeUpstreams::of(app).expect("the app's addresses");
    Edge::start(upstreams).await.expect("the edge proxy starts")
}

/// A response: status, headers and body (JSON, or `Value::String` when it is not JSON).
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        headers,
        body,
    }
}

/// A GraphQL POST to `url` with `client`, with extra headers.
async fn graphql(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    variables: Value,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    answer(req.send().await.expect("request sent")).await
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("")
}

/// The access-log line of the one request whose request line contains `marker`. nginx writes
/// it when it is done with the request, which may be a moment after the client has its answer
/// (a refused body is read and discarded first; a socket is logged when it closes).
async fn log_line(edge: &Edge, marker: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let log = edge.access_log();
        // Whole lines only: a line nginx is still appending may be read half written.
        let lines: Vec<&str> = log
            .split_inclusive('\n')
            .filter(|l| l.ends_with('\n') && l.contains(marker))
            .map(str::trim_end)
            .collect();
        match lines.as_slice() {
            [line] => return (*line).to_owned(),
            [] if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            _ => panic!("not one request with {marker} in:\n{log}"),
        }
    }
}

/// A request sent as written, path included: an HTTP client would normalize `..` away before
/// the edge sees it. Returns the status and the body.
async fn raw(edge: &Edge, method: &str, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(edge.addr())
        .await
        .expect("connect to the edge");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        edge.addr()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the edge answers")
        .unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_through_the_edge_reaches_the_router() {
    let app = spawn(Backend::Sqlite).await;
    let edge = edge_for(&app).await;
    let client = reqwest::Client::new();
    let router = draftr_test_support::edge::host_port(&app.router_url).unwrap();

    // A mutation, with the client's own request id, which comes back.
    let email = format!("edge{}@example.com", uuid::Uuid::new_v4().simple());
    let request_id = format!("edge-req-{}", uuid::Uuid::new_v4().simple());
    let registered = graphql(
        &client,
        &format!("{}?mark={request_id}", edge.url()),
        "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { email } } }",
        json!({ "i": { "email": email, "password": PASSWORD, "displayName": "Edge User" } }),
        None,
        &[("x-request-id", request_id.as_str())],
    )
    .await;
    assert_eq!(registered.status, 200, "{}", registered.body);
    assert_eq!(
        registered.body["data"]["register"]["user"]["email"],
        email.as_str(),
        "{}",
        registered.body
    );
    assert_eq!(registered.headers["x-request-id"], request_id.as_str());
    let token = registered.body["data"]["register"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let line = log_line(&edge, &request_id).await;
    assert!(line.ends_with(&format!("upstream={router}")), "{line}");

    // A query: the router makes up a request id when the client sends none.
    let me = graphql(
        &client,
        &edge.url(),
        "{ me { email } }",
        json!({}),
        Some(&token),
        &[],
    )
    .await;
    assert_eq!(
        me.body["data"]["me"]["email"],
        email.as_str(),
        "{}",
        me.body
    );
    let made = me.headers["x-request-id"].to_str().unwrap();
    assert!(!made.is_empty() && made != request_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_through_the_edge_hears_a_booking() {
    let app = spawn(Backend::Sqlite).await;
    let edge = edge_for(&app).await;
    let client = reqwest::Client::new();
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;

    let mut socket = WsClient::connect(&edge.ws_url(), Some(&guest))
        .await
        .unwrap_or_else(|e| panic!("the socket through the edge: {e}\n{}", edge.error_log()));
    socket
        .subscribe(
            "1",
            "subscription { bookingConfirmed { reservationId } }",
            json!({}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let booked = graphql(
        &client,
        &edge.url(),
        BOOK,
        json!({ "i": booking(&property, 10, 12, "pm_card_visa") }),
        Some(&guest),
        &[],
    )
    .await;
    let id = booked.body["data"]["createReservation"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("booked: {}", booked.body))
        .to_owned();
    let pushed = socket
        .next_result(Duration::from_secs(10))
        .await
        .expect("a push through the edge");
    assert_eq!(
        pushed["data"]["bookingConfirmed"]["reservationId"],
        id.as_str(),
        "{pushed}"
    );
    // The socket went through the edge, upgraded, to a notifications replica.
    drop(socket);
    let line = log_line(&edge, "\"GET /ws HTTP/1.1\" 101 ").await;
    let replicas = EdgeUpstreams::of(&app).unwrap().notifications;
    assert!(
        replicas
            .iter()
            .any(|r| line.ends_with(&format!("upstream={r}"))),
        "{line}"
    );
}

fn sign(payload: &str, timestamp: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{payload}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stripe_webhook_through_the_edge_reaches_payments_and_only_as_a_post() {
    let app = spawn(Backend::Sqlite).await;
    let edge = edge_for(&app).await;
    let client = reqwest::Client::new();
    let webhook = format!("{}webhooks/stripe", edge.url());
    let event = json!({
        "id": format!("evt_edge_{}", uuid::Uuid::new_v4().simple()), "object": "event",
        "api_version": "2025-01-27.acacia", "created": 1_790_000_000, "livemode": false,
        "pending_webhooks": 1, "request": { "id": null, "idempotency_key": null },
        "type": "payment_intent.canceled",
        "data": { "object": draftr_test_support::stripe::payment_intent("pi_edge_unknown", 5000, "eur", "canceled") },
    })
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let deliver = |signature: String| {
        client
            .post(&webhook)
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(event.clone())
            .send()
    };

    // The signature is over the exact body: the edge passes it through unchanged, and
    // payments records the event (the second delivery is a duplicate).
    let first = answer(deliver(sign(&event, now)).await.unwrap()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body, json!({ "received": true, "duplicate": false }));
    let again = answer(deliver(sign(&event, now)).await.unwrap()).await;
    assert_eq!(again.body, json!({ "received": true, "duplicate": true }));
    let forged = answer(deliver(sign("{}", now)).await.unwrap()).await;
    assert_eq!(forged.status, 400, "payments checks the signature");

    // Anything but a POST is refused at the edge.
    let (status, _) = raw(&edge, "GET", "/webhooks/stripe?mark=get-webhook").await;
    assert_eq!(status, 403);
    assert!(
        log_line(&edge, "mark=get-webhook")
            .await
            .ends_with("upstream=-")
    );
    // Stripe's events are small: a large body does not get in either.
    let big = client
        .post(format!("{webhook}?mark=big-webhook"))
        .header("stripe-signature", sign(&event, now))
        .body(vec![b' '; 600 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    assert!(
        log_line(&edge, "mark=big-webhook")
            .await
            .ends_with("upstream=-")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_but_the_three_entries_is_reachable_through_the_edge() {
    let app = spawn(Backend::Sqlite).await;
    let edge = edge_for(&app).await;
    // Every one of these is served by some part on its own port (or would be, after a
    // careless rewrite); through the edge, none gets past it.
    let paths = [
        "/metrics",
        "/health",
        "/ready",
        "/graphql",
        "/_entities",
        "/.well-known/jwks.json",
        "/ws/x",
        "/ws/",
        "/wsx",
        "/webhooks",
        "/webhooks/",
        "/webhooks/stripe/",
        "/webhooks/stripe/x",
        "/webhooks/stripe/../",
        "/webhooks/stripe/../../metrics",
        "/webhooks/stripe/%2e%2e/metrics",
        "//metrics",
        "/./metrics",
        "/ws/../metrics",
        "/%2fmetrics",
        "/calendar",
        "/calendarx",
        "/calendar/../metrics",
    ];
    for (i, path) in paths.iter().enumerate() {
        for method in ["GET", "POST"] {
            let marked = format!("{path}?mark=path-{i}-{method}");
            let (status, body) = raw(&edge, method, &marked).await;
            assert_eq!(status, 404, "{method} {path}: {body}");
            let line = log_line(&edge, &format!("mark=path-{i}-{method} ")).await;
            assert!(
                line.ends_with("upstream=-"),
                "{method} {path} reached a part: {line}"
            );
        }
        let (status, body) = raw(&edge, "GET", path).await;
        assert_eq!(status, 404, "GET {path}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).ok().as_ref().map(code),
            Some("NOT_FOUND"),
            "GET {path}: {body}"
        );
    }
    // Climbing above the root is not even a request.
    for (i, path) in ["/../metrics", "/%2e%2e/metrics", "/ws/../../metrics"]
        .iter()
        .enumerate()
    {
        let (status, body) = raw(&edge, "GET", &format!("{path}?mark=above-{i}")).await;
        assert_eq!(status, 400, "{path}: {body}");
        let line = log_line(&edge, &format!("mark=above-{i} ")).await;
        assert!(
            line.ends_with("upstream=-"),
            "{path} reached a part: {line}"
        );
    }
    // The socket entry is for the WebSocket handshake (a GET) only.
    let (status, _) = raw(&edge, "POST", "/ws?mark=post-ws").await;
    assert_eq!(status, 403);
    let line = log_line(&edge, "mark=post-ws").await;
    assert!(
        line.ends_with("upstream=-"),
        "POST /ws reached a part: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ical_feed_through_the_edge_reaches_reservations_and_only_as_a_get() {
    let app = spawn(Backend::Sqlite).await;
    let edge = edge_for(&app).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let url = app
        .gql(
            "query($id: ID!) { property(id: $id) { icalExportUrl } }",
            json!({ "id": property }),
            Some(&host),
        )
        .await
        .ok()["property"]["icalExportUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/calendar/{}", url.split("/calendar/").nth(1).unwrap());
    let res = reqwest::get(format!("{}{}", edge.url().trim_end_matches('/'), path))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "text/calendar; charset=utf-8"
    );
    assert!(res.text().await.unwrap().starts_with("BEGIN:VCALENDAR"));
    // A wrong token is reservations' 404; anything but a GET stops at the edge.
    let (status, _) = raw(
        &edge,
        "GET",
        &format!("/calendar/{property}/nope.ics?mark=bad-token"),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        !log_line(&edge, "mark=bad-token")
            .await
            .ends_with("upstream=-")
    );
    for method in ["POST", "PUT", "DELETE"] {
        let marked = format!("{path}?mark=cal-{method}");
        let (status, _) = raw(&edge, method, &marked).await;
        assert_eq!(status, 403, "{method}");
        let line = log_line(&edge, &format!("mark=cal-{method}")).await;
        assert!(
            line.ends_with("upstream=-"),
            "{method} reached a part: {line}"
        );
    }
}

/// A loopback address of this test's own (`127.a.b.c`, never 127.0.0.1, which the subgraphs
/// trust as a proxy): a client bound to it is, to the edge, a client of its own, so its sign-in
/// failures in the shared Redis are its own too.
fn own_loopback_address() -> Ipv4Addr {
    let b = *uuid::Uuid::new_v4().as_bytes();
    Ipv4Addr::new(127, b[0].max(1), b[1], b[2].clamp(1, 254))
}

fn forged_address() -> String {
    let b = *uuid::Uuid::new_v4().as_bytes();
    format!("10.{}.{}.{}", b[0], b[1], b[2].max(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_x_forwarded_for_does_not_get_past_the_sign_in_throttle_at_the_edge() {
    let app = spawn_with(Backend::Sqlite, |s| s.throttle.max_failures_per_ip = 3).await;
    let edge = edge_for(&app).await;
    let source = own_loopback_address();
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .build()
        .unwrap();
    let wrong = |email: &str| json!({ "i": { "email": email, "password": "wrong password here" } });
    let stranger = || format!("nobody{}@example.com", uuid::Uuid::new_v4().simple());

    // Through the edge, a different forged X-Forwarded-For on every attempt: still one
    // address, the one the edge sees, and it is throttled after three failures.
    let mut codes = Vec::new();
    for i in 0..4 {
        let forged = forged_address();
        let tried = graphql(
            &client,
            &format!("{}?mark=login-{i}", edge.url()),
            LOGIN,
            wrong(&stranger()),
            None,
            &[
                ("x-forwarded-for", forged.as_str()),
                ("x-real-ip", forged.as_str()),
            ],
        )
        .await;
        codes.push(code(&tried.body).to_owned());
        let line = log_line(&edge, &format!("mark=login-{i} ")).await;
        assert!(line.starts_with(&format!("{source} ")), "{line}");
    }
    assert_eq!(
        codes,
        [
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "RATE_LIMITED"
        ]
    );
    // The address counted is the edge's peer: the router, told it, finds it throttled.
    let direct = reqwest::Client::new();
    let as_source = graphql(
        &direct,
        &app.router_url,
        LOGIN,
        wrong(&stranger()),
        None,
        &[("x-forwarded-for", source.to_string().as_str())],
    )
    .await;
    assert_eq!(code(&as_source.body), "RATE_LIMITED", "{}", as_source.body);

    // Straight to the router (which the subgraphs trust to tell them the client), the same
    // forgery works: every attempt is a new address. This is what the edge takes away.
    for _ in 0..4 {
        let tried = graphql(
            &direct,
            &app.router_url,
            LOGIN,
            wrong(&stranger()),
            None,
            &[("x-forwarded-for", forged_address().as_str())],
        )
        .await;
        assert_eq!(code(&tried.body), "UNAUTHENTICATED", "{}", tried.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_routers_limit_is_refused_at_the_edge() {
    let app = spawn(Backend::Sqlite).await;
    let edge = edge_for(&app).await;
    let client = reqwest::Client::new();
    // The router's limit (limits.router.http_max_request_bytes) is 2 000 000 bytes.
    // A small query padded with whitespace to exactly `size` bytes of JSON.
    let padded = |size: usize| {
        let (head, tail) = ("{\"query\":\"{ __typename }", "\"}");
        let body = format!("{head}{}{tail}", " ".repeat(size - head.len() - tail.len()));
        assert_eq!(body.len(), size);
        body
    };
    let post = |mark: &'static str, body: String| {
        client
            .post(format!("{}?mark={mark}", edge.url()))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let over = post("over-limit", padded(2_000_001)).await.unwrap();
    assert_eq!(over.status().as_u16(), 413);
    let line = log_line(&edge, "mark=over-limit").await;
    assert!(line.ends_with("upstream=-"), "reached the router: {line}");

    // At the limit it is the router's to answer.
    let at = answer(post("at-limit", padded(2_000_000)).await.unwrap()).await;
    assert_eq!(at.status, 200, "{}", at.body);
    assert_eq!(at.body["data"]["__typename"], "Query", "{}", at.body);
    let line = log_line(&edge, "mark=at-limit").await;
    assert!(!line.ends_with("upstream=-"), "{line}");
}

fn compose() -> serde_yaml::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml");
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A service's environment, `<<: *anchor` merges included (serde_yaml 0.8 leaves them as a
/// `<<` key).
fn environment(service: &serde_yaml::Value) -> Vec<(String, String)> {
    fn flatten(map: &serde_yaml::Mapping, out: &mut Vec<(String, String)>) {
        for (k, v) in map {
            match (k.as_str(), v) {
                (Some("<<"), serde_yaml::Value::Mapping(merged)) => flatten(merged, out),
                (Some(k), v) => {
                    let v = match v {
                        serde_yaml::Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other)
                            .unwrap()
                            .trim_start_matches("---")
                            .trim()
                            .to_owned(),
                    };
                    out.push((k.to_owned(), v));
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    if let Some(map) = service["environment"].as_mapping() {
        flatten(map, &mut out);
    }
    out
}

fn names(seq: &serde_yaml::Value) -> Vec<String> {
    seq.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// docker-compose.yml's shape, which `docker-compose config` does not judge: the edge is the
/// only public port and every tool is on 127.0.0.1; every service has a healthcheck (but the
/// collector, whose image has nothing to run one with) and waits for its dependencies' health;
/// every part sends traces to the collector and trusts the containers' range only.
#[test]
fn docker_compose_has_one_public_entry_and_waits_for_health() {
    let compose = compose();
    let services = compose["services"].as_mapping().expect("services");
    let without_healthcheck = ["otel-collector"];
    let healthy = |name: &str| !compose["services"][name]["healthcheck"].is_null();
    let ip_range = compose["networks"]["default"]["ipam"]["config"][0]["ip_range"]
        .as_str()
        .expect("the network's fixed range");
    for (name, service) in services {
        let name = name.as_str().unwrap();
        for port in names(&service["ports"]) {
            if name == "edge" {
                assert_eq!(port, "4000:8080", "the edge's port");
            } else {
                assert!(
                    port.starts_with("127.0.0.1:"),
                    "{name} publishes {port} beyond this machine"
                );
            }
        }
        assert_eq!(
            healthy(name),
            !without_healthcheck.contains(&name),
            "{name}: a healthcheck, or a comment why none is possible"
        );
        if let Some(deps) = service["depends_on"].as_mapping() {
            for (dep, how) in deps {
                let dep = dep.as_str().unwrap();
                let wanted = if healthy(dep) {
                    "service_healthy"
                } else {
                    "service_started"
                };
                assert_eq!(how["condition"].as_str(), Some(wanted), "{name} → {dep}");
            }
        } else {
            assert!(
                service["depends_on"].is_null(),
                "{name}: depends_on with conditions"
            );
        }
    }
    assert_eq!(names(&compose["services"]["edge"]["ports"]), ["4000:8080"]);
    assert!(compose["services"]["router"]["ports"].is_null());

    for part in [
        "auth",
        "catalog",
        "payments",
        "reservations",
        "notifications",
        "router",
    ] {
        let env = environment(&compose["services"][part]);
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        // Apollo Router refuses to start with OTEL_EXPORTER_OTLP_ENDPOINT set; router.yaml
        // reads the collector's address from DRAFTR_OTLP_ENDPOINT instead.
        let (endpoint, absent) = if part == "router" {
            ("DRAFTR_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
        } else {
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "DRAFTR_OTLP_ENDPOINT")
        };
        assert_eq!(get(endpoint), Some("http://otel-collector:4318"), "{part}");
        assert_eq!(get(absent), None, "{part}: {absent}");
        assert_eq!(get("DRAFTR_OTLP_TRACES"), Some("true"), "{part}");
        if part != "router" {
            let key = format!("DRAFTR_{}__TRUSTED_PROXIES", part.to_uppercase());
            assert_eq!(get(&key), Some(ip_range), "{part}");
        }
    }
}

/// The edge's templates, rendered with the edge's environment from docker-compose.yml (the
/// service names put on 127.0.0.1, which nginx can resolve here), are a configuration nginx
/// accepts: every variable they use is set, and the compose-only health server is sound.
#[test]
fn the_compose_rendering_of_the_edge_templates_is_valid_nginx() {
    let compose = compose();
    let env = environment(&compose["services"]["edge"]);
    let vars: Vec<(String, String)> = env
        .into_iter()
        .map(|(k, v)| {
            let v = match v.split_once(':') {
                Some((_, port)) => format!("127.0.0.1:{port}"),
                None => v,
            };
            (k, v)
        })
        .collect();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/edge");
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for used in text.split("${").skip(1) {
            let name = used.split('}').next().unwrap();
            assert!(
                vars.iter().any(|(k, _)| k == name),
                "${{{name}}} is not set for the edge in docker-compose.yml"
            );
        }
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let verdict = draftr_test_support::edge::check_templates(&vars).expect("nginx -t");
    assert!(verdict.contains("test is successful"), "{verdict}");
}
