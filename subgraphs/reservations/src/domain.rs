//! Booking rules: what a valid stay is, what it costs, what a cancellation gives back, and
//! the values a reservation's state is stored as.
//!
//! Everything here is a pure function of its arguments: no I/O, no clock, no database. The
//! status and policy enums derive `async_graphql::Enum` because the API shows exactly the
//! stored set; the database holds their `as_str()`, and reading back a value this build does
//! not know is an internal error, never a guess.

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
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::Confirmed,
        Self::Cancelled,
        Self::Failed,
    ];

    /// The value in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Cancelled => "CANCELLED",
            Self::Failed => "FAILED",
        }
    }

    /// Reads a stored `status`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown_stored("reservation status", s))
    }

    /// Whether a reservation in this state occupies the calendar.
    pub fn is_active(self) -> bool {
        ACTIVE.contains(&self)
    }
}

/// The states that occupy the calendar: the exclusion constraint's (and the SQLite triggers')
/// `status IN ('PENDING', 'CONFIRMED')`, so it must change with the migration.
pub const ACTIVE: [ReservationStatus; 2] =
    [ReservationStatus::Pending, ReservationStatus::Confirmed];

/// Why a booking failed, kept in `failure_code` so a repeat of the same idempotency key gets
/// the same answer, and sent in the `reservation.failed` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCode {
    /// Payments declined the card: nothing was authorized.
    PaymentDeclined,
    /// Payments could not be reached, so whether it authorized is unknown: compensated.
    PaymentUnavailable,
    /// The saga that held the dates went away and the reconciler released them.
    HoldExpired,
    /// Payments refused the payment method as invalid input.
    BadUserInput,
    /// Payments refused for a reason of its own.
    Internal,
}

impl FailureCode {
    pub const ALL: [Self; 5] = [
        Self::PaymentDeclined,
        Self::PaymentUnavailable,
        Self::HoldExpired,
        Self::BadUserInput,
        Self::Internal,
    ];

    /// The value in the `failure_code` column and the event's `failureCode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentDeclined => "PAYMENT_DECLINED",
            Self::PaymentUnavailable => "PAYMENT_UNAVAILABLE",
            Self::HoldExpired => "HOLD_EXPIRED",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Internal => "INTERNAL",
        }
    }

    /// Reads a stored `failure_code`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown_stored("failure code", s))
    }
}

/// Where a change of a stay is (`reservation_changes.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeStatus {
    /// Priced and recorded; an extra charge may be in flight.
    Pending,
    /// The stay has the new dates, guests and total.
    Applied,
    /// The stay was left exactly as it was.
    Failed,
}

impl ChangeStatus {
    pub const ALL: [Self; 3] = [Self::Pending, Self::Applied, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Applied => "APPLIED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown_stored("change status", s))
    }
}

/// Why a change failed, kept so a retry with the same idempotency key gets the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeFailure {
    /// Another booking or a block has one of the new nights.
    Conflict,
    /// The card was declined for the difference.
    PaymentDeclined,
    /// Payments could not be reached, or could not say whether it authorized: compensated.
    PaymentUnavailable,
    /// Payments refused the payment method as invalid input.
    BadUserInput,
    /// The stay was changed or cancelled by another request meanwhile.
    Superseded,
    /// The request that made it went away and the reconciler ended it.
    Expired,
    /// Payments refused for a reason of its own.
    Internal,
}

impl ChangeFailure {
    pub const ALL: [Self; 7] = [
        Self::Conflict,
        Self::PaymentDeclined,
        Self::PaymentUnavailable,
        Self::BadUserInput,
        Self::Superseded,
        Self::Expired,
        Self::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Conflict => "BOOKING_CONFLICT",
            Self::PaymentDeclined => "PAYMENT_DECLINED",
            Self::PaymentUnavailable => "PAYMENT_UNAVAILABLE",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Superseded => "SUPERSEDED",
            Self::Expired => "EXPIRED",
            Self::Internal => "INTERNAL",
        }
    }

    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown_stored("change failure code", s))
    }
}

/// What a change that lowers a stay's total gives back: the difference, refunded as if those
/// nights were cancelled now, under the stay's cancellation policy, with the notice counted
/// from the earliest check-in the stay has had (`notice_from`). A change that raises the total
/// charges the whole difference; one that keeps it refunds nothing.
pub fn change_refund(
    policy: CancellationPolicy,
    from_total: i64,
    to_total: i64,
    notice_from: NaiveDate,
    now: DateTime<Utc>,
) -> i64 {
    if to_total >= from_total {
        return 0;
    }
    refund_for(policy, from_total - to_total, notice_from, now)
}

/// A stable digest of a change request as the client sent it (absent fields included), so a
/// repeat of its idempotency key can be told from a different change under the same key.
pub fn change_fingerprint(
    check_in: Option<NaiveDate>,
    check_out: Option<NaiveDate>,
    guests: Option<i32>,
    payment_method: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "change|{check_in:?}|{check_out:?}|{guests:?}|{payment_method:?}"
    ));
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored value this build cannot read: the row was written by a newer build, or by hand.
fn unknown_stored(what: &str, value: &str) -> Error {
    Error::Internal(anyhow::anyhow!(
        "the database holds {what} {value:?}, which this build does not know"
    ))
}

#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancellationPolicy {
    Flexible,
    Moderate,
    Strict,
}

/// Stays start at 15:00 UTC on the check-in date; cancellation windows count back from then.
pub const CHECK_IN_HOUR_UTC: u32 = 15;

impl CancellationPolicy {
    pub const ALL: [Self; 3] = [Self::Flexible, Self::Moderate, Self::Strict];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flexible => "FLEXIBLE",
            Self::Moderate => "MODERATE",
            Self::Strict => "STRICT",
        }
    }

    /// Reads a stored `cancellation_policy`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| unknown_stored("cancellation policy", s))
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

/// The longest review comment and reply, in characters (after trimming).
pub const MAX_REVIEW_TEXT: usize = 2000;

/// Checks a review's rating (1–5) and comment (1–[`MAX_REVIEW_TEXT`] characters once trimmed);
/// returns the trimmed comment.
pub fn validate_review(rating: i32, comment: &str) -> Result<String, Error> {
    if !(1..=5).contains(&rating) {
        return Err(Error::invalid("rating", "rating must be from 1 to 5"));
    }
    Ok(review_text("comment", comment)?.to_owned())
}

/// A comment or reply: trimmed, not empty, at most [`MAX_REVIEW_TEXT`] characters.
pub fn review_text<'a>(field: &'static str, text: &'a str) -> Result<&'a str, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    if text.chars().count() > MAX_REVIEW_TEXT {
        return Err(Error::invalid(
            field,
            format!("{field} must be at most {MAX_REVIEW_TEXT} characters"),
        ));
    }
    Ok(text)
}

/// Whether a stay ending on `check_out` may be reviewed `today` (UTC, as stay rules count
/// days): from its check-out day until `window_days` days after it.
pub fn review_window(
    check_out: NaiveDate,
    today: NaiveDate,
    window_days: i64,
) -> Result<(), Error> {
    if today < check_out {
        return Err(Error::invalid(
            "reservationId",
            "a stay can be reviewed once it has ended (from its check-out day)",
        ));
    }
    if (today - check_out).num_days() > window_days {
        return Err(Error::invalid(
            "reservationId",
            format!("a stay can be reviewed up to {window_days} days after check-out"),
        ));
    }
    Ok(())
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
    fn a_lower_total_refunds_the_difference_by_the_policy_and_a_higher_one_nothing() {
        let check_in = d("2027-03-10");
        let at = |hours_before: i64| stay_starts(check_in) - Duration::hours(hours_before);
        use CancellationPolicy::*;
        // 30 000 → 20 000: the 10 000 difference, as if cancelled now.
        assert_eq!(
            change_refund(Flexible, 30_000, 20_000, check_in, at(48)),
            10_000
        );
        assert_eq!(
            change_refund(Moderate, 30_000, 20_000, check_in, at(48)),
            5_000
        );
        assert_eq!(change_refund(Strict, 30_000, 20_000, check_in, at(48)), 0);
        assert_eq!(
            change_refund(Strict, 30_000, 20_000, check_in, at(8 * 24)),
            5_000
        );
        // Same or higher totals refund nothing.
        assert_eq!(change_refund(Flexible, 30_000, 30_000, check_in, at(48)), 0);
        assert_eq!(change_refund(Flexible, 30_000, 40_000, check_in, at(48)), 0);
    }

    #[test]
    fn change_fingerprints_tell_requests_apart_including_absent_fields() {
        let a = change_fingerprint(Some(d("2027-03-01")), None, Some(2), None);
        assert_eq!(
            a,
            change_fingerprint(Some(d("2027-03-01")), None, Some(2), None)
        );
        assert_ne!(
            a,
            change_fingerprint(None, Some(d("2027-03-01")), Some(2), None)
        );
        assert_ne!(
            a,
            change_fingerprint(Some(d("2027-03-01")), None, None, None)
        );
        assert_ne!(
            a,
            change_fingerprint(Some(d("2027-03-01")), None, Some(2), Some("pm_card_visa"))
        );
        assert_eq!(a.len(), 64);
        for s in ChangeStatus::ALL {
            assert_eq!(ChangeStatus::parse(s.as_str()).unwrap(), s);
        }
        for f in ChangeFailure::ALL {
            assert_eq!(ChangeFailure::parse(f.as_str()).unwrap(), f);
        }
        assert!(ChangeStatus::parse("DONE").is_err());
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
    fn stored_values_read_back_as_written_and_unknown_ones_are_errors() {
        for status in ReservationStatus::ALL {
            assert_eq!(ReservationStatus::parse(status.as_str()).unwrap(), status);
        }
        for policy in CancellationPolicy::ALL {
            assert_eq!(CancellationPolicy::parse(policy.as_str()).unwrap(), policy);
        }
        for code in FailureCode::ALL {
            assert_eq!(FailureCode::parse(code.as_str()).unwrap(), code);
        }
        // What rows already hold: these strings must never change.
        let stored: Vec<_> = FailureCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            stored,
            [
                "PAYMENT_DECLINED",
                "PAYMENT_UNAVAILABLE",
                "HOLD_EXPIRED",
                "BAD_USER_INPUT",
                "INTERNAL"
            ]
        );
        let active: Vec<_> = ACTIVE.iter().map(|s| s.as_str()).collect();
        assert_eq!(active, ["PENDING", "CONFIRMED"], "the migration's WHERE");
        assert!(!ReservationStatus::Cancelled.is_active());

        for err in [
            ReservationStatus::parse("pending").unwrap_err(),
            ReservationStatus::parse("").unwrap_err(),
            CancellationPolicy::parse("LENIENT").unwrap_err(),
            FailureCode::parse("CARD_EXPIRED").unwrap_err(),
        ] {
            assert!(matches!(err, Error::Internal(_)), "{err:?}");
        }
        let Error::Internal(cause) = CancellationPolicy::parse("LENIENT").unwrap_err() else {
            unreachable!()
        };
        assert!(cause.to_string().contains("\"LENIENT\""), "{cause}");
    }

    #[test]
    fn keys_and_payment_methods_are_checked() {
        assert!(validate_idempotency_key("4b1f0f2e-7c1c-4a55-9a5e-0d9f1f7f9a10").is_ok());
        assert!(validate_idempotency_key("short").is_err());
        assert!(validate_idempotency_key("has space in it").is_err());
        assert!(validate_payment_method("pm_card_visa").is_ok());
        assert!(validate_payment_method("4242424242424242").is_err());
    }

    #[test]
    fn reviews_are_bounded_and_come_after_the_stay_within_the_window() {
        assert_eq!(validate_review(5, "  Lovely  ").unwrap(), "Lovely");
        assert!(validate_review(0, "ok").is_err());
        assert!(validate_review(6, "ok").is_err());
        assert!(validate_review(3, "   ").is_err());
        assert!(validate_review(3, &"é".repeat(MAX_REVIEW_TEXT)).is_ok());
        assert!(validate_review(3, &"é".repeat(MAX_REVIEW_TEXT + 1)).is_err());

        let out = d("2027-03-10");
        assert!(
            review_window(out, d("2027-03-09"), 14).is_err(),
            "before check-out"
        );
        assert!(review_window(out, out, 14).is_ok(), "check-out day");
        assert!(review_window(out, d("2027-03-24"), 14).is_ok(), "last day");
        assert!(review_window(out, d("2027-03-25"), 14).is_err(), "too late");
    }
}
