//! The notifications subgraph's GraphQL API (API.md, "notifications"): `User.notifications`
//! and the subscriptions served over graphql-ws at `/ws`.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{
    Context, EmptyMutation, ID, Object, SDLExportOptions, Schema, SchemaBuilder, SimpleObject,
    Subscription,
};
use chrono::{DateTime, NaiveDate, Utc};
use draftr_common::graphql::{
    ConnectionFields, decode_uuid_cursor, encode_cursor, page_size, viewer,
};
use draftr_common::{ApiError, ApiResult};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

use crate::live::{LiveHub, LiveUpdate};
use crate::store::notifications;

pub type NotificationsSchema = Schema<Query, EmptyMutation, Subscription>;

fn builder() -> SchemaBuilder<Query, EmptyMutation, Subscription> {
    draftr_common::graphql::harden(
        Schema::build(Query, EmptyMutation, Subscription)
            .enable_federation()
            // The supergraph composes with its Subscription type (federated subscriptions).
            .enable_subscription_in_federation(),
    )
}

pub fn schema(db: DatabaseConnection, hub: LiveHub) -> NotificationsSchema {
    builder().data(db).data(hub).finish()
}

/// The subgraph SDL as the router composes it (`schema/notifications.graphql`).
pub fn sdl() -> String {
    builder()
        .finish()
        .sdl_with_options(SDLExportOptions::new().federation().compose_directive())
}

pub use draftr_common::graphql::Money;

pub use draftr_common::graphql::Date;

/// An email Draftr sent (or is sending) to a user.
pub struct Notification(notifications::Model);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// `booking_confirmed`, `new_booking`, `booking_cancelled`, `booking_cancelled_host`,
    /// `refund_issued`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    /// `PENDING`, `SENDING`, `SENT`, `RETRYING` (the mail server did not take it yet; another
    /// attempt is scheduled) or `FAILED` (gave up).
    async fn status(&self) -> &str {
        &self.0.status
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
}

pub type NotificationConnection = Connection<String, Notification, ConnectionFields, EmptyFields>;

/// A user (owned by auth), extended with the emails sent to them.
pub struct User {
    id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// Newest first; for the user and admins.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<NotificationConnection> {
        let me = viewer(ctx).require_user()?;
        if me.sub != self.id && !me.is_admin() {
            return Err(ApiError::forbidden(
                "you can only list your own notifications",
            ));
        }
        let limit = page_size(first)?;
        let after_id = decode_uuid_cursor(after.as_deref())?;
        let db = ctx.data_unchecked::<DatabaseConnection>();
        let mut q = notifications::Entity::find().filter(notifications::Column::UserId.eq(self.id));
        if let Some(a) = after_id {
            q = q.filter(notifications::Column::Id.lt(a));
        }
        let mut rows = q
            .order_by(notifications::Column::Id, Order::Desc)
            .limit(limit + 1)
            .all(db)
            .await?;
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let total = if ctx.look_ahead().field("totalCount").exists() {
            notifications::Entity::find()
                .filter(notifications::Column::UserId.eq(self.id))
                .count(db)
                .await?
        } else {
            0
        };
        let mut c = NotificationConnection::with_additional_fields(
            after_id.is_some(),
            more,
            ConnectionFields { total_count: total },
        );
        c.edges.extend(
            rows.into_iter()
                .map(|r| Edge::new(encode_cursor(&r.id.to_string()), Notification(r))),
        );
        Ok(c)
    }
}

/// A reservation (owned by reservations): the router resolves its fields.
pub struct Reservation {
    id: Uuid,
}

#[Object]
impl Reservation {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
}

/// Pushed to the guest when their booking is confirmed.
#[derive(SimpleObject)]
pub struct BookingConfirmation {
    pub reservation_id: ID,
    /// An entity reference: a federation gateway resolves `reservation { property { title } }`.
    pub reservation: Reservation,
    pub property_title: String,
    pub check_in: Date,
    pub check_out: Date,
    pub total: Money,
    pub confirmed_at: DateTime<Utc>,
}

/// A reservation's status changed.
#[derive(SimpleObject)]
pub struct ReservationStatusEvent {
    pub reservation_id: ID,
    pub reservation: Reservation,
    /// `CONFIRMED`, `CANCELLED` or `FAILED`.
    pub status: String,
    pub occurred_at: DateTime<Utc>,
}

fn date(s: &str) -> Date {
    Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default())
}

fn updates(ctx: &Context<'_>) -> impl Stream<Item = LiveUpdate> + use<> {
    BroadcastStream::new(ctx.data_unchecked::<LiveHub>().subscribe())
        .filter_map(|u| async move { u.ok() })
}

pub struct Query;

#[Object]
impl Query {
    /// Federation: `User.notifications` for users owned by auth.
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        Uuid::parse_str(id.as_str()).ok().map(|id| User { id })
    }

    #[graphql(entity)]
    async fn find_reservation_by_id(&self, id: ID) -> Option<Reservation> {
        Uuid::parse_str(id.as_str())
            .ok()
            .map(|id| Reservation { id })
    }
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// The signed-in user's bookings, as they are confirmed.
    async fn booking_confirmed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, BookingConfirmation>> {
        let me = viewer(ctx)
            .require_user()
            .map_err(async_graphql::Error::from)?
            .sub;
        Ok(updates(ctx)
            .filter_map(move |u| async move {
                (u.kind == "reservation.confirmed" && u.guest_id == me).then(|| {
                    BookingConfirmation {
                        reservation_id: ID(u.reservation_id.to_string()),
                        reservation: Reservation {
                            id: u.reservation_id,
                        },
                        property_title: u.property_title,
                        check_in: date(&u.check_in),
                        check_out: date(&u.check_out),
                        total: Money {
                            amount: i32::try_from(u.total_amount).unwrap_or(i32::MAX),
                            currency: u.currency,
                        },
                        confirmed_at: u.occurred_at,
                    }
                })
            })
            .boxed())
    }

    /// Status changes of one reservation, for its guest, its host and admins.
    async fn reservation_status_changed(
        &self,
        ctx: &Context<'_>,
        reservation_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, ReservationStatusEvent>> {
        let me = viewer(ctx)
            .require_user()
            .map_err(async_graphql::Error::from)?
            .clone();
        let id = Uuid::parse_str(reservation_id.as_str()).map_err(|_| {
            async_graphql::Error::from(ApiError::bad_input(
                "reservationId",
                "reservationId is not a valid id",
            ))
        })?;
        Ok(updates(ctx)
            .filter_map(move |u| {
                let allowed = me.is_admin() || me.sub == u.guest_id || me.sub == u.host_id;
                async move {
                    (u.reservation_id == id && allowed).then(|| ReservationStatusEvent {
                        reservation_id: ID(u.reservation_id.to_string()),
                        reservation: Reservation {
                            id: u.reservation_id,
                        },
                        status: u.status,
                        occurred_at: u.occurred_at,
                    })
                }
            })
            .boxed())
    }
}
