use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use draftr_common::ApiResult;
use draftr_common::graphql::require_service_call;

use super::types::{Payment, charge_ids, parse_id};
use crate::service::{AuthorizeRequest, CANCEL_REFUND_KEY, PaymentService};

pub struct Mutation;

#[Object]
impl Mutation {
    /// Service only: holds an amount on the payment method: the reservation's total, or with
    /// `chargeId` (a change's id) the extra charge of a change that raised it. Idempotent per
    /// charge (`chargeId` defaults to `reservationId`).
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
        charge_id: Option<ID>,
    ) -> ApiResult<Payment> {
        require_service_call(ctx)?;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        let (reservation_id, charge_id) = charge_ids(&reservation_id, charge_id.as_ref())?;
        let payment = service
            .authorize(AuthorizeRequest {
                reservation_id,
                charge_id,
                guest_id: parse_id("guestId", &guest_id)?,
                host_id: parse_id("hostId", &host_id)?,
                amount: i64::from(amount),
                currency,
                payment_method,
            })
            .await?;
        Ok(Payment(payment))
    }

    /// Service only: takes the held funds of a confirmed reservation's charge (by default the
    /// booking's own). Idempotent.
    #[graphql(inaccessible)]
    async fn capture_payment(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        charge_id: Option<ID>,
    ) -> ApiResult<Payment> {
        require_service_call(ctx)?;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        let (reservation_id, charge_id) = charge_ids(&reservation_id, charge_id.as_ref())?;
        Ok(Payment(service.capture(reservation_id, charge_id).await?))
    }

    /// Service only: undoes the payment of a charge that did not happen (by default the
    /// booking's own): void, or full refund of that charge alone. `paymentMethod` settles an
    /// authorization whose outcome is unknown.
    #[graphql(inaccessible)]
    async fn cancel_payment(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        payment_method: Option<String>,
        charge_id: Option<ID>,
    ) -> ApiResult<Option<Payment>> {
        require_service_call(ctx)?;
        // No longer used: an unknown outcome is looked up at the provider, never settled by
        // authorizing again. Kept so that callers sending it still validate.
        let _ = payment_method;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        let (reservation_id, charge_id) = charge_ids(&reservation_id, charge_id.as_ref())?;
        Ok(service
            .cancel(reservation_id, charge_id)
            .await?
            .map(Payment))
    }

    /// Service only: refunds `amount` (minor units) of a reservation's payments, newest first,
    /// capturing first if needed. Idempotent per reservation and `refundKey` (default
    /// `cancel`, a cancellation's refund; at most 64 of `A-Z a-z 0-9 _ -`): a repeat refunds
    /// nothing twice and finishes one that failed half way. Returns the booking's own payment.
    #[graphql(inaccessible)]
    async fn refund_payment(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        amount: i32,
        refund_key: Option<String>,
    ) -> ApiResult<Payment> {
        require_service_call(ctx)?;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        Ok(Payment(
            service
                .refund(
                    parse_id("reservationId", &reservation_id)?,
                    i64::from(amount),
                    refund_key.as_deref().unwrap_or(CANCEL_REFUND_KEY),
                )
                .await?,
        ))
    }
}
