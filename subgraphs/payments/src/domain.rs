//! The rules of a payment: its states, what a valid charge is, and what a refund leaves.
//!
//! [`PaymentStatus`] derives `async_graphql::Enum` so the API and the rules share one
//! definition (its variants are the API's `PaymentStatus` values); nothing else here knows
//! about GraphQL, the database or the provider.

use crate::error::Error;

// No doc comment on the enum itself: it would become the API type's description.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Sent to the provider; the outcome is not known yet.
    Pending,
    Authorized,
    Captured,
    Canceled,
    Refunded,
    PartiallyRefunded,
    Failed,
}

// Derived from the charge id (the reservation's for the booking's own payment, a change's for
// its extra charge), never stored apart. The doc comment is the API type's description.
/// What a payment pays for: the booking itself, or a change of its dates or guests.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentPurpose {
    /// The booking's own payment, made when it was booked.
    Booking,
    /// The extra charge of a change of dates or guests that raised the total.
    Change,
}

/// A stored status that is none of [`PaymentStatus`]'s: the row was not written by this code,
/// and guessing what it means could move money, so it is an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment status {0:?} in the database")]
pub struct UnknownStatus(pub String);

impl PaymentStatus {
    pub const ALL: [Self; 7] = [
        Self::Pending,
        Self::Authorized,
        Self::Captured,
        Self::Canceled,
        Self::Refunded,
        Self::PartiallyRefunded,
        Self::Failed,
    ];

    /// As stored in `payments.status` (and the same as the API's value).
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

    /// Reads a stored status; anything [`Self::as_str`] does not write is an error.
    pub fn parse(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }

    /// The status once `refunded` of `amount` has been given back (`0 < refunded <= amount`).
    pub fn after_refund(refunded: i64, amount: i64) -> Self {
        if refunded == amount {
            Self::Refunded
        } else {
            Self::PartiallyRefunded
        }
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a repeated authorization of a declined payment answers when the decline was recorded
/// without a code or message.
pub const DEFAULT_DECLINE_CODE: &str = "card_declined";
pub const DEFAULT_DECLINE_MESSAGE: &str = "Your card was declined.";

/// An amount to authorize, in minor units: more than zero.
pub fn amount(amount: i64) -> Result<i64, Error> {
    if amount <= 0 {
        return Err(Error::invalid("amount", "the amount must be positive"));
    }
    Ok(amount)
}

/// An ISO 4217 code as reservations sends it: three upper-case letters, taken as given (no
/// trimming or case folding, so what is stored is what was asked for).
pub fn currency(currency: &str) -> Result<&str, Error> {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::invalid(
            "currency",
            "the currency must be an ISO 4217 code such as EUR",
        ));
    }
    Ok(currency)
}

/// A provider payment-method id (`pm_…`), never card data.
pub fn payment_method(pm: &str) -> Result<&str, Error> {
    if !pm.starts_with("pm_")
        || pm.len() > 255
        || !pm.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(Error::invalid(
            "paymentMethod",
            "paymentMethod must be a Stripe payment-method id such as pm_card_visa",
        ));
    }
    Ok(pm)
}

/// The refund key of a cancellation's refund, and of every refund made before refund keys.
pub const CANCEL_REFUND_KEY: &str = "cancel";

/// The longest refund key.
pub const MAX_REFUND_KEY: usize = 64;

/// A refund key names one refund of a reservation (idempotent per reservation and key):
/// 1 to 64 of `A-Z a-z 0-9 _ -`, as given.
pub fn refund_key(key: &str) -> Result<&str, Error> {
    if key.is_empty()
        || key.len() > MAX_REFUND_KEY
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::invalid(
            "refundKey",
            format!("refundKey must be 1 to {MAX_REFUND_KEY} letters, digits, '_' or '-'"),
        ));
    }
    Ok(key)
}

/// One part of a refund: `amount` from the payment `payment_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundPart {
    pub payment_id: uuid::Uuid,
    pub amount: i64,
}

/// What is left to do of a refund of `amount` under one key: `done` is what the parts already
/// recorded under that key gave back; `open` are the payments without a part under that key
/// yet that hold refundable money, newest first, as `(payment id, amount - refunded)`. Each
/// gives at most what is left on it, newest first. A repeat (or a retry after a crash) plans
/// only what is missing, the same way each time. More than can be given back is an error on
/// `amount`.
pub fn plan_refund(
    amount: i64,
    done: i64,
    open: &[(uuid::Uuid, i64)],
) -> Result<Vec<RefundPart>, Error> {
    if amount < 0 {
        return Err(Error::invalid("amount", "a refund cannot be negative"));
    }
    if done > amount {
        return Err(Error::invalid(
            "amount",
            format!("this refund key already refunded {done}, more than {amount}"),
        ));
    }
    let available: i64 = open.iter().map(|(_, left)| (*left).max(0)).sum();
    if amount - done > available {
        return Err(Error::invalid(
            "amount",
            format!(
                "a refund must be between 0 and {}",
                done.saturating_add(available)
            ),
        ));
    }
    let mut left = amount - done;
    let mut parts = Vec::new();
    for &(payment_id, refundable) in open {
        if left == 0 {
            break;
        }
        let take = left.min(refundable.max(0));
        if take > 0 {
            parts.push(RefundPart {
                payment_id,
                amount: take,
            });
            left -= take;
        }
    }
    Ok(parts)
}

/// What the provider's report that `total_refunded` has been refunded changes about a payment
/// of `amount` of which `refunded` was already recorded: the new refunded total and status, or
/// nothing when the report is not news (a late or repeated one never lowers the total).
pub fn reported_refund(
    total_refunded: i64,
    amount: i64,
    refunded: i64,
) -> Option<(i64, PaymentStatus)> {
    let total = total_refunded.clamp(0, amount);
    (total > refunded).then(|| (total, PaymentStatus::after_refund(total, amount)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_byte_for_byte_and_unknown_ones_are_errors() {
        let stored = [
            "PENDING",
            "AUTHORIZED",
            "CAPTURED",
            "CANCELED",
            "REFUNDED",
            "PARTIALLY_REFUNDED",
            "FAILED",
        ];
        for (status, text) in PaymentStatus::ALL.into_iter().zip(stored) {
            assert_eq!(status.as_str(), text);
            assert_eq!(status.to_string(), text);
            assert_eq!(PaymentStatus::parse(text), Ok(status));
        }
        for unknown in ["", "pending", "CANCELLED", "REFUNDED ", "SETTLED"] {
            assert_eq!(
                PaymentStatus::parse(unknown),
                Err(UnknownStatus(unknown.to_owned())),
                "{unknown:?} must not read as a status"
            );
        }
    }

    #[test]
    fn charges_are_validated_as_given() {
        assert_eq!(amount(1).unwrap(), 1);
        for bad in [0, -1, i64::MIN] {
            let err = amount(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        field: "amount",
                        ..
                    }
                ),
                "{err}"
            );
        }
        assert_eq!(currency("EUR").unwrap(), "EUR");
        for bad in ["eur", "EURO", "EU", "", " EUR", "E1R", "ÉUR"] {
            let err = currency(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        field: "currency",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
        assert_eq!(payment_method("pm_card_visa").unwrap(), "pm_card_visa");
        let long = format!("pm_{}", "a".repeat(253));
        assert!(payment_method(&long).is_err(), "256 characters");
        assert!(payment_method(&long[..255]).is_ok(), "255 characters");
        for bad in ["card_visa", "pm_card visa", "pm_card-visa", "PM_card", ""] {
            let err = payment_method(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        field: "paymentMethod",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refunds_are_bounded_by_the_payment() {
        let p = uuid::Uuid::now_v7();
        assert_eq!(plan_refund(100, 0, &[(p, 100)]).unwrap().len(), 1);
        let err = plan_refund(101, 0, &[(p, 100)]).unwrap_err();
        assert_eq!(err.to_string(), "a refund must be between 0 and 100");
        assert!(plan_refund(-1, 0, &[(p, 100)]).is_err());
        assert_eq!(
            PaymentStatus::after_refund(100, 100),
            PaymentStatus::Refunded
        );
        assert_eq!(
            PaymentStatus::after_refund(40, 100),
            PaymentStatus::PartiallyRefunded
        );
    }

    #[test]
    fn refund_keys_are_short_and_plain() {
        assert_eq!(refund_key("cancel").unwrap(), "cancel");
        assert_eq!(refund_key("change-01J_x").unwrap(), "change-01J_x");
        assert!(refund_key(&"k".repeat(64)).is_ok(), "64 characters");
        for bad in ["", " cancel", "a b", "key/1", "clé", &"k".repeat(65)] {
            let err = refund_key(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        field: "refundKey",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_refund_takes_from_the_newest_payment_first_and_only_what_is_missing() {
        let (change, booking) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let part = |payment_id, amount| RefundPart { payment_id, amount };
        let open = [(change, 10_000), (booking, 30_000)];
        assert_eq!(
            plan_refund(15_000, 0, &open).unwrap(),
            [part(change, 10_000), part(booking, 5_000)]
        );
        assert_eq!(plan_refund(5_000, 0, &open).unwrap(), [part(change, 5_000)]);
        assert_eq!(plan_refund(0, 0, &open).unwrap(), []);
        // The change's part is recorded; a retry plans the booking's part alone.
        assert_eq!(
            plan_refund(15_000, 10_000, &open[1..]).unwrap(),
            [part(booking, 5_000)]
        );
        assert_eq!(plan_refund(15_000, 15_000, &[]).unwrap(), []);
        assert_eq!(
            plan_refund(10_000, 0, &[(change, 0), (booking, 30_000)]).unwrap(),
            [part(booking, 10_000)],
            "a payment with nothing left gives nothing"
        );
        let err = plan_refund(40_001, 0, &open).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    field: "amount",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(err.to_string(), "a refund must be between 0 and 40000");
        assert!(plan_refund(-1, 0, &open).is_err());
        assert!(plan_refund(5_000, 10_000, &open).is_err(), "already more");
    }

    #[test]
    fn a_reported_refund_only_ever_raises_the_total() {
        use PaymentStatus::*;
        assert_eq!(reported_refund(40, 100, 0), Some((40, PartiallyRefunded)));
        assert_eq!(reported_refund(100, 100, 40), Some((100, Refunded)));
        assert_eq!(
            reported_refund(500, 100, 40),
            Some((100, Refunded)),
            "capped"
        );
        assert_eq!(reported_refund(40, 100, 40), None, "a repeat");
        assert_eq!(reported_refund(20, 100, 40), None, "a late report");
        assert_eq!(reported_refund(-5, 100, 0), None);
    }
}
