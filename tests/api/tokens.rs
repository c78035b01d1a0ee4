//! Access and refresh tokens: revocation on every subgraph, rotation, reuse detection, and
//! forged or stale tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use draftr_common::Role;
use draftr_common::jwt::{Claims, SigningKey};
use draftr_common::test_on_both_backends;
use draftr_common::testing::Backend;
use serde_json::json;

use crate::helpers::{TestApp, spawn};

test_on_both_backends!(
    after_logout_the_access_token_fails_on_auth_and_on_a_second_subgraph,
    refresh_rotates_and_reusing_a_spent_refresh_token_ends_the_session,
    demoting_a_user_ends_their_sessions,
);

const REFRESH: &str = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken user { id email } } }";

async fn after_logout_the_access_token_fails_on_auth_and_on_a_second_subgraph(backend: Backend) {
    let app = spawn(backend).await;
    let (_, token, refresh, id) = app.new_user().await;
    assert_eq!(app.me(&token).await.ok()["me"]["id"], id.as_str());
    assert_eq!(app.whoami(&token).await.ok()["whoami"], id.as_str());

    let out = app
        .gql("mutation { logout }", json!({}), Some(&token))
        .await;
    assert_eq!(out.ok()["logout"], true);

    assert_eq!(app.me(&token).await.code(), "UNAUTHENTICATED");
    assert_eq!(app.whoami(&token).await.code(), "UNAUTHENTICATED");
    // Straight to the second subgraph, bypassing the router: still refused.
    let direct = app
        .post(&app.probe_url, "{ whoami }", json!({}), Some(&token), &[])
        .await;
    assert_eq!(direct.code(), "UNAUTHENTICATED");
    // The session's refresh token died with it.
    assert_eq!(
        app.gql(REFRESH, json!({ "t": refresh }), None).await.code(),
        "UNAUTHENTICATED"
    );
}

async fn refresh_rotates_and_reusing_a_spent_refresh_token_ends_the_session(backend: Backend) {
    let app = spawn(backend).await;
    let (_, first_access, first_refresh, id) = app.new_user().await;

    let rotated = app.gql(REFRESH, json!({ "t": first_refresh }), None).await;
    let payload = &rotated.ok()["refreshToken"];
    let second_access = payload["accessToken"].as_str().unwrap().to_owned();
    let second_refresh = payload["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(payload["user"]["id"], id.as_str());
    assert!(
        payload["user"]["email"].is_string(),
        "the owner sees their email in the payload"
    );
    assert_eq!(app.me(&second_access).await.ok()["me"]["id"], id.as_str());
    assert_eq!(app.whoami(&second_access).await.ok()["whoami"], id.as_str());

    // The first refresh token was spent: presenting it again means it was copied.
    let reuse = app.gql(REFRESH, json!({ "t": first_refresh }), None).await;
    assert_eq!(reuse.code(), "UNAUTHENTICATED");
    assert!(
        reuse.message().contains("already used"),
        "{}",
        reuse.message()
    );

    // The whole family is gone: the latest refresh token and every access token of the session.
    assert_eq!(
        app.gql(REFRESH, json!({ "t": second_refresh }), None)
            .await
            .code(),
        "UNAUTHENTICATED"
    );
    assert_eq!(app.me(&second_access).await.code(), "UNAUTHENTICATED");
    assert_eq!(app.me(&first_access).await.code(), "UNAUTHENTICATED");
    assert_eq!(app.whoami(&second_access).await.code(), "UNAUTHENTICATED");

    let garbage = app
        .gql(REFRESH, json!({ "t": "not-a-refresh-token" }), None)
        .await;
    assert_eq!(garbage.code(), "UNAUTHENTICATED");
}

async fn demoting_a_user_ends_their_sessions(backend: Backend) {
    let app = spawn(backend).await;
    let (_, admin_token) = app.new_admin().await;
    let (email, _, _, id) = app.new_user().await;
    let set_role = "mutation($u: ID!, $r: Role!) { setUserRole(userId: $u, role: $r) { role } }";
    app.gql(
        set_role,
        json!({ "u": id, "r": "ADMIN" }),
        Some(&admin_token),
    )
    .await
    .ok();
    let promoted = app.login(&email, crate::helpers::PASSWORD).await.ok()["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.gql("{ users { totalCount } }", json!({}), Some(&promoted))
            .await
            .ok()["users"]["totalCount"],
        2
    );

    app.gql(
        set_role,
        json!({ "u": id, "r": "GUEST" }),
        Some(&admin_token),
    )
    .await
    .ok();
    assert_eq!(
        app.gql("{ users { totalCount } }", json!({}), Some(&promoted))
            .await
            .code(),
        "UNAUTHENTICATED"
    );
}

fn claims(tweak: impl FnOnce(&mut Claims)) -> Claims {
    let now = chrono::Utc::now().timestamp();
    let mut c = Claims {
        sub: uuid::Uuid::now_v7(),
        sid: uuid::Uuid::now_v7(),
        role: Role::Admin,
        iss: "draftr-auth".into(),
        aud: "draftr".into(),
        iat: now,
        exp: now + 600,
        jti: uuid::Uuid::new_v4(),
    };
    tweak(&mut c);
    c
}

fn b64(v: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

async fn refused_everywhere(app: &TestApp, token: &str, what: &str) {
    let q = "{ users { totalCount } }";
    let via_router = app.gql(q, json!({}), Some(token)).await;
    assert_eq!(
        via_router.code(),
        "UNAUTHENTICATED",
        "{what} via router: {}",
        via_router.body
    );
    let probe = app.whoami(token).await;
    assert_eq!(
        probe.code(),
        "UNAUTHENTICATED",
        "{what} on the second subgraph: {}",
        probe.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_stale_tokens_are_refused_by_every_subgraph() {
    let app = spawn(Backend::Sqlite).await;

    // Sanity: the real key with good claims is accepted (so the refusals below mean something).
    let good = app.key.sign(&claims(|_| {})).unwrap();
    assert!(
        app.whoami(&good).await.body.get("errors").is_none(),
        "a correctly signed token must pass"
    );

    let payload = serde_json::to_value(claims(|_| {})).unwrap();
    let none = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none", "typ": "JWT" })),
        b64(&payload)
    );
    refused_everywhere(&app, &none, "alg none").await;

    let other_key = SigningKey::generate();
    let mut wrong_sig = other_key.sign(&claims(|_| {})).unwrap();
    // Same kid as the real key, so only the signature is wrong.
    let parts: Vec<&str> = wrong_sig.split('.').collect();
    let header = b64(&json!({ "alg": "EdDSA", "typ": "JWT", "kid": app.key.kid }));
    wrong_sig = format!("{header}.{}.{}", parts[1], parts[2]);
    refused_everywhere(&app, &wrong_sig, "wrong signature").await;

    // HS256 keyed with the public key, the classic algorithm-confusion attack.
    let x = match &app.key.jwk().algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(p) => p.x.clone(),
        _ => unreachable!(),
    };
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(app.key.kid.clone());
    let hs = jsonwebtoken::encode(
        &hs_header,
        &claims(|_| {}),
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
    )
    .unwrap();
    refused_everywhere(&app, &hs, "HS256 with the public key").await;

    let wrong_iss = app
        .key
        .sign(&claims(|c| c.iss = "someone-else".into()))
        .unwrap();
    refused_everywhere(&app, &wrong_iss, "wrong issuer").await;
    let wrong_aud = app
        .key
        .sign(&claims(|c| c.aud = "another-app".into()))
        .unwrap();
    refused_everywhere(&app, &wrong_aud, "wrong audience").await;
    let expired = app
        .key
        .sign(&claims(|c| {
            c.iat -= 3600;
            c.exp = chrono::Utc::now().timestamp() - 120;
        }))
        .unwrap();
    refused_everywhere(&app, &expired, "expired").await;
    refused_everywhere(&app, "Bearer-less garbage", "garbage").await;
}
