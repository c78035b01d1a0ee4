//! Stripe, through async-stripe: PaymentIntents with manual capture, cancels and refunds.
//!
//! Each call carries the idempotency key it is given (`Idempotency-Key` header) and is tried a
//! bounded number of times with that same key, so a timeout or a 500 from Stripe can be
//! retried without a second authorization, capture or refund: Stripe answers a repeated key
//! with the first response. async-stripe's own retry strategies make a random key per call,
//! which would not survive our process restarting, so the loop is here and the key is ours.

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use stripe::{Client, ClientBuilder, RequestStrategy, StripeError};
use stripe::{IdempotencyKey, StripeRequest};
use stripe_core::payment_intent::{CancelPaymentIntent, CapturePaymentIntent, CreatePaymentIntent};
use stripe_core::refund::CreateRefund;
use stripe_shared::{
    PaymentIntentAllowedPaymentMethodTypes, PaymentIntentCaptureMethod, PaymentIntentStatus,
};

use super::{Authorization, Charge, PaymentProvider, ProviderError};

pub struct StripeProvider {
    client: Client,
    attempts: u32,
}

impl StripeProvider {
    /// `api_base` points the client at a Stripe stand-in (tests); `None` is Stripe itself.
    pub fn new(
        secret_key: &SecretString,
        api_base: Option<&str>,
        timeout: Duration,
        attempts: u32,
    ) -> anyhow::Result<Self> {
        let mut builder = ClientBuilder::new(secret_key.expose_secret())
            .timeout(timeout)
            .app_info("draftr", Some(env!("CARGO_PKG_VERSION").to_owned()), None);
        if let Some(base) = api_base {
            builder = builder.url(base);
        }
        Ok(Self {
            client: builder.build()?,
            attempts: attempts.max(1),
        })
    }

    /// Sends `request` with `key`, repeating on failures Stripe calls retryable.
    async fn send<R: StripeRequest>(&self, request: R, key: &str) -> Result<R::Output, StripeError>
    where
        R::Output: miniserde::Deserialize + Send,
    {
        let key = IdempotencyKey::new(key).map_err(|e| StripeError::ClientError(e.to_string()))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = request
                .customize()
                .request_strategy(RequestStrategy::Idempotent(key.clone()))
                .send(&self.client)
                .await;
            match result {
                Err(err) if attempt < self.attempts && retryable(&err) => {
                    tracing::warn!(attempt, error = %err, "stripe call failed; retrying with the same idempotency key");
                    tokio::time::sleep(Duration::from_millis(200 * (1 << (attempt - 1)))).await;
                }
                other => return other,
            }
        }
    }
}

/// Stripe's transient failures: network errors, timeouts, 409 (a concurrent request with the
/// same key), 429 and 5xx.
fn retryable(err: &StripeError) -> bool {
    match err {
        StripeError::Stripe(_, status) => matches!(status, 409 | 429 | 500..=599),
        StripeError::ClientError(_) | StripeError::Timeout => true,
        StripeError::JSONDeserialize(_) | StripeError::ConfigError(_) => false,
    }
}

fn classify(err: StripeError) -> ProviderError {
    match err {
        StripeError::Stripe(e, status)
            if (400..500).contains(&status) && status != 409 && status != 429 =>
        {
            ProviderError::Invalid(
                e.message
                    .clone()
                    .unwrap_or_else(|| format!("Stripe refused the request ({status})")),
            )
        }
        other => ProviderError::Unavailable(other.to_string()),
    }
}

#[async_trait::async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn authorize(&self, charge: &Charge, key: &str) -> Result<Authorization, ProviderError> {
        let currency = stripe_types::Currency::from_str(&charge.currency.to_ascii_lowercase())
            .map_err(|_| ProviderError::Invalid("unsupported currency".into()))?;
        let request = CreatePaymentIntent::new(charge.amount, currency)
            .payment_method(charge.payment_method.clone())
            .allowed_payment_method_types(vec![PaymentIntentAllowedPaymentMethodTypes::Card])
            .capture_method(PaymentIntentCaptureMethod::Manual)
            .confirm(true)
            .description(format!("Draftr reservation {}", charge.reservation_id))
            .metadata([(
                "reservation_id".to_owned(),
                charge.reservation_id.to_string(),
            )]);
        match self.send(request, key).await {
            Ok(intent) => Ok(match intent.status {
                PaymentIntentStatus::RequiresCapture | PaymentIntentStatus::Succeeded => {
                    Authorization::Authorized {
                        provider_ref: intent.id.to_string(),
                    }
                }
                PaymentIntentStatus::RequiresAction => Authorization::Declined {
                    code: "authentication_required".into(),
                    message: "This card needs 3-D Secure authentication, which Draftr cannot do yet; use another card.".into(),
                },
                other => Authorization::Declined {
                    code: "card_declined".into(),
                    message: format!("The payment was not authorized ({}).", other.as_str()),
                },
            }),
            // A decline is a 402 card_error: an answer, not a failure.
            Err(StripeError::Stripe(e, 402)) => Ok(Authorization::Declined {
                code: e
                    .decline_code
                    .clone()
                    .or_else(|| e.code.as_ref().map(|c| c.as_str().to_owned()))
                    .unwrap_or_else(|| "card_declined".into()),
                message: e
                    .message
                    .clone()
                    .unwrap_or_else(|| "Your card was declined.".into()),
            }),
            Err(err) => Err(classify(err)),
        }
    }

    async fn capture(&self, provider_ref: &str, key: &str) -> Result<(), ProviderError> {
        self.send(CapturePaymentIntent::new(provider_ref), key)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn cancel(&self, provider_ref: &str, key: &str) -> Result<(), ProviderError> {
        self.send(CancelPaymentIntent::new(provider_ref), key)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn refund(
        &self,
        provider_ref: &str,
        amount: i64,
        key: &str,
    ) -> Result<String, ProviderError> {
        let request = CreateRefund::new()
            .payment_intent(provider_ref)
            .amount(amount);
        self.send(request, key)
            .await
            .map(|refund| refund.id.to_string())
            .map_err(classify)
    }
}
