//! The reservations subgraph's GraphQL API: reservations, quotes, and the booking calendar
//! that extends catalog's `Property` and auth's `User`.
//!
//! A reservation is visible to its guest, the property's host and admins; to anyone else it
//! does not exist: `reservation` answers NOT_FOUND, lists leave it out, and `_entities`
//! resolves the reference to null (as federation expects of an entity the caller cannot see).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    Context, EmptySubscription, ID, InputObject, Object, SDLExportOptions, Schema, SchemaBuilder,
    SimpleObject,
};
use chrono::{DateTime, NaiveDate, Utc};
use draftr_common::config::LimitSettings;
use draftr_common::graphql::{
    ConnectionFields, decode_uuid_cursor, encode_cursor, page_size, request_meta, viewer,
};
use draftr_common::{ApiError, ApiResult, Claims};
use uuid::Uuid;

use crate::domain::{CancellationPolicy, ReservationStatus};
use crate::service::{self, BookingRequest, ReservationService, Scope};

pub type ReservationsSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder(limits: &LimitSettings) -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    draftr_common::graphql::harden(
        Schema::build(Query, Mutation, EmptySubscription).enable_federation(),
        limits,
    )
}

pub fn schema(service: Arc<ReservationService>, limits: &LimitSettings) -> ReservationsSchema {
    builder(limits)
        .data(DataLoader::new(
            ReservationLoader {
                service: service.clone(),
            },
            tokio::spawn,
        ))
        .data(DataLoader::new(
            CalendarLoader {
                service: service.clone(),
            },
            tokio::spawn,
        ))
        .data(service)
        .finish()
}

/// The subgraph SDL as the router composes it (`schema/reservations.graphql`).
pub fn sdl() -> String {
    // The limits do not show in the SDL.
    builder(&LimitSettings::default())
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

pub use draftr_common::graphql::Date;

pub use draftr_common::graphql::Money;

/// Booked nights `[start, end)`: `end` is the check-out day, free for the next guest.
#[derive(SimpleObject, Clone, Debug)]
pub struct DateRange {
    pub start: Date,
    pub end: Date,
}

/// What a stay would cost, computed on the server from the property's current rate.
#[derive(SimpleObject, Clone, Debug)]
pub struct Quote {
    pub property_id: ID,
    pub check_in: Date,
    pub check_out: Date,
    pub guests: i32,
    pub nights: i32,
    pub nightly_rate: Money,
    pub total: Money,
    pub cancellation_policy: CancellationPolicy,
    /// Free right now (a booking can still lose a race for them).
    pub available: bool,
}

#[derive(InputObject)]
pub struct CreateReservationInput {
    pub property_id: ID,
    pub check_in: Date,
    pub check_out: Date,
    pub guests: i32,
    /// A Stripe payment-method id (`pm_card_visa` in test mode); never card numbers.
    pub payment_method: String,
    /// Chosen by the client for this booking attempt (a UUID); retrying with the same key
    /// returns the same reservation and never charges twice.
    pub idempotency_key: String,
}

pub struct Reservation(pub service::Reservation);

#[Object]
impl Reservation {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Resolved by catalog through the router.
    async fn property(&self) -> Property {
        Property {
            id: self.0.property_id,
        }
    }
    /// Resolved by auth through the router.
    async fn guest(&self) -> User {
        User {
            id: self.0.guest_id,
        }
    }
    async fn check_in(&self) -> Date {
        Date(self.0.check_in)
    }
    async fn check_out(&self) -> Date {
        Date(self.0.check_out)
    }
    async fn guests(&self) -> i32 {
        self.0.guests
    }
    async fn nights(&self) -> i32 {
        self.0.nights
    }
    async fn total(&self) -> Money {
        Money::minor_units(self.0.total_amount, &self.0.currency)
    }
    async fn status(&self) -> ApiResult<ReservationStatus> {
        Ok(ReservationStatus::parse(&self.0.status)?)
    }
    /// The property's policy when this was booked; it decides the refund on cancellation.
    async fn cancellation_policy(&self) -> ApiResult<CancellationPolicy> {
        Ok(CancellationPolicy::parse(&self.0.cancellation_policy)?)
    }
    /// What the cancellation gives back under that policy.
    async fn refund(&self) -> Option<Money> {
        self.0
            .refund_amount
            .map(|a| Money::minor_units(a, &self.0.currency))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn cancelled_at(&self) -> Option<DateTime<Utc>> {
        self.0.cancelled_at
    }
}

pub type ReservationConnection = Connection<String, Reservation, ConnectionFields, EmptyFields>;

/// A property (owned by catalog), extended with its booking calendar.
pub struct Property {
    pub id: Uuid,
}

fn check_range(from: NaiveDate, to: NaiveDate, from_field: &'static str) -> ApiResult<()> {
    if to <= from {
        return Err(ApiError::bad_input(
            from_field,
            "the range must end after it starts",
        ));
    }
    if (to - from).num_days() > 366 {
        return Err(ApiError::bad_input(
            from_field,
            "ranges are limited to 366 days",
        ));
    }
    Ok(())
}

#[Object]
impl Property {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// Whether `[checkIn, checkOut)` is free of active bookings.
    async fn is_available(
        &self,
        ctx: &Context<'_>,
        check_in: Date,
        check_out: Date,
    ) -> ApiResult<bool> {
        check_range(check_in.0, check_out.0, "checkIn")?;
        let booked = ctx
            .data_unchecked::<DataLoader<CalendarLoader>>()
            .load_one((self.id, check_in.0, check_out.0))
            .await?;
        Ok(booked.is_none_or(|b| b.is_empty()))
    }
    /// Booked stays overlapping `[from, to)` (dates only; who booked is not shown).
    async fn booked_ranges(
        &self,
        ctx: &Context<'_>,
        from: Date,
        to: Date,
    ) -> ApiResult<Vec<DateRange>> {
        check_range(from.0, to.0, "from")?;
        let booked = ctx
            .data_unchecked::<DataLoader<CalendarLoader>>()
            .load_one((self.id, from.0, to.0))
            .await?
            .unwrap_or_default();
        Ok(booked
            .into_iter()
            .map(|(s, e)| DateRange {
                start: Date(s),
                end: Date(e),
            })
            .collect())
    }
}

/// A user (owned by auth), extended with the reservations they made.
pub struct User {
    pub id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// The stays this user booked, newest first: for the user and admins.
    #[graphql(complexity = "draftr_common::graphql::list_cost(first, child_complexity)")]
    async fn reservations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<ReservationConnection> {
        let me = viewer(ctx).require_user()?;
        if me.sub != self.id && !me.is_admin() {
            return Err(ApiError::forbidden(
                "you can only list your own reservations",
            ));
        }
        list(ctx, Scope::Guest(self.id), first, after).await
    }
}

fn parse_id(field: &'static str, id: &ID) -> ApiResult<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| ApiError::bad_input(field, format!("{field} is not a valid id")))
}

fn request_id(ctx: &Context<'_>) -> String {
    request_meta(ctx)
        .map(|m| m.request_id.clone())
        .unwrap_or_default()
}

fn may_see(ctx: &Context<'_>, me: Option<&Claims>, r: &service::Reservation) -> bool {
    request_meta(ctx).is_some_and(|m| m.service_call)
        || me.is_some_and(|c| c.is_admin() || c.sub == r.guest_id || c.sub == r.host_id)
}

/// The reservation, if it exists and the caller may see it.
async fn visible(ctx: &Context<'_>, id: Uuid) -> ApiResult<Option<service::Reservation>> {
    let me = viewer(ctx).user()?;
    let found = ctx
        .data_unchecked::<DataLoader<ReservationLoader>>()
        .load_one(id)
        .await?;
    Ok(found.filter(|r| may_see(ctx, me, r)))
}

async fn list(
    ctx: &Context<'_>,
    scope: Scope,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<ReservationConnection> {
    let limit = page_size(first)?;
    let after_id = decode_uuid_cursor(after.as_deref())?;
    let service = ctx.data_unchecked::<Arc<ReservationService>>();
    let (rows, more) = service.page(scope, after_id, limit).await?;
    let total = if ctx.look_ahead().field("totalCount").exists() {
        service.count(scope).await?
    } else {
        0
    };
    let mut c = ReservationConnection::with_additional_fields(
        after_id.is_some(),
        more,
        ConnectionFields { total_count: total },
    );
    c.edges.extend(
        rows.into_iter()
            .map(|r| Edge::new(encode_cursor(&r.id.to_string()), Reservation(r))),
    );
    Ok(c)
}

pub struct Query;

#[Object]
impl Query {
    /// A reservation: for its guest, the property's host, or an admin.
    /// (Null with a NOT_FOUND error when it does not exist or is someone else's.)
    async fn reservation(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Reservation>> {
        viewer(ctx).require_user()?;
        match visible(ctx, parse_id("id", &id)?).await? {
            Some(r) => Ok(Some(Reservation(r))),
            None => Err(ApiError::not_found("reservation not found")),
        }
    }

    /// Admins: every reservation. Others: those they booked or host.
    #[graphql(complexity = "draftr_common::graphql::list_cost(first, child_complexity)")]
    async fn reservations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<ReservationConnection> {
        let me = viewer(ctx).require_user()?;
        let scope = if me.is_admin() {
            Scope::All
        } else {
            Scope::Party(me.sub)
        };
        list(ctx, scope, first, after).await
    }

    /// What a stay costs and whether it is free, before booking it.
    async fn quote(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
        check_in: Date,
        check_out: Date,
        guests: i32,
    ) -> ApiResult<Quote> {
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let q = service
            .quote(
                parse_id("propertyId", &property_id)?,
                check_in.0,
                check_out.0,
                guests,
                &request_id(ctx),
            )
            .await?;
        Ok(Quote {
            property_id: ID(q.property_id.to_string()),
            check_in: Date(q.check_in),
            check_out: Date(q.check_out),
            guests: q.guests,
            nights: q.nights as i32,
            nightly_rate: Money::minor_units(q.nightly_rate, &q.currency),
            total: Money::minor_units(q.total, &q.currency),
            cancellation_policy: q.cancellation_policy,
            available: q.available,
        })
    }

    /// Federation: null for an id that is not a reservation the caller may see.
    #[graphql(entity)]
    async fn find_reservation_by_id(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> ApiResult<Option<Reservation>> {
        let Ok(id) = Uuid::parse_str(id.as_str()) else {
            return Ok(None);
        };
        Ok(visible(ctx, id).await?.map(Reservation))
    }

    #[graphql(entity)]
    async fn find_property_by_id(&self, id: ID) -> Option<Property> {
        Uuid::parse_str(id.as_str()).ok().map(|id| Property { id })
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        Uuid::parse_str(id.as_str()).ok().map(|id| User { id })
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Books a stay and pays for it. The total comes from the property's nightly rate; the
    /// dates are held before the card is touched, so a lost race costs nothing.
    async fn create_reservation(
        &self,
        ctx: &Context<'_>,
        input: CreateReservationInput,
    ) -> ApiResult<Reservation> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let r = service
            .create(
                me.sub,
                BookingRequest {
                    property_id: parse_id("propertyId", &input.property_id)?,
                    check_in: input.check_in.0,
                    check_out: input.check_out.0,
                    guests: input.guests,
                    payment_method: input.payment_method,
                    idempotency_key: input.idempotency_key,
                },
                &request_id(ctx),
            )
            .await?;
        Ok(Reservation(r))
    }

    /// Cancels a confirmed stay (its guest, or an admin) and refunds per the policy.
    async fn cancel_reservation(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Reservation> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let r = service
            .cancel(me, parse_id("id", &id)?, &request_id(ctx))
            .await?;
        Ok(Reservation(r))
    }

    /// Admins only: removes a cancelled or failed reservation's record.
    async fn delete_reservation(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        viewer(ctx).require_admin()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        Ok(service.delete(parse_id("id", &id)?).await?)
    }
}

/// Batches reservation lookups (`reservation`, `_entities`) into one query.
pub struct ReservationLoader {
    service: Arc<ReservationService>,
}

impl Loader<Uuid> for ReservationLoader {
    type Value = service::Reservation;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, service::Reservation>, ApiError> {
        Ok(self.service.get_many(keys).await?)
    }
}

/// Batches `isAvailable` / `bookedRanges` over a page of properties: one query per range.
pub struct CalendarLoader {
    service: Arc<ReservationService>,
}

type CalendarKey = (Uuid, NaiveDate, NaiveDate);

impl Loader<CalendarKey> for CalendarLoader {
    type Value = Vec<(NaiveDate, NaiveDate)>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[CalendarKey],
    ) -> Result<HashMap<CalendarKey, Vec<(NaiveDate, NaiveDate)>>, ApiError> {
        Ok(self.service.calendar(keys).await?)
    }
}
