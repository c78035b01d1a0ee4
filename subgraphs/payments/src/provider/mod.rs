//! The payment provider interface: what the payments service needs from Stripe or its
//! simulation.
//!
//! Every operation takes an idempotency key derived from the reservation, and a provider must
//! treat a repeated key as "return the first outcome" (Stripe does, the simulation does). That
//! is what makes a retried call, a replayed saga step or a reconciler pass never charge twice.
//!
//! A repeated key is *not* how an unknown outcome is learned, though. Stripe stores whatever it
//! answered first under a key, a 500 included, and replays that for 24 hours; after that it
//! forgets the key, and the same request would create a second PaymentIntent. So an outcome
//! that is unknown ([`ProviderError::Unknown`]) is settled by looking: the PaymentIntent by the
//! id Draftr stored, or, for an authorization whose answer was lost, by the reservation id in
//! its metadata ([`PaymentProvider::find_authorization`]).

pub mod simulated;
pub mod stripe;

use uuid::Uuid;

pub use simulated::SimulatedProvider;
pub use stripe::StripeProvider;

/// What to authorize.
#[derive(Debug, Clone)]
pub struct Charge {
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

/// What the provider holds for a reservation, found by looking rather than by replaying.
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
    /// The authorization made for `reservation_id`, if the provider has one: how an
    /// authorization whose answer was lost is settled. Prefers one that holds or took money.
    async fn find_authorization(
        &self,
        reservation_id: Uuid,
    ) -> Result<Option<Found>, ProviderError>;
    /// How long after an attempt a "not found" from [`PaymentProvider::find_authorization`]
    /// can be trusted: longer than an attempt can still be in flight, and than the provider's
    /// lookup may lag behind its writes (Stripe's search does).
    fn settle_after(&self) -> std::time::Duration;
}

/// The idempotency key of one step of one reservation's payment (`draftr-<id>-authorize`, …).
pub fn idempotency_key(reservation_id: Uuid, step: &str) -> String {
    format!("draftr-{reservation_id}-{step}")
}

/// The key of the `attempt`-th authorization of a reservation (1-based). The first keeps the
/// plain `draftr-<id>-authorize`; a later one is made only once the earlier ones are known to
/// have created nothing, so a new key cannot make a second authorization.
pub fn authorize_key(reservation_id: Uuid, attempt: i32) -> String {
    if attempt <= 1 {
        idempotency_key(reservation_id, "authorize")
    } else {
        idempotency_key(reservation_id, &format!("authorize-{attempt}"))
    }
}
