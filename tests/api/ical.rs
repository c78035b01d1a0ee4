//! iCal feeds of host calendars through the router (and the export URL itself): the export
//! parses with Python's `icalendar` (an RFC 5545 implementation independent of the server's),
//! lists every confirmed stay and block with stable UIDs and nothing about the guest, and a
//! rotated URL is 404 at once; an imported feed (served by the test) becomes blocks that follow
//! the feed, frees nights when an event goes, never overrides a booking (the conflict is
//! recorded and mailed to the host once), keeps its blocks when a fetch fails, and cannot point
//! at a private address unless allowed; strangers can neither see nor manage any of it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use serde_json::{Value, json};

use crate::booking::{book, booking, day, new_listing, reservations_count};
use crate::helpers::{Gql, Options, TestApp, spawn, spawn_custom, wait_until};

test_on_both_backends!(
    the_export_lists_stays_and_blocks_with_stable_uids_and_no_guest_data,
    a_rotated_export_url_is_404_at_once,
    an_import_follows_its_feed_and_never_overrides_a_booking,
    a_feed_url_must_be_public_unless_allowed,
    strangers_cannot_see_or_manage_feeds,
    imports_are_polled_on_their_schedule,
);

const EXPORT_URL: &str = "query($id: ID!) { property(id: $id) { id icalExportUrl } }";
const ROTATE: &str = "mutation($id: ID!) { rotateIcalExportUrl(propertyId: $id) }";
const BLOCK: &str = "mutation($i: BlockDatesInput!) { blockDates(input: $i) { id } }";
const IMPORT_FIELDS: &str =
    "id url name status lastSyncedAt lastError conflicts { uid from to summary } createdAt";
const BLOCKS: &str = "query($id: ID!, $a: Date!, $b: Date!) { property(id: $id) {
  calendarBlocks(from: $a, to: $b) { id from to source note }
} }";

fn add_import_query() -> String {
    format!(
        "mutation($i: AddCalendarImportInput!) {{ addCalendarImport(input: $i) {{ {IMPORT_FIELDS} }} }}"
    )
}

fn sync_query() -> String {
    format!("mutation($id: ID!) {{ syncCalendarImport(id: $id) {{ {IMPORT_FIELDS} }} }}")
}

fn imports_query() -> String {
    format!("query($id: ID!) {{ property(id: $id) {{ calendarImports {{ {IMPORT_FIELDS} }} }} }}")
}

const REMOVE: &str = "mutation($id: ID!) { removeCalendarImport(id: $id) }";

/// The Python that reads the feed: every VEVENT, with what a calendar app would show, and any
/// parse error icalendar noted on a component.
const PARSE_PY: &str = r#"
import json, sys
import icalendar
cal = icalendar.Calendar.from_ical(sys.stdin.buffer.read())
errors = [str(e) for c in cal.walk() for e in getattr(c, "errors", [])]
events = []
for e in cal.walk("VEVENT"):
    start, end = e["DTSTART"].dt, e["DTEND"].dt
    events.append({
        "uid": str(e["UID"]),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "allDay": type(start).__name__ == "date" and type(end).__name__ == "date",
        "summary": str(e.get("SUMMARY")),
        "stamped": e.get("DTSTAMP") is not None,
    })
print(json.dumps({"version": str(cal.get("VERSION")), "prodid": str(cal.get("PRODID")), "errors": errors, "events": events}))
"#;

/// The feed parsed by Python's icalendar (from the venv scripts/test makes).
fn parse_with_python(body: &str) -> Value {
    use std::io::Write;
    let python = std::env::var("DRAFTR_ICAL_PYTHON").unwrap_or_else(|_| {
        panic!(
            "DRAFTR_ICAL_PYTHON is not set: the iCal tests parse the export with Python's icalendar \
             (tests/ical/requirements.txt). Run scripts/test, or `source scripts/lib.sh && \
             ensure_ical_tools` and run the tests in that shell."
        )
    });
    let mut child = std::process::Command::new(&python)
        .args(["-c", PARSE_PY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "icalendar refused the feed: {}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn export_url(app: &TestApp, token: &str, property: &str) -> String {
    app.gql(EXPORT_URL, json!({ "id": property }), Some(token))
        .await
        .ok()["property"]["icalExportUrl"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Status, content type and body of a GET.
async fn get(app: &TestApp, url: &str) -> (u16, String, String) {
    let res = app.client.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, res.text().await.unwrap())
}

fn uids(parsed: &Value) -> Vec<String> {
    let mut u: Vec<String> = parsed["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uid"].as_str().unwrap().to_owned())
        .collect();
    u.sort();
    u
}

fn event<'a>(parsed: &'a Value, uid: &str) -> &'a Value {
    parsed["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uid"] == uid)
        .unwrap_or_else(|| panic!("no event {uid} in {parsed}"))
}

async fn the_export_lists_stays_and_blocks_with_stable_uids_and_no_guest_data(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (guest_email, guest, _, guest_id) = app.new_user().await;
    let stay = book(&app, &guest, booking(&property, 10, 13, "pm_card_visa")).await;
    let stay_id = stay.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = book(&app, &guest, booking(&property, 15, 16, "pm_card_visa")).await;
    let second_id = second.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A cancelled stay is not in the feed.
    let cancelled = book(&app, &guest, booking(&property, 30, 32, "pm_card_visa")).await;
    let cancelled_id = cancelled.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.gql(
        "mutation($id: ID!) { cancelReservation(id: $id) { status } }",
        json!({ "id": cancelled_id }),
        Some(&guest),
    )
    .await
    .ok();
    let block = app
        .gql(
            BLOCK,
            json!({ "i": { "propertyId": property, "from": day(20), "to": day(22), "note": "secret family visit" } }),
            Some(&host),
        )
        .await;
    let block_id = block.ok()["blockDates"]["id"].as_str().unwrap().to_owned();

    let url = export_url(&app, &host, &property).await;
    assert!(
        url.starts_with(&app.reservations_url.trim_end_matches('/').to_owned())
            && url.contains(&format!("/calendar/{property}/"))
            && url.ends_with(".ics"),
        "{url}"
    );
    let (status, ctype, body) = get(&app, &url).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ctype, "text/calendar; charset=utf-8");
    let parsed = parse_with_python(&body);
    assert_eq!(parsed["version"], "2.0", "{parsed}");
    assert_eq!(parsed["errors"], json!([]), "{parsed}");
    let mut expected = vec![
        format!("{stay_id}@draftr"),
        format!("{second_id}@draftr"),
        format!("{block_id}@draftr"),
    ];
    expected.sort();
    assert_eq!(uids(&parsed), expected, "{body}");
    let e = event(&parsed, &format!("{stay_id}@draftr"));
    assert_eq!(e["start"], day(10));
    assert_eq!(e["end"], day(13), "DTEND is the check-out day");
    assert_eq!(e["allDay"], true);
    assert_eq!(e["summary"], "Reserved");
    assert_eq!(e["stamped"], true);
    let b = event(&parsed, &format!("{block_id}@draftr"));
    assert_eq!(
        (b["start"].clone(), b["end"].clone()),
        (json!(day(20)), json!(day(22)))
    );
    assert_eq!(b["summary"], "Not available");
    // Nothing about the guest, nor the host's note.
    for secret in [
        guest_email.as_str(),
        guest_id.as_str(),
        "Test User",
        "secret family visit",
        "pm_card_visa",
    ] {
        assert!(!body.contains(secret), "{secret:?} is in the feed:\n{body}");
    }

    // The same UIDs on every fetch; the URL does not change by itself.
    assert_eq!(export_url(&app, &host, &property).await, url);
    let (status, _, again) = get(&app, &url).await;
    assert_eq!(status, 200);
    assert_eq!(uids(&parse_with_python(&again)), expected);
}

async fn a_rotated_export_url_is_404_at_once(backend: Backend) {
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let old = export_url(&app, &host, &property).await;
    assert_eq!(get(&app, &old).await.0, 200);

    let rotated = app
        .gql(ROTATE, json!({ "id": property }), Some(&host))
        .await;
    let new = rotated.ok()["rotateIcalExportUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    assert_eq!(export_url(&app, &host, &property).await, new);
    let (status, _, body) = get(&app, &old).await;
    assert_eq!(status, 404, "the old URL: {body}");
    let (status, _, body) = get(&app, &new).await;
    assert_eq!(status, 200, "{body}");
    parse_with_python(&body);

    // A wrong token, a token of another property, an unknown property, a missing `.ics`: all
    // the same 404.
    let token = new.rsplit('/').next().unwrap().trim_end_matches(".ics");
    let base = new.split("/calendar/").next().unwrap();
    let mut flipped = token.to_owned();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let other = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    for url in [
        format!("{base}/calendar/{property}/{flipped}.ics"),
        format!("{base}/calendar/{other}/{token}.ics"),
        format!("{base}/calendar/{}/{token}.ics", uuid::Uuid::now_v7()),
        format!("{base}/calendar/{property}/{token}"),
        format!("{base}/calendar/not-an-id/{token}.ics"),
        format!("{base}/calendar/{property}/.ics"),
    ] {
        let (status, _, body) = get(&app, &url).await;
        assert_eq!(status, 404, "{url}: {body}");
        assert_eq!(body, "not found", "{url}");
    }
    // Read-only.
    let res = app.client.post(&new).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 405);
}

/// What the test's feed server answers.
#[derive(Clone)]
struct Feed {
    status: u16,
    body: String,
}

type FeedState = Arc<Mutex<Feed>>;

async fn serve_feed(State(feed): State<FeedState>) -> Response {
    let f = feed.lock().unwrap().clone();
    (
        StatusCode::from_u16(f.status).unwrap(),
        [(header::CONTENT_TYPE, "text/calendar")],
        f.body,
    )
        .into_response()
}

/// A feed server on 127.0.0.1; its `/feed.ics` URL, and `/elsewhere` redirecting to a private
/// address.
async fn feed_server(feed: FeedState) -> String {
    let app = axum::Router::new()
        .route("/feed.ics", axum::routing::get(serve_feed))
        .route(
            "/elsewhere",
            axum::routing::get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://10.11.12.13/feed.ics")],
                )
            }),
        )
        .with_state(feed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/feed.ics")
}

/// An iCalendar with all-day events `(uid, from, to)` in days from today, as another
/// platform's export looks.
fn feed_of(events: &[(&str, i64, i64)]) -> String {
    let compact = |n: i64| day(n).replace('-', "");
    let mut s = String::from(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Elsewhere//Hosting//EN\r\nCALSCALE:GREGORIAN\r\n",
    );
    for (uid, from, to) in events {
        s.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:{}\r\nDTEND;VALUE=DATE:{}\r\nSUMMARY:Elsewhere (Not available)\r\nEND:VEVENT\r\n",
            compact(*from),
            compact(*to)
        ));
    }
    s.push_str("END:VCALENDAR\r\n");
    s
}

fn set_feed(feed: &FeedState, status: u16, body: String) {
    *feed.lock().unwrap() = Feed { status, body };
}

/// The property's blocks in the next 100 days: `(from, to, source)`.
async fn blocks_of(app: &TestApp, host: &str, property: &str) -> Vec<(String, String, String)> {
    let res = app
        .gql(
            BLOCKS,
            json!({ "id": property, "a": day(0), "b": day(100) }),
            Some(host),
        )
        .await;
    res.ok()["property"]["calendarBlocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["from"].as_str().unwrap().to_owned(),
                b["to"].as_str().unwrap().to_owned(),
                b["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn imported(from: i64, to: i64) -> (String, String, String) {
    (day(from), day(to), "IMPORTED".to_owned())
}

async fn sync(app: &TestApp, host: &str, id: &str) -> Value {
    app.gql(&sync_query(), json!({ "id": id }), Some(host))
        .await
        .ok()["syncCalendarImport"]
        .clone()
}

fn conflict_emails(app: &TestApp, to: &str) -> usize {
    app.smtp
        .messages()
        .iter()
        .filter(|m| m.contains("An imported calendar overlaps your bookings") && m.contains(to))
        .count()
}

async fn allowing_loopback(backend: Backend) -> TestApp {
    spawn_custom(
        backend,
        Options::default().reservations(|s| {
            s.ical.allow_networks = vec!["127.0.0.1/32".parse().unwrap()];
        }),
    )
    .await
}

async fn an_import_follows_its_feed_and_never_overrides_a_booking(backend: Backend) {
    let app = allowing_loopback(backend).await;
    let (host_email, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, guest, _, _) = app.new_user().await;
    let feed: FeedState = Arc::new(Mutex::new(Feed {
        status: 200,
        body: feed_of(&[("a@elsewhere", 10, 13), ("b@elsewhere", 20, 22)]),
    }));
    let url = feed_server(feed.clone()).await;

    // Added and synced at once: each event is a block.
    let added = app
        .gql(
            &add_import_query(),
            json!({ "i": { "propertyId": property, "url": url, "name": "  Elsewhere  " } }),
            Some(&host),
        )
        .await;
    let import = added.ok()["addCalendarImport"].clone();
    let id = import["id"].as_str().unwrap().to_owned();
    assert_eq!(import["status"], "OK", "{import}");
    assert_eq!(import["name"], "Elsewhere");
    assert_eq!(import["url"], url);
    assert!(import["lastSyncedAt"].is_string());
    assert_eq!(import["conflicts"], json!([]));
    assert_eq!(
        blocks_of(&app, &host, &property).await,
        [imported(10, 13), imported(20, 22)]
    );
    let refused = book(&app, &guest, booking(&property, 11, 12, "pm_card_visa")).await;
    assert_eq!(refused.code(), "BOOKING_CONFLICT", "{}", refused.body);
    // A sync of an unchanged feed changes nothing.
    let blocks_before = reservations_count(&app, "SELECT COUNT(*) AS n FROM outbox").await;
    assert_eq!(sync(&app, &host, &id).await["status"], "OK");
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM outbox").await,
        blocks_before
    );

    // Syncs racing each other (a poll and a host's "sync now", or two replicas) agree: each
    // new event is blocked once.
    set_feed(
        &feed,
        200,
        feed_of(&[
            ("a@elsewhere", 10, 13),
            ("b@elsewhere", 20, 22),
            ("d@elsewhere", 60, 61),
        ]),
    );
    let racing = futures::future::join_all((0..4).map(|_| sync(&app, &host, &id))).await;
    for r in &racing {
        assert_eq!(r["status"], "OK", "{r}");
    }
    assert_eq!(
        blocks_of(&app, &host, &property).await,
        [imported(10, 13), imported(20, 22), imported(60, 61)]
    );

    // The feed moves `a` and drops `b` and `d`: the block moves, `b`'s nights are free for a
    // guest.
    set_feed(&feed, 200, feed_of(&[("a@elsewhere", 11, 14)]));
    assert_eq!(sync(&app, &host, &id).await["status"], "OK");
    assert_eq!(blocks_of(&app, &host, &property).await, [imported(11, 14)]);
    let freed = book(&app, &guest, booking(&property, 20, 22, "pm_card_visa")).await;
    assert_eq!(
        freed.ok()["createReservation"]["status"],
        "CONFIRMED",
        "{}",
        freed.body
    );
    // Each move and removal went out as block events (catalog's date search follows them).
    assert!(
        reservations_count(
            &app,
            "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'calendar.unblocked'"
        )
        .await
            >= 2
    );

    // An event over a confirmed booking: not blocked, recorded, the host told once.
    let stay = book(&app, &guest, booking(&property, 40, 43, "pm_card_visa")).await;
    let stay_id = stay.ok()["createReservation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    set_feed(
        &feed,
        200,
        feed_of(&[("a@elsewhere", 11, 14), ("c@elsewhere", 41, 45)]),
    );
    let synced = sync(&app, &host, &id).await;
    assert_eq!(synced["status"], "CONFLICTS", "{synced}");
    assert_eq!(
        synced["conflicts"],
        json!([{ "uid": "c@elsewhere", "from": day(41), "to": day(45), "summary": "Elsewhere (Not available)" }])
    );
    let r = app
        .gql(
            "query($id: ID!) { reservation(id: $id) { status checkIn checkOut } }",
            json!({ "id": stay_id }),
            Some(&guest),
        )
        .await;
    assert_eq!(
        r.ok()["reservation"],
        json!({ "status": "CONFIRMED", "checkIn": day(40), "checkOut": day(43) })
    );
    assert_eq!(blocks_of(&app, &host, &property).await, [imported(11, 14)]);
    wait_until(
        "the host's conflict email",
        Duration::from_secs(20),
        async || conflict_emails(&app, &host_email) >= 1,
    )
    .await;
    // The same conflict on the next polls is not news.
    assert_eq!(sync(&app, &host, &id).await["status"], "CONFLICTS");
    assert_eq!(sync(&app, &host, &id).await["status"], "CONFLICTS");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(conflict_emails(&app, &host_email), 1);

    // A failing feed is an error on the import, and keeps what was imported.
    for (status, body, says) in [
        (500, "oops".to_owned(), "HTTP 500"),
        (
            200,
            "<html>not a calendar</html>".to_owned(),
            "not an iCalendar",
        ),
    ] {
        set_feed(&feed, status, body);
        let failed = sync(&app, &host, &id).await;
        assert_eq!(failed["status"], "ERROR", "{failed}");
        assert!(
            failed["lastError"].as_str().unwrap().contains(says),
            "{failed}"
        );
        assert_eq!(blocks_of(&app, &host, &property).await, [imported(11, 14)]);
    }
    // So does a redirect to a private address (checked again on every redirect).
    let redirecting = url.replace("/feed.ics", "/elsewhere");
    let other = app
        .gql(
            &add_import_query(),
            json!({ "i": { "propertyId": property, "url": redirecting } }),
            Some(&host),
        )
        .await;
    let other = other.ok()["addCalendarImport"].clone();
    assert_eq!(other["status"], "ERROR", "{other}");
    assert!(
        other["lastError"].as_str().unwrap().contains("not public"),
        "{other}"
    );

    // The host lists the imports; removing one frees its nights.
    let listed = app
        .gql(&imports_query(), json!({ "id": property }), Some(&host))
        .await;
    let listed = listed.ok()["property"]["calendarImports"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    let removed = app.gql(REMOVE, json!({ "id": id }), Some(&host)).await;
    assert_eq!(removed.ok()["removeCalendarImport"], true);
    let again = app.gql(REMOVE, json!({ "id": id }), Some(&host)).await;
    assert_eq!(again.ok()["removeCalendarImport"], false);
    assert_eq!(blocks_of(&app, &host, &property).await, []);
    let booked = book(&app, &guest, booking(&property, 11, 14, "pm_card_visa")).await;
    assert_eq!(booked.ok()["createReservation"]["status"], "CONFIRMED");
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM calendar_blocks").await,
        0
    );
}

async fn add(app: &TestApp, token: &str, property: &str, url: &str) -> Gql {
    app.gql(
        &add_import_query(),
        json!({ "i": { "propertyId": property, "url": url } }),
        Some(token),
    )
    .await
}

async fn a_feed_url_must_be_public_unless_allowed(backend: Backend) {
    // No allow-list: the test's own loopback server is refused like any private address.
    let app = spawn(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let feed: FeedState = Arc::new(Mutex::new(Feed {
        status: 200,
        body: feed_of(&[("a@elsewhere", 10, 13)]),
    }));
    let url = feed_server(feed).await;
    let port = url.split(':').nth(2).unwrap().split('/').next().unwrap();
    for (bad, says) in [
        (url.clone(), "not public"),
        (format!("http://localhost:{port}/feed.ics"), "not public"),
        ("http://[::1]/feed.ics".to_owned(), "not public"),
        ("http://10.0.0.1/feed.ics".to_owned(), "not public"),
        (
            "http://169.254.169.254/latest/meta-data".to_owned(),
            "not public",
        ),
        ("http://[::ffff:192.168.1.1]/".to_owned(), "not public"),
        ("http://100.64.0.1/".to_owned(), "not public"),
        ("ftp://example.com/feed.ics".to_owned(), "http://"),
        ("file:///etc/passwd".to_owned(), "http://"),
        ("not a url".to_owned(), "not valid"),
        (
            "https://user:pw@example.com/feed.ics".to_owned(),
            "user name",
        ),
    ] {
        let res = add(&app, &host, &property, &bad).await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{bad}: {}", res.body);
        assert_eq!(res.body["errors"][0]["extensions"]["field"], "url", "{bad}");
        assert!(res.message().contains(says), "{bad}: {}", res.message());
    }
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM calendar_imports").await,
        0
    );

    // Allowed by the settings, the same URL works, up to the per-property limit.
    let app = spawn_custom(
        backend,
        Options::default().reservations(|s| {
            s.ical.allow_networks = vec!["127.0.0.1/32".parse().unwrap()];
            s.ical.max_imports_per_property = 2;
        }),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    for _ in 0..2 {
        let res = add(&app, &host, &property, &url).await;
        assert!(res.ok()["addCalendarImport"]["status"].is_string());
    }
    let res = add(&app, &host, &property, &url).await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{}", res.body);
    assert_eq!(res.body["errors"][0]["extensions"]["field"], "propertyId");
    // Still only loopback 127.0.0.1: another private address stays refused.
    let res = add(&app, &host, &property, "http://10.0.0.1/feed.ics").await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{}", res.body);
}

async fn strangers_cannot_see_or_manage_feeds(backend: Backend) {
    let app = allowing_loopback(backend).await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let (_, stranger, _, _) = app.new_user().await;
    let feed: FeedState = Arc::new(Mutex::new(Feed {
        status: 200,
        body: feed_of(&[("a@elsewhere", 10, 13)]),
    }));
    let url = feed_server(feed).await;

    let res = app
        .gql(EXPORT_URL, json!({ "id": property }), Some(&stranger))
        .await;
    assert_eq!(res.code(), "FORBIDDEN", "{}", res.body);
    assert!(res.data()["property"]["icalExportUrl"].is_null());
    let res = app.gql(EXPORT_URL, json!({ "id": property }), None).await;
    assert_eq!(res.code(), "UNAUTHENTICATED", "{}", res.body);
    assert!(res.data()["property"]["icalExportUrl"].is_null());
    let res = app
        .gql(ROTATE, json!({ "id": property }), Some(&stranger))
        .await;
    assert_eq!(res.code(), "FORBIDDEN", "{}", res.body);

    let res = add(&app, &stranger, &property, &url).await;
    assert_eq!(res.code(), "FORBIDDEN", "{}", res.body);
    // Asked first, so a stranger cannot use the URL check to probe addresses or names.
    for probe in ["http://10.0.0.1/x", "http://intranet.invalid/x"] {
        let res = add(&app, &stranger, &property, probe).await;
        assert_eq!(res.code(), "FORBIDDEN", "{probe}: {}", res.body);
    }
    assert_eq!(
        reservations_count(&app, "SELECT COUNT(*) AS n FROM calendar_imports").await,
        0
    );
    let id = add(&app, &host, &property, &url).await.ok()["addCalendarImport"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .gql(&imports_query(), json!({ "id": property }), Some(&stranger))
        .await;
    assert_eq!(res.code(), "FORBIDDEN", "{}", res.body);
    assert!(res.data()["property"]["calendarImports"].is_null());
    let res = app
        .gql(&sync_query(), json!({ "id": id }), Some(&stranger))
        .await;
    assert_eq!(res.code(), "FORBIDDEN", "{}", res.body);
    let res = app.gql(REMOVE, json!({ "id": id }), Some(&stranger)).await;
    assert_eq!(res.code(), "FORBIDDEN", "{}", res.body);
    let res = app.gql(REMOVE, json!({ "id": id }), None).await;
    assert_eq!(res.code(), "UNAUTHENTICATED", "{}", res.body);
    assert_eq!(blocks_of(&app, &host, &property).await, [imported(10, 13)]);
    // An admin may.
    let (_, admin) = app.new_admin().await;
    let res = app
        .gql(&imports_query(), json!({ "id": property }), Some(&admin))
        .await;
    assert_eq!(
        res.ok()["property"]["calendarImports"][0]["id"],
        id.as_str()
    );
    let res = app.gql(REMOVE, json!({ "id": id }), Some(&admin)).await;
    assert_eq!(res.ok()["removeCalendarImport"], true);
    assert_eq!(blocks_of(&app, &host, &property).await, []);
}

async fn imports_are_polled_on_their_schedule(backend: Backend) {
    let app = spawn_custom(
        backend,
        Options::default().reservations(|s| {
            s.ical.allow_networks = vec!["127.0.0.1/32".parse().unwrap()];
            s.ical.poll_interval_secs = 1;
            s.ical.poller_tick_ms = 100;
        }),
    )
    .await;
    let (_, host, _, _) = app.new_user().await;
    let property = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let feed: FeedState = Arc::new(Mutex::new(Feed {
        status: 200,
        body: feed_of(&[("a@elsewhere", 10, 13)]),
    }));
    let url = feed_server(feed.clone()).await;
    add(&app, &host, &property, &url).await.ok();
    assert_eq!(blocks_of(&app, &host, &property).await, [imported(10, 13)]);
    // Nobody asks for a sync: the poller picks the change up by itself.
    set_feed(
        &feed,
        200,
        feed_of(&[("a@elsewhere", 12, 15), ("b@elsewhere", 30, 31)]),
    );
    wait_until("the poller's sync", Duration::from_secs(20), async || {
        blocks_of(&app, &host, &property).await == [imported(12, 15), imported(30, 31)]
    })
    .await;
}
