//! Settlement: how a held booking's money ends up where it belongs. A booking that failed
//! releases its dates and, if a payment may exist, voids it; a confirmed one is captured; a
//! cancelled one is refunded. The saga calls these as it goes; the reconciler calls the same
//! ones for whatever a crash or an outage left half done, including holds whose saga is gone
//! ([`ReservationService::settle_stale`]).

use chrono::Utc;
use draftr_common::ErrorCode;
use draftr_common::service_client::CallError;
use uuid::Uuid;

use super::{Reservation, ReservationService};
use crate::clients::PaymentState;
use crate::domain::{FailureCode, ReservationStatus};
use crate::error::Error;
use crate::store::{self, Change, bookkeeping, queries};

/// What the reconciler did with a stale hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Payments had authorized it: confirmed (with its event) and captured.
    Finished,
    /// Released (FAILED), with any payment that may exist marked to be voided.
    Released,
    /// Left as it is: another actor moved it first, or payments refused to say.
    Untouched,
}

impl ReservationService {
    /// PENDING → FAILED (dates free again), with the `reservation.failed` event.
    /// `compensate`: the payment may exist and must be undone (by us now, or the reconciler).
    /// `false` if the reservation was no longer PENDING.
    pub(super) async fn fail(
        &self,
        id: Uuid,
        code: FailureCode,
        compensate: bool,
    ) -> Result<bool, Error> {
        let change = Change::Fail { code, compensate };
        if store::transition(&self.db, id, change).await?.is_none() {
            return Ok(false);
        }
        tracing::info!(reservation.id = %id, failure = code.as_str(), "reservation failed; dates released");
        Ok(true)
    }

    /// Marks a reservation's payment to be voided or refunded.
    pub(super) async fn mark_compensation(&self, id: Uuid) -> Result<(), Error> {
        Ok(bookkeeping::mark_compensation_pending(&self.db, id).await?)
    }

    /// Captures a confirmed reservation's payment; on failure leaves it to the reconciler.
    pub(crate) async fn capture(&self, id: Uuid, request_id: &str) -> bool {
        match self.payments.capture(id, None, request_id).await {
            Ok(_) => {
                if let Err(e) = bookkeeping::mark_captured(&self.db, id).await {
                    tracing::error!(reservation.id = %id, error = %e, "capture not recorded; the reconciler will repeat it");
                    return false;
                }
                true
            }
            Err(e) => {
                tracing::warn!(reservation.id = %id, error = %e, "capture failed; the reconciler will retry");
                false
            }
        }
    }

    /// Undoes the payment of a FAILED or CANCELLED reservation marked for compensation
    /// (void, or the policy's refund). Returns whether it is done.
    pub(crate) async fn compensate(&self, id: Uuid, request_id: &str) -> bool {
        let Ok(Some(row)) = queries::find(&self.db, id).await else {
            return false;
        };
        if !row.compensation_pending {
            return true;
        }
        let status = match ReservationStatus::parse(&row.status) {
            Ok(status) => status,
            Err(e) => {
                tracing::error!(reservation.id = %id, error = ?e, "cannot compensate a reservation in a state this build does not know");
                return false;
            }
        };
        let result = match status {
            ReservationStatus::Failed => {
                self.payments.cancel(id, None, request_id).await.map(|_| ())
            }
            ReservationStatus::Cancelled => self
                .payments
                .refund(id, row.refund_amount.unwrap_or(0), None, request_id)
                .await
                .map(|_| ()),
            ReservationStatus::Pending | ReservationStatus::Confirmed => return false,
        };
        match result {
            Ok(()) => {
                let cleared = bookkeeping::clear_compensation_pending(&self.db, id).await;
                tracing::info!(reservation.id = %id, "payment compensated");
                cleared.is_ok()
            }
            Err(e) => {
                tracing::warn!(reservation.id = %id, error = %e, "compensation failed; the reconciler will retry");
                false
            }
        }
    }

    /// PENDING holds older than the hold timeout, oldest first: longer than any live saga
    /// takes, so the saga that made them is gone.
    pub(crate) async fn stale_holds(&self) -> Result<Vec<Reservation>, Error> {
        let timeout = chrono::Duration::milliseconds(self.rules.hold_timeout_ms as i64);
        queries::stale_pending(&self.db, Utc::now() - timeout).await
    }

    /// Confirmed reservations whose payment is not captured yet.
    pub(crate) async fn uncaptured(&self) -> Result<Vec<Reservation>, Error> {
        queries::uncaptured(&self.db).await
    }

    /// Failed or cancelled reservations whose payment is still to be voided or refunded.
    pub(crate) async fn awaiting_compensation(&self) -> Result<Vec<Reservation>, Error> {
        queries::awaiting_compensation(&self.db).await
    }

    /// Ends a stale hold. If payments authorized (or learns, by looking the authorization up at
    /// the provider, that it did), the saga is finished: confirmed with its event,
    /// then captured. Otherwise the hold is released and any payment that may exist voided.
    pub(crate) async fn settle_stale(
        &self,
        r: &Reservation,
        request_id: &str,
    ) -> Result<Settled, Error> {
        let payment = match self.payments.status(r.id, None, request_id).await {
            // Payments never heard of it: no money moved, release.
            Ok(None) => {
                self.fail(r.id, FailureCode::HoldExpired, false).await?;
                return Ok(Settled::Released);
            }
            Ok(Some(p)) if p.status == PaymentState::Pending => {
                // The provider's answer was lost: payments looks the authorization up.
                match self.authorize(r, request_id).await {
                    Ok(p) => p,
                    Err(CallError::Refused { code, .. })
                        if code == ErrorCode::PaymentOutcomeUnknown.as_str() =>
                    {
                        // Still cannot tell: release the dates (a hold must not outlive its
                        // timeout) and keep looking, to void whatever turns up.
                        self.fail(r.id, FailureCode::PaymentUnavailable, true)
                            .await?;
                        return Ok(Settled::Released);
                    }
                    Err(CallError::Refused { code, .. }) => {
                        self.fail(r.id, replayed_refusal(&code), false).await?;
                        return Ok(Settled::Released);
                    }
                    Err(CallError::Unavailable { .. }) => {
                        self.fail(r.id, FailureCode::PaymentUnavailable, true)
                            .await?;
                        return Ok(Settled::Released);
                    }
                }
            }
            Ok(Some(p)) => p,
            Err(CallError::Unavailable { .. }) => {
                // Cannot tell: release the dates anyway (a hold must not outlive its timeout)
                // and void whatever exists once payments answers again.
                self.fail(r.id, FailureCode::PaymentUnavailable, true)
                    .await?;
                return Ok(Settled::Released);
            }
            Err(e @ CallError::Refused { .. }) => {
                tracing::error!(reservation.id = %r.id, error = %e, "payments refused a status query");
                return Ok(Settled::Untouched);
            }
        };
        if !payment.status.holds_money() {
            self.fail(r.id, FailureCode::HoldExpired, true).await?;
            return Ok(Settled::Released);
        }
        if self.confirm(r.id, payment.id).await? {
            tracing::info!(reservation.id = %r.id, "interrupted booking finished by the reconciler");
            self.capture(r.id, request_id).await;
            Ok(Settled::Finished)
        } else {
            Ok(Settled::Untouched)
        }
    }
}

/// The failure recorded when a replayed authorization is refused: declined is the guest's
/// card; anything else means the hold simply ran out.
fn replayed_refusal(code: &str) -> FailureCode {
    if code == ErrorCode::PaymentDeclined.as_str() {
        FailureCode::PaymentDeclined
    } else {
        FailureCode::HoldExpired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_replay_is_a_decline_or_an_expired_hold() {
        assert_eq!(
            replayed_refusal("PAYMENT_DECLINED"),
            FailureCode::PaymentDeclined
        );
        for code in ["BAD_USER_INPUT", "INTERNAL_SERVER_ERROR", "NOT_FOUND", ""] {
            assert_eq!(replayed_refusal(code), FailureCode::HoldExpired, "{code}");
        }
    }
}
