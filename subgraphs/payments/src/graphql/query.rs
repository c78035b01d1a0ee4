use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object};
use draftr_common::ApiResult;
use draftr_common::graphql::{entity_id, require_service_call, viewer};

use super::loaders::PaymentLoader;
use super::types::{Payment, Reservation, charge_ids, parse_id, visible};
use crate::service::PaymentService;

pub struct Query;

#[Object]
impl Query {
    /// A payment, to its payer, the property's host and admins.
    async fn payment(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Payment>> {
        viewer(ctx).require_user()?;
        let id = parse_id("id", &id)?;
        let found = ctx
            .data_unchecked::<DataLoader<PaymentLoader>>()
            .load_one(id)
            .await?;
        visible(ctx, found)
    }

    /// Service only: the payment of a reservation's charge (by default the booking's own),
    /// for the booking saga and its reconciler.
    #[graphql(inaccessible)]
    async fn payment_for_reservation(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
        charge_id: Option<ID>,
    ) -> ApiResult<Option<Payment>> {
        require_service_call(ctx)?;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        let (reservation_id, charge_id) = charge_ids(&reservation_id, charge_id.as_ref())?;
        Ok(service
            .by_charge(reservation_id, charge_id)
            .await?
            .map(Payment))
    }

    #[graphql(entity)]
    async fn find_payment_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Payment>> {
        let Some(id) = entity_id(&id) else {
            return Ok(None);
        };
        let found = ctx
            .data_unchecked::<DataLoader<PaymentLoader>>()
            .load_one(id)
            .await?;
        visible(ctx, found)
    }

    #[graphql(entity)]
    async fn find_reservation_by_id(&self, id: ID) -> Option<Reservation> {
        entity_id(&id).map(|id| Reservation { id })
    }
}
