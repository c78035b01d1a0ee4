//! The payment provider interface: what the payments service needs from Stripe or its
//! simulation.
//!
//! Every operation takes an idempotency key derived from the charge (the reservation's id for
//! the booking's own payment, a change's id for a change's extra charge), and a provider must
//! treat a repeated key as "return the first outcome" (Stripe does, the simulation does). That
//! is what makes a retried call, a replayed saga step or a reconciler pass never charge twice.
//!
//! A repeated key is *not* how an unknown outcome is learned, though. Stripe stores whatever it
//! answered first under a key, a 500 included, and replays that for 24 hours; after that it
//! forgets the key, and the same request would create a second PaymentIntent. So an outcome
//! that is unknown ([`ProviderError::Unknown`]) is settled by looking: the PaymentIntent by the
//! id Draftr stored, or, for an authorization whose answer was lost, by the charge id in its
//! metadata ([`PaymentProvider::find_authorization`]).

pub mod simulated;
pub mod stripe;

use uuid::Uuid;

pub use simulated::SimulatedProvider;
pub use stripe::StripeProvider;

/// What to authorize.
#[derive(Debug, Clone)]
pub struct Charge {
    /// The **charge id**, what the authorization is found by (Stripe's metadata
    /// `reservation_id`): the reservation's id for the booking's own payment, a change's id for
    /// a change's extra charge (see [`PaymentProvider::authorize_change`]).
    pub reservation_id: Uuid,
    /// Minor units.
    pub amount: i64,
    /// ISO 4217, upper case.
    pub currency: String,
    /// A provider payment-method id (`pm_…`), never card data.
    pub payment_method: String,
}

/// The outcome of an authorization the provider processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// Funds are held; `provider_ref` is the provider's id for them (a PaymentIntent id).
    Authorized { provider_ref: String },
    /// The card was declined: a business outcome, not a failure.
    Declined { code: String, message: String },
}

/// What the provider holds for a charge, found by looking rather than by replaying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Funds are held (`requires_capture`).
    Authorized { provider_ref: String },
    /// Already captured (`succeeded`).
    Captured { provider_ref: String },
    /// Voided (`canceled`).
    Canceled { provider_ref: String },
    /// The card was declined (or needs an authentication Draftr cannot do).
    Declined { code: String, message: String },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider did not process the request (unreachable, rate limited): nothing happened,
    /// and the call may be made again.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The request may or may not have taken effect (a timeout after sending, a 500 from the
    /// provider). Repeating it with the same key does not tell: the outcome has to be looked
    /// up.
    #[error("payment provider outcome unknown: {0}")]
    Unknown(String),
    /// The request itself was refused (an unknown payment method, say).
    #[error("{0}")]
    Invalid(String),
}

/// A payment provider.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Recorded on each payment (`Payment.provider`).
    fn name(&self) -> &'static str;
    /// Holds `charge.amount` on the payment method (manual capture).
    async fn authorize(&self, charge: &Charge, key: &str) -> Result<Authorization, ProviderError>;
    /// As [`PaymentProvider::authorize`], for the extra charge of a change of the reservation
    /// `reservation_id` (`charge.reservation_id` is the change's id, so a lookup for the
    /// booking's charge never finds it). Stripe names the reservation in the metadata too.
    async fn authorize_change(
        &self,
        charge: &Charge,
        reservation_id: Uuid,
        key: &str,
    ) -> Result<Authorization, ProviderError> {
        let _ = reservation_id;
        self.authorize(charge, key).await
    }
    /// Takes the held funds.
    async fn capture(&self, provider_ref: &str, key: &str) -> Result<(), ProviderError>;
    /// Releases held funds that were never captured.
    async fn cancel(&self, provider_ref: &str, key: &str) -> Result<(), ProviderError>;
    /// Gives back `amount` of captured funds; returns the provider's refund id.
    async fn refund(
        &self,
        provider_ref: &str,
        amount: i64,
        key: &str,
    ) -> Result<String, ProviderError>;
    /// The authorization made for the charge `charge_id` ([`Charge::reservation_id`]), if the
    /// provider has one: how an authorization whose answer was lost is settled. Prefers one
    /// that holds or took money. Never one made for another charge of the same reservation.
    async fn find_authorization(&self, charge_id: Uuid) -> Result<Option<Found>, ProviderError>;
    /// How long after an attempt a "not found" from [`PaymentProvider::find_authorization`]
    /// can be trusted: longer than an attempt can still be in flight, and than the provider's
    /// lookup may lag behind its writes (Stripe's search does).
    fn settle_after(&self) -> std::time::Duration;
}

/// The idempotency key of one step of one charge's payment (`draftr-<charge>-authorize`, …;
/// for the booking's own payment the charge is the reservation).
pub fn idempotency_key(charge_id: Uuid, step: &str) -> String {
    format!("draftr-{charge_id}-{step}")
}

/// The key of one charge's part of the reservation's refund under `refund_key`: the
/// cancellation's (`cancel`) is `draftr-<charge>-refund`, as every refund was before refund
/// keys; another is `draftr-<charge>-refund-<key>`.
pub fn refund_idempotency_key(charge_id: Uuid, refund_key: &str) -> String {
    if refund_key == crate::domain::CANCEL_REFUND_KEY {
        idempotency_key(charge_id, "refund")
    } else {
        idempotency_key(charge_id, &format!("refund-{refund_key}"))
    }
}

/// The key of the `attempt`-th authorization of a charge (1-based). The first keeps the
/// plain `draftr-<id>-authorize`; a later one is made only once the earlier ones are known to
/// have created nothing, so a new key cannot make a second authorization.
pub fn authorize_key(charge_id: Uuid, attempt: i32) -> String {
    if attempt <= 1 {
        idempotency_key(charge_id, "authorize")
    } else {
        idempotency_key(charge_id, &format!("authorize-{attempt}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_booking_charge_keeps_its_keys_and_other_charges_and_refunds_get_their_own() {
        let r = Uuid::now_v7();
        assert_eq!(authorize_key(r, 1), format!("draftr-{r}-authorize"));
        assert_eq!(authorize_key(r, 2), format!("draftr-{r}-authorize-2"));
        assert_eq!(
            refund_idempotency_key(r, "cancel"),
            format!("draftr-{r}-refund")
        );
        assert_eq!(
            refund_idempotency_key(r, "change-1"),
            format!("draftr-{r}-refund-change-1")
        );
        let change = Uuid::now_v7();
        assert_ne!(authorize_key(change, 1), authorize_key(r, 1));
        assert_ne!(
            refund_idempotency_key(change, "cancel"),
            refund_idempotency_key(r, "cancel")
        );
    }
}
