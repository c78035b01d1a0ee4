//! Registration, sign-in, input validation, roles and throttling, through the router.

use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn, spawn_with};

test_on_both_backends!(
    register_then_login_then_me_returns_the_account,
    wrong_password_and_unknown_email_get_the_same_unauthenticated_error,
    a_second_account_with_the_same_email_in_any_case_is_refused,
    bad_input_is_bad_user_input_and_stores_nothing,
    register_cannot_choose_a_role,
    a_guest_cannot_list_users_or_set_roles_but_an_admin_can,
    repeated_failures_for_one_account_are_rate_limited_whether_or_not_it_exists,
    repeated_failures_from_one_address_are_rate_limited,
    an_email_is_private_to_its_owner_and_admins,
);

// The throttling policy's own tests use one backend: the counters live in Redis either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_wrong_passwords_for_one_account_get_at_most_five_checks() {
    let app = spawn(Backend::Sqlite).await;
    let (email, ..) = app.new_user().await;
    let attempts =
        futures::future::join_all((0..20).map(|_| app.login(&email, "wrong password here"))).await;
    let checked = attempts
        .iter()
        .filter(|r| r.code() == "UNAUTHENTICATED")
        .count();
    let limited = attempts
        .iter()
        .filter(|r| r.code() == "RATE_LIMITED")
        .count();
    assert_eq!(checked, 5, "counted before the check, decided after");
    assert_eq!(limited, 15);
}

/// A fresh client address, its own across parallel tests.
fn address(i: u8) -> String {
    let b = uuid::Uuid::new_v4();
    let b = b.as_bytes();
    format!("10.{}.{}.{i}", b[0], b[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_failures_from_many_addresses_do_not_keep_the_owner_out() {
    let app = spawn_with(Backend::Sqlite, |s| {
        s.throttle.max_failures_per_account_anywhere = 4;
        s.throttle.slowdown_secs = 2;
    })
    .await;
    let (email, ..) = app.new_user().await;
    let home = address(1);
    // The owner has signed in from home before.
    assert!(app.login_from(&home, &email, PASSWORD).await.ok()["login"]["accessToken"].is_string());

    // A stranger guesses from 30 addresses, as fast as it can.
    let mut checked = 0;
    for i in 0..30 {
        let res = app
            .login_from(&address(10 + i), &email, "wrong password here")
            .await;
        match res.code() {
            "UNAUTHENTICATED" => checked += 1,
            "RATE_LIMITED" => {}
            other => panic!("unexpected {other}: {}", res.body),
        }
    }
    // Four failures anywhere, then one guess per 2 s slot: the run takes well under a few
    // slots, so at most a couple more were checked.
    assert!((4..=7).contains(&checked), "{checked} guesses checked");

    // The owner at home signs in at once, attack or not.
    let at_home = app.login_from(&home, &email, PASSWORD).await;
    assert!(at_home.ok()["login"]["accessToken"].is_string());

    // From a new address the owner waits at most one slowdown (2 s here, 5 minutes by default).
    let travelling = address(200);
    crate::helpers::wait_until(
        "the owner signed in from a new address",
        std::time::Duration::from_secs(6),
        async || app.login_from(&travelling, &email, PASSWORD).await.code() == "",
    )
    .await;
}

async fn register_then_login_then_me_returns_the_account(backend: Backend) {
    let app = spawn(backend).await;

    let reg = app
        .register("  Ann.Lee@Example.COM ", PASSWORD, "  Ann   Lee ")
        .await;
    let user = &reg.ok()["register"]["user"];
    assert_eq!(user["email"], "ann.lee@example.com");
    assert_eq!(user["displayName"], "Ann Lee");
    assert_eq!(user["role"], "GUEST");
    assert_eq!(reg.data()["register"]["expiresIn"], 900);

    let login = app.login("ann.lee@example.com", PASSWORD).await;
    let token = login.ok()["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let me = app.me(&token).await;
    assert_eq!(me.ok()["me"]["id"], user["id"]);
    assert_eq!(me.data()["me"]["email"], "ann.lee@example.com");

    let anonymous = app.gql("{ me { id } }", json!({}), None).await;
    assert_eq!(anonymous.ok()["me"], serde_json::Value::Null);
}

async fn wrong_password_and_unknown_email_get_the_same_unauthenticated_error(backend: Backend) {
    let app = spawn(backend).await;
    let (email, ..) = app.new_user().await;

    let wrong = app.login(&email, "not the password at all").await;
    assert_eq!(wrong.code(), "UNAUTHENTICATED");
    assert_eq!(wrong.data(), &serde_json::Value::Null);

    // Throttling state lives in the shared Redis, so the unknown address is unique per run.
    let nobody = format!("nobody{}@example.com", uuid::Uuid::new_v4().simple());
    let unknown = app.login(&nobody, "not the password at all").await;
    assert_eq!(unknown.code(), "UNAUTHENTICATED");
    assert_eq!(
        unknown.message(),
        wrong.message(),
        "the message must not reveal whether an email is registered"
    );
}

async fn a_second_account_with_the_same_email_in_any_case_is_refused(backend: Backend) {
    let app = spawn(backend).await;
    app.register("dup@example.com", PASSWORD, "First")
        .await
        .ok();

    let again = app.register("DUP@example.com", PASSWORD, "Second").await;
    assert_eq!(again.code(), "BAD_USER_INPUT");
    assert_eq!(again.body["errors"][0]["extensions"]["field"], "email");
    assert!(
        again.message().contains("already exists"),
        "{}",
        again.message()
    );
    assert_eq!(app.user_count().await, 1);
}

async fn bad_input_is_bad_user_input_and_stores_nothing(backend: Backend) {
    let app = spawn(backend).await;
    let huge = format!("{}{}", "p".repeat(5_000), "q".repeat(5_240)); // 10 kB
    let cases: [(&str, &str, &str, &str); 5] = [
        ("not-an-email", PASSWORD, "Ann", "email"),
        ("ann@example.com", &huge, "Ann", "password"),
        ("ann@example.com", PASSWORD, "", "displayName"),
        ("ann@example.com", PASSWORD, "    ", "displayName"),
        ("ann@example.com", "short", "Ann", "password"),
    ];
    for (email, password, name, field) in cases {
        let res = app.register(email, password, name).await;
        assert_eq!(
            res.code(),
            "BAD_USER_INPUT",
            "{email} / {} / {name:?}: {}",
            password.len(),
            res.body
        );
        assert_eq!(res.body["errors"][0]["extensions"]["field"], field);
        assert!(!res.message().is_empty());
    }
    assert_eq!(
        app.user_count().await,
        0,
        "nothing may be stored for bad input"
    );
}

async fn register_cannot_choose_a_role(backend: Backend) {
    let app = spawn(backend).await;
    let res = app
        .gql(
            "mutation($i: RegisterInput!) { register(input: $i) { user { role } } }",
            json!({ "i": { "email": "eve@example.com", "password": PASSWORD, "displayName": "Eve", "role": "ADMIN" } }),
            None,
        )
        .await;
    assert!(
        res.body.get("errors").is_some(),
        "a role in the input must be refused: {}",
        res.body
    );
    assert_eq!(app.user_count().await, 0);

    let inline = app
        .gql(
            r#"mutation { register(input: { email: "eve@example.com", password: "correct horse battery staple", displayName: "Eve", role: ADMIN }) { user { role } } }"#,
            json!({}),
            None,
        )
        .await;
    assert_eq!(
        inline.code(),
        "GRAPHQL_VALIDATION_FAILED",
        "{}",
        inline.body
    );
    assert_eq!(app.user_count().await, 0);

    let ok = app.register("eve@example.com", PASSWORD, "Eve").await;
    assert_eq!(ok.ok()["register"]["user"]["role"], "GUEST");
}

async fn a_guest_cannot_list_users_or_set_roles_but_an_admin_can(backend: Backend) {
    let app = spawn(backend).await;
    let (_, guest_token, _, guest_id) = app.new_user().await;
    let set_role = "mutation($u: ID!, $r: Role!) { setUserRole(userId: $u, role: $r) { id role } }";

    let list = app
        .gql("{ users { totalCount } }", json!({}), Some(&guest_token))
        .await;
    assert_eq!(list.code(), "FORBIDDEN");
    let promote = app
        .gql(
            set_role,
            json!({ "u": guest_id, "r": "ADMIN" }),
            Some(&guest_token),
        )
        .await;
    assert_eq!(promote.code(), "FORBIDDEN");
    let anonymous = app.gql("{ users { totalCount } }", json!({}), None).await;
    assert_eq!(anonymous.code(), "UNAUTHENTICATED");

    let (admin_id, admin_token) = app.new_admin().await;
    let page = app
        .gql("{ users(first: 1) { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }", json!({}), Some(&admin_token))
        .await;
    assert_eq!(page.ok()["users"]["totalCount"], 2);
    assert_eq!(page.data()["users"]["pageInfo"]["hasNextPage"], true);
    let after = page.data()["users"]["pageInfo"]["endCursor"]
        .as_str()
        .unwrap();
    let next = app
        .gql("query($a: String) { users(first: 1, after: $a) { edges { node { id } } pageInfo { hasNextPage } } }", json!({ "a": after }), Some(&admin_token))
        .await;
    let ids = [
        page.data()["users"]["edges"][0]["node"]["id"].clone(),
        next.ok()["users"]["edges"][0]["node"]["id"].clone(),
    ];
    assert!(
        ids.contains(&json!(guest_id)) && ids.contains(&json!(admin_id)),
        "{ids:?}"
    );
    assert_eq!(next.data()["users"]["pageInfo"]["hasNextPage"], false);

    let bad_cursor = app
        .gql(
            "{ users(after: \"garbage!\") { totalCount } }",
            json!({}),
            Some(&admin_token),
        )
        .await;
    assert_eq!(bad_cursor.code(), "BAD_USER_INPUT");

    let promoted = app
        .gql(
            set_role,
            json!({ "u": guest_id, "r": "HOST" }),
            Some(&admin_token),
        )
        .await;
    assert_eq!(promoted.ok()["setUserRole"]["role"], "HOST");
    let own = app
        .gql(
            set_role,
            json!({ "u": admin_id, "r": "GUEST" }),
            Some(&admin_token),
        )
        .await;
    assert_eq!(
        own.code(),
        "BAD_USER_INPUT",
        "an admin cannot demote themselves"
    );
    let missing = app
        .gql(
            set_role,
            json!({ "u": uuid::Uuid::now_v7().to_string(), "r": "HOST" }),
            Some(&admin_token),
        )
        .await;
    assert_eq!(missing.code(), "NOT_FOUND");
}

async fn repeated_failures_for_one_account_are_rate_limited_whether_or_not_it_exists(
    backend: Backend,
) {
    let app = spawn(backend).await;
    let (email, ..) = app.new_user().await;
    let ghost = format!("ghost{}@example.com", uuid::Uuid::new_v4().simple());

    for target in [&email, &ghost] {
        for _ in 0..5 {
            assert_eq!(
                app.login(target, "wrong password here").await.code(),
                "UNAUTHENTICATED"
            );
        }
        let limited = app.login(target, "wrong password here").await;
        assert_eq!(limited.code(), "RATE_LIMITED", "{target}");
        assert!(
            limited.message().contains("minutes"),
            "{}",
            limited.message()
        );
    }
    // Even the right password waits out the window, or a guesser would learn when they hit it.
    assert_eq!(app.login(&email, PASSWORD).await.code(), "RATE_LIMITED");
}

async fn repeated_failures_from_one_address_are_rate_limited(backend: Backend) {
    let app = spawn_with(backend, |s| s.throttle.max_failures_per_ip = 3).await;
    let (email, ..) = app.new_user().await;
    for i in 0..3 {
        let other = format!("someone{i}{}@example.com", uuid::Uuid::new_v4().simple());
        assert_eq!(
            app.login(&other, "wrong password here").await.code(),
            "UNAUTHENTICATED"
        );
    }
    assert_eq!(app.login(&email, PASSWORD).await.code(), "RATE_LIMITED");

    // The same account from another client address is not limited by this address's failures.
    let elsewhere = app.login_from("192.0.2.77", &email, PASSWORD).await;
    assert!(elsewhere.ok()["login"]["user"]["id"].is_string());
}

async fn an_email_is_private_to_its_owner_and_admins(backend: Backend) {
    let app = spawn(backend).await;
    let (email, token, _, id) = app.new_user().await;
    let (_, other_token, ..) = app.new_user().await;
    let (_, admin_token) = app.new_admin().await;
    let q = "query($id: ID!) { user(id: $id) { displayName email } }";

    let own = app.gql(q, json!({ "id": id }), Some(&token)).await;
    assert_eq!(own.ok()["user"]["email"], email.as_str());
    let other = app.gql(q, json!({ "id": id }), Some(&other_token)).await;
    assert_eq!(other.code(), "FORBIDDEN");
    let public = app
        .gql(
            "query($id: ID!) { user(id: $id) { displayName } }",
            json!({ "id": id }),
            Some(&other_token),
        )
        .await;
    assert_eq!(public.ok()["user"]["displayName"], "Test User");
    let admin = app.gql(q, json!({ "id": id }), Some(&admin_token)).await;
    assert_eq!(admin.ok()["user"]["email"], email.as_str());
    let bad_id = app
        .gql(q, json!({ "id": "not-a-uuid" }), Some(&token))
        .await;
    assert_eq!(bad_id.code(), "BAD_USER_INPUT");
}
