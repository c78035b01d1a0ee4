//! Catalog → auth: telling auth that a user now hosts.
//!
//! Why a service call and not an event: becoming a HOST is a direct consequence of one
//! request, and the lister should see the new role at their next token refresh, not
//! "eventually". The call is idempotent (auth keeps a HOST or ADMIN as they are), so it goes
//! through [`ServiceClient`] with its timeout, retries and circuit breaker, to auth's
//! `@inaccessible` `promoteToHost` with the service credential. It is also failure-tolerant:
//! the listing is committed first; if auth cannot be reached or refuses, the caller logs it
//! and the next listing by the same user tries again. The role only gates host-facing views,
//! not what the user may do with their own listings.

use draftr_common::service_client::{CallError, CallPolicy, ServiceClient};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

const SERVICE: &str = "auth";

/// Auth's service operations catalog uses. Without a service credential there is nothing to
/// call with (auth refuses service operations without one), so every call fails at once.
pub struct AuthClient(Option<ServiceClient>);

impl AuthClient {
    pub fn new(
        url: String,
        token: Option<SecretString>,
        policy: CallPolicy,
    ) -> anyhow::Result<Self> {
        Ok(Self(match token {
            Some(token) => Some(ServiceClient::new(SERVICE, url, Some(token), policy)?),
            None => None,
        }))
    }

    /// Counts calls and reports the breaker in `metrics` (see [`ServiceClient::with_metrics`]).
    pub fn with_metrics(self, metrics: &draftr_common::metrics::SubgraphMetrics) -> Self {
        Self(self.0.map(|client| client.with_metrics(metrics)))
    }

    /// Tells auth that `user` now hosts a listing.
    pub async fn promote_to_host(&self, user: Uuid, request_id: &str) -> Result<(), CallError> {
        let Some(client) = &self.0 else {
            return Err(CallError::Unavailable {
                service: SERVICE,
                reason: "no service token configured".into(),
            });
        };
        let data = client
            .call(
                "mutation($u: ID!) { promoteToHost(userId: $u) { role } }",
                json!({ "u": user.to_string() }),
                request_id,
            )
            .await?;
        if data["promoteToHost"]["role"].is_string() {
            Ok(())
        } else {
            Err(CallError::Unavailable {
                service: SERVICE,
                reason: format!("malformed answer: no role in {data}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::Value;

    use super::*;

    /// An auth stand-in answering every call with `answer`, counting the calls.
    async fn auth_answering(answer: Value) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                async move { axum::Json(answer) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits)
    }

    fn token() -> Option<SecretString> {
        Some(SecretString::from("s3cret"))
    }

    #[tokio::test]
    async fn without_a_service_token_nothing_is_called() {
        let (url, hits) = auth_answering(json!({ "data": null })).await;
        let client = AuthClient::new(url, None, CallPolicy::default()).unwrap();
        let err = client
            .promote_to_host(Uuid::now_v7(), "r")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no service token"), "{err}");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_role_is_success_and_a_refusal_is_not_retried() {
        let (url, hits) =
            auth_answering(json!({ "data": { "promoteToHost": { "role": "HOST" } } })).await;
        let client = AuthClient::new(url, token(), CallPolicy::default()).unwrap();
        client.promote_to_host(Uuid::now_v7(), "r").await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        let (url, hits) = auth_answering(json!({
            "data": null,
            "errors": [{ "message": "user not found", "extensions": { "code": "NOT_FOUND" } }]
        }))
        .await;
        let client = AuthClient::new(url, token(), CallPolicy::default()).unwrap();
        let err = client
            .promote_to_host(Uuid::now_v7(), "r")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CallError::Refused { code, .. } if code == "NOT_FOUND"),
            "{err:?}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }
}
