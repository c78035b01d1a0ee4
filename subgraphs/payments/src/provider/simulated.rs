//! A payment provider without a network, for the embedded default, demos and tests.
//!
//! It honours Stripe's documented test payment methods (`pm_card_visa` succeeds,
//! `pm_card_chargeDeclined…` decline with Stripe's codes, unknown ids are refused), keeps
//! Stripe's PaymentIntent state machine (requires_capture → succeeded | canceled; refunds only
//! of captured funds, never more than captured), and replays by idempotency key like Stripe.
//! It counts what it really did, so tests can assert "exactly one authorization and one
//! capture" however often a step was retried. Its lookup by charge
//! ([`PaymentProvider::find_authorization`]) is consistent at once, unlike Stripe's search.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use uuid::Uuid;

use super::{Authorization, Charge, Found, PaymentProvider, ProviderError};

/// Stripe test payment methods that succeed.
const ACCEPTED: &[&str] = &[
    "pm_card_visa",
    "pm_card_visa_debit",
    "pm_card_mastercard",
    "pm_card_mastercard_debit",
    "pm_card_mastercard_prepaid",
    "pm_card_amex",
    "pm_card_discover",
    "pm_card_diners",
    "pm_card_jcb",
    "pm_card_unionpay",
];

/// Stripe test payment methods that decline, with Stripe's code and message.
const DECLINED: &[(&str, &str, &str)] = &[
    (
        "pm_card_chargeDeclined",
        "card_declined",
        "Your card was declined.",
    ),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    (
        "pm_card_chargeDeclinedLostCard",
        "card_declined",
        "Your card was declined.",
    ),
    (
        "pm_card_chargeDeclinedStolenCard",
        "card_declined",
        "Your card was declined.",
    ),
    (
        "pm_card_chargeDeclinedFraudulent",
        "card_declined",
        "Your card was declined.",
    ),
    (
        "pm_card_chargeDeclinedExpiredCard",
        "expired_card",
        "Your card has expired.",
    ),
    (
        "pm_card_chargeDeclinedIncorrectCvc",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
    (
        "pm_card_chargeDeclinedProcessingError",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    (
        "pm_card_authenticationRequired",
        "authentication_required",
        "This card needs 3-D Secure authentication, which Draftr cannot do yet; use another card.",
    ),
];

/// Where a test can stall an operation, to simulate a crash at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stall {
    /// The authorization takes effect, then the answer never comes back.
    AfterAuthorize,
    /// The capture never happens and never answers.
    BeforeCapture,
    /// The refund takes effect, then the answer never comes back.
    AfterRefund,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntentStatus {
    RequiresCapture,
    Succeeded,
    Canceled,
}

#[derive(Debug)]
struct Intent {
    /// The charge id ([`Charge::reservation_id`]), what
    /// [`PaymentProvider::find_authorization`] looks for (Stripe's metadata `reservation_id`).
    charge_id: Uuid,
    amount: i64,
    status: IntentStatus,
    refunded: i64,
}

#[derive(Default)]
struct State {
    intents: HashMap<String, Intent>,
    /// Declines by charge (Stripe keeps a declined PaymentIntent too).
    declined: HashMap<Uuid, (String, String)>,
    /// Idempotency key → the first outcome, replayed for every repeat.
    authorizations: HashMap<String, Authorization>,
    refunds: HashMap<String, String>,
    next_id: u64,
}

/// What the simulated provider really did (repeats of an idempotency key not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub authorizations: u64,
    pub declines: u64,
    pub captures: u64,
    pub cancels: u64,
    pub refunds: u64,
    /// Refund requests received, repeats of a key and failures included.
    pub refund_calls: u64,
}

#[derive(Default)]
pub struct SimulatedProvider {
    state: Mutex<State>,
    authorizations: AtomicU64,
    declines: AtomicU64,
    captures: AtomicU64,
    cancels: AtomicU64,
    refunds: AtomicU64,
    refund_calls: AtomicU64,
    outage: AtomicBool,
    stalls: Mutex<HashSet<Stall>>,
    /// PaymentIntents whose refunds fail as if the provider were unreachable.
    refusing_refunds: Mutex<HashSet<String>>,
}

impl SimulatedProvider {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counts(&self) -> Counts {
        Counts {
            authorizations: self.authorizations.load(Ordering::SeqCst),
            declines: self.declines.load(Ordering::SeqCst),
            captures: self.captures.load(Ordering::SeqCst),
            cancels: self.cancels.load(Ordering::SeqCst),
            refunds: self.refunds.load(Ordering::SeqCst),
            refund_calls: self.refund_calls.load(Ordering::SeqCst),
        }
    }

    /// While on, every call fails as if the provider were unreachable.
    pub fn set_outage(&self, on: bool) {
        self.outage.store(on, Ordering::SeqCst);
    }

    /// While on, refunds of `provider_ref` fail as if the provider were unreachable (nothing is
    /// refunded): a refund of several payments that fails half way.
    pub fn refuse_refunds_of(&self, provider_ref: &str, on: bool) {
        let mut refusing = self.refusing_refunds.lock().expect("refusals lock");
        if on {
            refusing.insert(provider_ref.to_owned());
        } else {
            refusing.remove(provider_ref);
        }
    }

    /// Makes calls hang at `point` (until the task running them is dropped).
    pub fn stall(&self, point: Stall, on: bool) {
        let mut stalls = self.stalls.lock().expect("stalls lock");
        if on {
            stalls.insert(point);
        } else {
            stalls.remove(&point);
        }
    }

    /// The captured amount still held for `provider_ref` (for tests and the demo).
    pub fn net_captured(&self, provider_ref: &str) -> Option<i64> {
        let state = self.state.lock().expect("state lock");
        state.intents.get(provider_ref).map(|i| match i.status {
            IntentStatus::Succeeded => i.amount - i.refunded,
            _ => 0,
        })
    }

    async fn stall_at(&self, point: Stall) {
        let stalled = self.stalls.lock().expect("stalls lock").contains(&point);
        if stalled {
            std::future::pending::<()>().await;
        }
    }

    fn available(&self) -> Result<(), ProviderError> {
        if self.outage.load(Ordering::SeqCst) {
            Err(ProviderError::Unavailable(
                "simulated outage (connection refused)".into(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl PaymentProvider for SimulatedProvider {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn authorize(&self, charge: &Charge, key: &str) -> Result<Authorization, ProviderError> {
        self.available()?;
        let outcome = {
            let mut state = self.state.lock().expect("state lock");
            if let Some(first) = state.authorizations.get(key) {
                first.clone()
            } else {
                let pm = charge.payment_method.as_str();
                let outcome = if ACCEPTED.contains(&pm) {
                    state.next_id += 1;
                    let provider_ref = format!("pi_sim_{:016}", state.next_id);
                    state.intents.insert(
                        provider_ref.clone(),
                        Intent {
                            charge_id: charge.reservation_id,
                            amount: charge.amount,
                            status: IntentStatus::RequiresCapture,
                            refunded: 0,
                        },
                    );
                    self.authorizations.fetch_add(1, Ordering::SeqCst);
                    Authorization::Authorized { provider_ref }
                } else if let Some((_, code, message)) = DECLINED.iter().find(|d| d.0 == pm) {
                    self.declines.fetch_add(1, Ordering::SeqCst);
                    state.declined.insert(
                        charge.reservation_id,
                        ((*code).to_owned(), (*message).to_owned()),
                    );
                    Authorization::Declined {
                        code: (*code).to_owned(),
                        message: (*message).to_owned(),
                    }
                } else {
                    return Err(ProviderError::Invalid(format!(
                        "No such PaymentMethod: '{pm}'. Use a Stripe payment-method id such as pm_card_visa."
                    )));
                };
                state.authorizations.insert(key.to_owned(), outcome.clone());
                outcome
            }
        };
        self.stall_at(Stall::AfterAuthorize).await;
        Ok(outcome)
    }

    async fn capture(&self, provider_ref: &str, _key: &str) -> Result<(), ProviderError> {
        self.available()?;
        self.stall_at(Stall::BeforeCapture).await;
        let mut state = self.state.lock().expect("state lock");
        let intent = state.intents.get_mut(provider_ref).ok_or_else(|| {
            ProviderError::Invalid(format!("No such payment_intent: {provider_ref}"))
        })?;
        match intent.status {
            IntentStatus::RequiresCapture => {
                intent.status = IntentStatus::Succeeded;
                self.captures.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            // Stripe answers a replayed capture with the first response.
            IntentStatus::Succeeded => Ok(()),
            IntentStatus::Canceled => Err(ProviderError::Invalid(
                "This PaymentIntent was canceled and cannot be captured.".into(),
            )),
        }
    }

    async fn cancel(&self, provider_ref: &str, _key: &str) -> Result<(), ProviderError> {
        self.available()?;
        let mut state = self.state.lock().expect("state lock");
        let intent = state.intents.get_mut(provider_ref).ok_or_else(|| {
            ProviderError::Invalid(format!("No such payment_intent: {provider_ref}"))
        })?;
        match intent.status {
            IntentStatus::RequiresCapture => {
                intent.status = IntentStatus::Canceled;
                self.cancels.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            IntentStatus::Canceled => Ok(()),
            IntentStatus::Succeeded => Err(ProviderError::Invalid(
                "This PaymentIntent was captured; refund it instead.".into(),
            )),
        }
    }

    async fn refund(
        &self,
        provider_ref: &str,
        amount: i64,
        key: &str,
    ) -> Result<String, ProviderError> {
        self.refund_calls.fetch_add(1, Ordering::SeqCst);
        self.available()?;
        if self
            .refusing_refunds
            .lock()
            .expect("refusals lock")
            .contains(provider_ref)
        {
            return Err(ProviderError::Unavailable(
                "simulated refund failure (connection refused)".into(),
            ));
        }
        let id = self.make_refund(provider_ref, amount, key)?;
        self.stall_at(Stall::AfterRefund).await;
        Ok(id)
    }

    async fn find_authorization(&self, charge_id: Uuid) -> Result<Option<Found>, ProviderError> {
        self.available()?;
        let state = self.state.lock().expect("state lock");
        let held = state
            .intents
            .iter()
            .filter(|(_, i)| i.charge_id == charge_id)
            .map(|(id, i)| {
                let provider_ref = id.clone();
                match i.status {
                    IntentStatus::Succeeded => (0, Found::Captured { provider_ref }),
                    IntentStatus::RequiresCapture => (1, Found::Authorized { provider_ref }),
                    IntentStatus::Canceled => (2, Found::Canceled { provider_ref }),
                }
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, found)| found);
        Ok(held.or_else(|| {
            state
                .declined
                .get(&charge_id)
                .map(|(code, message)| Found::Declined {
                    code: code.clone(),
                    message: message.clone(),
                })
        }))
    }

    /// No network and a consistent lookup: an attempt is over within moments.
    fn settle_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs(5)
    }
}

impl SimulatedProvider {
    /// A refund under `key`, or the one made under it before.
    fn make_refund(
        &self,
        provider_ref: &str,
        amount: i64,
        key: &str,
    ) -> Result<String, ProviderError> {
        let mut state = self.state.lock().expect("state lock");
        if let Some(id) = state.refunds.get(key) {
            return Ok(id.clone());
        }
        let intent = state.intents.get_mut(provider_ref).ok_or_else(|| {
            ProviderError::Invalid(format!("No such payment_intent: {provider_ref}"))
        })?;
        if intent.status != IntentStatus::Succeeded {
            return Err(ProviderError::Invalid(
                "Only captured payments can be refunded.".into(),
            ));
        }
        if amount <= 0 || intent.refunded + amount > intent.amount {
            return Err(ProviderError::Invalid(format!(
                "Refund amount ({amount}) is greater than the unrefunded amount ({}).",
                intent.amount - intent.refunded
            )));
        }
        intent.refunded += amount;
        state.next_id += 1;
        let id = format!("re_sim_{:016}", state.next_id);
        state.refunds.insert(key.to_owned(), id.clone());
        self.refunds.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn charge(pm: &str) -> Charge {
        Charge {
            reservation_id: Uuid::new_v4(),
            amount: 10_000,
            currency: "EUR".into(),
            payment_method: pm.into(),
        }
    }

    #[tokio::test]
    async fn a_repeated_key_replays_the_first_authorization() {
        let p = SimulatedProvider::new();
        let c = charge("pm_card_visa");
        let a = p.authorize(&c, "k1").await.unwrap();
        let b = p.authorize(&c, "k1").await.unwrap();
        assert_eq!(a, b);
        assert_eq!(p.counts().authorizations, 1);
    }

    #[tokio::test]
    async fn stripe_test_cards_decline_with_stripe_codes() {
        let p = SimulatedProvider::new();
        let out = p
            .authorize(&charge("pm_card_chargeDeclinedInsufficientFunds"), "k")
            .await
            .unwrap();
        assert!(
            matches!(out, Authorization::Declined { code, .. } if code == "insufficient_funds")
        );
        let unknown = p.authorize(&charge("pm_nope"), "k2").await;
        assert!(matches!(unknown, Err(ProviderError::Invalid(_))));
    }

    #[tokio::test]
    async fn refunds_never_exceed_what_was_captured() {
        let p = SimulatedProvider::new();
        let Authorization::Authorized { provider_ref } =
            p.authorize(&charge("pm_card_visa"), "k").await.unwrap()
        else {
            panic!("visa authorizes")
        };
        assert!(
            p.refund(&provider_ref, 100, "r0").await.is_err(),
            "not captured yet"
        );
        p.capture(&provider_ref, "c").await.unwrap();
        p.capture(&provider_ref, "c").await.unwrap();
        assert_eq!(p.counts().captures, 1);
        assert!(p.refund(&provider_ref, 10_001, "r1").await.is_err());
        p.refund(&provider_ref, 4_000, "r2").await.unwrap();
        p.refund(&provider_ref, 4_000, "r2").await.unwrap();
        assert_eq!(p.net_captured(&provider_ref), Some(6_000));
        assert!(
            p.cancel(&provider_ref, "x").await.is_err(),
            "captured: refund instead"
        );
    }
}
