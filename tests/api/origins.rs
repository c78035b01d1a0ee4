//! Browser origins: the router's CORS and the subscription socket's `Origin` check allow the
//! web app's origins (by default its dev server and preview) and refuse every other page.

use draftr_common::testing::Backend;
use serde_json::json;

use crate::helpers::spawn;
use crate::ws::WsClient;

const APP: &str = "http://localhost:5173";
const FOREIGN: &str = "http://127.0.0.2:5173";

/// A preflight as a browser sends it before a JSON POST with a bearer token.
async fn preflight(client: &reqwest::Client, url: &str, origin: &str) -> reqwest::Response {
    client
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .send()
        .await
        .unwrap()
}

fn allowed_origin(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_lets_the_web_app_call_it_and_no_other_page() {
    let app = spawn(Backend::Sqlite).await;
    let client = reqwest::Client::new();

    let ok = preflight(&client, &app.router_url, APP).await;
    assert!(ok.status().is_success(), "{}", ok.status());
    assert_eq!(allowed_origin(&ok).as_deref(), Some(APP));
    assert!(
        ok.headers()
            .get("access-control-allow-credentials")
            .is_none(),
        "bearer tokens: no credentials mode"
    );
    let allowed_headers = ok
        .headers()
        .get("access-control-allow-headers")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .unwrap_or_default();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );

    let post = client
        .post(&app.router_url)
        .header("origin", APP)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed_origin(&post).as_deref(), Some(APP));

    for origin in [FOREIGN, "http://localhost:5173.evil.test", "null"] {
        let refused = preflight(&client, &app.router_url, origin).await;
        assert_eq!(
            allowed_origin(&refused),
            None,
            "{origin} may call the router"
        );
        let post = client
            .post(&app.router_url)
            .header("origin", origin)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(allowed_origin(&post), None, "{origin} may read answers");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_socket_refuses_pages_from_other_origins() {
    let app = spawn(Backend::Sqlite).await;
    let (_, token, _, _) = app.new_user().await;

    let foreign = WsClient::connect_from(&app.notifications_ws, Some(&token), Some(FOREIGN)).await;
    let err = foreign.err().expect("a foreign page opened the socket");
    assert!(err.contains("403"), "{err}");

    WsClient::connect_from(&app.notifications_ws, Some(&token), Some(APP))
        .await
        .expect("the web app opens the socket");
    // Not a browser (no Origin): the token alone decides, as before.
    WsClient::connect(&app.notifications_ws, Some(&token))
        .await
        .expect("a server-side client opens the socket");
}

/// The router's CORS default and the socket's are one setting: the same pattern in both.
#[test]
fn the_router_and_the_socket_default_to_the_same_origins() {
    let yaml: serde_json::Value = serde_yaml_value(draftr_router::ROUTER_YAML);
    let pattern = yaml["cors"]["policies"][0]["match_origins"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let default = pattern
        .strip_prefix("${env.DRAFTR_ALLOWED_ORIGINS:-")
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not an env default: {pattern}"));
    assert_eq!(
        default,
        draftr_notifications::config::DEFAULT_ALLOWED_ORIGINS
    );
}

fn serde_yaml_value(yaml: &str) -> serde_json::Value {
    serde_yaml::from_str(yaml).unwrap()
}
