//! Stripe, through async-stripe: PaymentIntents with manual capture, cancels and refunds.
//!
//! Each call carries the idempotency key it is given (`Idempotency-Key` header). A failure
//! Stripe did not execute (a connection error, a timeout, 409 for a concurrent request with
//! the key, 429) is retried a bounded number of times with that same key. async-stripe's own
//! retry strategies make a random key per call, which would not survive our process
//! restarting, so the loop is here and the key is ours.
//!
//! A 500 is different: Stripe stores it under the key like any other answer and replays it for
//! 24 hours, so repeating the call learns nothing, and once the key has expired the repeat
//! would run again (a second PaymentIntent). An unknown outcome is therefore settled by
//! looking: a capture, void or refund retrieves the PaymentIntent (or lists its refunds) by
//! the id Draftr stored and finishes under a fresh key only what did not happen; a lost
//! authorization is found by searching on the charge id in the metadata
//! ([`PaymentProvider::find_authorization`]).
//!
//! A PaymentIntent's metadata `reservation_id` holds the **charge id**: for the booking's own
//! payment that is the reservation's id, as it always was; a change's extra charge carries the
//! change's id there (so a search for one charge never finds the other) and names the
//! reservation in `CHANGE_OF` (`draftr_change_of`).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use stripe::{Client, ClientBuilder, RequestStrategy, StripeError};
use stripe::{IdempotencyKey, StripeRequest};
use stripe_core::payment_intent::{
    CancelPaymentIntent, CapturePaymentIntent, CreatePaymentIntent, RetrievePaymentIntent,
    SearchPaymentIntent,
};
use stripe_core::refund::{CreateRefund, ListRefund};
use stripe_shared::{
    PaymentIntent, PaymentIntentAllowedPaymentMethodTypes, PaymentIntentCaptureMethod,
    PaymentIntentStatus,
};
use uuid::Uuid;

use super::{Authorization, Charge, Found, PaymentProvider, ProviderError};

/// The metadata entry naming the reservation of a change's extra charge (whose
/// `reservation_id` entry holds the change's id).
const CHANGE_OF: &str = "draftr_change_of";

/// The metadata entry a refund carries with Draftr's key, so a refund whose answer was lost is
/// recognised among the PaymentIntent's refunds.
const REFUND_KEY: &str = "draftr_key";

pub struct StripeProvider {
    client: Client,
    attempts: u32,
    timeout: Duration,
    search_lag: Duration,
}

impl StripeProvider {
    /// `api_base` points the client at a Stripe stand-in (tests); `None` is Stripe itself.
    /// `search_lag`: how far Stripe's search may be behind its writes (see
    /// [`PaymentProvider::settle_after`]).
    pub fn new(
        secret_key: &SecretString,
        api_base: Option<&str>,
        timeout: Duration,
        attempts: u32,
        search_lag: Duration,
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
            timeout,
            search_lag,
        })
    }

    /// A read (no idempotency key: reads change nothing), retried like a write.
    async fn read<R: StripeRequest>(&self, request: R) -> Result<R::Output, StripeError>
    where
        R::Output: miniserde::Deserialize + Send,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match request.customize().send(&self.client).await {
                Err(err) if attempt < self.attempts && (retryable(&err) || server_error(&err)) => {
                    tracing::warn!(attempt, error = %err, "stripe read failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * (1 << (attempt - 1)))).await;
                }
                other => return other,
            }
        }
    }

    async fn intent(&self, provider_ref: &str) -> Result<PaymentIntent, ProviderError> {
        self.read(RetrievePaymentIntent::new(provider_ref))
            .await
            .map_err(classify)
    }

    /// Finishes a capture whose answer was a 500 (or "unexpected state"): looks at the
    /// PaymentIntent and captures under a fresh key only if it still holds the funds. A
    /// PaymentIntent is captured at most once whatever the key, so the fresh key cannot take
    /// money twice.
    async fn settle_capture(&self, provider_ref: &str, key: &str) -> Result<(), ProviderError> {
        match self.intent(provider_ref).await?.status {
            PaymentIntentStatus::Succeeded => Ok(()),
            PaymentIntentStatus::RequiresCapture => self
                .send(CapturePaymentIntent::new(provider_ref), &fresh(key))
                .await
                .map(|_| ())
                .map_err(classify),
            other => Err(ProviderError::Invalid(format!(
                "This PaymentIntent cannot be captured ({}).",
                other.as_str()
            ))),
        }
    }

    /// As [`StripeProvider::settle_capture`], for a void.
    async fn settle_cancel(&self, provider_ref: &str, key: &str) -> Result<(), ProviderError> {
        match self.intent(provider_ref).await?.status {
            PaymentIntentStatus::Canceled => Ok(()),
            PaymentIntentStatus::Succeeded => Err(ProviderError::Invalid(
                "This PaymentIntent was captured; refund it instead.".into(),
            )),
            _ => self
                .send(CancelPaymentIntent::new(provider_ref), &fresh(key))
                .await
                .map(|_| ())
                .map_err(classify),
        }
    }

    /// The refund made under `key`, if Stripe has it (listing is read-after-write consistent,
    /// unlike search).
    async fn refund_made(
        &self,
        provider_ref: &str,
        key: &str,
    ) -> Result<Option<String>, ProviderError> {
        let refunds = self
            .read(ListRefund::new().payment_intent(provider_ref).limit(100))
            .await
            .map_err(classify)?;
        Ok(refunds
            .data
            .into_iter()
            .find(|r| {
                r.metadata
                    .as_ref()
                    .and_then(|m| m.get(REFUND_KEY))
                    .is_some_and(|k| k == key)
            })
            .map(|r| r.id.to_string()))
    }

    fn create_refund(provider_ref: &str, amount: i64, key: &str) -> CreateRefund {
        CreateRefund::new()
            .payment_intent(provider_ref)
            .amount(amount)
            .metadata([(REFUND_KEY.to_owned(), key.to_owned())])
    }

    /// Creates the PaymentIntent of `charge` (manual capture), naming the reservation of a
    /// change's charge in its metadata.
    async fn create_intent(
        &self,
        charge: &Charge,
        change_of: Option<Uuid>,
        key: &str,
    ) -> Result<Authorization, ProviderError> {
        let currency = stripe_types::Currency::from_str(&charge.currency.to_ascii_lowercase())
            .map_err(|_| ProviderError::Invalid("unsupported currency".into()))?;
        let request = CreatePaymentIntent::new(charge.amount, currency)
            .payment_method(charge.payment_method.clone())
            .allowed_payment_method_types(vec![PaymentIntentAllowedPaymentMethodTypes::Card])
            .capture_method(PaymentIntentCaptureMethod::Manual)
            .confirm(true)
            .description(match change_of {
                None => format!("Draftr reservation {}", charge.reservation_id),
                Some(reservation) => format!(
                    "Draftr reservation {reservation} (change {})",
                    charge.reservation_id
                ),
            })
            .metadata(charge_metadata(charge, change_of));
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

/// A key for finishing, after a look, a step whose first key holds a stored 500.
fn fresh(key: &str) -> String {
    format!("{key}-{}", Uuid::new_v4().simple())
}

/// Failures Stripe did not store under the key, so repeating the key is meaningful: network
/// errors and timeouts (if the request did run, the repeat gets its stored answer), 409 (a
/// concurrent request with the key is still running) and 429. Not 5xx: Stripe stores those
/// and replays them.
fn retryable(err: &StripeError) -> bool {
    match err {
        StripeError::Stripe(_, status) => matches!(status, 409 | 429),
        StripeError::ClientError(_) | StripeError::Timeout => true,
        StripeError::JSONDeserialize(_) | StripeError::ConfigError(_) => false,
    }
}

fn server_error(err: &StripeError) -> bool {
    matches!(err, StripeError::Stripe(_, 500..=599))
}

/// An answer after which only a look at the PaymentIntent tells what happened: a stored 500,
/// or Stripe saying the object is not in the state the request expected (a concurrent or
/// earlier request already moved it).
fn needs_a_look(raw: StripeError) -> Result<ProviderError, ProviderError> {
    let unexpected_state = matches!(&raw, StripeError::Stripe(e, 400)
        if e.code.as_ref().is_some_and(|c| c.as_str() == "payment_intent_unexpected_state"));
    match classify(raw) {
        err @ ProviderError::Unknown(_) => Ok(err),
        err if unexpected_state => Ok(err),
        err => Err(err),
    }
}

fn classify(err: StripeError) -> ProviderError {
    match err {
        StripeError::Stripe(_, 429) => ProviderError::Unavailable(err.to_string()),
        StripeError::Stripe(e, status) if (400..500).contains(&status) && status != 409 => {
            ProviderError::Invalid(
                e.message
                    .clone()
                    .unwrap_or_else(|| format!("Stripe refused the request ({status})")),
            )
        }
        StripeError::ConfigError(_) => ProviderError::Unavailable(err.to_string()),
        // 409 (still running), 5xx (stored), a timeout or a broken connection after sending,
        // an unreadable answer: it may have happened.
        other => ProviderError::Unknown(other.to_string()),
    }
}

/// The booking's own charge: `reservation_id` = the reservation, as before charges. A change's:
/// `reservation_id` = the change (what [`PaymentProvider::find_authorization`] searches by),
/// and [`CHANGE_OF`] = the reservation.
fn charge_metadata(charge: &Charge, change_of: Option<Uuid>) -> HashMap<String, String> {
    let mut metadata = HashMap::from([(
        "reservation_id".to_owned(),
        charge.reservation_id.to_string(),
    )]);
    if let Some(reservation) = change_of {
        metadata.insert(CHANGE_OF.to_owned(), reservation.to_string());
    }
    metadata
}

/// What a PaymentIntent found by search says about its authorization.
fn found(intent: PaymentIntent) -> Found {
    let provider_ref = intent.id.to_string();
    match intent.status {
        PaymentIntentStatus::RequiresCapture => Found::Authorized { provider_ref },
        PaymentIntentStatus::Succeeded => Found::Captured { provider_ref },
        PaymentIntentStatus::Canceled => Found::Canceled { provider_ref },
        PaymentIntentStatus::RequiresAction => Found::Declined {
            code: "authentication_required".into(),
            message: "This card needs 3-D Secure authentication, which Draftr cannot do yet; use another card.".into(),
        },
        _ => {
            let error = intent.last_payment_error.as_deref();
            Found::Declined {
                code: error
                    .and_then(|e| {
                        e.decline_code
                            .clone()
                            .or_else(|| e.code.as_ref().map(|c| c.as_str().to_owned()))
                    })
                    .unwrap_or_else(|| "card_declined".into()),
                message: error
                    .and_then(|e| e.message.clone())
                    .unwrap_or_else(|| "Your card was declined.".into()),
            }
        }
    }
}

/// Which of several found authorizations counts: one that took or holds money first.
fn rank(f: &Found) -> u8 {
    match f {
        Found::Captured { .. } => 0,
        Found::Authorized { .. } => 1,
        Found::Canceled { .. } => 2,
        Found::Declined { .. } => 3,
    }
}

#[async_trait::async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn authorize(&self, charge: &Charge, key: &str) -> Result<Authorization, ProviderError> {
        self.create_intent(charge, None, key).await
    }

    async fn authorize_change(
        &self,
        charge: &Charge,
        reservation_id: Uuid,
        key: &str,
    ) -> Result<Authorization, ProviderError> {
        self.create_intent(charge, Some(reservation_id), key).await
    }

    async fn capture(&self, provider_ref: &str, key: &str) -> Result<(), ProviderError> {
        match self
            .send(CapturePaymentIntent::new(provider_ref), key)
            .await
        {
            Ok(_) => Ok(()),
            Err(raw) => {
                let err = needs_a_look(raw)?;
                tracing::warn!(payment_intent = provider_ref, error = %err, "capture outcome unknown; looking at the PaymentIntent");
                self.settle_capture(provider_ref, key).await
            }
        }
    }

    async fn cancel(&self, provider_ref: &str, key: &str) -> Result<(), ProviderError> {
        match self.send(CancelPaymentIntent::new(provider_ref), key).await {
            Ok(_) => Ok(()),
            Err(raw) => {
                let err = needs_a_look(raw)?;
                tracing::warn!(payment_intent = provider_ref, error = %err, "void outcome unknown; looking at the PaymentIntent");
                self.settle_cancel(provider_ref, key).await
            }
        }
    }

    async fn refund(
        &self,
        provider_ref: &str,
        amount: i64,
        key: &str,
    ) -> Result<String, ProviderError> {
        match self
            .send(Self::create_refund(provider_ref, amount, key), key)
            .await
        {
            Ok(refund) => Ok(refund.id.to_string()),
            Err(raw) => {
                let err = classify(raw);
                if !matches!(err, ProviderError::Unknown(_)) {
                    return Err(err);
                }
                tracing::warn!(payment_intent = provider_ref, error = %err, "refund outcome unknown; listing the PaymentIntent's refunds");
                if let Some(id) = self.refund_made(provider_ref, key).await? {
                    return Ok(id);
                }
                // Not made: make it under a fresh key, still marked with ours, so a lost answer
                // to this one is recognised the same way.
                self.send(Self::create_refund(provider_ref, amount, key), &fresh(key))
                    .await
                    .map(|refund| refund.id.to_string())
                    .map_err(classify)
            }
        }
    }

    async fn find_authorization(&self, charge_id: Uuid) -> Result<Option<Found>, ProviderError> {
        let query = format!("metadata['reservation_id']:'{charge_id}'");
        let results = self
            .read(SearchPaymentIntent::new(query).limit(10))
            .await
            .map_err(classify)?;
        if results.data.len() > 1 {
            tracing::warn!(charge.id = %charge_id, count = results.data.len(), "more than one PaymentIntent for one charge");
        }
        Ok(results.data.into_iter().map(found).min_by_key(rank))
    }

    /// An attempt lasts at most `attempts` timeouts plus the backoff between them; Stripe's
    /// search is typically less than a minute behind (it says up to an hour during its own
    /// outages), so the larger of the two and `search_lag`.
    fn settle_after(&self) -> Duration {
        let backoff: u64 = (0..self.attempts).map(|a| 200u64 << a).sum();
        let in_flight = self.timeout * self.attempts + Duration::from_millis(backoff);
        in_flight.max(self.search_lag)
    }
}
