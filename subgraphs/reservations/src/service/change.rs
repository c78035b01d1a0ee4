//! Changing a confirmed stay (`changeReservation`): new dates and/or guests, priced on the
//! server like a new booking, with the money difference settled.
//!
//! The steps, each recorded so a crash or a retry finishes or undoes it:
//! 1. validate as a new booking, price the new stay at catalog's current rate, check the new
//!    nights look free (a cheap read, so a likely conflict costs no authorization), and record
//!    the change PENDING (one per reservation and idempotency key);
//! 2. a higher total: authorize the difference as a charge of its own (keyed by the change's
//!    id). A decline, or payments being down, ends the change FAILED with the stay untouched;
//! 3. apply, in one transaction: the change → APPLIED, the stay's dates, guests and total (only
//!    if it is still CONFIRMED exactly as priced), and the `reservation.changed` event. The
//!    database's exclusion constraints (SQLite: triggers) decide a race for the nights; a stay
//!    may overlap its own old nights. A conflict, or a stay cancelled or changed meanwhile, ends
//!    the change FAILED and voids the authorization: the stay and its payments are exactly as
//!    they were;
//! 4. capture the difference, or refund what a lower total gives back
//!    ([`domain::change_refund`]). A failure here is left to the reconciler: the change stands.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use draftr_common::service_client::CallError;
use draftr_common::{Claims, ErrorCode};
use sea_orm::Set;
use uuid::Uuid;

use super::booking::refusal;
use super::{Reservation, ReservationService};
use crate::clients::AuthorizeCall;
use crate::domain::{
    self, CancellationPolicy, ChangeFailure, ChangeStatus, ReservationStatus, change_refund,
};
use crate::error::Error;
use crate::store::changes::{self, Applied, ChangeRow, RecordError};
use crate::store::entities::reservation_changes;

/// What a guest (or an admin) asks to change. Absent fields keep the stay's value.
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub check_in: Option<NaiveDate>,
    pub check_out: Option<NaiveDate>,
    pub guests: Option<i32>,
    /// Pays the difference when the new total is higher; the booking's method if absent.
    pub payment_method: Option<String>,
    pub idempotency_key: String,
}

/// When the provider's answer for the difference was lost: the change waits, the stay is
/// untouched.
const CHANGE_OUTCOME_UNKNOWN: &str = "the payment provider has not confirmed the payment for this change yet; retry with the same idempotencyKey (you are never charged twice); until then your booking is unchanged";

const CHANGE_UNAVAILABLE: &str = "payments are unavailable right now, so your booking was not changed and nothing was charged; please try again in a moment";

const CHANGE_TOO_SLOW: &str = "the change took too long and was abandoned; your booking is unchanged and nothing was charged, please try again with a new idempotencyKey";

impl ReservationService {
    /// Changes a CONFIRMED stay that has not started (its guest or an admin). A repeat with
    /// the same idempotency key answers as the first attempt did and never charges twice.
    pub async fn change(
        self: &Arc<Self>,
        who: &Claims,
        id: Uuid,
        req: ChangeRequest,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        domain::validate_idempotency_key(&req.idempotency_key)?;
        if let Some(pm) = &req.payment_method {
            domain::validate_payment_method(pm)?;
        }
        if req.check_in.is_none() && req.check_out.is_none() && req.guests.is_none() {
            return Err(Error::invalid(
                "input",
                "say what to change: checkIn, checkOut or guests",
            ));
        }
        let row = self.require(id).await?;
        if row.guest_id != who.sub && !who.is_admin() {
            return Err(if row.host_id == who.sub {
                Error::Forbidden("only the guest or an administrator can change a reservation")
            } else {
                Error::NotFound
            });
        }
        let fingerprint = domain::change_fingerprint(
            req.check_in,
            req.check_out,
            req.guests,
            req.payment_method.as_deref(),
        );
        if let Some(first) = changes::by_key(&self.db, id, &req.idempotency_key).await? {
            return self.replay_change(first, &fingerprint, request_id).await;
        }
        if ReservationStatus::parse(&row.status)? != ReservationStatus::Confirmed {
            return Err(Error::invalid(
                "id",
                "only a confirmed reservation can be changed",
            ));
        }
        let now = Utc::now();
        if now >= domain::stay_starts(row.check_in) {
            return Err(Error::invalid(
                "id",
                "this stay has already started and cannot be changed",
            ));
        }
        let (check_in, check_out, guests) = (
            req.check_in.unwrap_or(row.check_in),
            req.check_out.unwrap_or(row.check_out),
            req.guests.unwrap_or(row.guests),
        );
        if (check_in, check_out, guests) == (row.check_in, row.check_out, row.guests) {
            return Err(Error::invalid(
                "input",
                "that is the stay as it is booked; nothing to change",
            ));
        }
        let nights = domain::validate_stay(
            check_in,
            check_out,
            guests,
            now.date_naive(),
            self.stay_rules(),
        )?;
        let quote = self.catalog_quote(row.property_id, request_id).await?;
        let stay = super::booking::price(&quote, check_in, check_out, guests, nights)?;
        if stay.currency != row.currency {
            return Err(Error::invalid(
                "id",
                format!(
                    "this listing now charges in {}, not {}; cancel and book again instead",
                    stay.currency, row.currency
                ),
            ));
        }
        // A cheap look first, so a change that would conflict costs no authorization. The
        // stay's own nights do not count; the database has the last word when it is applied.
        let taken = self
            .calendar(&[(row.property_id, check_in, check_out)])
            .await?
            .into_values()
            .flatten()
            .any(|r| r != (row.check_in, row.check_out));
        if taken {
            return Err(Error::BookingConflict);
        }

        let change = reservation_changes::ActiveModel {
            id: Set(Uuid::now_v7()),
            reservation_id: Set(row.id),
            requested_by: Set(who.sub),
            idempotency_key: Set(req.idempotency_key.clone()),
            request_fingerprint: Set(fingerprint.clone()),
            from_check_in: Set(row.check_in),
            from_check_out: Set(row.check_out),
            from_guests: Set(row.guests),
            from_total: Set(row.total_amount),
            to_check_in: Set(check_in),
            to_check_out: Set(check_out),
            to_guests: Set(guests),
            to_nights: Set(nights as i32),
            to_total: Set(stay.total),
            payment_method: Set(req
                .payment_method
                .clone()
                .unwrap_or_else(|| row.payment_method.clone())),
            status: Set(ChangeStatus::Pending.as_str().into()),
            failure_code: Set(None),
            payment_id: Set(None),
            captured: Set(false),
            refund_amount: Set(None),
            compensation_pending: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
        };
        let change = match changes::record(&self.db, change).await {
            Ok(c) => c,
            Err(RecordError::SameKey) => {
                let first = changes::by_key(&self.db, id, &req.idempotency_key)
                    .await?
                    .ok_or(Error::NotFound)?;
                return self.replay_change(first, &fingerprint, request_id).await;
            }
            Err(RecordError::Db(e)) => return Err(e.into()),
        };
        tracing::info!(
            reservation.id = %row.id, change.id = %change.id,
            change.difference = change.difference(), "change recorded"
        );
        self.finish_change(&row, change, request_id).await
    }

    /// The answer to a repeated idempotency key: the stay as it is now (applied), the first
    /// attempt's error (failed), or the change carried on from where it is (pending).
    async fn replay_change(
        self: &Arc<Self>,
        first: ChangeRow,
        fingerprint: &str,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        if first.request_fingerprint != fingerprint {
            return Err(Error::invalid(
                "idempotencyKey",
                "this idempotencyKey was already used for a different change; use a new key",
            ));
        }
        match ChangeStatus::parse(&first.status)? {
            ChangeStatus::Applied => self.require(first.reservation_id).await,
            ChangeStatus::Failed => Err(failed_change(&first)?),
            ChangeStatus::Pending => {
                tracing::info!(change.id = %first.id, "retry of a pending change; resuming it");
                let row = self.require(first.reservation_id).await?;
                self.finish_change(&row, first, request_id).await
            }
        }
    }

    /// Steps 2–4 for a recorded PENDING change.
    async fn finish_change(
        self: &Arc<Self>,
        row: &Reservation,
        change: ChangeRow,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        let difference = change.difference();
        let payment_id = if difference > 0 {
            Some(self.authorize_difference(row, &change, request_id).await?)
        } else {
            None
        };
        let policy = CancellationPolicy::parse(&row.cancellation_policy)?;
        let notice_from = row.notice_from();
        let refund = change_refund(
            policy,
            change.from_total,
            change.to_total,
            notice_from,
            Utc::now(),
        );
        let applied = changes::apply(
            &self.db,
            &change,
            row.property_id,
            payment_id,
            refund,
            notice_from.min(change.to_check_in),
        )
        .await?;
        let failure = match applied {
            Applied::Done(stay) => {
                tracing::info!(reservation.id = %stay.id, change.id = %change.id, refund.amount = refund, "reservation changed");
                // Settling moves money and the change's own flags, never the stay's row.
                self.settle_change(change.id, request_id).await;
                return Ok(*stay);
            }
            Applied::Conflict => ChangeFailure::Conflict,
            Applied::Superseded => ChangeFailure::Superseded,
            Applied::NotPending => {
                // Another request for the same key finished it first (answer as it did), or
                // the reconciler ended it because this one was too slow (it voids any charge).
                let now = changes::require(&self.db, change.id).await?;
                return match ChangeStatus::parse(&now.status)? {
                    ChangeStatus::Applied => self.require(now.reservation_id).await,
                    ChangeStatus::Failed => Err(failed_change(&now)?),
                    ChangeStatus::Pending => Err(Error::PaymentUnavailable(CHANGE_TOO_SLOW)),
                };
            }
        };
        changes::fail(&self.db, change.id, failure, payment_id.is_some()).await?;
        self.settle_change(change.id, request_id).await;
        Err(failed_change(
            &changes::require(&self.db, change.id).await?,
        )?)
    }

    /// Authorizes a change's difference. On anything but success the change is ended (or,
    /// for an unknown outcome, left PENDING for a retry or the reconciler) and the error to
    /// answer with returned.
    async fn authorize_difference(
        self: &Arc<Self>,
        row: &Reservation,
        change: &ChangeRow,
        request_id: &str,
    ) -> Result<Uuid, Error> {
        let call = AuthorizeCall {
            reservation_id: row.id,
            charge_id: Some(change.id),
            guest_id: row.guest_id,
            host_id: row.host_id,
            amount: change.difference(),
            currency: &row.currency,
            payment_method: &change.payment_method,
        };
        let (failure, compensate, err) = match self.payments.authorize(call, request_id).await {
            Ok(p) => return Ok(p.id),
            Err(CallError::Refused { code, .. })
                if code == ErrorCode::PaymentOutcomeUnknown.as_str() =>
            {
                tracing::warn!(change.id = %change.id, "authorization of a change's difference outcome unknown; the change waits");
                return Err(Error::PaymentUnavailable(CHANGE_OUTCOME_UNKNOWN));
            }
            Err(CallError::Refused { code, message, .. }) => {
                let (failure, err) = refusal::<ChangeFailure>(&code, message);
                (failure, false, err)
            }
            Err(CallError::Unavailable { reason, .. }) => {
                tracing::warn!(change.id = %change.id, error = %reason, "payments unavailable for a change; ending it");
                (
                    ChangeFailure::PaymentUnavailable,
                    true,
                    Error::PaymentUnavailable(CHANGE_UNAVAILABLE),
                )
            }
        };
        changes::fail(&self.db, change.id, failure, compensate).await?;
        if compensate {
            let service = Arc::clone(self);
            let (id, request_id) = (change.id, request_id.to_owned());
            tokio::spawn(async move { service.settle_change(id, &request_id).await });
        }
        Err(err)
    }

    /// Moves whatever money a change still owes: captures an applied change's extra charge,
    /// makes its refund, or voids a failed change's charge. Returns whether nothing is left;
    /// the reconciler calls it again until then.
    pub(crate) async fn settle_change(&self, id: Uuid, request_id: &str) -> bool {
        match self.settle_change_once(id, request_id).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(change.id = %id, error = %e, "change not settled; the reconciler will retry");
                false
            }
        }
    }

    async fn settle_change_once(&self, id: Uuid, request_id: &str) -> Result<bool, Error> {
        let change = changes::require(&self.db, id).await?;
        let unavailable = |e: CallError| Error::Internal(anyhow::anyhow!(e.to_string()));
        match ChangeStatus::parse(&change.status)? {
            ChangeStatus::Pending => Ok(false),
            ChangeStatus::Failed => {
                if change.compensation_pending {
                    self.payments
                        .cancel(change.reservation_id, Some(change.id), request_id)
                        .await
                        .map_err(unavailable)?;
                    changes::clear_compensation(&self.db, id).await?;
                    tracing::info!(change.id = %id, "failed change's charge voided");
                }
                Ok(true)
            }
            ChangeStatus::Applied => {
                if change.payment_id.is_some() && !change.captured {
                    self.payments
                        .capture(change.reservation_id, Some(change.id), request_id)
                        .await
                        .map_err(unavailable)?;
                    changes::mark_captured(&self.db, id).await?;
                }
                if change.compensation_pending {
                    let refund = change.refund_amount.unwrap_or(0);
                    self.payments
                        .refund(change.reservation_id, refund, Some(change.id), request_id)
                        .await
                        .map_err(unavailable)?;
                    changes::clear_compensation(&self.db, id).await?;
                    tracing::info!(change.id = %id, refund.amount = refund, "change refunded");
                }
                Ok(true)
            }
        }
    }

    /// PENDING changes whose request is gone (older than the hold timeout): ended, never
    /// applied late, with any charge that may exist voided. Returns how many were ended.
    pub(crate) async fn end_stale_changes(&self, request_id: &str) -> Result<u32, Error> {
        let timeout = chrono::Duration::milliseconds(self.rules.hold_timeout_ms as i64);
        let mut ended = 0;
        for c in changes::stale_pending(&self.db, Utc::now() - timeout).await? {
            let may_be_charged = c.difference() > 0;
            if changes::fail(&self.db, c.id, ChangeFailure::Expired, may_be_charged).await? {
                ended += 1;
                tracing::info!(change.id = %c.id, "stale change ended by the reconciler");
                self.settle_change(c.id, request_id).await;
            }
        }
        Ok(ended)
    }

    /// Changes with money still to move, for the reconciler.
    pub(crate) async fn unsettled_changes(&self) -> Result<Vec<ChangeRow>, Error> {
        changes::unsettled(&self.db).await
    }
}

/// The error a FAILED change answers with, now and on every retry of its key.
fn failed_change(change: &ChangeRow) -> Result<Error, Error> {
    let failure = change
        .failure_code
        .as_deref()
        .map(ChangeFailure::parse)
        .transpose()?;
    Ok(match failure {
        Some(ChangeFailure::Conflict) => Error::BookingConflict,
        Some(ChangeFailure::PaymentDeclined) => Error::PaymentDeclined(
            "your card was declined for the difference; your booking is unchanged. Try another payment method with a new idempotencyKey".into(),
        ),
        Some(ChangeFailure::PaymentUnavailable) => Error::PaymentUnavailable(CHANGE_UNAVAILABLE),
        Some(ChangeFailure::BadUserInput) => Error::invalid(
            "paymentMethod",
            "this payment method cannot be used; your booking is unchanged",
        ),
        Some(ChangeFailure::Superseded) => Error::invalid(
            "id",
            "this reservation was changed or cancelled by another request meanwhile; look at it again and retry with a new idempotencyKey",
        ),
        Some(ChangeFailure::Expired) => Error::PaymentUnavailable(CHANGE_TOO_SLOW),
        Some(ChangeFailure::Internal) | None => Error::invalid(
            "idempotencyKey",
            "this change failed; your booking is unchanged. Try again with a new idempotencyKey",
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_answers_with_its_typed_error() {
        let base = ChangeRow {
            id: Uuid::now_v7(),
            reservation_id: Uuid::now_v7(),
            requested_by: Uuid::now_v7(),
            idempotency_key: "k".repeat(10),
            request_fingerprint: "f".repeat(64),
            from_check_in: "2027-03-01".parse().unwrap(),
            from_check_out: "2027-03-04".parse().unwrap(),
            from_guests: 2,
            from_total: 30_000,
            to_check_in: "2027-03-02".parse().unwrap(),
            to_check_out: "2027-03-05".parse().unwrap(),
            to_guests: 2,
            to_nights: 3,
            to_total: 30_000,
            payment_method: "pm_card_visa".into(),
            status: "FAILED".into(),
            failure_code: None,
            payment_id: None,
            captured: false,
            refund_amount: None,
            compensation_pending: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let answer = |f: ChangeFailure| {
            failed_change(&ChangeRow {
                failure_code: Some(f.as_str().into()),
                ..base.clone()
            })
            .unwrap()
        };
        assert!(matches!(
            answer(ChangeFailure::Conflict),
            Error::BookingConflict
        ));
        assert!(matches!(
            answer(ChangeFailure::PaymentDeclined),
            Error::PaymentDeclined(_)
        ));
        assert!(matches!(
            answer(ChangeFailure::PaymentUnavailable),
            Error::PaymentUnavailable(_)
        ));
        assert!(matches!(
            answer(ChangeFailure::Expired),
            Error::PaymentUnavailable(_)
        ));
        assert!(matches!(
            answer(ChangeFailure::BadUserInput),
            Error::Invalid {
                field: "paymentMethod",
                ..
            }
        ));
        assert!(matches!(
            answer(ChangeFailure::Superseded),
            Error::Invalid { field: "id", .. }
        ));
        assert!(matches!(
            answer(ChangeFailure::Internal),
            Error::Invalid {
                field: "idempotencyKey",
                ..
            }
        ));
        let unknown = ChangeRow {
            failure_code: Some("GONE".into()),
            ..base
        };
        assert!(failed_change(&unknown).is_err());

        let (f, e) = refusal::<ChangeFailure>("PAYMENT_DECLINED", "no".into());
        assert_eq!(f, ChangeFailure::PaymentDeclined);
        assert!(matches!(e, Error::PaymentDeclined(m) if m == "no"));
        let (f, _) = refusal::<ChangeFailure>("BAD_USER_INPUT", "no such pm".into());
        assert_eq!(f, ChangeFailure::BadUserInput);
        let (f, e) = refusal::<ChangeFailure>("FORBIDDEN", "who".into());
        assert_eq!(f, ChangeFailure::Internal);
        assert!(matches!(e, Error::Internal(_)));
    }
}
