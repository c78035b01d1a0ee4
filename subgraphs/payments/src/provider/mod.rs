//! The payment provider interface: what the payments service needs from Stripe or its
//! simulation.
//!
//! Every operation takes an idempotency key derived from the reservation, and a provider must
//! treat a repeated key as "return the first outcome" (Stripe does, the simulation does). That
//! is what makes a retried call, a replayed saga step or a reconciler pass never charge twice.

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

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// Unreachable, timed out or failed on its side: the outcome is unknown, the same call
    /// (same idempotency key) may be repeated.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
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
}

/// The idempotency key of one step of one reservation's payment (`draftr-<id>-authorize`, …).
pub fn idempotency_key(reservation_id: Uuid, step: &str) -> String {
    format!("draftr-{reservation_id}-{step}")
}
