use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use draftr_common::ApiResult;
use draftr_common::graphql::require_service_call;

use super::types::{Payment, parse_id};
use crate::service::{AuthorizeRequest, PaymentService};

pub struct Mutation;

#[Object]
impl Mutation {
    /// Service only: holds the reservation's total on the payment method. Idempotent per
    /// reservation.
    #[graphql(inaccessible)]
    #[allow(clippy::too_many_arguments)]
    async fn authorize_payment(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        guest_id: ID,
        host_id: ID,
        amount: i32,
        currency: String,
        payment_method: String,
    ) -> ApiResult<Payment> {
        require_service_call(ctx)?;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        let payment = service
            .authorize(AuthorizeRequest {
                reservation_id: parse_id("reservationId", &reservation_id)?,
                guest_id: parse_id("guestId", &guest_id)?,
                host_id: parse_id("hostId", &host_id)?,
                amount: i64::from(amount),
                currency,
                payment_method,
            })
            .await?;
        Ok(Payment(payment))
    }

    /// Service only: takes the held funds of a confirmed reservation. Idempotent.
    #[graphql(inaccessible)]
    async fn capture_payment(&self, ctx: &Context<'_>, reservation_id: ID) -> ApiResult<Payment> {
        require_service_call(ctx)?;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        Ok(Payment(
            service
                .capture(parse_id("reservationId", &reservation_id)?)
                .await?,
        ))
    }

    /// Service only: undoes the payment of a booking that did not happen (void, or full
    /// refund). `paymentMethod` settles an authorization whose outcome is unknown.
    #[graphql(inaccessible)]
    async fn cancel_payment(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        payment_method: Option<String>,
    ) -> ApiResult<Option<Payment>> {
        require_service_call(ctx)?;
        // No longer used: an unknown outcome is looked up at the provider, never settled by
        // authorizing again. Kept so that callers sending it still validate.
        let _ = payment_method;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        Ok(service
            .cancel(parse_id("reservationId", &reservation_id)?)
            .await?
            .map(Payment))
    }

    /// Service only: refunds `amount` (minor units) of a cancelled reservation's payment,
    /// capturing first if needed. One refund per payment; a repeat is a no-op.
    #[graphql(inaccessible)]
    async fn refund_payment(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        amount: i32,
    ) -> ApiResult<Payment> {
        require_service_call(ctx)?;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        Ok(Payment(
            service
                .refund(
                    parse_id("reservationId", &reservation_id)?,
                    i64::from(amount),
                )
                .await?,
        ))
    }
}
