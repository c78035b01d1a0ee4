//! Booking rules: what a valid stay is, what it costs, and what a cancellation gives back.
//! No GraphQL, no HTTP, no database.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::Error;

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    /// Dates held while the payment is authorized.
    Pending,
    Confirmed,
    Cancelled,
    /// The booking did not happen (declined, payments unavailable, hold expired); the dates
    /// are free again.
    Failed,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "CONFIRMED" => Self::Confirmed,
            "CANCELLED" => Self::Cancelled,
            "FAILED" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// The states that occupy the calendar (the exclusion constraint's `WHERE`).
pub const ACTIVE: [&str; 2] = ["PENDING", "CONFIRMED"];

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancellationPolicy {
    Flexible,
    Moderate,
    Strict,
}

/// Stays start at 15:00 UTC on the check-in date; cancellation windows count back from then.
pub const CHECK_IN_HOUR_UTC: u32 = 15;

impl CancellationPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flexible => "FLEXIBLE",
            Self::Moderate => "MODERATE",
            Self::Strict => "STRICT",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "FLEXIBLE" => Self::Flexible,
            "STRICT" => Self::Strict,
            _ => Self::Moderate,
        }
    }

    /// The percentage of the total refunded when cancelling `before` the stay starts:
    /// - FLEXIBLE: everything up to 24 hours before, nothing after;
    /// - MODERATE: everything up to 5 days before, half after;
    /// - STRICT: half up to 7 days before, nothing after.
    pub fn refund_percent(self, before: Duration) -> i64 {
        match self {
            Self::Flexible if before >= Duration::hours(24) => 100,
            Self::Flexible => 0,
            Self::Moderate if before >= Duration::days(5) => 100,
            Self::Moderate => 50,
            Self::Strict if before >= Duration::days(7) => 50,
            Self::Strict => 0,
        }
    }
}

/// When a stay starting on `check_in` begins.
pub fn stay_starts(check_in: NaiveDate) -> DateTime<Utc> {
    check_in
        .and_time(NaiveTime::from_hms_opt(CHECK_IN_HOUR_UTC, 0, 0).expect("valid time"))
        .and_utc()
}

/// What a cancellation at `now` gives back of `total` (rounded down to the minor unit).
pub fn refund_for(
    policy: CancellationPolicy,
    total: i64,
    check_in: NaiveDate,
    now: DateTime<Utc>,
) -> i64 {
    let before = stay_starts(check_in) - now;
    if before <= Duration::zero() {
        return 0;
    }
    total * policy.refund_percent(before) / 100
}

/// The limits a stay must respect.
#[derive(Debug, Clone, Copy)]
pub struct StayRules {
    pub max_nights: i64,
    pub max_days_ahead: i64,
}

/// Checks the dates and guest count; returns the number of nights.
pub fn validate_stay(
    check_in: NaiveDate,
    check_out: NaiveDate,
    guests: i32,
    today: NaiveDate,
    rules: StayRules,
) -> Result<i64, Error> {
    if check_in <= today {
        return Err(Error::invalid("checkIn", "check-in must be a future date"));
    }
    if check_out <= check_in {
        return Err(Error::invalid(
            "checkOut",
            "check-out must be after check-in",
        ));
    }
    if (check_in - today).num_days() > rules.max_days_ahead {
        return Err(Error::invalid(
            "checkIn",
            format!(
                "stays can be booked at most {} days ahead",
                rules.max_days_ahead
            ),
        ));
    }
    let nights = (check_out - check_in).num_days();
    if nights > rules.max_nights {
        return Err(Error::invalid(
            "checkOut",
            format!("a stay can be at most {} nights", rules.max_nights),
        ));
    }
    if guests < 1 {
        return Err(Error::invalid("guests", "at least one guest"));
    }
    Ok(nights)
}

/// The client's key for one booking attempt: 8–100 characters of `[A-Za-z0-9_-]` (a UUID fits).
pub fn validate_idempotency_key(key: &str) -> Result<(), Error> {
    let ok = (8..=100).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "idempotencyKey",
            "idempotencyKey must be 8–100 letters, digits, - or _ (a UUID works)",
        ))
    }
}

/// A Stripe payment-method id (`pm_…`); never card numbers.
pub fn validate_payment_method(pm: &str) -> Result<(), Error> {
    let ok = pm.starts_with("pm_")
        && pm.len() <= 255
        && pm.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "paymentMethod",
            "paymentMethod must be a Stripe payment-method id such as pm_card_visa",
        ))
    }
}

/// What a booking request asked for, so a repeated idempotency key with a different request
/// is told apart from a retry.
pub fn fingerprint(
    property: Uuid,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guests: i32,
    payment_method: &str,
) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "{property}|{check_in}|{check_out}|{guests}|{payment_method}"
    ));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn refunds_follow_each_policy_window() {
        let check_in = d("2027-03-10");
        let starts = stay_starts(check_in);
        let at = |h: i64| starts - Duration::hours(h);
        let total = 10_001;
        use CancellationPolicy::*;
        assert_eq!(refund_for(Flexible, total, check_in, at(24)), 10_001);
        assert_eq!(refund_for(Flexible, total, check_in, at(23)), 0);
        assert_eq!(refund_for(Moderate, total, check_in, at(5 * 24)), 10_001);
        assert_eq!(refund_for(Moderate, total, check_in, at(5 * 24 - 1)), 5_000);
        assert_eq!(refund_for(Strict, total, check_in, at(7 * 24)), 5_000);
        assert_eq!(refund_for(Strict, total, check_in, at(7 * 24 - 1)), 0);
        assert_eq!(
            refund_for(Moderate, total, check_in, at(-1)),
            0,
            "stay started"
        );
    }

    #[test]
    fn stays_must_be_future_ordered_and_bounded() {
        let today = d("2027-01-01");
        let rules = StayRules {
            max_nights: 30,
            max_days_ahead: 365,
        };
        assert_eq!(
            validate_stay(d("2027-01-02"), d("2027-01-05"), 2, today, rules).unwrap(),
            3
        );
        assert!(validate_stay(today, d("2027-01-05"), 2, today, rules).is_err());
        assert!(validate_stay(d("2027-01-05"), d("2027-01-05"), 2, today, rules).is_err());
        assert!(validate_stay(d("2027-01-02"), d("2027-02-02"), 2, today, rules).is_err());
        assert!(validate_stay(d("2028-06-01"), d("2028-06-02"), 2, today, rules).is_err());
        assert!(validate_stay(d("2027-01-02"), d("2027-01-03"), 0, today, rules).is_err());
    }

    #[test]
    fn keys_and_payment_methods_are_checked() {
        assert!(validate_idempotency_key("4b1f0f2e-7c1c-4a55-9a5e-0d9f1f7f9a10").is_ok());
        assert!(validate_idempotency_key("short").is_err());
        assert!(validate_idempotency_key("has space in it").is_err());
        assert!(validate_payment_method("pm_card_visa").is_ok());
        assert!(validate_payment_method("4242424242424242").is_err());
    }
}
