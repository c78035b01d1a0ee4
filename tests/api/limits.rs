//! What one request may ask for: cost (a list costs its page size times what it selects),
//! aliases, depth, root fields of a mutation and sign-ins per request. The router refuses an
//! operation over a limit before any subgraph is called; every subgraph refuses it too when
//! called directly. Refusals are GRAPHQL_VALIDATION_FAILED and name the limit; legitimate
//! queries pass.

use std::time::{Duration, Instant};

use draftr_common::config::LimitSettings;
use draftr_common::testing::Backend;
use serde_json::{Value, json};

use crate::booking::{book, booking, new_listing};
use crate::helpers::{Gql, PASSWORD, TestApp, spawn};

const VALIDATION: &str = "GRAPHQL_VALIDATION_FAILED";
/// A refusal must not wait for anything: well under the 30 s a subgraph call may take.
const PROMPT: Duration = Duration::from_secs(2);

/// `levels` lists of 100 listings, each listing's host's listings the next: 100^levels rows.
fn listings_of_hosts(levels: usize, first: &str) -> String {
    let mut inner = String::from("id");
    for _ in 0..levels {
        inner = format!(
            "properties(first: {first}) {{ edges {{ node {{ title host {{ id {inner} }} }} }} }}"
        );
    }
    format!("{{ {inner} }}")
}

fn aliases_of(n: usize, field: &str) -> String {
    (0..n).map(|i| format!("a{i}: {field} ")).collect()
}

fn assert_refused(res: &Gql, limit: &str) {
    assert_eq!(res.code(), VALIDATION, "{}", res.body);
    assert!(
        res.message().contains(limit),
        "the message should name {limit}: {}",
        res.body
    );
    assert!(res.data().is_null(), "nothing resolved: {}", res.body);
}

/// POST straight to `url`, for the HTTP status too.
async fn status_of(app: &TestApp, url: &str, query: &str, variables: Value) -> u16 {
    app.client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_lists_is_refused_by_the_router_before_any_subgraph_is_called() {
    let app = spawn(Backend::Postgres).await;
    let (_, host, ..) = app.new_user().await;
    new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    let before = (app.catalog_statements.get(), app.auth_statements.get());

    // 100 listings × their hosts' 100 stays each: the router would make each subgraph fetch
    // look cheap (catalog's page, then reservations' stays of up to 100 hosts, then catalog's
    // properties of those stays), so only the router sees the whole cost: 40 401.
    let across_subgraphs = "{ properties(first: 100) { edges { node { host { reservations(first: 100) { edges { node { property { title } } } } } } } } }";
    let started = Instant::now();
    let res = app.gql(across_subgraphs, json!({}), None).await;
    let took = started.elapsed();
    assert_refused(&res, "limit of 5000 (cost)");
    assert!(res.message().contains("costs 40401"), "{}", res.body);
    assert!(took < PROMPT, "refused in {took:?}");
    eprintln!("router refused the nested lists in {took:?}");
    // 100 listings × their hosts' 100 listings: 10 000 rows, cost 30 401.
    let res = app.gql(&listings_of_hosts(2, "100"), json!({}), None).await;
    assert_refused(&res, "limit of 5000 (cost)");

    // The issue's three levels (a million rows), page sizes from variables, the default size.
    let q = listings_of_hosts(3, "$n").replacen("{ ", "query($n: Int) { ", 1);
    let res = app.gql(&q, json!({ "n": 100 }), None).await;
    assert_eq!(res.code(), VALIDATION, "{}", res.body);
    assert!(res.message().contains("limit of"), "{}", res.body);
    let res = app.gql(&listings_of_hosts(2, "50"), json!({}), None).await;
    assert_refused(&res, "cost");
    // 50 listings × their hosts' 20 (the default size): cost 6 301.
    let by_default = listings_of_hosts(2, "50").replacen("properties(first: 50)", "properties", 2);
    let by_default = by_default.replacen("properties", "properties(first: 50)", 1);
    assert_refused(&app.gql(&by_default, json!({}), None).await, "cost");
    assert_eq!(
        status_of(
            &app,
            &app.router_url,
            &listings_of_hosts(2, "100"),
            json!({})
        )
        .await,
        400,
        "as the router answers its own validation errors"
    );

    assert_eq!(
        (app.catalog_statements.get(), app.auth_statements.get()),
        before,
        "no subgraph touched its database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_lists_sent_straight_to_a_subgraph_is_refused_there() {
    let app = spawn(Backend::Postgres).await;
    let catalog_before = app.catalog_statements.get();
    let started = Instant::now();
    let res = app
        .post(
            &app.catalog_url,
            &listings_of_hosts(2, "100"),
            json!({}),
            None,
            &[],
        )
        .await;
    let took = started.elapsed();
    assert_refused(&res, "limit of 5000 (cost)");
    assert!(took < PROMPT, "refused in {took:?}");
    eprintln!("catalog refused the nested lists in {took:?}");
    assert_eq!(app.catalog_statements.get(), catalog_before);

    let stays_of_guests = "{ reservations(first: 100) { edges { node { id guest { reservations(first: 100) { edges { node { id checkIn } } } } } } } }";
    let res = app
        .post(&app.reservations_url, stays_of_guests, json!({}), None, &[])
        .await;
    assert_refused(&res, "limit of 5000 (cost)");

    // Where lists do not nest, a few aliased pages of 100 go over just the same.
    let users = aliases_of(
        8,
        "users(first: 100) { edges { node { id displayName role createdAt email } } }",
    );
    let res = app
        .post(
            &app.auth_url,
            &format!("{{ {users} }}"),
            json!({}),
            None,
            &[],
        )
        .await;
    assert_refused(&res, "limit of 5000 (cost)");
    let notifications = aliases_of(
        6,
        "notifications(first: 100) { edges { node { id kind subject status attempts createdAt sentAt } } }",
    );
    let res = app
        .post(
            &app.notifications_url,
            &format!(
                "query($r: [_Any!]!) {{ _entities(representations: $r) {{ ... on User {{ {notifications} }} }} }}"
            ),
            json!({ "r": [{ "__typename": "User", "id": uuid::Uuid::now_v7() }] }),
            None,
            &[],
        )
        .await;
    assert_refused(&res, "limit of 5000 (cost)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_aliases_are_refused_by_the_router_and_by_every_subgraph() {
    let app = spawn(Backend::Postgres).await;
    let flood = format!("{{ {} }}", aliases_of(50, "__typename"));
    assert_refused(
        &app.gql(&flood, json!({}), None).await,
        "limit of 15 (aliases)",
    );
    let cheap = format!("{{ {} }}", aliases_of(50, "categories { id }"));
    let before = app.catalog_statements.get();
    assert_refused(&app.gql(&cheap, json!({}), None).await, "aliases");
    assert_eq!(app.catalog_statements.get(), before);
    for (name, url) in app.subgraph_urls() {
        let res = app.post(&url, &flood, json!({}), None, &[]).await;
        assert_eq!(res.code(), VALIDATION, "{name}: {}", res.body);
        assert!(
            res.message().contains("limit of 15 (aliases)"),
            "{name}: {}",
            res.body
        );
    }
    // Fifteen are fine.
    let fifteen = format!("{{ {} }}", aliases_of(15, "__typename"));
    assert_eq!(
        app.gql(&fifteen, json!({}), None).await.ok()["a14"],
        "Query"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_aliased_sign_ups_in_one_request_are_refused_and_create_no_user() {
    let app = spawn(Backend::Postgres).await;
    let users_before = app.user_count().await;
    let sign_ups: String = (0..100)
        .map(|i| {
            format!(
                r#"r{i}: register(input: {{ email: "flood{i}@example.com", password: "{PASSWORD}", displayName: "F" }}) {{ accessToken }} "#
            )
        })
        .collect();
    let q = format!("mutation {{ {sign_ups} }}");
    let started = Instant::now();
    let res = app.gql(&q, json!({}), None).await;
    assert_eq!(res.code(), VALIDATION, "{}", res.body);
    assert!(res.message().contains("limit of"), "{}", res.body);
    let direct = app.post(&app.auth_url, &q, json!({}), None, &[]).await;
    assert_eq!(direct.code(), VALIDATION, "{}", direct.body);
    assert!(started.elapsed() < PROMPT, "no password was hashed");

    // Two, within every other limit, are still one sign-up too many.
    let two = format!("mutation {{ {} }}", sign_ups.split(" r2:").next().unwrap());
    assert_refused(&app.gql(&two, json!({}), None).await, "sign_ins");
    assert_refused(
        &app.post(&app.auth_url, &two, json!({}), None, &[]).await,
        "sign_ins",
    );
    assert_eq!(app.user_count().await, users_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_logins_in_one_request_are_refused() {
    let app = spawn(Backend::Postgres).await;
    let (email, token, refresh, _) = app.new_user().await;
    let q = "mutation($i: LoginInput!) { a: login(input: $i) { accessToken } b: login(input: $i) { accessToken } }";
    let vars = json!({ "i": { "email": email, "password": PASSWORD } });
    let before = app.auth_statements.get();
    let res = app.gql(q, vars.clone(), None).await;
    assert_refused(&res, "sign_ins");
    assert!(
        res.message()
            .contains("cannot sign up or sign in more than once"),
        "{}",
        res.body
    );
    assert_eq!(app.auth_statements.get(), before, "auth was not called");
    assert_refused(
        &app.post(&app.auth_url, q, vars, None, &[]).await,
        "sign_ins",
    );
    // A login and a refresh are two sign-ins as well.
    let mixed = "mutation($i: LoginInput!, $r: String!) { login(input: $i) { accessToken } refreshToken(refreshToken: $r) { accessToken } }";
    let res = app
        .gql(
            mixed,
            json!({ "i": { "email": email, "password": PASSWORD }, "r": refresh }),
            Some(&token),
        )
        .await;
    assert_refused(&res, "sign_ins");
    // One is fine.
    assert!(app.login(&email, PASSWORD).await.ok()["login"]["accessToken"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_of_more_than_five_root_fields_is_refused() {
    let app = spawn(Backend::Postgres).await;
    let (_, token, ..) = app.new_user().await;
    let six = format!("mutation {{ {} }}", aliases_of(6, "logout"));
    assert_refused(
        &app.gql(&six, json!({}), Some(&token)).await,
        "limit of 5 (mutation_fields)",
    );
    assert_refused(
        &app.post(&app.auth_url, &six, json!({}), Some(&token), &[])
            .await,
        "mutation_fields",
    );
    // Nothing ran: the session is still signed in.
    assert!(app.me(&token).await.ok()["me"]["id"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_nested_deeper_than_ten_are_refused() {
    let app = spawn(Backend::Postgres).await;
    let (_, token, ..) = app.new_user().await;
    let ten = "{ me { properties { edges { node { host { properties { edges { node { host { id } } } } } } } } } }";
    assert!(app.gql(ten, json!({}), Some(&token)).await.ok()["me"].is_object());
    let eleven = ten.replace("host { id }", "host { properties { totalCount } }");
    assert_refused(
        &app.gql(&eleven, json!({}), Some(&token)).await,
        "limit of 10 (depth)",
    );
    // Pages of one: cheap, only too deep.
    let deep_for_catalog = "{ properties(first: 1) { edges { node { host { properties(first: 1) { edges { node { host { properties(first: 1) { edges { node { id } } } } } } } } } } } }";
    assert_refused(
        &app.post(&app.catalog_url, deep_for_catalog, json!({}), None, &[])
            .await,
        "limit of 10 (depth)",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_size_over_the_cap_is_bad_user_input_never_a_server_error() {
    let app = spawn(Backend::Postgres).await;
    let q = "{ properties(first: 1000000) { edges { node { id } } } }";
    for url in [&app.router_url, &app.catalog_url] {
        let res = app.post(url, q, json!({}), None, &[]).await;
        assert_eq!(res.code(), "BAD_USER_INPUT", "{url}: {}", res.body);
        assert!(status_of(&app, url, q, json!({})).await < 500);
        // Nested, it costs as pages of 100: refused, still not a server error.
        let nested = listings_of_hosts(2, "1000000");
        let res = app.post(url, &nested, json!({}), None, &[]).await;
        assert_eq!(res.code(), VALIDATION, "{url}: {}", res.body);
        assert!(status_of(&app, url, &nested, json!({})).await < 500);
    }
    let huge = "query($n: Int) { properties(first: $n) { edges { node { id } } } }";
    let res = app.gql(huge, json!({ "n": 1_000_000 }), None).await;
    assert_eq!(res.code(), "BAD_USER_INPUT", "{}", res.body);
    assert!(!res.body.to_string().contains("INTERNAL_SERVER_ERROR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_sent_to_a_subgraph_gets_no_suggestion_of_a_service_only_field() {
    let app = spawn(Backend::Postgres).await;
    let id = uuid::Uuid::now_v7();
    for (url, typo, hidden) in [
        (
            &app.catalog_url,
            format!(r#"{{ propertyQuot(id: "{id}") {{ hostId }} }}"#),
            "propertyQuote",
        ),
        (
            &app.payments_url,
            format!(r#"{{ paymentForReservatio(reservationId: "{id}") {{ id }} }}"#),
            "paymentForReservation",
        ),
        (
            &app.auth_url,
            format!(r#"mutation {{ promoteToHos(userId: "{id}") {{ role }} }}"#),
            "promoteToHost",
        ),
    ] {
        let res = app.post(url, &typo, json!({}), None, &[]).await;
        assert_eq!(res.code(), VALIDATION, "{}", res.body);
        let body = res.body.to_string();
        assert!(
            !body.contains("Did you mean") && !body.contains(&format!("\\\"{hidden}\\\"")),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legitimate_queries_still_pass() {
    let app = spawn(Backend::Postgres).await;
    let (_, host, ..) = app.new_user().await;
    let mut first = String::new();
    for _ in 0..50 {
        first = new_listing(&app, &host, 10_000, "FLEXIBLE").await;
    }
    let page = "{ properties(first: 50) { totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id title description nightlyRate { amount currency } address { city country } amenities host { id displayName } } } } }";
    let res = app.gql(page, json!({}), None).await;
    let edges = res.ok()["properties"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 50);
    assert!(
        edges
            .iter()
            .all(|e| e["node"]["host"]["displayName"] == "Test User")
    );
    // A page of 100 with their hosts is fine as well.
    let hundred = page.replace("first: 50", "first: 100");
    assert_eq!(
        app.gql(&hundred, json!({}), None).await.ok()["properties"]["totalCount"],
        50
    );

    let (_, guest, ..) = app.new_user().await;
    let booked = book(&app, &guest, booking(&first, 10, 12, "pm_card_visa")).await;
    assert_eq!(booked.ok()["createReservation"]["status"], "CONFIRMED");
    let mine = "{ me { email reservations { totalCount edges { node { id status nights property { title host { displayName } } payment { status amount { amount currency } } } } } notifications(first: 20) { totalCount edges { node { kind subject status } } } } }";
    let me = app.gql(mine, json!({}), Some(&guest)).await;
    let reservations = &me.ok()["me"]["reservations"];
    assert_eq!(reservations["totalCount"], 1);
    assert_eq!(
        reservations["edges"][0]["node"]["property"]["host"]["displayName"],
        "Test User"
    );
    assert_eq!(
        reservations["edges"][0]["node"]["payment"]["status"],
        "CAPTURED"
    );

    // One sign-up, one sign-in: fine.
    let (email, ..) = app.new_user().await;
    assert!(app.login(&email, PASSWORD).await.ok()["login"]["accessToken"].is_string());

    // The router's own introspection (GraphiQL's query is 13 deep) is unaffected.
    let type_ref = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }";
    let introspection = format!(
        "{{ __schema {{ queryType {{ name }} types {{ kind name fields(includeDeprecated: true) {{ name args {{ name type {{ {type_ref} }} defaultValue }} type {{ {type_ref} }} }} inputFields {{ name type {{ {type_ref} }} }} }} directives {{ name args {{ name type {{ {type_ref} }} }} }} }} }}"
    );
    let schema = app.gql(&introspection, json!({}), None).await;
    assert_eq!(schema.ok()["__schema"]["queryType"]["name"], "Query");
}

#[test]
fn the_router_and_the_subgraphs_default_to_the_same_limits() {
    let router = draftr_router::plugins::limits::Config::default();
    let subgraphs = LimitSettings::default();
    assert_eq!(
        (
            router.cost,
            router.depth,
            router.aliases,
            router.mutation_fields,
            router.sign_ins
        ),
        (
            subgraphs.cost as u64,
            subgraphs.depth as u64,
            subgraphs.aliases as u64,
            subgraphs.mutation_fields as u64,
            subgraphs.sign_ins as u64
        )
    );
}
