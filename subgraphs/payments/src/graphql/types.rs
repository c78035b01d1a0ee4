use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use draftr_common::graphql::{request_meta, viewer};
use draftr_common::{ApiError, ApiResult};
use uuid::Uuid;

use super::loaders::PaymentByReservationLoader;
use crate::domain::PaymentStatus;
use crate::service;

pub use draftr_common::graphql::Money;

/// The payment of one reservation: amounts and state only, never card data.
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
    /// The payment for this reservation, for its guest, the property's host and admins.
    async fn payment(&self, ctx: &Context<'_>) -> ApiResult<Option<Payment>> {
        let found = ctx
            .data_unchecked::<DataLoader<PaymentByReservationLoader>>()
            .load_one(self.id)
            .await?;
        visible(ctx, found)
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
