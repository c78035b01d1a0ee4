//! Reservations → catalog and reservations → payments: the saga's service calls.
//!
//! Both go through [`ServiceClient`] (timeouts, bounded retries, a circuit breaker per
//! dependency) with the service credential, to operations that are `@inaccessible` in the
//! supergraph. Every payments operation is keyed by the reservation id and idempotent, which
//! is what makes retrying them, and replaying them from the reconciler, safe.

use draftr_common::service_client::{CallError, CallPolicy, ServiceClient};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::CancellationPolicy;

/// What catalog says a booking of a property costs and allows.
#[derive(Debug, Clone)]
pub struct Quote {
    pub property_id: Uuid,
    pub title: String,
    pub host_id: Uuid,
    pub published: bool,
    pub nightly_rate: i64,
    pub currency: String,
    pub max_guests: i32,
    pub cancellation_policy: CancellationPolicy,
}

pub struct CatalogClient(ServiceClient);

fn malformed(service: &'static str, what: &str) -> CallError {
    CallError::Unavailable {
        service,
        reason: format!("malformed answer: {what}"),
    }
}

impl CatalogClient {
    pub fn new(
        url: String,
        token: Option<SecretString>,
        policy: CallPolicy,
    ) -> anyhow::Result<Self> {
        Ok(Self(ServiceClient::new("catalog", url, token, policy)?))
    }

    /// Counts calls and reports the breaker in `metrics` (see [`ServiceClient::with_metrics`]).
    pub fn with_metrics(self, metrics: &draftr_common::metrics::SubgraphMetrics) -> Self {
        Self(self.0.with_metrics(metrics))
    }

    /// `None` when the property does not exist.
    pub async fn quote(
        &self,
        property: Uuid,
        request_id: &str,
    ) -> Result<Option<Quote>, CallError> {
        let data = self
            .0
            .call(
                "query($id: ID!) { propertyQuote(id: $id) { propertyId title hostId status nightlyRate { amount currency } maxGuests cancellationPolicy } }",
                json!({ "id": property.to_string() }),
                request_id,
            )
            .await?;
        let q = &data["propertyQuote"];
        if q.is_null() {
            return Ok(None);
        }
        let uuid = |v: &Value| v.as_str().and_then(|s| Uuid::parse_str(s).ok());
        Ok(Some(Quote {
            property_id: uuid(&q["propertyId"])
                .ok_or_else(|| malformed("catalog", "propertyId"))?,
            title: q["title"].as_str().unwrap_or_default().to_owned(),
            host_id: uuid(&q["hostId"]).ok_or_else(|| malformed("catalog", "hostId"))?,
            published: q["status"] == "PUBLISHED",
            nightly_rate: q["nightlyRate"]["amount"]
                .as_i64()
                .ok_or_else(|| malformed("catalog", "nightlyRate"))?,
            currency: q["nightlyRate"]["currency"]
                .as_str()
                .ok_or_else(|| malformed("catalog", "currency"))?
                .to_owned(),
            max_guests: q["maxGuests"]
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| malformed("catalog", "maxGuests"))?,
            cancellation_policy: q["cancellationPolicy"]
                .as_str()
                .and_then(|p| CancellationPolicy::parse(p).ok())
                .ok_or_else(|| malformed("catalog", "cancellationPolicy"))?,
        }))
    }
}

/// A payment as payments reports it.
#[derive(Debug, Clone)]
pub struct PaymentInfo {
    pub id: Uuid,
    pub status: PaymentState,
}

/// A payment's status, in payments' own vocabulary (its `PaymentStatus` enum). A value outside
/// it is a malformed answer, never guessed at: the reconciler decides from it whether money is
/// held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Sent to the provider; the outcome is not known yet.
    Pending,
    Authorized,
    Captured,
    Canceled,
    Refunded,
    PartiallyRefunded,
    Failed,
}

impl PaymentState {
    const ALL: [Self; 7] = [
        Self::Pending,
        Self::Authorized,
        Self::Captured,
        Self::Canceled,
        Self::Refunded,
        Self::PartiallyRefunded,
        Self::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Authorized => "AUTHORIZED",
            Self::Captured => "CAPTURED",
            Self::Canceled => "CANCELED",
            Self::Refunded => "REFUNDED",
            Self::PartiallyRefunded => "PARTIALLY_REFUNDED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// The guest's money is authorized or taken: the booking it pays for can be confirmed.
    pub fn holds_money(self) -> bool {
        matches!(self, Self::Authorized | Self::Captured)
    }
}

pub struct PaymentsClient(ServiceClient);

const PAYMENT_FIELDS: &str = "id status";

fn payment_info(v: &Value) -> Result<Option<PaymentInfo>, CallError> {
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(PaymentInfo {
        id: v["id"]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| malformed("payments", "id"))?,
        status: v["status"]
            .as_str()
            .and_then(PaymentState::parse)
            .ok_or_else(|| malformed("payments", "status"))?,
    }))
}

fn required(v: &Value) -> Result<PaymentInfo, CallError> {
    payment_info(v)?.ok_or_else(|| malformed("payments", "no payment"))
}

/// What the saga asks payments to authorize.
#[derive(Debug, Clone)]
pub struct AuthorizeCall<'a> {
    pub reservation_id: Uuid,
    /// The charge this pays for: `None` for the booking itself (payments keys it by the
    /// reservation), a change's id for the difference a change costs.
    pub charge_id: Option<Uuid>,
    pub guest_id: Uuid,
    pub host_id: Uuid,
    pub amount: i64,
    pub currency: &'a str,
    pub payment_method: &'a str,
}

impl PaymentsClient {
    pub fn new(
        url: String,
        token: Option<SecretString>,
        policy: CallPolicy,
    ) -> anyhow::Result<Self> {
        Ok(Self(ServiceClient::new("payments", url, token, policy)?))
    }

    /// Counts calls and reports the breaker in `metrics` (see [`ServiceClient::with_metrics`]).
    pub fn with_metrics(self, metrics: &draftr_common::metrics::SubgraphMetrics) -> Self {
        Self(self.0.with_metrics(metrics))
    }

    pub async fn authorize(
        &self,
        call: AuthorizeCall<'_>,
        request_id: &str,
    ) -> Result<PaymentInfo, CallError> {
        let data = self
            .0
            .call(
                &format!("mutation($r: ID!, $g: ID!, $h: ID!, $a: Int!, $c: String!, $pm: String!, $k: ID) {{ authorizePayment(reservationId: $r, guestId: $g, hostId: $h, amount: $a, currency: $c, paymentMethod: $pm, chargeId: $k) {{ {PAYMENT_FIELDS} }} }}"),
                json!({
                    "r": call.reservation_id.to_string(),
                    "k": call.charge_id.map(|c| c.to_string()),
                    "g": call.guest_id.to_string(),
                    "h": call.host_id.to_string(),
                    "a": call.amount,
                    "c": call.currency,
                    "pm": call.payment_method,
                }),
                request_id,
            )
            .await?;
        required(&data["authorizePayment"])
    }

    /// Captures the booking's payment (`charge: None`) or a change's extra charge.
    pub async fn capture(
        &self,
        reservation: Uuid,
        charge: Option<Uuid>,
        request_id: &str,
    ) -> Result<PaymentInfo, CallError> {
        let data = self
            .0
            .call(
                &format!("mutation($r: ID!, $k: ID) {{ capturePayment(reservationId: $r, chargeId: $k) {{ {PAYMENT_FIELDS} }} }}"),
                json!({ "r": reservation.to_string(), "k": charge.map(|c| c.to_string()) }),
                request_id,
            )
            .await?;
        required(&data["capturePayment"])
    }

    /// Voids or fully refunds the booking's payment (`charge: None`) or a change's extra
    /// charge. An outcome payments does not know yet it looks up at the provider first.
    pub async fn cancel(
        &self,
        reservation: Uuid,
        charge: Option<Uuid>,
        request_id: &str,
    ) -> Result<Option<PaymentInfo>, CallError> {
        let data = self
            .0
            .call(
                &format!("mutation($r: ID!, $k: ID) {{ cancelPayment(reservationId: $r, chargeId: $k) {{ {PAYMENT_FIELDS} }} }}"),
                json!({ "r": reservation.to_string(), "k": charge.map(|c| c.to_string()) }),
                request_id,
            )
            .await?;
        payment_info(&data["cancelPayment"])
    }

    /// Refunds `amount` across the reservation's payments, once per `key` (`None`: the
    /// cancellation's refund; a change's id for what a change gives back).
    pub async fn refund(
        &self,
        reservation: Uuid,
        amount: i64,
        key: Option<Uuid>,
        request_id: &str,
    ) -> Result<PaymentInfo, CallError> {
        let data = self
            .0
            .call(
                &format!("mutation($r: ID!, $a: Int!, $k: String) {{ refundPayment(reservationId: $r, amount: $a, refundKey: $k) {{ {PAYMENT_FIELDS} }} }}"),
                json!({ "r": reservation.to_string(), "a": amount, "k": key.map(|c| c.to_string()) }),
                request_id,
            )
            .await?;
        required(&data["refundPayment"])
    }

    /// The booking's payment (`charge: None`) or a change's extra charge.
    pub async fn status(
        &self,
        reservation: Uuid,
        charge: Option<Uuid>,
        request_id: &str,
    ) -> Result<Option<PaymentInfo>, CallError> {
        let data = self
            .0
            .call(
                &format!("query($r: ID!, $k: ID) {{ paymentForReservation(reservationId: $r, chargeId: $k) {{ {PAYMENT_FIELDS} }} }}"),
                json!({ "r": reservation.to_string(), "k": charge.map(|c| c.to_string()) }),
                request_id,
            )
            .await?;
        payment_info(&data["paymentForReservation"])
    }
}

#[cfg(test)]
mod payment_state_tests {
    use super::*;

    #[test]
    fn payment_states_round_trip_and_unknown_ones_are_malformed() {
        for state in PaymentState::ALL {
            assert_eq!(PaymentState::parse(state.as_str()), Some(state));
        }
        assert_eq!(PaymentState::parse("AUTHORISED"), None);
        let answer = serde_json::json!({ "id": Uuid::nil().to_string(), "status": "SOMETHING" });
        assert!(matches!(
            payment_info(&answer),
            Err(CallError::Unavailable { .. })
        ));
        assert!(PaymentState::Captured.holds_money() && !PaymentState::Pending.holds_money());
    }
}
