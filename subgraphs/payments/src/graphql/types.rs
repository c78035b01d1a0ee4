use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use draftr_common::graphql::{request_meta, viewer};
use draftr_common::{ApiError, ApiResult};
use uuid::Uuid;

use super::loaders::{PaymentByReservationLoader, PaymentsByReservationLoader};
use crate::domain::{PaymentPurpose, PaymentStatus};
use crate::service;

pub use draftr_common::graphql::Money;

/// A payment of one reservation, the booking's own or a change's extra charge: amounts and
/// state only, never card data.
pub struct Payment(pub(super) service::Payment);

#[Object]
impl Payment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn amount(&self) -> Money {
        Money::minor_units(self.0.amount, &self.0.currency)
    }
    /// How much of `amount` was given back.
    async fn refunded(&self) -> Money {
        Money::minor_units(self.0.refunded, &self.0.currency)
    }
    /// `BOOKING` for the booking's own payment, `CHANGE` for the extra charge of a change of
    /// dates or guests that raised the total.
    async fn purpose(&self) -> PaymentPurpose {
        self.0.purpose()
    }
    async fn status(&self) -> ApiResult<PaymentStatus> {
        Ok(self.0.status().map_err(ApiError::internal)?)
    }
    /// `stripe` or `simulated`.
    async fn provider(&self) -> &str {
        &self.0.provider
    }
    /// Why the payment failed, in the provider's words ("Your card was declined.").
    async fn failure_reason(&self) -> Option<&str> {
        self.0.failure_message.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A reservation (owned by the reservations subgraph), extended with its payment.
pub struct Reservation {
    pub(super) id: Uuid,
}

#[Object]
impl Reservation {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// The payment for this reservation (the booking's own), for its guest, the property's
    /// host and admins.
    async fn payment(&self, ctx: &Context<'_>) -> ApiResult<Option<Payment>> {
        let found = ctx
            .data_unchecked::<DataLoader<PaymentByReservationLoader>>()
            .load_one(self.id)
            .await?;
        visible(ctx, found)
    }
    /// Every payment of this reservation, oldest first: the booking's own, then one per change
    /// that raised the total. Empty for anyone but its guest, the property's host and admins.
    async fn payments(&self, ctx: &Context<'_>) -> ApiResult<Vec<Payment>> {
        let found = ctx
            .data_unchecked::<DataLoader<PaymentsByReservationLoader>>()
            .load_one(self.id)
            .await?
            .unwrap_or_default();
        let mut visible_payments = Vec::with_capacity(found.len());
        for payment in found {
            if let Some(payment) = visible(ctx, Some(payment))? {
                visible_payments.push(payment);
            }
        }
        Ok(visible_payments)
    }
}

/// Whether the caller may see `payment`: a service, an admin, its payer or the host.
pub(super) fn visible(
    ctx: &Context<'_>,
    payment: Option<service::Payment>,
) -> ApiResult<Option<Payment>> {
    let Some(payment) = payment else {
        return Ok(None);
    };
    if request_meta(ctx).is_some_and(|m| m.service_call) {
        return Ok(Some(Payment(payment)));
    }
    let Some(me) = viewer(ctx).user()? else {
        return Ok(None);
    };
    let allowed = me.is_admin() || me.sub == payment.guest_id || me.sub == payment.host_id;
    Ok(allowed.then_some(Payment(payment)))
}

pub(super) fn parse_id(field: &'static str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::bad_input(field, "not a valid id"))
}

/// The reservation and the charge an operation is about: `chargeId` defaults to the
/// reservation's id (the booking's own payment).
pub(super) fn charge_ids(reservation_id: &ID, charge_id: Option<&ID>) -> ApiResult<(Uuid, Uuid)> {
    let reservation_id = parse_id("reservationId", reservation_id)?;
    let charge_id = match charge_id {
        Some(id) => parse_id("chargeId", id)?,
        None => reservation_id,
    };
    Ok((reservation_id, charge_id))
}
