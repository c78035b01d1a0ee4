//! Ending a booking on purpose: a guest's (or an admin's) cancellation, refunded by the
//! property's policy, and an admin removing a record that holds no dates and no money.

use chrono::Utc;
use draftr_common::Claims;
use uuid::Uuid;

use super::{Reservation, ReservationService};
use crate::domain::{self, CancellationPolicy, ReservationStatus};
use crate::error::Error;
use crate::store::{self, Change, bookkeeping};

impl ReservationService {
    /// Cancels a confirmed reservation (its guest or an admin) and refunds what the
    /// property's policy gives back at this moment. The dates are free once this returns.
    pub async fn cancel(
        &self,
        who: &Claims,
        id: Uuid,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        let row = self.require(id).await?;
        let is_guest = row.guest_id == who.sub;
        if !is_guest && !who.is_admin() {
            // The host may see it, but cancelling is the guest's (or an admin's) decision.
            return Err(if row.host_id == who.sub {
                Error::Forbidden("only the guest or an administrator can cancel a reservation")
            } else {
                Error::NotFound
            });
        }
        match ReservationStatus::parse(&row.status)? {
            ReservationStatus::Confirmed => {}
            ReservationStatus::Cancelled => return Ok(row),
            ReservationStatus::Pending | ReservationStatus::Failed => {
                return Err(Error::invalid(
                    "id",
                    "only a confirmed reservation can be cancelled",
                ));
            }
        }
        let now = Utc::now();
        if now >= domain::stay_starts(row.check_in) && !who.is_admin() {
            return Err(Error::invalid(
                "id",
                "this stay has already started and cannot be cancelled",
            ));
        }
        let policy = CancellationPolicy::parse(&row.cancellation_policy)?;
        let refund = domain::refund_for(policy, row.total_amount, row.notice_from(), now);

        let change = Change::Cancel { refund, at: now };
        if store::transition(&self.db, id, change).await?.is_none() {
            // Cancelled (or otherwise moved) concurrently: show what it is now.
            return self.require(id).await;
        }
        tracing::info!(reservation.id = %id, refund.amount = refund, "reservation cancelled");
        self.compensate(id, request_id).await;
        self.require(id).await
    }

    /// Removes a reservation record (admins only, checked by the caller). Active reservations
    /// must be cancelled first, so no money or dates are left dangling.
    pub async fn delete(&self, id: Uuid) -> Result<bool, Error> {
        let row = self.require(id).await?;
        if ReservationStatus::parse(&row.status)?.is_active() {
            return Err(Error::invalid(
                "id",
                "cancel this reservation before deleting it",
            ));
        }
        if row.compensation_pending {
            return Err(Error::invalid(
                "id",
                "this reservation's refund is still being processed; try again later",
            ));
        }
        let deleted = bookkeeping::delete(&self.db, id).await?;
        tracing::info!(reservation.id = %id, "reservation deleted");
        Ok(deleted)
    }
}
