//! Catalog → auth service calls.
//!
//! Why a service call and not an event: becoming a HOST is a direct consequence of one
//! request, and the lister should see the new role at their next token refresh, not "eventually".
//! The call is idempotent and failure-tolerant. The listing is committed first. If auth cannot be
//! reached, the failure is logged and the next listing by the same user tries again; the
//! role only gates host-facing views, not what the user may do with their own listings.

use std::time::Duration;

use draftr_common::http::SERVICE_TOKEN;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

pub struct AuthClient {
    url: String,
    token: Option<SecretString>,
    http: reqwest::Client,
}

impl AuthClient {
    pub fn new(url: String, token: Option<SecretString>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .build()?;
        Ok(Self { url, token, http })
    }

    /// Tells auth that `user` now hosts a listing; two attempts.
    pub async fn promote_to_host(&self, user: Uuid, request_id: &str) -> anyhow::Result<()> {
        let token = self
            .token
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no service token configured"))?;
        let body = serde_json::json!({
            "query": "mutation($u: ID!) { promoteToHost(userId: $u) { role } }",
            "variables": { "u": user.to_string() },
        });
        let mut last = None;
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let sent = self
                .http
                .post(&self.url)
                .header(SERVICE_TOKEN, token.expose_secret())
                .header("x-request-id", request_id)
                .json(&body)
                .send()
                .await;
            match sent {
                Ok(res) => {
                    let json: serde_json::Value = res.json().await?;
                    if json["data"]["promoteToHost"]["role"].is_string() {
                        return Ok(());
                    }
                    last = Some(anyhow::anyhow!(
                        "auth refused: {}",
                        json["errors"][0]["message"]
                    ));
                }
                Err(e) => last = Some(e.into()),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }
}
