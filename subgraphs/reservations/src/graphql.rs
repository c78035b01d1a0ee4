//! The reservations subgraph's GraphQL API: reservations, quotes, and the booking calendar
//! that extends catalog's `Property` and auth's `User`.
//!
//! A reservation is visible to its guest, the property's host and admins; to anyone else it
//! does not exist: `reservation` answers NOT_FOUND, lists leave it out, and `_entities`
//! resolves the reference to null (as federation expects of an entity the caller cannot see).
//!
//! Calendar blocks are the host's: `blockDates`, `unblockDates` and `Property.calendarBlocks`
//! are for the property's host and admins only; everyone else sees blocked nights only as
//! taken, in `bookedRanges` and `isAvailable`, exactly like booked ones.
//!
//! iCal feeds (`graphql/ical.rs`) are the host's too: `Property.icalExportUrl`,
//! `Property.calendarImports` and the import mutations follow the calendar blocks' rule.
//!
//! Reviews of stays are public: `Property.reviews`, `Property.rating` and `Review` (an entity)
//! show them to anyone; only the stay behind a review (`Review.reservation`) keeps the
//! reservation's visibility.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    Context, EmptySubscription, Enum, ID, InputObject, Object, SDLExportOptions, Schema,
    SchemaBuilder, SimpleObject,
};
use chrono::{DateTime, NaiveDate, Utc};
use draftr_common::config::LimitSettings;
use draftr_common::graphql::{
    ConnectionFields, decode_uuid_cursor, encode_cursor, page_size, request_meta, viewer,
};
use draftr_common::{ApiError, ApiResult, Claims};
use uuid::Uuid;

use crate::domain::{CancellationPolicy, ReservationStatus};
use crate::service::{
    self, BookingRequest, ChangeRequest, NewBlock, NewReview, ReservationService, Scope,
};

mod ical;
pub use ical::{AddCalendarImportInput, CalendarImport, CalendarImportStatus};

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
        .data(DataLoader::new(
            ReviewLoader {
                service: service.clone(),
            },
            tokio::spawn,
        ))
        .data(DataLoader::new(
            StayReviewLoader {
                service: service.clone(),
            },
            tokio::spawn,
        ))
        .data(DataLoader::new(
            RatingLoader {
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

/// A change of a confirmed stay. Absent fields keep the stay's value; at least one of
/// `checkIn`, `checkOut` and `guests` is needed.
#[derive(InputObject)]
pub struct ChangeReservationInput {
    pub check_in: Option<Date>,
    pub check_out: Option<Date>,
    pub guests: Option<i32>,
    /// Pays the difference when the new total is higher (a Stripe payment-method id); the
    /// booking's own payment method if absent.
    pub payment_method: Option<String>,
    /// Chosen by the client for this change attempt (a UUID); retrying with the same key
    /// answers as the first attempt did and never charges twice.
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
    /// The guest's review of this stay; null until there is one (or after an admin removed it).
    async fn review(&self, ctx: &Context<'_>) -> ApiResult<Option<Review>> {
        Ok(ctx
            .data_unchecked::<DataLoader<StayReviewLoader>>()
            .load_one(self.0.id)
            .await?
            .map(Review))
    }
}

/// A guest's review of a stay that ended, and the host's reply. Public.
pub struct Review(pub service::Review);

#[Object]
impl Review {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// 1 to 5.
    async fn rating(&self) -> i32 {
        i32::from(self.0.rating)
    }
    async fn comment(&self) -> &str {
        &self.0.comment
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// The host's answer; null until they reply.
    async fn reply(&self) -> Option<&str> {
        self.0.reply.as_deref()
    }
    async fn replied_at(&self) -> Option<DateTime<Utc>> {
        self.0.replied_at
    }
    /// The guest who wrote it; resolved by auth through the router.
    async fn author(&self) -> User {
        User {
            id: self.0.guest_id,
        }
    }
    /// Resolved by catalog through the router.
    async fn property(&self) -> Property {
        Property {
            id: self.0.property_id,
        }
    }
    /// The stay reviewed: for its guest, the property's host and admins; null for anyone else.
    async fn reservation(&self, ctx: &Context<'_>) -> ApiResult<Option<Reservation>> {
        Ok(visible(ctx, self.0.reservation_id).await?.map(Reservation))
    }
}

pub type ReviewConnection = Connection<String, Review, ConnectionFields, EmptyFields>;

/// A property's rating over its reviews (removed ones do not count).
#[derive(SimpleObject, Clone, Copy, Debug)]
pub struct Rating {
    /// The mean rating, 1 to 5; null without reviews.
    pub average: Option<f64>,
    pub count: i32,
}

#[derive(InputObject)]
pub struct CreateReviewInput {
    /// The stay reviewed: yours, CONFIRMED, from its check-out day until the window closes.
    pub reservation_id: ID,
    /// 1 to 5.
    pub rating: i32,
    /// 1–2000 characters (trimmed).
    pub comment: String,
}

pub type ReservationConnection = Connection<String, Reservation, ConnectionFields, EmptyFields>;

/// Where a calendar block came from.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarBlockSource {
    /// Made by the host (or an admin) with `blockDates`.
    Manual,
    /// From an event of an imported iCal feed (`addCalendarImport`); follows the feed.
    Imported,
}

impl CalendarBlockSource {
    fn parse(s: &str) -> Result<Self, crate::error::Error> {
        match s {
            "MANUAL" => Ok(Self::Manual),
            "IMPORTED" => Ok(Self::Imported),
            other => Err(crate::error::Error::Internal(anyhow::anyhow!(
                "unknown calendar block source {other:?}"
            ))),
        }
    }
}

/// Nights `[from, to)` the host took off sale: no one can book them while the block exists.
/// For the property's host and admins only; guests see the nights as taken, never why.
pub struct CalendarBlock(pub service::Block);

#[Object]
impl CalendarBlock {
    /// Stable: never reused, kept by exports of the calendar.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The first blocked night.
    async fn from(&self) -> Date {
        Date(self.0.starts_on)
    }
    /// Exclusive, like a stay's `checkOut`: the day after the last blocked night.
    async fn to(&self) -> Date {
        Date(self.0.ends_on)
    }
    /// The host's own words, if any.
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }
    async fn source(&self) -> ApiResult<CalendarBlockSource> {
        Ok(CalendarBlockSource::parse(&self.0.source)?)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

#[derive(InputObject)]
pub struct BlockDatesInput {
    pub property_id: ID,
    /// The first night to block: today (UTC) or later, at most 730 days ahead.
    pub from: Date,
    /// Exclusive (the day after the last blocked night); at most 366 nights after `from`.
    pub to: Date,
    /// Private to the host and admins; at most 500 characters (trimmed; empty is none).
    pub note: Option<String>,
}

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
    /// Whether `[checkIn, checkOut)` is free: no active booking and no calendar block.
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
    /// Taken nights overlapping `[from, to)`: booked stays and the host's calendar blocks
    /// alike (dates only; who booked, or why the host blocked, is not shown).
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
    /// The host's calendar blocks sharing a night with `[from, to)`, earliest first: for the
    /// property's host and admins (others get null with FORBIDDEN).
    async fn calendar_blocks(
        &self,
        ctx: &Context<'_>,
        from: Date,
        to: Date,
    ) -> ApiResult<Option<Vec<CalendarBlock>>> {
        let me = viewer(ctx).require_user()?;
        check_range(from.0, to.0, "from")?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let blocks = service
            .calendar_blocks(me, self.id, from.0, to.0, &request_id(ctx))
            .await?;
        Ok(Some(blocks.into_iter().map(CalendarBlock).collect()))
    }
    /// The secret URL of this property's iCal feed (its confirmed stays and blocks, no guest
    /// data), for other calendars to subscribe to: the host and admins (others get null with
    /// FORBIDDEN). `rotateIcalExportUrl` replaces it.
    async fn ical_export_url(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        Ok(Some(
            service
                .ical_export_url(me, self.id, &request_id(ctx))
                .await?,
        ))
    }
    /// The iCal feeds imported into this calendar, oldest first: the host and admins (others
    /// get null with FORBIDDEN).
    async fn calendar_imports(&self, ctx: &Context<'_>) -> ApiResult<Option<Vec<CalendarImport>>> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let rows = service
            .calendar_imports(me, self.id, &request_id(ctx))
            .await?;
        Ok(Some(rows.into_iter().map(CalendarImport).collect()))
    }
    /// Guests' reviews of their stays here, newest first. Public.
    #[graphql(complexity = "draftr_common::graphql::list_cost(first, child_complexity)")]
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<ReviewConnection> {
        let limit = page_size(first)?;
        let after_id = decode_uuid_cursor(after.as_deref())?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let (rows, more) = service.review_page(self.id, after_id, limit).await?;
        // The count is the rating's, so a page of properties shares one statement for it.
        let total = if ctx.look_ahead().field("totalCount").exists() {
            self.load_rating(ctx).await?.count.max(0) as u64
        } else {
            0
        };
        let mut c = ReviewConnection::with_additional_fields(
            after_id.is_some(),
            more,
            ConnectionFields { total_count: total },
        );
        c.edges.extend(
            rows.into_iter()
                .map(|r| Edge::new(encode_cursor(&r.id.to_string()), Review(r))),
        );
        Ok(c)
    }
    /// The average and number of its reviews. Public.
    async fn rating(&self, ctx: &Context<'_>) -> ApiResult<Rating> {
        let r = self.load_rating(ctx).await?;
        Ok(Rating {
            average: r.average(),
            count: i32::try_from(r.count).unwrap_or(i32::MAX),
        })
    }
}

impl Property {
    async fn load_rating(&self, ctx: &Context<'_>) -> ApiResult<service::Rating> {
        Ok(ctx
            .data_unchecked::<DataLoader<RatingLoader>>()
            .load_one(self.id)
            .await?
            .unwrap_or_default())
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

    /// Federation: null for an id that is not a shown review.
    #[graphql(entity)]
    async fn find_review_by_id(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Review>> {
        let Some(id) = draftr_common::graphql::entity_id(&id) else {
            return Ok(None);
        };
        Ok(ctx
            .data_unchecked::<DataLoader<ReviewLoader>>()
            .load_one(id)
            .await?
            .map(Review))
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

    /// Changes a confirmed stay that has not started (its guest, or an admin): new dates
    /// and/or guests, validated and priced like a new booking at the property's current rate.
    /// The new nights are taken and the old released in one step, so the new dates may
    /// overlap the old. A higher total charges the difference (`paymentMethod`, or the
    /// booking's); a lower one refunds the difference under the cancellation policy, as if
    /// those nights were cancelled now. BOOKING_CONFLICT when another booking or a block has
    /// one of the new nights; a declined card leaves the booking exactly as it was.
    async fn change_reservation(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ChangeReservationInput,
    ) -> ApiResult<Reservation> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let r = service
            .change(
                me,
                parse_id("id", &id)?,
                ChangeRequest {
                    check_in: input.check_in.map(|d| d.0),
                    check_out: input.check_out.map(|d| d.0),
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

    /// Takes `[from, to)` of a property off sale: its host or an admin. BOOKING_CONFLICT when
    /// a live booking or another block has one of those nights.
    async fn block_dates(
        &self,
        ctx: &Context<'_>,
        input: BlockDatesInput,
    ) -> ApiResult<CalendarBlock> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let b = service
            .block_dates(
                me,
                NewBlock {
                    property_id: parse_id("propertyId", &input.property_id)?,
                    from: input.from.0,
                    to: input.to.0,
                    note: input.note,
                },
                &request_id(ctx),
            )
            .await?;
        Ok(CalendarBlock(b))
    }

    /// Removes a calendar block (the property's host or an admin): true when removed, false
    /// when there is no such block (removed already).
    async fn unblock_dates(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        Ok(service.unblock_dates(me, parse_id("id", &id)?).await?)
    }

    /// Replaces the property's iCal export URL (its host or an admin): the previous URL
    /// answers 404 from now on. The new URL.
    async fn rotate_ical_export_url(
        &self,
        ctx: &Context<'_>,
        property_id: ID,
    ) -> ApiResult<String> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        Ok(service
            .rotate_ical_export_url(me, parse_id("propertyId", &property_id)?, &request_id(ctx))
            .await?)
    }

    /// Imports an iCal feed into the property's calendar (its host or an admin): its events
    /// become blocks (source IMPORTED), synced now and then on a schedule. An event over a
    /// booking is not blocked but reported (status CONFLICTS, and an email to the host).
    async fn add_calendar_import(
        &self,
        ctx: &Context<'_>,
        input: AddCalendarImportInput,
    ) -> ApiResult<CalendarImport> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let row = service
            .add_calendar_import(
                me,
                service::ical::NewImport {
                    property_id: parse_id("propertyId", &input.property_id)?,
                    url: input.url,
                    name: input.name,
                },
                &request_id(ctx),
            )
            .await?;
        Ok(CalendarImport(row))
    }

    /// Removes an import and its blocks, freeing their nights: true when removed, false when
    /// there is no such import.
    async fn remove_calendar_import(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        Ok(service
            .remove_calendar_import(me, parse_id("id", &id)?)
            .await?)
    }

    /// Syncs an import now instead of at its next scheduled poll.
    async fn sync_calendar_import(&self, ctx: &Context<'_>, id: ID) -> ApiResult<CalendarImport> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        Ok(CalendarImport(
            service
                .sync_calendar_import(me, parse_id("id", &id)?)
                .await?,
        ))
    }

    /// Reviews a stay: its guest only, once, from its check-out day (UTC) until 14 days after
    /// (a setting: `DRAFTR_RESERVATIONS__REVIEWS__WINDOW_DAYS`).
    async fn create_review(
        &self,
        ctx: &Context<'_>,
        input: CreateReviewInput,
    ) -> ApiResult<Review> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let r = service
            .create_review(
                me,
                NewReview {
                    reservation_id: parse_id("reservationId", &input.reservation_id)?,
                    rating: input.rating,
                    comment: input.comment,
                },
            )
            .await?;
        Ok(Review(r))
    }

    /// The stay's host answers a review, once (1–2000 characters, trimmed).
    async fn reply_to_review(&self, ctx: &Context<'_>, id: ID, reply: String) -> ApiResult<Review> {
        let me = viewer(ctx).require_user()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        let r = service
            .reply_to_review(me, parse_id("id", &id)?, &reply)
            .await?;
        Ok(Review(r))
    }

    /// Admins only: takes a review down (from the property's reviews and its rating). False
    /// when it was removed already.
    async fn remove_review(&self, ctx: &Context<'_>, id: ID) -> ApiResult<bool> {
        viewer(ctx).require_admin()?;
        let service = ctx.data_unchecked::<Arc<ReservationService>>();
        Ok(service.remove_review(parse_id("id", &id)?).await?)
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

/// Batches `_entities` lookups of reviews.
pub struct ReviewLoader {
    service: Arc<ReservationService>,
}

impl Loader<Uuid> for ReviewLoader {
    type Value = service::Review;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, service::Review>, ApiError> {
        Ok(self.service.reviews(keys).await?)
    }
}

/// Batches `Reservation.review` over a page of reservations: keyed by reservation id.
pub struct StayReviewLoader {
    service: Arc<ReservationService>,
}

impl Loader<Uuid> for StayReviewLoader {
    type Value = service::Review;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, service::Review>, ApiError> {
        Ok(self.service.reviews_of_stays(keys).await?)
    }
}

/// Batches `Property.rating` (and `reviews { totalCount }`) over a page of properties: one
/// statement for the page.
pub struct RatingLoader {
    service: Arc<ReservationService>,
}

impl Loader<Uuid> for RatingLoader {
    type Value = service::Rating;
    type Error = ApiError;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, service::Rating>, ApiError> {
        Ok(self.service.ratings(keys).await?)
    }
}

#[cfg(test)]
mod tests {
    //! `Property.rating` over a page of properties costs one statement, however long the page
    //! (the router's `_entities` call for a search page), on both backends.

    use draftr_common::testing::{Backend, TestDatabase};
    use sea_orm::{ActiveModelTrait, IntoActiveModel};
    use serde_json::json;

    use super::*;
    use crate::clients::{CatalogClient, PaymentsClient};
    use crate::config::BookingSettings;

    async fn ratings_of_a_page_cost_one_statement(backend: Backend) {
        let test = TestDatabase::new(backend).await;
        let (db, statements) = draftr_common::db::connect_counted(&test.settings)
            .await
            .unwrap();
        crate::app::migrate(&db).await.unwrap();
        let nowhere = || "http://127.0.0.1:9/".to_owned();
        let policy = draftr_common::service_client::CallPolicy::default();
        let metrics = draftr_common::metrics::SubgraphMetrics::new("reservations").unwrap();
        let service = Arc::new(ReservationService::new(
            db.clone(),
            Arc::new(CatalogClient::new(nowhere(), None, policy.clone()).unwrap()),
            Arc::new(PaymentsClient::new(nowhere(), None, policy).unwrap()),
            BookingSettings::default(),
            crate::config::ReviewSettings::default(),
            draftr_common::metrics::ReservationMetrics::register(&metrics).unwrap(),
        ));
        let schema = schema(service, &LimitSettings::default());

        // 50 properties; property i has i % 3 reviews rated 5, 4 (so averages 5 and 4.5).
        let mut properties = Vec::new();
        for i in 0..50 {
            let stay = crate::store::testing::row();
            properties.push(stay.property_id);
            for n in 0..(i % 3) {
                let stay = crate::store::Reservation {
                    id: Uuid::now_v7(),
                    status: "CONFIRMED".into(),
                    idempotency_key: format!("key-{}", Uuid::now_v7().simple()),
                    check_in: stay.check_in + chrono::Duration::days(10 * n),
                    check_out: stay.check_out + chrono::Duration::days(10 * n),
                    ..stay.clone()
                };
                stay.clone()
                    .into_active_model()
                    .reset_all()
                    .insert(&db)
                    .await
                    .unwrap();
                crate::store::reviews::insert(
                    &db,
                    service::Review {
                        id: Uuid::now_v7(),
                        reservation_id: stay.id,
                        property_id: stay.property_id,
                        guest_id: stay.guest_id,
                        host_id: stay.host_id,
                        rating: 5 - n as i16,
                        comment: "Fine".into(),
                        created_at: Utc::now(),
                        reply: None,
                        replied_at: None,
                        removed_at: None,
                    },
                )
                .await
                .unwrap();
            }
        }

        let query = "query($r: [_Any!]!) { _entities(representations: $r) {
            ... on Property { id rating { average count } } } }";
        let mut cost = Vec::new();
        for n in [10, 50] {
            let reps: Vec<_> = properties[..n]
                .iter()
                .map(|p| json!({ "__typename": "Property", "id": p.to_string() }))
                .collect();
            let before = statements.get();
            let res = schema
                .execute(
                    async_graphql::Request::new(query)
                        .variables(async_graphql::Variables::from_json(json!({ "r": reps }))),
                )
                .await;
            assert!(res.errors.is_empty(), "{:?}", res.errors);
            cost.push(statements.get() - before);
            let data = res.data.into_json().unwrap();
            let got = data["_entities"].as_array().unwrap();
            assert_eq!(got.len(), n);
            for (i, e) in got.iter().enumerate() {
                let (count, average) = match i % 3 {
                    0 => (0, json!(null)),
                    1 => (1, json!(5.0)),
                    _ => (2, json!(4.5)),
                };
                assert_eq!(e["rating"]["count"], count, "{e}");
                assert_eq!(e["rating"]["average"], average, "{e}");
            }
        }
        // async-graphql joins more than 30 `_entities` in a `FuturesUnordered`, which may yield
        // before it has polled them all; if the loader's 1 ms delay runs out in such a gap (a
        // slow debug build on a loaded machine: 3 batches were seen once), the rest of the page
        // is another batch. The same happens with 10 when the resolving thread is preempted
        // for over 1 ms (2 statements were seen once, in a CI run). What is checked is that the
        // statements do not follow the page: at most 2 for 10 properties and 5 for 50, where
        // one per property would be 10 and 50.
        assert!(cost[0] <= 2, "statements for 10 properties: {cost:?}");
        assert!(cost[1] <= 5, "statements for 50 properties: {cost:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ratings_of_a_page_cost_one_statement_on_postgres() {
        ratings_of_a_page_cost_one_statement(Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ratings_of_a_page_cost_one_statement_on_sqlite() {
        ratings_of_a_page_cost_one_statement(Backend::Sqlite).await
    }
}
