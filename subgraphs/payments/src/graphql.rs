//! The payments subgraph's GraphQL API (API.md, "payments").
//!
//! Public: `Payment` (to its payer, the property's host and admins) and `Reservation.payment`.
//! Service only (`@inaccessible`, and refused without the service credential): the operations
//! reservations' booking saga drives.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    Context, EmptySubscription, Enum, ID, Object, SDLExportOptions, Schema, SchemaBuilder,
};
use chrono::{DateTime, Utc};
use draftr_common::graphql::{request_meta, require_service_call, viewer};
use draftr_common::{ApiError, ApiResult};
use uuid::Uuid;

use crate::service::{self, AuthorizeRequest, PaymentService};

pub type PaymentsSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    draftr_common::graphql::harden(
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
    )
}

pub fn schema(service: Arc<PaymentService>) -> PaymentsSchema {
    builder()
        .data(DataLoader::new(
            PaymentLoader {
                service: service.clone(),
            },
            tokio::spawn,
        ))
        .data(DataLoader::new(
            PaymentByReservationLoader {
                service: service.clone(),
            },
            tokio::spawn,
        ))
        .data(service)
        .finish()
}

/// The subgraph SDL as the router composes it (`schema/payments.graphql`).
pub fn sdl() -> String {
    builder()
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

pub use draftr_common::graphql::Money;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Sent to the provider; the outcome is not known yet.
    Pending,
    Authorized,
    Captured,
    Canceled,
    Refunded,
    PartiallyRefunded,
    Failed,
}

impl PaymentStatus {
    fn parse(s: &str) -> Self {
        match s {
            service::status::AUTHORIZED => Self::Authorized,
            service::status::CAPTURED => Self::Captured,
            service::status::CANCELED => Self::Canceled,
            service::status::REFUNDED => Self::Refunded,
            service::status::PARTIALLY_REFUNDED => Self::PartiallyRefunded,
            service::status::FAILED => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// The payment of one reservation: amounts and state only, never card data.
pub struct Payment(service::Payment);

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
    async fn status(&self) -> PaymentStatus {
        PaymentStatus::parse(&self.0.status)
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
    id: Uuid,
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
fn visible(ctx: &Context<'_>, payment: Option<service::Payment>) -> ApiResult<Option<Payment>> {
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

fn parse_id(field: &'static str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| ApiError::bad_input(field, "not a valid id"))
}

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

    /// Service only: the payment of a reservation, for the booking saga and its reconciler.
    #[graphql(inaccessible)]
    async fn payment_for_reservation(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> ApiResult<Option<Payment>> {
        require_service_call(ctx)?;
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        Ok(service
            .by_reservation(parse_id("reservationId", &reservation_id)?)
            .await?
            .map(Payment))
    }

    #[graphql(entity)]
    async fn find_payment_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Payment>> {
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
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
        Uuid::parse_str(id.as_str())
            .ok()
            .map(|id| Reservation { id })
    }
}

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
        let service = ctx.data_unchecked::<Arc<PaymentService>>();
        Ok(service
            .cancel(
                parse_id("reservationId", &reservation_id)?,
                payment_method.as_deref(),
            )
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

/// Batches `payment` and `_entities` lookups by payment id.
pub struct PaymentLoader {
    service: Arc<PaymentService>,
}

impl Loader<Uuid> for PaymentLoader {
    type Value = service::Payment;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, service::Payment>, ApiError> {
        Ok(self.service.get_many(keys).await?)
    }
}

/// Batches `Reservation.payment` lookups (a page of reservations is one query).
pub struct PaymentByReservationLoader {
    service: Arc<PaymentService>,
}

impl Loader<Uuid> for PaymentByReservationLoader {
    type Value = service::Payment;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, service::Payment>, ApiError> {
        Ok(self.service.by_reservations(keys).await?)
    }
}
