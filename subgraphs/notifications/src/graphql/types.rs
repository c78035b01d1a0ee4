use std::sync::Arc;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use draftr_common::ApiResult;
use draftr_common::events::reservation::ReservationEvent;
use draftr_common::graphql::{
    ConnectionFields, Date, Money, decode_uuid_cursor, encode_cursor, page_size, viewer,
};
use uuid::Uuid;

use crate::service::{self, NotificationService};

/// An email Draftr sent (or is sending) to a user.
pub struct Notification(service::Notification);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// `booking_confirmed`, `new_booking`, `booking_cancelled`, `booking_cancelled_host`,
    /// `refund_issued`, `booking_changed` (to the guest: the stay's dates or guests changed),
    /// `booking_changed_host` (to the host). Clients should accept kinds added later.
    async fn kind(&self) -> &'static str {
        self.0.kind.as_str()
    }
    async fn subject(&self) -> &str {
        &self.0.subject
    }
    /// `PENDING`, `SENDING`, `SENT`, `RETRYING` (the mail server did not take it yet; another
    /// attempt is scheduled) or `FAILED` (gave up).
    async fn status(&self) -> &'static str {
        self.0.status.as_str()
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
    pub(super) id: Uuid,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }
    /// Newest first; for the user and admins.
    #[graphql(complexity = "draftr_common::graphql::list_cost(first, child_complexity)")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> ApiResult<NotificationConnection> {
        let me = viewer(ctx).require_user()?;
        // Before the arguments are checked: someone else's list answers FORBIDDEN, whatever
        // was asked of it.
        NotificationService::may_list(me, self.id)?;
        let limit = page_size(first)?;
        let after = decode_uuid_cursor(after.as_deref())?;
        let page = ctx
            .data_unchecked::<Arc<NotificationService>>()
            .notifications_of(
                me,
                self.id,
                after,
                limit,
                ctx.look_ahead().field("totalCount").exists(),
            )
            .await?;
        let mut connection = NotificationConnection::with_additional_fields(
            after.is_some(),
            page.more,
            ConnectionFields {
                total_count: page.total,
            },
        );
        connection.edges.extend(
            page.notifications
                .into_iter()
                .map(|n| Edge::new(encode_cursor(&n.id.to_string()), Notification(n))),
        );
        Ok(connection)
    }
}

/// A reservation (owned by reservations): the router resolves its fields.
pub struct Reservation {
    pub(super) id: Uuid,
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

impl From<ReservationEvent> for BookingConfirmation {
    fn from(e: ReservationEvent) -> Self {
        Self {
            reservation_id: ID(e.reservation_id.to_string()),
            reservation: Reservation {
                id: e.reservation_id,
            },
            property_title: e.property_title,
            check_in: Date(e.check_in),
            check_out: Date(e.check_out),
            total: Money::minor_units(e.total.amount, &e.total.currency),
            confirmed_at: e.occurred_at,
        }
    }
}

/// A reservation's status changed, or a confirmed stay's dates or guests did.
#[derive(SimpleObject)]
pub struct ReservationStatusEvent {
    pub reservation_id: ID,
    pub reservation: Reservation,
    /// `CONFIRMED`, `CANCELLED` or `FAILED`. A change of a confirmed stay's dates or guests
    /// (`changeReservation`) is pushed with `CONFIRMED` again and `change` set.
    pub status: String,
    pub occurred_at: DateTime<Utc>,
    /// The stay's check-in as of this event (after a change, the new one).
    pub check_in: Date,
    /// The stay's check-out as of this event (after a change, the new one).
    pub check_out: Date,
    /// What a change of dates or guests changed; null for every other event.
    pub change: Option<ChangedStay>,
}

/// What a change of a confirmed stay's dates or guests changed
/// (`ReservationStatusEvent.change`): the stay before it, and the guest count and total now.
/// The new dates are the event's `checkIn` and `checkOut`. What was charged or refunded is
/// told to the guest by email, not here (the host hears of these events too).
#[derive(SimpleObject)]
pub struct ChangedStay {
    pub previous_check_in: Date,
    pub previous_check_out: Date,
    pub previous_guests: i32,
    pub guests: i32,
    /// The stay's total after the change.
    pub total: Money,
}

impl From<ReservationEvent> for ReservationStatusEvent {
    fn from(e: ReservationEvent) -> Self {
        let total = Money::minor_units(e.total.amount, &e.total.currency);
        Self {
            reservation_id: ID(e.reservation_id.to_string()),
            reservation: Reservation {
                id: e.reservation_id,
            },
            status: e.status.as_str().to_owned(),
            occurred_at: e.occurred_at,
            check_in: Date(e.check_in),
            check_out: Date(e.check_out),
            // Only `reservation.changed` carries one (the consumer refuses that kind without).
            change: e.change.map(|c| ChangedStay {
                previous_check_in: Date(c.previous_check_in),
                previous_check_out: Date(c.previous_check_out),
                previous_guests: c.previous_guests,
                guests: c.guests,
                total,
            }),
        }
    }
}
