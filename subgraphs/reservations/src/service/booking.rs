//! Booking: the quote, and the saga [`ReservationService::create`]: quote → hold → authorize →
//! confirm → capture, with the answer to a repeated idempotency key.
//!
//! When payments cannot say whether the card was authorized (the provider answered a 500, or
//! timed out), the hold stays PENDING and the guest is told to retry with the same key: the
//! retry resumes this very reservation, payments looks the authorization up at the provider,
//! and the booking finishes with one PaymentIntent and one charge. A guest who does not
//! retry hears from the reconciler, which settles the hold once it is stale.
//!
//! The price always comes from catalog, never from the client, and the dates are held before
//! the card is touched, so losing a race for them costs nothing.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use draftr_common::ErrorCode;
use draftr_common::db::is_deadlock;
use draftr_common::metrics::BookingOutcome;
use draftr_common::service_client::CallError;
use sea_orm::Set;
use uuid::Uuid;

use super::{BookingRequest, PricedStay, Reservation, ReservationService};
use crate::clients::{AuthorizeCall, PaymentInfo, Quote};
use crate::domain::{self, FailureCode, ReservationStatus};
use crate::error::Error;
use crate::store::{self, Change, HoldError, queries, reservations};

/// What the guest is told when payments cannot be reached to authorize: the hold is released
/// at once rather than kept waiting on a dependency that is down.
const UNAVAILABLE: &str = "payments are unavailable right now, so nothing was charged and the dates were released; please try again in a moment";

/// What the guest is told when the provider's answer was lost: the dates stay held.
const OUTCOME_UNKNOWN: &str = "the payment provider has not confirmed your payment yet; retry with the same idempotencyKey to finish this booking (you are never charged twice), or wait for the confirmation";

impl ReservationService {
    /// Prices a stay from catalog's current rate and checks it can be booked.
    pub async fn quote(
        &self,
        property_id: Uuid,
        check_in: NaiveDate,
        check_out: NaiveDate,
        guests: i32,
        request_id: &str,
    ) -> Result<PricedStay, Error> {
        let nights = domain::validate_stay(
            check_in,
            check_out,
            guests,
            Utc::now().date_naive(),
            self.stay_rules(),
        )?;
        let quote = self.catalog_quote(property_id, request_id).await?;
        let priced = price(&quote, check_in, check_out, guests, nights)?;
        let free = self
            .calendar(&[(property_id, check_in, check_out)])
            .await?
            .values()
            .all(|r| r.is_empty());
        Ok(PricedStay {
            available: free,
            ..priced
        })
    }

    /// The booking saga. A repeat with the same idempotency key returns the first attempt's
    /// reservation (or its error) and never charges again. Every answer is counted by outcome
    /// (`draftr_bookings_total`).
    pub async fn create(
        self: &Arc<Self>,
        guest: Uuid,
        req: BookingRequest,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        let result = self.book(guest, req, request_id).await;
        self.metrics.booking(outcome(&result));
        result
    }

    async fn book(
        self: &Arc<Self>,
        guest: Uuid,
        req: BookingRequest,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        domain::validate_idempotency_key(&req.idempotency_key)?;
        domain::validate_payment_method(&req.payment_method)?;
        let nights = domain::validate_stay(
            req.check_in,
            req.check_out,
            req.guests,
            Utc::now().date_naive(),
            self.stay_rules(),
        )?;
        let fingerprint = domain::fingerprint(
            req.property_id,
            req.check_in,
            req.check_out,
            req.guests,
            &req.payment_method,
        );
        if let Some(first) = queries::by_key(&self.db, guest, &req.idempotency_key).await? {
            return self.replay(first, &fingerprint, request_id).await;
        }

        // Quote: the price comes from catalog, never from the client.
        let quote = self.catalog_quote(req.property_id, request_id).await?;
        if quote.host_id == guest {
            return Err(Error::invalid(
                "propertyId",
                "you cannot book your own property",
            ));
        }
        let stay = price(&quote, req.check_in, req.check_out, req.guests, nights)?;

        // Hold: the database refuses an overlapping active reservation, so of any number of
        // concurrent requests for the same dates exactly one gets here.
        let held = match self.hold(guest, &req, &quote, &stay, &fingerprint).await {
            Ok(r) => r,
            // A concurrent retry of this very attempt holds the dates: that is a replay, not a
            // conflict (SQLite's trigger fires before the unique key is checked).
            Err(HoldError::Overlap) => {
                return match queries::by_key(&self.db, guest, &req.idempotency_key).await? {
                    Some(first) => self.replay(first, &fingerprint, request_id).await,
                    None => Err(Error::BookingConflict),
                };
            }
            Err(HoldError::SameKey) => {
                let first = queries::by_key(&self.db, guest, &req.idempotency_key)
                    .await?
                    .ok_or(Error::NotFound)?;
                return self.replay(first, &fingerprint, request_id).await;
            }
            Err(HoldError::Db(e)) => return Err(e.into()),
        };
        tracing::info!(reservation.id = %held.id, property.id = %held.property_id, "dates held");

        self.finish(held, request_id).await
    }

    /// The answer to a repeated idempotency key: the same reservation or the same error; a
    /// reservation still PENDING (its payment's outcome was unknown, or its first request is
    /// still running) is carried on from where it is.
    async fn replay(
        self: &Arc<Self>,
        first: Reservation,
        fingerprint: &str,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        let first = replayed(first, fingerprint)?;
        if ReservationStatus::parse(&first.status)? == ReservationStatus::Pending {
            tracing::info!(reservation.id = %first.id, "retry of a pending booking; resuming it");
            return self.finish(first, request_id).await;
        }
        Ok(first)
    }

    /// Authorize → confirm → capture for a held reservation.
    async fn finish(
        self: &Arc<Self>,
        held: Reservation,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        // Authorize.
        let payment = match self.authorize(&held, request_id).await {
            Ok(p) => p,
            Err(CallError::Refused { code, .. })
                if code == ErrorCode::PaymentOutcomeUnknown.as_str() =>
            {
                // The provider's answer was lost and cannot be looked up yet: keep the dates
                // (the guest may well have been charged) and let a retry, or the reconciler,
                // settle it.
                tracing::warn!(reservation.id = %held.id, "authorization outcome unknown; the hold stays");
                return Err(Error::PaymentUnavailable(OUTCOME_UNKNOWN));
            }
            Err(CallError::Refused { code, message, .. }) => {
                let (failure, err) = refusal::<FailureCode>(&code, message);
                // Declined: nothing was authorized, nothing to compensate.
                self.fail(held.id, failure, false).await?;
                return Err(err);
            }
            Err(CallError::Unavailable { reason, .. }) => {
                tracing::warn!(reservation.id = %held.id, error = %reason, "payments unavailable; compensating");
                // The authorization may have happened: release the dates now, and void it in
                // the background (the reconciler retries until payments answers), so the
                // guest hears back without waiting on a dependency that is down.
                self.fail(held.id, FailureCode::PaymentUnavailable, true)
                    .await?;
                let service = Arc::clone(self);
                let (id, request_id) = (held.id, request_id.to_owned());
                tokio::spawn(async move { service.compensate(id, &request_id).await });
                return Err(Error::PaymentUnavailable(UNAVAILABLE));
            }
        };

        // Confirm, with the event, in one transaction.
        if !self.confirm(held.id, payment.id).await? {
            let now = self.require(held.id).await?;
            if ReservationStatus::parse(&now.status)? == ReservationStatus::Confirmed {
                // A concurrent retry of this booking (or the reconciler) confirmed it first.
                return Ok(now);
            }
            // The reconciler released the hold meanwhile (a very slow authorization).
            self.mark_compensation(held.id).await?;
            self.compensate(held.id, request_id).await;
            return Err(Error::PaymentUnavailable(
                "the booking took too long and the dates were released; nothing was charged, please try again",
            ));
        }
        tracing::info!(reservation.id = %held.id, "reservation confirmed");

        // Capture. A failure here is not the guest's problem: the booking stands and the
        // reconciler captures later.
        self.capture(held.id, request_id).await;
        self.require(held.id).await
    }

    /// Catalog's current terms for the property; [`Error::PropertyNotFound`] if it has none.
    pub(super) async fn catalog_quote(
        &self,
        property: Uuid,
        request_id: &str,
    ) -> Result<Quote, Error> {
        self.catalog
            .quote(property, request_id)
            .await
            .map_err(catalog_error)?
            .ok_or(Error::PropertyNotFound)
    }

    /// Inserts the PENDING hold at the server's price.
    async fn hold(
        &self,
        guest: Uuid,
        req: &BookingRequest,
        quote: &Quote,
        stay: &PricedStay,
        fingerprint: &str,
    ) -> Result<Reservation, HoldError> {
        let now = Utc::now();
        let row = reservations::ActiveModel {
            id: Set(Uuid::now_v7()),
            property_id: Set(req.property_id),
            property_title: Set(quote.title.chars().take(200).collect()),
            guest_id: Set(guest),
            host_id: Set(quote.host_id),
            check_in: Set(req.check_in),
            check_out: Set(req.check_out),
            guests: Set(req.guests),
            nights: Set(stay.nights as i32),
            total_amount: Set(stay.total),
            currency: Set(stay.currency.clone()),
            cancellation_policy: Set(stay.cancellation_policy.as_str().into()),
            status: Set(ReservationStatus::Pending.as_str().into()),
            idempotency_key: Set(req.idempotency_key.clone()),
            request_fingerprint: Set(fingerprint.to_owned()),
            payment_method: Set(req.payment_method.clone()),
            payment_id: Set(None),
            captured: Set(false),
            compensation_pending: Set(false),
            refund_amount: Set(None),
            failure_code: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            cancelled_at: Set(None),
            policy_check_in: Set(None),
        };
        store::insert_hold(&self.db, row, req.property_id).await
    }

    /// Asks payments to authorize the hold's total. Keyed by the reservation id, so the
    /// reconciler repeating it for a hold whose answer was lost learns the first outcome.
    pub(super) async fn authorize(
        &self,
        held: &Reservation,
        request_id: &str,
    ) -> Result<PaymentInfo, CallError> {
        self.payments
            .authorize(authorize_call(held), request_id)
            .await
    }

    /// PENDING → CONFIRMED and the `reservation.confirmed` event, atomically. `false` if the
    /// reservation was no longer PENDING.
    pub(super) async fn confirm(&self, id: Uuid, payment_id: Uuid) -> Result<bool, Error> {
        // Confirming writes a new version of an active row, which PostgreSQL checks against
        // the exclusion constraint again; racing inserts of overlapping holds can then deadlock
        // with it. The losing side is retried (the inserts are retried the same way).
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.confirm_once(id, payment_id).await {
                Err(Error::Db(e)) if attempt < 5 && is_deadlock(&e) => {
                    tracing::debug!(reservation.id = %id, attempt, "confirmation chosen as deadlock victim; retrying");
                }
                other => return other,
            }
        }
    }

    async fn confirm_once(&self, id: Uuid, payment_id: Uuid) -> Result<bool, Error> {
        let property_id = self.require(id).await?.property_id;
        let change = Change::Confirm {
            payment_id,
            property_id,
        };
        Ok(store::transition(&self.db, id, change).await?.is_some())
    }
}

/// The authorization of a held reservation: its total, from its guest to its host, with the
/// payment method it was booked with. The saga and the reconciler both send exactly this.
pub(super) fn authorize_call(held: &Reservation) -> AuthorizeCall<'_> {
    AuthorizeCall {
        reservation_id: held.id,
        charge_id: None,
        guest_id: held.guest_id,
        host_id: held.host_id,
        amount: held.total_amount,
        currency: &held.currency,
        payment_method: &held.payment_method,
    }
}

/// How a booking request ended, for `draftr_bookings_total`.
fn outcome(result: &Result<Reservation, Error>) -> BookingOutcome {
    match result {
        Ok(r) if r.status == ReservationStatus::Confirmed.as_str() => BookingOutcome::Confirmed,
        Ok(_) => BookingOutcome::Replayed,
        Err(Error::BookingConflict) => BookingOutcome::Conflict,
        Err(Error::PaymentDeclined(_)) => BookingOutcome::Declined,
        Err(Error::PaymentUnavailable(_)) => BookingOutcome::Unavailable,
        Err(Error::CatalogUnavailable(_)) => BookingOutcome::CatalogUnavailable,
        Err(Error::Invalid { .. } | Error::Forbidden(_)) => BookingOutcome::Invalid,
        Err(
            Error::NotFound
            | Error::PropertyNotFound
            | Error::ReviewNotFound
            | Error::ImportNotFound,
        ) => BookingOutcome::NotFound,
        Err(Error::Db(_) | Error::Internal(_)) => BookingOutcome::Error,
    }
}

/// How payments refused an authorization (of a booking, or of a change's difference).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    Declined,
    BadPaymentMethod,
    Other,
}

impl From<Refused> for FailureCode {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Declined => Self::PaymentDeclined,
            Refused::BadPaymentMethod => Self::BadUserInput,
            Refused::Other => Self::Internal,
        }
    }
}

impl From<Refused> for crate::domain::ChangeFailure {
    fn from(r: Refused) -> Self {
        match r {
            Refused::Declined => Self::PaymentDeclined,
            Refused::BadPaymentMethod => Self::BadUserInput,
            Refused::Other => Self::Internal,
        }
    }
}

/// What is recorded (a booking's [`FailureCode`] or a change's
/// [`ChangeFailure`](crate::domain::ChangeFailure)), and what the guest is told, when payments
/// refuses an authorization.
pub(super) fn refusal<F: From<Refused>>(code: &str, message: String) -> (F, Error) {
    let (refused, err) = if code == ErrorCode::PaymentDeclined.as_str() {
        (Refused::Declined, Error::PaymentDeclined(message))
    } else if code == ErrorCode::BadUserInput.as_str() {
        (
            Refused::BadPaymentMethod,
            Error::invalid("paymentMethod", message),
        )
    } else {
        (
            Refused::Other,
            Error::Internal(anyhow::anyhow!("payments refused: {code}: {message}")),
        )
    };
    (refused.into(), err)
}

/// The answer to a repeated idempotency key, when it is an answer: the same reservation, or
/// the same error (see [`ReservationService::replay`] for one still pending).
fn replayed(first: Reservation, fingerprint: &str) -> Result<Reservation, Error> {
    if first.request_fingerprint != fingerprint {
        return Err(Error::invalid(
            "idempotencyKey",
            "this idempotencyKey was already used for a different booking; use a new key",
        ));
    }
    if ReservationStatus::parse(&first.status)? != ReservationStatus::Failed {
        return Ok(first);
    }
    let failure = first
        .failure_code
        .as_deref()
        .map(FailureCode::parse)
        .transpose()?;
    Err(match failure {
        Some(FailureCode::PaymentDeclined) => Error::PaymentDeclined(
            "your card was declined; try another payment method with a new idempotencyKey".into(),
        ),
        Some(FailureCode::PaymentUnavailable) => Error::PaymentUnavailable(
            "this booking attempt failed because payments were unavailable; try again with a new idempotencyKey",
        ),
        Some(FailureCode::HoldExpired | FailureCode::BadUserInput | FailureCode::Internal)
        | None => Error::invalid(
            "idempotencyKey",
            "this booking attempt failed; try again with a new idempotencyKey",
        ),
    })
}

/// Server-side price: nights × nightly rate in minor units; refuses what cannot be booked.
pub(super) fn price(
    quote: &Quote,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guests: i32,
    nights: i64,
) -> Result<PricedStay, Error> {
    if !quote.published {
        return Err(Error::invalid(
            "propertyId",
            "this property is not open for booking",
        ));
    }
    if guests > quote.max_guests {
        return Err(Error::invalid(
            "guests",
            format!("this property takes at most {} guests", quote.max_guests),
        ));
    }
    let total = quote
        .nightly_rate
        .checked_mul(nights)
        .filter(|t| *t > 0 && *t <= i64::from(i32::MAX))
        .ok_or_else(|| Error::invalid("checkOut", "this stay's total is too large to book"))?;
    Ok(PricedStay {
        property_id: quote.property_id,
        check_in,
        check_out,
        guests,
        nights,
        nightly_rate: quote.nightly_rate,
        total,
        currency: quote.currency.clone(),
        cancellation_policy: quote.cancellation_policy,
        available: true,
    })
}

fn catalog_error(err: CallError) -> Error {
    match err {
        CallError::Unavailable { reason, .. } => Error::CatalogUnavailable(reason),
        CallError::Refused { code, message, .. } => Error::Internal(anyhow::anyhow!(
            "catalog refused the quote: {code}: {message}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CancellationPolicy;
    use crate::store::testing::row;

    fn quote() -> Quote {
        Quote {
            property_id: Uuid::now_v7(),
            title: "Loft".into(),
            host_id: Uuid::now_v7(),
            published: true,
            nightly_rate: 10_000,
            currency: "EUR".into(),
            max_guests: 4,
            cancellation_policy: CancellationPolicy::Strict,
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn refused_field(result: Result<impl std::fmt::Debug, Error>) -> &'static str {
        match result {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_price_is_nights_times_the_rate_from_catalog() {
        let q = quote();
        let stay = price(&q, d("2027-03-01"), d("2027-03-04"), 2, 3).unwrap();
        assert_eq!(
            (stay.total, stay.nightly_rate, stay.nights),
            (30_000, 10_000, 3)
        );
        assert_eq!(stay.property_id, q.property_id);
        assert_eq!(stay.currency, "EUR");
        assert_eq!(stay.cancellation_policy, CancellationPolicy::Strict);
        assert_eq!(
            (stay.check_in, stay.check_out),
            (d("2027-03-01"), d("2027-03-04"))
        );
        assert_eq!(stay.guests, 2);
        assert!(stay.available);
    }

    #[test]
    fn a_price_is_refused_for_what_cannot_be_booked() {
        let (i, o) = (d("2027-03-01"), d("2027-03-04"));
        let draft = Quote {
            published: false,
            ..quote()
        };
        assert_eq!(refused_field(price(&draft, i, o, 2, 3)), "propertyId");
        assert_eq!(refused_field(price(&quote(), i, o, 5, 3)), "guests");
        assert!(price(&quote(), i, o, 4, 3).is_ok(), "exactly the maximum");
        let dear = Quote {
            nightly_rate: i64::from(i32::MAX) / 2,
            ..quote()
        };
        assert_eq!(refused_field(price(&dear, i, o, 2, 3)), "checkOut");
        let overflow = Quote {
            nightly_rate: i64::MAX,
            ..quote()
        };
        assert_eq!(refused_field(price(&overflow, i, o, 2, 3)), "checkOut");
        let free = Quote {
            nightly_rate: 0,
            ..quote()
        };
        assert_eq!(refused_field(price(&free, i, o, 2, 3)), "checkOut");
    }

    #[test]
    fn a_replay_returns_the_first_attempt_or_its_error() {
        let first = row();
        let same = first.request_fingerprint.clone();

        let other = replayed(first.clone(), "another booking");
        assert_eq!(refused_field(other), "idempotencyKey");

        for status in ["PENDING", "CONFIRMED", "CANCELLED"] {
            let r = Reservation {
                status: status.into(),
                ..first.clone()
            };
            assert_eq!(replayed(r.clone(), &same).unwrap(), r, "{status}");
        }

        let failed = |code: Option<FailureCode>| Reservation {
            status: "FAILED".into(),
            failure_code: code.map(|c| c.as_str().to_owned()),
            ..first.clone()
        };
        for code in FailureCode::ALL {
            let answer = replayed(failed(Some(code)), &same);
            match code {
                FailureCode::PaymentDeclined => {
                    assert!(
                        matches!(answer, Err(Error::PaymentDeclined(_))),
                        "{answer:?}"
                    )
                }
                FailureCode::PaymentUnavailable => {
                    assert!(
                        matches!(answer, Err(Error::PaymentUnavailable(_))),
                        "{answer:?}"
                    )
                }
                FailureCode::HoldExpired | FailureCode::BadUserInput | FailureCode::Internal => {
                    assert_eq!(refused_field(answer), "idempotencyKey", "{code:?}")
                }
            }
        }
        assert_eq!(
            refused_field(replayed(failed(None), &same)),
            "idempotencyKey"
        );

        let unknown = Reservation {
            failure_code: Some("CARD_EXPIRED".into()),
            ..failed(None)
        };
        assert!(matches!(replayed(unknown, &same), Err(Error::Internal(_))));
        let strange = Reservation {
            status: "ON_HOLD".into(),
            ..first.clone()
        };
        assert!(matches!(replayed(strange, &same), Err(Error::Internal(_))));
    }

    #[test]
    fn every_answer_is_counted_under_its_outcome() {
        let confirmed = Reservation {
            status: "CONFIRMED".into(),
            ..row()
        };
        let cancelled = Reservation {
            status: "CANCELLED".into(),
            ..row()
        };
        assert_eq!(outcome(&Ok(confirmed)), BookingOutcome::Confirmed);
        assert_eq!(outcome(&Ok(cancelled)), BookingOutcome::Replayed);
        for (err, expected) in [
            (Error::BookingConflict, BookingOutcome::Conflict),
            (
                Error::PaymentDeclined("no".into()),
                BookingOutcome::Declined,
            ),
            (
                Error::PaymentUnavailable("later"),
                BookingOutcome::Unavailable,
            ),
            (
                Error::CatalogUnavailable("down".into()),
                BookingOutcome::CatalogUnavailable,
            ),
            (
                Error::invalid("guests", "too many"),
                BookingOutcome::Invalid,
            ),
            (Error::PropertyNotFound, BookingOutcome::NotFound),
            (Error::Internal(anyhow::anyhow!("x")), BookingOutcome::Error),
        ] {
            assert_eq!(outcome(&Err(err)), expected);
        }
    }

    #[test]
    fn payments_refusals_are_recorded_and_explained() {
        let (code, err) = refusal::<FailureCode>("PAYMENT_DECLINED", "card declined".into());
        assert_eq!(code, FailureCode::PaymentDeclined);
        assert!(matches!(err, Error::PaymentDeclined(m) if m == "card declined"));
        let (code, err) = refusal::<FailureCode>("BAD_USER_INPUT", "no such payment method".into());
        assert_eq!(code, FailureCode::BadUserInput);
        assert!(
            matches!(err, Error::Invalid { field: "paymentMethod", ref message } if message == "no such payment method")
        );
        let (code, err) = refusal::<FailureCode>("FORBIDDEN", "who are you".into());
        assert_eq!(code, FailureCode::Internal);
        let Error::Internal(cause) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            cause.to_string(),
            "payments refused: FORBIDDEN: who are you"
        );
    }

    #[test]
    fn the_authorization_is_built_from_the_held_row() {
        let held = row();
        let call = authorize_call(&held);
        assert_eq!(call.reservation_id, held.id);
        assert_eq!(call.guest_id, held.guest_id);
        assert_eq!(call.host_id, held.host_id);
        assert_eq!(call.amount, 30_000);
        assert_eq!(call.currency, "EUR");
        assert_eq!(call.payment_method, "pm_card_visa");
    }
}
