//! `POST /webhooks/stripe`: Stripe telling us what happened to a PaymentIntent.
//!
//! The signature (`Stripe-Signature`: HMAC-SHA256 over `timestamp.raw_body` with the endpoint
//! secret, at most 300 s old) is checked by async-stripe-webhook on the raw body, before
//! anything is parsed or stored. Each event id is recorded and the event applied in one
//! transaction, on its first delivery only: Stripe delivers at least once and retries for days,
//! and a failure (or a crash) before the commit leaves nothing recorded, so the retry applies it.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use stripe_webhook::{EventObject, Webhook};

use crate::service::{PaymentService, ProviderUpdate, WebhookOutcome};

pub const PATH: &str = "/webhooks/stripe";

struct WebhookState {
    service: Arc<PaymentService>,
    secret: Option<SecretString>,
}

pub fn routes(service: Arc<PaymentService>, secret: Option<SecretString>) -> Router {
    Router::new()
        .route(PATH, post(receive))
        .with_state(Arc::new(WebhookState { service, secret }))
}

fn refuse(reason: &'static str) -> Response {
    tracing::warn!(reason, "stripe webhook refused");
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": reason })),
    )
        .into_response()
}

async fn receive(
    State(state): State<Arc<WebhookState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(secret) = &state.secret else {
        return refuse("no webhook secret is configured");
    };
    let Some(signature) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return refuse("missing Stripe-Signature header");
    };
    let event = match Webhook::construct_event(&body, signature, secret.expose_secret()) {
        Ok(event) => event,
        Err(stripe_webhook::WebhookError::BadTimestamp(_)) => {
            return refuse("signature timestamp outside the 300 s tolerance");
        }
        Err(stripe_webhook::WebhookError::BadParse(_)) => return refuse("unreadable event"),
        Err(_) => return refuse("invalid signature"),
    };
    let event_id = event.id.to_string();
    let kind = event.type_.as_str().to_owned();
    let update = match &event.data.object {
        EventObject::PaymentIntentSucceeded(pi) => {
            Some((pi.id.to_string(), ProviderUpdate::Captured))
        }
        EventObject::PaymentIntentCanceled(pi) => {
            Some((pi.id.to_string(), ProviderUpdate::Canceled))
        }
        _ => None,
    };
    let received = state
        .service
        .receive_webhook(
            &event_id,
            &kind,
            update.as_ref().map(|(r, u)| (r.as_str(), *u)),
        )
        .await;
    match received {
        Ok(WebhookOutcome::Duplicate) => {
            tracing::info!(event.id = %event_id, event.kind = %kind, "stripe webhook already processed");
            return axum::Json(json!({ "received": true, "duplicate": true })).into_response();
        }
        Ok(WebhookOutcome::Applied(payment)) => tracing::info!(
            event.id = %event_id,
            event.kind = %kind,
            payment.status = payment.as_ref().map(|p| p.status.as_str()).unwrap_or("unknown"),
            "stripe webhook processed"
        ),
        Err(err) => {
            // Nothing was recorded (one transaction), so Stripe's retry processes it.
            tracing::error!(error = ?err, event.id = %event_id, "stripe webhook failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    }
    axum::Json(json!({ "received": true, "duplicate": false })).into_response()
}
